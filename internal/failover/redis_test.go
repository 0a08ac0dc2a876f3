package failover_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// publishLoad publishes rate events a second (Msg-Id = event id) until stop
// is closed, as the ingress does, and returns the ids JetStream acknowledged
// and the publishes that failed.
func publishLoad(js jetstream.JetStream, rate int, stop <-chan struct{}) (ids []string, failed []error) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return ids, failed
		case <-tick.C:
		}
		id := fmt.Sprintf("Ev%05d", i)
		m := nats.NewMsg(events.SlackEventSubject("T0FAIL", "message"))
		m.Header.Set(events.HeaderTeam, "T0FAIL")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err != nil {
			failed = append(failed, fmt.Errorf("publishing %s: %w", id, err))
			continue
		}
		ids = append(ids, id)
	}
}

// TestRedisFailover kills the Redis primary under load while two worker
// replicas handle events, with Redis behind Sentinel and as a Redis Cluster
// (a replica is promoted). Processing pauses while no primary answers and
// resumes within seconds of the promotion; every event takes effect once;
// nothing is dead-lettered because of the failover.
func TestRedisFailover(t *testing.T) {
	tests := []struct {
		name string
		// start returns the client the workers use and a func that kills the
		// primary their keys live on and waits for a replica to take over.
		start func(t *testing.T) (redis.UniversalClient, func() time.Duration)
	}{
		{name: "Sentinel", start: func(t *testing.T) (redis.UniversalClient, func() time.Duration) {
			rs := testenv.StartRedisSentinel(t)
			rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: rs.Master, SentinelAddrs: rs.SentinelAddrs(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { rdb.Close() })
			return rdb, func() time.Duration {
				start := time.Now()
				old := rs.KillPrimary(t)
				rs.WaitFailover(t, old, 30*time.Second)
				return time.Since(start)
			}
		}},
		{name: "Cluster", start: func(t *testing.T) (redis.UniversalClient, func() time.Duration) {
			rc := testenv.StartRedisCluster(t)
			rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs(), ContextTimeoutEnabled: true})
			store.FollowFailovers(rdb) // as orgbridge's own cluster client does
			t.Cleanup(func() { rdb.Close() })
			// Every event's records live in the slot of tenant T0FAIL.
			return rdb, func() time.Duration { return rc.FailPrimary(t, "ob:{T0FAIL}:probe") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			rdb, failover := tt.start(t)
			fx := newEffects()
			for i := range 2 {
				startWorker(t, n.JS, rdb, "effects", fmt.Sprint("worker-", i), fx)
			}
			stop := make(chan struct{})
			var ids []string
			var failed []error
			published := make(chan struct{})
			go func() { defer close(published); ids, failed = publishLoad(n.JS, 100, stop) }()
			stopLoad := sync.OnceFunc(func() { close(stop); <-published })
			t.Cleanup(stopLoad) // runs before the servers stop, even when the test fails early
			testenv.Eventually(t, 20*time.Second, func() bool { return fx.of("Ev00100") == 1 }, "the workers never got going")
			killed := time.Now()
			promoted := failover()
			testenv.Eventually(t, 30*time.Second, func() bool { return fx.firstAfter(killed.Add(promoted)).After(killed) },
				"the workers made no effect after the failover")
			resumed := fx.firstAfter(killed.Add(promoted)).Sub(killed)
			until := time.Now().Add(time.Second) // a second of load on the new primary
			testenv.Eventually(t, 5*time.Second, func() bool { return time.Now().After(until) }, "")
			stopLoad()
			for _, err := range failed {
				t.Error(err)
			}
			waitDrained(t, n.JS, events.StreamSlack, "effects", 60*time.Second)

			dup, missing := 0, 0
			for _, id := range ids {
				switch e := fx.of(id); {
				case e == 0:
					missing++
				case e > 1:
					dup++
					t.Errorf("event %s took effect %d times", id, e)
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d events never took effect", missing, len(ids))
			}
			if s, err := n.JS.Stream(context.Background(), events.StreamDLQ); err != nil || s.CachedInfo().State.Msgs != 0 {
				t.Errorf("DLQ: %v; want empty", err)
			}
			if resumed > promoted+10*time.Second {
				t.Errorf("processing resumed %s after the kill, %s after the promotion", resumed, resumed-promoted)
			}
			t.Logf("%s: %d events at 100/s; primary killed; replica serving after %s; first effect after %s; %d duplicate effects",
				tt.name, len(ids), promoted.Round(time.Millisecond), resumed.Round(time.Millisecond), dup)
		})
	}
}
