package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/telemetry"
)

// workerDeps is everything a worker is built from: one connection, one Redis
// client, one logger and one registry per process.
type workerDeps struct {
	cfg config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
	rdb redis.UniversalClient
	log *slog.Logger
	reg prometheus.Registerer
}

// worker is one of orgbridge's workers.
type worker interface {
	// Register adds the worker's durable consumers and handlers to r.
	Register(r *bus.Runner) error
	// Run runs the worker's background loops (schedules, token refresh) until
	// ctx ends; a worker without any returns nil when ctx ends.
	Run(ctx context.Context) error
}

// workerNames lists the workers in the order they start.
var workerNames = []string{"binding", "mapping", "disconnect", "provisioning"}

// errNotBuilt marks a worker this version of orgbridge does not have yet.
type notBuiltError struct{ name string }

func (e *notBuiltError) Error() string {
	return "the " + e.name + " worker is not part of this version yet"
}

func errNotBuilt(name string) error { return &notBuiltError{name} }

func buildWorker(name string, d workerDeps) (worker, error) {
	switch name {
	case "binding":
		return buildBinding(d)
	case "mapping":
		return buildMapping(d)
	case "disconnect":
		return buildDisconnect(d)
	case "provisioning":
		return buildProvisioning(d)
	}
	return nil, usagef("--only: unknown worker %q (choose from %s)", name, strings.Join(workerNames, ", "))
}

func runWorker(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	var only string
	fs := newFlags(c, "worker", "[--only "+strings.Join(workerNames, ",")+"] [flags]\n\n"+
		"Runs workers as replicas behind durable pull consumers: start as many as the load needs.",
		configEnv(append([]string{"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS", "NATS_NKEY_SEED", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY", "REDIS_URL", "ORGBRIDGE_METRICS_ADDR", "ORGBRIDGE_SHUTDOWN_TIMEOUT",
			"ORGBRIDGE_STREAM_MAX_AGE", "ORGBRIDGE_STREAM_DUPLICATE_WINDOW", "ORGBRIDGE_STREAM_REPLICAS",
			"ORGBRIDGE_AUDIT_RETENTION", "ORGBRIDGE_WORKER_ID", "ORGBRIDGE_LOG_LEVEL", "ORGBRIDGE_LOG_FORMAT"}, appEnv...)...)...)
	f.register(fs, false, true)
	fs.StringVar(&only, "only", "", "comma-separated workers to run (default: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	names := splitList(only)
	for _, n := range names {
		if !slices.Contains(workerNames, n) {
			return usagef("--only: unknown worker %q (choose from %s)", n, strings.Join(workerNames, ", "))
		}
	}
	cfg, log, rdb, err := loadService(ctx, c, &f, false)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := telemetry.NewRegistry()
	l, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("ORGBRIDGE_METRICS_ADDR: cannot listen on %s: %w", cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.Handler(reg))
	live := &natsWatch{}
	mux.Handle("GET /healthz", workerHealth(live))
	mux.Handle("GET /readyz", workerReady(live, redisReady(rdb)))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serveHTTP(gctx, ingress.NewHTTPServer(cfg.MetricsAddr, mux), l, newShutdown(gctx, cfg.ShutdownTimeout), 0, log)
	})
	g.Go(func() error {
		return runWorkers(gctx, cfg, cfg.NATSURL, rdb, reg, log, names, live, natsAuth(cfg.NATS)...)
	})
	return g.Wait()
}

// workerHealth is a worker's GET /healthz: it fails once the workers' NATS
// connection is closed for good, since their consumers then never resume.
func workerHealth(live *natsWatch) http.Handler {
	return ingress.Liveness(map[string]func(context.Context) error{"nats": live.alive})
}

// workerReady is a worker's GET /readyz: connected to NATS, Redis answers,
// and the runner consuming (not starting, stopping or stopped by an error).
func workerReady(live *natsWatch, redis func(context.Context) error) http.Handler {
	return ingress.Readiness(map[string]func(context.Context) error{"nats": live.connected, "redis": redis, "runner": live.runnerRunning})
}

// runnerShutdownTimeout is the runner's share of the shutdown deadline,
// counted from the same signal: it may spend up to a second beyond it
// flushing acks, and the NATS drain gets the rest.
func runnerShutdownTimeout(timeout time.Duration) time.Duration {
	return max(timeout*3/4-time.Second, timeout/2)
}

// runWorkers runs the named workers (all that this version has when only is
// empty) until ctx ends, then drains them. live (nil: none) watches the NATS
// connection for /healthz.
func runWorkers(ctx context.Context, cfg config.Config, natsURL string, rdb redis.UniversalClient, reg prometheus.Registerer, log *slog.Logger, only []string, live *natsWatch, natsOpts ...nats.Option) error {
	stop := newShutdown(ctx, cfg.ShutdownTimeout)
	nc, err := connectService(natsURL, "orgbridge-worker", log, append([]nats.Option{nats.DrainTimeout(cfg.ShutdownTimeout)}, natsOpts...)...)
	if err != nil {
		return err
	}
	defer nc.Close()
	live.add(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := bus.EnsureStreams(ctx, js, cfg.Streams, bus.WaitLogger(log)); err != nil {
		return err
	}
	d := workerDeps{cfg: cfg, nc: nc, js: js, rdb: rdb, log: log, reg: reg}
	// Every worker keeps its state in Redis: while it does not answer, the
	// runner pauses and holds messages instead of spending their deliveries.
	runner, err := bus.NewRunner(js, log, reg, bus.RunnerConfig{
		ShutdownTimeout: runnerShutdownTimeout(cfg.ShutdownTimeout),
		Dependencies:    []bus.Dependency{{Name: "redis", Probe: redisReady(rdb)}},
	})
	if err != nil {
		return err
	}
	names := only
	if len(names) == 0 {
		names = workerNames
	}
	var workers []worker
	var started []string
	for _, name := range names {
		w, err := buildWorker(name, d)
		var nb *notBuiltError
		switch {
		case errors.As(err, &nb) && len(only) == 0:
			log.Info("worker not in this version; skipping", "worker", name)
			continue
		case err != nil:
			return fmt.Errorf("worker %s: %w", name, err)
		}
		if err := w.Register(runner); err != nil {
			return fmt.Errorf("worker %s: %w", name, err)
		}
		workers = append(workers, w)
		started = append(started, name)
	}
	log.Info("workers running", "workers", strings.Join(started, ","))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		live.setRunning(true)
		defer live.setRunning(false)
		return runner.Run(gctx)
	})
	for _, w := range workers {
		g.Go(func() error { return w.Run(gctx) })
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err = <-done:
	case <-gctx.Done():
		// The signal (or a failed part): everything stops by the one deadline.
		// A worker loop that outlives it is left behind; the process is ending.
		dctx, cancel := stop.context()
		select {
		case err = <-done:
		case <-dctx.Done():
			err = errors.New("workers still running at the shutdown deadline (ORGBRIDGE_SHUTDOWN_TIMEOUT); their messages are redelivered")
		}
		cancel()
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	dctx, cancel := stop.context()
	defer cancel()
	drain(dctx, []*nats.Conn{nc})
	return err
}
