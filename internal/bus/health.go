package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Dependency is something handlers cannot work without (Redis, typically) and
// how to tell whether it is reachable right now. See [RunnerConfig.Dependencies].
type Dependency struct {
	// Name labels the dependency in logs and in orgbridge_bus_dependency_up.
	Name string
	// Probe returns nil when the dependency answers (a Redis PING). It is called
	// with a ctx bounded by [RunnerConfig.ProbeTimeout].
	Probe func(ctx context.Context) error
}

// probe is a dependency as the gate sees it.
type probe struct {
	Dependency
	// pauses: consumption stops while it fails. NATS does not: without a
	// connection nothing is delivered anyway, and draining a subscription
	// while reconnecting could leave interest on the server that nobody reads.
	pauses bool
	// busy holds a token while a call of Probe runs, so a probe stuck past its
	// timeout is not called again on top of itself.
	busy chan struct{}
}

func newProbe(d Dependency, pauses bool) probe {
	return probe{Dependency: d, pauses: pauses, busy: make(chan struct{}, 1)}
}

// errProbeStuck is a probe's result while its previous call has not returned.
var errProbeStuck = errors.New("the previous probe has not returned")

// run calls Probe and returns its result, or a timeout once ctx ends even if
// Probe ignores ctx (a go-redis client without ContextTimeoutEnabled waits out
// its own read timeout and retries, whatever the ctx says).
func (p probe) run(ctx context.Context) error {
	select {
	case p.busy <- struct{}{}:
	default:
		return errProbeStuck
	}
	res := make(chan error, 1)
	go func() {
		defer func() { <-p.busy }()
		res <- p.Probe(ctx)
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer: %w", ctx.Err())
	}
}

// natsDependency is the runner's own connection, always probed: a handler whose
// publish failed because NATS is away is waiting for NATS, not failing.
func natsDependency(nc *nats.Conn) probe {
	return newProbe(Dependency{Name: "nats", Probe: func(context.Context) error {
		if nc.IsConnected() {
			return nil
		}
		return fmt.Errorf("connection %s", strings.ToLower(nc.Status().String()))
	}}, false)
}

// gate tracks whether every dependency is reachable. While one is not, the
// runner holds the messages it has instead of spending their deliveries (an
// unreachable dependency is not a bad message), and stops pulling while one of
// [RunnerConfig.Dependencies] is down.
//
// JetStream counts every delivery toward MaxDeliver, whatever the Nak says, so
// the only way not to spend deliveries on an outage is not to deliver: the
// consumers are drained (no pull requests left on the server) and every message
// already in hand keeps its one delivery, heartbeated with InProgress, until
// the probes pass again.
type gate struct {
	deps    []probe
	every   time.Duration
	timeout time.Duration
	log     *slog.Logger
	metrics *Metrics

	// changed gets a value after each pause or resume; the runner drains or
	// restarts its consumers when it reads one.
	changed chan struct{}

	mu       sync.Mutex
	healthy  bool
	paused   bool
	since    time.Time
	readyCh  chan struct{} // closed while healthy
	pausedCh chan struct{} // closed while paused
	probing  *probeRun
}

// probeRun is one round of probes; callers asking while it runs share it.
type probeRun struct {
	started time.Time
	done    chan struct{}
	ok      bool // set before done is closed
}

func newGate(deps []probe, every, timeout time.Duration, log *slog.Logger, m *Metrics) *gate {
	ready := make(chan struct{})
	close(ready)
	g := &gate{
		deps: deps, every: every, timeout: timeout, log: log, metrics: m,
		changed: make(chan struct{}, 1),
		healthy: true, since: time.Now(), readyCh: ready, pausedCh: make(chan struct{}),
	}
	for _, d := range deps {
		m.dependencyUp.WithLabelValues(d.Name).Set(1)
	}
	return g
}

// run probes every interval until ctx ends.
func (g *gate) run(ctx context.Context) {
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		g.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ready is closed once every dependency is reachable (at once if they are now).
func (g *gate) ready() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readyCh
}

// pausing is closed once consumption pauses (at once if it is paused now).
func (g *gate) pausing() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pausedCh
}

func (g *gate) isHealthy() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.healthy
}

func (g *gate) isPaused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// check probes every dependency and reports whether all answered. It never
// reuses a result from a round that began before it was called (a handler
// that just failed must learn about the state after its failure), but it joins
// a round that began since, so a burst of failures costs one round of probes.
func (g *gate) check(ctx context.Context) bool {
	asked := time.Now()
	for {
		g.mu.Lock()
		p := g.probing
		if p == nil {
			p = &probeRun{started: time.Now(), done: make(chan struct{})}
			g.probing = p
			g.mu.Unlock()
			p.ok = g.probe(ctx)
			g.mu.Lock()
			g.probing = nil
			g.mu.Unlock()
			close(p.done)
			return p.ok
		}
		g.mu.Unlock()
		select {
		case <-p.done:
		case <-ctx.Done():
			return g.isHealthy()
		}
		if !p.started.Before(asked) {
			return p.ok
		}
	}
}

// probe runs one round and records the result.
func (g *gate) probe(ctx context.Context) bool {
	var failed []string
	var errs []error
	pause := false
	for _, d := range g.deps {
		// Not cancelled with ctx: a shutdown must not read as an outage.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
		err := d.run(pctx)
		cancel()
		up := 1.0
		if err != nil {
			up = 0
			failed = append(failed, d.Name)
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
			pause = pause || d.pauses
		}
		g.metrics.dependencyUp.WithLabelValues(d.Name).Set(up)
	}
	g.set(failed, pause, errors.Join(errs...))
	return len(failed) == 0
}

func (g *gate) set(failed []string, pause bool, err error) {
	ok := len(failed) == 0
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if ok != g.healthy {
		if ok {
			close(g.readyCh)
			g.log.Info("dependencies reachable again; held messages run again",
				slog.Duration("unavailable_for", now.Sub(g.since).Round(time.Millisecond)))
		} else {
			g.readyCh = make(chan struct{})
			g.log.Warn("dependency unavailable; messages in hand are held without spending their deliveries",
				slog.String("dependencies", strings.Join(failed, ",")), slog.Bool("consumption_paused", pause), slog.Any("error", err))
		}
		g.healthy, g.since = ok, now
	}
	if pause != g.paused {
		if pause {
			close(g.pausedCh)
		} else {
			g.pausedCh = make(chan struct{})
		}
		g.paused = pause
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}
}

// handBackError is what a held message ends with when the runner shuts down
// before its dependencies came back: it is handed back (Nak) for another
// replica, which spends one delivery.
type handBackError struct{ err error }

func (e *handBackError) Error() string {
	msg := "bus: shutting down while a dependency is unavailable; message handed back"
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *handBackError) Unwrap() error { return e.err }

// holdThroughOutages is the runner's middleware between Recover and Timeout.
// A retryable failure while a probe fails is not the message's: the message
// keeps its delivery (heartbeated) until the probes pass, and the handler runs
// again. Only failures with every dependency reachable reach the runner's
// retry and dead-letter logic. It also keeps a message from starting while a
// dependency is known to be down.
func (r *Runner) holdThroughOutages(next Handler) Handler {
	return func(ctx context.Context, m *Message) error {
		var err error
		for {
			if !r.gate.isHealthy() {
				if werr := r.awaitDependencies(ctx, m, err); werr != nil {
					return werr
				}
			}
			m.hb.restart() // each run gets its full HandlerTimeout of heartbeats
			err = next(ctx, m)
			if err == nil || IsPermanent(err) {
				return err
			}
			m.hb.hold() // the probes may take up to ProbeTimeout
			if r.gate.check(ctx) {
				return err // everything answers: the failure is the message's own
			}
			r.metrics.holds.WithLabelValues(m.Consumer).Inc()
			LoggerFrom(ctx).Warn("handler failed while a dependency is unavailable; holding the message until it is back",
				slog.Any("error", err))
		}
	}
}

// awaitDependencies waits, heartbeating m, until the gate opens. It returns a
// [handBackError] when the runner starts shutting down first, and last (or
// ctx's error) when the handler's ctx is cancelled (a shutdown that ran out
// of time).
func (r *Runner) awaitDependencies(ctx context.Context, m *Message, last error) error {
	m.hb.hold()
	select {
	case <-r.gate.ready():
		return nil
	case <-r.stopping:
		return &handBackError{err: last}
	case <-ctx.Done():
		if last != nil {
			return last
		}
		return ctx.Err()
	}
}
