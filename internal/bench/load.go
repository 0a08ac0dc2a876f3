// Package bench measures orgbridge on the machine it runs on, always beside the
// ceilings that bound it there, so a figure means something on any hardware.
package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one load phase measured.
type Result struct {
	Name     string
	Requests int
	Errors   int
	Elapsed  time.Duration
	P50, P99 time.Duration
	Max      time.Duration
}

// PerSecond is the throughput of successful requests.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%-26s %9.0f /s  p50 %7s  p99 %7s  max %7s  (%d ok, %d errors in %s)",
		r.Name, r.PerSecond(), round(r.P50), round(r.P99), round(r.Max), r.Requests, r.Errors, r.Elapsed.Round(time.Millisecond))
}

func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// op is one unit of load: it returns nil when the request succeeded.
type op func(ctx context.Context, worker int, n uint64) error

// drive runs op from concurrency goroutines: warmup first (not measured), then
// for duration, and reports throughput and latency percentiles.
func drive(ctx context.Context, name string, concurrency int, warmup, duration time.Duration, do op) Result {
	var (
		seq       atomic.Uint64
		measuring atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		all       []time.Duration
		errs      int
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			failed := 0
			for ctx.Err() == nil {
				start := time.Now()
				err := do(ctx, w, seq.Add(1))
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						failed++
					}
					continue
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += failed
			mu.Unlock()
		}()
	}
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
	}
	measuring.Store(true)
	start := time.Now()
	select {
	case <-time.After(duration):
	case <-ctx.Done():
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	// Requests still in flight when the clock stopped finish after it; they were
	// timed, so count them against the same elapsed time.
	return summarize(name, all, elapsed, errs)
}

// summarize makes a Result of latencies gathered over elapsed (it sorts lat).
func summarize(name string, lat []time.Duration, elapsed time.Duration, errs int) Result {
	slices.Sort(lat)
	r := Result{Name: name, Requests: len(lat), Errors: errs, Elapsed: elapsed}
	if len(lat) > 0 {
		r.P50 = lat[len(lat)*50/100]
		r.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.Max = lat[len(lat)-1]
	}
	return r
}

// eventFactory builds signed Events API requests of a fixed size with unique
// event ids, the way Slack sends them.
type eventFactory struct {
	secret  []byte
	prefix  string
	padding string
	stamp   atomic.Value // string: unix seconds, refreshed by the caller's clock
}

func newEventFactory(secret string, size int) *eventFactory {
	f := &eventFactory{secret: []byte(secret)}
	f.prefix = `{"token":"bench","team_id":"T0BENCH01","api_app_id":"A0BENCH01","type":"event_callback","event_time":1700000000,` +
		`"authorizations":[{"team_id":"T0BENCH01","user_id":"U0BENCH01","is_bot":true}],"event":{"type":"message","channel":"C0BENCH01","user":"U0BENCH02","ts":"1700000000.000100","text":"`
	base := len(f.prefix) + len(`"},"event_id":"Ev00000000000000000000"}`)
	if pad := size - base; pad > 0 {
		f.padding = strings.Repeat("x", pad)
	}
	f.tick()
	return f
}

func (f *eventFactory) tick() { f.stamp.Store(strconv.FormatInt(time.Now().Unix(), 10)) }

// body returns the n-th event's body and its signature headers.
func (f *eventFactory) body(n uint64) (body []byte, sig, ts string) {
	body = make([]byte, 0, len(f.prefix)+len(f.padding)+64)
	body = append(body, f.prefix...)
	body = append(body, f.padding...)
	body = append(body, `"},"event_id":"Ev`...)
	body = strconv.AppendUint(body, n, 10)
	body = append(body, `"}`...)
	ts = f.stamp.Load().(string)
	mac := hmac.New(sha256.New, f.secret)
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return body, "v0=" + hex.EncodeToString(mac.Sum(nil)), ts
}

// httpOp posts signed events to url and expects 200.
func httpOp(client *http.Client, url string, f *eventFactory) op {
	return func(ctx context.Context, _ int, n uint64) error {
		body, sig, ts := f.body(n)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Slack-Signature", sig)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

func newClient(concurrency int, newConnEach bool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives:   newConnEach,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		MaxConnsPerHost:     concurrency * 2,
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	}, Timeout: 10 * time.Second}
}
