package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoInstallation: the app is not installed for that team or enterprise.
var ErrNoInstallation = errors.New("store: app is not installed there")

// Installation is one Slack install of an app, per (app id, enterprise id,
// team id). An org-wide Enterprise Grid install has no team id.
type Installation struct {
	AppID               string    `json:"app_id"`
	EnterpriseID        string    `json:"enterprise_id,omitempty"`
	EnterpriseName      string    `json:"enterprise_name,omitempty"`
	TeamID              string    `json:"team_id,omitempty"`
	TeamName            string    `json:"team_name,omitempty"`
	IsEnterpriseInstall bool      `json:"is_enterprise_install"`
	BotUserID           string    `json:"bot_user_id,omitempty"`
	BotID               string    `json:"bot_id,omitempty"`
	Scopes              []string  `json:"scopes"`
	InstallerUserID     string    `json:"installer_user_id,omitempty"`
	WebhookChannel      string    `json:"webhook_channel,omitempty"`
	WebhookChannelID    string    `json:"webhook_channel_id,omitempty"`
	InstalledAt         time.Time `json:"installed_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	// TokenExpiresAt is when BotToken expires; zero for a token that does not rotate.
	TokenExpiresAt time.Time `json:"token_expires_at,omitzero"`

	// Secrets: sealed at rest, never serialised in the clear.
	BotToken        Secret `json:"-"`
	BotRefreshToken Secret `json:"-"`
	WebhookURL      Secret `json:"-"`
}

// Tenant is the team id, or the enterprise id of an org-wide install.
func (in *Installation) Tenant() string {
	if in.TeamID != "" {
		return in.TeamID
	}
	return in.EnterpriseID
}

// HasScope reports whether the install granted scope.
func (in *Installation) HasScope(scope string) bool { return slices.Contains(in.Scopes, scope) }

// installRecord is the stored form.
type installRecord struct {
	Installation
	BotTokenSealed   Sealed `json:"bot_token"`
	RefreshSealed    Sealed `json:"bot_refresh_token,omitzero"`
	WebhookURLSealed Sealed `json:"webhook_url,omitzero"`
}

// Installations stores installs in Redis, tokens sealed with the keyring:
// ob:{tenant}:install:<app_id> holds one install; ob:{tenant}:installs lists
// the apps installed there; ob:{_}:installs indexes every install for admin
// listings and key rotation; ob:{_}:installs:expiry orders installs with a
// rotating token by expiry, for token refresh. The indexes are written before
// the record (and removed after it), so a crash in between leaves at most an
// index entry without a record, which readers skip, never a record no index names.
type Installations struct {
	rdb  redis.UniversalClient
	keys *Keyring
}

// NewInstallations returns the store.
func NewInstallations(rdb redis.UniversalClient, keys *Keyring) *Installations {
	return &Installations{rdb: rdb, keys: keys}
}

// InstallKey is the Redis key of one install.
func InstallKey(appID, enterpriseID, teamID string) string {
	return Key(tenantOf(enterpriseID, teamID), "install", appID)
}

// InstallLockKey is the lock held while an install's tokens are refreshed.
func InstallLockKey(appID, enterpriseID, teamID string) string {
	return Key(tenantOf(enterpriseID, teamID), "lock", "install", appID)
}

func tenantOf(enterpriseID, teamID string) string {
	if teamID != "" {
		return teamID
	}
	return enterpriseID
}

func indexMember(appID, enterpriseID, teamID string) string {
	return appID + "|" + enterpriseID + "|" + teamID
}

var globalInstallIndex = Key(GlobalTenant, "installs")

// expiryIndex orders rotating installs by when their bot token expires
// (score: unix seconds), so a refresh round reads only the installs due.
var expiryIndex = Key(GlobalTenant, "installs", "expiry")

func aadInstall(in *Installation, field string) string {
	return "install:" + indexMember(in.AppID, in.EnterpriseID, in.TeamID) + ":" + field
}

func (s *Installations) seal(in *Installation) (installRecord, error) {
	rec := installRecord{Installation: *in}
	var err error
	if rec.BotTokenSealed, err = s.keys.Seal(in.BotToken, aadInstall(in, "bot")); err != nil {
		return rec, err
	}
	if rec.RefreshSealed, err = s.keys.Seal(in.BotRefreshToken, aadInstall(in, "refresh")); err != nil {
		return rec, err
	}
	if rec.WebhookURLSealed, err = s.keys.Seal(in.WebhookURL, aadInstall(in, "webhook")); err != nil {
		return rec, err
	}
	return rec, nil
}

func (s *Installations) open(raw []byte) (*Installation, *installRecord, error) {
	var rec installRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, nil, fmt.Errorf("store: decoding installation: %w", err)
	}
	in := rec.Installation
	var err error
	if in.BotToken, err = s.keys.Open(rec.BotTokenSealed, aadInstall(&in, "bot")); err != nil {
		return nil, nil, err
	}
	if in.BotRefreshToken, err = s.keys.Open(rec.RefreshSealed, aadInstall(&in, "refresh")); err != nil {
		return nil, nil, err
	}
	if in.WebhookURL, err = s.keys.Open(rec.WebhookURLSealed, aadInstall(&in, "webhook")); err != nil {
		return nil, nil, err
	}
	return &in, &rec, nil
}

// saveScript writes an install only while the caller holds the install's
// lock (when a token is given): a refresh that lost its lock cannot overwrite
// a newer token.
var saveScript = redis.NewScript(`
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then
	return -1
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
return 1`)

// Save stores in (a new install or a re-install replaces the old one).
func (s *Installations) Save(ctx context.Context, in *Installation) error {
	return s.save(ctx, in, "")
}

// SaveFenced stores in only while lock (from [InstallLockKey]) is still held,
// and waits for a replica to have it ([Replicated]): it saves tokens Slack
// will not give again (a fresh install's, a rotated one's). It returns
// [ErrNotReplicated] when the install was saved on the primary but no replica
// acknowledged it in time.
func (s *Installations) SaveFenced(ctx context.Context, in *Installation, lock *Lock) error {
	return s.save(ctx, in, lock.Token())
}

func (s *Installations) save(ctx context.Context, in *Installation, token string) error {
	if in.AppID == "" || in.Tenant() == "" {
		return errors.New("store: an installation needs an app id and a team or enterprise id")
	}
	in.UpdatedAt = time.Now().UTC()
	if in.InstalledAt.IsZero() {
		in.InstalledAt = in.UpdatedAt
	}
	rec, err := s.seal(in)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	member := indexMember(in.AppID, in.EnterpriseID, in.TeamID)
	pipe := s.rdb.TxPipeline()
	pipe.SAdd(ctx, globalInstallIndex, member)
	if in.BotRefreshToken != "" && !in.TokenExpiresAt.IsZero() {
		pipe.ZAdd(ctx, expiryIndex, redis.Z{Score: float64(in.TokenExpiresAt.Unix()), Member: member})
	} else {
		pipe.ZRem(ctx, expiryIndex, member)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("store: indexing installation: %w", err)
	}
	keys := []string{InstallKey(in.AppID, in.EnterpriseID, in.TeamID), Key(in.Tenant(), "installs"),
		InstallLockKey(in.AppID, in.EnterpriseID, in.TeamID)}
	write := func(c redis.Cmdable) error {
		n, err := saveScript.Run(ctx, c, keys, b, token, in.AppID).Int()
		if err != nil {
			return fmt.Errorf("store: saving installation: %w", err)
		}
		if n < 0 {
			return ErrLockNotHeld
		}
		return nil
	}
	if token == "" {
		return write(s.rdb)
	}
	_, err = Replicated(ctx, s.rdb, keys[0], DefaultReplicationWait, write)
	return err
}

// InstallRef names one install.
type InstallRef struct{ AppID, EnterpriseID, TeamID string }

// Due returns the installs whose rotating bot token expires before t, read
// from the expiry index alone (no install record is read or decrypted).
func (s *Installations) Due(ctx context.Context, t time.Time) ([]InstallRef, error) {
	members, err := s.rdb.ZRangeByScore(ctx, expiryIndex, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(t.Unix(), 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: listing installs due for refresh: %w", err)
	}
	out := make([]InstallRef, 0, len(members))
	for _, m := range members {
		p := strings.SplitN(m, "|", 3)
		if len(p) == 3 {
			out = append(out, InstallRef{AppID: p[0], EnterpriseID: p[1], TeamID: p[2]})
		}
	}
	return out, nil
}

// Get returns the install of app for exactly (enterpriseID, teamID).
func (s *Installations) Get(ctx context.Context, appID, enterpriseID, teamID string) (*Installation, error) {
	raw, err := s.rdb.Get(ctx, InstallKey(appID, enterpriseID, teamID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoInstallation
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading installation: %w", err)
	}
	in, _, err := s.open(raw)
	return in, err
}

// Find returns the install that serves team teamID of enterprise
// enterpriseID: the workspace's own install, else the org-wide one.
func (s *Installations) Find(ctx context.Context, appID, enterpriseID, teamID string) (*Installation, error) {
	if teamID != "" {
		in, err := s.Get(ctx, appID, enterpriseID, teamID)
		if !errors.Is(err, ErrNoInstallation) || enterpriseID == "" {
			return in, err
		}
	}
	return s.Get(ctx, appID, enterpriseID, "")
}

// AppsAt lists the apps installed for tenant (a team or an org-wide enterprise).
func (s *Installations) AppsAt(ctx context.Context, tenant string) ([]string, error) {
	return s.rdb.SMembers(ctx, Key(tenant, "installs")).Result()
}

// Delete removes the install; it reports whether there was one.
func (s *Installations) Delete(ctx context.Context, appID, enterpriseID, teamID string) (bool, error) {
	tenant := tenantOf(enterpriseID, teamID)
	pipe := s.rdb.TxPipeline()
	del := pipe.Del(ctx, InstallKey(appID, enterpriseID, teamID))
	pipe.SRem(ctx, Key(tenant, "installs"), appID)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("store: deleting installation: %w", err)
	}
	member := indexMember(appID, enterpriseID, teamID)
	ipipe := s.rdb.TxPipeline()
	ipipe.SRem(ctx, globalInstallIndex, member)
	ipipe.ZRem(ctx, expiryIndex, member)
	if _, err := ipipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("store: unindexing installation: %w", err)
	}
	return del.Val() > 0, nil
}

// List returns every install, sorted by tenant then app.
func (s *Installations) List(ctx context.Context) ([]*Installation, error) {
	members, err := s.rdb.SMembers(ctx, globalInstallIndex).Result()
	if err != nil {
		return nil, fmt.Errorf("store: listing installations: %w", err)
	}
	slices.Sort(members)
	out := make([]*Installation, 0, len(members))
	for _, m := range members {
		p := strings.SplitN(m, "|", 3)
		if len(p) != 3 {
			continue
		}
		in, err := s.Get(ctx, p[0], p[1], p[2])
		if errors.Is(err, ErrNoInstallation) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// SealedSet describes installs for key rotation ([Reseal], [CheckSealed]):
// every install the global index names, with its bot token, refresh token
// and webhook URL.
func (s *Installations) SealedSet() SealedSet {
	return SealedSet{
		Kind: "installations",
		List: func(ctx context.Context) ([]SealedRef, error) {
			members, err := s.rdb.SMembers(ctx, globalInstallIndex).Result()
			if err != nil {
				return nil, err
			}
			slices.Sort(members)
			refs := make([]SealedRef, 0, len(members))
			for _, m := range members {
				if p := strings.SplitN(m, "|", 3); len(p) == 3 {
					refs = append(refs, SealedRef{Key: InstallKey(p[0], p[1], p[2]), Name: "installation " + m})
				}
			}
			return refs, nil
		},
		Visit: func(raw []byte, f func(field string, s *Sealed, aad string) error) ([]byte, error) {
			var rec installRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return nil, err
			}
			in := &rec.Installation
			for _, v := range []struct {
				field string
				s     *Sealed
			}{{"bot", &rec.BotTokenSealed}, {"refresh", &rec.RefreshSealed}, {"webhook", &rec.WebhookURLSealed}} {
				if err := f(v.field, v.s, aadInstall(in, v.field)); err != nil {
					return nil, err
				}
			}
			return json.Marshal(rec)
		},
	}
}
