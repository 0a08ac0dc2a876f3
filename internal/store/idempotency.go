package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is what an idempotency record says about one unit of work.
type State int

const (
	// StateNone: no record; the work has not been started (or its record expired).
	StateNone State = iota
	// StateInFlight: a worker recorded that it is about to cause an external effect
	// and has not yet recorded it done. Another worker seeing this waits and retries
	// later instead of repeating the effect.
	StateInFlight
	// StateDone: the work's effect happened; skip it.
	StateDone
)

func (s State) String() string {
	switch s {
	case StateNone:
		return "none"
	case StateInFlight:
		return "in-flight"
	case StateDone:
		return "done"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Values stored in idempotency records.
const (
	valueInFlight = "in-flight"
	valueDone     = "done"
)

// Idempotency keeps per-key records of work started and finished, so a handler
// that runs again (a redelivery, a replay) can tell whether its effect already
// happened. Keys come from [Key] with the tenant, so they share its slot.
//
// Two patterns, by where the effect lives:
//   - Effects inside Redis: one Lua script checks the record and the lock token,
//     applies the writes and records done, atomically: [ApplyOnce].
//   - External effects (an HTTP call): [Idempotency.Begin] records "in flight"
//     before the call, [Idempotency.Done] after it. A second worker that finds
//     the record in flight waits and retries (the bus NakWithDelays it); if the
//     first worker died, the record expires after its ttl and the work is retried,
//     so the external call itself should tolerate a repeat where it can.
type Idempotency struct {
	rdb redis.Cmdable
}

// NewIdempotency returns an Idempotency over rdb.
func NewIdempotency(rdb redis.Cmdable) *Idempotency { return &Idempotency{rdb: rdb} }

// Check reports the state of key.
func (i *Idempotency) Check(ctx context.Context, key string) (State, error) {
	v, err := i.rdb.Get(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return StateNone, nil
	case err != nil:
		return StateNone, fmt.Errorf("store: checking %s: %w", key, err)
	case v == valueDone:
		return StateDone, nil
	case v == valueInFlight:
		return StateInFlight, nil
	}
	return StateNone, fmt.Errorf("store: %s holds %q, which is not an idempotency record", key, v)
}

// Begin records key as in flight for ttl if it has no record, and reports
// whether it did. False means another worker began (or finished) it: call
// [Idempotency.Check] to tell which.
func (i *Idempotency) Begin(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, ErrInvalidTTL
	}
	ok, err := i.rdb.SetNX(ctx, key, valueInFlight, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("store: beginning %s: %w", key, err)
	}
	return ok, nil
}

// Done records key as done for ttl, whatever its record was. Choose ttl at least
// as long as a copy of the message may come back: the stream's duplicate window
// for redeliveries, its max age if replays must not repeat the effect.
func (i *Idempotency) Done(ctx context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 {
		return ErrInvalidTTL
	}
	if err := i.rdb.Set(ctx, key, valueDone, ttl).Err(); err != nil {
		return fmt.Errorf("store: recording %s done: %w", key, err)
	}
	return nil
}

// Forget deletes key's record, so the work may run again (after a failed
// attempt that began it, for instance).
func (i *Idempotency) Forget(ctx context.Context, key string) error {
	if err := i.rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("store: forgetting %s: %w", key, err)
	}
	return nil
}

// ApplyScript is a Lua script body wrapped so that [ApplyOnce] can run it at most
// once per processed key and only under a held lock. Build it once (package
// level) with [NewApplyScript]; it is loaded by SHA like redis.Script.
type ApplyScript struct {
	script *redis.Script
}

// NewApplyScript wraps body, a Lua chunk that applies an effect with
// redis.call. Inside body, KEYS and ARGV are the keys and args given to
// [ApplyOnce] (the bookkeeping keys are hidden); whatever body returns is handed
// back as ApplyOnce's value. Body may stop with error(...) or return
// redis.error_reply(...) to refuse: nothing is recorded then, but writes it made
// before refusing stay (Redis does not roll back), so check first, write last.
func NewApplyScript(body string) *ApplyScript {
	return &ApplyScript{script: redis.NewScript(`
local __processed, __lock = KEYS[1], KEYS[2]
local __token, __ttl = ARGV[1], ARGV[2]
if redis.call('GET', __processed) == '` + valueDone + `' then
	return {0}
end
if __token ~= '' and redis.call('GET', __lock) ~= __token then
	return {-1}
end
local KEYS = {unpack(KEYS, 3)}
local ARGV = {unpack(ARGV, 3)}
local __result = (function()
` + body + `
end)()
if type(__result) == 'table' and __result.err then
	return __result
end
redis.call('SET', __processed, '` + valueDone + `', 'PX', __ttl)
return {1, __result}
`)}
}

// Once names the bookkeeping of one [ApplyOnce] call.
type Once struct {
	// ProcessedKey records that the effect was applied (an [Idempotency] record
	// in state done). Build it with [Key] for the same tenant as the other keys.
	ProcessedKey string
	// TTL is how long ProcessedKey is kept; see [Idempotency.Done].
	TTL time.Duration
	// LockKey and Token fence the write: the script applies only if LockKey still
	// holds Token ([Lock.Key], [Lock.Token]). Leave both empty for no fencing.
	LockKey string
	Token   string
}

// ApplyOnce runs script atomically in Redis: if once.ProcessedKey says done it
// returns applied=false and changes nothing; if the lock no longer holds the
// token it returns [ErrLockNotHeld] and changes nothing (a stale owner is fenced
// out); otherwise it runs the body with keys and args, records the processed key
// and returns applied=true with the body's return value. All keys must hash to
// one slot: build them with [Key] for one tenant.
func ApplyOnce(ctx context.Context, rdb redis.Scripter, script *ApplyScript, once Once, keys []string, args ...any) (applied bool, value any, err error) {
	if once.TTL <= 0 {
		return false, nil, ErrInvalidTTL
	}
	if once.ProcessedKey == "" {
		return false, nil, errors.New("store: ApplyOnce needs a processed key")
	}
	if (once.LockKey == "") != (once.Token == "") {
		return false, nil, errors.New("store: ApplyOnce needs both a lock key and a token, or neither")
	}
	lockKey := once.LockKey
	if lockKey == "" {
		lockKey = once.ProcessedKey // unused, but keeps every key in one slot
	}
	allKeys := make([]string, 0, len(keys)+2)
	allKeys = append(allKeys, once.ProcessedKey, lockKey)
	allKeys = append(allKeys, keys...)
	allArgs := make([]any, 0, len(args)+2)
	allArgs = append(allArgs, once.Token, once.TTL.Milliseconds())
	allArgs = append(allArgs, args...)

	res, err := script.script.Run(ctx, rdb, allKeys, allArgs...).Slice()
	if err != nil {
		return false, nil, fmt.Errorf("store: applying once (%s): %w", once.ProcessedKey, err)
	}
	if len(res) == 0 {
		return false, nil, fmt.Errorf("store: applying once (%s): empty script reply", once.ProcessedKey)
	}
	status, _ := res[0].(int64)
	switch status {
	case 1:
		if len(res) > 1 {
			value = res[1]
		}
		return true, value, nil
	case 0:
		return false, nil, nil
	case -1:
		return false, nil, ErrLockNotHeld
	}
	return false, nil, fmt.Errorf("store: applying once (%s): unexpected script reply %v", once.ProcessedKey, res)
}
