package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/console"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestConsoleStreamsOnACluster: on a 3-node NATS cluster with R3 streams the
// operator's streams page shows each stream's replicas and leader; with one
// node stopped, the streams and consumers it held a replica of show it as
// lagging, until it is back.
func TestConsoleStreamsOnACluster(t *testing.T) {
	var cluster *testenv.NATSCluster
	e := newEnv(t, func(e *env, cfg *console.Config) {
		cluster = testenv.StartNATSCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := bus.EnsureStreams(ctx, cluster.JS, events.StreamOptions{Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		cfg.Operator = console.OperatorAPI{JS: cluster.JS}
	})
	op := e.browser
	e.signInAsOperator(op)
	// streams is what the page says of SLACK's replicas, or of why it could
	// not be read (a node rejoining may leave a request unanswered).
	streams := func() string {
		t.Helper()
		e.run(op, "the streams page",
			chromedp.Navigate(e.srv.URL+"/console/operator/streams"),
			chromedp.WaitVisible(chromedp.CSS("main")),
		)
		return e.text(op, "main")
	}
	leader := cluster.WaitStreamLeader(t, events.StreamSlack, 30*time.Second)
	healthy := func(page string) bool {
		return strings.Count(page, "3 replicas · leader n") == len(events.StreamSpecs()) &&
			!strings.Contains(page, "lagging") && !strings.Contains(page, "Not read") && !strings.Contains(page, "went wrong")
	}
	if got := streams(); !healthy(got) {
		t.Fatalf("the streams of a healthy cluster:\n%s", got)
	}
	stopped := (leader + 1) % 3
	cluster.Kill(stopped)
	name := "n" + string(rune('0'+stopped))
	var got string
	testenv.Eventually(t, 30*time.Second, func() bool {
		got = streams()
		return strings.Contains(got, "lagging: "+name)
	}, "the stopped node %s never showed as lagging", name)
	if !strings.Contains(got, "3 replicas · leader n") {
		t.Fatalf("the streams with %s stopped:\n%s", name, got)
	}
	e.run(op, "streams with a node stopped", chromedp.Navigate(e.srv.URL+"/console/operator/streams"), chromedp.WaitVisible(chromedp.CSS("main")))
	cluster.Restart(t, stopped)
	testenv.Eventually(t, 60*time.Second, func() bool { return healthy(streams()) },
		"%s never caught up on the streams page", name)
}
