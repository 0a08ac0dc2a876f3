package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// redisDependency probes rdb the way the worker command does, with a client
// that ignores ctx deadlines (go-redis's default): the runner must bound the
// probe itself.
func redisDependency(rdb *testenv.Redis) Dependency {
	return Dependency{Name: "redis", Probe: func(ctx context.Context) error { return rdb.Client.Ping(ctx).Err() }}
}

// gatedRunner is a runner that knows its handlers need Redis, with the
// max-deliveries capture on so that any delivery budget running out shows up
// in the DLQ.
func gatedRunner(rdb *testenv.Redis) RunnerConfig {
	return RunnerConfig{
		ShutdownTimeout: 5 * time.Second,
		Dependencies:    []Dependency{redisDependency(rdb)},
		ProbeInterval:   20 * time.Millisecond,
		ProbeTimeout:    200 * time.Millisecond,
	}
}

// outageConsumer has a retry budget far shorter than the outages below
// (3 deliveries of at most 300 ms, 50 ms then 100 ms apart) and an AckWait
// they outlast, so only holding messages with heartbeats keeps them from
// redelivery.
func outageConsumer(tenant string) ConsumerConfig {
	return ConsumerConfig{
		Stream: events.StreamProvisioning, Durable: "sync-" + tenant,
		FilterSubjects: []string{events.ProvisioningSyncSubject(tenant)},
		MaxDeliver:     3, RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		AckWait: time.Second, HandlerTimeout: 300 * time.Millisecond, Concurrency: 4,
	}
}

// handlerClient is a client whose commands end with the handler's ctx, so a
// frozen server costs a handler its HandlerTimeout, not go-redis's read
// timeout times its retries.
func handlerClient(t *testing.T, rdb *testenv.Redis) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: rdb.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisHandler writes to Redis, as every worker's handlers do, and records
// each success.
func redisHandler(rdb *redis.Client, c *calls) Handler {
	return func(ctx context.Context, m *Message) error {
		if err := rdb.Incr(ctx, "handled:"+m.Identity).Err(); err != nil {
			return fmt.Errorf("recording %s: %w", m.Identity, err)
		}
		c.add(m)
		return nil
	}
}

func TestRedisOutageDeadLettersNothing(t *testing.T) {
	tests := []struct {
		name     string
		down, up func(t *testing.T, r *testenv.Redis)
	}{
		{
			name: "redis killed: connection refused",
			down: func(t *testing.T, r *testenv.Redis) { r.Stop() },
			up:   func(t *testing.T, r *testenv.Redis) { r.Restart(t) },
		},
		{
			name: "redis frozen: commands time out",
			down: func(t *testing.T, r *testenv.Redis) { r.Freeze(t) },
			up:   func(t *testing.T, r *testenv.Redis) { r.Thaw(t) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			rdb := testenv.StartRedis(t)
			reg := prometheus.NewRegistry()
			cfg := outageConsumer("T-outage")
			c := &calls{}
			startRunner(t, n.JS, gatedRunner(rdb), reg, func(r *Runner) {
				mustRegister(t, r, cfg, redisHandler(handlerClient(t, rdb), c))
			})
			// The control: the same kind of consumer in a runner that was not told
			// about Redis, with a budget several times longer (≈ 2 s of backoff,
			// 800 ms runs) than the gated one's and than its AckWait. Redis stays
			// down until the control's message is dead-lettered.
			ctl := outageConsumer("T-control")
			ctl.RetryMin, ctl.RetryMax, ctl.HandlerTimeout = time.Second, time.Second, 800*time.Millisecond
			startRunner(t, n.JS, noCapture, nil, func(r *Runner) {
				mustRegister(t, r, ctl, redisHandler(handlerClient(t, rdb), &calls{}))
			})

			tt.down(t, rdb)
			const total = 12 // more than the consumer can hold: 4 running, 4 pulled ahead
			var last uint64
			for i := range total {
				last = publish(t, n.JS, events.ProvisioningSyncSubject("T-outage"), fmt.Sprintf("out-%d", i), "{}",
					map[string]string{events.HeaderTeam: "T-outage"})
			}
			publish(t, n.JS, events.ProvisioningSyncSubject("T-control"), "ctl-1", "{}", nil)

			testenv.Eventually(t, waitLong, func() bool { return dlqMessage(t, n.JS, ctl.Stream, ctl.Durable) != nil },
				"the control consumer never dead-lettered: the outage did not outlast a retry budget")
			if dlqMessage(t, n.JS, cfg.Stream, cfg.Durable) != nil {
				t.Fatal("a message was dead-lettered during the outage")
			}
			if got := gauge(t, reg, "orgbridge_bus_dependency_up", "dependency", "redis"); got != 0 {
				t.Fatalf("orgbridge_bus_dependency_up{redis} = %v during the outage, want 0", got)
			}
			if got := counter(t, reg, "orgbridge_bus_outage_holds_total", cfg.Durable, ""); got == 0 {
				t.Fatal("no handler failure was held during the outage")
			}
			if info := consumerInfo(t, n, cfg); info.NumPending == 0 {
				t.Fatalf("the consumer pulled all %d messages during the outage (pending %d, ack pending %d): consumption did not pause",
					total, info.NumPending, info.NumAckPending)
			}

			tt.up(t, rdb)
			testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, last) },
				"messages not all handled after Redis came back")
			got := c.byIdentity()
			if len(got) != total {
				t.Fatalf("handled %d distinct messages, want %d", len(got), total)
			}
			for id, k := range got {
				if k != 1 {
					t.Errorf("%s handled %d times, want once", id, k)
				}
			}
			for _, x := range c.list() {
				if x.deliveries != 1 {
					t.Errorf("%s succeeded on delivery %d: the outage spent deliveries", x.identity, x.deliveries)
				}
			}
			if dlqMessage(t, n.JS, cfg.Stream, cfg.Durable) != nil {
				t.Fatal("a message was dead-lettered because of the outage")
			}
			if got := gauge(t, reg, "orgbridge_bus_dependency_up", "dependency", "redis"); got != 1 {
				t.Fatalf("orgbridge_bus_dependency_up{redis} = %v after the outage, want 1", got)
			}
		})
	}
}

func TestOwnFailureStillDeadLettersWithDependencies(t *testing.T) {
	n := testenv.StartStreams(t)
	rdb := testenv.StartRedis(t)
	cfg := outageConsumer("T-own")
	c := &calls{}
	record := redisHandler(handlerClient(t, rdb), c)
	startRunner(t, n.JS, gatedRunner(rdb), nil, func(r *Runner) {
		mustRegister(t, r, cfg, func(ctx context.Context, m *Message) error {
			if err := record(ctx, m); err != nil {
				return err
			}
			return errors.New("org API refused the change")
		})
	})
	seq := publish(t, n.JS, events.ProvisioningSyncSubject("T-own"), "msg-T-own", `{"full":true}`,
		map[string]string{events.HeaderTeam: "T-own", events.HeaderRequestID: "req-T-own"})
	testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, seq) }, "not settled")
	checkDeadLetter(t, n.JS, "T-own", seq, "3", "org API refused the change")
	if got := c.count(); got != 3 {
		t.Fatalf("handler ran %d times, want MaxDeliver=3", got)
	}
}

func TestShutdownDuringOutageHandsMessagesBack(t *testing.T) {
	n := testenv.StartStreams(t)
	rdb := testenv.StartRedis(t)
	cfg := outageConsumer("T-handback")
	reg := prometheus.NewRegistry()
	rr := startRunner(t, n.JS, gatedRunner(rdb), reg, func(r *Runner) {
		mustRegister(t, r, cfg, redisHandler(handlerClient(t, rdb), &calls{}))
	})
	rdb.Stop()
	var last uint64
	for i := range 3 {
		last = publish(t, n.JS, events.ProvisioningSyncSubject("T-handback"), fmt.Sprintf("hb-%d", i), "{}", nil)
	}
	testenv.Eventually(t, waitLong, func() bool {
		return counter(t, reg, "orgbridge_bus_outage_holds_total", cfg.Durable, "") >= 1
	}, "no message held")
	if err := rr.stop(t); err != nil {
		t.Fatalf("Run = %v, want a graceful nil: held messages must not hold up a shutdown", err)
	}

	rdb.Restart(t)
	c := &calls{}
	startRunner(t, n.JS, gatedRunner(rdb), nil, func(r *Runner) {
		mustRegister(t, r, cfg, redisHandler(handlerClient(t, rdb), c))
	})
	testenv.Eventually(t, waitLong, func() bool { return acked(t, n.JS, cfg.Stream, cfg.Durable, last) }, "handed-back messages not handled")
	if got := c.byIdentity(); len(got) != 3 {
		t.Fatalf("handled %v, want the 3 messages", got)
	}
	if dlqMessage(t, n.JS, cfg.Stream, cfg.Durable) != nil {
		t.Fatal("a handed-back message was dead-lettered")
	}
}

func consumerInfo(t *testing.T, n *testenv.NATS, cfg ConsumerConfig) *jetstream.ConsumerInfo {
	t.Helper()
	cons, err := n.JS.Consumer(ctxT(t), cfg.Stream, cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// gauge returns the value of the gauge name whose label is value, or -1.
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
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
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
