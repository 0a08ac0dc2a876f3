package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
)

// Runner runs durable pull consumers and their handlers. Register every
// consumer, then call Run; a Runner runs once.
type Runner struct {
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *Metrics
	cfg     RunnerConfig
	gate    *gate
	// stopping is closed when the shutdown begins: held messages stop waiting.
	stopping     chan struct{}
	stoppingOnce sync.Once

	mu      sync.Mutex
	regs    []*registration
	started bool
}

type registration struct {
	cfg     ConsumerConfig
	handler Handler
}

// NewRunner returns a Runner that consumes through js, logs to logger (nil:
// nowhere) and registers its metrics on reg (nil: unregistered).
func NewRunner(js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer, cfg RunnerConfig) (*Runner, error) {
	if js == nil {
		return nil, errors.New("bus: NewRunner needs a JetStream")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if logger == nil {
		logger = discardLogger
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var deps []probe
	if nc := js.Conn(); nc != nil {
		deps = append(deps, natsDependency(nc))
	}
	for _, d := range cfg.Dependencies {
		deps = append(deps, newProbe(d, true))
	}
	return &Runner{
		js: js, log: logger, metrics: m, cfg: cfg,
		gate:     newGate(deps, cfg.ProbeInterval, cfg.ProbeTimeout, logger, m),
		stopping: make(chan struct{}),
	}, nil
}

// Register adds a consumer and its handler. The runner wraps h in its standard
// chain (Logging, Metrics, Recover, holding through dependency outages,
// Timeout(HandlerTimeout), replay filtering) and then mws, the first outermost.
func (r *Runner) Register(cfg ConsumerConfig, h Handler, mws ...Middleware) error {
	if h == nil {
		return errors.New("bus: Register needs a handler")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	cfg = cfg.withDefaults()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return ErrAlreadyRunning
	}
	for _, g := range r.regs {
		if g.cfg.Stream == cfg.Stream && g.cfg.Durable == cfg.Durable {
			return fmt.Errorf("bus: consumer %s on %s registered twice", cfg.Durable, cfg.Stream)
		}
	}
	if cfg.Stream == events.StreamDLQ && cfg.Durable == r.cfg.CaptureDurable && !r.cfg.DisableMaxDeliveriesCapture {
		return fmt.Errorf("bus: consumer name %s is the max-deliveries capture's", cfg.Durable)
	}
	r.regs = append(r.regs, &registration{cfg: cfg, handler: r.wrap(cfg, h, mws)})
	return nil
}

func (r *Runner) wrap(cfg ConsumerConfig, h Handler, mws []Middleware) Handler {
	std := []Middleware{Logging(r.log), r.metrics.Middleware(), Recover(), r.holdThroughOutages, Timeout(cfg.HandlerTimeout), skipReplays}
	return chain(h, append(std, mws...)...)
}

// Run creates or updates the registered consumers and the max-deliveries
// capture, consumes until ctx ends, then shuts down within the runner's
// ShutdownTimeout: pulling stops, messages pulled but not started are handed
// back (Nak) for immediate redelivery, in-flight handlers finish and settle.
// Handlers still running at the deadline have their ctx cancelled and their
// messages left unacknowledged (JetStream redelivers them), and Run returns
// [ErrShutdownTimeout]. A graceful shutdown returns nil. Run also returns, after
// the same shutdown, when a consumer is deleted under it.
//
// While one of [RunnerConfig.Dependencies] does not answer, Run drains its
// consumers so that nothing more is delivered, and resumes them once the
// probes pass again.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return ErrAlreadyRunning
	}
	r.started = true
	regs := append([]*registration(nil), r.regs...)
	r.mu.Unlock()
	if !r.cfg.DisableMaxDeliveriesCapture {
		regs = append(regs, r.captureRegistration())
	}
	if len(regs) == 0 {
		return ErrNoConsumers
	}

	// Handlers outlive ctx during the drain; abort ends them at the deadline.
	handlerCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	probeCtx, stopProbes := context.WithCancel(ctx)
	probing := make(chan struct{})
	go func() { defer close(probing); r.gate.run(probeCtx) }()
	defer func() { stopProbes(); <-probing }()
	fatal := make(chan error, len(regs))
	runs := make([]*consumerRun, 0, len(regs))
	var startErr error
	for _, reg := range regs {
		run, err := r.start(ctx, handlerCtx, reg, fatal)
		if err != nil {
			startErr = err
			break
		}
		runs = append(runs, run)
	}
wait:
	for startErr == nil {
		select {
		case <-ctx.Done():
			break wait
		case startErr = <-fatal:
		case <-r.gate.changed:
			startErr = r.follow(runs)
		}
	}
	return errors.Join(startErr, r.shutdown(runs, abort))
}

// follow pauses every consumer while a dependency is down and resumes them
// when it is back.
func (r *Runner) follow(runs []*consumerRun) error {
	paused := r.gate.isPaused()
	for _, run := range runs {
		if paused {
			run.pause()
			continue
		}
		if err := run.resume(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) start(ctx, handlerCtx context.Context, reg *registration, fatal chan<- error) (*consumerRun, error) {
	var cons jetstream.Consumer
	what := "consumer " + reg.cfg.Durable + " on " + reg.cfg.Stream
	err := untilJetStreamAnswers(ctx, r.log, r.cfg.StartupWait, what, func(ctx context.Context) error {
		var err error
		cons, err = r.js.CreateOrUpdateConsumer(ctx, reg.cfg.Stream, reg.cfg.jsConfig())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bus: creating consumer %s on %s: %w", reg.cfg.Durable, reg.cfg.Stream, err)
	}
	run := &consumerRun{
		r:          r,
		cfg:        reg.cfg,
		handler:    reg.handler,
		handlerCtx: handlerCtx,
		cons:       cons,
		fatal:      fatal,
		slots:      make(chan struct{}, reg.cfg.Concurrency),
		stopping:   make(chan struct{}),
		log:        r.log.With(slog.String("stream", reg.cfg.Stream), slog.String("consumer", reg.cfg.Durable)),
	}
	cc, err := run.consume()
	if err != nil {
		return nil, err
	}
	run.mu.Lock()
	run.cc = cc
	run.mu.Unlock()
	return run, nil
}

// consume starts pulling. Pull no more than the pool can start: a message
// waits in the client for at most one handler run, well inside AckWait (and
// it is heartbeated meanwhile).
func (c *consumerRun) consume() (jetstream.ConsumeContext, error) {
	cc, err := c.cons.Consume(c.receive,
		jetstream.PullMaxMessages(c.cfg.Concurrency),
		jetstream.PullExpiry(c.cfg.PullExpiry), jetstream.PullHeartbeat(c.cfg.PullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrBadRequest) {
				select {
				case c.fatal <- fmt.Errorf("bus: consumer %s on %s stopped: %w", c.cfg.Durable, c.cfg.Stream, err):
				default:
				}
				return
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, jetstream.ErrConsumerLeadershipChanged) ||
				errors.Is(err, jetstream.ErrServerShutdown) || errors.Is(err, nats.ErrNoResponders) {
				// A NATS cluster change (a node stopping, the consumer's leader
				// moving, an election) took the pull request: nats.go pulls again,
				// at once or after two missed heartbeats.
				c.log.Info("pull request lost to a NATS cluster change; pulling again", slog.Any("error", err))
				return
			}
			c.log.Warn("consume error", slog.Any("error", err))
		}))
	if err != nil {
		return nil, fmt.Errorf("bus: consuming %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	return cc, nil
}

func (r *Runner) shutdown(runs []*consumerRun, abort context.CancelFunc) error {
	deadline := time.Now().Add(r.cfg.ShutdownTimeout)
	grace := time.NewTimer(r.cfg.ShutdownTimeout * 9 / 10)
	defer grace.Stop()

	r.stoppingOnce.Do(func() { close(r.stopping) })
	for _, run := range runs {
		run.stop()
	}
	idle := true
closing:
	for _, run := range runs {
		for _, cc := range run.contexts() {
			select {
			case <-cc.Closed():
			case <-grace.C:
				idle = false
				break closing
			}
		}
	}
	for _, run := range runs {
		if !idle {
			break
		}
		select {
		case <-run.idle():
		case <-grace.C:
			idle = false
		}
	}
	if !idle {
		running := 0
		for _, run := range runs {
			run.aborted.Store(true)
			running += run.running()
		}
		abort()
		// Give cancelled handlers the rest of the timeout to return, so their
		// goroutines end before Run does when they honour ctx.
		last := time.NewTimer(time.Until(deadline))
		defer last.Stop()
	wait:
		for _, run := range runs {
			select {
			case <-run.idle():
			case <-last.C:
				break wait
			}
		}
		r.flush(deadline)
		return fmt.Errorf("%w (%d handlers)", ErrShutdownTimeout, running)
	}
	r.flush(deadline)
	return nil
}

// flush makes sure the acks sent during the drain reached the server.
func (r *Runner) flush(deadline time.Time) {
	nc := r.js.Conn()
	if nc == nil || !nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer cancel()
	if err := nc.FlushWithContext(ctx); err != nil {
		r.log.Warn("flushing acks at shutdown", slog.Any("error", err))
	}
}

// consumerRun is one consumer being consumed.
type consumerRun struct {
	r          *Runner
	cfg        ConsumerConfig
	handler    Handler
	handlerCtx context.Context
	cons       jetstream.Consumer
	fatal      chan<- error
	slots      chan struct{}
	stopping   chan struct{}
	aborted    atomic.Bool
	log        *slog.Logger

	mu       sync.Mutex
	cc       jetstream.ConsumeContext   // the current one
	drained  []jetstream.ConsumeContext // paused ones, maybe still draining
	paused   bool
	inflight int
	closing  bool
	idleCh   chan struct{}
}

// receive is the Consume callback. It blocks until a handler slot is free, so
// the client pulls no further ahead than PullMaxMessages; but not while a
// dependency is down: the runner is then draining the consume to stop pulling,
// and the drain must reach every buffered message so each is heartbeated (and
// its delivery kept) instead of timing out in the client's buffer.
func (c *consumerRun) receive(jm jetstream.Msg) {
	hb := startHeartbeat(jm, c.cfg.heartbeatEvery(), c.cfg.HandlerTimeout, c.r.gate)
	if !c.add() {
		hb.stop()
		c.handBack(jm)
		return
	}
	select {
	case c.slots <- struct{}{}:
		go c.process(jm, hb)
	case <-c.stopping:
		c.unstarted(jm, hb)
	case <-c.r.gate.pausing():
		hb.hold()
		go c.await(jm, hb)
	}
}

// await starts a message that arrived while a dependency was down once a slot
// is free (the handler chain then waits for the dependency).
func (c *consumerRun) await(jm jetstream.Msg, hb *heartbeat) {
	select {
	case c.slots <- struct{}{}:
		c.process(jm, hb)
	case <-c.stopping:
		c.unstarted(jm, hb)
	}
}

// unstarted hands back a message that was counted in flight but never started.
func (c *consumerRun) unstarted(jm jetstream.Msg, hb *heartbeat) {
	hb.stop()
	c.handBack(jm)
	c.done()
}

// handBack returns a message that was pulled but not started during shutdown,
// so another replica gets it now rather than after AckWait.
func (c *consumerRun) handBack(jm jetstream.Msg) {
	if err := jm.Nak(); err != nil {
		c.log.Debug("handing back an unstarted message", slog.Any("error", err))
	}
}

func (c *consumerRun) process(jm jetstream.Msg, hb *heartbeat) {
	defer c.done()
	defer func() { <-c.slots }()
	defer hb.stop()

	m, err := newMessage(jm, c.cfg.MaxDeliver)
	if err != nil {
		// Not a JetStream delivery at all: nothing to redeliver or dead-letter.
		c.log.Error("dropping a message without JetStream metadata", slog.Any("error", err))
		_ = jm.Term()
		return
	}
	m.hb = hb
	hb.restart() // the handler gets its full HandlerTimeout of heartbeats
	herr := c.handler(c.handlerCtx, m)
	hb.stop()
	if c.aborted.Load() {
		c.log.Warn("shutdown timed out before the handler finished; message left for redelivery",
			slog.Uint64("stream_seq", m.StreamSeq), slog.Any("error", herr))
		return
	}
	c.settle(m, jm, herr)
}

func (c *consumerRun) settle(m *Message, jm jetstream.Msg, herr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.handlerCtx), c.r.cfg.PublishTimeout)
	defer cancel()
	switch classify(m, herr) {
	case outcomeAck:
		var err error
		if c.cfg.DoubleAck {
			err = jm.DoubleAck(ctx)
		} else {
			err = jm.Ack()
		}
		c.settleErr(m, "ack", err)
	case outcomeRetry:
		c.settleErr(m, "nak", jm.NakWithDelay(c.cfg.retryDelay(m.Deliveries, herr)))
	case outcomeDeadLetter:
		c.deadLetter(ctx, m, jm, herr)
	case outcomeHandBack:
		c.settleErr(m, "nak", jm.Nak())
	}
}

func (c *consumerRun) deadLetter(ctx context.Context, m *Message, jm jetstream.Msg, herr error) {
	reason := truncate("dead-lettered: "+herr.Error(), 256)
	if m.Stream == events.StreamDLQ {
		// A copy would land in the stream this consumer reads and could loop.
		c.log.Error("consumer on the DLQ stream gave up on a message; terminated without a copy",
			slog.Uint64("stream_seq", m.StreamSeq), slog.Any("error", herr))
		c.settleErr(m, "term", jm.TermWithReason(reason))
		return
	}
	err := c.r.publishDLQ(ctx, deadLetter{
		stream: m.Stream, seq: m.StreamSeq, subject: m.Subject, consumer: m.Consumer,
		deliveries: m.Deliveries, header: m.Header, data: m.Data, reason: herr.Error(),
	})
	if err != nil {
		// Never Term without a stored copy: try again later. If this was the last
		// delivery, the server's MAX_DELIVERIES advisory brings it to the DLQ.
		c.settleErr(m, "dead_letter", err)
		c.settleErr(m, "nak", jm.NakWithDelay(c.cfg.retryDelay(m.Deliveries, err)))
		return
	}
	c.r.metrics.deadLetters.WithLabelValues(m.Stream, m.Consumer, "handler").Inc()
	c.settleErr(m, "term", jm.TermWithReason(reason))
}

func (c *consumerRun) settleErr(m *Message, action string, err error) {
	if err == nil {
		return
	}
	c.r.metrics.settleErrors.WithLabelValues(c.cfg.Durable, action).Inc()
	c.log.Warn("settling message failed; it will be redelivered", slog.String("action", action),
		slog.Uint64("stream_seq", m.StreamSeq), slog.Any("error", err))
}

// stop ends pulling: Drain hands every buffered message to receive, which
// hands it back because stopping is closed.
func (c *consumerRun) stop() {
	c.mu.Lock()
	c.closing = true
	close(c.stopping)
	cc := c.cc
	c.mu.Unlock()
	cc.Drain()
}

// pause stops pulling while a dependency is down: after the drain no pull
// request is left on the server, so nothing more is delivered (and no
// delivery counted) until resume.
func (c *consumerRun) pause() {
	c.mu.Lock()
	if c.paused || c.closing {
		c.mu.Unlock()
		return
	}
	c.paused = true
	cc := c.cc
	c.mu.Unlock()
	c.log.Info("consumption paused while a dependency is unavailable")
	cc.Drain()
}

// resume pulls again after pause.
func (c *consumerRun) resume() error {
	c.mu.Lock()
	if !c.paused || c.closing {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	cc, err := c.consume()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.drained[:0]
	for _, d := range append(c.drained, c.cc) {
		select {
		case <-d.Closed():
		default:
			live = append(live, d)
		}
	}
	c.drained, c.cc, c.paused = live, cc, false
	c.log.Info("consumption resumed")
	return nil
}

// contexts are the consume contexts that may still deliver: the current one
// and paused ones still draining.
func (c *consumerRun) contexts() []jetstream.ConsumeContext {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(append([]jetstream.ConsumeContext(nil), c.drained...), c.cc)
}

func (c *consumerRun) add() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.inflight++
	return true
}

func (c *consumerRun) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if c.inflight == 0 && c.idleCh != nil {
		close(c.idleCh)
		c.idleCh = nil
	}
}

func (c *consumerRun) running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight
}

// idle is closed once no handler runs; call it only after stop.
func (c *consumerRun) idle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if c.idleCh == nil {
		c.idleCh = make(chan struct{})
	}
	return c.idleCh
}

// heartbeat marks a message in progress every interval, from when it is
// pulled until its handler returns, but for no longer than limit after the
// handler started: a handler that ignores its ctx past HandlerTimeout is
// treated as hung and its message redelivered, unless a dependency is down
// (it is then waiting on it, not hung: the message is kept until the handler
// returns and can be held). While the message is held for an unavailable
// dependency there is no limit. A nil heartbeat (a [Message] built by a test)
// does nothing.
type heartbeat struct {
	msg   jetstream.Msg
	every time.Duration
	limit time.Duration
	gate  *gate

	mu      sync.Mutex
	timer   *time.Timer
	until   time.Time // zero: no limit
	stopped bool
}

func startHeartbeat(msg jetstream.Msg, every, limit time.Duration, g *gate) *heartbeat {
	h := &heartbeat{msg: msg, every: every, limit: limit, gate: g, until: time.Now().Add(limit)}
	h.mu.Lock() // the first beat may come before the timer is stored
	h.timer = time.AfterFunc(every, h.beat)
	h.mu.Unlock()
	return h
}

func (h *heartbeat) beat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	if !h.until.IsZero() && time.Now().After(h.until) && (h.gate == nil || h.gate.isHealthy()) {
		return
	}
	_ = h.msg.InProgress() // a lost beat only risks a redelivery
	h.timer.Reset(h.every)
}

// restart gives the message limit more of heartbeats from now.
func (h *heartbeat) restart() { h.extend(false) }

// hold heartbeats the message until the next restart or stop, however long.
func (h *heartbeat) hold() { h.extend(true) }

func (h *heartbeat) extend(unlimited bool) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if unlimited {
		h.until = time.Time{}
	} else {
		h.until = time.Now().Add(h.limit)
	}
	if !h.stopped {
		h.timer.Reset(h.every)
	}
}

func (h *heartbeat) stop() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.timer.Stop()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}
