package binding

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// Texts people see when connecting fails, one per rule.
func msgAlreadyBound(org string) string {
	return "This workspace is already connected to " + org + ". To connect it to another org, uninstall the app first."
}

func msgSameUserWorkspace(org, username string) string {
	return "This workspace was connected to " + org + " before by " + username + ". A workspace reconnecting to an org it was connected to before must use the same org user: log in as " + username + "."
}

func msgSameUserMapping(username string) string {
	return "Your Slack account was connected to this org as " + username + " before. Deleting a mapping keeps that association, so log in as " + username + " again (an admin can deactivate that org user to free your Slack account)."
}

// msgTaken names the other Slack user as people read it ([Worker.slackName]):
// the text is shown on a web page and posted in Slack, so no Slack markup.
func msgTaken(username, slackUser string) string {
	return "Org user " + username + " is already mapped to another Slack user in this workspace (" + slackUser + "). Log in with your own org user."
}

const (
	msgOrgNotPermitted  = "Your org does not permit this app. Ask your org admin to allow the app for the org, then connect again."
	msgUserNotPermitted = "Your org user is not permitted to use this app. Ask your org admin to give you access to the app, then connect again."
	msgLoginExpired     = "The org login expired or was already used. Run /orgbridge connect in Slack to start again."
)

// orgLabel is how an org is named to people.
func orgLabel(name, id string) string {
	if name != "" && name != id {
		return name + " (" + id + ")"
	}
	return "org " + id
}

// orgName is the org's name as its admins set it (orgapi's REST query); when
// the org does not answer, a name derived from the instance URL.
func (w *Worker) orgName(ctx context.Context, tok *orgapi.Token) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name, err := w.cfg.Org.OrgName(ctx, tok)
	if err != nil {
		w.log.Info("org name not available, naming the org by its instance", "org", tok.OrgID(), "err", err)
		return orgNameFrom(tok.InstanceURL, tok.OrgID())
	}
	return name
}

// orgNameFrom derives a readable name for an org from its instance URL.
func orgNameFrom(instanceURL, orgID string) string {
	if u, err := url.Parse(instanceURL); err == nil && u.Host != "" {
		return u.Host + " " + orgID
	}
	return orgID
}

// HandleOrgConnect finishes the org OAuth flow: exchanges the code, then,
// under the workspace's lock, applies the binding rules, binds the workspace
// if it is not bound, and creates the user's shared mapping.
func (w *Worker) HandleOrgConnect(ctx context.Context, m *bus.Message) error {
	var c events.OrgConnect
	if err := events.Decode(m.Header, m.Data, &c); err != nil {
		return bus.Permanent(err)
	}
	if c.FlowID == "" || c.Scope == "" || c.SlackUserID == "" {
		return bus.Permanent(errors.New("org.connect message needs flow_id, scope and slack_user_id"))
	}
	outcome := func(ok bool, title, msg string) error {
		return w.cfg.States.PutOutcome(ctx, c.FlowID, store.Outcome{OK: ok, Title: title, Message: msg})
	}
	fail := func(title, msg string) error {
		w.log.Info("org connect refused", "flow", c.FlowID, "workspace", c.Scope, "slack_user", c.SlackUserID, "reason", title)
		if err := outcome(false, title, msg); err != nil {
			return err
		}
		// The page may be closed, or never load: say it in Slack too.
		a := actor{app: c.AppID, team: c.TeamID, ent: c.EnterpriseID, user: c.SlackUserID}
		if err := w.tellUser(ctx, a, "*Connecting to the org failed: "+title+".* "+msg); err != nil {
			w.log.Warn("could not tell the user in Slack why connecting failed", "flow", c.FlowID, "slack_user", c.SlackUserID, "err", err)
		}
		return nil
	}
	if c.Error != "" {
		return fail(titleFor(&orgapi.APIError{Code: c.Error, Description: c.ErrorDescription}))
	}
	code, err := w.cfg.Keys.Open(sealedOf(c.Code), AADOrgCode(c.FlowID))
	if err != nil {
		return bus.Permanent(fmt.Errorf("opening org code: %w", err))
	}
	tok, err := w.exchangeOnce(ctx, c.Scope, c.FlowID, code.Reveal())
	if err != nil {
		if title, msg := titleFor(err); title != "" {
			return fail(title, msg)
		}
		return err
	}
	ui, err := w.cfg.Org.UserInfo(ctx, tok.AccessToken)
	if err != nil {
		if title, msg := titleFor(err); title != "" {
			return fail(title, msg)
		}
		return err
	}
	if !ui.Active {
		return fail("Org user inactive", "Your org user is not active. Log in with an active user of the org.")
	}
	org, orgUser, username := tok.OrgID(), tok.UserID(), ui.PreferredUsername

	lockCtx, cancel := context.WithTimeout(ctx, w.cfg.ConnectLockWait)
	lock, err := w.cfg.Locker.ObtainWait(lockCtx, LockKey(c.Scope), DefaultConnectLockTTL)
	cancel()
	if err != nil {
		return bus.RetryAfter(err, time.Second)
	}
	defer lock.Release(context.WithoutCancel(ctx))

	b, err := w.cfg.Bindings.Get(ctx, c.Scope)
	if err != nil {
		return err
	}
	bound := b != nil && b.Valid
	if bound && b.OrgID != org {
		// Before refusing, make sure the bound org still works: one that
		// expired since the last check must not keep the workspace.
		res, err := w.probe(ctx, c.Scope, b, "", "")
		if err != nil {
			return err
		}
		if res.health != orgGone {
			return fail("Already connected to another org", msgAlreadyBound(orgLabel(b.OrgName, b.OrgID)))
		}
		if _, err := w.orgGone(ctx, c.Scope, b); err != nil {
			return err
		}
		b.Valid, bound = false, false
	}
	if !bound {
		past, err := w.cfg.Bindings.History(ctx, c.Scope, org)
		if err != nil {
			return err
		}
		if past != nil && past.OrgUserID != orgUser {
			// The rule asks for the org user who connected the workspace
			// before; one who can no longer log in (inactive, gone) cannot be
			// asked for: they are fully revoked, and this user may connect.
			gone, err := w.freeInactive(ctx, c.Scope, org, tok, past.OrgUserID, past.Username, lock)
			if err != nil {
				return err
			}
			if !gone {
				return fail("Use the same org user as before", msgSameUserWorkspace(orgLabel(past.OrgName, org), past.Username))
			}
		}
	}
	if a, err := w.cfg.Mappings.Association(ctx, c.Scope, org, c.SlackUserID); err == nil && a.OrgUserID != orgUser {
		gone, err := w.freeInactive(ctx, c.Scope, org, tok, a.OrgUserID, a.Username, lock)
		if err != nil {
			return err
		}
		if !gone {
			return fail("Use the same org user as before", msgSameUserMapping(a.Username))
		}
	} else if err != nil && !errors.Is(err, mapping.ErrNotFound) {
		return err
	}
	if !bound {
		if b != nil && b.OrgID != org {
			// Re-bound to a new org: the old org's mappings and associations
			// here go with the old binding (before it is replaced, so a retry
			// still finds the old org to clear).
			n, err := w.cfg.Mappings.RevokeOrgIn(ctx, c.Scope, b.OrgID, lock)
			if err != nil {
				return err
			}
			w.audit(ctx, c.Scope, AuditEntry{Action: AuditOldOrgRemoved, OrgID: b.OrgID, Actor: c.SlackUserID, Mappings: n,
				Detail: fmt.Sprintf("re-bound from %s to %s: the old org's mappings and associations removed", orgLabel(b.OrgName, b.OrgID), org)})
		}
		nb := &Binding{Scope: c.Scope, OrgID: org, OrgName: w.orgName(ctx, tok), InstanceURL: tok.InstanceURL,
			ConnectedByOrgUser: orgUser, ConnectedByUsername: username, ConnectedBySlack: c.SlackUserID,
			ConnectedAt: time.Now().UTC(), Valid: true, RefreshToken: store.Secret(tok.RefreshToken)}
		if err := w.cfg.Bindings.Bind(ctx, nb, lock); err != nil {
			return err
		}
		_ = w.cfg.Bindings.ForgetProbe(ctx, c.Scope)
		w.audit(ctx, c.Scope, AuditEntry{Action: AuditBound, OrgID: org, Actor: c.SlackUserID,
			Detail: "connected to " + orgLabel(nb.OrgName, org) + " by " + username})
		b = nb
	}
	mp, err := w.cfg.Mappings.ConnectFenced(ctx, &mapping.Mapping{Workspace: c.Scope, SlackUserID: c.SlackUserID, OrgID: org,
		OrgUserID: orgUser, Username: username, InstanceURL: tok.InstanceURL, Source: "oauth", RefreshToken: store.Secret(tok.RefreshToken)}, lock)
	var ae *mapping.AssociatedError
	var te *mapping.TakenError
	switch {
	case errors.As(err, &ae):
		return fail("Use the same org user as before", msgSameUserMapping(ae.Username))
	case errors.As(err, &te):
		return fail("Org user already mapped", msgTaken(username, w.slackName(ctx, c.AppID, c.EnterpriseID, c.TeamID, te.SlackUserID)))
	case err != nil:
		return err
	}
	_ = w.cfg.Mappings.MarkChecked(ctx, c.Scope, c.SlackUserID, w.cfg.OrgCheckEvery)
	w.log.Info("user mapped", "workspace", c.Scope, "slack_user", c.SlackUserID, "org", org, "org_user", orgUser, "mapping", mp.ID)
	return outcome(true, "Connected", "This workspace is connected to "+orgLabel(b.OrgName, b.OrgID)+
		" and your Slack account is mapped to "+username+" for every app in this workspace. You can close this tab and go back to Slack.")
}

// aadOrgTokens is the purpose the org tokens of a flow are stashed for.
func aadOrgTokens(flowID string) string { return "org-connect-tokens:" + flowID }

// exchangeOnce exchanges the flow's single-use code, or returns the tokens a
// previous attempt of the same flow got: anything after the exchange may
// fail and be retried (the workspace lock is busy, Redis hiccups, a crash),
// and a second exchange of the code would fail with invalid_grant.
func (w *Worker) exchangeOnce(ctx context.Context, scope, flow, code string) (*orgapi.Token, error) {
	var st stashedOrgToken
	if ok, err := w.cfg.Bindings.Stashed(ctx, scope, flow, aadOrgTokens(flow), &st); err != nil || ok {
		return st.token(), err
	}
	got, err := w.cfg.Org.Exchange(ctx, code)
	if err != nil {
		return nil, err
	}
	if err := w.cfg.Bindings.Stash(ctx, scope, flow, aadOrgTokens(flow), stashOrgToken(got)); err != nil {
		w.log.Warn("org tokens of the flow not stashed; a retry will need a new login", "flow", flow, "err", err)
	}
	return got, nil
}

// stashedOrgToken is an [orgapi.Token] with its secrets in the clear, for
// [Store.Stash] (which seals the whole value): the token's own JSON redacts
// them. The field names are the ones an orgapi.Token had in the stash before.
type stashedOrgToken struct {
	AccessToken, RefreshToken   string
	InstanceURL, ID             string
	IssuedAt                    time.Time
	TokenType, Scope, Signature string
}

func stashOrgToken(t *orgapi.Token) stashedOrgToken {
	return stashedOrgToken{AccessToken: t.AccessToken.Reveal(), RefreshToken: t.RefreshToken.Reveal(), InstanceURL: t.InstanceURL,
		ID: t.ID, IssuedAt: t.IssuedAt, TokenType: t.TokenType, Scope: t.Scope, Signature: t.Signature}
}

func (s stashedOrgToken) token() *orgapi.Token {
	return &orgapi.Token{AccessToken: orgapi.Secret(s.AccessToken), RefreshToken: orgapi.Secret(s.RefreshToken), InstanceURL: s.InstanceURL,
		ID: s.ID, IssuedAt: s.IssuedAt, TokenType: s.TokenType, Scope: s.Scope, Signature: s.Signature}
}

// titleFor turns an org OAuth error into what the person sees; "" when the
// error is not one a person can act on (it is then retried).
func titleFor(err error) (string, string) {
	switch {
	case errors.Is(err, orgapi.ErrOrgNotPermitted):
		return "Org not permitted", msgOrgNotPermitted
	case errors.Is(err, orgapi.ErrUserNotPermitted):
		return "User not permitted", msgUserNotPermitted
	case errors.Is(err, orgapi.ErrInvalidGrant):
		return "Login expired", msgLoginExpired
	case errors.Is(err, orgapi.ErrAccessDenied):
		var ae *orgapi.APIError
		d := ""
		if errors.As(err, &ae) && ae.Description != "" {
			d = " (" + ae.Description + ")"
		}
		return "Login refused", "The org refused the login" + d + ". If the org expired or your user is inactive, log into another org or ask your org admin."
	case errors.Is(err, orgapi.ErrInvalidClient):
		return "orgbridge is misconfigured", "The org does not accept orgbridge's client id or secret. Tell your orgbridge operator (ORG_CLIENT_ID / ORG_CLIENT_SECRET)."
	}
	var ae *orgapi.APIError
	if errors.As(err, &ae) && ae.Status == 0 {
		return "Login failed", "The org answered " + ae.Code + ". Run /orgbridge connect in Slack to try again."
	}
	return "", ""
}

// freeInactive reports whether org user ou, whom a connect rule would have
// the user log in as (the one who connected the workspace before, or the one
// the Slack user was associated with), can no longer log in: the org, asked
// with the connecting user's token, shows them inactive or no longer has
// them. Such a user is fully revoked in ws (the seed's full revocation), so no
// rule holds anyone to them any more. When the org cannot be asked, the rule
// stands.
func (w *Worker) freeInactive(ctx context.Context, ws, org string, tok *orgapi.Token, ou, username string, lock *store.Lock) (bool, error) {
	active, err := w.orgUserActive(ctx, tok, ou)
	if err != nil {
		w.log.Warn("could not tell whether an earlier org user can still log in; the rule stands", "workspace", ws, "org_user", ou, "err", err)
		return false, nil
	}
	if active {
		return false, nil
	}
	u, err := w.cfg.Mappings.RevokeOrgUserIn(ctx, ws, org, ou, lock)
	if err != nil {
		return false, err
	}
	e := AuditEntry{Action: AuditUserRevoked, OrgID: org, Actor: "orgbridge",
		Detail: "the org shows " + username + " inactive, so a new login need not use it: fully revoked"}
	if u != "" {
		e.Mappings, e.Detail = 1, e.Detail+" (Slack user "+u+")"
	}
	w.audit(ctx, ws, e)
	return true, nil
}

// slackName is how Slack user u is named on a page people read: their name
// in Slack (users.info), not Slack markup; "Slack user <id>" when Slack does
// not say.
func (w *Worker) slackName(ctx context.Context, app, ent, team, u string) string {
	c, _, err := w.botClient(ctx, app, ent, team)
	if err == nil {
		info, err := c.GetUserInfoContext(ctx, u)
		if err == nil {
			name := info.RealName
			if name == "" {
				name = info.Profile.DisplayName
			}
			switch {
			case name != "" && info.Name != "":
				return name + " (@" + info.Name + ")"
			case name != "":
				return name
			case info.Name != "":
				return "@" + info.Name
			}
		}
	}
	if err != nil {
		w.log.Info("Slack user's name not available", "slack_user", u, "err", err)
	}
	return "Slack user " + u
}
