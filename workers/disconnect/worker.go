// Package disconnect is the disconnect worker: it turns requests from other
// systems to disconnect an external organization from an Enterprise Grid org
// (team.externalTeams.disconnect) into a workflow an auditor can trust —
// validated, de-duplicated per target, paced within Slack's Tier 1 across
// every replica, confirmed with team.externalTeams.list, safe against a worker
// dying at any point, and recorded in an append-only audit trail. It also runs
// per-enterprise policies (an allowlist, or no activity for N days) on a cron
// schedule.
//
// # Crash safety
//
// The Slack call is the one effect that must not repeat after it succeeded.
// Before the call the worker records "in flight" (ob:{E}:disconnect:call:<id>),
// after an ok answer "done", and only then changes the request's state and
// lets the message be acknowledged. A worker killed
//   - before "in flight": the redelivery simply calls;
//   - after "done": the redelivery sees done and moves on to confirmation;
//   - between the two (the call may or may not have reached Slack): the
//     redelivery never calls again. It asks team.externalTeams.list: a team
//     shown DISCONNECTED (or gone) means the call worked (the request is
//     submitted and completed); a team still connected is checked again with
//     backoff, since Slack disconnects in the background, and past
//     ConfirmDeadline the request ends "unconfirmed" for a person to check —
//     a new request is how to try again.
//
// A call that got no usable answer (a timeout after the request was sent, a
// 200 that is not JSON) or an answer after which Slack may still have acted
// ([MaybeActed]: internal_error, fatal_error, HTTP 500/502/504) is treated the
// same way, except that Slack answered, so no call is still running: a team
// still listed connected past ConfirmDeadline proves Slack did not act, and
// only then is the method called again (MaxAttempts calls in all). A call
// refused before it was sent, a 429, a 503 and the other "ok": false answers
// are definite, so the record is cleared and the classification table
// ([Classify]) decides whether to try again.
//
// Per-request Redis locks keep two deliveries of one request from running at
// once; records are written before results are published, and a redelivery
// re-publishes any state whose result was not yet stored (result message ids
// make that idempotent).
package disconnect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Deps are the worker's dependencies.
type Deps struct {
	JS            jetstream.JetStream
	Redis         redis.UniversalClient
	Slack         *slackapi.Client
	Installations Installations
	Logger        *slog.Logger
	// Registerer takes the worker's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// Worker handles disconnect requests and runs disconnect policies.
type Worker struct {
	cfg      Config
	js       jetstream.JetStream
	pub      *events.Publisher
	store    *Store
	installs Installations
	slack    *slackapi.Client
	pacer    *slackapi.Pacer
	locker   *store.Locker
	idem     *store.Idempotency
	log      *slog.Logger
	metrics  *metrics

	// afterCall runs after a successful disconnect call, before "done" is
	// recorded; a non-nil error ends the handler there (tests simulate kill -9).
	afterCall func(ctx context.Context, requestID string) error
	// beforeBegin runs once the pacer granted a disconnect call, before it is
	// recorded in flight; a non-nil error ends the handler there (tests).
	beforeBegin func(ctx context.Context, requestID string) error
}

// New builds a worker.
func New(d Deps, cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.JS == nil:
		return nil, errors.New("disconnect: New needs JetStream")
	case d.Redis == nil:
		return nil, errors.New("disconnect: New needs Redis")
	case d.Slack == nil:
		return nil, errors.New("disconnect: New needs a Slack client")
	case d.Installations == nil:
		return nil, errors.New("disconnect: New needs Installations")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.MaxBlock == 0 {
		cfg.MaxBlock = min(3*slackapi.PaceEvery(slackapi.Tier1, cfg.TimeScale, cfg.PaceMargin, cfg.PaceMinGap), 2*time.Second)
	}
	return &Worker{
		cfg: cfg, js: d.JS, pub: events.NewPublisher(d.JS), store: NewStore(d.Redis, cfg.RecordTTL, cfg.AuditRetention),
		installs: d.Installations, slack: d.Slack, pacer: slackapi.NewPacer(d.Redis),
		locker: store.NewLocker(d.Redis), idem: store.NewIdempotency(d.Redis), log: d.Logger, metrics: m,
	}, nil
}

// Store gives read access to requests, the audit trail and policies.
func (w *Worker) Store() *Store { return w.store }

// ConsumerConfig is the worker's durable consumer: requests only (results go
// to other systems), unlimited deliveries because pacing and confirmation
// wait through NakWithDelay, with the worker bounding its own retries.
func (w *Worker) ConsumerConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         events.StreamDisconnect,
		Durable:        w.cfg.Durable,
		FilterSubjects: []string{strings.TrimSuffix(events.DisconnectRequestSubject("x"), "x") + "*"},
		AckWait:        w.cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  10000,
		Concurrency:    w.cfg.Concurrency,
		RetryMin:       w.cfg.real(w.cfg.RetryMin),
		RetryMax:       w.cfg.real(w.cfg.RetryMax),
	}
}

// Register adds the request consumer to r. Every replica registers the same
// durable, so replicas share the queue.
func (w *Worker) Register(r *bus.Runner) error {
	return r.Register(w.ConsumerConfig(), w.Handle)
}

// Run fires due policies until ctx ends (one replica at a time does it,
// under a Redis lock) and trims audit trails past the retention once an hour.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.PolicyTick)
	defer t.Stop()
	var trimmed time.Time
	for {
		if err := w.RunDuePolicies(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("disconnect: running due policies", slog.Any("error", err))
		}
		if time.Since(trimmed) >= time.Hour {
			n, err := w.store.TrimAudit(ctx)
			if err != nil && ctx.Err() == nil {
				w.log.Warn("disconnect: trimming audit trails", slog.Any("error", err))
			}
			if n > 0 {
				w.log.Info("disconnect: trimmed audit trails", slog.Int64("entries", n), slog.Duration("retention", w.cfg.AuditRetention))
			}
			trimmed = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// AdminHandler serves the admin API; see admin.go.
func (w *Worker) AdminHandler() http.Handler { return w.adminHandler() }

// disconnectPace and listPace space calls per enterprise. A call holds its
// pace until it ends (at most CallTimeout), and the next one goes out a tier
// interval after that, so calls reach Slack a full interval apart however
// late the previous one arrived.
func (w *Worker) disconnectPace(e string) slackapi.Pace {
	return slackapi.Pace{Tenant: e, Method: slackapi.MethodExternalTeamsDisconnect, Hold: w.cfg.CallTimeout,
		Every: slackapi.PaceEvery(slackapi.Tier1, w.cfg.TimeScale, w.cfg.PaceMargin, w.cfg.PaceMinGap)}
}

func (w *Worker) listPace(e string) slackapi.Pace {
	return slackapi.Pace{Tenant: e, Method: slackapi.MethodExternalTeamsList, Hold: w.cfg.CallTimeout,
		Every: slackapi.PaceEvery(slackapi.Tier2, w.cfg.TimeScale, w.cfg.PaceMargin, w.cfg.PaceMinGap)}
}

// callDone tells the pacer a call ended, whatever happened to ctx.
func (w *Worker) callDone(ctx context.Context, pace slackapi.Pace, holder string) {
	if err := w.pacer.Done(context.WithoutCancel(ctx), pace, holder); err != nil {
		// The call's hold runs out on its own (CallTimeout); only pacing slows.
		w.log.Warn("disconnect: releasing the pace", slog.String("enterprise", pace.Tenant), slog.String("method", pace.Method), slog.Any("error", err))
	}
}

// PublishRequest fills in the schema version and, when empty, a request id,
// checks the request against the schema and publishes it on
// disconnect.requests.<enterprise_id> with the request id as Nats-Msg-Id.
func PublishRequest(ctx context.Context, js jetstream.JetStream, req events.DisconnectRequest) (events.DisconnectRequest, error) {
	if req.SchemaVersion == 0 {
		req.SchemaVersion = events.SchemaVersion
	}
	if req.RequestID == "" {
		req.RequestID = NewRequestID()
	}
	if err := req.Validate(); err != nil {
		return req, err
	}
	if _, err := events.NewPublisher(js).Publish(ctx, events.DisconnectRequestSubject(req.EnterpriseID), req.RequestID, req); err != nil {
		return req, err
	}
	return req, nil
}

// Publish is [PublishRequest] on the worker's JetStream: how the console
// files a request without a connection of its own.
func (w *Worker) Publish(ctx context.Context, req events.DisconnectRequest) (events.DisconnectRequest, error) {
	return PublishRequest(ctx, w.js, req)
}

// NewRequestID returns a fresh random request id.
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "dr-" + hex.EncodeToString(b[:])
}

// laterError is a wait the bus turns into NakWithDelay.
type laterError struct {
	why   string
	after time.Duration
}

func (e *laterError) Error() string {
	return fmt.Sprintf("disconnect: %s; again in %s", e.why, e.after)
}
func (e *laterError) Retryable() bool           { return true }
func (e *laterError) RetryAfter() time.Duration { return e.after }
