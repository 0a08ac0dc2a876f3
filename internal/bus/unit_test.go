package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
)

var errBase = errors.New("base")

func TestErrors(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantAfter     time.Duration
		wantHasAfter  bool
	}{
		{name: "plain error is retryable", err: errBase},
		{name: "permanent", err: Permanent(errBase), wantPermanent: true},
		{name: "wrapped permanent", err: fmt.Errorf("binding T1: %w", Permanent(errBase)), wantPermanent: true},
		{name: "retry after", err: RetryAfter(errBase, 3*time.Second), wantAfter: 3 * time.Second, wantHasAfter: true},
		{name: "slack rate limit", err: fmt.Errorf("users.list: %w", &slack.RateLimitedError{RetryAfter: 7 * time.Second}), wantAfter: 7 * time.Second, wantHasAfter: true},
		{name: "outer retry-after wins", err: RetryAfter(Permanent(errBase), time.Second), wantAfter: time.Second, wantHasAfter: true},
		{name: "outer permanent wins", err: Permanent(RetryAfter(errBase, time.Second)), wantPermanent: true, wantAfter: time.Second, wantHasAfter: true},
		{name: "Retryable() false from elsewhere", err: notRetryable{}, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.wantPermanent {
				t.Fatalf("IsPermanent = %v, want %v", got, tt.wantPermanent)
			}
			after, ok := retryAfterOf(tt.err)
			if ok != tt.wantHasAfter || after != tt.wantAfter {
				t.Fatalf("retry after = %s %v, want %s %v", after, ok, tt.wantAfter, tt.wantHasAfter)
			}
			if _, isNR := tt.err.(notRetryable); !isNR && !errors.Is(tt.err, errBase) && !errors.As(tt.err, new(*slack.RateLimitedError)) {
				t.Fatalf("errors.Is lost the wrapped error")
			}
		})
	}
	if Permanent(nil) != nil || RetryAfter(nil, time.Second) != nil {
		t.Fatal("marking nil must stay nil")
	}
}

type notRetryable struct{}

func (notRetryable) Error() string   { return "no" }
func (notRetryable) Retryable() bool { return false }

func TestRetryDelay(t *testing.T) {
	cfg := ConsumerConfig{Stream: "S", Durable: "d", RetryMin: 100 * time.Millisecond, RetryMax: 2 * time.Second}.withDefaults()
	tests := []struct {
		name       string
		deliveries uint64
		err        error
		lo, hi     time.Duration
	}{
		{name: "first retry near RetryMin", deliveries: 1, err: errBase, lo: 80 * time.Millisecond, hi: 120 * time.Millisecond},
		{name: "doubles per delivery", deliveries: 3, err: errBase, lo: 320 * time.Millisecond, hi: 480 * time.Millisecond},
		{name: "capped near RetryMax", deliveries: 30, err: errBase, lo: 1600 * time.Millisecond, hi: 2400 * time.Millisecond},
		{name: "retry-after honoured over backoff", deliveries: 1, err: RetryAfter(errBase, 10*time.Second), lo: 10 * time.Second, hi: 11 * time.Second},
		{name: "slack retry-after honoured", deliveries: 5, err: &slack.RateLimitedError{RetryAfter: 30 * time.Second}, lo: 30 * time.Second, hi: 33 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 { // jitter: every draw must be in range
				if d := cfg.retryDelay(tt.deliveries, tt.err); d < tt.lo || d > tt.hi {
					t.Fatalf("retryDelay = %s, want within [%s, %s]", d, tt.lo, tt.hi)
				}
			}
		})
	}
}

func TestConsumerConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c := ConsumerConfig{Stream: "S", Durable: "d"}.withDefaults()
		want := ConsumerConfig{Stream: "S", Durable: "d", AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 256,
			Concurrency: 8, HandlerTimeout: 24 * time.Second, RetryMin: time.Second, RetryMax: time.Minute,
			PullExpiry: 5 * time.Second, PullHeartbeat: time.Second}
		if fmt.Sprint(c) != fmt.Sprint(want) {
			t.Fatalf("defaults = %+v, want %+v", c, want)
		}
		if c.heartbeatEvery() != 10*time.Second {
			t.Fatalf("heartbeat every %s, want AckWait/3", c.heartbeatEvery())
		}
	})
	tests := []struct {
		name    string
		cfg     ConsumerConfig
		wantErr string
	}{
		{name: "valid", cfg: ConsumerConfig{Stream: "S", Durable: "d"}},
		{name: "unlimited deliveries", cfg: ConsumerConfig{Stream: "S", Durable: "d", MaxDeliver: -1}},
		{name: "no stream", cfg: ConsumerConfig{Durable: "d"}, wantErr: "stream"},
		{name: "durable with a dot", cfg: ConsumerConfig{Stream: "S", Durable: "a.b"}, wantErr: "durable"},
		{name: "negative ack wait", cfg: ConsumerConfig{Stream: "S", Durable: "d", AckWait: -time.Second}, wantErr: "ack wait"},
		{name: "backoff longer than deliveries", cfg: ConsumerConfig{Stream: "S", Durable: "d", MaxDeliver: 2, BackOff: []time.Duration{time.Second, time.Second}}, wantErr: "backoff"},
		{name: "max ack pending below concurrency", cfg: ConsumerConfig{Stream: "S", Durable: "d", Concurrency: 10, MaxAckPending: 5}, wantErr: "max ack pending"},
		{name: "inverted retry range", cfg: ConsumerConfig{Stream: "S", Durable: "d", RetryMin: time.Minute, RetryMax: time.Second}, wantErr: "retry"},
		{name: "bad max deliver", cfg: ConsumerConfig{Stream: "S", Durable: "d", MaxDeliver: -2}, wantErr: "max deliver"},
		{name: "short pull expiry", cfg: ConsumerConfig{Stream: "S", Durable: "d", PullExpiry: 500 * time.Millisecond}, wantErr: "pull expiry"},
		{name: "pull heartbeat over half the expiry", cfg: ConsumerConfig{Stream: "S", Durable: "d", PullExpiry: 2 * time.Second, PullHeartbeat: 1500 * time.Millisecond}, wantErr: "pull heartbeat"},
		{name: "pull heartbeat too short", cfg: ConsumerConfig{Stream: "S", Durable: "d", PullHeartbeat: 100 * time.Millisecond}, wantErr: "pull heartbeat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoggingAndRecover(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := &Message{
		Subject: "provisioning.sync.T1", Stream: "PROVISIONING", Consumer: "sync", StreamSeq: 7, Deliveries: 2,
		Identity: "evt-1", Tenant: "T1", Header: nats.Header{events.HeaderRequestID: []string{"req-42"}},
	}
	h := chain(func(ctx context.Context, m *Message) error {
		LoggerFrom(ctx).Info("inside")
		panic("boom")
	}, Logging(base), Recover())
	err := h(context.Background(), m)
	if !IsPermanent(err) || !errors.Is(err, ErrHandlerPanicked) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic became %v, want a permanent ErrHandlerPanicked", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("want inside, panic and outcome lines, got:\n%s", buf.String())
	}
	var inside map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &inside); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"msg": "inside", "consumer": "sync", "subject": "provisioning.sync.T1",
		"stream_seq": 7.0, "deliveries": 2.0, "identity": "evt-1", "request_id": "req-42", "tenant": "T1"} {
		if inside[k] != want {
			t.Fatalf("log field %s = %v, want %v (line %s)", k, inside[k], want, lines[0])
		}
	}
	if !strings.Contains(lines[1], "stack") || !strings.Contains(lines[2], "dead-lettering") {
		t.Fatalf("missing stack or dead-letter log:\n%s", buf.String())
	}
	if LoggerFrom(context.Background()) == nil {
		t.Fatal("LoggerFrom without a logger must not be nil")
	}
}

func TestRunnerConfigDependencies(t *testing.T) {
	ping := func(context.Context) error { return nil }
	tests := []struct {
		name    string
		deps    []Dependency
		wantErr string
	}{
		{name: "none"},
		{name: "redis", deps: []Dependency{{Name: "redis", Probe: ping}}},
		{name: "no name", deps: []Dependency{{Probe: ping}}, wantErr: "without a name"},
		{name: "no probe", deps: []Dependency{{Name: "redis"}}, wantErr: "no probe"},
		{name: "twice", deps: []Dependency{{Name: "redis", Probe: ping}, {Name: "redis", Probe: ping}}, wantErr: "twice"},
		{name: "nats is the runner's own", deps: []Dependency{{Name: "nats", Probe: ping}}, wantErr: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RunnerConfig{Dependencies: tt.deps}.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

// A probe that ignores its ctx (go-redis without ContextTimeoutEnabled) still
// fails at ProbeTimeout, and is not called again while it hangs.
func TestProbeIgnoringCtxTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	p := newProbe(Dependency{Name: "stuck", Probe: func(context.Context) error { calls.Add(1); <-release; return nil }}, true)
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := p.run(ctx)
		cancel()
		if err == nil {
			t.Fatal("a probe that never answered passed")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the stuck probe was called %d times, want once", n)
	}
}
