package binding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
)

// Binding ties a workspace (a team, or a Grid org for an org-wide install) to
// exactly one org, for all its users.
type Binding struct {
	Scope               string    `json:"scope"`
	OrgID               string    `json:"org_id"`
	OrgName             string    `json:"org_name"`
	InstanceURL         string    `json:"instance_url,omitempty"`
	ConnectedByOrgUser  string    `json:"connected_by_org_user"`
	ConnectedByUsername string    `json:"connected_by_username"`
	ConnectedBySlack    string    `json:"connected_by_slack_user"`
	ConnectedAt         time.Time `json:"connected_at"`
	// Valid is false once the org expired or stopped accepting the binding's
	// token: the next interaction prompts to log into a new org.
	Valid         bool      `json:"valid"`
	InvalidReason string    `json:"invalid_reason,omitempty"`
	InvalidAt     time.Time `json:"invalid_at,omitzero"`
	// RefreshToken is the connecting user's org refresh token, sealed at rest.
	RefreshToken store.Secret `json:"-"`
}

// PastConnection is who connected the workspace to an org before: a
// reconnect to that org must use the same org user.
type PastConnection struct {
	OrgUserID string `json:"org_user_id"`
	Username  string `json:"username"`
	OrgName   string `json:"org_name"`
}

type bindingRecord struct {
	Binding
	Refresh store.Sealed `json:"refresh_token,omitzero"`
}

// Store keeps bindings in Redis: ob:{W}:binding, ob:{W}:binding:history
// (org id → [PastConnection]), the lock ob:{W}:lock:binding and the index
// ob:{_}:bindings.
type Store struct {
	rdb  redis.UniversalClient
	keys *store.Keyring
}

// NewStore returns a Store.
func NewStore(rdb redis.UniversalClient, keys *store.Keyring) *Store {
	return &Store{rdb: rdb, keys: keys}
}

func kBinding(w string) string { return store.Key(w, "binding") }
func kHistory(w string) string { return store.Key(w, "binding", "history") }

// LockKey is the per-workspace lock every binding change holds.
func LockKey(w string) string { return store.Key(w, "lock", "binding") }

var kBindings = store.Key(store.GlobalTenant, "bindings")

func aadBinding(w, org string) string { return "binding:" + w + ":" + org }

// Get returns the binding of w, or nil when w was never connected (or was uninstalled).
func (s *Store) Get(ctx context.Context, w string) (*Binding, error) {
	raw, err := s.rdb.Get(ctx, kBinding(w)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("binding: reading %s: %w", w, err)
	}
	var rec bindingRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("binding: decoding %s: %w", w, err)
	}
	b := rec.Binding
	if b.RefreshToken, err = s.keys.Open(rec.Refresh, aadBinding(w, b.OrgID)); err != nil {
		return nil, err
	}
	return &b, nil
}

// BoundOrg returns the org w is validly bound to, or "".
func (s *Store) BoundOrg(ctx context.Context, w string) (string, error) {
	b, err := s.Get(ctx, w)
	if err != nil || b == nil || !b.Valid {
		return "", err
	}
	return b.OrgID, nil
}

// History returns who connected w to org before, or nil.
func (s *Store) History(ctx context.Context, w, org string) (*PastConnection, error) {
	raw, err := s.rdb.HGet(ctx, kHistory(w), org).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p PastConnection
	return &p, json.Unmarshal(raw, &p)
}

// bindScript writes the binding and the history entry while the caller still
// holds the workspace lock (a fencing check: a holder whose lock expired
// cannot overwrite a binding made after it).
var bindScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 0 then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
return 1`)

// Bind stores b as w's binding, fenced by lock.
func (s *Store) Bind(ctx context.Context, b *Binding, lock *store.Lock) error {
	rec := bindingRecord{Binding: *b}
	var err error
	if rec.Refresh, err = s.keys.Seal(b.RefreshToken, aadBinding(b.Scope, b.OrgID)); err != nil {
		return err
	}
	body, _ := json.Marshal(rec)
	hist, _ := json.Marshal(PastConnection{OrgUserID: b.ConnectedByOrgUser, Username: b.ConnectedByUsername, OrgName: b.OrgName})
	// Index first: a crash after it leaves an entry without a record (skipped
	// by readers), never a binding key rotation cannot see.
	if err := s.rdb.SAdd(ctx, kBindings, b.Scope).Err(); err != nil {
		return fmt.Errorf("binding: indexing %s: %w", b.Scope, err)
	}
	n, err := bindScript.Run(ctx, s.rdb, []string{kBinding(b.Scope), kHistory(b.Scope), lock.Key()},
		lock.Token(), body, b.OrgID, hist).Int()
	if err != nil {
		return fmt.Errorf("binding: saving %s: %w", b.Scope, err)
	}
	if n < 0 {
		return store.ErrLockNotHeld
	}
	return nil
}

// invalidateScript marks the binding invalid only if it is still bound to ARGV[1].
var invalidateScript = redis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local b = cjson.decode(raw)
if b.org_id ~= ARGV[1] or not b.valid then return 0 end
b.valid = false
b.invalid_reason = ARGV[2]
b.invalid_at = ARGV[3]
redis.call('SET', KEYS[1], cjson.encode(b))
return 1`)

// Invalidate marks w's binding to org invalid (the org expired or refuses
// its token); it reports whether it changed anything.
func (s *Store) Invalidate(ctx context.Context, w, org, reason string) (bool, error) {
	n, err := invalidateScript.Run(ctx, s.rdb, []string{kBinding(w)}, org, reason, time.Now().UTC().Format(time.RFC3339Nano)).Int()
	return n == 1, err
}

// clearScript removes the binding and its history while the caller still
// holds the workspace lock (fencing, as bindScript).
var clearScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1`)

// Clear removes w's binding and history (the app was uninstalled), fenced by
// lock (from [LockKey]).
func (s *Store) Clear(ctx context.Context, w string, lock *store.Lock) error {
	n, err := clearScript.Run(ctx, s.rdb, []string{kBinding(w), kHistory(w), lock.Key()}, lock.Token()).Int()
	if err != nil {
		return fmt.Errorf("binding: clearing %s: %w", w, err)
	}
	if n < 0 {
		return store.ErrLockNotHeld
	}
	return s.rdb.SRem(ctx, kBindings, w).Err()
}

func kStash(scope, flow string) string { return store.Key(scope, "oauth", "tokens", flow) }

// StashTTL is how long the tokens of an OAuth flow are kept for its retries.
const StashTTL = 15 * time.Minute

// Stash keeps v (a token response, sealed under aad) for the OAuth flow
// flow of scope, so a retry after the single-use code was exchanged reads
// it instead of exchanging again. The first stash wins; Stash returns the
// stashed value into v when there already is one.
func (s *Store) Stash(ctx context.Context, scope, flow, aad string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	sealed, err := s.keys.Seal(store.Secret(body), aad)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(sealed)
	var ok bool
	var last error
	err = backoff.Retry(func() error {
		// The code is spent: losing its tokens loses the flow, so the write
		// itself is not cut short by ctx; the retries are.
		ok, last = s.rdb.SetNX(context.WithoutCancel(ctx), kStash(scope, flow), raw, StashTTL).Result()
		return last
	}, stashBackOff(ctx))
	if err != nil {
		if last != nil && !errors.Is(err, last) {
			err = errors.Join(last, err) // ctx ended: say what the write met, too
		}
		return fmt.Errorf("binding: stashing the tokens of flow %s: %w", flow, err)
	}
	if !ok {
		_, err := s.Stashed(ctx, scope, flow, aad, v)
		return err
	}
	return nil
}

// stashBackOff is how [Store.Stash] retries a failed write: three tries,
// about 100 ms then 200 ms apart, and none once ctx ends.
func stashBackOff(ctx context.Context) backoff.BackOff {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(time.Second),
		backoff.WithMaxElapsedTime(0),
	)
	return backoff.WithContext(backoff.WithMaxRetries(b, 2), ctx)
}

// Stashed reads the stash of flow into v; false when there is none.
func (s *Store) Stashed(ctx context.Context, scope, flow, aad string, v any) (bool, error) {
	raw, err := s.rdb.Get(ctx, kStash(scope, flow)).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("binding: reading the tokens of flow %s: %w", flow, err)
	}
	var sealed store.Sealed
	if err := json.Unmarshal(raw, &sealed); err != nil {
		return false, err
	}
	body, err := s.keys.Open(sealed, aad)
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal([]byte(body.Reveal()), v)
}

// List returns every binding (for admins and key rotation).
func (s *Store) List(ctx context.Context) ([]*Binding, error) {
	ws, err := s.rdb.SMembers(ctx, kBindings).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(ws)
	var out []*Binding
	for _, w := range ws {
		b, err := s.Get(ctx, w)
		if err != nil {
			return nil, err
		}
		if b != nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// SealedSet describes bindings for key rotation ([store.Reseal],
// [store.CheckSealed]): every binding the index names, with its refresh token.
// The OAuth flows' stashes are not in it: they live StashTTL.
func (s *Store) SealedSet() store.SealedSet {
	return store.SealedSet{
		Kind: "bindings",
		List: func(ctx context.Context) ([]store.SealedRef, error) {
			ws, err := s.rdb.SMembers(ctx, kBindings).Result()
			if err != nil {
				return nil, err
			}
			slices.Sort(ws)
			refs := make([]store.SealedRef, len(ws))
			for i, w := range ws {
				refs[i] = store.SealedRef{Key: kBinding(w), Name: "binding " + w}
			}
			return refs, nil
		},
		Visit: func(raw []byte, f func(field string, s *store.Sealed, aad string) error) ([]byte, error) {
			var rec bindingRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return nil, err
			}
			if err := f("refresh_token", &rec.Refresh, aadBinding(rec.Scope, rec.OrgID)); err != nil {
				return nil, err
			}
			return json.Marshal(rec)
		},
	}
}

// setTokenScript replaces the binding's refresh token (ARGV[2], sealed JSON)
// only while the binding is still to org ARGV[1].
var setTokenScript = redis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local b = cjson.decode(raw)
if b.org_id ~= ARGV[1] then return 0 end
b.refresh_token = cjson.decode(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(b))
return 1`)

// SetToken makes rt (a refresh token of another user of org that still
// works) the token w's binding checks its org with, once the one it had
// stopped working (its user was deactivated or revoked the app). It changes
// nothing when w is no longer bound to org, and reports whether it changed.
func (s *Store) SetToken(ctx context.Context, w, org string, rt store.Secret) (bool, error) {
	sealed, err := s.keys.Seal(rt, aadBinding(w, org))
	if err != nil {
		return false, err
	}
	raw, _ := json.Marshal(sealed)
	n, err := setTokenScript.Run(ctx, s.rdb, []string{kBinding(w)}, org, raw).Int()
	if err != nil {
		return false, fmt.Errorf("binding: replacing the token of %s: %w", w, err)
	}
	return n == 1, nil
}

func kProbe(w string) string { return store.Key(w, "binding", "probe") }

// ProbeState returns what the last check of w's org found, while it is
// fresh ("" when none is).
func (s *Store) ProbeState(ctx context.Context, w string) (string, error) {
	v, err := s.rdb.Get(ctx, kProbe(w)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// ClaimProbe reserves the next check of w's org for the caller (for ttl);
// false when another caller holds it.
func (s *Store) ClaimProbe(ctx context.Context, w string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, kProbe(w), probeRunning, ttl).Result()
}

// SetProbeState records what a check of w's org found, fresh for ttl.
func (s *Store) SetProbeState(ctx context.Context, w, state string, ttl time.Duration) error {
	return s.rdb.Set(ctx, kProbe(w), state, ttl).Err()
}

// ForgetProbe drops the last check of w's org, so the next interaction
// checks it again.
func (s *Store) ForgetProbe(ctx context.Context, w string) error {
	return s.rdb.Del(ctx, kProbe(w)).Err()
}
