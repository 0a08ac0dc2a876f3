package slackemu

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Sentinel errors of deliveries.
var (
	// ErrNoIngress means no ingress URL is set, so nothing can be delivered.
	ErrNoIngress = errors.New("slackemu: no ingress URL set (Config.IngressURL or SetIngressURL)")
	// ErrUnknownTeam means the team (or enterprise) id is not in the world.
	ErrUnknownTeam = errors.New("slackemu: unknown team")
	// ErrUnknownUser means the user id is not in the world.
	ErrUnknownUser = errors.New("slackemu: unknown user")
)

// Slack's retry schedule for events: ≈ at once, then after 1 and 5 minutes.
var eventRetryDelays = []time.Duration{0, time.Minute, 5 * time.Minute}

const (
	responseURLMaxPosts = 5
	responseURLTTL      = 30 * time.Minute
	triggerTTL          = 3 * time.Second
)

// Delivery is the ingress's answer to one delivery attempt.
type Delivery struct {
	EventID     string `json:"event_id,omitempty"`
	Status      int    `json:"status"`
	Body        string `json:"body"`
	Error       string `json:"error,omitempty"` // http_timeout, connection_failed … when no answer came
	ResponseURL string `json:"response_url,omitempty"`
	TriggerID   string `json:"trigger_id,omitempty"`
}

// Sign returns the X-Slack-Signature value for body at timestamp ts:
// "v0=" + hex(HMAC-SHA256(secret, "v0:"+ts+":"+body)).
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%d:", ts)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// post sends one signed request to the ingress. The signature timestamp is
// real time: the ingress checks it against its own clock.
func (e *Emulator) post(ctx context.Context, path, contentType string, body []byte, hdr http.Header) Delivery {
	e.mu.Lock()
	base := e.ingress
	e.mu.Unlock()
	if base == "" {
		return Delivery{Error: ErrNoIngress.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return Delivery{Error: "unknown_error"}
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", Sign(e.cfg.SigningSecret, ts, body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Delivery{Error: "http_timeout"}
		}
		return Delivery{Error: "connection_failed"}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	d := Delivery{Status: resp.StatusCode, Body: string(b)}
	if resp.Header.Get("X-Slack-No-Retry") == "1" {
		d.Error = "no_retry"
	}
	return d
}

func ok2xx(d Delivery) bool { return d.Status >= 200 && d.Status < 300 }

// ---- events ----

// envelopeLocked wraps an inner event in Slack's event_callback.
func (e *Emulator) envelopeLocked(teamID, enterpriseID string, ev map[string]any) map[string]any {
	now := e.clock.Now()
	if _, ok := ev["event_ts"]; !ok {
		ev["event_ts"] = fmt.Sprintf("%d.%06d", now.Unix(), e.nextSeq()%1_000_000)
	}
	ws := e.world.teams[teamID]
	if enterpriseID == "" && ws != nil && ws.Enterprise != nil {
		enterpriseID = ws.Enterprise.ID
	}
	botUser := ""
	if ws != nil {
		botUser = ws.BotUserID
	}
	env := map[string]any{
		"token": e.cfg.VerificationToken, "team_id": teamID, "api_app_id": e.cfg.AppID, "event": ev,
		"type": "event_callback", "event_id": "Ev" + e.randString(idAlphabet, 10), "event_time": now.Unix(),
		"authorizations": []map[string]any{{"enterprise_id": nullable(enterpriseID), "team_id": teamID,
			"user_id": botUser, "is_bot": true, "is_enterprise_install": false}},
		"is_ext_shared_channel": false, "context_team_id": teamID, "context_enterprise_id": nullable(enterpriseID),
	}
	if enterpriseID != "" {
		env["enterprise_id"] = enterpriseID
	}
	return env
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deliverEnvelope makes the first attempt and, when it gets no 2xx, retries
// in the background as Slack does (stopped by Close). With wait, the retries
// run on this goroutine.
func (e *Emulator) deliverEnvelope(env map[string]any, wait bool) Delivery {
	body, _ := json.Marshal(env)
	id, _ := env["event_id"].(string)
	first := e.post(context.Background(), "/slack/events", "application/json", body, nil)
	first.EventID = id
	if ok2xx(first) || first.Error == "no_retry" || first.Error == ErrNoIngress.Error() {
		return first
	}
	retry := func() {
		last := first
		for i, delay := range eventRetryDelays {
			if !e.sleep(e.clock.Real(delay)) {
				return
			}
			reason := "http_error"
			if last.Error == "http_timeout" || last.Error == "connection_failed" {
				reason = last.Error
			}
			h := http.Header{"X-Slack-Retry-Num": {strconv.Itoa(i + 1)}, "X-Slack-Retry-Reason": {reason}}
			last = e.post(context.Background(), "/slack/events", "application/json", body, h)
			e.log.Debug("slackemu: event retry", "event_id", id, "retry", i+1, "status", last.Status, "error", last.Error)
			if ok2xx(last) || last.Error == "no_retry" {
				return
			}
		}
	}
	if wait {
		retry()
	} else {
		e.goBackground(retry)
	}
	return first
}

// DeliverEvent wraps event in an event_callback for teamID, signs it, posts
// it to the ingress's /slack/events and returns the first attempt's answer;
// retries continue in the background.
func (e *Emulator) DeliverEvent(teamID string, event map[string]any) (Delivery, error) {
	e.mu.Lock()
	ws := e.world.teams[teamID]
	if ws == nil {
		e.mu.Unlock()
		return Delivery{}, fmt.Errorf("%w %q", ErrUnknownTeam, teamID)
	}
	if e.ingress == "" {
		e.mu.Unlock()
		return Delivery{}, ErrNoIngress
	}
	env := e.envelopeLocked(teamID, "", event)
	e.mu.Unlock()
	return e.deliverEnvelope(env, false), nil
}

// ---- commands and interactions ----

// responseURL is a response_url handed out with a command or interaction:
// at most 5 posts within 30 minutes (emulated).
type responseURL struct {
	teamID, userID, channelID string
	created                   time.Time
	posts                     int
}

func (e *Emulator) newResponseURLLocked(teamID, userID, channelID string) string {
	id := e.randString(alnum, 24)
	now := e.clock.Now()
	e.respURLs[id] = &responseURL{teamID: teamID, userID: userID, channelID: channelID, created: now}
	sweepExpired(e.respURLs, func(ru *responseURL) bool { return !now.Before(ru.created.Add(responseURLTTL)) })
	return e.baseURL + "/_emulator/response/" + id
}

func (e *Emulator) newTriggerLocked(teamID, userID string) string {
	id := e.randString(digits, 13) + "." + e.randString(digits, 13) + "." + e.randString("0123456789abcdef", 32)
	now := e.clock.Now()
	e.triggers[id] = &trigger{teamID: teamID, userID: userID, expires: now.Add(triggerTTL)}
	sweepExpired(e.triggers, func(tr *trigger) bool { return !now.Before(tr.expires) })
	return id
}

// sweepMinEntries is the size below which a map of handed-out ids (response
// URLs, trigger ids, OAuth codes) is never swept.
const sweepMinEntries = 64

// sweepDue reports whether a map of handed-out ids that has just grown to n
// entries is due for a sweep: from [sweepMinEntries] on, each time n reaches a
// multiple of a quarter of the power of two at or below it. A map only grows
// one entry at a time, so a sweep comes at least every n/4 inserts and costs n:
// a constant amount per insert, with no state and no goroutine.
func sweepDue(n int) bool {
	if n < sweepMinEntries {
		return false
	}
	step := (1 << (bits.Len(uint(n)) - 1)) / 4
	return n%step == 0
}

// sweepExpired deletes the entries of m that expired, when [sweepDue] says
// so. Called (e.mu held) after each insert, it keeps the maps of a
// long-running emulator to what is still usable plus at most a few recent
// inserts' worth of expired entries. An expired id answers as an unknown one
// once swept (expired_url becomes invalid_url, expired_trigger_id
// invalid_trigger_id; an expired code is invalid_code either way).
func sweepExpired[V any](m map[string]V, expired func(V) bool) {
	if !sweepDue(len(m)) {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
}

// Command is a slash command to deliver.
type Command struct {
	TeamID    string `json:"team_id"`
	UserID    string `json:"user_id"`
	Command   string `json:"command"`
	Text      string `json:"text"`
	ChannelID string `json:"channel_id,omitempty"`
}

func (e *Emulator) actorLocked(teamID, userID string) (*workspace, *user, error) {
	ws := e.world.teams[teamID]
	if ws == nil {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownTeam, teamID)
	}
	if userID == "" {
		for i := range ws.Users {
			if ws.Users[i].Flags&(flagBot|flagDeleted|flagRestricted) == 0 {
				return ws, &ws.Users[i], nil
			}
		}
		return nil, nil, fmt.Errorf("%w: team %s has no active member", ErrUnknownUser, teamID)
	}
	ref, ok := e.world.users[userID]
	if !ok || ws.memberIndex(ref) < 0 {
		return nil, nil, fmt.Errorf("%w %q in team %s", ErrUnknownUser, userID, teamID)
	}
	return ws, ref.user(), nil
}

// DeliverCommand posts a slash command, signed, to the ingress's
// /slack/commands, with the form fields Slack sends.
func (e *Emulator) DeliverCommand(cmd Command) (Delivery, error) {
	e.mu.Lock()
	ws, u, err := e.actorLocked(cmd.TeamID, cmd.UserID)
	if err != nil {
		e.mu.Unlock()
		return Delivery{}, err
	}
	if e.ingress == "" {
		e.mu.Unlock()
		return Delivery{}, ErrNoIngress
	}
	channel := cmd.ChannelID
	if channel == "" {
		channel = hashID("C", ws.ID, "general")
	}
	ru := e.newResponseURLLocked(ws.ID, u.ID, channel)
	tr := e.newTriggerLocked(ws.ID, u.ID)
	form := url.Values{
		"token": {e.cfg.VerificationToken}, "team_id": {ws.ID}, "team_domain": {ws.Domain},
		"channel_id": {channel}, "channel_name": {"general"}, "user_id": {u.ID}, "user_name": {u.Name},
		"command": {cmd.Command}, "text": {cmd.Text}, "api_app_id": {e.cfg.AppID},
		"is_enterprise_install": {"false"}, "response_url": {ru}, "trigger_id": {tr},
	}
	if ws.Enterprise != nil {
		form.Set("enterprise_id", ws.Enterprise.ID)
		form.Set("enterprise_name", ws.Enterprise.Name)
	}
	e.mu.Unlock()
	d := e.post(context.Background(), "/slack/commands", "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	d.ResponseURL, d.TriggerID = ru, tr
	return d, nil
}

// DeliverInteraction posts an interaction payload, signed, to the ingress's
// /slack/interactivity as payload=<json>. fields carry the type-specific
// parts (actions, view, container, message, callback_id …); type defaults to
// block_actions. team, user, api_app_id, token, trigger_id and response_url
// are filled in as Slack does.
func (e *Emulator) DeliverInteraction(teamID, userID string, fields map[string]any) (Delivery, error) {
	e.mu.Lock()
	ws, u, err := e.actorLocked(teamID, userID)
	if err != nil {
		e.mu.Unlock()
		return Delivery{}, err
	}
	if e.ingress == "" {
		e.mu.Unlock()
		return Delivery{}, ErrNoIngress
	}
	p := map[string]any{}
	for k, v := range fields {
		p[k] = v
	}
	if _, ok := p["type"]; !ok {
		p["type"] = "block_actions"
	}
	team := map[string]any{"id": ws.ID, "domain": ws.Domain}
	var ent any
	if ws.Enterprise != nil {
		team["enterprise_id"], team["enterprise_name"] = ws.Enterprise.ID, ws.Enterprise.Name
		ent = map[string]any{"id": ws.Enterprise.ID, "name": ws.Enterprise.Name}
	}
	p["team"], p["enterprise"], p["is_enterprise_install"] = team, ent, false
	p["user"] = map[string]any{"id": u.ID, "username": u.Name, "name": u.Name, "team_id": ws.ID}
	p["api_app_id"], p["token"] = e.cfg.AppID, e.cfg.VerificationToken
	tr := e.newTriggerLocked(ws.ID, u.ID)
	p["trigger_id"] = tr
	ru := ""
	if p["type"] != "view_submission" && p["type"] != "view_closed" {
		channel := ""
		if ch, ok := p["channel"].(map[string]any); ok {
			channel, _ = ch["id"].(string)
		}
		ru = e.newResponseURLLocked(ws.ID, u.ID, channel)
		p["response_url"] = ru
	}
	e.mu.Unlock()
	js, err := json.Marshal(p)
	if err != nil {
		return Delivery{}, fmt.Errorf("slackemu: interaction payload: %w", err)
	}
	body := url.Values{"payload": {string(js)}}.Encode()
	d := e.post(context.Background(), "/slack/interactivity", "application/x-www-form-urlencoded", []byte(body), nil)
	d.ResponseURL, d.TriggerID = ru, tr
	return d, nil
}

// ---- what the app sent back ----

// Message is something the app sent to people: a response_url post,
// chat.postEphemeral, chat.postMessage (DMs included), views.publish (App
// Home), views.open or an incoming webhook post.
type Message struct {
	Seq             uint64          `json:"seq"`
	Source          string          `json:"source"`
	TeamID          string          `json:"team_id,omitempty"`
	Channel         string          `json:"channel,omitempty"`
	UserID          string          `json:"user_id,omitempty"`
	Text            string          `json:"text,omitempty"`
	Blocks          json.RawMessage `json:"blocks,omitempty"`
	View            json.RawMessage `json:"view,omitempty"`
	ThreadTS        string          `json:"thread_ts,omitempty"`
	ResponseType    string          `json:"response_type,omitempty"`
	ReplaceOriginal bool            `json:"replace_original,omitempty"`
	DeleteOriginal  bool            `json:"delete_original,omitempty"`
	Time            time.Time       `json:"time"`
}

func (e *Emulator) recordLocked(m Message) {
	m.Seq = e.nextSeq()
	e.messages = append(e.messages, m)
}

// servePost records a response_url or incoming-webhook post.
func (e *Emulator) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	var m struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
		ThreadTS        string          `json:"thread_ts"`
	}
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := json.Unmarshal(body, &m); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "invalid_payload"})
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	id := r.PathValue("id")
	msg := Message{Text: m.Text, Blocks: m.Blocks, ResponseType: m.ResponseType, ReplaceOriginal: m.ReplaceOriginal,
		DeleteOriginal: m.DeleteOriginal, ThreadTS: m.ThreadTS, Time: now}
	if r.PathValue("kind") == "webhook" {
		h := e.hooks[id]
		if h == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "no_service"})
			return
		}
		msg.Source, msg.TeamID, msg.Channel = "incoming_webhook", h.teamID, h.channelID
		e.recordLocked(msg)
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "ok")
		return
	}
	ru := e.respURLs[id]
	switch {
	case ru == nil:
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "invalid_url"})
		return
	case !now.Before(ru.created.Add(responseURLTTL)):
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "expired_url"})
		return
	case ru.posts >= responseURLMaxPosts:
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "used_url"})
		return
	}
	if m.Text == "" && len(m.Blocks) == 0 && !m.DeleteOriginal {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	ru.posts++
	msg.Source, msg.TeamID, msg.UserID, msg.Channel = "response_url", ru.teamID, ru.userID, ru.channelID
	e.recordLocked(msg)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
