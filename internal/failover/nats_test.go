package failover_test

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// loss is one node lost during the load.
type loss struct {
	what     string
	node     int
	at       time.Time     // when it was killed
	elected  time.Duration // until the stream (or consumer) had a leader again
	resumed  time.Duration // until the first worker made an effect
	allBack  time.Duration // until every worker had made one
	caughtUp time.Duration // from its restart until its replicas were current
}

// leaderLoss is what happened to a load while nodes were lost.
type leaderLoss struct {
	rate    int
	answers []sent // the last answer to each event, after Slack's retries
	refused []sent // first answers that were not 200, in time order
	losses  []*loss
	slowest time.Duration // the slowest first answer 200
	retries float64       // publishes the ingress sent again
	drained time.Duration // from the end of the load until the consumer was drained
	stored  map[string]int
	fx      *effects
	dlq     uint64
}

const (
	lossRate           = 100
	lossPublishTimeout = 2 * time.Second
	lossDurable        = "effects"
)

// runLeaderLoss runs the ingress and two worker replicas on c with R3
// streams under a bounded signed load, loses the node that leads SLACK,
// brings it back, then loses the node that leads the workers' consumer and
// brings it back; Slack's retries follow (here at once), then the consumer
// drains.
func runLeaderLoss(t testing.TB, c *testenv.NATSCluster) *leaderLoss {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := bus.EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	rdb := testenv.StartRedis(t).Client
	run := &leaderLoss{rate: lossRate, fx: newEffects()}
	for i := range 2 {
		js, err := jetstream.New(connect(t, c.URLs(), "worker-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		startWorker(t, js, rdb, lossDurable, "worker-"+strconv.Itoa(i), run.fx)
	}
	reg := prometheus.NewRegistry()
	sl := &slack{url: startIngress(t, c.URLs(), lossPublishTimeout, reg).URL, client: &http.Client{Timeout: 5 * time.Second}}
	if r := sl.send("EvWarmUp"); r.code != http.StatusOK {
		t.Fatalf("warm-up event answered %d", r.code)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return run.fx.of("EvWarmUp") == 1 }, "the workers never handled the warm-up event")

	stop := make(chan struct{})
	answers := make(chan []sent, 1)
	go func() { answers <- sl.load(lossRate, lossRate*120, stop) }()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	loadFor := func(d time.Duration) { // let the load run d, then go on
		until := time.Now().Add(d)
		testenv.Eventually(t, d+time.Second, func() bool { return time.Now().After(until) }, "")
	}
	lose := func(what string, leaderOf func() int) {
		var node int
		testenv.Eventually(t, 30*time.Second, func() bool { node = leaderOf(); return node >= 0 }, "%s has no leader", what)
		l := &loss{what: what, node: node, at: time.Now()}
		c.Kill(node)
		testenv.Eventually(t, 30*time.Second, func() bool { n := leaderOf(); return n >= 0 && n != node }, "%s elected no new leader", what)
		l.elected = time.Since(l.at)
		testenv.Eventually(t, 45*time.Second, func() bool { return !run.fx.allAfter(l.at, 2).IsZero() }, "the workers did not both resume after the loss of %s's leader", what)
		l.resumed = run.fx.firstAfter(l.at).Sub(l.at)
		l.allBack = run.fx.allAfter(l.at, 2).Sub(l.at)
		loadFor(time.Second) // a second of load with a node down
		back := time.Now()
		c.Restart(t, node)
		c.WaitStreamCurrent(t, events.StreamSlack, 60*time.Second)
		l.caughtUp = time.Since(back)
		run.losses = append(run.losses, l)
	}
	loadFor(time.Second)
	lose("stream SLACK", func() int { return c.StreamLeader(events.StreamSlack) })
	loadFor(time.Second)
	lose("consumer "+lossDurable, func() int { return c.ConsumerLeader(events.StreamSlack, lossDurable) })
	loadFor(time.Second)
	close(stop)
	run.answers = <-answers

	// Slack retries what was not answered 200 (after ≈0 s, 1 min, 5 min; here at once).
	for i, r := range run.answers {
		if r.code == http.StatusOK {
			run.slowest = max(run.slowest, r.took)
			continue
		}
		run.refused = append(run.refused, r)
		for try := 0; try < 5 && run.answers[i].code != http.StatusOK; try++ {
			run.answers[i] = sl.send(r.id)
		}
	}
	sort.Slice(run.refused, func(i, j int) bool { return run.refused[i].at.Before(run.refused[j].at) })
	loadEnd := time.Now()
	waitDrained(t, c.JS, events.StreamSlack, lossDurable, 90*time.Second)
	run.drained = time.Since(loadEnd)
	run.stored = storedIDs(t, c.JS, events.StreamSlack)
	run.retries = counter(t, reg, "orgbridge_ingress_publish_retries_total", nil)
	poll(t, 30*time.Second, "the DLQ stream", func(ctx context.Context) error {
		s, err := c.JS.Stream(ctx, events.StreamDLQ)
		if err == nil {
			run.dlq = s.CachedInfo().State.Msgs
		}
		return err
	})
	return run
}

// check reports what must hold however the nodes were lost: every event
// answered 200 is stored once and took effect once, every refusal came
// during an election, the workers resumed within seconds, nothing was
// dead-lettered.
func (run *leaderLoss) check(t testing.TB) {
	for _, r := range run.answers {
		if r.code != http.StatusOK {
			t.Errorf("event %s still answered %d after Slack's retries", r.id, r.code)
			continue
		}
		if n := run.stored[r.id]; n != 1 {
			t.Errorf("event %s answered 200 is stored %d times", r.id, n)
		}
	}
	for id, n := range run.stored {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
		if e := run.fx.of(id); e != 1 {
			t.Errorf("event %s took effect %d times, want once", id, e)
		}
	}
	for _, r := range run.refused {
		during := false
		for _, l := range run.losses {
			during = during || (r.at.After(l.at.Add(-lossPublishTimeout)) && r.at.Before(l.at.Add(l.elected+lossPublishTimeout)))
		}
		if !during {
			t.Errorf("event %s answered %d at %s, outside every election", r.id, r.code, r.at.Format(time.StampMilli))
		}
	}
	for _, l := range run.losses {
		if l.allBack > l.elected+5*time.Second {
			t.Errorf("after the loss of %s's leader both workers had resumed only after %s (new leader after %s)", l.what, l.allBack, l.elected)
		}
	}
	if run.dlq != 0 {
		t.Errorf("%d messages were dead-lettered", run.dlq)
	}
}

// window is how long the ingress answered non-200 around each loss: from the
// first refused request to the last, per loss.
func (run *leaderLoss) window(l *loss) (n int, span time.Duration) {
	var first, last time.Time
	for _, r := range run.refused {
		if r.at.Before(l.at.Add(-lossPublishTimeout)) || r.at.After(l.at.Add(l.elected+lossPublishTimeout)) {
			continue
		}
		if first.IsZero() {
			first = r.at
		}
		last = r.at.Add(r.took)
		n++
	}
	if n > 0 {
		span = last.Sub(first)
	}
	return n, span
}

func (run *leaderLoss) log(t testing.TB, how string) {
	t.Logf("%s: %d events at %d/s over 2 node losses; %d answered non-200 first time; slowest first 200 took %s; publishes retried: %.0f; consumer drained %s after the load",
		how, len(run.answers), run.rate, len(run.refused), run.slowest.Round(time.Millisecond), run.retries, run.drained.Round(time.Millisecond))
	for _, l := range run.losses {
		n, span := run.window(l)
		t.Logf("%s: lost n%d leading %s: new leader after %s, first effect after %s, both workers after %s; %d refused over %s; restarted node current after %s",
			how, l.node, l.what, l.elected.Round(time.Millisecond), l.resumed.Round(time.Millisecond), l.allBack.Round(time.Millisecond), n,
			span.Round(time.Millisecond), l.caughtUp.Round(time.Millisecond))
	}
}

// TestNATSLeaderLoss stops, as SIGTERM does, the node that leads SLACK and
// then the one that leads the workers' consumer, under load. The node hands
// its leaderships over as it stops, so the elections take a fraction of a
// second, and the ingress rides them within its publish timeout: no event is
// refused (without the publish retry a few are, each time). Every event is
// stored and takes effect once, the workers resume within seconds and drain
// the consumer, nothing is dead-lettered.
func TestNATSLeaderLoss(t *testing.T) {
	run := runLeaderLoss(t, testenv.StartNATSCluster(t))
	run.check(t)
	if len(run.refused) > 0 {
		t.Errorf("%d events were answered non-200 the first time; the ingress should ride these elections", len(run.refused))
	}
	run.log(t, "stopped")
}

// BenchmarkNATSLeaderCrash is TestNATSLeaderLoss with the nodes killed
// (SIGKILL, each node its own process): the others elect new leaders only
// after their election timeout (4–9 s in nats-server), longer than the
// publish timeout, so events are refused for part of it and Slack's retries
// bring them in. It measures that window and how soon the workers resume;
// the same guarantees hold. Run it with
//
//	go test -run '^$' -bench NATSLeaderCrash -benchtime 1x ./internal/failover
func BenchmarkNATSLeaderCrash(b *testing.B) {
	for range b.N {
		run := runLeaderLoss(b, testenv.StartNATSClusterProcesses(b))
		run.check(b)
		run.log(b, "killed")
		for _, l := range run.losses {
			n, span := run.window(l)
			b.ReportMetric(span.Seconds(), "s-refused-"+shortName(l.what))
			b.ReportMetric(float64(n), "refused-"+shortName(l.what))
			b.ReportMetric(l.elected.Seconds(), "s-election-"+shortName(l.what))
			b.ReportMetric(l.allBack.Seconds(), "s-resume-"+shortName(l.what))
		}
	}
}

func shortName(what string) string {
	if what == "stream SLACK" {
		return "stream"
	}
	return "consumer"
}
