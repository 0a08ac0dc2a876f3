package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// A worker whose NATS connection nats.go closed for good (here: the fault the
// issue found, a publish on a subject over the server's control line) never
// consumes again; its GET /healthz must say so, so that it is restarted.
func TestWorkerHealthzFailsWhenItsNATSConnectionIsClosed(t *testing.T) {
	n := testenv.StartStreams(t)
	r := testenv.StartRedis(t)
	env := map[string]string{"REDIS_URL": r.URL(), "ORGBRIDGE_ENCRYPTION_KEYS": store.GenerateKeySpec("k1")}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 2 * time.Second
	live := &natsWatch{}
	health := workerHealth(live)
	healthz := func() (int, string) {
		rec := httptest.NewRecorder()
		health.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code, rec.Body.String()
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runWorkers(ctx, cfg, n.URL, r.Client, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), []string{"mapping"}, live)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("workers did not stop within 30s")
		}
	})
	var nc *nats.Conn
	testenv.Eventually(t, 10*time.Second, func() bool {
		if c := live.watched(); len(c) == 1 && c[0].IsConnected() {
			nc = c[0]
			return true
		}
		return false
	}, "the worker's connection is not watched")
	if code, body := healthz(); code != http.StatusOK {
		t.Fatalf("healthz of a running worker: %d %q", code, body)
	}

	_ = nc.Publish("app.commands."+strings.Repeat("x", 5000), nil)
	testenv.Eventually(t, 5*time.Second, nc.IsClosed, "the connection survived a 5,000-byte subject")
	if code, body := healthz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "orgbridge-worker") {
		t.Fatalf("healthz with the connection closed: %d %q, want 503 naming it", code, body)
	}
}
