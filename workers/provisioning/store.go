package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Keys, all under the org's hash tag so scripts touch one slot:
//
//	ob:{ORG}:prov:integration        the integration (JSON, secrets sealed)
//	ob:{ORG}:prov:links              HASH slack user id → Link (the users orgbridge manages)
//	ob:{ORG}:prov:team:<team>        SET of directory ids orgbridge added to a team
//	ob:{ORG}:prov:runs               ZSET run id by creation time (history)
//	ob:{ORG}:prov:run:<id>           the run (JSON)
//	ob:{ORG}:prov:run:<id>:rows      LIST of report rows (JSON)
//	ob:{ORG}:prov:run:<id>:seen      SET of Slack users a run provisioned (resume)
//	ob:{ORG}:prov:run:<id>:held      LIST of held deactivations (JSON rows)
//	ob:{ORG}:prov:runlock            the lock that keeps two runs of one org apart
//	ob:{_}:prov:orgs                 SET of orgs with an integration (the scheduler's index)
func kIntegration(org string) string     { return store.Key(org, "prov", "integration") }
func kLinks(org string) string           { return store.Key(org, "prov", "links") }
func kTeam(org, team string) string      { return store.Key(org, "prov", "team", team) }
func kRuns(org string) string            { return store.Key(org, "prov", "runs") }
func kRun(org, id string) string         { return store.Key(org, "prov", "run", id) }
func kRows(org, id string) string        { return store.Key(org, "prov", "run", id, "rows") }
func kSeen(org, id string) string        { return store.Key(org, "prov", "run", id, "seen") }
func kHeld(org, id string) string        { return store.Key(org, "prov", "run", id, "held") }
func kRunLock(org string) string         { return store.Key(org, "prov", "runlock") }
func kOrgs() string                      { return store.Key(store.GlobalTenant, "prov", "orgs") }
func kScheduled(org, slot string) string { return store.Key(org, "prov", "scheduled", slot) }

// Status is an integration's state.
type Status string

// Integration states.
const (
	StatusActive       Status = "active"
	StatusDisconnected Status = "disconnected"
	// StatusConnecting is shown (never stored) while the first connect flow of an org is under way.
	StatusConnecting Status = "connecting"
)

// Source is the Slack side of an integration: one workspace, or a whole
// Enterprise Grid org (EnterpriseID set, TeamID empty).
type Source struct {
	TeamID       string `json:"team_id,omitempty"`
	EnterpriseID string `json:"enterprise_id,omitempty"`
	Name         string `json:"name"`
	// ConnectedBy is the Slack admin whose token reads the source.
	ConnectedBy string `json:"connected_by"`
}

// ID is the source's Slack id (the workspace, or the enterprise).
func (s Source) ID() string {
	if s.TeamID != "" {
		return s.TeamID
	}
	return s.EnterpriseID
}

// Quarantine says why an integration stopped its daily runs and when it tries again.
type Quarantine struct {
	Since     time.Time `json:"since"`
	Reason    string    `json:"reason"`
	NextRetry time.Time `json:"next_retry"`
	Retries   int       `json:"retries"`
}

// Integration links one org's directory to one Slack source.
type Integration struct {
	ID     string `json:"id"`
	OrgID  string `json:"org_id"`
	Status Status `json:"status"`
	// Rev grows at every write (optimistic concurrency).
	Rev    int    `json:"rev"`
	Source Source `json:"source"`
	// OrgAdmin is the org user who connected it.
	OrgAdmin string `json:"org_admin"`
	// DirectoryURL is the org's SCIM base URL.
	DirectoryURL string       `json:"directory_url"`
	SlackToken   store.Sealed `json:"slack_token"`
	// SlackRefresh renews a rotating Slack token before SlackExpires.
	SlackRefresh store.Sealed `json:"slack_refresh,omitzero"`
	SlackExpires time.Time    `json:"slack_expires,omitzero"`
	// DirectoryToken is the org access token; DirectoryRefresh renews it.
	DirectoryToken   store.Sealed `json:"directory_token"`
	DirectoryRefresh store.Sealed `json:"directory_refresh,omitzero"`

	Settings Settings `json:"settings"`
	// SettingsVersion grows at each save; AppliedVersion is the version the
	// last finished run used. Pending (a saved change not synced yet) is
	// SettingsVersion > AppliedVersion.
	SettingsVersion int `json:"settings_version"`
	AppliedVersion  int `json:"applied_version"`

	Quarantine          *Quarantine `json:"quarantine,omitempty"`
	ConsecutiveFailures int         `json:"consecutive_failures"`
	// LastScheduled is the schedule slot of the last scheduled run.
	LastScheduled time.Time `json:"last_scheduled,omitzero"`
	LastRunID     string    `json:"last_run_id,omitempty"`
	CurrentRunID  string    `json:"current_run_id,omitempty"`

	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`
	Disconnected   time.Time `json:"disconnected,omitzero"`
	PreviousSource []Source  `json:"previous_sources,omitempty"`
}

// Pending reports whether saved settings have not been synced yet.
func (in *Integration) Pending() bool { return in.SettingsVersion > in.AppliedVersion }

// Fields are the directory attributes orgbridge provisions for a user.
type Fields struct {
	UserName    string `json:"u"`
	GivenName   string `json:"g,omitempty"`
	FamilyName  string `json:"f,omitempty"`
	DisplayName string `json:"n,omitempty"`
	Email       string `json:"e"`
	Title       string `json:"t,omitempty"`
	Photo       string `json:"p,omitempty"`
	// UserType is "member", "guest" (multi-channel) or "single_channel_guest".
	UserType string `json:"k,omitempty"`
}

// Link is one Slack user orgbridge manages in the directory.
type Link struct {
	DirID string `json:"d"`
	// Version is the directory user's ETag after orgbridge's last write.
	Version string `json:"v,omitempty"`
	Active  bool   `json:"a"`
	Fields  Fields `json:"f"`
	// Created is true when orgbridge created the directory user (false: linked to an existing one).
	Created bool `json:"c,omitempty"`
	// Source is the Slack source (workspace or enterprise id) the link was
	// made under: after a replace, a user of the new source may take over a
	// directory user of the old one, never one of another user of its own source.
	Source string `json:"s,omitempty"`
}

// Change is one changed attribute in a report row.
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Report actions and outcomes.
const (
	ActCreate     = "create"
	ActUpdate     = "update"
	ActDeactivate = "deactivate"
	ActReactivate = "reactivate"
	ActAddTeam    = "add_to_team"
	ActRemoveTeam = "remove_from_team"
	ActHeld       = "held"
	ActSkip       = "skip"

	OutSucceeded = "succeeded"
	OutFailed    = "failed"
	OutSkipped   = "skipped"
	OutPlanned   = "planned" // a preview's rows
)

// Row is one line of a run's report.
type Row struct {
	Action      string    `json:"action"`
	Outcome     string    `json:"outcome"`
	SlackID     string    `json:"slack_id,omitempty"`
	Name        string    `json:"name,omitempty"`
	Email       string    `json:"email,omitempty"`
	DirectoryID string    `json:"directory_id,omitempty"`
	Team        string    `json:"team,omitempty"`
	Changes     []Change  `json:"changes,omitempty"`
	Details     string    `json:"details,omitempty"`
	At          time.Time `json:"at"`
}

// Run is one sync of an integration, persisted as it goes.
type Run struct {
	ID            string             `json:"id"`
	OrgID         string             `json:"org_id"`
	IntegrationID string             `json:"integration_id"`
	Trigger       events.SyncTrigger `json:"trigger"`
	DryRun        bool               `json:"dry_run,omitempty"`
	By            string             `json:"by,omitempty"`
	Status        events.RunStatus   `json:"status"`
	// UserIDs limits an event-driven run to these Slack users.
	UserIDs         []string  `json:"user_ids,omitempty"`
	SettingsVersion int       `json:"settings_version"`
	Created         time.Time `json:"created"`
	Started         time.Time `json:"started,omitzero"`
	Ended           time.Time `json:"ended,omitzero"`
	// Checkpoint: Workspace is the index of the source workspace being read,
	// Cursor the users.list cursor of the next page, Phase the step.
	Phase     string `json:"phase,omitempty"`
	Workspace int    `json:"workspace,omitempty"`
	Cursor    string `json:"cursor,omitempty"`
	Pages     int    `json:"pages"`
	UsersSeen int    `json:"users_seen"`
	// Counts are per "action:outcome" (e.g. "create:succeeded"), plus "unchanged".
	Counts   map[string]int `json:"counts"`
	Held     int            `json:"held"`
	Error    string         `json:"error,omitempty"`
	Decision string         `json:"decision,omitempty"` // approved or rejected, for held deactivations
	Resumes  int            `json:"resumes,omitempty"`
}

// Duration is how long the run took (so far).
func (r *Run) Duration(now time.Time) time.Duration {
	switch {
	case r.Started.IsZero():
		return 0
	case r.Ended.IsZero():
		return now.Sub(r.Started)
	}
	return r.Ended.Sub(r.Started)
}

// Store keeps integrations, links, runs and reports in Redis.
type Store struct {
	rdb  redis.UniversalClient
	keys *store.Keyring
}

// NewStore returns a Store; keys seal the Slack and directory tokens.
func NewStore(rdb redis.UniversalClient, keys *store.Keyring) *Store {
	return &Store{rdb: rdb, keys: keys}
}

func aad(org, field string) string { return "provisioning:" + org + ":" + field }

// seal encrypts a token for org's integration.
func (s *Store) seal(org, field string, v store.Secret) (store.Sealed, error) {
	if v == "" {
		return store.Sealed{}, nil
	}
	return s.keys.Seal(v, aad(org, field))
}

// open decrypts a sealed token of org's integration.
func (s *Store) open(org, field string, v store.Sealed) (store.Secret, error) {
	if v.IsZero() {
		return "", nil
	}
	return s.keys.Open(v, aad(org, field))
}

// Integration reads org's integration; [ErrNoIntegration] when there is none.
func (s *Store) Integration(ctx context.Context, org string) (*Integration, error) {
	b, err := s.rdb.Get(ctx, kIntegration(org)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoIntegration
	}
	if err != nil {
		return nil, fmt.Errorf("provisioning: reading integration of %s: %w", org, err)
	}
	var in Integration
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("provisioning: integration of %s is unreadable: %w", org, err)
	}
	return &in, nil
}

// connectScript creates or replaces the integration atomically: with mode
// "connect" it refuses while an active one exists (returning it), with
// "replace" it requires one.
var connectScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local active = false
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and v['status'] == 'active' then active = true end
end
if ARGV[2] == 'connect' and active then return {0, cur} end
if ARGV[2] == 'replace' and not active then return {2, cur or ''} end
redis.call('SET', KEYS[1], ARGV[1])
return {1, ''}
`)

// create writes in unless an active integration exists ([ErrAlreadyActive],
// with the active one).
func (s *Store) create(ctx context.Context, in *Integration) (*Integration, error) {
	return s.swap(ctx, in, "connect")
}

func (s *Store) swap(ctx context.Context, in *Integration, mode string) (*Integration, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	// The index first: it is a global key in another slot, and a script may
	// touch one slot only (Redis Cluster). A refusal or a crash after it leaves
	// an org the index names without an integration, which readers skip,
	// never an integration the scheduler cannot find.
	if err := s.rdb.SAdd(ctx, kOrgs(), in.OrgID).Err(); err != nil {
		return nil, fmt.Errorf("provisioning: indexing integration of %s: %w", in.OrgID, err)
	}
	res, err := connectScript.Run(ctx, s.rdb, []string{kIntegration(in.OrgID)}, b, mode).Slice()
	if err != nil {
		return nil, fmt.Errorf("provisioning: saving integration of %s: %w", in.OrgID, err)
	}
	code, _ := res[0].(int64)
	switch code {
	case 0:
		var cur Integration
		_ = json.Unmarshal([]byte(res[1].(string)), &cur)
		return &cur, ErrAlreadyActive
	case 2:
		return nil, ErrNoIntegration
	}
	return in, nil
}

// updateScript writes an integration only if its revision is the one that
// was read, so concurrent admin saves and runs do not undo each other.
var updateScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local v = cjson.decode(cur)
if tonumber(v['rev'] or 0) ~= tonumber(ARGV[2]) then return 2 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// Update reads org's integration, applies change and writes it back, retrying
// when something else wrote in between. An error from change is returned
// with nothing written.
func (s *Store) Update(ctx context.Context, org string, now func() time.Time, change func(in *Integration) error) (*Integration, error) {
	for attempt := 0; ; attempt++ {
		in, err := s.Integration(ctx, org)
		if err != nil {
			return nil, err
		}
		rev := in.Rev
		if err := change(in); err != nil {
			return in, err
		}
		in.Rev = rev + 1
		in.Updated = now().UTC()
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		code, err := updateScript.Run(ctx, s.rdb, []string{kIntegration(org)}, b, rev).Int()
		if err != nil {
			return nil, fmt.Errorf("provisioning: updating integration of %s: %w", org, err)
		}
		switch code {
		case 0:
			return nil, ErrNoIntegration
		case 1:
			return in, nil
		}
		if attempt > 50 {
			return nil, fmt.Errorf("provisioning: integration of %s keeps changing; try again", org)
		}
	}
}

// SealedSet describes integrations for key rotation ([store.Reseal],
// [store.CheckSealed]): every indexed org's integration, with its Slack and
// directory tokens. A re-sealed integration gets a new Rev, so a writer that
// read it before loses its compare-and-set and reads it again. Pending
// connect flows are not in it: they live 15 minutes.
func (s *Store) SealedSet() store.SealedSet {
	return store.SealedSet{
		Kind: "provisioning integrations",
		List: func(ctx context.Context) ([]store.SealedRef, error) {
			orgs, err := s.Orgs(ctx)
			if err != nil {
				return nil, err
			}
			slices.Sort(orgs)
			refs := make([]store.SealedRef, len(orgs))
			for i, org := range orgs {
				refs[i] = store.SealedRef{Key: kIntegration(org), Name: "provisioning integration " + org}
			}
			return refs, nil
		},
		Visit: func(raw []byte, f func(field string, s *store.Sealed, aad string) error) ([]byte, error) {
			var in Integration
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, err
			}
			for _, v := range []struct {
				field string
				s     *store.Sealed
			}{{"slack", &in.SlackToken}, {"slack_refresh", &in.SlackRefresh}, {"directory", &in.DirectoryToken}, {"directory_refresh", &in.DirectoryRefresh}} {
				if err := f(v.field, v.s, aad(in.OrgID, v.field)); err != nil {
					return nil, err
				}
			}
			in.Rev++
			return json.Marshal(in)
		},
	}
}

// Orgs lists the orgs that have (or had) an integration.
func (s *Store) Orgs(ctx context.Context) ([]string, error) {
	return s.rdb.SMembers(ctx, kOrgs()).Result()
}

// Links reads every link of org.
func (s *Store) Links(ctx context.Context, org string) (map[string]Link, error) {
	// A field at a time (HSCAN): an org of 100,000 people has as many links.
	n, err := s.rdb.HLen(ctx, kLinks(org)).Result()
	if err != nil {
		return nil, fmt.Errorf("provisioning: reading links of %s: %w", org, err)
	}
	out := make(map[string]Link, n)
	err = store.ScanHash(ctx, s.rdb, kLinks(org), func(id, v string) error {
		var l Link
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			return fmt.Errorf("provisioning: link of %s in %s is unreadable: %w", id, org, err)
		}
		out[id] = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning: reading links of %s: %w", org, err)
	}
	return out, nil
}

// SaveLinks writes links (and deletes the ids in drop: a link moved to a new Slack id).
func (s *Store) SaveLinks(ctx context.Context, org string, links map[string]Link, drop []string) error {
	if len(links) == 0 && len(drop) == 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(drop) > 0 {
			p.HDel(ctx, kLinks(org), drop...)
		}
		if len(links) > 0 {
			args := make([]any, 0, 2*len(links))
			for id, l := range links {
				b, _ := json.Marshal(l)
				args = append(args, id, b)
			}
			p.HSet(ctx, kLinks(org), args...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("provisioning: saving links of %s: %w", org, err)
	}
	return nil
}

// TeamMembers are the directory users orgbridge added to team.
func (s *Store) TeamMembers(ctx context.Context, org, team string) (map[string]bool, error) {
	ids, err := s.rdb.SMembers(ctx, kTeam(org, team)).Result()
	if err != nil {
		return nil, fmt.Errorf("provisioning: reading team %s of %s: %w", team, org, err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// SetTeamMembers records that orgbridge added add to team and removed remove.
func (s *Store) SetTeamMembers(ctx context.Context, org, team string, add, remove []string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(add) > 0 {
			p.SAdd(ctx, kTeam(org, team), toAny(add)...)
		}
		if len(remove) > 0 {
			p.SRem(ctx, kTeam(org, team), toAny(remove)...)
		}
		return nil
	})
	return err
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// CreateRun writes a new run unless one with its id exists (a schedule slot
// or a redelivered trigger); created is false then.
func (s *Store) CreateRun(ctx context.Context, r *Run, keep int) (created bool, err error) {
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	ok, err := s.rdb.SetNX(ctx, kRun(r.OrgID, r.ID), b, 0).Result()
	if err != nil || !ok {
		return false, err
	}
	if err := s.rdb.ZAdd(ctx, kRuns(r.OrgID), redis.Z{Score: float64(r.Created.UnixMilli()), Member: r.ID}).Err(); err != nil {
		return true, err
	}
	return true, s.trimRuns(ctx, r.OrgID, keep)
}

// trimRuns drops the oldest runs past keep, with their reports.
func (s *Store) trimRuns(ctx context.Context, org string, keep int) error {
	n, err := s.rdb.ZCard(ctx, kRuns(org)).Result()
	if err != nil || n <= int64(keep) {
		return err
	}
	old, err := s.rdb.ZRange(ctx, kRuns(org), 0, n-int64(keep)-1).Result()
	if err != nil {
		return err
	}
	for _, id := range old {
		s.rdb.Del(ctx, kRun(org, id), kRows(org, id), kSeen(org, id), kHeld(org, id))
	}
	return s.rdb.ZRem(ctx, kRuns(org), toAny(old)...).Err()
}

// SaveRun writes a run's state.
func (s *Store) SaveRun(ctx context.Context, r *Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, kRun(r.OrgID, r.ID), b, 0).Err(); err != nil {
		return fmt.Errorf("provisioning: saving run %s: %w", r.ID, err)
	}
	return nil
}

// Run reads one run; [ErrNoRun] when there is none.
func (s *Store) Run(ctx context.Context, org, id string) (*Run, error) {
	b, err := s.rdb.Get(ctx, kRun(org, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoRun
	}
	if err != nil {
		return nil, fmt.Errorf("provisioning: reading run %s: %w", id, err)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("provisioning: run %s is unreadable: %w", id, err)
	}
	return &r, nil
}

// Runs lists org's runs, newest first, at most limit.
func (s *Store) Runs(ctx context.Context, org string, limit int) ([]*Run, error) {
	ids, err := s.rdb.ZRevRange(ctx, kRuns(org), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]*Run, 0, len(ids))
	for _, id := range ids {
		r, err := s.Run(ctx, org, id)
		if errors.Is(err, ErrNoRun) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// AppendRows adds report rows to a run.
func (s *Store) AppendRows(ctx context.Context, org, run string, rows []Row) error {
	return s.appendList(ctx, kRows(org, run), rows)
}

func (s *Store) appendList(ctx context.Context, key string, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, len(rows))
	for i, r := range rows {
		b, _ := json.Marshal(r)
		args[i] = b
	}
	if err := s.rdb.RPush(ctx, key, args...).Err(); err != nil {
		return fmt.Errorf("provisioning: writing report rows: %w", err)
	}
	return nil
}

// Rows reads a run's report rows.
func (s *Store) Rows(ctx context.Context, org, run string) ([]Row, error) {
	return s.readList(ctx, kRows(org, run))
}

// RowsPage reads limit report rows from offset, and how many there are.
func (s *Store) RowsPage(ctx context.Context, org, run string, offset, limit int) ([]Row, int, error) {
	n, err := s.rdb.LLen(ctx, kRows(org, run)).Result()
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.readRange(ctx, kRows(org, run), int64(offset), int64(offset+limit-1))
	return rows, int(n), err
}

func (s *Store) readList(ctx context.Context, key string) ([]Row, error) {
	return s.readRange(ctx, key, 0, -1)
}

func (s *Store) readRange(ctx context.Context, key string, from, to int64) ([]Row, error) {
	raw, err := s.rdb.LRange(ctx, key, from, to).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Row, 0, len(raw))
	for _, v := range raw {
		var r Row
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("provisioning: report row is unreadable: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ResetHeld replaces a run's held deactivations.
func (s *Store) ResetHeld(ctx context.Context, org, run string, rows []Row) error {
	if err := s.rdb.Del(ctx, kHeld(org, run)).Err(); err != nil {
		return err
	}
	return s.appendList(ctx, kHeld(org, run), rows)
}

// Held reads a run's held deactivations.
func (s *Store) Held(ctx context.Context, org, run string) ([]Row, error) {
	return s.readList(ctx, kHeld(org, run))
}

// MarkSeen records Slack users a run has provisioned, for a resumed run.
func (s *Store) MarkSeen(ctx context.Context, org, run string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.rdb.SAdd(ctx, kSeen(org, run), toAny(ids)...).Err()
}

// Seen reads the Slack users a run has provisioned so far.
func (s *Store) Seen(ctx context.Context, org, run string) (map[string]bool, error) {
	out := map[string]bool{}
	err := store.ScanSet(ctx, s.rdb, kSeen(org, run), func(id string) error {
		out[id] = true
		return nil
	})
	return out, err
}

// ClaimSlot records that the schedule slot of org was handed out; false when
// another replica did it first.
func (s *Store) ClaimSlot(ctx context.Context, org string, slot time.Time) (bool, error) {
	return s.rdb.SetNX(ctx, kScheduled(org, strconv.FormatInt(slot.Unix(), 10)), "1", 8*24*time.Hour).Result()
}
