package slackemu

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// World changes: people and user groups change as an admin would change
// them, and Slack tells the app with the matching Events API event. Each
// change is a Go method and a control API endpoint (docs/EMULATORS.md).
//
// With an ingress URL set, the event is delivered before the method returns
// (the first attempt; Slack's retries follow in the background when it was
// not accepted). Without one, only the world changes.

// More sentinel errors of world changes.
var (
	// ErrUnknownGroup means the user group id is not in the world.
	ErrUnknownGroup = errors.New("slackemu: unknown user group")
	// ErrTaken means a user group name or handle is already used in the workspace.
	ErrTaken = errors.New("slackemu: already taken")
	// ErrDeliveryFailed means the world changed but the ingress did not accept
	// the event at the first attempt; Slack's retries continue in the background.
	ErrDeliveryFailed = errors.New("slackemu: the ingress did not accept the event")
)

// DeliveryError reports a world change whose event the ingress did not
// accept at the first attempt. The change itself happened.
type DeliveryError struct {
	Event    string   // the event type, such as team_join
	Delivery Delivery // the first attempt's answer
}

func (e *DeliveryError) Error() string {
	what := e.Delivery.Error
	if what == "" {
		what = fmt.Sprintf("HTTP %d", e.Delivery.Status)
	}
	return fmt.Sprintf("slackemu: the world changed but the ingress did not accept the %s event (%s); Slack retries in the background", e.Event, what)
}

// Unwrap makes errors.Is(err, ErrDeliveryFailed) true.
func (e *DeliveryError) Unwrap() error { return ErrDeliveryFailed }

// NewUser describes a user for [Emulator.CreateUser]. TeamID is the home
// workspace; TeamIDs adds other workspaces of the same Grid org (one user,
// one W… id). Name defaults to the email's local part (or first.last), made
// unique; IsUltraRestricted implies IsRestricted.
type NewUser struct {
	TeamID            string   `json:"team_id"`
	Name              string   `json:"name,omitempty"`
	FirstName         string   `json:"first_name,omitempty"`
	LastName          string   `json:"last_name,omitempty"`
	DisplayName       string   `json:"display_name,omitempty"`
	Email             string   `json:"email,omitempty"`
	Title             string   `json:"title,omitempty"`
	ImageOriginal     string   `json:"image_original,omitempty"`
	IsAdmin           bool     `json:"is_admin,omitempty"`
	IsOwner           bool     `json:"is_owner,omitempty"`
	IsRestricted      bool     `json:"is_restricted,omitempty"`
	IsUltraRestricted bool     `json:"is_ultra_restricted,omitempty"`
	IsBot             bool     `json:"is_bot,omitempty"`
	IsAppUser         bool     `json:"is_app_user,omitempty"`
	TeamIDs           []string `json:"team_ids,omitempty"`
}

// UserChange is a profile or role change for [Emulator.UpdateUser]; nil
// fields stay as they are.
type UserChange struct {
	FirstName     *string `json:"first_name,omitempty"`
	LastName      *string `json:"last_name,omitempty"`
	DisplayName   *string `json:"display_name,omitempty"`
	Email         *string `json:"email,omitempty"`
	Title         *string `json:"title,omitempty"`
	ImageOriginal *string `json:"image_original,omitempty"`
	IsAdmin       *bool   `json:"is_admin,omitempty"`
	IsOwner       *bool   `json:"is_owner,omitempty"`
}

// change is one world change's outcome, for the Go methods and the control API.
type change struct {
	ID        string     `json:"id,omitempty"`
	User      *userJSON  `json:"user,omitempty"`
	Usergroup *groupJSON `json:"usergroup,omitempty"`
	Added     []string   `json:"added,omitempty"`
	Removed   []string   `json:"removed,omitempty"`
	Delivery  *Delivery  `json:"delivery"` // null: no event (no ingress, or nothing changed)

	event string
	env   map[string]any
}

// emitLocked prepares the event ev for teamID's event_callback when an
// ingress is set; the caller holds e.mu and calls deliver after unlocking.
func (e *Emulator) emitLocked(ch *change, teamID string, ev map[string]any) {
	ch.event, _ = ev["type"].(string)
	if e.ingress != "" {
		ch.env = e.envelopeLocked(teamID, "", ev)
	}
}

// deliver posts the prepared event, if any.
func (e *Emulator) deliver(ch *change) error {
	if ch.env == nil {
		return nil
	}
	d := e.deliverEnvelope(ch.env, false)
	ch.Delivery = &d
	if !ok2xx(d) {
		return &DeliveryError{Event: ch.event, Delivery: d}
	}
	return nil
}

func (e *Emulator) newIDLocked(prefix string, taken func(string) bool) string {
	for {
		id := prefix + e.randString(idAlphabet, 10)
		if !taken(id) {
			return id
		}
	}
}

// CreateUser adds a user to a workspace (a new member joining) and delivers
// team_join with the user as users.info shows it. It returns the new id:
// U… in a standalone workspace, W… in a Grid org.
func (e *Emulator) CreateUser(spec NewUser) (string, error) {
	ch, err := e.createUser(spec)
	if err != nil {
		return "", err
	}
	return ch.ID, e.deliver(ch)
}

func (e *Emulator) createUser(spec NewUser) (*change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ws := e.world.teams[spec.TeamID]
	if ws == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTeam, spec.TeamID)
	}
	var others []*workspace
	for _, tid := range spec.TeamIDs {
		other := e.world.teams[tid]
		switch {
		case other == nil:
			return nil, fmt.Errorf("%w %q in team_ids", ErrUnknownTeam, tid)
		case other == ws || slices.Contains(others, other):
			continue
		case ws.Enterprise == nil || other.Enterprise != ws.Enterprise:
			return nil, fmt.Errorf("slackemu: team_ids may only name workspaces of the Grid org of team %s, not %s", ws.ID, tid)
		}
		others = append(others, other)
	}
	name, err := e.userNameLocked(ws, spec)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	prefix := "U"
	if ws.Enterprise != nil {
		prefix = "W"
	}
	u := user{ID: e.newIDLocked(prefix, func(id string) bool { _, ok := e.world.users[id]; return ok }),
		Name: name, First: spec.FirstName, Last: spec.LastName, Email: spec.Email, Title: spec.Title, Updated: now.Unix()}
	for _, f := range []struct {
		on   bool
		flag uint16
	}{{spec.IsAdmin, flagAdmin}, {spec.IsOwner, flagOwner}, {spec.IsBot, flagBot}, {spec.IsAppUser, flagAppUser},
		{spec.IsRestricted, flagRestricted}, {spec.IsUltraRestricted, flagRestricted | flagUltraRestricted}} {
		if f.on {
			u.Flags |= f.flag
		}
	}
	if spec.IsBot {
		u.BotID = "B" + e.randString(idAlphabet, 10)
	}
	if spec.DisplayName != "" || spec.ImageOriginal != "" {
		u.x = &userExtra{DisplayName: spec.DisplayName, ImageOriginal: spec.ImageOriginal}
	}
	ws.Users = append(ws.Users, u)
	ref := userRef{ws: ws, pos: int32(len(ws.Users) - 1)}
	e.world.users[u.ID] = ref
	for _, other := range others {
		other.share(ref)
	}
	rendered := renderUser(ws, ref.user(), true)
	ch := &change{ID: u.ID, User: &rendered}
	e.emitLocked(ch, ws.ID, map[string]any{"type": "team_join", "user": rendered})
	return ch, nil
}

// userNameLocked is spec.Name, or one made from the email or the name,
// unique in the workspace (in its Grid org for Grid workspaces).
func (e *Emulator) userNameLocked(ws *workspace, spec NewUser) (string, error) {
	scope := []*workspace{ws}
	if ws.Enterprise != nil {
		scope = ws.Enterprise.Workspaces
	}
	taken := func(n string) bool {
		for _, s := range scope {
			for i := range s.Users {
				if s.Users[i].Name == n {
					return true
				}
			}
		}
		return false
	}
	if spec.Name != "" {
		if taken(spec.Name) {
			return "", fmt.Errorf("%w: user name %q in team %s", ErrTaken, spec.Name, ws.ID)
		}
		return spec.Name, nil
	}
	base, _, _ := strings.Cut(strings.ToLower(spec.Email), "@")
	if base == "" {
		base = strings.Trim(strings.ToLower(strings.ReplaceAll(spec.FirstName+"."+spec.LastName, " ", "")), ".")
	}
	if base == "" {
		base = "user"
	}
	name := base
	for k := 2; taken(name); k++ {
		name = fmt.Sprintf("%s%d", base, k)
	}
	return name, nil
}

// UpdateUser changes a user's profile or roles (as the user or an admin
// would) and delivers user_change. An empty change is refused.
func (e *Emulator) UpdateUser(id string, c UserChange) error {
	ch, err := e.updateUser(id, c)
	if err != nil {
		return err
	}
	return e.deliver(ch)
}

func (e *Emulator) updateUser(id string, c UserChange) (*change, error) {
	if c == (UserChange{}) {
		return nil, errors.New("slackemu: the user change changes nothing: set at least one field")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ref, ok := e.world.users[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownUser, id)
	}
	u := ref.user()
	for _, f := range []struct {
		v   *string
		dst *string
	}{{c.FirstName, &u.First}, {c.LastName, &u.Last}, {c.Email, &u.Email}, {c.Title, &u.Title}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if c.DisplayName != nil {
		u.extra().DisplayName = *c.DisplayName
	}
	if c.ImageOriginal != nil {
		u.extra().ImageOriginal = *c.ImageOriginal
	}
	if c.IsAdmin != nil {
		u.set(flagAdmin, *c.IsAdmin)
	}
	if c.IsOwner != nil {
		u.set(flagOwner, *c.IsOwner)
	}
	return e.userChangedLocked(ref), nil
}

// userChangedLocked stamps the user updated and prepares user_change.
func (e *Emulator) userChangedLocked(ref userRef) *change {
	now := e.clock.Now()
	u := ref.user()
	u.Updated = now.Unix()
	rendered := renderUser(ref.ws, u, true)
	ch := &change{ID: u.ID, User: &rendered}
	e.emitLocked(ch, ref.ws.ID, map[string]any{"type": "user_change", "user": rendered, "cache_ts": now.Unix()})
	return ch
}

// setDeleted deactivates or reactivates a user; nothing changes (and no
// event is sent) when the user already is in that state.
func (e *Emulator) setDeleted(id string, deleted bool) (*change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ref, ok := e.world.users[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownUser, id)
	}
	u := ref.user()
	if u.has(flagDeleted) == deleted {
		rendered := renderUser(ref.ws, u, true)
		return &change{ID: id, User: &rendered}, nil
	}
	u.set(flagDeleted, deleted)
	return e.userChangedLocked(ref), nil
}

// DeactivateUser marks a user deleted (as an admin deactivating them does)
// and delivers the user_change event Slack sends for it (user.deleted true).
// Unlike the newer world changes it reports the delivery instead of a
// [*DeliveryError]: Delivery.Error is set when no ingress is set, and
// Status shows what the ingress answered. Deactivated users drop out of
// user group member lists (and come back with [Emulator.ReactivateUser]).
func (e *Emulator) DeactivateUser(userID string) (Delivery, error) {
	ch, err := e.setDeleted(userID, true)
	if err != nil {
		return Delivery{}, err
	}
	if ch.env == nil {
		return Delivery{Error: ErrNoIngress.Error()}, nil
	}
	_ = e.deliver(ch)
	return *ch.Delivery, nil
}

// ReactivateUser brings a deactivated user back under the same id and
// delivers user_change (user.deleted false). Reactivating an active user
// changes nothing and sends nothing.
func (e *Emulator) ReactivateUser(id string) error {
	ch, err := e.setDeleted(id, false)
	if err != nil {
		return err
	}
	return e.deliver(ch)
}

// CreateGroup adds a user group to a workspace and delivers subteam_created.
// handle defaults to the name in lower case with dashes; name and handle
// must be unused in the workspace ([ErrTaken]); members must be members of
// the workspace. It returns the new S… id.
func (e *Emulator) CreateGroup(teamID, name, handle string, members []string) (string, error) {
	ch, err := e.createGroup(teamID, name, handle, members)
	if err != nil {
		return "", err
	}
	return ch.ID, e.deliver(ch)
}

func (e *Emulator) createGroup(teamID, name, handle string, members []string) (*change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ws := e.world.teams[teamID]
	if ws == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTeam, teamID)
	}
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("slackemu: a user group needs a name")
	}
	if handle == "" {
		handle = slug(name)
	}
	for _, g := range ws.Groups {
		if strings.EqualFold(g.Name, name) {
			return nil, fmt.Errorf("%w: user group name %q in team %s (%s)", ErrTaken, name, teamID, g.ID)
		}
		if strings.EqualFold(g.Handle, handle) {
			return nil, fmt.Errorf("%w: user group handle %q in team %s (%s)", ErrTaken, handle, teamID, g.ID)
		}
	}
	now := e.clock.Now().Unix()
	g := &group{ID: e.newIDLocked("S", func(id string) bool { _, ok := e.world.groups[id]; return ok }),
		Name: name, Handle: handle, ws: ws, Created: now, Updated: now}
	for _, uid := range members {
		m, err := e.groupMemberLocked(ws, uid)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(g.Members, m) {
			g.Members = append(g.Members, m)
		}
	}
	if admins := adminOf(ws); admins != "" {
		g.CreatedBy = admins
	}
	ws.Groups = append(ws.Groups, g)
	e.world.groups[g.ID] = g
	rendered := renderGroup(g, true, true)
	ch := &change{ID: g.ID, Usergroup: &rendered}
	e.emitLocked(ch, ws.ID, map[string]any{"type": "subteam_created", "subteam": rendered})
	return ch, nil
}

// adminOf is the workspace's first active admin, or "".
func adminOf(ws *workspace) string {
	for i := range ws.Users {
		if u := &ws.Users[i]; u.has(flagAdmin) && !u.has(flagDeleted) {
			return u.ID
		}
	}
	return ""
}

// groupMemberLocked resolves a user id to a group.Members entry of ws.
func (e *Emulator) groupMemberLocked(ws *workspace, uid string) (int32, error) {
	ref, ok := e.world.users[uid]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownUser, uid)
	}
	m, ok := ws.groupMember(ref)
	if !ok {
		return 0, fmt.Errorf("%w %q in team %s: a group's members must be members of its workspace", ErrUnknownUser, uid, ws.ID)
	}
	return m, nil
}

// SetGroupMembers adds and removes members of a user group and delivers
// subteam_members_changed with what really changed (adding a member or
// removing a non-member changes nothing; when nothing changed no event is
// sent). Every id must be a member of the group's workspace, and no id may
// be both added and removed; otherwise nothing changes.
func (e *Emulator) SetGroupMembers(groupID string, add, remove []string) error {
	ch, err := e.setGroupMembers(groupID, add, remove)
	if err != nil {
		return err
	}
	return e.deliver(ch)
}

func (e *Emulator) setGroupMembers(groupID string, add, remove []string) (*change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.world.groups[groupID]
	if g == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownGroup, groupID)
	}
	for _, id := range add {
		if slices.Contains(remove, id) {
			return nil, fmt.Errorf("slackemu: user %s is both added to and removed from %s", id, groupID)
		}
	}
	resolve := func(ids []string) ([]int32, error) {
		out := make([]int32, 0, len(ids))
		for _, id := range ids {
			m, err := e.groupMemberLocked(g.ws, id)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	adds, err := resolve(add)
	if err != nil {
		return nil, err
	}
	removes, err := resolve(remove)
	if err != nil {
		return nil, err
	}
	ch := &change{ID: g.ID, Added: []string{}, Removed: []string{}}
	for i, m := range adds {
		if !slices.Contains(g.Members, m) {
			g.Members = append(g.Members, m)
			ch.Added = append(ch.Added, add[i])
		}
	}
	for i, m := range removes {
		if k := slices.Index(g.Members, m); k >= 0 {
			g.Members = slices.Delete(g.Members, k, k+1)
			ch.Removed = append(ch.Removed, remove[i])
		}
	}
	if len(ch.Added) == 0 && len(ch.Removed) == 0 {
		return ch, nil
	}
	prev := g.Updated
	g.Updated = e.clock.Now().Unix()
	e.emitLocked(ch, g.ws.ID, map[string]any{
		"type": "subteam_members_changed", "subteam_id": g.ID, "team_id": g.ws.ID,
		"date_previous_update": prev, "date_update": g.Updated,
		"added_users": ch.Added, "added_users_count": len(ch.Added),
		"removed_users": ch.Removed, "removed_users_count": len(ch.Removed),
	})
	return ch, nil
}

// SetGroupDisabled disables a user group (as usergroups.disable does: it
// leaves usergroups.list unless include_disabled, and date_delete is set) or
// enables it again, and delivers subteam_updated with the group. When the
// group already is in that state nothing changes and no event is sent.
func (e *Emulator) SetGroupDisabled(groupID string, disabled bool) error {
	ch, err := e.setGroupDisabled(groupID, disabled)
	if err != nil {
		return err
	}
	return e.deliver(ch)
}

func (e *Emulator) setGroupDisabled(groupID string, disabled bool) (*change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.world.groups[groupID]
	if g == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownGroup, groupID)
	}
	ch := &change{ID: g.ID}
	if g.Disabled != disabled {
		now := e.clock.Now().Unix()
		g.Disabled, g.Updated, g.Deleted = disabled, now, 0
		if disabled {
			g.Deleted = now
		}
		rendered := renderGroup(g, true, true)
		ch.Usergroup = &rendered
		e.emitLocked(ch, g.ws.ID, map[string]any{"type": "subteam_updated", "subteam": rendered})
		return ch, nil
	}
	rendered := renderGroup(g, true, true)
	ch.Usergroup = &rendered
	return ch, nil
}

// ---- control API ----

func (e *Emulator) changeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_emulator/users", func(w http.ResponseWriter, r *http.Request) {
		var spec NewUser
		if err := decode(r, &spec); err != nil {
			ctlError(w, err)
			return
		}
		e.answerChange(w)(e.createUser(spec))
	})
	mux.HandleFunc("POST /_emulator/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		var c UserChange
		if err := decode(r, &c); err != nil {
			ctlError(w, err)
			return
		}
		e.answerChange(w)(e.updateUser(r.PathValue("id"), c))
	})
	mux.HandleFunc("POST /_emulator/users/{id}/reactivate", func(w http.ResponseWriter, r *http.Request) {
		e.answerChange(w)(e.setDeleted(r.PathValue("id"), false))
	})
	mux.HandleFunc("POST /_emulator/usergroups", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			TeamID string   `json:"team_id"`
			Name   string   `json:"name"`
			Handle string   `json:"handle"`
			Users  []string `json:"users"`
		}
		if err := decode(r, &req); err != nil {
			ctlError(w, err)
			return
		}
		e.answerChange(w)(e.createGroup(req.TeamID, req.Name, req.Handle, req.Users))
	})
	mux.HandleFunc("POST /_emulator/usergroups/{id}/members", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Add    []string `json:"add"`
			Remove []string `json:"remove"`
		}
		if err := decode(r, &req); err != nil {
			ctlError(w, err)
			return
		}
		e.answerChange(w)(e.setGroupMembers(r.PathValue("id"), req.Add, req.Remove))
	})
	for verb, disabled := range map[string]bool{"disable": true, "enable": false} {
		mux.HandleFunc("POST /_emulator/usergroups/{id}/"+verb, func(w http.ResponseWriter, r *http.Request) {
			e.answerChange(w)(e.setGroupDisabled(r.PathValue("id"), disabled))
		})
	}
}

// answerChange delivers a change's event and answers 200 with the change
// (its delivery included, whatever the ingress said), or the error.
func (e *Emulator) answerChange(w http.ResponseWriter) func(*change, error) {
	return func(ch *change, err error) {
		if err != nil {
			ctlError(w, err)
			return
		}
		_ = e.deliver(ch) // the answer carries the delivery
		writeJSON(w, http.StatusOK, ch)
	}
}
