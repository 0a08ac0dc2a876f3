package disconnect

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
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Record is the worker's state of one request, kept in Redis at
// ob:{E…}:disconnect:request:<request_id>.
type Record struct {
	RequestID       string                 `json:"request_id"`
	EnterpriseID    string                 `json:"enterprise_id"`
	TargetTeam      string                 `json:"target_team"`
	Reason          string                 `json:"reason"`
	RequestedBy     string                 `json:"requested_by"`
	NotBefore       *time.Time             `json:"not_before,omitempty"`
	DryRun          bool                   `json:"dry_run,omitempty"`
	State           events.DisconnectState `json:"state"`
	Error           string                 `json:"error,omitempty"`
	Message         string                 `json:"message,omitempty"`
	JoinedRequestID string                 `json:"joined_request_id,omitempty"`
	// Attempts counts calls of team.externalTeams.disconnect; Failures the
	// retryable ones that failed, Unknown the unclassified ones.
	Attempts int `json:"attempts"`
	Failures int `json:"failures,omitempty"`
	Unknown  int `json:"unknown,omitempty"`
	// MaybeActed is the answer of the last call when Slack may have acted
	// despite it (a MaybeActed error, a 200 that is not JSON, no answer after
	// the request was sent): the call stays "in flight" until
	// team.externalTeams.list tells.
	MaybeActed string `json:"maybe_acted,omitempty"`
	// Checks counts confirmation checks with team.externalTeams.list.
	Checks        int       `json:"checks,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	CallStartedAt time.Time `json:"call_started_at,omitzero"`
	SubmittedAt   time.Time `json:"submitted_at,omitzero"`
	// Published is the last state whose result was stored on the results subject.
	Published events.DisconnectState `json:"published,omitempty"`
}

// result is the record as a result message.
func (r Record) result() events.DisconnectResult {
	return events.DisconnectResult{
		SchemaVersion: events.SchemaVersion, RequestID: r.RequestID, EnterpriseID: r.EnterpriseID,
		TargetTeam: r.TargetTeam, State: r.State, Error: r.Error, Message: r.Message,
		JoinedRequestID: r.JoinedRequestID, DryRun: r.DryRun, Attempts: r.Attempts,
		RequestedBy: r.RequestedBy, At: r.UpdatedAt,
	}
}

// AuditEntry is one line of the append-only audit trail.
type AuditEntry struct {
	Time         time.Time `json:"time"`
	EnterpriseID string    `json:"enterprise_id"`
	RequestID    string    `json:"request_id,omitempty"`
	TargetTeam   string    `json:"target_team,omitempty"`
	// Event is received, accepted, rejected, joined, slack_call, submitted,
	// confirm_check, retry, completed, failed, unconfirmed or policy_run.
	Event       string `json:"event"`
	State       string `json:"state,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
	Message     string `json:"message,omitempty"`
	// SlackMethod, SlackStatus and SlackResponse are the raw Slack answer of
	// a call (the body as Slack sent it).
	SlackMethod   string          `json:"slack_method,omitempty"`
	SlackStatus   int             `json:"slack_status,omitempty"`
	SlackResponse json.RawMessage `json:"slack_response,omitempty"`
	Worker        string          `json:"worker,omitempty"`
}

// Store keeps requests, the audit trail, list snapshots and policies in Redis.
// Every key of an enterprise carries it as the hash tag; the few global
// indexes (enterprises, request id → enterprise) live under ob:{_}.
type Store struct {
	rdb       redis.UniversalClient
	ttl       time.Duration
	retention time.Duration
	now       func() time.Time
}

// NewStore returns a Store over rdb; records expire recordTTL after their
// last change (0: 90 days), audit entries auditRetention after they were
// written (0: [DefaultAuditRetention]).
func NewStore(rdb redis.UniversalClient, recordTTL, auditRetention time.Duration) *Store {
	if recordTTL <= 0 {
		recordTTL = 90 * 24 * time.Hour
	}
	if auditRetention <= 0 {
		auditRetention = DefaultAuditRetention
	}
	return &Store{rdb: rdb, ttl: recordTTL, retention: auditRetention, now: time.Now}
}

// auditMinID is the oldest audit stream id kept: entries written more than
// the retention ago fall below it.
func (s *Store) auditMinID() string {
	return strconv.FormatInt(s.now().Add(-s.retention).UnixMilli(), 10)
}

func recordKey(e, id string) string     { return store.Key(e, "disconnect", "request", id) }
func indexKey(e string) string          { return store.Key(e, "disconnect", "requests") }
func activeKey(e, target string) string { return store.Key(e, "disconnect", "active", target) }
func joinedKey(e, id string) string     { return store.Key(e, "disconnect", "joined", id) }
func callKey(e, id string) string       { return store.Key(e, "disconnect", "call", id) }
func lockKey(e, id string) string       { return store.Key(e, "disconnect", "lock", id) }
func auditKey(e string) string          { return store.Key(e, "disconnect", "audit") }
func snapshotKey(e string) string       { return store.Key(e, "disconnect", "snapshot") }
func policiesKey(e string) string       { return store.Key(e, "disconnect", "policies") }

// idKey maps a request id to its enterprise, for lookups by id alone; it
// expires with the record.
func idKey(id string) string { return store.Key(store.GlobalTenant, "disconnect", "id", id) }

// indexSlack is how long past the record TTL an index entry is kept: the
// index is scored by creation, records expire RecordTTL after their last
// change, and a request changes for at most its not_before wait plus its
// confirmation (days), well within it.
const indexSlack = 30 * 24 * time.Hour

var (
	enterprisesKey = store.Key(store.GlobalTenant, "disconnect", "enterprises")
	// legacyIDsKey is the old global id → enterprise hash (one field per
	// request, forever). Nothing writes it any more; Find still reads it for
	// records saved before the per-request keys.
	legacyIDsKey         = store.Key(store.GlobalTenant, "disconnect", "ids")
	policyEnterprisesKey = store.Key(store.GlobalTenant, "disconnect", "policy-enterprises")
	schedulerLockKey     = store.Key(store.GlobalTenant, "disconnect", "scheduler")
)

// saveScript writes a request's record, appends audit entries to its
// enterprise's trail and, when asked, deletes its call record — all or
// nothing: every key is checked before anything is written, so an entry
// that cannot be appended (the trail is not a stream, an ACL forbids XADD)
// leaves the record as it was, and the step is retried.
//
// KEYS: record, index, active, audit, call. ARGV: json, id, ttl ms, score,
// final (1/0), oldest score kept in the index, index ttl ms, forget call
// (1/0), oldest audit id kept, then the audit entries.
var saveScript = redis.NewScript(`
local function check(key, want)
	local t = redis.call('TYPE', key).ok
	if t ~= 'none' and t ~= want then
		return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. want)
	end
end
local bad = check(KEYS[4], 'stream') or check(KEYS[2], 'zset')
if bad then return bad end
for i = 10, #ARGV do
	redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[9], '*', 'e', ARGV[i])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if ARGV[5] == '1' and redis.call('GET', KEYS[3]) == ARGV[2] then
	redis.call('DEL', KEYS[3])
end
if ARGV[8] == '1' then
	redis.call('DEL', KEYS[5])
end
return 1`)

// KEYS: id key. ARGV: enterprise, ttl ms. An id another enterprise's live
// request holds stays theirs.
var idScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
	return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// Save writes rec and appends audit to its enterprise's trail in one step:
// both or neither. A final record also frees its target for new requests.
func (s *Store) Save(ctx context.Context, rec Record, audit ...AuditEntry) error {
	return s.save(ctx, rec, false, audit)
}

// saveForgetting is [Store.Save] that also deletes the request's call record
// in the same step (a call that definitely failed may be made again).
func (s *Store) saveForgetting(ctx context.Context, rec Record, audit ...AuditEntry) error {
	return s.save(ctx, rec, true, audit)
}

func (s *Store) save(ctx context.Context, rec Record, forget bool, audit []AuditEntry) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	final, forgetArg := "0", "0"
	if rec.State.Final() {
		final = "1"
	}
	if forget {
		forgetArg = "1"
	}
	keys := []string{recordKey(rec.EnterpriseID, rec.RequestID), indexKey(rec.EnterpriseID), activeKey(rec.EnterpriseID, rec.TargetTeam),
		auditKey(rec.EnterpriseID), callKey(rec.EnterpriseID, rec.RequestID)}
	oldest := s.now().Add(-s.ttl - indexSlack).UnixMilli()
	args := []any{b, rec.RequestID, s.ttl.Milliseconds(), rec.CreatedAt.UnixMilli(), final,
		oldest, (s.ttl + indexSlack).Milliseconds(), forgetArg, s.auditMinID()}
	for _, a := range audit {
		e, err := json.Marshal(a)
		if err != nil {
			return err
		}
		args = append(args, e)
	}
	if err := saveScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		if len(audit) > 0 {
			return fmt.Errorf("disconnect: saving request %s with its audit entries: %w", rec.RequestID, err)
		}
		return fmt.Errorf("disconnect: saving request %s: %w", rec.RequestID, err)
	}
	if err := idScript.Run(ctx, s.rdb, []string{idKey(rec.RequestID)}, rec.EnterpriseID, s.ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("disconnect: indexing request %s: %w", rec.RequestID, err)
	}
	if err := s.addEnterprise(ctx, rec.EnterpriseID); err != nil {
		return fmt.Errorf("disconnect: indexing request %s: %w", rec.RequestID, err)
	}
	return nil
}

// addEnterprise records e in the set of enterprises with requests or audit
// trails; only valid enterprise ids go in.
func (s *Store) addEnterprise(ctx context.Context, e string) error {
	if !events.ValidEnterpriseID(e) {
		return nil
	}
	return s.rdb.SAdd(ctx, enterprisesKey, e).Err()
}

// Get reads a request of enterprise e; found is false when there is none.
func (s *Store) Get(ctx context.Context, e, id string) (rec Record, found bool, err error) {
	b, err := s.rdb.Get(ctx, recordKey(e, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("disconnect: reading request %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, false, fmt.Errorf("disconnect: request %s is corrupt: %w", id, err)
	}
	return rec, true, nil
}

// Find reads a request by id alone, or returns [ErrNotFound].
func (s *Store) Find(ctx context.Context, id string) (Record, error) {
	e, err := s.rdb.Get(ctx, idKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		e, err = s.rdb.HGet(ctx, legacyIDsKey, id).Result()
	}
	if errors.Is(err, redis.Nil) {
		return Record{}, fmt.Errorf("%w: request %s", ErrNotFound, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("disconnect: finding request %s: %w", id, err)
	}
	rec, found, err := s.Get(ctx, e, id)
	if err == nil && !found {
		err = fmt.Errorf("%w: request %s (expired)", ErrNotFound, id)
	}
	return rec, err
}

// ListFilter selects requests for [Store.List].
type ListFilter struct {
	EnterpriseID string                 // empty: all enterprises
	State        events.DisconnectState // empty: any
	Limit        int                    // newest first; 0: 100
}

// List returns requests, newest first.
func (s *Store) List(ctx context.Context, f ListFilter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	ents := []string{f.EnterpriseID}
	if f.EnterpriseID == "" {
		var err error
		if ents, err = s.Enterprises(ctx); err != nil {
			return nil, err
		}
	}
	var out []Record
	for _, e := range ents {
		recs, err := s.listOf(ctx, e, f)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	slices.SortStableFunc(out, func(a, b Record) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// listOf returns up to f.Limit of e's newest requests matching f, reading
// the index a page of f.Limit ids at a time.
func (s *Store) listOf(ctx context.Context, e string, f ListFilter) ([]Record, error) {
	var out []Record
	for start := int64(0); len(out) < f.Limit; start += int64(f.Limit) {
		ids, err := s.rdb.ZRevRange(ctx, indexKey(e), start, start+int64(f.Limit)-1).Result()
		if err != nil {
			return nil, fmt.Errorf("disconnect: listing requests of %s: %w", e, err)
		}
		for _, id := range ids {
			rec, found, err := s.Get(ctx, e, id)
			if err != nil {
				return nil, err
			}
			if !found || (f.State != "" && rec.State != f.State) {
				continue
			}
			if out = append(out, rec); len(out) == f.Limit {
				break
			}
		}
		if len(ids) < f.Limit {
			break
		}
	}
	return out, nil
}

// Enterprises lists every enterprise with requests.
func (s *Store) Enterprises(ctx context.Context) ([]string, error) {
	ents, err := s.rdb.SMembers(ctx, enterprisesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("disconnect: listing enterprises: %w", err)
	}
	slices.Sort(ents)
	return ents, nil
}

// KEYS: active. ARGV: id, ttl. Returns the active request id (id if claimed).
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	return ARGV[1]
end
return cur`)

// KEYS: active. ARGV: old, new, ttl.
var replaceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	return 1
end
return 0`)

// ClaimActive makes id the active request for target unless another one is;
// it returns the active request's id.
func (s *Store) ClaimActive(ctx context.Context, e, target, id string) (string, error) {
	cur, err := claimScript.Run(ctx, s.rdb, []string{activeKey(e, target)}, id, s.ttl.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("disconnect: claiming %s/%s: %w", e, target, err)
	}
	return cur, nil
}

// ReplaceActive hands target from a stale active request (final, or gone) to id.
func (s *Store) ReplaceActive(ctx context.Context, e, target, old, id string) (bool, error) {
	n, err := replaceScript.Run(ctx, s.rdb, []string{activeKey(e, target)}, old, id, s.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("disconnect: replacing active %s/%s: %w", e, target, err)
	}
	return n == 1, nil
}

// Join records that id shares active's outcome.
func (s *Store) Join(ctx context.Context, e, active, id string) error {
	pipe := s.rdb.TxPipeline()
	pipe.SAdd(ctx, joinedKey(e, active), id)
	pipe.PExpire(ctx, joinedKey(e, active), s.ttl)
	_, err := pipe.Exec(ctx)
	return err
}

// Joiners lists the requests that joined active.
func (s *Store) Joiners(ctx context.Context, e, active string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, joinedKey(e, active)).Result()
	slices.Sort(ids)
	return ids, err
}

// callDoneScript appends the audit entries of a call that Slack accepted
// with its "done" record ([store.ApplyOnce] records it): a redelivery that
// finds the call done also finds its entry in the trail. KEYS: audit.
// ARGV: oldest audit id kept, then the entries.
var callDoneScript = store.NewApplyScript(`
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'none' and t ~= 'stream' then
	return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. t .. ', not a stream')
end
for i = 2, #ARGV do
	redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'e', ARGV[i])
end
return 1`)

// recordCallDone records the call of request id of e done for ttl and appends
// audit to the trail, in one step.
func (s *Store) recordCallDone(ctx context.Context, e, id string, ttl time.Duration, audit ...AuditEntry) error {
	args := []any{s.auditMinID()}
	for _, a := range audit {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		args = append(args, b)
	}
	if _, _, err := store.ApplyOnce(ctx, s.rdb, callDoneScript, store.Once{ProcessedKey: callKey(e, id), TTL: ttl},
		[]string{auditKey(e)}, args...); err != nil {
		return fmt.Errorf("disconnect: recording the call of request %s done with its audit entry: %w", id, err)
	}
	return nil
}

// Append adds an entry to the enterprise's audit trail (a Redis stream, only
// ever appended to) and trims entries older than the retention from it.
func (s *Store) Append(ctx context.Context, a AuditEntry) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: auditKey(a.EnterpriseID), MinID: s.auditMinID(), Approx: true, Values: []any{"e", b}})
	if events.ValidEnterpriseID(a.EnterpriseID) {
		pipe.SAdd(ctx, enterprisesKey, a.EnterpriseID)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("disconnect: appending to the audit trail of %s: %w", a.EnterpriseID, err)
	}
	return nil
}

// TrimAudit removes entries older than the retention from every
// enterprise's audit trail, for trails nothing was written to lately. It
// returns how many entries went.
func (s *Store) TrimAudit(ctx context.Context) (int64, error) {
	ents, err := s.Enterprises(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	minID := s.auditMinID()
	for _, e := range ents {
		k, err := s.rdb.XTrimMinIDApprox(ctx, auditKey(e), minID, 0).Result()
		if err != nil {
			return n, fmt.Errorf("disconnect: trimming the audit trail of %s: %w", e, err)
		}
		n += k
	}
	return n, nil
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Since        time.Time
	EnterpriseID string // empty: all
	RequestID    string // empty: all
}

// Audit returns audit entries in time order.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	ents := []string{f.EnterpriseID}
	if f.EnterpriseID == "" {
		var err error
		if ents, err = s.Enterprises(ctx); err != nil {
			return nil, err
		}
	}
	// Approximate trimming leaves some entries past the retention; they are
	// not returned either.
	start := s.auditMinID()
	if since := f.Since.UnixMilli(); !f.Since.IsZero() && since > s.now().Add(-s.retention).UnixMilli() {
		start = strconv.FormatInt(since, 10)
	}
	var out []AuditEntry
	for _, e := range ents {
		msgs, err := s.rdb.XRange(ctx, auditKey(e), start, "+").Result()
		if err != nil {
			return nil, fmt.Errorf("disconnect: reading the audit trail of %s: %w", e, err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["e"].(string)
			var a AuditEntry
			if err := json.Unmarshal([]byte(raw), &a); err != nil {
				continue
			}
			if f.RequestID != "" && a.RequestID != f.RequestID {
				continue
			}
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b AuditEntry) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// snapshot is the last team.externalTeams.list of an enterprise.
type snapshot struct {
	FetchedAt time.Time               `json:"fetched_at"`
	Teams     []slackapi.ExternalTeam `json:"teams"`
}

func (s *Store) snapshot(ctx context.Context, e string) (snapshot, bool, error) {
	b, err := s.rdb.Get(ctx, snapshotKey(e)).Bytes()
	if errors.Is(err, redis.Nil) {
		return snapshot{}, false, nil
	}
	if err != nil {
		return snapshot{}, false, err
	}
	var sn snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return snapshot{}, false, nil
	}
	return sn, true, nil
}

func (s *Store) saveSnapshot(ctx context.Context, e string, sn snapshot) error {
	b, err := json.Marshal(sn)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, snapshotKey(e), b, time.Hour).Err()
}

// scanState is how far a paged team.externalTeams.list that spans
// deliveries got: the cursor of the next page; the target was in none of
// the pages before it.
type scanState struct {
	Cursor    string    `json:"cursor"`
	Pages     int       `json:"pages"`
	StartedAt time.Time `json:"started_at"`
}

// scanTTL bounds how long an unfinished scan is resumed; an older one
// starts again (Slack's cursors do not last forever either).
const scanTTL = time.Hour

func scanKey(e, holder string) string { return store.Key(e, "disconnect", "scan", holder) }

// scan returns holder's unfinished scan of e's external teams; resumed is
// false (and the state new) when there is none.
func (s *Store) scan(ctx context.Context, e, holder string) (sc scanState, resumed bool, err error) {
	b, err := s.rdb.Get(ctx, scanKey(e, holder)).Bytes()
	if errors.Is(err, redis.Nil) {
		return scanState{StartedAt: s.now().UTC()}, false, nil
	}
	if err != nil {
		return scanState{}, false, fmt.Errorf("disconnect: reading list progress of %s: %w", holder, err)
	}
	if err := json.Unmarshal(b, &sc); err != nil || sc.Cursor == "" {
		return scanState{StartedAt: s.now().UTC()}, false, nil
	}
	return sc, true, nil
}

func (s *Store) saveScan(ctx context.Context, e, holder string, sc scanState) error {
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, scanKey(e, holder), b, scanTTL).Err(); err != nil {
		return fmt.Errorf("disconnect: saving list progress of %s: %w", holder, err)
	}
	return nil
}

func (s *Store) deleteScan(ctx context.Context, e, holder string) error {
	return s.rdb.Del(ctx, scanKey(e, holder)).Err()
}
