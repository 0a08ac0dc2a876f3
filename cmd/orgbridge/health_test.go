package main

import (
	"context"
	"errors"
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

// A worker's GET /readyz (documented, once a 404) reports NATS, Redis and
// whether the runner consumes, naming what is wrong.
func TestWorkerReadyz(t *testing.T) {
	n := testenv.StartStreams(t)
	closed, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	redisDown := func(context.Context) error { return errors.New("dial tcp 127.0.0.1:6379: connection refused") }
	redisUp := func(context.Context) error { return nil }
	tests := []struct {
		name     string
		conns    []*nats.Conn
		running  bool
		redis    func(context.Context) error
		wantCode int
		wantBody []string
	}{
		{"ready", []*nats.Conn{n.Conn}, true, redisUp, 200, []string{`"nats":"ok"`, `"redis":"ok"`, `"runner":"ok"`}},
		{"not connected yet", nil, false, redisUp, 503, []string{"not connected to NATS yet", "not consuming"}},
		{"connection closed", []*nats.Conn{closed}, true, redisUp, 503, []string{"NATS connection is CLOSED"}},
		{"redis down", []*nats.Conn{n.Conn}, true, redisDown, 503, []string{`"redis":"dial tcp`, `"runner":"ok"`}},
		{"runner stopped", []*nats.Conn{n.Conn}, false, redisUp, 503, []string{`"runner":"the workers are not consuming`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := &natsWatch{}
			for _, nc := range tt.conns {
				live.add(nc)
			}
			live.setRunning(tt.running)
			rec := httptest.NewRecorder()
			workerReady(live, tt.redis).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			for _, want := range tt.wantBody {
				if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), want) {
					t.Fatalf("got %d %s, want %d with %s", rec.Code, rec.Body, tt.wantCode, want)
				}
			}
		})
	}
}

// `orgbridge worker` serves /readyz beside /healthz and /metrics, and it
// follows Redis.
func TestWorkerCommandServesReadyz(t *testing.T) {
	n := testenv.StartStreams(t)
	r := testenv.StartRedis(t)
	env := map[string]string{"NATS_URL": n.URL, "REDIS_URL": r.URL(), "ORGBRIDGE_METRICS_ADDR": freeAddr(t),
		"ORGBRIDGE_ENCRYPTION_KEYS": store.GenerateKeySpec("k1"), "SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s",
		"ORG_CLIENT_ID": "org", "ORG_CLIENT_SECRET": "s", "ORGBRIDGE_SHUTDOWN_TIMEOUT": "5s", "ORGBRIDGE_LOG_LEVEL": "error"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := invoke(ctx, env, "worker", "--only", "mapping")
	readyz := "http://" + env["ORGBRIDGE_METRICS_ADDR"] + "/readyz"
	ready := func(code int, part string) func() bool {
		return func() bool {
			got, body := httpGet(http.DefaultClient, readyz, "")
			return got == code && strings.Contains(body, part)
		}
	}
	testenv.Eventually(t, 20*time.Second, ready(200, `"runner":"ok"`), "the worker's /readyz never answered 200:\n%s", inv.stderr)
	r.Stop()
	testenv.Eventually(t, 10*time.Second, ready(503, `"redis":"`), "/readyz did not report Redis down")
	r.Restart(t)
	testenv.Eventually(t, 10*time.Second, ready(200, `"redis":"ok"`), "/readyz did not report Redis back")
	cancel()
	select {
	case code := <-inv.code:
		if code != 0 {
			t.Fatalf("worker exited with %d:\n%s", code, inv.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop within its 5s shutdown timeout and 5s more")
	}
}
