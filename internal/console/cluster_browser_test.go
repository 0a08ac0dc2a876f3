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
	streams := func() string {
		t.Helper()
		e.run(op, "the streams page",
			chromedp.Navigate(e.srv.URL+"/console/operator/streams"),
			chromedp.WaitVisible(chromedp.ID("cluster-"+events.StreamSlack)),
		)
		return e.text(op, "#cluster-"+events.StreamSlack)
	}
	leader := cluster.WaitStreamLeader(t, events.StreamSlack, 30*time.Second)
	if got := streams(); !strings.Contains(got, "3 replicas · leader n") || strings.Contains(got, "lagging") {
		t.Fatalf("SLACK on a healthy cluster: %q", got)
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
		t.Fatalf("SLACK with %s stopped: %q", name, got)
	}
	cluster.Restart(t, stopped)
	testenv.Eventually(t, 30*time.Second, func() bool {
		return !strings.Contains(streams(), "lagging")
	}, "%s never caught up on the streams page", name)
}
