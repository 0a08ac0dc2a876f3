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
	resumed  time.Duration // until the workers made the next effect
	caughtUp time.Duration // from its restart until its replicas were current
}

// TestNATSLeaderLoss runs the ingress and two worker replicas on a three-node
// cluster with R3 streams under a bounded signed load, kills the node that
// leads SLACK, brings it back, then kills the node that leads the workers'
// consumer. Every event answered 200 is in the stream once and its effect
// happened once; the ingress rides each election inside its publish timeout
// (no 503; without the publish retry a few events are refused each time);
// the workers resume within seconds and drain the consumer; nothing is
// dead-lettered.
func TestNATSLeaderLoss(t *testing.T) {
	const (
		rate           = 100
		publishTimeout = 2 * time.Second
		durable        = "effects"
	)
	c := testenv.StartNATSCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := bus.EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	rdb := testenv.StartRedis(t).Client
	fx := newEffects()
	for i := range 2 {
		js, err := jetstream.New(connect(t, c.URLs(), "worker-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		startWorker(t, js, rdb, durable, fx)
	}
	reg := prometheus.NewRegistry()
	sl := &slack{url: startIngress(t, c.URLs(), publishTimeout, reg).URL, client: &http.Client{Timeout: 5 * time.Second}}
	if r := sl.send("EvWarmUp"); r.code != http.StatusOK {
		t.Fatalf("warm-up event answered %d", r.code)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return fx.of("EvWarmUp") == 1 }, "the workers never handled the warm-up event")

	stop := make(chan struct{})
	answers := make(chan []sent, 1)
	go func() { answers <- sl.load(rate, rate*60, stop) }()
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
	var losses []*loss
	lose := func(what string, leaderOf func() int) {
		t.Helper()
		var node int
		testenv.Eventually(t, 20*time.Second, func() bool { node = leaderOf(); return node >= 0 }, "%s has no leader", what)
		l := &loss{what: what, node: node, at: time.Now()}
		c.Kill(node)
		testenv.Eventually(t, 20*time.Second, func() bool { n := leaderOf(); return n >= 0 && n != node }, "%s elected no new leader", what)
		l.elected = time.Since(l.at)
		testenv.Eventually(t, 20*time.Second, func() bool { return !fx.firstAfter(l.at).IsZero() }, "the workers made no effect after the loss of %s's leader", what)
		l.resumed = fx.firstAfter(l.at).Sub(l.at)
		loadFor(time.Second) // a second of load with a node down
		back := time.Now()
		c.Restart(t, node)
		c.WaitStreamCurrent(t, events.StreamSlack, 30*time.Second)
		l.caughtUp = time.Since(back)
		losses = append(losses, l)
	}
	loadFor(time.Second)
	lose("stream SLACK", func() int { return c.StreamLeader(events.StreamSlack) })
	loadFor(time.Second)
	lose("consumer "+durable, func() int { return c.ConsumerLeader(events.StreamSlack, durable) })
	loadFor(time.Second)
	close(stop)
	res := <-answers

	// Slack retries what was not answered 200 (after ≈0 s, 1 min, 5 min; here at once).
	var refused []sent
	for i, r := range res {
		if r.code == http.StatusOK {
			continue
		}
		refused = append(refused, r)
		for try := 0; try < 3 && res[i].code != http.StatusOK; try++ {
			res[i] = sl.send(r.id)
		}
	}
	js := c.JS
	loadEnd := time.Now()
	waitDrained(t, js, events.StreamSlack, durable, 60*time.Second)
	drained := time.Since(loadEnd)

	stored := storedIDs(t, js, events.StreamSlack)
	var slowest time.Duration
	for _, r := range res {
		if r.code != http.StatusOK {
			t.Errorf("event %s still answered %d after Slack's retries", r.id, r.code)
			continue
		}
		slowest = max(slowest, r.took)
		if n := stored[r.id]; n != 1 {
			t.Errorf("event %s answered 200 is stored %d times", r.id, n)
		}
	}
	for id, n := range stored {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
		if e := fx.of(id); e != 1 {
			t.Errorf("event %s took effect %d times, want once", id, e)
		}
	}
	if len(refused) > 0 {
		// With the publish retried within its timeout, an election as quick as
		// a node's own shutdown (it hands its leaderships over) costs no 503.
		t.Errorf("%d events were answered non-200 the first time; the ingress should ride the elections", len(refused))
	}
	for _, r := range refused {
		during := false
		for _, l := range losses {
			during = during || (r.at.After(l.at.Add(-publishTimeout)) && r.at.Before(l.at.Add(l.elected+publishTimeout)))
		}
		if !during {
			t.Errorf("event %s answered %d at %s, outside every election", r.id, r.code, r.at.Format(time.StampMilli))
		}
	}
	for _, l := range losses {
		if l.resumed > 10*time.Second {
			t.Errorf("after the loss of %s's leader the workers resumed only after %s", l.what, l.resumed)
		}
	}
	if s, err := js.Stream(ctx, events.StreamDLQ); err != nil || s.CachedInfo().State.Msgs != 0 {
		t.Errorf("DLQ: %v, %+v; want empty", err, s.CachedInfo().State)
	}

	sort.Slice(refused, func(i, j int) bool { return refused[i].at.Before(refused[j].at) })
	t.Logf("%d events at %d/s over 2 node losses; %d answered non-200 first time; slowest 200 took %s; publishes retried: %.0f; consumer drained %s after the load",
		len(res), rate, len(refused), slowest.Round(time.Millisecond), counter(t, reg, "orgbridge_ingress_publish_retries_total", nil), drained.Round(time.Millisecond))
	for _, l := range losses {
		t.Logf("lost n%d leading %s: new leader after %s, first effect after %s; restarted node current after %s",
			l.node, l.what, l.elected.Round(time.Millisecond), l.resumed.Round(time.Millisecond), l.caughtUp.Round(time.Millisecond))
	}
}
