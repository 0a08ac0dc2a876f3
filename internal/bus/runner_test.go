package bus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

var noCapture = RunnerConfig{DisableMaxDeliveriesCapture: true}

func consumerFor(tenant string) ConsumerConfig {
	return ConsumerConfig{
		Stream: events.StreamProvisioning, Durable: "sync-" + tenant,
		FilterSubjects: []string{events.ProvisioningSyncSubject(tenant)},
		RetryMin:       10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	}
}

func TestOutcomes(t *testing.T) {
	n := testenv.StartStreams(t)
	tests := []struct {
		name    string
		cfg     func(c *ConsumerConfig)
		handler func(m *Message) error
		check   func(t *testing.T, seq uint64, c *calls)
	}{
		{
			name:    "nil acks",
			handler: func(*Message) error { return nil },
			check: func(t *testing.T, seq uint64, c *calls) {
				if c.count() != 1 {
					t.Fatalf("handled %d times, want 1", c.count())
				}
			},
		},
		{
			name:    "permanent error dead-letters with every header, then no redelivery",
			handler: func(*Message) error { return Permanent(errors.New("malformed sync request")) },
			check: func(t *testing.T, seq uint64, c *calls) {
				if c.count() != 1 {
					t.Fatalf("handled %d times, want 1", c.count())
				}
				checkDeadLetter(t, n.JS, "T-perm", seq, "1", "malformed sync request")
			},
		},
		{
			name:    "panic dead-letters",
			handler: func(*Message) error { panic("nil map") },
			check: func(t *testing.T, seq uint64, c *calls) {
				checkDeadLetter(t, n.JS, "T-panic", seq, "1", "panicked: nil map")
			},
		},
		{
			name:    "retryable errors dead-letter after MaxDeliver",
			cfg:     func(c *ConsumerConfig) { c.MaxDeliver = 3 },
			handler: func(*Message) error { return errors.New("org API unavailable") },
			check: func(t *testing.T, seq uint64, c *calls) {
				got := c.list()
				if len(got) != 3 || got[0].deliveries != 1 || got[2].deliveries != 3 {
					t.Fatalf("calls = %+v, want deliveries 1..3", got)
				}
				checkDeadLetter(t, n.JS, "T-exhaust", seq, "3", "org API unavailable")
			},
		},
	}
	tenants := map[string]string{"nil acks": "T-ack", "panic dead-letters": "T-panic",
		"retryable errors dead-letter after MaxDeliver": "T-exhaust"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenants[tt.name]
			if tenant == "" {
				tenant = "T-perm"
			}
			cfg := consumerFor(tenant)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			c := &calls{}
			rr := startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
				mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error { c.add(m); return tt.handler(m) })
			})
			seq := publish(t, n.JS, events.ProvisioningSyncSubject(tenant), "msg-"+tenant, `{"full":true}`,
				map[string]string{events.HeaderTeam: tenant, events.HeaderRequestID: "req-" + tenant})
			testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) },
				"message %d not settled", seq)
			tt.check(t, seq, c)
			if err := rr.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
		})
	}
}

func checkDeadLetter(t *testing.T, js jetstream.JetStream, tenant string, seq uint64, deliveries, errText string) {
	t.Helper()
	durable := "sync-" + tenant
	raw := dlqMessage(t, js, events.StreamProvisioning, durable)
	if raw == nil {
		t.Fatalf("no dead letter for %s", durable)
	}
	want := map[string]string{
		events.HeaderDLQStream:     events.StreamProvisioning,
		events.HeaderDLQSeq:        seqStr(seq),
		events.HeaderDLQSubject:    events.ProvisioningSyncSubject(tenant),
		events.HeaderDLQConsumer:   durable,
		events.HeaderDLQDeliveries: deliveries,
		events.HeaderMsgID:         DLQMsgID(events.StreamProvisioning, seq, durable),
		events.HeaderOriginID:      "msg-" + tenant,
		events.HeaderTeam:          tenant,
		events.HeaderRequestID:     "req-" + tenant,
	}
	for k, v := range want {
		if got := raw.Header.Get(k); got != v {
			t.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
	if got := raw.Header.Get(events.HeaderDLQError); !strings.Contains(got, errText) {
		t.Errorf("dead letter error %q does not mention %q", got, errText)
	}
	if _, err := time.Parse(time.RFC3339Nano, raw.Header.Get(events.HeaderDLQFailedAt)); err != nil {
		t.Errorf("dead letter failed-at: %v", err)
	}
	if string(raw.Data) != `{"full":true}` {
		t.Errorf("dead letter body = %s", raw.Data)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	n := testenv.StartStreams(t)
	const after = time.Second
	tests := []struct {
		name   string
		tenant string
		err    error
	}{
		{name: "bus.RetryAfter", tenant: "T-ra", err: RetryAfter(errors.New("locked"), after)},
		{name: "slack rate limit", tenant: "T-slack", err: &slack.RateLimitedError{RetryAfter: after}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &calls{}
			cfg := consumerFor(tt.tenant) // RetryMin 10ms: backoff alone would come back almost at once
			rr := startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
				mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error {
					c.add(m)
					if m.Deliveries == 1 {
						return tt.err
					}
					return nil
				})
			})
			seq := publish(t, n.JS, events.ProvisioningSyncSubject(tt.tenant), "m-"+tt.tenant, "{}", nil)
			testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "not acked")
			got := c.list()
			if len(got) != 2 || got[1].deliveries != 2 {
				t.Fatalf("calls = %+v, want a second delivery", got)
			}
			// The server cannot redeliver before the delay; allow clock slack only.
			if gap := got[1].at.Sub(got[0].at); gap < after-50*time.Millisecond {
				t.Fatalf("redelivered after %s, before the retry-after %s", gap, after)
			}
			if err := rr.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReplayForOtherConsumerIsSkipped(t *testing.T) {
	n := testenv.StartStreams(t)
	cfg := consumerFor("T-replay")
	cfg.Concurrency = 1
	c := &calls{}
	startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
		mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error { c.add(m); return nil })
	})
	subj := events.ProvisioningSyncSubject("T-replay")
	publish(t, n.JS, subj, "plain", "{}", nil)
	publish(t, n.JS, subj, "replay:x:other", "{}", map[string]string{events.HeaderReplayFor: "someone-else", events.HeaderOriginID: "for-other"})
	last := publish(t, n.JS, subj, "replay:y:mine", "{}", map[string]string{events.HeaderReplayFor: cfg.Durable, events.HeaderOriginID: "for-me"})
	testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, last) }, "not all acked")
	got := c.byIdentity()
	if len(got) != 2 || got["plain"] != 1 || got["for-me"] != 1 {
		t.Fatalf("handled %v, want plain and for-me once each", got)
	}
}

func TestHeartbeatKeepsSlowHandlerFromRedelivery(t *testing.T) {
	n := testenv.StartStreams(t)
	cfg := consumerFor("T-slow")
	cfg.AckWait = 400 * time.Millisecond
	cfg.HandlerTimeout = 10 * time.Second
	c := &calls{}
	startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
		mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error {
			c.add(m)
			work := time.NewTimer(4 * cfg.AckWait) // the work itself outlasts AckWait
			defer work.Stop()
			select {
			case <-work.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	seq := publish(t, n.JS, events.ProvisioningSyncSubject("T-slow"), "slow-1", "{}", nil)
	testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "not acked")
	if got := c.list(); len(got) != 1 {
		t.Fatalf("handled %d times (%+v), want once: the message was redelivered while its handler ran", len(got), got)
	}
}

func TestMaxDeliveriesCapture(t *testing.T) {
	n := testenv.StartStreams(t)
	cfg := consumerFor("T-hang")
	cfg.AckWait = 300 * time.Millisecond
	cfg.HandlerTimeout = 100 * time.Millisecond
	cfg.MaxDeliver = 2
	release := make(chan struct{})
	c := &calls{}
	startRunner(t, n.JS, RunnerConfig{ShutdownTimeout: 2 * time.Second}, nil, func(r *Runner) {
		mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error {
			c.add(m)
			<-release // hung: ignores its ctx and never returns an outcome
			return nil
		})
	})
	t.Cleanup(func() { close(release) }) // runs before the runner's cleanup
	seq := publish(t, n.JS, events.ProvisioningSyncSubject("T-hang"), "msg-T-hang", `{"full":true}`,
		map[string]string{events.HeaderTeam: "T-hang", events.HeaderRequestID: "req-T-hang"})

	testenv.Eventually(t, waitLong, func() bool { return dlqMessage(t, n.JS, cfg.Stream, cfg.Durable) != nil },
		"no dead letter captured from the MAX_DELIVERIES advisory")
	checkDeadLetter(t, n.JS, "T-hang", seq, "2", "gave up after 2 deliveries without an outcome")
	testenv.Eventually(t, waitLong, func() bool {
		return subjectCount(t, n.JS, events.StreamDLQ, events.MaxDeliveriesAdvisoryPrefix+">") == 0
	}, "advisory not deleted from the DLQ stream")
	if got := subjectCount(t, n.JS, events.StreamDLQ, "dlq.>"); got != 1 {
		t.Fatalf("DLQ holds %d dead letters, want 1", got)
	}
	if got := c.count(); got != 2 {
		t.Fatalf("handler ran %d times, want MaxDeliver=2", got)
	}
}

func TestDeadLetterPublishFailureNaksInsteadOfTerm(t *testing.T) {
	n := testenv.StartStreams(t)
	ctx := ctxT(t)
	if err := n.JS.DeleteStream(ctx, events.StreamDLQ); err != nil {
		t.Fatal(err)
	}
	cfg := consumerFor("T-nodlq")
	recreated := make(chan struct{})
	c := &calls{}
	startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
		mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error {
			c.add(m)
			if m.Deliveries > 1 {
				select {
				case <-recreated:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return Permanent(errors.New("unknown org"))
		})
	})
	seq := publish(t, n.JS, events.ProvisioningSyncSubject("T-nodlq"), "msg-T-nodlq", `{"full":true}`,
		map[string]string{events.HeaderTeam: "T-nodlq", events.HeaderRequestID: "req-T-nodlq"})
	// With no DLQ stream the copy fails: the message must come back, not be terminated.
	testenv.Eventually(t, waitLong, func() bool { return c.count() >= 2 }, "message not redelivered after a failed DLQ copy")
	if err := EnsureStreams(ctx, n.JS, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	close(recreated)
	testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "not settled")
	checkDeadLetter(t, n.JS, "T-nodlq", seq, "2", "unknown org")
}

func TestDLQConsumerDoesNotLoop(t *testing.T) {
	n := testenv.StartStreams(t)
	cfg := ConsumerConfig{Stream: events.StreamDLQ, Durable: "dlq-reader", FilterSubjects: []string{"dlq.>"}}
	startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
		mustRegister(t, r, cfg, func(context.Context, *Message) error { return Permanent(errors.New("cannot handle")) })
	})
	seq := publish(t, n.JS, events.DLQSubject("SLACK", "binding"), "dlq:SLACK:1:binding", "{}", nil)
	testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "not terminated")
	if got := subjectCount(t, n.JS, events.StreamDLQ, "dlq.>"); got != 1 {
		t.Fatalf("DLQ holds %d messages, want only the original dead letter", got)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Run("in-flight handlers finish and ack, none lost or handled twice", func(t *testing.T) {
		n := testenv.StartStreams(t)
		cfg := consumerFor("T-drain")
		cfg.Concurrency = 4
		started := make(chan struct{}, 8)
		release := make(chan struct{})
		c := &calls{}
		rr := startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
			mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error {
				c.add(m)
				started <- struct{}{}
				<-release
				return nil
			})
		})
		var last uint64
		for i := range 4 {
			last = publish(t, n.JS, events.ProvisioningSyncSubject("T-drain"), "drain-"+seqStr(uint64(i)), "{}", nil)
		}
		for range 4 {
			<-started
		}
		rr.cancel()
		select {
		case err := <-rr.done:
			t.Fatalf("Run returned (%v) while handlers were still running", err)
		default:
		}
		close(release)
		if err := rr.stop(t); err != nil {
			t.Fatalf("Run = %v, want a graceful nil", err)
		}
		testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, last) }, "in-flight messages not acked")
		got := c.byIdentity()
		if len(got) != 4 {
			t.Fatalf("handled %v, want 4 messages", got)
		}
		for id, k := range got {
			if k != 1 {
				t.Fatalf("%s handled %d times", id, k)
			}
		}
	})

	t.Run("shutdown timeout elapses: the message is redelivered to a new runner", func(t *testing.T) {
		n := testenv.StartStreams(t)
		cfg := consumerFor("T-stuck")
		cfg.AckWait = time.Second
		cfg.HandlerTimeout = time.Minute
		started := make(chan struct{}, 1)
		rr := startRunner(t, n.JS, RunnerConfig{ShutdownTimeout: 300 * time.Millisecond, DisableMaxDeliveriesCapture: true}, nil, func(r *Runner) {
			mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error {
				started <- struct{}{}
				<-ctx.Done() // longer than the shutdown allows
				return ctx.Err()
			})
		})
		seq := publish(t, n.JS, events.ProvisioningSyncSubject("T-stuck"), "stuck-1", "{}", nil)
		<-started
		if err := rr.stop(t); !errors.Is(err, ErrShutdownTimeout) {
			t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
		}
		c := &calls{}
		startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
			mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error { c.add(m); return nil })
		})
		testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "message lost")
		got := c.list()
		if len(got) != 1 || got[0].deliveries < 2 {
			t.Fatalf("second runner calls = %+v, want the redelivered message", got)
		}
	})
}

func TestIdempotentMiddleware(t *testing.T) {
	n := testenv.StartStreams(t)
	rdb := testenv.StartRedis(t)
	rec := store.NewIdempotency(rdb.Client)

	t.Run("skips a copy of a processed message", func(t *testing.T) {
		cfg := consumerFor("T-idem")
		cfg.Concurrency = 1
		c := &calls{}
		startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
			mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error { c.add(m); return nil }, Idempotent(rec, time.Hour))
		})
		subj := events.ProvisioningSyncSubject("T-idem")
		hdr := map[string]string{events.HeaderTeam: "T-idem"}
		publish(t, n.JS, subj, "evt-1", "{}", hdr)
		publish(t, n.JS, subj, "replay:evt-1:all", "{}", map[string]string{events.HeaderTeam: "T-idem", events.HeaderOriginID: "evt-1"})
		last := publish(t, n.JS, subj, "evt-2", "{}", hdr)
		testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, last) }, "not acked")
		if got := c.byIdentity(); len(got) != 2 || got["evt-1"] != 1 || got["evt-2"] != 1 {
			t.Fatalf("handled %v, want evt-1 and evt-2 once each", got)
		}
		key := store.Key("T-idem", "bus", "processed", cfg.Durable, "evt-1")
		if s, err := rec.Check(ctxT(t), key); err != nil || s != store.StateDone {
			t.Fatalf("record %s = %s %v, want done", key, s, err)
		}
	})

	t.Run("external: a delivery waits while another is in flight", func(t *testing.T) {
		cfg := consumerFor("T-ext")
		c := &calls{}
		key := store.Key("T-ext", "bus", "processed", cfg.Durable, "ext-1")
		if ok, err := rec.Begin(ctxT(t), key, time.Minute); err != nil || !ok {
			t.Fatalf("Begin: %v %v", ok, err)
		}
		startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
			mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error { c.add(m); return nil },
				IdempotentExternal(rec, time.Minute, time.Hour, 20*time.Millisecond))
		})
		seq := publish(t, n.JS, events.ProvisioningSyncSubject("T-ext"), "ext-1", "{}", map[string]string{events.HeaderTeam: "T-ext"})
		testenv.Eventually(t, waitLong, func() bool {
			cons, err := n.JS.Consumer(ctxT(t), cfg.Stream, cfg.Durable)
			if err != nil {
				return false
			}
			info, err := cons.Info(ctxT(t))
			return err == nil && info.NumRedelivered >= 1
		}, "in-flight message not retried")
		if c.count() != 0 {
			t.Fatalf("handler ran while another delivery was in flight")
		}
		if err := rec.Forget(ctxT(t), key); err != nil { // the other worker died; its record is gone
			t.Fatal(err)
		}
		testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "not acked")
		if c.count() != 1 {
			t.Fatalf("handled %d times, want 1", c.count())
		}
		if s, _ := rec.Check(ctxT(t), key); s != store.StateDone {
			t.Fatalf("record = %s, want done", s)
		}
	})
}

func TestMetricsSharedRegistry(t *testing.T) {
	n := testenv.StartStreams(t)
	reg := prometheus.NewRegistry()
	if _, err := NewRunner(n.JS, nil, reg, noCapture); err != nil {
		t.Fatalf("first runner: %v", err)
	}
	cfg := consumerFor("T-metrics")
	startRunner(t, n.JS, noCapture, reg, func(r *Runner) {
		mustRegister(t, r, cfg, func(context.Context, *Message) error { return nil })
	})
	seq := publish(t, n.JS, events.ProvisioningSyncSubject("T-metrics"), "m-1", "{}", nil)
	testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "not acked")
	testenv.Eventually(t, waitLong, func() bool { return counter(t, reg, "orgbridge_bus_messages_total", cfg.Durable, "ack") == 1 },
		"orgbridge_bus_messages_total{outcome=ack} not 1")
}

func counter(t *testing.T, reg *prometheus.Registry, name, consumer, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["consumer"] == consumer && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestEnsureStreams(t *testing.T) {
	n := testenv.StartNATS(t)
	ctx := ctxT(t)
	if err := EnsureStreams(ctx, n.JS, events.StreamOptions{DuplicateWindow: time.Minute}); err == nil {
		t.Fatal("a duplicate window shorter than Slack's retries was accepted")
	}
	for range 2 { // creating and then updating
		if err := EnsureStreams(ctx, n.JS, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, spec := range events.StreamSpecs() {
		s, err := n.JS.Stream(ctx, spec.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", spec.Name, err)
		}
		if s.CachedInfo().Config.Retention != jetstream.LimitsPolicy {
			t.Fatalf("stream %s is not Limits retention", spec.Name)
		}
	}
}
