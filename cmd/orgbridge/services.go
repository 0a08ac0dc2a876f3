package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/telemetry"
)

// configEnv lists config.Vars for a command's --help.
func configEnv(names ...string) []envVar {
	var out []envVar
	for _, v := range config.Vars() {
		for _, n := range names {
			if v.Name == n {
				help := v.Help
				if v.Default != "" {
					help += " (default " + v.Default + ")"
				}
				out = append(out, envVar{v.Name, help})
			}
		}
	}
	return out
}

// serviceFlags are the flags the long-running commands share; each overrides
// its environment variable.
type serviceFlags struct {
	httpAddr, natsURL, redisURL string
}

func (f *serviceFlags) register(fs *flag.FlagSet, http, nats bool) {
	if http {
		fs.StringVar(&f.httpAddr, "http-addr", "", "address the ingress listens on (ORGBRIDGE_HTTP_ADDR)")
	}
	if nats {
		fs.StringVar(&f.natsURL, "nats-url", "", "NATS server URL (NATS_URL)")
	}
	fs.StringVar(&f.redisURL, "redis-url", "", "Redis URL (REDIS_URL)")
}

// load reads the environment with the flags laid over it. A bad value is a
// usage error naming the variable (exit code 2).
func (f *serviceFlags) load(c *cli) (config.Config, error) {
	overrides := map[string]string{"ORGBRIDGE_HTTP_ADDR": f.httpAddr, "NATS_URL": f.natsURL, "REDIS_URL": f.redisURL}
	cfg, err := config.Load(func(name string) string {
		if v := overrides[name]; v != "" {
			return v
		}
		return c.getenv(name)
	})
	var ce *config.Error
	if errors.As(err, &ce) {
		return cfg, usagef("%v", ce)
	}
	return cfg, err
}

func newLogger(c *cli, cfg config.Config) *slog.Logger {
	return telemetry.NewLogger(c.stderr, cfg.LogFormat, cfg.LogLevel)
}

// connectService connects a long-running part to NATS: it keeps reconnecting
// forever and logs connection changes.
func connectService(url, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", url, err)
	}
	return nc, nil
}

// natsReady is a /readyz check (redisReady is in redis.go).
func natsReady(conns ...*nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		for _, nc := range conns {
			if s := nc.Status(); s != nats.CONNECTED {
				return fmt.Errorf("NATS connection is %s", s)
			}
		}
		return nil
	}
}

// natsWatch holds what a worker process's GET /healthz and /readyz watch: its
// NATS connections (see ingress.NATSAlive), made after the endpoints are up,
// and whether its runner is consuming. A nil *natsWatch watches nothing.
type natsWatch struct {
	mu    sync.Mutex
	conns []*nats.Conn
	// running is whether the workers' runner is consuming, for /readyz.
	running atomic.Bool
}

func (w *natsWatch) add(nc *nats.Conn) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conns = append(w.conns, nc)
}

func (w *natsWatch) watched() []*nats.Conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.conns)
}

// alive is the /healthz check: it fails once a watched connection is closed.
func (w *natsWatch) alive(ctx context.Context) error { return ingress.NATSAlive(w.watched()...)(ctx) }

func (w *natsWatch) setRunning(v bool) {
	if w != nil {
		w.running.Store(v)
	}
}

// connected is a /readyz check: every watched connection is connected.
func (w *natsWatch) connected(ctx context.Context) error {
	conns := w.watched()
	if len(conns) == 0 {
		return errors.New("not connected to NATS yet")
	}
	return natsReady(conns...)(ctx)
}

// runnerRunning is a /readyz check: the workers' runner is consuming.
func (w *natsWatch) runnerRunning(context.Context) error {
	if !w.running.Load() {
		return errors.New("the workers are not consuming (starting, stopping or failed; see the log)")
	}
	return nil
}

// ingressConns opens the connections the ingress publishes on. Publishes fail at
// once while disconnected (no reconnect buffer), so Slack gets a 503 and
// retries instead of the ingress holding events it has not stored.
func ingressConns(url string, n int, publishTimeout time.Duration, log *slog.Logger, extra ...nats.Option) ([]*nats.Conn, []jetstream.JetStream, error) {
	var conns []*nats.Conn
	var jss []jetstream.JetStream
	for i := 0; i < n; i++ {
		nc, err := connectService(url, fmt.Sprintf("orgbridge-ingress-%d", i), log, append([]nats.Option{nats.ReconnectBufSize(-1)}, extra...)...)
		if err != nil {
			closeAll(conns)
			return nil, nil, err
		}
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishTimeout))
		if err != nil {
			closeAll(append(conns, nc))
			return nil, nil, err
		}
		conns = append(conns, nc)
		jss = append(jss, js)
	}
	return conns, jss, nil
}

func closeAll(conns []*nats.Conn) {
	for _, nc := range conns {
		nc.Close()
	}
}

// shutdown is a process's one shutdown deadline: it starts when ctx (the
// signal) ends and lasts timeout, and every stage (drain period, HTTP,
// consumers, NATS) gets what is left of it rather than a timeout of its own.
type shutdown struct {
	timeout time.Duration
	once    sync.Once
	at      time.Time
}

func newShutdown(ctx context.Context, timeout time.Duration) *shutdown {
	s := &shutdown{timeout: timeout}
	context.AfterFunc(ctx, s.start)
	return s
}

// start fixes the deadline; the first of the signal and a stage asking wins.
func (s *shutdown) start() { s.once.Do(func() { s.at = time.Now().Add(s.timeout) }) }

// left is how long the shutdown may still take.
func (s *shutdown) left() time.Duration {
	s.start()
	return time.Until(s.at)
}

// context ends at the deadline.
func (s *shutdown) context() (context.Context, context.CancelFunc) {
	s.start()
	return context.WithDeadline(context.Background(), s.at)
}

// serveHTTP serves srv until ctx ends, then shuts it down by stop's deadline:
// it keeps serving for drainFor (the ingress's drain period, while its /readyz
// fails), then stops accepting and lets requests in flight finish (each waits
// at most for its publish ack); at the deadline it closes what is still open.
func serveHTTP(ctx context.Context, srv *http.Server, l net.Listener, stop *shutdown, drainFor time.Duration, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("HTTP server on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	if drainFor > 0 {
		log.Info("draining HTTP server: still serving, /readyz failing", "addr", l.Addr().String(), "for", drainFor.String())
		t := time.NewTimer(min(drainFor, stop.left()))
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("HTTP server on %s: %w", l.Addr(), err)
		}
	}
	log.Info("shutting down HTTP server", "addr", l.Addr().String())
	sctx, cancel := stop.context()
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		<-errc
		return fmt.Errorf("HTTP server on %s: requests still in progress at the shutdown deadline (ORGBRIDGE_SHUTDOWN_TIMEOUT) were cut off: %w", l.Addr(), err)
	}
	<-errc
	return nil
}

// drain drains conns: each stops its subscriptions, flushes what it has
// buffered and closes (nats.DrainTimeout, given when it connected, bounds
// nats.go's own part); whatever is still open when ctx ends is closed.
func drain(ctx context.Context, conns []*nats.Conn) {
	var closing []chan nats.Status
	for _, nc := range conns {
		closed := nc.StatusChanged(nats.CLOSED)
		defer nc.RemoveStatusListener(closed)
		if nc.IsClosed() || nc.Drain() != nil {
			continue
		}
		closing = append(closing, closed)
	}
	for _, closed := range closing {
		select {
		case <-closed:
		case <-ctx.Done():
		}
	}
	closeAll(conns)
}

// loadService reads the configuration of a long-running part, checks what the
// production shape needs, and connects to Redis.
func loadService(ctx context.Context, c *cli, f *serviceFlags, needSigningSecret bool) (config.Config, *slog.Logger, redis.UniversalClient, error) {
	cfg, err := f.load(c)
	if err != nil {
		return cfg, nil, nil, err
	}
	if err := cfg.RequireProduction(needSigningSecret); err != nil {
		return cfg, nil, nil, usagef("%v", err)
	}
	log := newLogger(c, cfg)
	rdb, err := openRedis(ctx, cfg.Redis)
	return cfg, log, rdb, err
}

// appEnv are the variables every part that talks to Slack and the org reads,
// and the Redis settings besides REDIS_URL (redisShapeEnv).
var appEnv = append([]string{"ORGBRIDGE_PUBLIC_URL", "ORGBRIDGE_ENCRYPTION_KEYS", "SLACK_API_URL", "SLACK_OAUTH_URL",
	"SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_APP_ID", "SLACK_SCOPES", "ORG_LOGIN_URL", "ORG_CLIENT_ID", "ORG_CLIENT_SECRET"}, redisShapeEnv...)
