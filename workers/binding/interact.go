package binding

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// Action ids of the buttons orgbridge renders.
const (
	ActionConnect       = "orgbridge_connect"
	ActionInstall       = "orgbridge_install"
	ActionDeleteMapping = "orgbridge_delete_mapping"
)

// Ticket is what a "connect" button carries (in Redis, behind its id): who
// asked, where, and the scope the binding is kept under.
type Ticket struct {
	AppID        string `json:"app_id"`
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id,omitempty"`
	Scope        string `json:"scope"`
	SlackUserID  string `json:"slack_user_id"`
	ChannelID    string `json:"channel_id,omitempty"`
}

// actor is who did something, where.
type actor struct {
	app, team, ent, user, channel string
	responseURL, triggerID        string
	orgWide                       bool
}

// scope is the tenant bindings and mappings are kept under: the team, or the
// enterprise when the app serves it through an org-wide install.
func (w *Worker) scope(ctx context.Context, a actor) string {
	if a.ent != "" && (a.orgWide || a.team == "") {
		return a.ent
	}
	if a.ent != "" {
		if _, err := w.cfg.Installations.Get(ctx, a.app, a.ent, a.team); errors.Is(err, store.ErrNoInstallation) {
			if _, err := w.cfg.Installations.Get(ctx, a.app, a.ent, ""); err == nil {
				return a.ent
			}
		}
	}
	return a.team
}

// gateResult is the outcome of [Worker.gate]: an identity, or a prompt.
type gateResult struct {
	binding *Binding
	mapping *mapping.Mapping
	// prompt, when set, is what to tell the user instead; connect says whether
	// to offer the connect button, install the install button.
	prompt  string
	connect bool
	install bool
}

// Texts of the gate's prompts.
const (
	msgNotInstalled = "orgbridge isn't installed in this workspace (or its installation was removed). " +
		"Install the app to continue; then connect your org."
	msgNotConnected = "This workspace isn't connected to an org yet. Connect it to continue: you log into the org once, for every app in this workspace."
)

// gate decides whether a user may go on: the app must be installed where
// they are, the workspace validly bound to an org that still works, and the
// user mapped in it, with a working org session.
func (w *Worker) gate(ctx context.Context, ws string, a actor) (*gateResult, error) {
	if a.app != "" {
		_, err := w.cfg.Installations.Find(ctx, a.app, a.ent, a.team)
		if errors.Is(err, store.ErrNoInstallation) {
			return &gateResult{install: true, prompt: msgNotInstalled}, nil
		}
		if err != nil {
			return nil, err
		}
	}
	b, err := w.cfg.Bindings.Get(ctx, ws)
	if err != nil {
		return nil, err
	}
	switch {
	case b == nil:
		return &gateResult{connect: true, prompt: msgNotConnected}, nil
	case !b.Valid:
		return &gateResult{binding: b, connect: true, prompt: msgOrgGone(b)}, nil
	}
	m, err := w.cfg.Mappings.Get(ctx, ws, a.user)
	if err != nil && !errors.Is(err, mapping.ErrNotFound) {
		return nil, err
	}
	mapped := err == nil && m.OrgID == b.OrgID
	var mine *mapping.Mapping
	if mapped {
		mine = m
	}
	if g, err := w.checkOrg(ctx, ws, b, mine); err != nil || g != nil {
		return g, err
	}
	if !mapped {
		p := "Connect your Slack account to " + orgLabel(b.OrgName, b.OrgID) + " to continue. You log in once for every app in this workspace."
		if as, aerr := w.cfg.Mappings.Association(ctx, ws, b.OrgID, a.user); aerr == nil {
			p += " Use the same org user as before: " + as.Username + "."
		}
		return &gateResult{binding: b, connect: true, prompt: p}, nil
	}
	if g, err := w.checkOrgSession(ctx, ws, b, m); err != nil || g != nil {
		return g, err
	}
	return &gateResult{binding: b, mapping: m}, nil
}

// checkOrgSession verifies, at most every OrgCheckEvery, that the user's org
// session still works. The org refusing the app (the user's permission or the
// org's) is said as such, every time, and changes nothing: the mapping works
// again once an admin grants it. A refused refresh alone does not say why:
// the user may have revoked the app, the token may have expired by policy, an
// admin may have deactivated the user, or the whole org may have expired. So
// orgbridge asks the org with another token ([Worker.probe]): none working
// means the org is gone and the binding is marked invalid; a user the org
// shows inactive (or gone) is fully revoked, as an admin deactivation
// requires; anything else only ends that user's mapping (the association
// stays, so they reconnect with the same org user). Either way the workspace
// stays bound.
func (w *Worker) checkOrgSession(ctx context.Context, ws string, b *Binding, m *mapping.Mapping) (*gateResult, error) {
	if m.RefreshToken == "" {
		return nil, nil // imported mapping: the user has no org session of their own yet
	}
	due, err := w.cfg.Mappings.CheckDue(ctx, ws, m.SlackUserID)
	if err != nil || !due {
		return nil, err
	}
	tok, err := w.cfg.Org.Refresh(ctx, orgapi.Secret(m.RefreshToken))
	if err == nil {
		ui, uerr := w.cfg.Org.UserInfo(ctx, tok.AccessToken)
		switch {
		case uerr == nil && !ui.Active:
			return w.revokeUser(ctx, ws, b, m)
		case uerr == nil:
			return nil, w.cfg.Mappings.MarkChecked(ctx, ws, m.SlackUserID, w.cfg.OrgCheckEvery)
		case errors.Is(uerr, orgapi.ErrInvalidToken):
			err = uerr
		default:
			return nil, uerr
		}
	}
	switch {
	case errors.Is(err, orgapi.ErrOrgNotPermitted):
		w.log.Info("org does not permit the app", "workspace", ws, "org", b.OrgID, "slack_user", m.SlackUserID)
		w.orgBlocked(ctx, ws)
		return &gateResult{binding: b, prompt: msgOrgBlocked(b)}, nil
	case errors.Is(err, orgapi.ErrUserNotPermitted):
		w.log.Info("org user not permitted to use the app", "workspace", ws, "org", b.OrgID, "slack_user", m.SlackUserID, "org_user", m.OrgUserID)
		return &gateResult{binding: b, prompt: msgUserBlocked(b, m.Username)}, nil
	case !errors.Is(err, orgapi.ErrInvalidGrant) && !errors.Is(err, orgapi.ErrInvalidToken):
		return nil, err
	}
	res, err := w.probe(ctx, ws, b, "", m.RefreshToken)
	if err != nil {
		return nil, err
	}
	switch res.health {
	case orgGone:
		return w.orgGone(ctx, ws, b)
	case orgBlocked:
		w.orgBlocked(ctx, ws)
		return &gateResult{binding: b, prompt: msgOrgBlocked(b)}, nil
	}
	if res.tok != nil {
		active, err := w.orgUserActive(ctx, res.tok, m.OrgUserID)
		if err != nil {
			return nil, err
		}
		if !active {
			return w.revokeUser(ctx, ws, b, m)
		}
	}
	if _, err := w.cfg.Mappings.Delete(ctx, ws, m.SlackUserID); err != nil && !errors.Is(err, mapping.ErrNotFound) {
		return nil, err
	}
	w.log.Info("org session of the user ended (token revoked or expired): mapping removed, association kept",
		"workspace", ws, "slack_user", m.SlackUserID, "org_user", m.OrgUserID)
	return &gateResult{binding: b, connect: true, prompt: "Your org login as " + m.Username +
		" is no longer valid (it was revoked or expired). Connect again to continue, with the same org user (" + m.Username + ")."}, nil
}

// revokeUser fully revokes m: the org shows its org user inactive.
func (w *Worker) revokeUser(ctx context.Context, ws string, b *Binding, m *mapping.Mapping) (*gateResult, error) {
	if _, err := w.cfg.Mappings.Revoke(ctx, ws, m.SlackUserID, m.OrgID); err != nil {
		return nil, err
	}
	w.audit(ctx, ws, AuditEntry{Action: AuditUserRevoked, OrgID: m.OrgID, Actor: "orgbridge", Mappings: 1,
		Detail: "the org shows " + m.Username + " inactive: Slack user " + m.SlackUserID + " fully revoked"})
	return &gateResult{binding: b, connect: true, prompt: "Your org user " + m.Username +
		" is no longer active. Connect again with another user of the org."}, nil
}

// connectURL issues a ticket and returns the URL of the "connect" button.
func (w *Worker) connectURL(ctx context.Context, ws string, a actor) (string, error) {
	id, err := w.cfg.States.IssueTicket(ctx, Ticket{AppID: a.app, TeamID: a.team, EnterpriseID: a.ent, Scope: ws,
		SlackUserID: a.user, ChannelID: a.channel})
	if err != nil {
		return "", err
	}
	return w.cfg.PublicURL + "/org/connect?ticket=" + url.QueryEscape(id), nil
}

// installURL is where the "install" button leads: the ingress's install
// route, for the user's workspace (or their Grid org).
func (w *Worker) installURL(a actor) string {
	q := url.Values{}
	switch {
	case a.team != "":
		q.Set("team", a.team)
	case a.ent != "":
		q.Set("enterprise", a.ent)
	}
	u := w.cfg.PublicURL + "/slack/install"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func promptBlocks(text, connectURL string) []slack.Block {
	return buttonBlocks(text, ActionConnect, "Connect to org", connectURL)
}

// buttonBlocks is text, and under it a link button when url is set.
func buttonBlocks(text, action, label, url string) []slack.Block {
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}
	if url != "" {
		btn := slack.NewButtonBlockElement(action, strings.TrimPrefix(action, "orgbridge_"), slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
		btn.URL = url
		btn.Style = slack.StylePrimary
		blocks = append(blocks, slack.NewActionBlock(action+"_actions", btn))
	}
	return blocks
}

// promptView is the blocks of g's prompt: with an install button, a
// connect button (a fresh ticket), or none.
func (w *Worker) promptView(ctx context.Context, ws string, a actor, g *gateResult) ([]slack.Block, error) {
	switch {
	case g.install:
		return buttonBlocks(g.prompt, ActionInstall, "Install orgbridge", w.installURL(a)), nil
	case g.connect:
		u, err := w.connectURL(ctx, ws, a)
		if err != nil {
			return nil, err
		}
		return promptBlocks(g.prompt, u), nil
	}
	return promptBlocks(g.prompt, ""), nil
}

// reply answers through response_url (ephemeral), the only answer channel a
// command has once the ingress acknowledged it.
func (w *Worker) reply(ctx context.Context, responseURL, text string, blocks []slack.Block) error {
	if responseURL == "" {
		return nil
	}
	if err := w.checkResponseURL(responseURL); err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"response_type": "ephemeral", "text": text, "blocks": blocks, "replace_original": false})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return bus.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.cfg.HTTP.Do(req)
	if err != nil {
		// A response_url is a capability for 30 minutes: never let it reach
		// an error (the bus logs errors), name only its host.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("posting to response_url at %s: %w", req.URL.Host, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		// expired or used up (5 posts / 30 minutes): nothing more can be said there.
		w.log.Info("response_url no longer accepts answers", "status", resp.StatusCode)
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("response_url at %s answered %d", req.URL.Host, resp.StatusCode)
	}
	return nil
}

// checkResponseURL refuses, as a permanent failure of the whole message, a
// response_url that is not Slack's (see Config.ResponseURLs). Slack signs
// what it sends and the ingress checks that, so such a URL was put on NATS by
// someone else: the message is dead-lettered, nothing is posted anywhere, and
// nothing is forwarded to app handlers, which would post to it too.
func (w *Worker) checkResponseURL(responseURL string) error {
	if responseURL == "" {
		return nil
	}
	if err := w.cfg.ResponseURLs.Check(responseURL); err != nil {
		w.metrics.responseURLsRefused.Inc()
		w.log.Warn("message refused: its response_url is not Slack's; it was not sent by Slack", "err", err)
		return bus.Permanent(err)
	}
	return nil
}

func (w *Worker) prompt(ctx context.Context, ws string, a actor, g *gateResult) error {
	blocks, err := w.promptView(ctx, ws, a, g)
	if err != nil {
		return err
	}
	return w.reply(ctx, a.responseURL, g.prompt, blocks)
}

func identity(g *gateResult) events.OrgIdentity {
	return events.OrgIdentity{OrgID: g.binding.OrgID, OrgName: g.binding.OrgName, OrgUserID: g.mapping.OrgUserID,
		Username: g.mapping.Username, InstanceURL: g.binding.InstanceURL, MappingID: g.mapping.ID}
}

const helpText = "*orgbridge* connects this workspace to one org, and your Slack account to your org user, once for every app.\n" +
	"• `/orgbridge connect`: connect (or check you are connected)\n" +
	"• `/orgbridge status`: which org this workspace is connected to\n" +
	"• `/orgbridge whoami`: which org user you are\n" +
	"• `/orgbridge mappings`: your mappings (delete them from the app's Home tab)\n" +
	"• `/orgbridge help`: this text"

// HandleCommand gates a slash command: platform subcommands are answered,
// anything else goes to app handlers on app.commands.<command> with the org
// identity attached; unconnected users get a prompt to connect.
func (w *Worker) HandleCommand(ctx context.Context, m *bus.Message) error {
	form, err := url.ParseQuery(string(m.Data))
	if err != nil {
		return bus.Permanent(fmt.Errorf("command is not form-encoded: %w", err))
	}
	a := actor{app: form.Get("api_app_id"), team: form.Get("team_id"), ent: form.Get("enterprise_id"),
		user: form.Get("user_id"), channel: form.Get("channel_id"), responseURL: form.Get("response_url"),
		triggerID: form.Get("trigger_id"), orgWide: form.Get("is_enterprise_install") == "true"}
	if err := w.checkResponseURL(a.responseURL); err != nil {
		return err
	}
	command, text := form.Get("command"), strings.TrimSpace(form.Get("text"))
	subject := events.AppCommandSubject(command)
	if err := events.ValidateSubject(subject); err != nil {
		// The ingress refuses such names; this one was stored before it did, or
		// published on NATS by hand. No app handler can be reached under it and
		// retrying cannot change that: tell the user, then dead-letter it.
		if rerr := w.reply(ctx, a.responseURL, badCommandText, nil); rerr != nil {
			return rerr
		}
		w.markAnswered(ctx, m)
		return bus.Permanent(fmt.Errorf("slash command cannot be forwarded to app handlers: %w", err))
	}
	sub := ""
	if command == w.cfg.PlatformCommand {
		sub, _, _ = strings.Cut(strings.ToLower(text), " ")
		switch sub {
		case "", "help":
			return w.reply(ctx, a.responseURL, helpText, nil)
		case "connect", "status", "whoami", "mappings":
		default:
			return w.reply(ctx, a.responseURL, unknownSubcommand(command, sub), nil)
		}
	}
	ws := w.scope(ctx, a)
	g, err := w.gate(ctx, ws, a)
	if err != nil {
		return err
	}
	if g.prompt != "" {
		return w.prompt(ctx, ws, a, g)
	}
	id := identity(g)
	switch sub {
	case "connect":
		return w.reply(ctx, a.responseURL, "You're connected to "+orgLabel(id.OrgName, id.OrgID)+" as "+id.Username+".", nil)
	case "status":
		return w.reply(ctx, a.responseURL, fmt.Sprintf("This workspace is connected to %s (connected by %s on %s). You are mapped to %s.",
			orgLabel(id.OrgName, id.OrgID), g.binding.ConnectedByUsername, g.binding.ConnectedAt.Format("2006-01-02"), id.Username), nil)
	case "whoami":
		return w.reply(ctx, a.responseURL, fmt.Sprintf("You are %s (org user %s) in %s.", id.Username, id.OrgUserID, orgLabel(id.OrgName, id.OrgID)), nil)
	case "mappings":
		return w.reply(ctx, a.responseURL, fmt.Sprintf("Your mappings:\n• %s: %s (mapping %s, since %s)\nDelete it from the app's Home tab; you will then be asked to reconnect with the same org user.",
			orgLabel(id.OrgName, id.OrgID), id.Username, g.mapping.ID, g.mapping.CreatedAt.Format("2006-01-02")), nil)
	}
	received, _ := time.Parse(time.RFC3339Nano, m.Header.Get(events.HeaderReceivedAt))
	cmd := events.AppCommand{SchemaVersion: events.SchemaVersion, AppID: a.app, Command: command, Text: text,
		TeamID: a.team, EnterpriseID: a.ent, ChannelID: a.channel, SlackUserID: a.user, ResponseURL: a.responseURL,
		TriggerID: a.triggerID, ReceivedAt: received, Org: id}
	// A subject error is permanent (the runner dead-letters the message);
	// anything else is retried.
	_, err = w.cfg.Publish.Publish(ctx, subject, "app:"+m.Identity, cmd)
	return err
}

// unknownSubcommand answers a subcommand of the platform command orgbridge
// does not have: what was not understood, then the help.
func unknownSubcommand(command, sub string) string {
	sub = strings.Map(func(r rune) rune {
		if r == '`' || r == '<' || r == '>' || r == '&' || r == '*' || r == '_' || r == '~' {
			return -1
		}
		return r
	}, sub)
	if len(sub) > 40 {
		sub = strings.ToValidUTF8(sub[:40], "") + "…"
	}
	return "`" + command + " " + sub + "` is not something orgbridge knows.\n" + helpText
}

// badCommandText answers a command whose name cannot be passed on to app handlers.
const badCommandText = "orgbridge cannot pass this command on to an app: its name is too long or has characters Slack does not allow in command names. Check the command's spelling and try again."

// interaction is the part of an interaction payload the worker reads.
type interaction struct {
	Type string `json:"type"`
	Team struct {
		ID string `json:"id"`
	} `json:"team"`
	Enterprise *struct {
		ID string `json:"id"`
	} `json:"enterprise"`
	IsEnterpriseInstall bool `json:"is_enterprise_install"`
	User                struct {
		ID     string `json:"id"`
		TeamID string `json:"team_id"`
	} `json:"user"`
	APIAppID    string `json:"api_app_id"`
	ResponseURL string `json:"response_url"`
	TriggerID   string `json:"trigger_id"`
	Channel     struct {
		ID string `json:"id"`
	} `json:"channel"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

// HandleInteraction answers orgbridge's own buttons (delete a mapping) and
// forwards other interactions of connected users to app.interactions.<app_id>.
func (w *Worker) HandleInteraction(ctx context.Context, m *bus.Message) error {
	form, err := url.ParseQuery(string(m.Data))
	if err != nil {
		return bus.Permanent(fmt.Errorf("interaction is not form-encoded: %w", err))
	}
	raw := form.Get("payload")
	var p interaction
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return bus.Permanent(fmt.Errorf("interaction payload is not JSON: %w", err))
	}
	a := actor{app: p.APIAppID, team: p.Team.ID, user: p.User.ID, channel: p.Channel.ID, responseURL: p.ResponseURL,
		triggerID: p.TriggerID, orgWide: p.IsEnterpriseInstall}
	if err := w.checkResponseURL(a.responseURL); err != nil {
		return err
	}
	if a.team == "" {
		a.team = p.User.TeamID
	}
	if p.Enterprise != nil {
		a.ent = p.Enterprise.ID
	}
	ws := w.scope(ctx, a)
	for _, act := range p.Actions {
		switch act.ActionID {
		case ActionConnect, ActionInstall:
			return nil // a link button: the browser does the work
		case ActionDeleteMapping:
			return w.deleteOwnMapping(ctx, ws, a, act.Value)
		}
	}
	g, err := w.gate(ctx, ws, a)
	if err != nil {
		return err
	}
	if g.prompt != "" {
		return w.prompt(ctx, ws, a, g)
	}
	received, _ := time.Parse(time.RFC3339Nano, m.Header.Get(events.HeaderReceivedAt))
	ev := events.AppInteraction{SchemaVersion: events.SchemaVersion, AppID: a.app, Type: p.Type, TeamID: a.team,
		EnterpriseID: a.ent, SlackUserID: a.user, ResponseURL: a.responseURL, TriggerID: a.triggerID,
		ReceivedAt: received, Org: identity(g), Payload: json.RawMessage(raw)}
	_, err = w.cfg.Publish.Publish(ctx, events.AppInteractionSubject(a.app), "app:"+m.Identity, ev)
	return err
}

func (w *Worker) deleteOwnMapping(ctx context.Context, ws string, a actor, id string) error {
	mp, err := w.cfg.Mappings.GetByID(ctx, id)
	if errors.Is(err, mapping.ErrNotFound) || (err == nil && (mp.SlackUserID != a.user || mp.Workspace != ws)) {
		return w.reply(ctx, a.responseURL, "That mapping no longer exists.", nil)
	}
	if err != nil {
		return err
	}
	if _, err := w.cfg.Mappings.DeleteByID(ctx, id); err != nil && !errors.Is(err, mapping.ErrNotFound) {
		return err
	}
	w.log.Info("user deleted their mapping", "workspace", ws, "slack_user", a.user, "mapping", id)
	if err := w.publishHome(ctx, ws, a); err != nil {
		w.log.Warn("could not refresh App Home", "err", err)
	}
	return w.reply(ctx, a.responseURL, "Mapping deleted. Next time you use an app you will be asked to reconnect, with the same org user ("+mp.Username+").", nil)
}

// appHome is the part of app_home_opened the worker reads.
type appHome struct {
	APIAppID     string `json:"api_app_id"`
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id"`
	Event        struct {
		User    string `json:"user"`
		Channel string `json:"channel"`
		Tab     string `json:"tab"`
	} `json:"event"`
}

// HandleAppHome publishes the user's Home tab: a prompt to connect, or their
// mappings with a Delete button each.
func (w *Worker) HandleAppHome(ctx context.Context, m *bus.Message) error {
	var ev appHome
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("app_home_opened is not JSON: %w", err))
	}
	if ev.Event.Tab != "" && ev.Event.Tab != "home" {
		return nil
	}
	a := actor{app: ev.APIAppID, team: ev.TeamID, ent: ev.EnterpriseID, user: ev.Event.User}
	return w.publishHome(ctx, w.scope(ctx, a), a)
}

func (w *Worker) publishHome(ctx context.Context, ws string, a actor) error {
	client, _, err := w.botClient(ctx, a.app, a.ent, a.team)
	if errors.Is(err, store.ErrNoInstallation) {
		w.log.Info("App Home opened where the app is not installed", "team", a.team, "app", a.app)
		return nil
	}
	if err != nil {
		return err
	}
	g, err := w.gate(ctx, ws, a)
	if err != nil {
		return err
	}
	var blocks []slack.Block
	if g.prompt != "" {
		if blocks, err = w.promptView(ctx, ws, a, g); err != nil {
			return err
		}
	} else {
		blocks = append(blocks, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Your org mappings", false, false)))
		mp := g.mapping
		del := slack.NewButtonBlockElement(ActionDeleteMapping, mp.ID, slack.NewTextBlockObject(slack.PlainTextType, "Delete", false, false))
		del.Style = slack.StyleDanger
		txt := fmt.Sprintf("*%s* as *%s*\nmapping %s, since %s", orgLabel(g.binding.OrgName, mp.OrgID), mp.Username, mp.ID, mp.CreatedAt.Format("2006-01-02"))
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, txt, false, false), nil, slack.NewAccessory(del)))
	}
	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
	_, err = client.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: a.user, View: view})
	return err
}
