package disconnect

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the worker. Durations marked "Slack time" run TimeScale times
// faster (the emulator's scale, in tests, benchmarks and dev); "real" ones do
// not. Zero fields take the defaults shown.
type Config struct {
	// Durable is the consumer name on the DISCONNECT stream (default "disconnect").
	Durable string
	// Concurrency is handler goroutines per replica (default 16).
	Concurrency int
	// AckWait is the consumer's AckWait (real, default 30s): how soon a request
	// whose worker died is delivered again.
	AckWait time.Duration

	// TimeScale is config.TimeScale / the emulator's scale (default 1).
	TimeScale float64
	// PaceMargin stretches Slack's tier intervals (default 0.01 = 1 %) and
	// PaceMinGap adds real time between calls (default 1ms), against clock
	// drift between Redis and Slack. Network and scheduling jitter need no
	// margin: each call is spaced from the end of the previous one, so the
	// pacing holds at any TimeScale (see slackapi.Pacer).
	PaceMargin float64
	PaceMinGap time.Duration
	// MaxBlock is the longest a handler sleeps for its call slot (real); a
	// longer wait goes back to JetStream as a NakWithDelay. Default: three
	// disconnect intervals, at most 2s.
	MaxBlock time.Duration
	// CallTimeout bounds one Slack call (real, default 20s); it must be below
	// AckWait so a redelivery that finds a call "in flight" knows its worker died.
	CallTimeout time.Duration

	// RetryMin and RetryMax bound the backoff after a retryable Slack error
	// (Slack time, defaults 1m and 30m).
	RetryMin, RetryMax time.Duration
	// MaxAttempts bounds retryable failures (default 10); MaxUnknownAttempts
	// bounds errors the classification table does not know (default 3).
	MaxAttempts        int
	MaxUnknownAttempts int

	// ConfirmFirst is when the first confirmation check runs after Slack
	// accepted the disconnect; checks back off doubling up to ConfirmMax; past
	// ConfirmDeadline the request is "unconfirmed" (Slack time; defaults 30s,
	// 10m, 1h).
	ConfirmFirst, ConfirmMax, ConfirmDeadline time.Duration

	// MaxNotBefore is how far ahead a request's not_before may be (real,
	// default 6 days 23 hours). A delayed request waits in JetStream
	// (NakWithDelay), so it must come due well within the DISCONNECT stream's
	// MaxAge, or the stream drops it unanswered: set it to MaxAge less an
	// hour. A later not_before is rejected.
	MaxNotBefore time.Duration

	// RecordTTL is how long request records are kept after their last change
	// (default 90 days).
	RecordTTL time.Duration
	// AuditRetention is how long audit entries are kept (real, default 400
	// days, so a yearly audit always finds the whole year). Every write trims
	// the enterprise's trail of entries older than that (XTRIM MINID ~, which
	// frees whole stream nodes, so a few older entries may linger in Redis),
	// Run trims every trail once an hour for enterprises that went quiet, and
	// reads never return entries older than the retention.
	AuditRetention time.Duration
	// PolicyTick is how often Run looks for due policies (real, default 30s).
	PolicyTick time.Duration
	// WorkerID names this replica in the audit trail (default: none).
	WorkerID string
	// Now is the clock policies are scheduled by (default time.Now).
	Now func() time.Time
}

// DefaultAuditRetention is how long audit entries are kept unless
// Config.AuditRetention says otherwise: 400 days, a year and some slack.
const DefaultAuditRetention = 400 * 24 * time.Hour

// DefaultMaxNotBefore is Config.MaxNotBefore's default: the stream's default
// MaxAge (7 days) less an hour.
const DefaultMaxNotBefore = 7*24*time.Hour - time.Hour

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Durable == "" {
		c.Durable = "disconnect"
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	def(&c.AckWait, 30*time.Second)
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.PaceMargin == 0 {
		c.PaceMargin = 0.01
	}
	def(&c.PaceMinGap, time.Millisecond)
	def(&c.CallTimeout, 20*time.Second)
	if c.CallTimeout >= c.AckWait {
		c.CallTimeout = c.AckWait * 2 / 3
	}
	def(&c.RetryMin, time.Minute)
	def(&c.RetryMax, 30*time.Minute)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 10
	}
	if c.MaxUnknownAttempts == 0 {
		c.MaxUnknownAttempts = 3
	}
	def(&c.ConfirmFirst, 30*time.Second)
	def(&c.ConfirmMax, 10*time.Minute)
	def(&c.ConfirmDeadline, time.Hour)
	def(&c.RecordTTL, 90*24*time.Hour)
	def(&c.MaxNotBefore, DefaultMaxNotBefore)
	def(&c.AuditRetention, DefaultAuditRetention)
	def(&c.PolicyTick, 30*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.TimeScale < 1 {
		errs = append(errs, fmt.Errorf("time scale %v must be at least 1", c.TimeScale))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d must be at least 1", c.Concurrency))
	}
	if c.PaceMargin < 0 {
		errs = append(errs, fmt.Errorf("pace margin %v must not be negative", c.PaceMargin))
	}
	if c.AuditRetention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("audit retention %s must be at least a day (default %s)", c.AuditRetention, DefaultAuditRetention))
	}
	if c.AckWait < 0 || c.CallTimeout < 0 || c.RetryMin < 0 || c.RetryMax < c.RetryMin || c.ConfirmFirst < 0 ||
		c.ConfirmMax < c.ConfirmFirst || c.ConfirmDeadline < c.ConfirmFirst || c.PolicyTick < 0 || c.MaxBlock < 0 || c.PaceMinGap < 0 || c.MaxNotBefore < 0 {
		errs = append(errs, errors.New("durations must be positive, with RetryMin ≤ RetryMax and ConfirmFirst ≤ ConfirmMax, ConfirmDeadline"))
	}
	if c.MaxAttempts < 1 || c.MaxUnknownAttempts < 1 {
		errs = append(errs, errors.New("MaxAttempts and MaxUnknownAttempts must be at least 1"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("disconnect: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// real converts a Slack-time duration to real time.
func (c Config) real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.TimeScale)
}
