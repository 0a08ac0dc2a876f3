package slackemu

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	codeTTL        = 10 * time.Minute
	accessTokenTTL = 12 * time.Hour // expires_in 43200
)

// authCode is an OAuth code: single use, valid 10 minutes (emulated).
type authCode struct {
	installKey  string
	ws          *workspace
	ent         *enterprise
	userID      string
	scopes      string
	userScopes  string
	redirectURI string
	channel     string
	expires     time.Time
	used        bool
}

// serveAuthorize is Slack's consent screen, answered at once: it redirects
// back to redirect_uri with a code (or error=access_denied for an unknown team).
func (e *Emulator) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != e.cfg.ClientID {
		http.Error(w, "invalid_client_id: this app is not known to the emulated Slack", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("redirect_uri") == "" || redirect.Scheme == "" {
		http.Error(w, "bad_redirect_uri: redirect_uri must be an absolute URL", http.StatusBadRequest)
		return
	}
	back := func(v url.Values) {
		rq := redirect.Query()
		for k, vs := range v {
			rq[k] = vs
		}
		redirect.RawQuery = rq.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
	}
	state := q.Get("state")

	e.mu.Lock()
	now := e.clock.Now()
	code := &authCode{redirectURI: q.Get("redirect_uri"), scopes: q.Get("scope"), userScopes: q.Get("user_scope"),
		channel: q.Get("channel"), expires: now.Add(codeTTL)}
	switch {
	case q.Get("enterprise") != "":
		code.ent = e.world.ents[q.Get("enterprise")]
		if code.ent != nil {
			code.installKey = code.ent.ID
		}
	case q.Get("team") != "":
		code.ws = e.world.teams[q.Get("team")]
		if code.ws != nil {
			code.installKey, code.ent = code.ws.ID, code.ws.Enterprise
		}
	default:
		code.ws = e.world.workspaces[0]
		code.installKey, code.ent = code.ws.ID, code.ws.Enterprise
	}
	if code.installKey == "" {
		e.mu.Unlock()
		back(url.Values{"error": {"access_denied"}, "state": {state}})
		return
	}
	code.userID = q.Get("user")
	if code.userID != "" {
		// The person consenting must be a member of the workspace (or, for
		// an org-wide install, of the Grid org) and not deactivated.
		ref, ok := e.world.users[code.userID]
		member := ok && !ref.user().has(flagDeleted) &&
			((code.ws != nil && code.ws.memberIndex(ref) >= 0) || (code.ws == nil && ref.ws.Enterprise == code.ent))
		if !member {
			e.mu.Unlock()
			back(url.Values{"error": {"access_denied"}, "state": {state}})
			return
		}
	}
	if code.userID == "" {
		ws := code.ws
		if ws == nil && len(code.ent.Workspaces) > 0 {
			ws = code.ent.Workspaces[0]
		}
		if ws != nil && len(ws.Users) > 0 {
			code.userID = ws.Users[0].ID
		}
	}
	value := e.randString(digits, 12) + "." + e.randString(digits, 12) + "." + e.randString("0123456789abcdef", 32)
	e.codes[value] = code
	sweepExpired(e.codes, func(c *authCode) bool { return !now.Before(c.expires) })
	e.mu.Unlock()
	back(url.Values{"code": {value}, "state": {state}})
}

func (e *Emulator) installLocked(key string, ws *workspace, ent *enterprise) *install {
	if in := e.installs[key]; in != nil {
		return in
	}
	in := &install{key: key, ws: ws, ent: ent}
	switch {
	case ws != nil:
		in.botUserID, in.botID = ws.BotUserID, ws.BotID
	case ent != nil:
		in.botUserID, in.botID = ent.BotUserID, ent.BotID
	}
	e.installs[key] = in
	return in
}

func scopeSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, p := range splitList(s) {
		m[p] = true
	}
	return m
}

// newTokenLocked mints a token; rotating tokens are xoxe.xox?- with a 12 h lifetime.
func (e *Emulator) newTokenLocked(in *install, isUser bool, userID, scopes string, rotating bool, now time.Time) *token {
	kind := "xoxb-"
	if isUser {
		kind = "xoxp-"
	}
	v := kind + e.randString(digits, 12) + "-" + e.randString(digits, 13) + "-" + e.randString(alnum, 24)
	t := &token{value: v, inst: in, isUser: isUser, userID: userID, scopes: scopeSet(scopes)}
	if rotating {
		t.value = "xoxe." + v
		t.expires = now.Add(accessTokenTTL)
	}
	e.tokens[t.value] = t
	in.tokens = append(in.tokens, t)
	return t
}

func (e *Emulator) newRefreshLocked(in *install, isUser bool, userID, scopes string) string {
	v := "xoxe-1-" + e.randString(alnum, 40)
	e.refresh[v] = &refreshGrant{inst: in, isUser: isUser, userID: userID, scopes: scopes}
	return v
}

func (e *Emulator) apiOAuthAccess(c *apiCall) (map[string]any, error) {
	if c.arg("client_id") != e.cfg.ClientID {
		return nil, slackErr("invalid_client_id")
	}
	if c.arg("client_secret") != e.cfg.ClientSecret {
		return nil, slackErr("bad_client_secret")
	}
	if c.arg("grant_type") == "refresh_token" {
		return e.refreshLocked(c)
	}
	code := e.codes[c.arg("code")]
	switch {
	case c.arg("code") == "" || code == nil:
		return nil, slackErr("invalid_code")
	case code.used:
		return nil, slackErr("code_already_used")
	case !c.now.Before(code.expires):
		return nil, slackErr("invalid_code")
	case c.arg("redirect_uri") != "" && c.arg("redirect_uri") != code.redirectURI:
		return nil, slackErr("bad_redirect_uri")
	}
	code.used = true
	in := e.installLocked(code.installKey, code.ws, code.ent)
	var out map[string]any
	if code.scopes == "" && code.userScopes != "" {
		// Only user scopes asked for: Slack answers without a bot token.
		out = e.oauthBody(in, nil, c.now)
	} else {
		bot := e.newTokenLocked(in, false, "", code.scopes, true, c.now)
		out = e.oauthBody(in, bot, c.now)
		out["refresh_token"] = e.newRefreshLocked(in, false, "", code.scopes)
	}
	authed := map[string]any{"id": code.userID}
	if code.userScopes != "" {
		ut := e.newTokenLocked(in, true, code.userID, code.userScopes, true, c.now)
		authed["scope"], authed["access_token"], authed["token_type"] = code.userScopes, ut.value, "user"
		authed["expires_in"] = int(accessTokenTTL / time.Second)
		authed["refresh_token"] = e.newRefreshLocked(in, true, code.userID, code.userScopes)
	}
	out["authed_user"] = authed
	if slices.Contains(splitList(code.scopes), "incoming-webhook") {
		out["incoming_webhook"] = e.newWebhookLocked(in, code.channel)
	}
	return out, nil
}

// oauthBody is oauth.v2.access's answer around token t; a nil t (a
// user-scopes-only install) leaves the bot token fields out.
func (e *Emulator) oauthBody(in *install, t *token, now time.Time) map[string]any {
	out := map[string]any{
		"app_id": e.cfg.AppID, "team": nil, "enterprise": nil, "is_enterprise_install": in.ws == nil,
	}
	if t != nil {
		out["access_token"], out["token_type"], out["scope"] = t.value, "bot", t.scopeList()
		out["bot_user_id"], out["expires_in"] = in.botUserID, int(t.expires.Sub(now)/time.Second)
		if t.isUser {
			out["token_type"] = "user"
			delete(out, "bot_user_id")
		}
	}
	if in.ws != nil {
		out["team"] = map[string]any{"id": in.ws.ID, "name": in.ws.Name}
	}
	if in.ent != nil {
		out["enterprise"] = map[string]any{"id": in.ent.ID, "name": in.ent.Name}
	}
	return out
}

// refreshLocked trades a refresh token for a new access token and a new
// refresh token; the old refresh token stops working at once (the old access
// token lives until it expires).
func (e *Emulator) refreshLocked(c *apiCall) (map[string]any, error) {
	rt := c.arg("refresh_token")
	g := e.refresh[rt]
	if rt == "" || g == nil {
		return nil, slackErr("invalid_refresh_token")
	}
	delete(e.refresh, rt)
	if e.installs[g.inst.key] != g.inst {
		return nil, slackErr("invalid_refresh_token")
	}
	t := e.newTokenLocked(g.inst, g.isUser, g.userID, g.scopes, true, c.now)
	out := e.oauthBody(g.inst, t, c.now)
	out["refresh_token"] = e.newRefreshLocked(g.inst, g.isUser, g.userID, g.scopes)
	if g.isUser {
		out["user_id"] = g.userID
	}
	return out, nil
}

// webhook is an incoming webhook made by an install with incoming-webhook.
type webhook struct {
	teamID, channelID, channel string
}

func (e *Emulator) newWebhookLocked(in *install, channel string) map[string]any {
	chID, chName := channel, channel
	switch {
	case channel == "":
		chID, chName = hashID("C", in.key, "general"), "#general"
	case strings.HasPrefix(channel, "#"):
		chID = hashID("C", in.key, channel)
	default:
		chName = "#" + strings.ToLower(channel)
	}
	id := e.randString(alnum, 24)
	e.hooks[id] = &webhook{teamID: in.teamID(), channelID: chID, channel: chName}
	return map[string]any{
		"channel": chName, "channel_id": chID,
		"configuration_url": e.baseURL + "/_emulator/apps/" + e.cfg.AppID + "/webhooks",
		"url":               e.baseURL + "/_emulator/webhook/" + id,
	}
}
