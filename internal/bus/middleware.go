package bus

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/telemetry"
)

// chain wraps h so that mws[0] is the outermost middleware.
func chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

type loggerKey struct{}

var discardLogger = slog.New(slog.DiscardHandler)

// WithLogger returns ctx carrying l, for [LoggerFrom].
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger [Logging] put in ctx, carrying the message's
// consumer, subject, sequence, deliveries, identity, tenant and request id; a
// logger that discards everything when there is none.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return discardLogger
}

// Logging puts a logger with the message's fields in the handler's ctx (see
// [LoggerFrom]) and logs the outcome: debug on success, warn on a retry, error
// on a dead letter. The request id from [events.HeaderRequestID] correlates
// the lines with the ingress's.
func Logging(base *slog.Logger) Middleware {
	if base == nil {
		base = discardLogger
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			l := base.With(
				slog.String("consumer", m.Consumer),
				slog.String("stream", m.Stream),
				slog.String("subject", m.Subject),
				slog.Uint64("stream_seq", m.StreamSeq),
				slog.Uint64("deliveries", m.Deliveries),
				slog.String("identity", m.Identity),
				slog.String("tenant", m.Tenant),
				slog.String("request_id", m.RequestID()),
			)
			start := time.Now()
			err := next(WithLogger(ctx, l), m)
			took := slog.Duration("took", time.Since(start))
			switch classify(m, err) {
			case outcomeAck:
				l.Debug("message handled", took)
			case outcomeRetry:
				l.Warn("handler failed; will retry", took, slog.Any("error", err))
			case outcomeDeadLetter:
				l.Error("handler failed; dead-lettering", took, slog.Any("error", err), slog.Bool("permanent", IsPermanent(err)))
			case outcomeHandBack:
				l.Info("shutting down while a dependency is unavailable; message handed back", took, slog.Any("error", err))
			}
			return err
		}
	}
}

// Recover turns a handler panic into a permanent error wrapping
// [ErrHandlerPanicked] (the same input would panic again), logging the stack.
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) (err error) {
			defer func() {
				if p := recover(); p != nil {
					LoggerFrom(ctx).Error("handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
					err = Permanent(fmt.Errorf("%w: %v", ErrHandlerPanicked, p))
				}
			}()
			return next(ctx, m)
		}
	}
}

// Timeout gives the handler a ctx that ends after d (no limit when d <= 0).
// Handlers must honour it; a timed-out handler's error is retried like any other.
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		if d <= 0 {
			return next
		}
		return func(ctx context.Context, m *Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, m)
		}
	}
}

// skipReplays acknowledges, without running the handler, a replayed copy meant
// for another durable consumer ([events.HeaderReplayFor]).
func skipReplays(next Handler) Handler {
	return func(ctx context.Context, m *Message) error {
		if target := m.Header.Get(events.HeaderReplayFor); target != "" && target != m.Consumer {
			LoggerFrom(ctx).Debug("replay meant for another consumer; skipped", slog.String("replay_for", target))
			return nil
		}
		return next(ctx, m)
	}
}

// Metrics holds the runtime's Prometheus collectors.
type Metrics struct {
	messages     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	deadLetters  *prometheus.CounterVec
	settleErrors *prometheus.CounterVec
	dependencyUp *prometheus.GaugeVec
	holds        *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg (nil: not
// registered). Collectors another Metrics already registered on reg are reused,
// so several runners can share one registry.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_bus_messages_total",
			Help: "Messages handled, by consumer and outcome (ack, retry, dead_letter).",
		}, []string{"consumer", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orgbridge_bus_handler_duration_seconds",
			Help:    "Time handlers took, by consumer.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"consumer"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_bus_dead_letters_total",
			Help: "Dead letters stored, by original stream, consumer and source (handler or max_deliveries).",
		}, []string{"stream", "consumer", "source"}),
		settleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_bus_settle_errors_total",
			Help: "Failures to ack, nak, term or dead-letter a message, by consumer and action.",
		}, []string{"consumer", "action"}),
		dependencyUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orgbridge_bus_dependency_up",
			Help: "Whether a dependency handlers need answered its last probe (1) or not (0); at 0 consumption is paused.",
		}, []string{"dependency"}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_bus_outage_holds_total",
			Help: "Handler failures during a dependency outage that held the message instead of spending a delivery, by consumer.",
		}, []string{"consumer"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.messages, err = register(reg, m.messages); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.deadLetters, err = register(reg, m.deadLetters); err != nil {
		return nil, err
	}
	if m.settleErrors, err = register(reg, m.settleErrors); err != nil {
		return nil, err
	}
	if m.dependencyUp, err = register(reg, m.dependencyUp); err != nil {
		return nil, err
	}
	if m.holds, err = register(reg, m.holds); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	c, err := telemetry.Register(reg, c)
	if err != nil {
		return c, fmt.Errorf("bus: registering metrics: %w", err)
	}
	return c, nil
}

// Middleware counts handler outcomes and times handlers.
func (mt *Metrics) Middleware() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			start := time.Now()
			err := next(ctx, m)
			mt.duration.WithLabelValues(m.Consumer).Observe(time.Since(start).Seconds())
			mt.messages.WithLabelValues(m.Consumer, string(classify(m, err))).Inc()
			return err
		}
	}
}

// DefaultProcessedTTL is how long [Idempotent] remembers a processed message
// when given no ttl: the default stream max age, so a replay of anything still
// in the stream is recognised.
const DefaultProcessedTTL = events.DefaultMaxAge

// ProcessedKey is the idempotency record of message m for its consumer:
// ob:{tenant}:bus:processed:<consumer>:<identity>.
func ProcessedKey(m *Message) string {
	return store.Key(m.Tenant, "bus", "processed", m.Consumer, m.Identity)
}

// Idempotent skips a message this consumer already processed (same
// [Message.Identity], so redeliveries, replays and re-drives) and records it
// processed after the handler returns nil, for ttl (0: [DefaultProcessedTTL]).
//
// It is for handlers whose effects are themselves idempotent: a crash between
// the effect and the record runs the handler again. Handlers needing more use
// one of two patterns:
//   - Effects inside Redis: one Lua script that checks the processed key and the
//     lock token, applies and records, atomically: store.ApplyOnce with
//     [ProcessedKey] (the same record, so this middleware may stay in front).
//   - External effects (Slack, the org, SCIM): record "in flight" before the
//     call and "done" after ([IdempotentExternal]); a redelivery that finds the
//     record in flight waits (NakWithDelay) instead of calling again.
func Idempotent(rec *store.Idempotency, ttl time.Duration) Middleware {
	if ttl <= 0 {
		ttl = DefaultProcessedTTL
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			key := ProcessedKey(m)
			state, err := rec.Check(ctx, key)
			if err != nil {
				return err
			}
			switch state {
			case store.StateDone:
				LoggerFrom(ctx).Debug("already processed; skipped")
				return nil
			case store.StateInFlight:
				return RetryAfter(ErrInFlight, DefaultRetryMin)
			}
			if err := next(ctx, m); err != nil {
				return err
			}
			if err := rec.Done(ctx, key, ttl); err != nil {
				// The effect happened and is idempotent: acking is right, a later
				// duplicate will just do it again.
				LoggerFrom(ctx).Warn("could not record message processed", slog.Any("error", err))
			}
			return nil
		}
	}
}

// IdempotentExternal guards a handler whose effect is an external call that
// must not be repeated while it may still be happening: it records the message
// in flight (for inFlight, which should exceed the handler timeout) before the
// handler, done (for done, 0: [DefaultProcessedTTL]) after it succeeds, and
// forgets the record when it fails so a retry can begin again. A delivery that
// finds the record done is skipped; one that finds it in flight is retried
// after wait, with an error wrapping [ErrInFlight]. If the worker dies
// mid-call the record expires after inFlight and the message is handled again.
func IdempotentExternal(rec *store.Idempotency, inFlight, done, wait time.Duration) Middleware {
	if done <= 0 {
		done = DefaultProcessedTTL
	}
	if wait <= 0 {
		wait = DefaultRetryMin
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			key := ProcessedKey(m)
			began, err := rec.Begin(ctx, key, inFlight)
			if err != nil {
				return err
			}
			if !began {
				state, err := rec.Check(ctx, key)
				if err != nil {
					return err
				}
				switch state {
				case store.StateDone:
					LoggerFrom(ctx).Debug("already processed; skipped")
					return nil
				case store.StateInFlight:
					return RetryAfter(ErrInFlight, wait)
				}
				// The record expired between Begin and Check: try again soon.
				return RetryAfter(ErrInFlight, 0)
			}
			if herr := next(ctx, m); herr != nil {
				if err := rec.Forget(context.WithoutCancel(ctx), key); err != nil {
					LoggerFrom(ctx).Warn("could not clear in-flight record; retries wait for it to expire", slog.Any("error", err))
				}
				return herr
			}
			if err := rec.Done(context.WithoutCancel(ctx), key, done); err != nil {
				LoggerFrom(ctx).Warn("could not record message processed", slog.Any("error", err))
			}
			return nil
		}
	}
}
