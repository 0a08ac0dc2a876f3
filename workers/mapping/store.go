package mapping

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
)

// Mapping is a shared user mapping: in one workspace (a team, or the
// enterprise of an org-wide install), a Slack user is this org user. Every app
// installed in the same org within the same workspace uses it.
type Mapping struct {
	ID          string    `json:"id"`
	Workspace   string    `json:"workspace"`
	SlackUserID string    `json:"slack_user_id"`
	OrgID       string    `json:"org_id"`
	OrgUserID   string    `json:"org_user_id"`
	Username    string    `json:"username,omitempty"`
	InstanceURL string    `json:"instance_url,omitempty"`
	Source      string    `json:"source"` // oauth or import
	CreatedAt   time.Time `json:"created_at"`
	// RefreshToken is the user's org refresh token (oauth mappings only),
	// sealed at rest and never in API answers.
	RefreshToken store.Secret `json:"-"`
}

// Association is what survives a deleted mapping: which org user a Slack user
// used in an org, so a reconnect must use the same one.
type Association struct {
	OrgUserID string `json:"org_user_id"`
	Username  string `json:"username,omitempty"`
}

type record struct {
	Mapping
	Refresh store.Sealed `json:"refresh_token,omitzero"`
}

// Store keeps mappings and associations in Redis. Every key of a workspace
// carries it as the hash tag, so each script touches one slot:
//
//	ob:{W}:map:<slack_user>                    the mapping (JSON)
//	ob:{W}:map:org:<org>:<org_user>            -> slack user
//	ob:{W}:maps                                slack users with a mapping
//	ob:{W}:assoc:<org>:<slack_user>            the association (JSON)
//	ob:{W}:assoc:org:<org>:<org_user>          -> slack user
//	ob:{W}:assoc:orgs:<slack_user>             orgs the slack user is associated in
//	ob:{W}:assoc:users                         slack users with an association
//	ob:{_}:map:workspaces, ob:{<org>}:workspaces  indexes for admin listings and org-side revocation
type Store struct {
	rdb  redis.UniversalClient
	keys *store.Keyring
}

// NewStore returns a Store.
func NewStore(rdb redis.UniversalClient, keys *store.Keyring) *Store {
	return &Store{rdb: rdb, keys: keys}
}

func kMap(w, u string) string            { return store.Key(w, "map", u) }
func kMapByOrg(w, org, ou string) string { return store.Key(w, "map", "org", org, ou) }
func kMaps(w string) string              { return store.Key(w, "maps") }
func kAssoc(w, org, u string) string     { return store.Key(w, "assoc", org, u) }
func kAssocByOrg(w, org, ou string) string {
	return store.Key(w, "assoc", "org", org, ou)
}
func kAssocOrgs(w, u string) string { return store.Key(w, "assoc", "orgs", u) }
func kAssocUsers(w string) string   { return store.Key(w, "assoc", "users") }

var kWorkspaces = store.Key(store.GlobalTenant, "map", "workspaces")

func kOrgWorkspaces(org string) string { return store.Key(org, "workspaces") }

func aad(m *Mapping) string { return "mapping:" + m.Workspace + ":" + m.SlackUserID + ":" + m.OrgID }

func newID(w, u string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return w + "." + u + "." + hex.EncodeToString(b[:])
}

// parseID splits a mapping id into its workspace and Slack user.
func parseID(id string) (w, u string, ok bool) {
	p := strings.Split(id, ".")
	if len(p) != 3 || p[0] == "" || p[1] == "" {
		return "", "", false
	}
	return p[0], p[1], true
}

// connectScript checks the association rules and writes association and
// mapping in one step. Replies: {'ok'}, {'assoc', json}, {'taken', slack_user}, {'mapped', json}.
var connectScript = redis.NewScript(`
if ARGV[7] ~= '' and redis.call('GET', KEYS[8]) ~= ARGV[7] then return {'fenced'} end
local a = redis.call('GET', KEYS[2])
if a and cjson.decode(a).org_user_id ~= ARGV[2] then return {'assoc', a} end
local u = redis.call('GET', KEYS[3])
if u and u ~= ARGV[1] then return {'taken', u} end
local m = redis.call('GET', KEYS[1])
if m and ARGV[6] == 'import' then return {'mapped', m} end
if m then
	local d = cjson.decode(m)
	if d.org_id ~= ARGV[5] or d.org_user_id ~= ARGV[2] then return {'mapped', m} end
end
redis.call('SET', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[6], ARGV[5])
redis.call('SADD', KEYS[7], ARGV[1])
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
return {'ok'}`)

// Connect records that Slack user m.SlackUserID authenticated as org user
// m.OrgUserID: the association (kept until full revocation) and the mapping.
// A mapping the user still has for the same org user keeps its id. It fails
// with [*AssociatedError] or [*TakenError] when the association rules forbid
// it; an import (m.Source == "import") also with [ErrAlreadyMapped].
func (s *Store) Connect(ctx context.Context, m *Mapping) (*Mapping, error) {
	return s.ConnectFenced(ctx, m, nil)
}

// ConnectFenced is [Store.Connect] that writes only while lock (the
// workspace's binding lock, same hash tag) is still held; nil: unfenced. It
// fails with [store.ErrLockNotHeld] when the lock was lost.
func (s *Store) ConnectFenced(ctx context.Context, m *Mapping, lock *store.Lock) (*Mapping, error) {
	if m.Workspace == "" || m.SlackUserID == "" || m.OrgID == "" || m.OrgUserID == "" {
		return nil, fmt.Errorf("%w: workspace, Slack user, org and org user are required", ErrBadRequest)
	}
	old, err := s.Get(ctx, m.Workspace, m.SlackUserID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, err
	case m.Source != "import" && (old.OrgID != m.OrgID || old.OrgUserID != m.OrgUserID):
		// A mapping left from an org the workspace is no longer bound to.
		if old.OrgID != m.OrgID {
			if _, err := s.Delete(ctx, old.Workspace, old.SlackUserID); err != nil {
				return nil, err
			}
			old = nil
		}
	}
	out := *m
	if old != nil && old.OrgID == m.OrgID && old.OrgUserID == m.OrgUserID {
		out.ID, out.CreatedAt = old.ID, old.CreatedAt
	} else {
		out.ID, out.CreatedAt = newID(m.Workspace, m.SlackUserID), time.Now().UTC()
	}
	rec := record{Mapping: out}
	if rec.Refresh, err = s.keys.Seal(out.RefreshToken, aad(&out)); err != nil {
		return nil, err
	}
	mb, _ := json.Marshal(rec)
	ab, _ := json.Marshal(Association{OrgUserID: m.OrgUserID, Username: m.Username})
	w, org := m.Workspace, m.OrgID
	fenceKey, fenceToken := store.Key(w, "lock", "binding"), ""
	if lock != nil {
		fenceKey, fenceToken = lock.Key(), lock.Token()
	}
	// The indexes first (they live in other slots, so not in the script): a
	// crash between leaves an index entry without a mapping, which readers
	// skip, never a mapping org-side revocation cannot find.
	pipe := s.rdb.Pipeline()
	pipe.SAdd(ctx, kWorkspaces, w)
	pipe.SAdd(ctx, kOrgWorkspaces(org), w)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("mapping: indexing workspace %s: %w", w, err)
	}
	keys := []string{kMap(w, m.SlackUserID), kAssoc(w, org, m.SlackUserID), kAssocByOrg(w, org, m.OrgUserID),
		kMapByOrg(w, org, m.OrgUserID), kMaps(w), kAssocOrgs(w, m.SlackUserID), kAssocUsers(w), fenceKey}
	res, err := connectScript.Run(ctx, s.rdb, keys, m.SlackUserID, m.OrgUserID, mb, ab, org, m.Source, fenceToken).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("mapping: connecting %s in %s: %w", m.SlackUserID, w, err)
	}
	switch res[0] {
	case "assoc":
		var a Association
		_ = json.Unmarshal([]byte(res[1]), &a)
		return nil, &AssociatedError{OrgUserID: a.OrgUserID, Username: a.Username}
	case "taken":
		return nil, &TakenError{SlackUserID: res[1]}
	case "mapped":
		return nil, ErrAlreadyMapped
	case "fenced":
		return nil, store.ErrLockNotHeld
	}
	return &out, nil
}

func (s *Store) decode(raw []byte) (*Mapping, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("mapping: decoding: %w", err)
	}
	m := rec.Mapping
	var err error
	if m.RefreshToken, err = s.keys.Open(rec.Refresh, aad(&m)); err != nil {
		return nil, err
	}
	return &m, nil
}

// Get returns the mapping of Slack user u in workspace w.
func (s *Store) Get(ctx context.Context, w, u string) (*Mapping, error) {
	raw, err := s.rdb.Get(ctx, kMap(w, u)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mapping: reading %s/%s: %w", w, u, err)
	}
	return s.decode(raw)
}

// GetByID returns the mapping with id.
func (s *Store) GetByID(ctx context.Context, id string) (*Mapping, error) {
	w, u, ok := parseID(id)
	if !ok {
		return nil, ErrNotFound
	}
	m, err := s.Get(ctx, w, u)
	if err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, ErrNotFound
	}
	return m, nil
}

// SlackUserOf returns the Slack user mapped to org user ou of org in workspace w.
func (s *Store) SlackUserOf(ctx context.Context, w, org, ou string) (*Mapping, error) {
	u, err := s.rdb.Get(ctx, kMapByOrg(w, org, ou)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, w, u)
}

// Association returns the association of Slack user u with org in workspace w.
func (s *Store) Association(ctx context.Context, w, org, u string) (*Association, error) {
	raw, err := s.rdb.Get(ctx, kAssoc(w, org, u)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var a Association
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// deleteScript removes a mapping (only if it is still the one with id ARGV[1]
// when given) and its reverse key; the association stays.
var deleteScript = redis.NewScript(`
local m = redis.call('GET', KEYS[1])
if not m then return false end
local d = cjson.decode(m)
if ARGV[1] ~= '' and d.id ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
local rev = KEYS[3] .. d.org_id .. ':' .. d.org_user_id
if redis.call('GET', rev) == ARGV[2] then redis.call('DEL', rev) end
redis.call('SREM', KEYS[2], ARGV[2])
return m`)

// Delete removes the mapping of u in w and keeps the association: the user is
// prompted again next time and must use the same org user.
func (s *Store) Delete(ctx context.Context, w, u string) (*Mapping, error) {
	return s.delete(ctx, w, u, "")
}

// DeleteByID removes the mapping with id.
func (s *Store) DeleteByID(ctx context.Context, id string) (*Mapping, error) {
	w, u, ok := parseID(id)
	if !ok {
		return nil, ErrNotFound
	}
	return s.delete(ctx, w, u, id)
}

func (s *Store) delete(ctx context.Context, w, u, id string) (*Mapping, error) {
	prefix := strings.TrimSuffix(kMapByOrg(w, "", ""), "::")
	raw, err := deleteScript.Run(ctx, s.rdb, []string{kMap(w, u), kMaps(w), prefix + ":"}, id, u).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mapping: deleting %s/%s: %w", w, u, err)
	}
	str, _ := raw.(string)
	return s.decode([]byte(str))
}

// revokeScript removes a Slack user's mapping and every association it has
// in the given orgs (all of them when ARGV[2] is empty) in one workspace.
var revokeScript = redis.NewScript(`
if ARGV[3] ~= '' and redis.call('GET', KEYS[7]) ~= ARGV[3] then return -1 end
local w_assoc, w_maporg, u = KEYS[4], KEYS[5], ARGV[1]
local m = redis.call('GET', KEYS[1])
local removed = 0
if m then
	local d = cjson.decode(m)
	if ARGV[2] == '' or d.org_id == ARGV[2] then
		redis.call('DEL', KEYS[1])
		redis.call('SREM', KEYS[2], u)
		local rev = w_maporg .. d.org_id .. ':' .. d.org_user_id
		if redis.call('GET', rev) == u then redis.call('DEL', rev) end
		removed = 1
	end
end
local orgs = redis.call('SMEMBERS', KEYS[3])
for _, org in ipairs(orgs) do
	if ARGV[2] == '' or org == ARGV[2] then
		local ak = w_assoc .. org .. ':' .. u
		local a = redis.call('GET', ak)
		if a then
			local rev = w_assoc .. 'org:' .. org .. ':' .. cjson.decode(a).org_user_id
			if redis.call('GET', rev) == u then redis.call('DEL', rev) end
			redis.call('DEL', ak)
			removed = 1
		end
		redis.call('SREM', KEYS[3], org)
	end
end
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[6], u) end
return removed`)

// Revoke fully revokes Slack user u in workspace w: mapping and associations
// (with org only, or every org when org is empty) are removed, so u may then
// be associated with another org user. It reports whether anything was removed.
func (s *Store) Revoke(ctx context.Context, w, u, org string) (bool, error) {
	return s.revoke(ctx, w, u, org, nil)
}

func (s *Store) revoke(ctx context.Context, w, u, org string, lock *store.Lock) (bool, error) {
	fenceKey, fenceToken := store.Key(w, "lock", "binding"), ""
	if lock != nil {
		fenceKey, fenceToken = lock.Key(), lock.Token()
	}
	keys := []string{kMap(w, u), kMaps(w), kAssocOrgs(w, u), store.Key(w, "assoc") + ":", store.Key(w, "map", "org") + ":", kAssocUsers(w), fenceKey}
	n, err := revokeScript.Run(ctx, s.rdb, keys, u, org, fenceToken).Int()
	if err != nil {
		return false, fmt.Errorf("mapping: revoking %s/%s: %w", w, u, err)
	}
	if n < 0 {
		return false, store.ErrLockNotHeld
	}
	return n == 1, nil
}

// RevokeOrgUser fully revokes org user ou of org in every workspace and
// returns the (workspace, Slack user) pairs freed.
func (s *Store) RevokeOrgUser(ctx context.Context, org, ou string) ([][2]string, error) {
	ws, err := s.rdb.SMembers(ctx, kOrgWorkspaces(org)).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(ws)
	var freed [][2]string
	for _, w := range ws {
		u, err := s.rdb.Get(ctx, kAssocByOrg(w, org, ou)).Result()
		if errors.Is(err, redis.Nil) {
			u, err = s.rdb.Get(ctx, kMapByOrg(w, org, ou)).Result()
		}
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return freed, err
		}
		if ok, err := s.Revoke(ctx, w, u, org); err != nil {
			return freed, err
		} else if ok {
			freed = append(freed, [2]string{w, u})
		}
	}
	return freed, nil
}

// ClearWorkspace removes every mapping and association of workspace w (the
// app was uninstalled): a reinstall may target a new org with new users.
func (s *Store) ClearWorkspace(ctx context.Context, w string) (int, error) {
	return s.ClearWorkspaceFenced(ctx, w, nil)
}

// ClearWorkspaceFenced is [Store.ClearWorkspace] writing only while lock
// (the workspace's binding lock) is held; nil: unfenced.
func (s *Store) ClearWorkspaceFenced(ctx context.Context, w string, lock *store.Lock) (int, error) {
	users, err := s.rdb.SUnion(ctx, kMaps(w), kAssocUsers(w)).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		ok, err := s.revoke(ctx, w, u, "", lock)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Sample returns up to n mappings of workspace w to org (random members,
// without reading them all).
func (s *Store) Sample(ctx context.Context, w, org string, n int) ([]*Mapping, error) {
	users, err := s.rdb.SRandMemberN(ctx, kMaps(w), int64(n)).Result()
	if err != nil {
		return nil, err
	}
	var out []*Mapping
	for _, u := range users {
		m, err := s.Get(ctx, w, u)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.OrgID == org {
			out = append(out, m)
		}
	}
	return out, nil
}

// Filter selects mappings for [Store.List]; empty fields match everything.
type Filter struct {
	Workspace, OrgID, OrgUserID, SlackUserID string
	// Username matches the org username, ignoring case.
	Username string
}

func (f Filter) match(m *Mapping) bool {
	return (f.OrgID == "" || sameOrgID(m.OrgID, f.OrgID)) && (f.OrgUserID == "" || m.OrgUserID == f.OrgUserID) &&
		(f.SlackUserID == "" || m.SlackUserID == f.SlackUserID) && (f.Username == "" || strings.EqualFold(m.Username, f.Username))
}

// List returns the mappings matching f, sorted by workspace and Slack user.
func (s *Store) List(ctx context.Context, f Filter) ([]*Mapping, error) {
	var ws []string
	if f.Workspace != "" {
		ws = []string{f.Workspace}
	} else {
		var err error
		if ws, err = s.rdb.SMembers(ctx, kWorkspaces).Result(); err != nil {
			return nil, err
		}
		slices.Sort(ws)
	}
	out := []*Mapping{}
	for _, w := range ws {
		users, err := store.SetMembers(ctx, s.rdb, kMaps(w))
		if err != nil {
			return nil, err
		}
		slices.Sort(users)
		if len(users) == 0 {
			continue
		}
		keys := make([]string, len(users))
		for i, u := range users {
			keys[i] = kMap(w, u)
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			m, err := s.decode([]byte(str))
			if err != nil {
				return nil, err
			}
			if f.match(m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// SealedSet describes mappings for key rotation ([store.Reseal],
// [store.CheckSealed]): every mapping of every indexed workspace, with its
// refresh token.
func (s *Store) SealedSet() store.SealedSet {
	return store.SealedSet{
		Kind: "mappings",
		List: func(ctx context.Context) ([]store.SealedRef, error) {
			ws, err := s.rdb.SMembers(ctx, kWorkspaces).Result()
			if err != nil {
				return nil, err
			}
			slices.Sort(ws)
			var refs []store.SealedRef
			for _, w := range ws {
				users, err := store.SetMembers(ctx, s.rdb, kMaps(w))
				if err != nil {
					return nil, err
				}
				slices.Sort(users)
				for _, u := range users {
					refs = append(refs, store.SealedRef{Key: kMap(w, u), Name: "mapping " + w + "/" + u})
				}
			}
			return refs, nil
		},
		Visit: func(raw []byte, f func(field string, s *store.Sealed, aad string) error) ([]byte, error) {
			var rec record
			if err := json.Unmarshal(raw, &rec); err != nil {
				return nil, err
			}
			if err := f("refresh_token", &rec.Refresh, aad(&rec.Mapping)); err != nil {
				return nil, err
			}
			return json.Marshal(rec)
		},
	}
}

func kChecked(w, u string) string { return store.Key(w, "map", "checked", u) }

// MarkChecked records that u's org session in w was just verified; the next
// check is due after every (never recorded when every ≤ 0).
func (s *Store) MarkChecked(ctx context.Context, w, u string, every time.Duration) error {
	if every <= 0 {
		return nil
	}
	return s.rdb.Set(ctx, kChecked(w, u), "1", every).Err()
}

// CheckDue reports whether u's org session in w should be verified again.
func (s *Store) CheckDue(ctx context.Context, w, u string) (bool, error) {
	n, err := s.rdb.Exists(ctx, kChecked(w, u)).Result()
	return n == 0, err
}
