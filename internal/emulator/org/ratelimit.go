package orgemu

import (
	"sync"
	"time"
)

// limiter is a token bucket: rate tokens per second, at most burst saved up.
type limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst), now: now}
}

// take spends a token, or reports how long until one is available.
func (l *limiter) take() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return 0, true
	}
	return time.Duration((1 - l.tokens) / l.rate * float64(time.Second)), false
}
