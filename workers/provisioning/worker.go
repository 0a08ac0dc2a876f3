// Package provisioning is the provisioning worker: every day, and on demand,
// it makes an org's SCIM 2.0 directory match the people and user groups of
// one Slack source (a workspace or a whole Enterprise Grid org).
//
// # What a run does
//
// A run reads the source's user groups (usergroups.list with their members),
// then users.list page by page within Slack's Tier 2, and makes the directory
// match each page before it reads the next: new people are created
// (externalId = the Slack user id; on Grid the org-level id, one directory
// user however many workspaces they are in), changed people are patched with
// If-Match, and people who came back are reactivated as the same directory
// user. Bots, app users and Slackbot are never provisioned. After the last
// page, the managed users the run did not keep (deleted, deactivated or out of
// scope in Slack) are deactivated — never deleted — unless there are more
// than the deletion threshold allows: then the run holds them for an admin to
// approve or reject. Last, mapped teams (SCIM Groups) get the in-scope members
// of their Slack groups; orgbridge removes only members it added.
//
// orgbridge manages only the directory users it created or linked (the
// "links", with the provisioned fields): an unchanged user costs no write, a
// directory user whose externalId belongs to another source is never taken
// over, and two Slack users whose emails differ only by case are never merged.
//
// # Crash safety
//
// A run is a state machine persisted as it goes (pending → running →
// awaiting approval → succeeded, succeeded with failures, failed or
// cancelled). After each page it checkpoints the Slack cursor, the users it
// kept, the links it wrote and the report rows. A worker killed mid-run lets
// its trigger be redelivered; the next replica resumes at the checkpoint, and
// a user created just before the kill is found again by its externalId, so
// nobody is created twice. A per-org lock keeps two runs of one org apart.
package provisioning

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
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Mailer sends the invitation email of a user a run created.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// DirectoryFactory returns a SCIM client for a directory at baseURL.
type DirectoryFactory func(baseURL string, token store.Secret) SCIMClient

// Deps are the worker's dependencies.
type Deps struct {
	JS    jetstream.JetStream
	Redis redis.UniversalClient
	Keys  *store.Keyring
	Slack *slackapi.Client
	// Directory builds SCIM clients; orgapi.NewSCIM when nil.
	Directory DirectoryFactory
	// Org renews directory access tokens; without it tokens are used as they are.
	Org *orgapi.Client
	// SlackOAuth renews rotating Slack user tokens and serves the connect pages.
	SlackOAuth *slackapi.OAuthApp
	// Mailer sends invitations; auto-invite is refused when nil.
	Mailer     Mailer
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Worker runs provisioning syncs.
type Worker struct {
	cfg     Config
	js      jetstream.JetStream
	rdb     redis.UniversalClient
	pub     *events.Publisher
	store   *Store
	slack   *slackapi.Client
	pacer   *slackapi.Pacer
	locker  *store.Locker
	newDir  DirectoryFactory
	org     *orgapi.Client
	oauth   *slackapi.OAuthApp
	mailer  Mailer
	log     *slog.Logger
	metrics *metrics

	// afterPage runs after each checkpointed page; an error stops the run
	// there as if the worker died (tests).
	afterPage func(ctx context.Context, r *Run) error
}

// New builds a worker.
func New(d Deps, cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.JS == nil:
		return nil, errors.New("provisioning: New needs JetStream")
	case d.Redis == nil:
		return nil, errors.New("provisioning: New needs Redis")
	case d.Keys == nil:
		return nil, errors.New("provisioning: New needs the encryption keys")
	case d.Slack == nil:
		return nil, errors.New("provisioning: New needs a Slack client")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Directory == nil {
		// One client for every run: its connections stay open between writes
		// (http.DefaultClient keeps 2 idle per host, so parallel writers would
		// dial a new connection for most requests).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
		d.Directory = func(baseURL string, token store.Secret) SCIMClient {
			return orgapi.NewSCIM(baseURL, orgapi.Secret(token.Reveal()), hc)
		}
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg.withDefaults(), js: d.JS, rdb: d.Redis, pub: events.NewPublisher(d.JS), store: NewStore(d.Redis, d.Keys),
		slack: d.Slack, pacer: slackapi.NewPacer(d.Redis), locker: store.NewLocker(d.Redis), newDir: d.Directory,
		org: d.Org, oauth: d.SlackOAuth, mailer: d.Mailer, log: d.Logger, metrics: m}, nil
}

// Store gives access to integrations, runs and reports.
func (w *Worker) Store() *Store { return w.store }

// ConsumerConfig is the worker's durable consumer on the sync triggers. A
// run may take long (a big source at Slack's Tier 2): the handler is
// heartbeated, and deliveries are unlimited because a busy org waits through
// NakWithDelay.
func (w *Worker) ConsumerConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         events.StreamProvisioning,
		Durable:        w.cfg.Durable,
		FilterSubjects: []string{strings.TrimSuffix(events.ProvisioningSyncSubject("x"), "x") + "*"},
		AckWait:        w.cfg.AckWait,
		HandlerTimeout: 24 * time.Hour,
		MaxDeliver:     -1,
		MaxAckPending:  256,
		Concurrency:    4,
		RetryMin:       time.Second,
		RetryMax:       30 * time.Second,
	}
}

// Register adds the trigger consumer and the Slack events consumer to r.
func (w *Worker) Register(r *bus.Runner) error {
	if err := r.Register(w.ConsumerConfig(), w.Handle); err != nil {
		return err
	}
	return r.Register(w.EventsConsumerConfig(), w.HandleEvent)
}

// Handle carries out one trigger.
func (w *Worker) Handle(ctx context.Context, m *bus.Message) error {
	var msg events.ProvisioningSync
	if err := events.Decode(m.Header, m.Data, &msg); err != nil {
		return bus.Permanent(fmt.Errorf("provisioning: unreadable trigger: %w", err))
	}
	if err := msg.Validate(); err != nil {
		return bus.Permanent(fmt.Errorf("provisioning: invalid trigger: %w", err))
	}
	// One run per org at a time, also across a Redis failover: the lock is
	// taken only once a replica has it.
	lock, err := w.locker.ObtainReplicated(ctx, kRunLock(msg.OrgID), w.cfg.RunLockTTL)
	if errors.Is(err, store.ErrNotObtained) {
		return &laterError{why: "another run of org " + msg.OrgID + " is in progress", after: 2 * time.Second}
	}
	if errors.Is(err, store.ErrNotReplicated) {
		return &laterError{why: "no Redis replica acknowledged the run lock of org " + msg.OrgID, after: 5 * time.Second}
	}
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	return lock.KeepAlive(ctx, w.cfg.RunLockTTL, func(ctx context.Context) error {
		return w.carryOut(ctx, msg)
	})
}

func (w *Worker) carryOut(ctx context.Context, msg events.ProvisioningSync) error {
	run, err := w.store.Run(ctx, msg.OrgID, msg.RunID)
	if errors.Is(err, ErrNoRun) {
		return bus.Permanent(fmt.Errorf("provisioning: trigger names run %s of %s, which does not exist", msg.RunID, msg.OrgID))
	}
	if err != nil {
		return err
	}
	if run.Status.Final() {
		return nil // already done: a redelivery or a replay
	}
	switch msg.Action {
	case events.ActionApprove, events.ActionReject:
		if run.Status != events.RunAwaitingApproval {
			return nil
		}
		run.Decision = decisionApproved
		if msg.Action == events.ActionReject {
			run.Decision = decisionRejected
		}
		run.By = strings.TrimSpace(run.By + " · " + string(msg.Action) + " by " + msg.By)
	default:
		if run.Status == events.RunAwaitingApproval {
			return nil
		}
	}
	in, err := w.store.Integration(ctx, msg.OrgID)
	if errors.Is(err, ErrNoIntegration) {
		in = nil
	} else if err != nil {
		return err
	}
	if in == nil || in.Status != StatusActive || in.ID != run.IntegrationID {
		run.Status, run.Ended = events.RunCancelled, w.cfg.Now().UTC()
		run.Error = "the integration was disconnected or replaced before the run could finish"
		return w.finish(ctx, in, run)
	}
	return w.execute(ctx, in, run)
}

// execute runs or resumes run and records how it ended.
func (w *Worker) execute(ctx context.Context, in *Integration, run *Run) error {
	now := w.cfg.Now().UTC()
	if run.Status == events.RunRunning {
		run.Resumes++
	}
	if run.Started.IsZero() {
		run.Started = now
	}
	run.Status = events.RunRunning
	if run.Counts == nil {
		run.Counts = map[string]int{}
	}
	if err := w.store.SaveRun(ctx, run); err != nil {
		return err
	}
	w.announce(ctx, in, run)
	s, err := w.newSyncRun(ctx, in, run)
	if err != nil {
		return w.fail(ctx, in, run, err)
	}
	started := time.Now()
	if len(run.UserIDs) > 0 {
		err = s.executeUsers(ctx)
	} else {
		err = s.execute(ctx)
	}
	w.metrics.observe(s)
	switch {
	case errors.Is(err, errHeld):
		run.Status = events.RunAwaitingApproval
		if err := w.store.SaveRun(ctx, run); err != nil {
			return err
		}
		w.metrics.runs.WithLabelValues(string(events.RunAwaitingApproval)).Inc()
		w.metrics.actions.WithLabelValues(ActHeld, OutSkipped).Add(float64(run.Held))
		w.announce(ctx, in, run)
		return nil
	case err != nil && ctx.Err() != nil:
		// shutting down or the lock was lost: the trigger comes back and the run resumes
		_ = w.store.SaveRun(context.WithoutCancel(ctx), run)
		return fmt.Errorf("provisioning: run %s interrupted: %w", run.ID, err)
	case err != nil:
		return w.fail(ctx, in, run, err)
	}
	run.Status = finalStatus(run)
	run.Ended = w.cfg.Now().UTC()
	w.metrics.duration.Observe(time.Since(started).Seconds())
	if s.failureRate() {
		run.Error = fmt.Sprintf("most directory writes failed (%d of %d)", s.dir.failed.Load(), s.dir.failed.Load()+s.dir.writes.Load())
	}
	return w.finish(ctx, in, run)
}

// fail ends run as failed with err's explanation.
func (w *Worker) fail(ctx context.Context, in *Integration, run *Run, err error) error {
	run.Status, run.Ended = events.RunFailed, w.cfg.Now().UTC()
	run.Error = err.Error()
	var se *slackError
	if errors.As(err, &se) {
		run.Error += ": " + se.advice()
	}
	w.log.Warn("provisioning: run failed", slog.String("org", run.OrgID), slog.String("run", run.ID), slog.Any("error", err))
	return w.finish(ctx, in, run)
}

// finish saves a final run and updates the integration's history fields
// and quarantine.
func (w *Worker) finish(ctx context.Context, in *Integration, run *Run) error {
	if err := w.store.SaveRun(ctx, run); err != nil {
		return err
	}
	w.metrics.runs.WithLabelValues(string(run.Status)).Inc()
	if in != nil && in.ID == run.IntegrationID && !run.DryRun {
		now := w.cfg.Now
		updated, err := w.store.Update(ctx, run.OrgID, now, func(in *Integration) error {
			if in.CurrentRunID == run.ID {
				in.CurrentRunID = ""
			}
			in.LastRunID = run.ID
			if run.Status == events.RunCancelled {
				return nil
			}
			if run.Status == events.RunFailed || run.Error != "" {
				in.ConsecutiveFailures++
				if in.ConsecutiveFailures >= w.cfg.QuarantineAfter || (run.Error != "" && run.Status != events.RunFailed) {
					w.quarantine(in, run)
				}
				return nil
			}
			in.ConsecutiveFailures = 0
			in.Quarantine = nil
			if len(run.UserIDs) == 0 && run.SettingsVersion > in.AppliedVersion {
				in.AppliedVersion = run.SettingsVersion
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrNoIntegration) {
			return err
		}
		if updated != nil {
			in = updated
		}
		w.metrics.setQuarantined(ctx, w)
	}
	w.announce(ctx, in, run)
	return nil
}

// quarantine stops the integration's daily runs and schedules retries with
// growing delays (first QuarantineBackoff, doubling, at most a day).
func (w *Worker) quarantine(in *Integration, run *Run) {
	now := w.cfg.Now().UTC()
	reason := run.Error
	if in.ConsecutiveFailures >= w.cfg.QuarantineAfter {
		reason = fmt.Sprintf("%d runs in a row failed; last: %s", in.ConsecutiveFailures, run.Error)
	}
	q := in.Quarantine
	if q == nil {
		q = &Quarantine{Since: now}
	} else {
		q.Retries++
	}
	q.Reason = reason
	delay := w.cfg.QuarantineBackoff << min(q.Retries, 10)
	q.NextRetry = now.Add(min(delay, 24*time.Hour))
	in.Quarantine = q
	w.log.Warn("provisioning: integration quarantined", slog.String("org", in.OrgID), slog.String("reason", reason), slog.Time("next_retry", q.NextRetry))
}

// announce publishes the run's state for other systems; a failure is logged,
// never fatal (the run record is the truth).
func (w *Worker) announce(ctx context.Context, in *Integration, run *Run) {
	ev := events.ProvisioningRunEvent{SchemaVersion: events.SchemaVersion, OrgID: run.OrgID, IntegrationID: run.IntegrationID,
		RunID: run.ID, Status: run.Status, Trigger: run.Trigger, DryRun: run.DryRun, StartedAt: run.Started, EndedAt: run.Ended,
		Counts: run.Counts, Error: run.Error}
	id := run.ID + ":" + string(run.Status)
	if run.Status == events.RunRunning {
		id += fmt.Sprint(":", run.Resumes)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := w.pub.Publish(pctx, events.ProvisioningRunSubject(run.OrgID), id, ev); err != nil {
		w.log.Warn("provisioning: publishing run event", slog.String("run", run.ID), slog.Any("error", err))
	}
}

// newSyncRun builds what one execution needs: the Slack source, the
// directory and the links.
func (w *Worker) newSyncRun(ctx context.Context, in *Integration, run *Run) (*syncRun, error) {
	tok, err := w.slackToken(ctx, in)
	if err != nil {
		return nil, err
	}
	dirTok, err := w.directoryToken(ctx, in)
	if err != nil {
		return nil, err
	}
	links, err := w.store.Links(ctx, in.OrgID)
	if err != nil {
		return nil, err
	}
	seen, err := w.store.Seen(ctx, in.OrgID, run.ID)
	if err != nil {
		return nil, err
	}
	s := &syncRun{w: w, in: in, run: run, dry: run.DryRun, log: w.log.With("org", in.OrgID, "run", run.ID),
		src: w.newSource(in, tok.Reveal(), run.ID),
		dir: newDirectory(w.newDir(in.DirectoryURL, dirTok), w.cfg.DirectoryWritesPerSecond), links: links, dirOwner: make(map[string]string, len(links)),
		seen: seen, emails: map[string]string{}, newLinks: map[string]Link{}}
	for id, l := range links {
		s.dirOwner[l.DirID] = id
		if seen[id] {
			s.emails[strings.ToLower(l.Fields.Email)] = id
		}
	}
	return s, nil
}

// slackToken is the source's Slack token, renewed (under a per-org lock, as
// a refresh revokes the previous refresh token) when it expires within a
// tenth of Slack's 12-hour lifetime.
func (w *Worker) slackToken(ctx context.Context, in *Integration) (store.Secret, error) {
	tok, err := w.store.open(in.OrgID, "slack", in.SlackToken)
	if err != nil {
		return "", fmt.Errorf("opening the Slack token: %w", err)
	}
	margin := time.Duration(float64(72*time.Minute) / w.cfg.TimeScale)
	if in.SlackRefresh.IsZero() || in.SlackExpires.IsZero() || w.oauth == nil || w.cfg.Now().Add(margin).Before(in.SlackExpires) {
		return tok, nil
	}
	lock, err := w.locker.ObtainWait(ctx, store.Key(in.OrgID, "prov", "slackrefresh"), 30*time.Second)
	if err != nil {
		return "", err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	cur, err := w.store.Integration(ctx, in.OrgID)
	if err != nil {
		return "", err
	}
	if cur.SlackRefresh.IsZero() || w.cfg.Now().Add(margin).Before(cur.SlackExpires) {
		return w.store.open(in.OrgID, "slack", cur.SlackToken) // refreshed by someone else meanwhile
	}
	refresh, err := w.store.open(in.OrgID, "slack_refresh", cur.SlackRefresh)
	if err != nil {
		return "", err
	}
	r, err := w.oauth.Refresh(ctx, refresh.Reveal())
	if err != nil {
		return "", &slackError{method: "oauth.v2.access", err: err}
	}
	access, next, expires := r.AccessToken, r.RefreshToken, r.ExpiresIn
	if access == "" { // a user token's refresh answers in authed_user
		access, next, expires = r.AuthedUser.AccessToken, r.AuthedUser.RefreshToken, r.AuthedUser.ExpiresIn
	}
	sealedTok, err := w.store.seal(in.OrgID, "slack", store.Secret(access))
	if err != nil {
		return "", err
	}
	sealedRefresh, err := w.store.seal(in.OrgID, "slack_refresh", store.Secret(next))
	if err != nil {
		return "", err
	}
	until := w.cfg.Now().Add(time.Duration(float64(time.Duration(expires)*time.Second) / w.cfg.TimeScale))
	if _, err := w.store.Update(ctx, in.OrgID, w.cfg.Now, func(in *Integration) error {
		in.SlackToken, in.SlackRefresh, in.SlackExpires = sealedTok, sealedRefresh, until
		return nil
	}); err != nil {
		return "", err
	}
	return store.Secret(access), nil
}

// directoryToken is the org access token, renewed with the refresh token
// when it no longer works.
func (w *Worker) directoryToken(ctx context.Context, in *Integration) (store.Secret, error) {
	tok, err := w.store.open(in.OrgID, "directory", in.DirectoryToken)
	if err != nil {
		return "", fmt.Errorf("opening the directory token: %w", err)
	}
	if w.org == nil || in.DirectoryRefresh.IsZero() {
		return tok, nil
	}
	if _, err := w.org.UserInfo(ctx, orgapi.Secret(tok.Reveal())); err == nil {
		return tok, nil
	} else if !errors.Is(err, orgapi.ErrInvalidToken) {
		return "", fmt.Errorf("checking the directory token: %w", err)
	}
	refresh, err := w.store.open(in.OrgID, "directory_refresh", in.DirectoryRefresh)
	if err != nil {
		return "", err
	}
	nt, err := w.org.Refresh(ctx, orgapi.Secret(refresh.Reveal()))
	if err != nil {
		return "", fmt.Errorf("renewing the directory token (reconnect as an org administrator if this persists): %w", err)
	}
	sealed, err := w.store.seal(in.OrgID, "directory", store.Secret(nt.AccessToken.Reveal()))
	if err != nil {
		return "", err
	}
	if _, err := w.store.Update(ctx, in.OrgID, w.cfg.Now, func(cur *Integration) error {
		cur.DirectoryToken = sealed
		return nil
	}); err != nil {
		return "", err
	}
	return store.Secret(nt.AccessToken.Reveal()), nil
}

// invite sends the one invitation email of a user the run created; a second
// run never sends it again.
func (w *Worker) invite(ctx context.Context, in *Integration, slackID string, f Fields) {
	if w.mailer == nil {
		return
	}
	key := store.Key(in.OrgID, "prov", "invited", slackID)
	ok, err := w.rdb.SetNX(ctx, key, w.cfg.Now().UTC().Format(time.RFC3339), 400*24*time.Hour).Result()
	if err != nil || !ok {
		return
	}
	body := fmt.Sprintf("Hello %s,\n\nYour organization added you to its directory from Slack (%s).\nSign in with %s to get started.\n",
		f.DisplayName, in.Source.Name, f.Email)
	if err := w.mailer.Send(ctx, f.Email, "You're invited to join your organization", body); err != nil {
		_ = w.rdb.Del(context.WithoutCancel(ctx), key).Err()
		w.metrics.invites.WithLabelValues("failed").Inc()
		w.log.Warn("provisioning: sending an invitation", slog.String("org", in.OrgID), slog.String("slack_user", slackID), slog.Any("error", err))
		return
	}
	w.metrics.invites.WithLabelValues("sent").Inc()
}

// NewRunID returns a fresh run id.
func NewRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "r-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}
