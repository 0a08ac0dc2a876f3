package slackemu

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiError is a Slack error answer: {"ok":false,"error":code,...}.
type apiError struct {
	Code     string
	Needed   string
	Provided string
}

func (e *apiError) Error() string { return e.Code }

func slackErr(code string) error { return &apiError{Code: code} }

// apiCall is one Web API request being served.
type apiCall struct {
	method string
	args   map[string]string
	raw    map[string]json.RawMessage // JSON bodies keep their objects
	tok    *token
	now    time.Time
	r      *http.Request
}

func (c *apiCall) arg(k string) string { return c.args[k] }

// Call is one entry of the call log: a Web API request and its outcome.
type Call struct {
	Method       string            `json:"method"`
	Args         map[string]string `json:"args"`
	OK           bool              `json:"ok"`
	Error        string            `json:"error,omitempty"`
	Status       int               `json:"status"`
	TeamID       string            `json:"team_id,omitempty"`
	EnterpriseID string            `json:"enterprise_id,omitempty"`
	Time         time.Time         `json:"time"`
}

var secretArgs = map[string]bool{"token": true, "client_secret": true, "refresh_token": true, "code": true, "code_verifier": true}

func redact(args map[string]string) map[string]string {
	out := make(map[string]string, len(args))
	for k, v := range args {
		if secretArgs[k] {
			v = "[redacted]"
		}
		out[k] = v
	}
	return out
}

// parseArgs reads arguments the ways Slack accepts them: query string,
// url-encoded or multipart form, or a JSON body (with the token in the
// Authorization header).
func parseArgs(r *http.Request) (map[string]string, map[string]json.RawMessage, error) {
	args := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method == http.MethodPost && ct == "application/json" {
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 4<<20))
		if err != nil {
			return nil, nil, err
		}
		raw := map[string]json.RawMessage{}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := json.Unmarshal(body, &raw); err != nil {
				return nil, nil, slackErr("invalid_json")
			}
		}
		for k, v := range raw {
			var s string
			if json.Unmarshal(v, &s) == nil {
				args[k] = s
			} else {
				args[k] = string(v)
			}
		}
		for k, v := range r.URL.Query() {
			if _, set := args[k]; !set {
				args[k] = v[0]
			}
		}
		return args, raw, nil
	}
	if ct == "multipart/form-data" {
		if err := r.ParseMultipartForm(4 << 20); err != nil {
			return nil, nil, slackErr("invalid_form_data")
		}
	} else if err := r.ParseForm(); err != nil {
		return nil, nil, slackErr("invalid_form_data")
	}
	for k, v := range r.Form {
		if len(v) > 0 {
			args[k] = v[0]
		}
	}
	return args, nil, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	spec, known := e.methods()[method]
	args, raw, perr := parseArgs(r)
	if args == nil {
		args = map[string]string{}
	}
	tokValue := args["token"]
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		tokValue = strings.TrimPrefix(h, "Bearer ")
	}
	if user, pass, ok := r.BasicAuth(); ok && method == "oauth.v2.access" {
		args["client_id"], args["client_secret"] = user, pass
	}

	status, body, call := e.answer(r, method, spec, known, args, raw, perr, tokValue)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(body["_retry_after"].(int)))
		delete(body, "_retry_after")
	}
	e.mu.Lock()
	e.calls = append(e.calls, call)
	if over := len(e.calls) - e.cfg.MaxCalls; over > 0 {
		e.calls = append(e.calls[:0:0], e.calls[over:]...)
	}
	e.mu.Unlock()
	if status >= 500 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body>emulated server error</body></html>")
		return
	}
	writeJSON(w, status, body)
}

// answer serves one call and returns the HTTP status, the JSON body and the
// call-log entry. Order as Slack: faults, authentication, scopes, rate limit, method.
func (e *Emulator) answer(r *http.Request, method string, spec methodSpec, known bool, args map[string]string,
	raw map[string]json.RawMessage, perr error, tokValue string) (int, map[string]any, Call) {
	now := e.clock.Now()
	call := Call{Method: method, Args: redact(args), Time: now}
	fail := func(status int, err error) (int, map[string]any, Call) {
		return failAnswer(call, status, err)
	}
	if !known {
		return fail(http.StatusOK, slackErr("unknown_method"))
	}
	if perr != nil {
		return fail(http.StatusOK, perr)
	}

	// Fault injection comes first: it stands for anything Slack may answer.
	// An after-effect fault lets the call run and replaces its answer.
	if f := e.takeFault(method); f != nil {
		if f.DelayMS > 0 {
			select {
			case <-time.After(time.Duration(f.DelayMS) * time.Millisecond):
			case <-r.Context().Done():
			case <-e.done:
			}
		}
		if !f.AfterEffect {
			if status, body, ok := faultAnswer(f, &call); ok {
				return status, body, call
			}
		} else {
			status, body, real := e.serve(r, method, spec, args, raw, tokValue, call)
			if status != http.StatusOK || !real.OK {
				return status, body, real
			}
			// The effect happened; the answer says it failed.
			real.OK = false
			status, body, _ = faultAnswer(f, &real)
			return status, body, real
		}
	}
	return e.serve(r, method, spec, args, raw, tokValue, call)
}

// failAnswer is Slack's error answer for err, logged on call.
func failAnswer(call Call, status int, err error) (int, map[string]any, Call) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Code: "internal_error"}
	}
	call.Error, call.Status = ae.Code, status
	body := map[string]any{"ok": false, "error": ae.Code}
	if ae.Needed != "" {
		body["needed"], body["provided"] = ae.Needed, ae.Provided
	}
	return status, body, call
}

// faultAnswer is the answer f injects; ok is false for a fault that only delays.
func faultAnswer(f *Fault, call *Call) (int, map[string]any, bool) {
	switch {
	case f.HTTPStatus == http.StatusTooManyRequests:
		call.Status, call.Error = f.HTTPStatus, "ratelimited"
		ra := f.RetryAfter
		if ra <= 0 {
			ra = 1
		}
		return http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited", "_retry_after": ra}, true
	case f.HTTPStatus != 0 && f.HTTPStatus != http.StatusOK:
		call.Status, call.Error = f.HTTPStatus, "http_"+strconv.Itoa(f.HTTPStatus)
		return f.HTTPStatus, map[string]any{"ok": false, "error": call.Error}, true
	case f.Error != "":
		status, body, c := failAnswer(*call, http.StatusOK, slackErr(f.Error))
		*call = c
		return status, body, true
	}
	return 0, nil, false
}

// serve authenticates, checks scopes and the rate limit, and runs the method.
func (e *Emulator) serve(r *http.Request, method string, spec methodSpec, args map[string]string, raw map[string]json.RawMessage,
	tokValue string, call Call) (int, map[string]any, Call) {
	now := call.Time
	fail := func(status int, err error) (int, map[string]any, Call) {
		return failAnswer(call, status, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &apiCall{method: method, args: args, raw: raw, now: now, r: r}
	limitKey := "client:" + args["client_id"]
	if !spec.noToken {
		if tokValue == "" {
			return fail(http.StatusOK, slackErr("not_authed"))
		}
		t := e.tokens[tokValue]
		switch {
		case t == nil:
			return fail(http.StatusOK, slackErr("invalid_auth"))
		case t.revoked:
			return fail(http.StatusOK, slackErr("token_revoked"))
		case !t.expires.IsZero() && !now.Before(t.expires):
			return fail(http.StatusOK, slackErr("token_expired"))
		}
		c.tok = t
		call.TeamID, call.EnterpriseID = t.inst.teamID(), t.inst.enterpriseID()
		if len(spec.scopes) > 0 {
			has := false
			for _, s := range spec.scopes {
				has = has || t.scopes[s]
			}
			if !has {
				return fail(http.StatusOK, &apiError{Code: "missing_scope", Needed: strings.Join(spec.scopes, ","), Provided: t.scopeList()})
			}
		}
		limitKey = t.inst.key
	}
	if !e.cfg.DisableRateLimits {
		if ok, wait := e.limiter.allow(limitKey+"|"+method, tierLimits[spec.tier], now); !ok {
			call.Status, call.Error = http.StatusTooManyRequests, "ratelimited"
			return http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited", "_retry_after": retryAfterSeconds(wait)}, call
		}
	}
	body, err := spec.handle(e, c)
	if err != nil {
		return fail(http.StatusOK, err)
	}
	body["ok"] = true
	call.OK, call.Status = true, http.StatusOK
	if call.TeamID == "" && call.EnterpriseID == "" {
		if t, ok := body["team"].(map[string]any); ok {
			call.TeamID, _ = t["id"].(string)
		}
	}
	return http.StatusOK, body, call
}

// ---- identity helpers (e.mu held) ----

func (e *Emulator) nextSeq() uint64 {
	e.seq++
	return e.seq
}

func (e *Emulator) randString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[e.rng.IntN(len(alphabet))]
	}
	return string(b)
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
const digits = "0123456789"

func (e *Emulator) messageTS(now time.Time) string {
	return fmt.Sprintf("%d.%06d", now.Unix(), e.nextSeq()%1_000_000)
}

// lookupUser finds a user the install can see (its workspace, or its Grid org).
func (e *Emulator) lookupUser(in *install, id string) (*workspace, *user, bool) {
	ref, ok := e.world.users[id]
	if !ok {
		return nil, nil, false
	}
	if in != nil {
		same := in.ws == ref.ws || (in.ent != nil && ref.ws.Enterprise == in.ent)
		if !same {
			return nil, nil, false
		}
	}
	return ref.ws, &ref.ws.Users[ref.pos], true
}

func hashID(prefix string, parts ...string) string {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = io.WriteString(h, p)
		_, _ = h.Write([]byte{0})
	}
	v := h.Sum64()
	b := []byte(prefix)
	for range 10 {
		b = append(b, idAlphabet[v%uint64(len(idAlphabet))])
		v /= uint64(len(idAlphabet))
	}
	return string(b)
}

// ---- methods ----

func (e *Emulator) apiAuthTest(c *apiCall) (map[string]any, error) {
	in := c.tok.inst
	out := map[string]any{"bot_id": in.botID, "user_id": in.botUserID, "user": "orgbridge", "is_enterprise_install": in.ws == nil}
	if c.tok.isUser {
		out["user_id"] = c.tok.userID
		delete(out, "bot_id")
	}
	if in.ws != nil {
		out["team"], out["team_id"], out["url"] = in.ws.Name, in.ws.ID, "https://"+in.ws.Domain+".slack.com/"
	} else {
		out["team"], out["team_id"], out["url"] = in.ent.Name, "", "https://"+in.ent.Domain+".enterprise.slack.com/"
	}
	if in.ent != nil {
		out["enterprise_id"] = in.ent.ID
	}
	return out, nil
}

func (e *Emulator) apiAppsUninstall(c *apiCall) (map[string]any, error) {
	if c.arg("client_id") != e.cfg.ClientID {
		return nil, slackErr("invalid_client_id")
	}
	if c.arg("client_secret") != e.cfg.ClientSecret {
		return nil, slackErr("bad_client_secret")
	}
	in := c.tok.inst
	e.uninstallLocked(in)
	return map[string]any{}, nil
}

// uninstallLocked revokes every token of the install and, like Slack, tells
// the app with app_uninstalled and tokens_revoked events.
func (e *Emulator) uninstallLocked(in *install) {
	var userIDs, botIDs []string
	for _, t := range in.tokens {
		t.revoked = true
		if t.isUser {
			userIDs = append(userIDs, t.userID)
		}
	}
	botIDs = append(botIDs, in.botUserID)
	for k, g := range e.refresh {
		if g.inst == in {
			delete(e.refresh, k)
		}
	}
	if e.installs[in.key] == in {
		delete(e.installs, in.key)
	}
	teamID := in.teamID()
	if teamID == "" && in.ent != nil && len(in.ent.Workspaces) > 0 {
		teamID = in.ent.Workspaces[0].ID
	}
	if e.ingress == "" || teamID == "" {
		return
	}
	events := []map[string]any{
		{"type": "app_uninstalled"},
		{"type": "tokens_revoked", "tokens": map[string]any{"oauth": nonNil(userIDs), "bot": botIDs}},
	}
	for _, ev := range events {
		env := e.envelopeLocked(teamID, in.enterpriseID(), ev)
		e.goBackground(func() { e.deliverEnvelope(env, true) })
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// resolveChannel maps a channel argument to a conversation and, for DMs, the user.
func (e *Emulator) resolveChannel(in *install, ch string) (channel, userID string, err error) {
	switch {
	case ch == "":
		return "", "", slackErr("channel_not_found")
	case strings.HasPrefix(ch, "D"):
		d, ok := e.dms[ch]
		if !ok {
			return "", "", slackErr("channel_not_found")
		}
		return ch, d.userID, nil
	case strings.HasPrefix(ch, "U") || strings.HasPrefix(ch, "W"):
		if _, _, ok := e.lookupUser(in, ch); !ok {
			return "", "", slackErr("channel_not_found")
		}
		return e.openDMLocked(in, ch), ch, nil
	case strings.HasPrefix(ch, "C") || strings.HasPrefix(ch, "G"):
		return ch, "", nil
	}
	return "", "", slackErr("channel_not_found")
}

type dm struct {
	teamID string
	userID string
}

func (e *Emulator) openDMLocked(in *install, userID string) string {
	id := hashID("D", in.key, userID)
	ws, _, _ := e.lookupUser(in, userID)
	e.dms[id] = dm{teamID: ws.ID, userID: userID}
	return id
}

func (e *Emulator) messageTeam(in *install, userID string) string {
	if userID != "" {
		if ws, _, ok := e.lookupUser(in, userID); ok {
			return ws.ID
		}
	}
	if in.ws != nil {
		return in.ws.ID
	}
	return ""
}

func rawOrNil(c *apiCall, k string) json.RawMessage {
	if v, ok := c.raw[k]; ok {
		return v
	}
	if s := c.args[k]; s != "" && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return nil
}

func (e *Emulator) apiPostMessage(c *apiCall) (map[string]any, error) {
	in := c.tok.inst
	ch, uid, err := e.resolveChannel(in, c.arg("channel"))
	if err != nil {
		return nil, err
	}
	blocks, atts := rawOrNil(c, "blocks"), rawOrNil(c, "attachments")
	if c.arg("text") == "" && blocks == nil && atts == nil {
		return nil, slackErr("no_text")
	}
	ts := e.messageTS(c.now)
	e.recordLocked(Message{Source: "chat.postMessage", TeamID: e.messageTeam(in, uid), Channel: ch, UserID: uid,
		Text: c.arg("text"), Blocks: blocks, ThreadTS: c.arg("thread_ts"), Time: c.now})
	msg := map[string]any{"type": "message", "text": c.arg("text"), "user": in.botUserID, "bot_id": in.botID, "ts": ts, "app_id": e.cfg.AppID}
	if blocks != nil {
		msg["blocks"] = blocks
	}
	return map[string]any{"channel": ch, "ts": ts, "message": msg}, nil
}

func (e *Emulator) apiPostEphemeral(c *apiCall) (map[string]any, error) {
	in := c.tok.inst
	uid := c.arg("user")
	if _, u, ok := e.lookupUser(in, uid); !ok || u.has(flagDeleted) {
		return nil, slackErr("user_not_found")
	}
	ch, _, err := e.resolveChannel(in, c.arg("channel"))
	if err != nil {
		return nil, err
	}
	blocks, atts := rawOrNil(c, "blocks"), rawOrNil(c, "attachments")
	if c.arg("text") == "" && blocks == nil && atts == nil {
		return nil, slackErr("no_text")
	}
	ts := e.messageTS(c.now)
	e.recordLocked(Message{Source: "chat.postEphemeral", TeamID: e.messageTeam(in, uid), Channel: ch, UserID: uid,
		Text: c.arg("text"), Blocks: blocks, Time: c.now})
	return map[string]any{"message_ts": ts}, nil
}

func (e *Emulator) apiConversationsOpen(c *apiCall) (map[string]any, error) {
	in := c.tok.inst
	users := splitList(c.arg("users"))
	if len(users) == 0 {
		if ch := c.arg("channel"); ch != "" {
			if _, ok := e.dms[ch]; !ok {
				return nil, slackErr("channel_not_found")
			}
			return map[string]any{"no_op": true, "already_open": true, "channel": map[string]any{"id": ch}}, nil
		}
		return nil, slackErr("users_list_not_supplied")
	}
	for _, u := range users {
		if _, _, ok := e.lookupUser(in, u); !ok {
			return nil, slackErr("user_not_found")
		}
	}
	if len(users) > 8 {
		return nil, slackErr("too_many_users")
	}
	var id string
	if len(users) == 1 {
		id = e.openDMLocked(in, users[0])
	} else {
		id = hashID("G", append([]string{in.key}, users...)...)
	}
	return map[string]any{"no_op": false, "already_open": false, "channel": map[string]any{"id": id}}, nil
}

func (e *Emulator) renderView(c *apiCall, view json.RawMessage, teamID string) map[string]any {
	var v map[string]any
	_ = json.Unmarshal(view, &v)
	if v == nil {
		v = map[string]any{}
	}
	v["id"] = "V" + e.randString(idAlphabet, 10)
	v["team_id"] = teamID
	v["app_id"] = e.cfg.AppID
	v["bot_id"] = c.tok.inst.botID
	v["hash"] = fmt.Sprintf("%d.%s", c.now.Unix(), e.randString(alnum, 8))
	if _, ok := v["blocks"]; !ok {
		v["blocks"] = []any{}
	}
	return v
}

func (e *Emulator) apiViewsPublish(c *apiCall) (map[string]any, error) {
	in := c.tok.inst
	uid := c.arg("user_id")
	if _, _, ok := e.lookupUser(in, uid); !ok {
		return nil, slackErr("user_not_found")
	}
	view := rawOrNil(c, "view")
	var probe struct {
		Type string `json:"type"`
	}
	if view == nil || json.Unmarshal(view, &probe) != nil || probe.Type != "home" {
		return nil, slackErr("invalid_arguments")
	}
	teamID := e.messageTeam(in, uid)
	e.recordLocked(Message{Source: "views.publish", TeamID: teamID, UserID: uid, View: view, Time: c.now})
	return map[string]any{"view": e.renderView(c, view, teamID)}, nil
}

// trigger is a trigger_id handed out with a command or interaction: valid
// for 3 seconds (emulated) and for one view.
type trigger struct {
	teamID, userID string
	expires        time.Time
	used           bool
}

func (e *Emulator) apiViewsOpen(c *apiCall) (map[string]any, error) {
	tid := c.arg("trigger_id")
	tr, ok := e.triggers[tid]
	switch {
	case tid == "" || !ok:
		return nil, slackErr("invalid_trigger_id")
	case tr.used:
		return nil, slackErr("exchanged_trigger_id")
	case !c.now.Before(tr.expires):
		return nil, slackErr("expired_trigger_id")
	}
	view := rawOrNil(c, "view")
	if view == nil {
		return nil, slackErr("invalid_arguments")
	}
	tr.used = true
	e.recordLocked(Message{Source: "views.open", TeamID: tr.teamID, UserID: tr.userID, View: view, Time: c.now})
	return map[string]any{"view": e.renderView(c, view, tr.teamID)}, nil
}

// ---- users ----

const maxUsersPage = 999

func (e *Emulator) installWorkspaces(in *install, teamArg string) ([]*workspace, error) {
	if in.ws != nil {
		return []*workspace{in.ws}, nil
	}
	if teamArg != "" {
		ws := e.world.teams[teamArg]
		if ws == nil || ws.Enterprise != in.ent {
			return nil, slackErr("team_not_found")
		}
		return []*workspace{ws}, nil
	}
	return in.ent.Workspaces, nil
}

func (e *Emulator) apiUsersList(c *apiCall) (map[string]any, error) {
	in := c.tok.inst
	if in.ws == nil && c.arg("team_id") == "" {
		// Slack: team_id is "required if org token is used".
		return nil, slackErr("missing_argument")
	}
	wss, err := e.installWorkspaces(in, c.arg("team_id"))
	if err != nil {
		return nil, err
	}
	total := 0
	for _, ws := range wss {
		total += ws.members()
	}
	limit := 0
	if s := c.arg("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			return nil, slackErr("invalid_limit")
		}
	}
	if limit == 0 {
		if total > 1000 {
			return nil, slackErr("limit_required")
		}
		limit = max(total, 1)
	}
	limit = min(limit, maxUsersPage)
	// The cursor names the next user to list; wi and pos are its workspace
	// and its place in that workspace's listing (own users, then shared ones).
	wi, pos := 0, 0
	if cur := c.arg("cursor"); cur != "" {
		b, err := base64.StdEncoding.DecodeString(cur)
		id, ok := strings.CutPrefix(string(b), "user:")
		ref, found := e.world.users[id]
		if err != nil || !ok || !found {
			return nil, slackErr("invalid_cursor")
		}
		wi, pos = -1, -1
		for i, ws := range wss {
			if p := ws.memberIndex(ref); p >= 0 {
				wi, pos = i, p
				break
			}
		}
		if wi < 0 {
			return nil, slackErr("invalid_cursor")
		}
	}
	withEmail := c.tok.scopes["users:read.email"]
	members := make([]userJSON, 0, min(limit, total))
	for wi < len(wss) && len(members) < limit {
		ws := wss[wi]
		for pos < ws.members() && len(members) < limit {
			home, u := ws.member(pos)
			members = append(members, renderUser(home, u, withEmail))
			pos++
		}
		if pos >= ws.members() {
			wi, pos = wi+1, 0
		}
	}
	next := ""
	for wi < len(wss) && pos >= wss[wi].members() {
		wi, pos = wi+1, 0
	}
	if wi < len(wss) {
		_, u := wss[wi].member(pos)
		next = base64.StdEncoding.EncodeToString([]byte("user:" + u.ID))
	}
	return map[string]any{"members": members, "cache_ts": c.now.Unix(), "response_metadata": map[string]any{"next_cursor": next}}, nil
}

func (e *Emulator) apiUsersInfo(c *apiCall) (map[string]any, error) {
	ws, u, ok := e.lookupUser(c.tok.inst, c.arg("user"))
	if !ok {
		return nil, slackErr("user_not_found")
	}
	return map[string]any{"user": renderUser(ws, u, c.tok.scopes["users:read.email"])}, nil
}

func truthy(s string) bool { return s == "true" || s == "1" }

func (e *Emulator) apiUsergroupsList(c *apiCall) (map[string]any, error) {
	wss, err := e.installWorkspaces(c.tok.inst, c.arg("team_id"))
	if err != nil {
		return nil, err
	}
	out := []groupJSON{}
	for _, ws := range wss {
		for _, g := range ws.Groups {
			if g.Disabled && !truthy(c.arg("include_disabled")) {
				continue
			}
			out = append(out, renderGroup(g, truthy(c.arg("include_users")), truthy(c.arg("include_count"))))
		}
	}
	return map[string]any{"usergroups": out}, nil
}

func (e *Emulator) apiUsergroupsUsersList(c *apiCall) (map[string]any, error) {
	g := e.world.groups[c.arg("usergroup")]
	if g == nil {
		return nil, slackErr("no_such_subteam")
	}
	in := c.tok.inst
	if !(in.ws == g.ws || (in.ent != nil && g.ws.Enterprise == in.ent)) {
		return nil, slackErr("no_such_subteam")
	}
	if g.Disabled && !truthy(c.arg("include_disabled")) {
		return nil, slackErr("no_such_subteam")
	}
	return map[string]any{"users": g.activeMembers()}, nil
}

func (e *Emulator) apiTeamInfo(c *apiCall) (map[string]any, error) {
	in := c.tok.inst
	id := c.arg("team")
	if id == "" && in.ws != nil {
		id = in.ws.ID
	}
	if id == "" {
		return map[string]any{"team": map[string]any{"id": in.ent.ID, "name": in.ent.Name, "domain": in.ent.Domain,
			"email_domain": in.ent.Domain + ".example.com", "icon": map[string]any{"image_default": true}}}, nil
	}
	ws := e.world.teams[id]
	if ws == nil || !(ws == in.ws || (in.ent != nil && ws.Enterprise == in.ent)) {
		return nil, slackErr("team_not_found")
	}
	return map[string]any{"team": renderTeam(ws)}, nil
}

// splitList reads an array argument: a JSON array or a comma-separated list.
func splitList(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "[") {
		var out []string
		if json.Unmarshal([]byte(s), &out) == nil {
			return out
		}
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
