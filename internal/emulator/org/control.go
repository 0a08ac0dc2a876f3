package orgemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Errors of the control API and its Go helpers.
var (
	// ErrUnknownOrg: no org has that id.
	ErrUnknownOrg = errors.New("orgemu: no such org")
	// ErrUnknownUser: the org has no user with that username.
	ErrUnknownUser = errors.New("orgemu: no such user in the org")
	// ErrUsernameTaken: a user of some org already has that username
	// (usernames are unique across orgs, as in Salesforce).
	ErrUsernameTaken = errors.New("orgemu: username taken")
	// ErrUnknownResource: the org's directory has no SCIM user or group with that id.
	ErrUnknownResource = errors.New("orgemu: no such SCIM resource in the org")
)

// World is what the emulator holds: every org and its users.
type World struct {
	Orgs []OrgInfo `json:"orgs"`
}

// OrgInfo describes one org of the [World].
type OrgInfo struct {
	ID         string     `json:"id"`
	ID18       string     `json:"id18"`
	Name       string     `json:"name"`
	AppAllowed bool       `json:"app_allowed"`
	Scratch    bool       `json:"scratch"`
	Expired    bool       `json:"expired"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	Users      []UserInfo `json:"users"`
	Groups     int        `json:"groups"`
}

// UserInfo describes one user of an org.
type UserInfo struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	Permitted bool   `json:"permitted"`
	Admin     bool   `json:"admin"`
}

// Permissions changes who may use the app. Nil fields leave things as they are.
type Permissions struct {
	// AppAllowed turns the org-level permission on or off.
	AppAllowed *bool `json:"app_allowed,omitempty"`
	// OnlyUsers, when not nil, permits exactly these usernames and no one else
	// (JSON: "users_allowed" as an array).
	OnlyUsers []string `json:"-"`
	// Users sets the permission of the listed usernames only
	// (JSON: "users_allowed" as an object of username → bool).
	Users map[string]bool `json:"-"`
}

// UnmarshalJSON reads {"app_allowed": bool, "users_allowed": [..] or {..}}.
func (p *Permissions) UnmarshalJSON(b []byte) error {
	var raw struct {
		AppAllowed   *bool           `json:"app_allowed"`
		UsersAllowed json.RawMessage `json:"users_allowed"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*p = Permissions{AppAllowed: raw.AppAllowed}
	ua := strings.TrimSpace(string(raw.UsersAllowed))
	switch {
	case ua == "" || ua == "null":
	case strings.HasPrefix(ua, "["):
		p.OnlyUsers = []string{}
		return json.Unmarshal(raw.UsersAllowed, &p.OnlyUsers)
	default:
		return json.Unmarshal(raw.UsersAllowed, &p.Users)
	}
	return nil
}

// MarshalJSON writes the form UnmarshalJSON reads.
func (p Permissions) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	if p.AppAllowed != nil {
		out["app_allowed"] = *p.AppAllowed
	}
	if p.OnlyUsers != nil {
		out["users_allowed"] = p.OnlyUsers
	} else if p.Users != nil {
		out["users_allowed"] = p.Users
	}
	return json.Marshal(out)
}

// World returns every org with its users, in creation order.
func (e *Emulator) World() World {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := e.now()
	w := World{Orgs: make([]OrgInfo, 0, len(e.orgList))}
	for _, o := range e.orgList {
		w.Orgs = append(w.Orgs, e.orgInfoLocked(o, now))
	}
	return w
}

func (e *Emulator) orgInfoLocked(o *org, now time.Time) OrgInfo {
	info := OrgInfo{ID: o.id, ID18: id18(o.id), Name: o.name, AppAllowed: o.appAllowed, Scratch: o.scratch,
		Expired: o.isExpired(now), Users: make([]UserInfo, 0, len(o.dir.users)), Groups: len(o.dir.groups)}
	if !o.expiresAt.IsZero() {
		t := o.expiresAt
		info.ExpiresAt = &t
	}
	for _, u := range o.dir.users {
		_, _, full := names(u)
		info.Users = append(info.Users, userInfo(u, full))
	}
	return info
}

func userInfo(u *SCIMUser, full string) UserInfo {
	return UserInfo{ID: u.ID, Username: u.UserName, Email: primaryEmail(u), Name: full, Active: u.Active, Permitted: u.permitted, Admin: u.admin}
}

// AddUser adds a user to an existing org's directory, as an admin creating a
// user does, and returns its SCIM id. The username must not be taken in any
// org ([ErrUsernameTaken]).
func (e *Emulator) AddUser(orgID string, us UserSpec) (string, error) {
	info, err := e.addUser(orgID, us)
	return info.ID, err
}

func (e *Emulator) addUser(orgID string, us UserSpec) (UserInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return UserInfo{}, fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	if other, _ := e.findUserLocked(us.Username); other != nil {
		return UserInfo{}, fmt.Errorf("%w: %s is a user of org %s", ErrUsernameTaken, us.Username, other.id)
	}
	u, err := e.addUserLocked(o, us, e.now())
	if err != nil {
		return UserInfo{}, err
	}
	_, _, full := names(u)
	return userInfo(u, full), nil
}

// SetAdmin makes a user an org admin or takes it away. Tokens already
// issued see the change at once in userinfo and the identity URL.
func (e *Emulator) SetAdmin(orgID, username string, admin bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	u := o.dir.userByName(username)
	if u == nil {
		return fmt.Errorf("%w: %s", ErrUnknownUser, username)
	}
	if u.admin != admin {
		next := *u
		next.admin = admin
		o.dir.users[o.dir.userPos[u.ID]] = &next // stored values are replaced, never changed in place
	}
	return nil
}

// CreateOrg adds an org with its users.
func (e *Emulator) CreateOrg(spec OrgSpec) (OrgInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, u := range spec.Users {
		if o, _ := e.findUserLocked(u.Username); o != nil {
			return OrgInfo{}, fmt.Errorf("orgemu: username %s is taken in org %s: usernames are unique across orgs", u.Username, o.id)
		}
	}
	o, err := e.createOrgLocked(spec)
	if err != nil {
		return OrgInfo{}, err
	}
	return e.orgInfoLocked(o, e.now()), nil
}

// ExpireOrg makes the org invalid at once, as a scratch org past its end date:
// its tokens stop working and refreshing them fails with invalid_grant.
func (e *Emulator) ExpireOrg(orgID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	o.expired = true
	return nil
}

// DeactivateUser deactivates a user as an admin would: their tokens stop
// working and SCIM shows active=false.
func (e *Emulator) DeactivateUser(orgID, username string) error {
	return e.setActive(orgID, username, false)
}

// ActivateUser reactivates a user.
func (e *Emulator) ActivateUser(orgID, username string) error {
	return e.setActive(orgID, username, true)
}

func (e *Emulator) setActive(orgID, username string, active bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	u := o.dir.userByName(username)
	if u == nil {
		return fmt.Errorf("%w: %s", ErrUnknownUser, username)
	}
	if u.Active != active {
		next := *u
		next.Active = active
		o.dir.replaceUser(u, &next, e.now())
	}
	return nil
}

// RevokeTokens revokes every access and refresh token of a user, as the user
// revoking the app's access in their settings does: the user stays active,
// their tokens stop working (a refresh fails with invalid_grant), and a new
// login works.
func (e *Emulator) RevokeTokens(orgID, username string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	u := o.dir.userByName(username)
	if u == nil {
		return fmt.Errorf("%w: %s", ErrUnknownUser, username)
	}
	for _, m := range []map[string]*grant{e.access, e.refresh} {
		for tok, g := range m {
			if g.orgID == o.id && g.userID == u.ID {
				delete(m, tok)
			}
		}
	}
	return nil
}

// SetPermissions changes the org-level and per-user permission for the app.
// Nothing changes when a username is unknown.
func (e *Emulator) SetPermissions(orgID string, p Permissions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	names := append([]string(nil), p.OnlyUsers...)
	for n := range p.Users {
		names = append(names, n)
	}
	for _, n := range names {
		if o.dir.userByName(n) == nil {
			return fmt.Errorf("%w: %s", ErrUnknownUser, n)
		}
	}
	set := func(u *SCIMUser, permitted bool) {
		if u.permitted != permitted {
			next := *u
			next.permitted = permitted
			i := o.dir.userPos[u.ID]
			o.dir.users[i] = &next // stored values are replaced, never changed in place
		}
	}
	if p.AppAllowed != nil {
		o.appAllowed = *p.AppAllowed
	}
	if p.OnlyUsers != nil {
		only := make(map[string]bool, len(p.OnlyUsers))
		for _, n := range p.OnlyUsers {
			only[strings.ToLower(n)] = true
		}
		for _, u := range o.dir.users {
			set(u, only[strings.ToLower(u.UserName)])
		}
	}
	for n, ok := range p.Users {
		set(o.dir.userByName(n), ok)
	}
	return nil
}

// Snapshot is an org's SCIM directory as stored.
type Snapshot struct {
	OrgID  string      `json:"org_id"`
	Users  []SCIMUser  `json:"users"`
	Groups []SCIMGroup `json:"groups"`
}

// SCIMUser returns one SCIM user of the org by id, as GET /Users/{id} shows it.
func (e *Emulator) SCIMUser(orgID, id string) (SCIMUser, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return SCIMUser{}, fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	u := o.dir.user(id)
	if u == nil {
		return SCIMUser{}, fmt.Errorf("%w: user %s", ErrUnknownResource, id)
	}
	return e.renderUser(u), nil
}

// SCIMGroup returns one SCIM group of the org by id, members included.
func (e *Emulator) SCIMGroup(orgID, id string) (SCIMGroup, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return SCIMGroup{}, fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	g := o.dir.groupByID[id]
	if g == nil {
		return SCIMGroup{}, fmt.Errorf("%w: group %s", ErrUnknownResource, id)
	}
	return e.renderGroup(g, true), nil
}

// SCIMSnapshot returns the org's users and groups, members included. Users
// are as SCIM serves them (externalId, active, emails, photos, title, meta
// with the version …), in creation order.
func (e *Emulator) SCIMSnapshot(orgID string) (Snapshot, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	o := e.orgLocked(orgID)
	if o == nil {
		return Snapshot{}, fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
	}
	s := Snapshot{OrgID: o.id, Users: make([]SCIMUser, 0, len(o.dir.users)), Groups: make([]SCIMGroup, 0, len(o.dir.groups))}
	for _, u := range o.dir.users {
		s.Users = append(s.Users, e.renderUser(u))
	}
	for _, g := range o.dir.groups {
		s.Groups = append(s.Groups, e.renderGroup(g, true))
	}
	return s, nil
}

type controlError struct {
	Error string `json:"error"`
}

func controlFail(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrUnknownOrg) || errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrUnknownResource):
		status = http.StatusNotFound
	case errors.Is(err, ErrUsernameTaken):
		status = http.StatusConflict
	}
	writeJSON(w, status, "application/json", controlError{err.Error()})
}

func decodeControl(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("body is not valid JSON: %w", err)
	}
	return nil
}

func (e *Emulator) handleWorld(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, "application/json", e.World())
}

func (e *Emulator) handleStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, "application/json", e.Stats())
}

func (e *Emulator) handleCreateOrg(w http.ResponseWriter, r *http.Request) {
	var spec OrgSpec
	if err := decodeControl(r, &spec); err != nil {
		controlFail(w, err)
		return
	}
	info, err := e.CreateOrg(spec)
	if err != nil {
		writeJSON(w, http.StatusConflict, "application/json", controlError{err.Error()})
		return
	}
	writeJSON(w, http.StatusCreated, "application/json", info)
}

func (e *Emulator) handleExpire(w http.ResponseWriter, r *http.Request) {
	if err := e.ExpireOrg(r.PathValue("org")); err != nil {
		controlFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) handleUserActive(active bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := e.setActive(r.PathValue("org"), r.PathValue("username"), active); err != nil {
			controlFail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (e *Emulator) handleRevokeTokens(w http.ResponseWriter, r *http.Request) {
	if err := e.RevokeTokens(r.PathValue("org"), r.PathValue("username")); err != nil {
		controlFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) handleAddUser(w http.ResponseWriter, r *http.Request) {
	var us UserSpec
	if err := decodeControl(r, &us); err != nil {
		controlFail(w, err)
		return
	}
	info, err := e.addUser(r.PathValue("org"), us)
	if err != nil {
		controlFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, "application/json", info)
}

func (e *Emulator) handleSetAdmin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Admin *bool `json:"admin"`
	}
	if err := decodeControl(r, &req); err != nil {
		controlFail(w, err)
		return
	}
	if req.Admin == nil {
		controlFail(w, errors.New(`body must be {"admin": true} or {"admin": false}`))
		return
	}
	if err := e.SetAdmin(r.PathValue("org"), r.PathValue("username"), *req.Admin); err != nil {
		controlFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) handlePermissions(w http.ResponseWriter, r *http.Request) {
	var p Permissions
	if err := decodeControl(r, &p); err != nil {
		controlFail(w, err)
		return
	}
	if err := e.SetPermissions(r.PathValue("org"), p); err != nil {
		controlFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleSnapshot serves GET /_emulator/scim?org=<id> (the first org by default).
func (e *Emulator) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("org")
	if id == "" {
		e.mu.RLock()
		if len(e.orgList) > 0 {
			id = e.orgList[0].id
		}
		e.mu.RUnlock()
	}
	s, err := e.SCIMSnapshot(id)
	if err != nil {
		controlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", s)
}
