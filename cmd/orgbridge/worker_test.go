package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// The workers' runner probes Redis: during an outage it pauses and holds
// messages rather than spend their deliveries (internal/bus tests the holding;
// this checks the worker command wires the probe).
func TestWorkersProbeRedis(t *testing.T) {
	n := testenv.StartStreams(t)
	r := testenv.StartRedis(t)
	env := map[string]string{"REDIS_URL": r.URL(), "ORGBRIDGE_ENCRYPTION_KEYS": store.GenerateKeySpec("k1")}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 2 * time.Second
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runWorkers(ctx, cfg, n.URL, r.Client, reg, slog.New(slog.DiscardHandler), []string{"mapping"}, &natsWatch{})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("workers did not stop within 30s")
		}
	})
	redisUp := func(want float64) func() bool {
		return func() bool {
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != "orgbridge_bus_dependency_up" {
					continue
				}
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "dependency" && l.GetValue() == "redis" {
							return m.GetGauge().GetValue() == want
						}
					}
				}
			}
			return false
		}
	}
	testenv.Eventually(t, 10*time.Second, redisUp(1), "orgbridge_bus_dependency_up{dependency=redis} is not 1")
	r.Stop()
	testenv.Eventually(t, 10*time.Second, redisUp(0), "the workers did not notice Redis going away")
	r.Restart(t)
	testenv.Eventually(t, 10*time.Second, redisUp(1), "the workers did not notice Redis coming back")
}
