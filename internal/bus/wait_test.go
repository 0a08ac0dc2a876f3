package bus

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// syncBuffer is a log sink tests read while the code under test writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStartupWaitsForTheCluster: an ingress and a worker that start while the
// NATS cluster cannot answer (two of its three nodes down, so no quorum) wait,
// say so, and create their R3 streams and consumers once the nodes are back,
// instead of exiting with "context deadline exceeded".
func TestStartupWaitsForTheCluster(t *testing.T) {
	c := testenv.StartNATSCluster(t)
	c.Kill(1)
	c.Kill(2)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := ctxT(t)
	ensured := make(chan error, 1)
	go func() { ensured <- EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 3}, WaitLogger(log)) }()
	got := make(chan string, 1)
	r := startRunner(t, c.JS, RunnerConfig{DisableMaxDeliveriesCapture: true, ShutdownTimeout: 5 * time.Second}, nil, func(r *Runner) {
		r.log = log
		mustRegister(t, r, ConsumerConfig{Stream: events.StreamSlack, Durable: "waits", FilterSubjects: []string{"slack.events.>"}},
			func(_ context.Context, m *Message) error { got <- string(m.Data); return nil })
	})
	for _, what := range []string{"waiting_for=\"stream SLACK\"", "waiting_for=\"consumer waits on SLACK\""} {
		testenv.Eventually(t, waitLong, func() bool { return strings.Contains(logs.String(), what) },
			"nothing says it waits for %s:\n%s", what, logs.String())
	}
	c.Restart(t, 1)
	c.Restart(t, 2)
	select {
	case err := <-ensured:
		if err != nil {
			t.Fatalf("EnsureStreams: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("EnsureStreams did not finish within a minute of the nodes' return:\n%s", logs.String())
	}
	for _, spec := range events.StreamSpecs() {
		s, err := c.JS.Stream(ctx, spec.Name)
		if err != nil || s.CachedInfo().Config.Replicas != 3 {
			t.Fatalf("stream %s: %v, want 3 replicas", spec.Name, err)
		}
	}
	c.WaitStreamLeader(t, events.StreamSlack, waitLong)
	if _, err := c.JS.Publish(ctx, "slack.events.T1.message", []byte("after the wait")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "after the wait" {
			t.Fatalf("handled %q", m)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the runner never consumed after the cluster came back:\n%s", logs.String())
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestStartupRefusals: what waiting cannot fix fails at once, and waiting is
// bounded; both say what to check.
func TestStartupRefusals(t *testing.T) {
	single := testenv.StartNATS(t)
	c := testenv.StartNATSCluster(t)
	c.Kill(1)
	c.Kill(2)
	tests := []struct {
		name      string
		run       func(ctx context.Context) error
		wantErr   []string
		wantUnder time.Duration
	}{
		{name: "three replicas on one server", run: func(ctx context.Context) error {
			return EnsureStreams(ctx, single.JS, events.StreamOptions{Replicas: 3})
		}, wantErr: []string{"stream SLACK", "replicas"}, wantUnder: 5 * time.Second},
		{name: "a cluster without quorum, bounded", run: func(ctx context.Context) error {
			return EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 3}, WaitWithin(time.Second))
		}, wantErr: []string{"no answer from NATS JetStream within 1s", "ORGBRIDGE_STREAM_REPLICAS"}, wantUnder: 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.run(ctxT(t))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if took := time.Since(start); took > tt.wantUnder {
				t.Errorf("took %s, want under %s", took, tt.wantUnder)
			}
		})
	}
}
