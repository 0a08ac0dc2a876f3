package binding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/store"
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
	resp, err := w.cfg.Slack.Exchange(ctx, code.Reveal(), in.RedirectURI)
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
	if err := w.cfg.Installations.Save(ctx, inst); err != nil {
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

// uninstallEnvelope is the part of app_uninstalled and tokens_revoked the worker reads.
type uninstallEnvelope struct {
	APIAppID     string `json:"api_app_id"`
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id"`
	Event        struct {
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
	for _, key := range [][2]string{{env.EnterpriseID, env.TeamID}, {env.EnterpriseID, ""}} {
		if key[0] == "" && key[1] == "" {
			continue
		}
		inst, err := w.cfg.Installations.Get(ctx, app, key[0], key[1])
		if errors.Is(err, store.ErrNoInstallation) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := w.cfg.Installations.Delete(ctx, app, key[0], key[1]); err != nil {
			return err
		}
		scopes = append(scopes, inst.Tenant())
		w.log.Info("app uninstalled", "app", app, "team", key[1], "enterprise", key[0], "event", env.Event.Type)
	}
	if len(scopes) == 0 {
		scopes = []string{events.Tenant(env.TeamID, env.EnterpriseID)}
	}
	for _, ws := range scopes {
		if err := w.disconnect(ctx, ws); err != nil {
			return err
		}
	}
	return nil
}

// disconnect clears ws's binding, mappings and associations once no app is
// installed there any more.
func (w *Worker) disconnect(ctx context.Context, ws string) error {
	apps, err := w.cfg.Installations.AppsAt(ctx, ws)
	if err != nil || len(apps) > 0 {
		return err
	}
	lock, err := w.cfg.Locker.ObtainWait(ctx, LockKey(ws), DefaultConnectLockTTL)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	if err := w.cfg.Bindings.Clear(ctx, ws); err != nil {
		return err
	}
	n, err := w.cfg.Mappings.ClearWorkspace(ctx, ws)
	if err != nil {
		return err
	}
	w.log.Info("workspace disconnected from its org", "workspace", ws, "users", n)
	return nil
}

// RefreshDue refreshes every rotating bot token expiring within RefreshAhead
// and returns how many it refreshed.
func (w *Worker) RefreshDue(ctx context.Context) (int, error) {
	list, err := w.cfg.Installations.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, in := range list {
		if in.BotRefreshToken == "" || time.Until(in.TokenExpiresAt) > w.cfg.RefreshAhead {
			continue
		}
		ok, err := w.RefreshInstall(ctx, in.AppID, in.EnterpriseID, in.TeamID)
		if err != nil {
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
		RefreshAhead: w.cfg.RefreshAhead, Log: w.log}
}

// botClient returns a Web API client with a fresh bot token of the install
// serving (ent, team).
func (w *Worker) botClient(ctx context.Context, app, ent, team string) (*slack.Client, *store.Installation, error) {
	return w.tokens().Client(ctx, app, ent, team)
}

// CheckSlackUser implements mapping.SlackUserChecker with users.info.
func (w *Worker) CheckSlackUser(ctx context.Context, ws, user string) error {
	apps, err := w.cfg.Installations.AppsAt(ctx, ws)
	if err != nil {
		return err
	}
	if len(apps) == 0 {
		return fmt.Errorf("no app is installed in %s to check the user with", ws)
	}
	in, err := w.cfg.Installations.Get(ctx, apps[0], "", ws)
	if errors.Is(err, store.ErrNoInstallation) {
		list, lerr := w.cfg.Installations.List(ctx)
		if lerr != nil {
			return lerr
		}
		for _, x := range list {
			if x.Tenant() == ws && x.AppID == apps[0] {
				in, err = x, nil
			}
		}
	}
	if err != nil {
		return err
	}
	c, _, err := w.botClient(ctx, in.AppID, in.EnterpriseID, in.TeamID)
	if err != nil {
		return err
	}
	u, err := c.GetUserInfoContext(ctx, user)
	if err != nil {
		return fmt.Errorf("Slack does not know user %s in %s (%v)", user, ws, err)
	}
	if u.Deleted {
		return fmt.Errorf("Slack user %s is deactivated", user)
	}
	return nil
}

// Disconnect uninstalls the app from in's workspace with a fresh bot token
// ([Tokens.Uninstall]): Slack then sends app_uninstalled and tokens_revoked,
// and [Worker.HandleUninstall] clears the install, the binding and the
// mappings. `orgbridge org disconnect` goes through [Tokens.Uninstall] too.
func (w *Worker) Disconnect(ctx context.Context, in *store.Installation) error {
	return w.tokens().Uninstall(ctx, in)
}
