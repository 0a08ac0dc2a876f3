package binding

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// What a check of a workspace's org found, kept in ob:{W}:binding:probe for
// OrgProbeEvery.
const (
	probeOK              = "ok"
	probeOrgNotPermitted = "org_not_permitted"
	// probeRunning: a worker is checking right now; others go on as if the
	// last check passed.
	probeRunning = "probing"
)

// probeClaimTTL bounds how long a claimed check keeps others from checking
// (a worker that died while checking).
const probeClaimTTL = 30 * time.Second

// maxProbeTokens bounds how many other users' tokens are tried to tell an
// expired org from one user's dead session.
const maxProbeTokens = 3

// orgHealth is what a probe found out about the org a workspace is bound to.
type orgHealth int

const (
	// orgAlive: a token works, or the org answered for a user (it refused
	// the user the app, which only an org that exists does).
	orgAlive orgHealth = iota
	// orgBlocked: the org is there but does not permit the app.
	orgBlocked
	// orgGone: no token orgbridge holds works: the org expired or is no
	// longer valid (or everyone who connected it can no longer log in;
	// the org's answers do not tell the two apart).
	orgGone
)

// probeResult is a probe's finding; tok is a working access token of the
// org when one was found.
type probeResult struct {
	health orgHealth
	tok    *orgapi.Token
}

// Texts for a bound org that stopped working. An admin's invalidation says
// its reason; orgbridge's own says what it found.
func msgOrgGone(b *Binding) string {
	org := orgLabel(b.OrgName, b.OrgID)
	if strings.HasPrefix(b.InvalidReason, reasonAdmin) {
		return "The org this workspace was connected to, " + org + ", is no longer valid for it (" + b.InvalidReason +
			"). Log into a new org to continue."
	}
	return "The org this workspace was connected to, " + org + ", expired or is no longer valid: " +
		"none of the logins orgbridge holds for it works any more. Log into a new org to continue " +
		"(or into " + org + " again, with a user who can still log in)."
}

func msgOrgBlocked(b *Binding) string {
	return orgLabel(b.OrgName, b.OrgID) + " does not permit this app. Ask your org admin to allow the app for the org, then try again."
}

func msgUserBlocked(b *Binding, username string) string {
	return "Your org user " + username + " is not permitted to use this app in " + orgLabel(b.OrgName, b.OrgID) +
		". Ask your org admin to give you access to the app, then try again."
}

// Why a binding was marked invalid: a probe found no working token, or an
// admin said so ([Admin.Invalidate] appends their reason).
const (
	reasonNoToken = "no org login orgbridge holds works any more (the org expired or is no longer valid)"
	reasonAdmin   = "an admin marked it invalid"
)

// checkOrg checks, at most every OrgProbeEvery per workspace, that the org
// ws is bound to still works, on any interaction, mapped user or not: an
// org that expired is found on the interaction itself rather than minutes
// later, and a user who is not mapped yet is not sent to log into a dead
// org. m is the user's mapping in that org, or nil. The answer is a prompt
// when the org is gone (the binding is then invalid, so the next connect
// may bind a new org) or blocks the app; nil when all is well.
func (w *Worker) checkOrg(ctx context.Context, ws string, b *Binding, m *mapping.Mapping) (*gateResult, error) {
	every := w.cfg.OrgProbeEvery
	if every > 0 {
		state, err := w.cfg.Bindings.ProbeState(ctx, ws)
		if err != nil {
			return nil, err
		}
		switch state {
		case probeOrgNotPermitted:
			return &gateResult{binding: b, prompt: msgOrgBlocked(b)}, nil
		case probeOK, probeRunning:
			return nil, nil
		}
		if ok, err := w.cfg.Bindings.ClaimProbe(ctx, ws, probeClaimTTL); err != nil || !ok {
			return nil, err
		}
	}
	var mine store.Secret
	if m != nil {
		mine = m.RefreshToken
	}
	res, err := w.probe(ctx, ws, b, mine, "")
	if err != nil {
		_ = w.cfg.Bindings.ForgetProbe(context.WithoutCancel(ctx), ws) // the next interaction tries again
		return nil, err
	}
	w.metrics.orgProbes.WithLabelValues(res.healthLabel()).Inc()
	switch res.health {
	case orgGone:
		return w.orgGone(ctx, ws, b)
	case orgBlocked:
		w.orgBlocked(ctx, ws)
		return &gateResult{binding: b, prompt: msgOrgBlocked(b)}, nil
	}
	if every > 0 {
		_ = w.cfg.Bindings.SetProbeState(ctx, ws, probeOK, every)
	}
	return nil, nil
}

// orgBlocked remembers, for OrgProbeEvery, that ws's org refuses the app:
// every user of the workspace, mapped or not, is told so meanwhile.
func (w *Worker) orgBlocked(ctx context.Context, ws string) {
	if every := w.cfg.OrgProbeEvery; every > 0 {
		_ = w.cfg.Bindings.SetProbeState(ctx, ws, probeOrgNotPermitted, every)
	}
}

func (r probeResult) healthLabel() string {
	switch r.health {
	case orgBlocked:
		return "org_not_permitted"
	case orgGone:
		return "gone"
	}
	return "ok"
}

// orgGone marks ws's binding invalid (no token of its org works) and
// returns the prompt to log into a new org.
func (w *Worker) orgGone(ctx context.Context, ws string, b *Binding) (*gateResult, error) {
	changed, err := w.cfg.Bindings.Invalidate(ctx, ws, b.OrgID, reasonNoToken)
	if err != nil {
		return nil, err
	}
	if changed {
		w.audit(ctx, ws, AuditEntry{Action: AuditInvalidated, OrgID: b.OrgID, Actor: "orgbridge", Detail: reasonNoToken})
	}
	_ = w.cfg.Bindings.ForgetProbe(context.WithoutCancel(ctx), ws)
	nb := *b
	nb.Valid = false
	return &gateResult{binding: &nb, connect: true, prompt: msgOrgGone(b)}, nil
}

// probe asks the org ws is bound to whether it still accepts the app, by
// refreshing a token: the binding's, then the user's own (mine), then up to
// maxProbeTokens other mapped users'. dead is a token already known not to
// work (skipped). When the binding's own token is dead but another works,
// that one becomes the binding's, and the user who connected the workspace
// is looked up: one the org shows inactive is fully revoked here (a
// user-level failure touches only that user; the workspace stays bound).
func (w *Worker) probe(ctx context.Context, ws string, b *Binding, mine, dead store.Secret) (probeResult, error) {
	tried := map[store.Secret]bool{"": true, dead: true}
	bindingDead := dead != "" && dead == b.RefreshToken
	res := probeResult{health: orgGone}
	var working store.Secret
	// try reports whether the search is over.
	try := func(rt store.Secret) (bool, error) {
		if tried[rt] {
			return false, nil
		}
		tried[rt] = true
		tok, err := w.cfg.Org.Refresh(ctx, orgapi.Secret(rt))
		switch {
		case err == nil:
			res, working = probeResult{health: orgAlive, tok: tok}, rt
			return true, nil
		case errors.Is(err, orgapi.ErrOrgNotPermitted):
			res = probeResult{health: orgBlocked}
			return true, nil
		case errors.Is(err, orgapi.ErrUserNotPermitted):
			res.health = orgAlive // the org is there; look on for a token that works
			return false, nil
		case errors.Is(err, orgapi.ErrInvalidGrant):
			if rt == b.RefreshToken {
				bindingDead = true
			}
			return false, nil
		}
		return true, fmt.Errorf("checking org %s: %w", b.OrgID, err)
	}
	for _, rt := range []store.Secret{b.RefreshToken, mine} {
		if done, err := try(rt); done || err != nil {
			return w.afterProbe(ctx, ws, b, res, working, bindingDead, err)
		}
	}
	others, err := w.cfg.Mappings.Sample(ctx, ws, b.OrgID, maxProbeTokens+2)
	if err != nil {
		return res, err
	}
	n := 0
	for _, o := range others {
		if tried[o.RefreshToken] || n >= maxProbeTokens {
			continue
		}
		n++
		if done, err := try(o.RefreshToken); done || err != nil {
			return w.afterProbe(ctx, ws, b, res, working, bindingDead, err)
		}
	}
	return res, nil
}

// afterProbe adopts a working token for a binding whose own one is dead,
// and revokes the connecting user when the org shows them inactive. Its
// failures are logged: the probe's finding stands.
func (w *Worker) afterProbe(ctx context.Context, ws string, b *Binding, res probeResult, working store.Secret, bindingDead bool, err error) (probeResult, error) {
	if err != nil || res.tok == nil || !bindingDead || working == b.RefreshToken {
		return res, err
	}
	if _, err := w.cfg.Bindings.SetToken(ctx, ws, b.OrgID, working); err != nil {
		w.log.Warn("binding token not replaced", "workspace", ws, "err", err)
	}
	active, err := w.orgUserActive(ctx, res.tok, b.ConnectedByOrgUser)
	if err != nil {
		w.log.Warn("could not tell whether the user who connected the workspace is still active", "workspace", ws, "err", err)
		return res, nil
	}
	if !active {
		u, err := w.cfg.Mappings.RevokeOrgUserIn(ctx, ws, b.OrgID, b.ConnectedByOrgUser, nil)
		if err != nil {
			w.log.Warn("inactive org user not revoked", "workspace", ws, "org_user", b.ConnectedByOrgUser, "err", err)
			return res, nil
		}
		if u != "" {
			w.audit(ctx, ws, AuditEntry{Action: AuditUserRevoked, OrgID: b.OrgID, Actor: "orgbridge", Mappings: 1,
				Detail: "the org shows " + b.ConnectedByUsername + " (who connected the workspace) inactive: Slack user " + u + " fully revoked"})
		}
	}
	return res, nil
}

// orgUserActive asks the org (its SCIM Users resource, with tok) whether org
// user id is active; a user the org no longer has counts as inactive.
func (w *Worker) orgUserActive(ctx context.Context, tok *orgapi.Token, id string) (bool, error) {
	base := strings.TrimRight(tok.InstanceURL, "/") + "/services/scim/v2"
	u, err := orgapi.NewSCIM(base, tok.AccessToken, nil).GetUser(ctx, id)
	switch {
	case errors.Is(err, orgapi.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("asking the org whether user %s is active: %w", id, err)
	}
	return u.IsActive(), nil
}
