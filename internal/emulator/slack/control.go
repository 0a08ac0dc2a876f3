package slackemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The control API under /_emulator/ (JSON), and the Go helpers it mirrors.

func (e *Emulator) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_emulator/deliver/command", e.ctlCommand)
	mux.HandleFunc("POST /_emulator/deliver/interaction", e.ctlInteraction)
	mux.HandleFunc("POST /_emulator/deliver/event", e.ctlEvent)
	mux.HandleFunc("POST /_emulator/users/{id}/deactivate", e.ctlDeactivate)
	e.changeRoutes(mux)
	mux.HandleFunc("GET /_emulator/messages", e.ctlMessages)
	mux.HandleFunc("GET /_emulator/calls", e.ctlCalls)
	mux.HandleFunc("POST /_emulator/faults", e.ctlFaults)
	mux.HandleFunc("DELETE /_emulator/faults", e.ctlClearFaults)
	mux.HandleFunc("GET /_emulator/world", e.ctlWorld)
	mux.HandleFunc("POST /_emulator/tokens", e.ctlTokens)
	mux.HandleFunc("POST /_emulator/{kind}/{id}", func(w http.ResponseWriter, r *http.Request) {
		if k := r.PathValue("kind"); k != "response" && k != "webhook" {
			http.NotFound(w, r)
			return
		}
		e.serveResponseURL(w, r)
	})
}

func ctlError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrUnknownTeam) || errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrUnknownGroup):
		status = http.StatusNotFound
	case errors.Is(err, ErrTaken):
		status = http.StatusConflict
	}
	if errors.Is(err, ErrNoIngress) {
		status = http.StatusConflict
	}
	writeJSON(w, status, map[string]any{"error": err.Error()})
}

func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("body is not the expected JSON: %w", err)
	}
	return nil
}

func (e *Emulator) ctlCommand(w http.ResponseWriter, r *http.Request) {
	var c Command
	if err := decode(r, &c); err != nil {
		ctlError(w, err)
		return
	}
	if !strings.HasPrefix(c.Command, "/") {
		ctlError(w, fmt.Errorf("command %q must start with /", c.Command))
		return
	}
	d, err := e.DeliverCommand(c)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (e *Emulator) ctlInteraction(w http.ResponseWriter, r *http.Request) {
	var fields map[string]any
	if err := decode(r, &fields); err != nil {
		ctlError(w, err)
		return
	}
	team, _ := fields["team_id"].(string)
	user, _ := fields["user_id"].(string)
	delete(fields, "team_id")
	delete(fields, "user_id")
	d, err := e.DeliverInteraction(team, user, fields)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (e *Emulator) ctlEvent(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TeamID string         `json:"team_id"`
		Event  map[string]any `json:"event"`
	}
	if err := decode(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	if _, ok := req.Event["type"].(string); !ok {
		ctlError(w, errors.New("event.type is required"))
		return
	}
	d, err := e.DeliverEvent(req.TeamID, req.Event)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (e *Emulator) ctlDeactivate(w http.ResponseWriter, r *http.Request) {
	d, err := e.DeactivateUser(r.PathValue("id"))
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// Messages returns what the app sent back, in order, filtered by team and
// user when they are not empty.
func (e *Emulator) Messages(teamID, userID string) []Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []Message{}
	for _, m := range e.messages {
		if (teamID == "" || m.TeamID == teamID) && (userID == "" || m.UserID == userID) {
			out = append(out, m)
		}
	}
	return out
}

func (e *Emulator) ctlMessages(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"messages": e.Messages(r.URL.Query().Get("team_id"), r.URL.Query().Get("user_id"))})
}

// Calls returns the call log (tokens and secrets redacted), filtered by
// method when it is not empty.
func (e *Emulator) Calls(method string) []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []Call{}
	for _, c := range e.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func (e *Emulator) ctlCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"calls": e.Calls(r.URL.Query().Get("method"))})
}

// Fault makes the next Count calls of Method (or a Rate share of them, or
// all of them when both are zero) fail: with a Slack Error, an HTTP status
// (429 carries Retry-After RetryAfter seconds, default 1) or just a delay.
// Method "*" matches every method.
//
// AfterEffect makes the call do what it does first (authentication, scopes,
// rate limit and the method's effect, such as a disconnect starting) and
// only then answer with the injected Error or HTTPStatus instead of its
// real answer, as Slack does when "some aspect of the operation succeeded
// before the error was raised". A call the method itself refused keeps its
// real error.
type Fault struct {
	Method      string  `json:"method"`
	Error       string  `json:"error,omitempty"`
	HTTPStatus  int     `json:"http_status,omitempty"`
	DelayMS     int     `json:"delay_ms,omitempty"`
	RetryAfter  int     `json:"retry_after,omitempty"`
	Count       int     `json:"count,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	AfterEffect bool    `json:"after_effect,omitempty"`
}

type fault struct{ Fault }

// InjectFault adds a fault; faults are checked in the order they were added.
func (e *Emulator) InjectFault(f Fault) error {
	switch {
	case f.Method == "":
		return errors.New("slackemu: fault needs a method (or \"*\")")
	case f.Error == "" && f.HTTPStatus == 0 && f.DelayMS == 0:
		return errors.New("slackemu: fault needs error, http_status or delay_ms")
	case f.AfterEffect && f.Error == "" && (f.HTTPStatus == 0 || f.HTTPStatus == http.StatusOK):
		return errors.New("slackemu: an after_effect fault needs error or a non-200 http_status")
	case f.Rate < 0 || f.Rate > 1:
		return fmt.Errorf("slackemu: fault rate %v must be within 0..1", f.Rate)
	case f.Count < 0:
		return fmt.Errorf("slackemu: fault count %d must not be negative", f.Count)
	case f.HTTPStatus != 0 && (f.HTTPStatus < 200 || f.HTTPStatus > 599):
		return fmt.Errorf("slackemu: fault http_status %d is not an HTTP status", f.HTTPStatus)
	}
	e.mu.Lock()
	e.faults = append(e.faults, &fault{f})
	e.mu.Unlock()
	return nil
}

// ClearFaults removes every fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	e.faults = nil
	e.mu.Unlock()
}

// takeFault returns the fault this call of method gets, if any.
func (e *Emulator) takeFault(method string) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range e.faults {
		if f.Method != "*" && f.Method != method {
			continue
		}
		if f.Rate > 0 && e.rng.Float64() >= f.Rate {
			continue
		}
		out := f.Fault
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				e.faults = append(e.faults[:i:i], e.faults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

func (e *Emulator) ctlFaults(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decode(r, &f); err != nil {
		ctlError(w, err)
		return
	}
	if err := e.InjectFault(f); err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (e *Emulator) ctlClearFaults(w http.ResponseWriter, _ *http.Request) {
	e.ClearFaults()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// WorldInfo summarises the seeded world.
type WorldInfo struct {
	Workspaces  []WorkspaceInfo  `json:"workspaces"`
	Enterprises []EnterpriseInfo `json:"enterprises"`
}

// WorkspaceInfo summarises one workspace.
type WorkspaceInfo struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Domain       string `json:"domain"`
	EnterpriseID string `json:"enterprise_id,omitempty"`
	// Users counts every member: the workspace's own users and Shared.
	Users int `json:"users"`
	// Shared are the members whose home is another workspace of the Grid
	// org (one W… id in several workspaces).
	Shared  []string    `json:"shared"`
	Active  int         `json:"active"`
	Guests  int         `json:"guests"`
	Bots    int         `json:"bots"`
	Deleted int         `json:"deleted"`
	Admins  []string    `json:"admins"`
	Groups  []GroupInfo `json:"groups"`
}

// GroupInfo summarises one user group.
type GroupInfo struct {
	ID     string `json:"id"`
	Handle string `json:"handle"`
	Users  int    `json:"users"`
}

// EnterpriseInfo summarises one Grid org.
type EnterpriseInfo struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	Workspaces    []string       `json:"workspaces"`
	ExternalTeams []ExternalInfo `json:"external_teams"`
}

// ExternalInfo is one Slack Connect team and its status now.
type ExternalInfo struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	ConnectionStatus    string `json:"connection_status"`
	LastActiveTimestamp int64  `json:"last_active_timestamp"`
}

// World summarises the world as it is now.
func (e *Emulator) World() WorldInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	out := WorldInfo{Workspaces: []WorkspaceInfo{}, Enterprises: []EnterpriseInfo{}}
	for _, ws := range e.world.workspaces {
		wi := WorkspaceInfo{ID: ws.ID, Name: ws.Name, Domain: ws.Domain, Users: ws.members(), Shared: []string{},
			Admins: []string{}, Groups: []GroupInfo{}}
		if ws.Enterprise != nil {
			wi.EnterpriseID = ws.Enterprise.ID
		}
		for _, r := range ws.Shared {
			wi.Shared = append(wi.Shared, r.user().ID)
		}
		for i := range ws.members() {
			_, u := ws.member(i)
			switch {
			case u.has(flagDeleted):
				wi.Deleted++
			case u.has(flagBot):
				wi.Bots++
			case u.has(flagRestricted):
				wi.Guests++
			default:
				wi.Active++
			}
			if u.has(flagAdmin) && !u.has(flagDeleted) {
				wi.Admins = append(wi.Admins, u.ID)
			}
		}
		for _, g := range ws.Groups {
			wi.Groups = append(wi.Groups, GroupInfo{ID: g.ID, Handle: g.Handle, Users: len(g.activeMembers())})
		}
		out.Workspaces = append(out.Workspaces, wi)
	}
	for _, ent := range e.world.enterprises {
		ei := EnterpriseInfo{ID: ent.ID, Name: ent.Name, Workspaces: []string{}, ExternalTeams: []ExternalInfo{}}
		for _, ws := range ent.Workspaces {
			ei.Workspaces = append(ei.Workspaces, ws.ID)
		}
		for _, x := range ent.External {
			ei.ExternalTeams = append(ei.ExternalTeams, ExternalInfo{ID: x.ID, Name: x.Name, ConnectionStatus: x.status(now), LastActiveTimestamp: x.LastActive})
		}
		out.Enterprises = append(out.Enterprises, ei)
	}
	return out
}

func (e *Emulator) ctlWorld(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.World())
}

// TokenRequest asks for a bot token. TeamID defaults to the first seeded
// workspace; EnterpriseID instead makes an org-level (Grid) token. Scopes
// default to every scope the emulator checks.
type TokenRequest struct {
	TeamID       string   `json:"team_id,omitempty"`
	EnterpriseID string   `json:"enterprise_id,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
}

// MintedToken is a bot token minted for tests: it does not expire.
type MintedToken struct {
	Token        string   `json:"token"`
	TeamID       string   `json:"team_id,omitempty"`
	EnterpriseID string   `json:"enterprise_id,omitempty"`
	BotUserID    string   `json:"bot_user_id"`
	BotID        string   `json:"bot_id"`
	Scopes       []string `json:"scopes"`
}

// MintToken installs the app (if it is not) and returns a non-expiring bot token.
func (e *Emulator) MintToken(req TokenRequest) (MintedToken, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var in *install
	switch {
	case req.EnterpriseID != "":
		ent := e.world.ents[req.EnterpriseID]
		if ent == nil {
			return MintedToken{}, fmt.Errorf("%w %q", ErrUnknownTeam, req.EnterpriseID)
		}
		in = e.installLocked(ent.ID, nil, ent)
	default:
		ws := e.world.workspaces[0]
		if req.TeamID != "" {
			ws = e.world.teams[req.TeamID]
		}
		if ws == nil {
			return MintedToken{}, fmt.Errorf("%w %q", ErrUnknownTeam, req.TeamID)
		}
		in = e.installLocked(ws.ID, ws, ws.Enterprise)
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = allScopes
	}
	t := e.newTokenLocked(in, false, "", strings.Join(scopes, ","), false, time.Time{})
	return MintedToken{Token: t.value, TeamID: in.teamID(), EnterpriseID: in.enterpriseID(), BotUserID: in.botUserID,
		BotID: in.botID, Scopes: append([]string(nil), scopes...)}, nil
}

func (e *Emulator) ctlTokens(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := decode(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	t, err := e.MintToken(req)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
