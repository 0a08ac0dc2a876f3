package binding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// AADInstallCode is the purpose an install code is sealed for on the stream.
func AADInstallCode(flowID string) string { return "slack-install-code:" + flowID }

// AADOrgCode is the purpose an org OAuth code is sealed for on the stream.
func AADOrgCode(flowID string) string { return "org-connect-code:" + flowID }

func sealedOf(e events.Encrypted) store.Sealed {
	return store.Sealed{KeyID: e.KeyID, Ciphertext: e.Ciphertext}
}

// HandleInstall exchanges the code of a completed Slack OAuth install and
// stores the installation; the outcome goes to the browser waiting on the callback.
func (w *Worker) HandleInstall(ctx context.Context, m *bus.Message) error {
	var in events.SlackInstall
	if err := events.Decode(m.Header, m.Data, &in); err != nil {
		return bus.Permanent(err)
	}
	if in.FlowID == "" {
		return bus.Permanent(errors.New("install message has no flow_id"))
	}
	fail := func(title, msg string) error {
		w.log.Info("install refused", "flow", in.FlowID, "reason", title)
		return w.cfg.States.PutOutcome(ctx, in.FlowID, store.Outcome{Title: title, Message: msg})
	}
	if in.Error != "" {
		return fail("Install cancelled", "Slack reported "+in.Error+": the app was not installed. Start again from "+w.cfg.PublicURL+"/slack/install.")
	}
	code, err := w.cfg.Keys.Open(sealedOf(in.Code), AADInstallCode(in.FlowID))
	if err != nil {
		return bus.Permanent(fmt.Errorf("opening install code: %w", err))
	}
	resp, err := w.exchangeInstallOnce(ctx, in.FlowID, code.Reveal(), in.RedirectURI)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) {
			return fail("Install link expired", "Slack refused the install code ("+se.Err+"). Start the install again from "+w.cfg.PublicURL+"/slack/install.")
		}
		return err
	}
	scopes := strings.Split(resp.Scope, ",")
	inst := &store.Installation{
		AppID: resp.AppID, EnterpriseID: resp.Enterprise.ID, EnterpriseName: resp.Enterprise.Name,
		IsEnterpriseInstall: resp.IsEnterpriseInstall, BotUserID: resp.BotUserID, Scopes: scopes,
		InstallerUserID: resp.AuthedUser.ID, WebhookChannel: resp.IncomingWebhook.Channel,
		WebhookChannelID: resp.IncomingWebhook.ChannelID, WebhookURL: store.Secret(resp.IncomingWebhook.URL),
		BotToken: store.Secret(resp.AccessToken), BotRefreshToken: store.Secret(resp.RefreshToken),
	}
	if !resp.IsEnterpriseInstall {
		inst.TeamID, inst.TeamName = resp.Team.ID, resp.Team.Name
	}
	if inst.AppID == "" {
		inst.AppID = in.AppID
	}
	if resp.ExpiresIn > 0 {
		inst.TokenExpiresAt = time.Now().Add(time.Duration(resp.ExpiresIn) * time.Second).UTC()
	}
	if inst.HasScope("chat:write") && inst.WebhookChannelID == "" && inst.WebhookChannel == "" {
		// Slack issued a token; give it back rather than keep an install we refuse.
		_, _ = w.cfg.Slack.Client(resp.AccessToken).SendAuthRevokeContext(ctx, resp.AccessToken)
		return fail("Pick a channel to post to",
			"This app posts messages (it has the chat:write scope), so the install must carry a channel to post to. "+
				"Start the install again from "+w.cfg.PublicURL+"/slack/install and choose a channel on Slack's consent screen.")
	}
	// Under the install's lock, as token refreshes are: a refresh running now
	// cannot then overwrite this install with the older record.
	lock, err := w.cfg.Locker.ObtainWait(ctx, store.InstallLockKey(inst.AppID, inst.EnterpriseID, inst.TeamID), DefaultConnectLockTTL)
	if err != nil {
		return bus.RetryAfter(err, time.Second)
	}
	err = w.cfg.Installations.SaveFenced(ctx, inst, lock)
	_ = lock.Release(context.WithoutCancel(ctx))
	if errors.Is(err, store.ErrNotReplicated) {
		// Saved on the primary; only a failover in the next instant loses it.
		w.log.Warn("install saved, but no Redis replica has it yet", "app", inst.AppID, "team", inst.TeamID, "err", err)
		w.metrics.unreplicated.WithLabelValues("install").Inc()
		err = nil
	}
	if err != nil {
		return err
	}
	where := inst.TeamName
	if inst.IsEnterpriseInstall {
		where = inst.EnterpriseName + " (every workspace of the organization)"
	}
	w.log.Info("app installed", "app", inst.AppID, "team", inst.TeamID, "enterprise", inst.EnterpriseID)
	return w.cfg.States.PutOutcome(ctx, in.FlowID, store.Outcome{OK: true, Title: "Installed",
		Message: "The app is installed in " + where + ". Run " + w.cfg.PlatformCommand + " in Slack to connect your org."})
}

// aadInstallTokens is the purpose the tokens of an install flow are stashed for.
func aadInstallTokens(flowID string) string { return "slack-install-tokens:" + flowID }

// exchangeInstallOnce exchanges the install's single-use code, or returns the
// answer a previous attempt of the same flow got (see [Worker.exchangeOnce]).
func (w *Worker) exchangeInstallOnce(ctx context.Context, flow, code, redirectURI string) (*slack.OAuthV2Response, error) {
	var resp slack.OAuthV2Response
	if ok, err := w.cfg.Bindings.Stashed(ctx, store.GlobalTenant, flow, aadInstallTokens(flow), &resp); err != nil || ok {
		return &resp, err
	}
	got, err := w.cfg.Slack.Exchange(ctx, code, redirectURI)
	if err != nil {
		return nil, err
	}
	if err := w.cfg.Bindings.Stash(ctx, store.GlobalTenant, flow, aadInstallTokens(flow), got); err != nil {
		w.log.Warn("install tokens of the flow not stashed; a retry will need a new install", "flow", flow, "err", err)
	}
	return got, nil
}

// uninstallEnvelope is the part of app_uninstalled and tokens_revoked the worker reads.
type uninstallEnvelope struct {
	APIAppID     string `json:"api_app_id"`
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id"`
	// EventTime is when Slack sent the event (unix seconds).
	EventTime int64 `json:"event_time"`
	Event     struct {
		Type   string `json:"type"`
		Tokens struct {
			Bot   []string `json:"bot"`
			OAuth []string `json:"oauth"`
		} `json:"tokens"`
	} `json:"event"`
}

// HandleUninstall removes the installation on app_uninstalled, or on
// tokens_revoked naming the bot (either may come first; both are safe to
// repeat). When no app is left installed in the workspace, its binding,
// mappings and associations are cleared, so a reinstall can target a new org.
// An event sent before the stored install was made (queued during an outage,
// handled after a reinstall) changes nothing.
func (w *Worker) HandleUninstall(ctx context.Context, m *bus.Message) error {
	var env uninstallEnvelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		return bus.Permanent(fmt.Errorf("uninstall event is not JSON: %w", err))
	}
	if env.Event.Type == "tokens_revoked" && len(env.Event.Tokens.Bot) == 0 {
		return nil // only user tokens were revoked: the install stays
	}
	app := env.APIAppID
	var scopes []string
	stale := false
	for _, key := range [][2]string{{env.EnterpriseID, env.TeamID}, {env.EnterpriseID, ""}} {
		if key[0] == "" && key[1] == "" {
			continue
		}
		ws, removed, err := w.uninstall(ctx, app, key[0], key[1], env.EventTime, env.Event.Type)
		if err != nil {
			return err
		}
		if removed {
			scopes = append(scopes, ws)
		} else if ws != "" {
			stale = true
		}
	}
	if len(scopes) == 0 {
		if stale {
			return nil // the install there is newer than the event
		}
		scopes = []string{events.Tenant(env.TeamID, env.EnterpriseID)}
	}
	for _, ws := range scopes {
		if err := w.disconnect(ctx, ws); err != nil {
			return err
		}
	}
	return nil
}

// uninstallClockSkew is how much earlier than the install an uninstall
// event's event_time (whole seconds, Slack's clock) may be and still count as
// sent after it.
const uninstallClockSkew = 3 * time.Second

// uninstall deletes the install of app at (ent, team) under its lock, unless
// it was made after the event (sent at eventTime, unix seconds; 0: unknown).
// ws is the install's tenant when there is one; removed says whether it was
// deleted.
func (w *Worker) uninstall(ctx context.Context, app, ent, team string, eventTime int64, typ string) (ws string, removed bool, err error) {
	lock, err := w.cfg.Locker.ObtainWait(ctx, store.InstallLockKey(app, ent, team), DefaultConnectLockTTL)
	if err != nil {
		return "", false, bus.RetryAfter(err, time.Second)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	inst, err := w.cfg.Installations.Get(ctx, app, ent, team)
	if errors.Is(err, store.ErrNoInstallation) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if eventTime > 0 && time.Unix(eventTime, 0).Before(inst.InstalledAt.Add(-uninstallClockSkew)) {
		w.log.Info("uninstall event older than the install; ignored", "app", app, "team", team, "enterprise", ent,
			"event", typ, "event_time", time.Unix(eventTime, 0).UTC(), "installed_at", inst.InstalledAt)
		return inst.Tenant(), false, nil
	}
	if _, err := w.cfg.Installations.Delete(ctx, app, ent, team); err != nil {
		return "", false, err
	}
	w.log.Info("app uninstalled", "app", app, "team", team, "enterprise", ent, "event", typ)
	return inst.Tenant(), true, nil
}

// disconnect clears ws's binding, mappings and associations once no app is
// installed there any more. It decides under the workspace's lock, and the
// clearing writes are fenced by it, so a connect or reinstall racing it
// cannot be half undone.
func (w *Worker) disconnect(ctx context.Context, ws string) error {
	lock, err := w.cfg.Locker.ObtainWait(ctx, LockKey(ws), DefaultConnectLockTTL)
	if err != nil {
		return bus.RetryAfter(err, time.Second)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	apps, err := w.cfg.Installations.AppsAt(ctx, ws)
	if err != nil || len(apps) > 0 {
		return err
	}
	if err := w.cfg.Bindings.Clear(ctx, ws, lock); err != nil {
		return err
	}
	n, err := w.cfg.Mappings.ClearWorkspaceFenced(ctx, ws, lock)
	if err != nil {
		return err
	}
	w.log.Info("workspace disconnected from its org", "workspace", ws, "users", n)
	return nil
}

// RefreshDue refreshes every rotating bot token expiring within RefreshAhead
// and returns how many it refreshed. It reads only the expiry index and the
// installs due ([store.Installations.Due]).
func (w *Worker) RefreshDue(ctx context.Context) (int, error) {
	due, err := w.cfg.Installations.Due(ctx, time.Now().Add(w.cfg.RefreshAhead))
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, in := range due {
		ok, err := w.RefreshInstall(ctx, in.AppID, in.EnterpriseID, in.TeamID)
		if err != nil && !errors.Is(err, store.ErrNoInstallation) {
			errs = append(errs, err)
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// RefreshInstall refreshes one install's bot token if it is due (see
// [Tokens.Refresh]); false when it was not due or another worker holds the
// install's lock.
func (w *Worker) RefreshInstall(ctx context.Context, app, ent, team string) (bool, error) {
	return w.tokens().Refresh(ctx, app, ent, team)
}

// tokens is the worker's [Tokens].
func (w *Worker) tokens() *Tokens {
	return &Tokens{Installations: w.cfg.Installations, Locker: w.cfg.Locker, Slack: w.cfg.Slack,
		RefreshAhead: w.cfg.RefreshAhead, Log: w.log,
		OnUnreplicated: func() { w.metrics.unreplicated.WithLabelValues("rotated_token").Inc() }}
}

// botClient returns a Web API client with a fresh bot token of the install
// serving (ent, team).
func (w *Worker) botClient(ctx context.Context, app, ent, team string) (*slack.Client, *store.Installation, error) {
	return w.tokens().Client(ctx, app, ent, team)
}

// SlackUsers implements mapping.SlackDirectory: every user of workspace ws
// (Slack id → active), listed once with users.list (limit 999, paginated).
// For an org-wide install (ws is a Grid enterprise) it lists the org's
// workspaces with auth.teams.list and each one's users with team_id, as
// Slack requires for an org-level token; Grid user ids are org-wide, so the
// lists merge into one map. It fails with [mapping.ErrNoSlackApp] when no
// app is installed there.
func (w *Worker) SlackUsers(ctx context.Context, ws string) (map[string]bool, error) {
	apps, err := w.cfg.Installations.AppsAt(ctx, ws)
	if err != nil {
		return nil, err
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("%w (%s)", mapping.ErrNoSlackApp, ws)
	}
	// ws is a team (its own install) or an enterprise (an org-wide install).
	c, in, err := w.botClient(ctx, apps[0], "", ws)
	if errors.Is(err, store.ErrNoInstallation) {
		c, in, err = w.botClient(ctx, apps[0], ws, "")
	}
	if err != nil {
		return nil, err
	}
	users := map[string]bool{}
	var teams []string
	switch {
	case in.TeamID != "": // a workspace token: its own workspace
		return users, listSlackUsers(ctx, c, ws, "", users)
	case ws != in.EnterpriseID: // a member workspace served by the org-wide install
		teams = []string{ws}
	default:
		if teams, err = orgTeams(ctx, c, ws); err != nil {
			return nil, err
		}
	}
	for _, team := range teams {
		if err := listSlackUsers(ctx, c, ws, team, users); err != nil {
			return nil, err
		}
	}
	return users, nil
}

// maxRateLimitWait is the longest Slack rate limit a listing waits out inside
// its handler; a longer one is returned, and the bus redelivers the message
// after its Retry-After.
const maxRateLimitWait = 30 * time.Second

// paced runs call, and runs it again after each Slack rate limit of at most
// [maxRateLimitWait], once the Retry-After the 429 named has passed, until it
// answers something else or ctx ends (then ctx's error).
func paced(ctx context.Context, call func() error) error {
	wait := &retryAfter{}
	return backoff.Retry(func() error {
		err := call()
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) && rl.RetryAfter <= maxRateLimitWait {
			wait.next = rl.RetryAfter
			return err
		}
		return backoff.Permanent(err) // nil stays nil
	}, backoff.WithContext(wait, ctx))
}

// retryAfter is the [backoff.BackOff] of rate limits: the next wait is what
// the last 429 asked for.
type retryAfter struct{ next time.Duration }

func (r *retryAfter) NextBackOff() time.Duration { return r.next }
func (r *retryAfter) Reset()                     {}

// orgTeams lists the workspaces of org-wide install ent with auth.teams.list.
func orgTeams(ctx context.Context, c *slack.Client, ent string) ([]string, error) {
	var teams []string
	cursor := ""
	for {
		var page []slack.Team
		var next string
		err := paced(ctx, func() (err error) {
			page, next, err = c.ListTeamsContext(ctx, slack.ListTeamsParameters{Limit: 1000, Cursor: cursor})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing the workspaces of %s: %w", ent, err)
		}
		for _, t := range page {
			teams = append(teams, t.ID)
		}
		if next == "" {
			return teams, nil
		}
		cursor = next
	}
}

// listSlackUsers adds the users listed by users.list (team_id team when
// set) to users.
func listSlackUsers(ctx context.Context, c *slack.Client, ws, team string, users map[string]bool) error {
	opts := []slack.GetUsersOption{slack.GetUsersOptionLimit(999)}
	what := ws
	if team != "" {
		opts = append(opts, slack.GetUsersOptionTeamID(team))
		what = ws + "/" + team
	}
	p := c.GetUsersPaginated(opts...)
	for {
		err := paced(ctx, func() (err error) {
			p, err = p.Next(ctx)
			return err
		})
		if err != nil {
			if p.Done(err) {
				return nil
			}
			return fmt.Errorf("listing the users of %s: %w", what, err)
		}
		for _, u := range p.Users {
			users[u.ID] = !u.Deleted
		}
		if p.Cursor == "" {
			return nil
		}
	}
}

// Disconnect uninstalls the app from in's workspace with a fresh bot token
// ([Tokens.Uninstall]): Slack then sends app_uninstalled and tokens_revoked,
// and [Worker.HandleUninstall] clears the install, the binding and the
// mappings. `orgbridge org disconnect` goes through [Tokens.Uninstall] too.
func (w *Worker) Disconnect(ctx context.Context, in *store.Installation) error {
	return w.tokens().Uninstall(ctx, in)
}
