package disconnect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Handle handles one delivery of a disconnect request: the first delivery
// validates and accepts it, later ones (NakWithDelay) call Slack when the
// pacer's slot comes, and confirm. See the package doc for crash safety.
func (w *Worker) Handle(ctx context.Context, m *bus.Message) error {
	// The subject says whose request this is; a body never steers a
	// rejection (its record, audit entry and result) to another enterprise.
	enterprise := strings.TrimPrefix(m.Subject, "disconnect.requests.")
	var req events.DisconnectRequest
	if err := events.Decode(m.Header, m.Data, &req); err != nil {
		return w.rejectUnreadable(ctx, m, enterprise, err)
	}
	if err := req.Validate(); err != nil {
		var re *events.DisconnectRequestError
		code := events.DisconnectErrInvalidRequest
		if errors.As(err, &re) {
			code = re.Code
		}
		return w.rejectNew(ctx, m, enterprise, req, code, err.Error())
	}
	if req.EnterpriseID != enterprise {
		return w.rejectNew(ctx, m, enterprise, req, events.DisconnectErrInvalidRequest,
			fmt.Sprintf("enterprise_id %s does not match the subject's enterprise %s: publish on %s",
				req.EnterpriseID, enterprise, events.DisconnectRequestSubject(req.EnterpriseID)))
	}
	lock, err := w.locker.Obtain(ctx, lockKey(req.EnterpriseID, req.RequestID), w.cfg.AckWait)
	if errors.Is(err, store.ErrNotObtained) {
		return bus.RetryAfter(ErrBusy, max(w.cfg.AckWait/4, 10*time.Millisecond))
	}
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()

	rec, found, err := w.store.Get(ctx, req.EnterpriseID, req.RequestID)
	if err != nil {
		return err
	}
	if !found {
		var done bool
		if rec, done, err = w.admit(ctx, req); done || err != nil {
			return err
		}
	}
	return w.advance(ctx, rec)
}

// rejectUnreadable answers a body that is not a request at all, on the
// subject's enterprise. Only a valid enterprise id gets an audit entry (a
// garbage subject token must not create an audit trail kept for a year).
func (w *Worker) rejectUnreadable(ctx context.Context, m *bus.Message, enterprise string, derr error) error {
	now := time.Now().UTC()
	res := events.DisconnectResult{SchemaVersion: events.SchemaVersion, RequestID: m.Identity, EnterpriseID: enterprise,
		State: events.DisconnectRejected, Error: events.DisconnectErrInvalidRequest,
		Message: "the body is not a disconnect request (" + derr.Error() + "); see events/README.md for the schema", At: now}
	if events.ValidEnterpriseID(enterprise) {
		a := AuditEntry{Time: now, EnterpriseID: enterprise, RequestID: m.Identity, Event: "rejected",
			State: string(events.DisconnectRejected), Error: res.Error, Message: res.Message, Worker: w.cfg.WorkerID}
		if err := w.store.Append(ctx, a); err != nil {
			w.auditFailed(enterprise, m.Identity, []AuditEntry{a}, err, false)
			return err
		}
	} else {
		res.Message = "the subject's enterprise " + strconvQuote(enterprise) + " is not an Enterprise Grid id (E…), and " + res.Message
		w.log.Warn("disconnect: rejected a request on a subject without a valid enterprise id",
			slog.String("subject", m.Subject), slog.String("identity", m.Identity), slog.Any("error", derr))
	}
	_, err := w.pub.Publish(ctx, events.DisconnectResultSubject(enterprise), events.DisconnectResultMsgID(m.Identity, res.State), res)
	return err
}

// rejectNew rejects a request that breaks the schema or names another
// enterprise than its subject. The record, audit entry and result belong to
// the subject's enterprise; a request whose id is usable gets a record there,
// so its status can be looked up. It never moves an existing request on.
func (w *Worker) rejectNew(ctx context.Context, m *bus.Message, enterprise string, req events.DisconnectRequest, code, msg string) error {
	if !events.ValidEnterpriseID(enterprise) || !validID(req.RequestID) {
		return w.rejectUnreadable(ctx, m, enterprise, errors.New(msg))
	}
	lock, err := w.locker.Obtain(ctx, lockKey(enterprise, req.RequestID), w.cfg.AckWait)
	if errors.Is(err, store.ErrNotObtained) {
		return bus.RetryAfter(ErrBusy, max(w.cfg.AckWait/4, 10*time.Millisecond))
	}
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	existing, found, err := w.store.Get(ctx, enterprise, req.RequestID)
	if err != nil {
		return err
	}
	if found {
		if existing.State == events.DisconnectRejected {
			// A redelivery of this rejection: make sure its result went out.
			return w.republish(ctx, &existing)
		}
		return w.rejectUnreadable(ctx, m, enterprise, fmt.Errorf("%s; request id %s belongs to another request of %s, which this message does not change",
			msg, req.RequestID, enterprise))
	}
	rec := newRecord(req)
	rec.EnterpriseID = enterprise
	return w.transition(ctx, &rec, events.DisconnectRejected, code, msg, AuditEntry{Event: "rejected"})
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func validID(id string) bool {
	return events.DisconnectRequest{SchemaVersion: 1, RequestID: id, EnterpriseID: "E00", TargetTeam: "T00", Reason: "x", RequestedBy: "x"}.Validate() == nil
}

func newRecord(req events.DisconnectRequest) Record {
	now := time.Now().UTC()
	return Record{RequestID: req.RequestID, EnterpriseID: req.EnterpriseID, TargetTeam: req.TargetTeam,
		Reason: req.Reason, RequestedBy: req.RequestedBy, NotBefore: req.NotBefore, DryRun: req.DryRun,
		CreatedAt: now, UpdatedAt: now}
}

// admit checks a request seen for the first time and accepts, joins or
// rejects it. done means the delivery is finished.
func (w *Worker) admit(ctx context.Context, req events.DisconnectRequest) (Record, bool, error) {
	rec := newRecord(req)
	received := w.entry(rec, AuditEntry{Event: "received"})
	if err := w.store.Append(ctx, received); err != nil {
		w.auditFailed(rec.EnterpriseID, rec.RequestID, []AuditEntry{received}, err, false)
		return rec, true, err
	}
	if req.NotBefore != nil && time.Until(*req.NotBefore) > w.cfg.MaxNotBefore {
		return rec, true, w.transition(ctx, &rec, events.DisconnectRejected, events.DisconnectErrInvalidRequest,
			fmt.Sprintf("not_before %s is more than %s ahead; orgbridge keeps a waiting request at most that long: send it again closer to the time",
				req.NotBefore.UTC().Format(time.RFC3339), w.cfg.MaxNotBefore), AuditEntry{Event: "rejected"})
	}
	in, err := w.installs.EnterpriseInstall(ctx, req.EnterpriseID)
	switch {
	case errors.Is(err, ErrUnknownEnterprise):
		return rec, true, w.transition(ctx, &rec, events.DisconnectRejected, events.DisconnectErrUnknownEnterprise,
			fmt.Sprintf("orgbridge does not know enterprise %s: install the app org-wide on that Enterprise Grid org first", req.EnterpriseID), AuditEntry{Event: "rejected"})
	case errors.Is(err, ErrNoGridInstall):
		return rec, true, w.transition(ctx, &rec, events.DisconnectRejected, events.DisconnectErrNoGridInstall,
			fmt.Sprintf("the app is installed in workspaces of %s but not org-wide; team.externalTeams.disconnect needs an org-wide (Enterprise Grid) install", req.EnterpriseID), AuditEntry{Event: "rejected"})
	case err != nil:
		return rec, true, err
	}
	own, err := in.Owns(ctx, req.TargetTeam)
	if err != nil {
		return rec, true, err
	}
	switch {
	case own:
		return rec, true, w.transition(ctx, &rec, events.DisconnectRejected, events.DisconnectErrOwnOrg,
			fmt.Sprintf("%s belongs to %s itself; only external organizations can be disconnected", req.TargetTeam, req.EnterpriseID), AuditEntry{Event: "rejected"})
	case !in.HasScope(slackapi.ScopeConnectManage):
		return rec, true, w.transition(ctx, &rec, events.DisconnectRejected, events.DisconnectErrMissingScope,
			"the org-wide installation lacks the conversations.connect:manage scope: reinstall the app with it", AuditEntry{Event: "rejected"})
	}
	// A request for later claims its target only when it comes due, so it
	// neither holds up nor absorbs requests meant for now.
	if !req.DryRun && !scheduled(rec) {
		if other, joined, err := w.claim(ctx, rec); err != nil || joined {
			if err == nil {
				err = w.join(ctx, rec, other)
			}
			return rec, true, err
		}
	}
	return rec, false, w.transition(ctx, &rec, events.DisconnectAccepted, "", "queued: Slack allows about one disconnect a minute per org", AuditEntry{Event: "accepted"})
}

// scheduled reports whether rec waits for a not_before still ahead.
func scheduled(rec Record) bool {
	return rec.NotBefore != nil && time.Until(*rec.NotBefore) > 0
}

// claim makes rec the active request for its target, or returns the
// active request it must join instead (joined true).
func (w *Worker) claim(ctx context.Context, rec Record) (Record, bool, error) {
	for {
		active, err := w.store.ClaimActive(ctx, rec.EnterpriseID, rec.TargetTeam, rec.RequestID)
		if err != nil {
			return Record{}, false, err
		}
		if active == rec.RequestID {
			return Record{}, false, nil
		}
		other, found, err := w.store.Get(ctx, rec.EnterpriseID, active)
		if err != nil {
			return Record{}, false, err
		}
		if !found || other.State.Final() {
			// A stale claim: the other request ended (or expired) without freeing it.
			if _, err := w.store.ReplaceActive(ctx, rec.EnterpriseID, rec.TargetTeam, active, rec.RequestID); err != nil {
				return Record{}, false, err
			}
			continue
		}
		return other, true, nil
	}
}

// join makes rec share the outcome of the active request for the same target.
func (w *Worker) join(ctx context.Context, rec Record, active Record) error {
	rec.JoinedRequestID = active.RequestID
	if err := w.store.Join(ctx, rec.EnterpriseID, active.RequestID, rec.RequestID); err != nil {
		return err
	}
	if err := w.transition(ctx, &rec, events.DisconnectAccepted, "",
		fmt.Sprintf("request %s for the same target is already active; this request joins it and Slack is called once", active.RequestID),
		AuditEntry{Event: "joined"}); err != nil {
		return err
	}
	// The active request may have ended between the claim and the join.
	return w.followActive(ctx, rec)
}

// followActive finishes a joined request if its active request has ended.
func (w *Worker) followActive(ctx context.Context, rec Record) error {
	active, found, err := w.store.Get(ctx, rec.EnterpriseID, rec.JoinedRequestID)
	if err != nil {
		return err
	}
	if !found {
		return w.transition(ctx, &rec, events.DisconnectUnconfirmed, "",
			"the request this one joined ("+rec.JoinedRequestID+") has expired; check the team in Slack", AuditEntry{Event: "unconfirmed"})
	}
	if active.State.Final() {
		return w.adopt(ctx, rec, active)
	}
	return nil
}

func (w *Worker) adopt(ctx context.Context, rec Record, active Record) error {
	if rec.State.Final() {
		return w.republish(ctx, &rec)
	}
	rec.Attempts = active.Attempts
	return w.transition(ctx, &rec, active.State, active.Error,
		"joined request "+active.RequestID+": "+active.Message, AuditEntry{Event: string(active.State)})
}

// advance moves an accepted or submitted request on.
func (w *Worker) advance(ctx context.Context, rec Record) error {
	if err := w.republish(ctx, &rec); err != nil {
		return err
	}
	if rec.State.Final() {
		return w.notifyJoiners(ctx, rec)
	}
	if rec.JoinedRequestID != "" {
		return w.followActive(ctx, rec)
	}
	switch rec.State {
	case events.DisconnectAccepted:
		if rec.DryRun {
			return w.dryRun(ctx, rec)
		}
		if rec.NotBefore != nil {
			if d := time.Until(*rec.NotBefore); d > 0 {
				return w.later("not before "+rec.NotBefore.UTC().Format(time.RFC3339), d)
			}
			// Due now: claim the target (again, harmlessly, if admit did).
			if other, joined, err := w.claim(ctx, rec); err != nil {
				return err
			} else if joined {
				return w.join(ctx, rec, other)
			}
		}
		return w.attempt(ctx, rec)
	case events.DisconnectSubmitted:
		return w.confirm(ctx, rec)
	}
	return bus.Permanent(fmt.Errorf("disconnect: request %s is in unknown state %q", rec.RequestID, rec.State))
}

// later asks for a redelivery after d. JetStream adds up to 10 % jitter, so
// a long wait comes back a little early and the rest is waited again: the
// worker never misses a pacing slot by arriving late.
func (w *Worker) later(why string, d time.Duration) error {
	if d > w.cfg.MaxBlock {
		d = d * 10 / 11
	}
	return &laterError{why: why, after: max(d, time.Millisecond)}
}

// attempt calls team.externalTeams.disconnect once the pacer allows it.
func (w *Worker) attempt(ctx context.Context, rec Record) error {
	ck := callKey(rec.EnterpriseID, rec.RequestID)
	st, err := w.idem.Check(ctx, ck)
	if err != nil {
		return err
	}
	switch st {
	case store.StateDone:
		// The worker that called died after recording done.
		return w.submitted(ctx, rec, "Slack accepted the disconnect (recorded before a worker restart)")
	case store.StateInFlight:
		return w.resolveInFlight(ctx, rec)
	}
	in, err := w.installs.EnterpriseInstall(ctx, rec.EnterpriseID)
	if errors.Is(err, ErrUnknownEnterprise) || errors.Is(err, ErrNoGridInstall) {
		return w.transition(ctx, &rec, events.DisconnectFailed, events.DisconnectErrNoGridInstall,
			"the org-wide installation is gone: reinstall the app on the org and send the request again", AuditEntry{Event: "failed"})
	}
	if err != nil {
		return err
	}
	pace := w.disconnectPace(rec.EnterpriseID)
	if err := w.pacer.Wait(ctx, pace, rec.RequestID, w.cfg.MaxBlock); err != nil {
		var we *slackapi.WaitError
		if errors.As(err, &we) {
			return w.later("waiting for a Tier 1 slot", we.After)
		}
		return err
	}
	// The pace is held from here: every way out before the call must
	// release it, or the next call waits out CallTimeout for nothing.
	if w.beforeBegin != nil {
		if err := w.beforeBegin(ctx, rec.RequestID); err != nil {
			w.callDone(ctx, pace, rec.RequestID)
			return err
		}
	}
	began, err := w.idem.Begin(ctx, ck, w.cfg.RecordTTL)
	if err != nil {
		w.callDone(ctx, pace, rec.RequestID)
		return err
	}
	if !began {
		w.callDone(ctx, pace, rec.RequestID)
		return bus.RetryAfter(ErrBusy, time.Second)
	}
	rec.Attempts++
	rec.CallStartedAt = time.Now().UTC()
	if err := w.store.Save(ctx, rec); err != nil {
		// Nothing was called: clear the record so a retry may call.
		_ = w.idem.Forget(context.WithoutCancel(ctx), ck)
		w.callDone(ctx, pace, rec.RequestID)
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	resp, callErr := w.slack.DisconnectExternalTeam(cctx, in.Token.Reveal(), rec.TargetTeam)
	cancel()
	w.callDone(ctx, pace, rec.RequestID)
	if w.afterCall != nil {
		if err := w.afterCall(ctx, rec.RequestID); err != nil {
			return err
		}
	}
	ctx = context.WithoutCancel(ctx) // the call happened: record it whatever happens to ctx
	call := w.entry(rec, AuditEntry{Event: "slack_call", SlackMethod: resp.Method, SlackStatus: resp.Status,
		SlackResponse: resp.Body, Error: slackapi.ErrorCode(callErr), Message: errString(callErr)})
	if callErr == nil {
		// "done" and the call's audit entry go together: a redelivery that
		// finds the call done never calls again, and finds the entry too.
		if err := w.persist(ctx, rec, []AuditEntry{call}, func(ctx context.Context) error {
			return w.store.recordCallDone(ctx, rec.EnterpriseID, rec.RequestID, w.cfg.RecordTTL, call)
		}); err != nil {
			return err
		}
		return w.submitted(ctx, rec, "Slack accepted the disconnect; it finishes in the background")
	}
	return w.callFailed(ctx, rec, pace, callErr, call)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// callFailed decides what a failed call leads to. call is the call's audit
// entry, written with whatever the decision records.
func (w *Worker) callFailed(ctx context.Context, rec Record, pace slackapi.Pace, callErr error, call AuditEntry) error {
	code := slackapi.ErrorCode(callErr)
	var te *slackapi.TransportError
	if errors.As(callErr, &te) && te.MaybeSent {
		code = "transport_error"
	}
	if code == "transport_error" || Classify(code) == MaybeActed {
		// Slack may have acted: keep the call "in flight" and let
		// team.externalTeams.list decide (resolveInFlight); never call blindly.
		rec.Failures++
		rec.MaybeActed = code
		rec.Checks = 0
		rec.Message = "Slack answered " + code + " (" + errString(callErr) + "), which may still have disconnected; checking with team.externalTeams.list whether it acted"
		rec.UpdatedAt = time.Now().UTC()
		if err := w.save(ctx, rec, false, call, w.entry(rec, AuditEntry{Event: "retry", Error: code, Message: rec.Message})); err != nil {
			return err
		}
		return w.later("call outcome unknown", w.cfg.real(w.cfg.ConfirmFirst))
	}
	// From here the call definitely failed: its record is deleted (so it
	// may be made again) in the step that audits it.
	var rl *slack.RateLimitedError
	if errors.As(callErr, &rl) {
		after := w.cfg.real(rl.RetryAfter)
		if err := w.save(ctx, rec, true, call, w.entry(rec, AuditEntry{Event: "retry", Error: "ratelimited",
			Message: "Slack answered 429; Retry-After " + rl.RetryAfter.String()})); err != nil {
			return err
		}
		if err := w.pacer.Penalize(ctx, pace, after); err != nil {
			return err
		}
		return bus.RetryAfter(callErr, after)
	}
	class := Classify(code)
	if code == "" {
		code, class = "transport_error", Retryable
	}
	failed := step{forget: true, audit: []AuditEntry{call}}
	switch class {
	case Final:
		return w.transitionWith(ctx, &rec, events.DisconnectFailed, code, "Slack refused: "+code+"; "+advice(code), AuditEntry{Event: "failed"}, failed)
	case Retryable:
		rec.Failures++
		if rec.Failures >= w.cfg.MaxAttempts {
			return w.transitionWith(ctx, &rec, events.DisconnectFailed, code,
				fmt.Sprintf("Slack kept failing (%s) after %d attempts; send a new request once Slack is healthy", code, rec.Failures), AuditEntry{Event: "failed"}, failed)
		}
	default:
		rec.Unknown++
		if rec.Unknown >= w.cfg.MaxUnknownAttempts {
			return w.transitionWith(ctx, &rec, events.DisconnectFailed, code,
				fmt.Sprintf("Slack answered %s, an error orgbridge does not know, %d times; check Slack's documentation for it", code, rec.Unknown), AuditEntry{Event: "failed"}, failed)
		}
	}
	rec.Message = fmt.Sprintf("Slack answered %s; trying again", code)
	rec.UpdatedAt = time.Now().UTC()
	if err := w.save(ctx, rec, true, call, w.entry(rec, AuditEntry{Event: "retry", Error: code, Message: rec.Message})); err != nil {
		return err
	}
	n := rec.Failures + rec.Unknown
	return w.later("retrying after "+code, w.cfg.real(expDelay(w.cfg.RetryMin, w.cfg.RetryMax, n)))
}

// expDelay is lo doubled for each of n attempts after the first, at most hi.
func expDelay(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// submitted records that Slack accepted the disconnect and schedules the
// first confirmation.
func (w *Worker) submitted(ctx context.Context, rec Record, msg string) error {
	rec.SubmittedAt = time.Now().UTC()
	if err := w.transition(ctx, &rec, events.DisconnectSubmitted, "", msg, AuditEntry{Event: "submitted"}); err != nil {
		return err
	}
	return w.later("confirming", w.cfg.real(w.cfg.ConfirmFirst))
}

// confirm checks team.externalTeams.list for a submitted request.
func (w *Worker) confirm(ctx context.Context, rec Record) error {
	deadline := time.Since(rec.SubmittedAt) >= w.cfg.real(w.cfg.ConfirmDeadline)
	team, found, raw, err := w.teamStatus(ctx, rec.EnterpriseID, rec.TargetTeam, rec.RequestID)
	if code, final := listFailure(err); final {
		return w.transition(ctx, &rec, events.DisconnectUnconfirmed, code,
			"Slack accepted the disconnect, but orgbridge cannot check it: "+listAdvice(code)+"; check "+rec.TargetTeam+" in Slack's admin pages",
			AuditEntry{Event: "unconfirmed"})
	}
	if err != nil {
		if deadline {
			// The list did not finish (a wait, a transient error) and time is up.
			return w.transition(ctx, &rec, events.DisconnectUnconfirmed, slackapi.ErrorCode(err),
				fmt.Sprintf("Slack accepted the disconnect, but team.externalTeams.list could not be read within %s (%s); check %s in Slack's admin pages",
					w.cfg.ConfirmDeadline, err.Error(), rec.TargetTeam), AuditEntry{Event: "unconfirmed"})
		}
		return err
	}
	rec.Checks++
	status := team.ConnectionStatus
	check := step{audit: []AuditEntry{w.entry(rec, AuditEntry{Event: "confirm_check", SlackMethod: slackapi.MethodExternalTeamsList, SlackResponse: raw,
		Message: describeStatus(rec.TargetTeam, found, status)})}}
	if !found || status == slackapi.StatusDisconnected {
		return w.transitionWith(ctx, &rec, events.DisconnectCompleted, "", describeStatus(rec.TargetTeam, found, status), AuditEntry{Event: "completed"}, check)
	}
	if time.Since(rec.SubmittedAt) >= w.cfg.real(w.cfg.ConfirmDeadline) {
		return w.transitionWith(ctx, &rec, events.DisconnectUnconfirmed, "",
			fmt.Sprintf("Slack accepted the disconnect but still lists %s as %s after %s; check it in Slack's admin pages", rec.TargetTeam, status, w.cfg.ConfirmDeadline),
			AuditEntry{Event: "unconfirmed"}, check)
	}
	rec.UpdatedAt = time.Now().UTC()
	if err := w.save(ctx, rec, false, check.audit...); err != nil {
		return err
	}
	return w.later("not yet disconnected", w.cfg.real(expDelay(w.cfg.ConfirmFirst, w.cfg.ConfirmMax, rec.Checks)))
}

// resolveInFlight handles a request whose call was recorded in flight but
// never recorded done: the worker died during the call, the call got no
// answer, or Slack answered an error after which it may still have acted
// (rec.MaybeActed). It never calls blindly; the list tells whether the call
// worked. A team still listed connected past ConfirmDeadline after a call
// Slack answered (rec.MaybeActed) means Slack did not act — a disconnect it
// had started would have finished by then — so the call is made again, up
// to MaxAttempts calls in all; after a worker died mid-call the request ends
// unconfirmed for a person instead.
func (w *Worker) resolveInFlight(ctx context.Context, rec Record) error {
	answered := rec.MaybeActed != ""
	if d := time.Until(rec.CallStartedAt.Add(w.cfg.CallTimeout)); d > 0 && !answered {
		return w.later("a call may still be running", d)
	}
	cause := "a worker stopped during the call to team.externalTeams.disconnect"
	if answered {
		cause = "Slack answered " + rec.MaybeActed + " to team.externalTeams.disconnect, which may still have acted"
	}
	deadline := time.Since(rec.CallStartedAt) >= w.cfg.real(w.cfg.ConfirmDeadline)
	team, found, raw, err := w.teamStatus(ctx, rec.EnterpriseID, rec.TargetTeam, rec.RequestID)
	if code, final := listFailure(err); final {
		return w.transition(ctx, &rec, events.DisconnectUnconfirmed, code,
			cause+" and orgbridge cannot check whether Slack acted: "+listAdvice(code)+
				"; orgbridge will not call again on its own: check "+rec.TargetTeam+" in Slack's admin pages", AuditEntry{Event: "unconfirmed"})
	}
	if err != nil {
		if deadline {
			return w.transition(ctx, &rec, events.DisconnectUnconfirmed, slackapi.ErrorCode(err),
				cause+" and team.externalTeams.list could not be read before the deadline ("+err.Error()+
					"); orgbridge will not call again on its own: check "+rec.TargetTeam+" in Slack's admin pages", AuditEntry{Event: "unconfirmed"})
		}
		return err
	}
	rec.Checks++
	status := team.ConnectionStatus
	checked := w.entry(rec, AuditEntry{Event: "confirm_check", SlackMethod: slackapi.MethodExternalTeamsList, SlackResponse: raw,
		Message: "resolving an interrupted call: " + describeStatus(rec.TargetTeam, found, status)})
	check := step{audit: []AuditEntry{checked}}
	if !found || status == slackapi.StatusDisconnected {
		if err := w.persist(ctx, rec, check.audit, func(ctx context.Context) error {
			return w.store.recordCallDone(ctx, rec.EnterpriseID, rec.RequestID, w.cfg.RecordTTL, checked)
		}); err != nil {
			return err
		}
		rec.SubmittedAt = rec.CallStartedAt
		rec.MaybeActed = ""
		if err := w.transition(ctx, &rec, events.DisconnectSubmitted, "",
			cause+"; team.externalTeams.list shows it worked", AuditEntry{Event: "submitted"}); err != nil {
			return err
		}
		return w.transition(ctx, &rec, events.DisconnectCompleted, "", describeStatus(rec.TargetTeam, found, status), AuditEntry{Event: "completed"})
	}
	if deadline && answered {
		code := rec.MaybeActed
		if rec.Failures >= w.cfg.MaxAttempts {
			return w.transitionWith(ctx, &rec, events.DisconnectFailed, code,
				fmt.Sprintf("Slack kept failing (%s) after %d attempts and team.externalTeams.list still shows %s %s; send a new request once Slack is healthy",
					code, rec.Failures, rec.TargetTeam, status), AuditEntry{Event: "failed"}, check)
		}
		// Slack did not act: the call may be made again.
		rec.MaybeActed, rec.Checks = "", 0
		rec.Message = fmt.Sprintf("Slack answered %s and team.externalTeams.list still shows %s %s past the deadline, so Slack did not act; trying again",
			code, rec.TargetTeam, status)
		rec.UpdatedAt = time.Now().UTC()
		if err := w.save(ctx, rec, true, checked, w.entry(rec, AuditEntry{Event: "retry", Error: code, Message: rec.Message})); err != nil {
			return err
		}
		return w.later("retrying after "+code, w.cfg.real(expDelay(w.cfg.RetryMin, w.cfg.RetryMax, rec.Failures)))
	}
	if deadline {
		return w.transitionWith(ctx, &rec, events.DisconnectUnconfirmed, "",
			fmt.Sprintf("%s and Slack still lists %s as %s; orgbridge will not call again on its own: check the team in Slack's admin pages and send a new request if it should still go",
				cause, rec.TargetTeam, status), AuditEntry{Event: "unconfirmed"}, check)
	}
	rec.UpdatedAt = time.Now().UTC()
	if err := w.save(ctx, rec, false, checked); err != nil {
		return err
	}
	return w.later("resolving an interrupted call", w.cfg.real(expDelay(w.cfg.ConfirmFirst, w.cfg.ConfirmMax, rec.Checks)))
}

// listFailure reports whether a failed team.externalTeams.list will fail
// the same way however often it is retried — Slack refused the token or the
// request, or the org-wide installation is gone — and Slack's code for it.
// Anything else (a pacing wait, a 429, a 5xx) is retried.
func listFailure(err error) (code string, final bool) {
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, ErrUnknownEnterprise), errors.Is(err, ErrNoGridInstall):
		return events.DisconnectErrNoGridInstall, true
	}
	code = slackapi.ErrorCode(err)
	return code, code != "" && Classify(code) == Final
}

// listAdvice says why a list failed and what to do, for a person.
func listAdvice(code string) string {
	if code == events.DisconnectErrNoGridInstall {
		return "the org-wide installation is gone; reinstall the app on the org"
	}
	return "team.externalTeams.list answered " + code + "; " + advice(code)
}

func describeStatus(target string, found bool, status string) string {
	if !found {
		return "team.externalTeams.list no longer lists " + target
	}
	return "team.externalTeams.list shows " + target + " " + status
}

// dryRun reports what a request would do, calling nothing but the list.
func (w *Worker) dryRun(ctx context.Context, rec Record) error {
	team, found, raw, err := w.teamStatus(ctx, rec.EnterpriseID, rec.TargetTeam, rec.RequestID)
	if code, final := listFailure(err); final {
		return w.transition(ctx, &rec, events.DisconnectFailed, code, "dry run: "+listAdvice(code), AuditEntry{Event: "failed"})
	}
	if err != nil {
		return err
	}
	msg := "dry run: would disconnect " + rec.TargetTeam + " (" + team.TeamName + ", " + team.ConnectionStatus + ")"
	if !found || team.ConnectionStatus == slackapi.StatusDisconnected {
		msg = "dry run: nothing to do, " + describeStatus(rec.TargetTeam, found, team.ConnectionStatus)
	}
	check := step{audit: []AuditEntry{w.entry(rec, AuditEntry{Event: "confirm_check", SlackMethod: slackapi.MethodExternalTeamsList, SlackResponse: raw, Message: msg})}}
	return w.transitionWith(ctx, &rec, events.DisconnectCompleted, "", msg, AuditEntry{Event: "completed"}, check)
}

// teamStatus finds the target in the enterprise's external teams, from a
// snapshot at most one Tier 2 interval old, else from a fresh, paced list.
// raw is the target's entry as Slack listed it (null when absent).
//
// The list stops at the page holding the target. Every page fetched is
// recorded (the next cursor, under the holder) in Redis, so a scan that has
// to wait for its next Tier 2 slot longer than MaxBlock goes on from there on
// the next delivery instead of starting again: an enterprise with many pages
// of external teams is scanned a page per slot however short MaxBlock is.
func (w *Worker) teamStatus(ctx context.Context, e, target, holder string) (slackapi.ExternalTeam, bool, json.RawMessage, error) {
	find := func(teams []slackapi.ExternalTeam) (slackapi.ExternalTeam, json.RawMessage, bool) {
		for _, t := range teams {
			if t.TeamID == target {
				raw, _ := json.Marshal(t)
				return t, raw, true
			}
		}
		return slackapi.ExternalTeam{}, nil, false
	}
	pace := w.listPace(e)
	if sn, ok, err := w.store.snapshot(ctx, e); err != nil {
		return slackapi.ExternalTeam{}, false, nil, err
	} else if ok && time.Since(sn.FetchedAt) < pace.Every {
		t, raw, found := find(sn.Teams)
		if !found {
			raw = json.RawMessage("null")
		}
		return t, found, raw, nil
	}
	in, err := w.installs.EnterpriseInstall(ctx, e)
	if err != nil {
		return slackapi.ExternalTeam{}, false, nil, err
	}
	holder = "req:" + holder
	sc, resumed, err := w.store.scan(ctx, e, holder)
	if err != nil {
		return slackapi.ExternalTeam{}, false, nil, err
	}
	// all is every team seen, when the scan started in this delivery: a
	// whole list becomes the shared snapshot.
	var all []slackapi.ExternalTeam
	for {
		page, err := w.listPage(ctx, in, pace, holder, w.cfg.MaxBlock, sc.Cursor)
		if err != nil {
			var le *laterError
			if !errors.As(err, &le) {
				// A failed page (an expired cursor among others) starts the scan again.
				_ = w.store.deleteScan(context.WithoutCancel(ctx), e, holder)
			}
			return slackapi.ExternalTeam{}, false, nil, err
		}
		sc.Pages++
		if !resumed {
			all = append(all, page.Organizations...)
		}
		t, raw, found := find(page.Organizations)
		if found || page.NextCursor == "" {
			if err := w.store.deleteScan(ctx, e, holder); err != nil {
				return slackapi.ExternalTeam{}, false, nil, err
			}
			if !resumed && page.NextCursor == "" {
				if err := w.store.saveSnapshot(ctx, e, snapshot{FetchedAt: time.Now().UTC(), Teams: all}); err != nil {
					w.log.Warn("disconnect: saving list snapshot", slog.Any("error", err))
				}
			}
			if !found {
				raw = json.RawMessage("null")
			}
			return t, found, raw, nil
		}
		sc.Cursor = page.NextCursor
		if err := w.store.saveScan(ctx, e, holder, sc); err != nil {
			return slackapi.ExternalTeam{}, false, nil, err
		}
	}
}

// listPage fetches one page of e's external teams when the pacer allows it.
// A slot further away than maxBlock is a laterError.
func (w *Worker) listPage(ctx context.Context, in Install, pace slackapi.Pace, holder string, maxBlock time.Duration, cursor string) (slackapi.ExternalTeamsPage, error) {
	if err := w.pacer.Wait(ctx, pace, holder, maxBlock); err != nil {
		var we *slackapi.WaitError
		if errors.As(err, &we) {
			return slackapi.ExternalTeamsPage{}, w.later("waiting for a Tier 2 slot", we.After)
		}
		return slackapi.ExternalTeamsPage{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	page, _, err := w.slack.ListExternalTeams(cctx, in.Token.Reveal(), slackapi.ListExternalTeamsParams{Limit: 1000, Cursor: cursor})
	cancel()
	w.callDone(ctx, pace, holder)
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		after := w.cfg.real(rl.RetryAfter)
		_ = w.pacer.Penalize(ctx, pace, after)
		return slackapi.ExternalTeamsPage{}, bus.RetryAfter(err, after)
	}
	if err != nil {
		return slackapi.ExternalTeamsPage{}, fmt.Errorf("disconnect: listing external teams of %s: %w", pace.Tenant, err)
	}
	return page, nil
}

// externalTeams lists every external team of e (all pages), paced, sharing
// a snapshot between callers within one Tier 2 interval. It blocks up to
// maxBlock for each page (policies, which run outside deliveries).
func (w *Worker) externalTeams(ctx context.Context, e, holder string, maxBlock time.Duration) ([]slackapi.ExternalTeam, error) {
	pace := w.listPace(e)
	if sn, ok, err := w.store.snapshot(ctx, e); err != nil {
		return nil, err
	} else if ok && time.Since(sn.FetchedAt) < pace.Every {
		return sn.Teams, nil
	}
	in, err := w.installs.EnterpriseInstall(ctx, e)
	if err != nil {
		return nil, err
	}
	var all []slackapi.ExternalTeam
	cursor := ""
	for {
		page, err := w.listPage(ctx, in, pace, holder, maxBlock, cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Organizations...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if err := w.store.saveSnapshot(ctx, e, snapshot{FetchedAt: time.Now().UTC(), Teams: all}); err != nil {
		w.log.Warn("disconnect: saving list snapshot", slog.Any("error", err))
	}
	return all, nil
}

// transition changes rec's state, records it with its audit entry in one
// step, and publishes the result.
func (w *Worker) transition(ctx context.Context, rec *Record, state events.DisconnectState, code, msg string, a AuditEntry) error {
	return w.transitionWith(ctx, rec, state, code, msg, a, step{})
}

// step is what a transition records besides the new state, in the same write.
type step struct {
	// audit are entries that come before the transition's own (a Slack
	// answer that led to it).
	audit []AuditEntry
	// forget deletes the call record: the call definitely failed.
	forget bool
}

// transitionWith is [Worker.transition] that also records s.
func (w *Worker) transitionWith(ctx context.Context, rec *Record, state events.DisconnectState, code, msg string, a AuditEntry, s step) error {
	rec.State, rec.Error, rec.Message = state, code, msg
	rec.UpdatedAt = time.Now().UTC()
	a.State, a.Error, a.Message = string(state), code, msg
	if err := w.save(ctx, *rec, s.forget, append(s.audit, w.entry(*rec, a))...); err != nil {
		return err
	}
	if err := w.republish(ctx, rec); err != nil {
		return err
	}
	if state.Final() {
		return w.notifyJoiners(ctx, *rec)
	}
	return nil
}

// republish stores rec's current result if it was not yet.
func (w *Worker) republish(ctx context.Context, rec *Record) error {
	if rec.Published == rec.State {
		return nil
	}
	res := rec.result()
	if _, err := w.pub.Publish(ctx, events.DisconnectResultSubject(rec.EnterpriseID), events.DisconnectResultMsgID(rec.RequestID, rec.State), res); err != nil {
		return err
	}
	rec.Published = rec.State
	return w.store.Save(ctx, *rec)
}

// notifyJoiners gives every request that joined rec rec's final outcome.
func (w *Worker) notifyJoiners(ctx context.Context, rec Record) error {
	ids, err := w.store.Joiners(ctx, rec.EnterpriseID, rec.RequestID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		j, found, err := w.store.Get(ctx, rec.EnterpriseID, id)
		if err != nil {
			return err
		}
		if !found || j.State.Final() {
			continue
		}
		if err := w.adopt(ctx, j, rec); err != nil {
			return err
		}
	}
	return nil
}

// entry fills a's request fields from rec, its time and worker.
func (w *Worker) entry(rec Record, a AuditEntry) AuditEntry {
	if a.Time.IsZero() {
		a.Time = time.Now().UTC()
	}
	a.EnterpriseID, a.RequestID, a.TargetTeam = rec.EnterpriseID, rec.RequestID, rec.TargetTeam
	a.RequestedBy, a.Reason, a.Worker = rec.RequestedBy, rec.Reason, w.cfg.WorkerID
	if a.State == "" {
		a.State = string(rec.State)
	}
	return a
}

// save writes rec and audit in one step ([Store.Save]); forget also deletes
// the request's call record.
func (w *Worker) save(ctx context.Context, rec Record, forget bool, audit ...AuditEntry) error {
	return w.persist(ctx, rec, audit, func(ctx context.Context) error { return w.store.save(ctx, rec, forget, audit) })
}

// persist runs write, a step that writes audit with whatever else it
// records. A failed write is counted and logged and fails the handler, so
// the step is retried by a redelivery and its entries are never dropped.
// A step that records Slack's answer to a disconnect call — made once, not
// to be asked again — is first retried in place for a while (a quarter of
// AckWait): a redelivery would find the call in flight and learn its outcome
// from team.externalTeams.list, without Slack's own answer.
func (w *Worker) persist(ctx context.Context, rec Record, audit []AuditEntry, write func(context.Context) error) error {
	var b backoff.BackOff = &backoff.StopBackOff{}
	if slices.ContainsFunc(audit, func(a AuditEntry) bool { return a.Event == "slack_call" }) {
		e := backoff.NewExponentialBackOff()
		e.InitialInterval, e.MaxInterval, e.MaxElapsedTime = 20*time.Millisecond, time.Second, w.cfg.AckWait/4
		b = e
	}
	err := backoff.RetryNotify(func() error { return write(ctx) }, backoff.WithContext(b, ctx), func(err error, _ time.Duration) {
		w.auditFailed(rec.EnterpriseID, rec.RequestID, audit, err, true)
	})
	if err != nil && len(audit) > 0 {
		w.auditFailed(rec.EnterpriseID, rec.RequestID, audit, err, false)
	}
	return err
}

// auditFailed counts and logs audit entries that could not be written;
// retrying says whether the write is tried again in place (else the
// handler fails and the message is redelivered).
func (w *Worker) auditFailed(enterprise, requestID string, audit []AuditEntry, err error, retrying bool) {
	w.metrics.auditFailures.Inc()
	evs := make([]string, len(audit))
	for i, a := range audit {
		evs[i] = a.Event
	}
	attrs := []any{slog.String("enterprise", enterprise), slog.String("request_id", requestID),
		slog.Any("events", evs), slog.Any("error", err)}
	if retrying {
		w.log.Warn("disconnect: audit entries not written; trying again", attrs...)
		return
	}
	for _, a := range audit {
		if a.Event == "slack_call" {
			// Slack's answer exists nowhere else: keep it in the log.
			attrs = append(attrs, slog.String("slack_method", a.SlackMethod), slog.Int("slack_status", a.SlackStatus),
				slog.String("slack_response", string(a.SlackResponse)), slog.String("slack_error", a.Error))
		}
	}
	w.log.Error("disconnect: audit entries not written; the step fails and is retried (the message is not acknowledged)", attrs...)
}
