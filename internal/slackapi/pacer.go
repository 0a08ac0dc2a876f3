package slackapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
)

// Tier is a Slack rate-limit tier.
type Tier int

// Slack's documented tiers.
const (
	Tier1 Tier = 1 // about 1 call a minute
	Tier2 Tier = 2 // 20 a minute
	Tier3 Tier = 3 // 50 a minute
	Tier4 Tier = 4 // 100 a minute
)

// PerMinute is how many calls a minute the tier allows.
func (t Tier) PerMinute() int {
	switch t {
	case Tier1:
		return 1
	case Tier2:
		return 20
	case Tier3:
		return 50
	case Tier4:
		return 100
	}
	return 1
}

// Interval is the time between two calls at the tier's rate.
func (t Tier) Interval() time.Duration { return time.Minute / time.Duration(t.PerMinute()) }

// MethodTiers lists the tier of the methods this package implements.
var MethodTiers = map[string]Tier{
	MethodExternalTeamsList:       Tier2,
	MethodExternalTeamsDisconnect: Tier1,
}

// Pace is how calls of one method for one tenant are spaced.
type Pace struct {
	// Tenant is the workspace or enterprise the limit applies to (Slack counts
	// per app, per method, per workspace or org); it is the key's hash tag.
	Tenant string
	// Method is the Web API method.
	Method string
	// Every is the minimum real time between the end of one call and the
	// start of the next. Derive it from the tier with [PaceEvery] so the time
	// scale and a safety margin are applied.
	Every time.Duration
	// Hold is the longest one call can take (its timeout). When set, a call
	// holds the pace from its grant until [Pacer.Done] (or until Hold has
	// passed, if its caller died), and the next call is spaced from that end.
	// Zero spaces calls from their grants, which is only safe when calls reach
	// Slack much faster than Every.
	Hold time.Duration
}

func (p Pace) bucketKey() string { return store.Key(p.Tenant, "slackapi", "pace", p.Method) }

func (p Pace) holderKey(holder string) string {
	return store.Key(p.Tenant, "slackapi", "pace", p.Method, "slot", holder)
}

// PaceEvery is the real time between calls of a tier: the tier's interval
// stretched by margin (0.01 = 1 %), divided by scale (the emulator's time
// scale; 1 against real Slack), plus minGap of real time.
//
// The margin only has to cover clock drift: network and scheduling jitter is
// taken out by spacing each call from the end of the previous one (see
// [Pace.Hold] and [Pacer.Done]), since Slack saw the previous call before it
// answered, and sees the next one after it was sent.
func PaceEvery(t Tier, scale, margin float64, minGap time.Duration) time.Duration {
	if scale <= 0 {
		scale = 1
	}
	return time.Duration(float64(t.Interval())*(1+margin)/scale) + minGap
}

// Pacer spaces Web API calls per tenant and method so that every replica of
// every worker, sharing one Redis, stays within Slack's tier together. It is a
// token bucket of capacity one whose state lives in Redis and is changed only
// by Lua scripts reading Redis's own clock, so replicas need no clock agreement.
//
// Callers reserve a slot and call when the slot comes ([Pacer.Reserve]): slots
// are handed out first come, first served, one Every apart, so a queue of
// requests is served in order with a few wake-ups each instead of all of them
// polling. However slots were handed out, a call is never let through less
// than Every after the previous call ended ([Pacer.Done]; with [Pace.Hold]
// zero, after it was let through), and a 429's Retry-After pushes the next
// call back ([Pacer.Penalize]).
//
// Spacing from the end of the previous call is what makes the pacing hold at
// any time scale: Slack (or the emulator) counts a call when it arrives, which
// is some time after the pacer let it through — a goroutine not yet
// scheduled, a Redis write, a slow connection. Two calls let through Every
// apart can arrive closer than that; a call let through Every after the
// previous one was answered cannot.
type Pacer struct {
	rdb redis.Scripter
	// HolderTTL is how long an unused reservation is kept (default 7 days).
	HolderTTL time.Duration
}

// NewPacer returns a Pacer over rdb.
func NewPacer(rdb redis.Scripter) *Pacer { return &Pacer{rdb: rdb, HolderTTL: 7 * 24 * time.Hour} }

// The bucket hash holds tat (the next free slot), last (when the last call
// was let through, or ended, or a 429 says), and while a call holds the pace
// lease (when its hold runs out) and busy (its holder). Times are Redis
// milliseconds; a call is let through strictly more than every after the
// previous one ended, so rounding to milliseconds can only add time.
//
// KEYS[1] bucket, KEYS[2] the holder's reservation. ARGV[1] every (ms),
// ARGV[2] holder ttl (ms), ARGV[3] hold (ms), ARGV[4] holder.
// Returns {1, 0} when the caller may call now (and records the call), or
// {0, wait ms}.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local every, hold = tonumber(ARGV[1]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tat', 'last', 'lease')
local tat = tonumber(b[1] or '0')
local base = tonumber(b[2] or '-1e15')
local lease = tonumber(b[3] or '')
if lease then
	-- A call holds the pace: it ends at the earliest now, at the latest when its hold runs out.
	base = math.max(base, math.min(lease, now))
end
local free = base + every + 1
local slot = tonumber(redis.call('GET', KEYS[2]) or '-1')
if slot < 0 then
	slot = math.max(tat, now, free)
	redis.call('HSET', KEYS[1], 'tat', slot + every)
	redis.call('SET', KEYS[2], slot, 'PX', ARGV[2])
end
local ready = math.max(slot, free)
if ready > now then
	return {0, ready - now}
end
if hold > 0 then
	redis.call('HSET', KEYS[1], 'last', now, 'lease', now + hold, 'busy', ARGV[4])
else
	redis.call('HSET', KEYS[1], 'last', now)
	redis.call('HDEL', KEYS[1], 'lease', 'busy')
end
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 0}
`)

// KEYS[1] bucket. ARGV[1] holder, ARGV[2] ttl (ms).
var doneScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HGET', KEYS[1], 'busy') == ARGV[1] then
	redis.call('HDEL', KEYS[1], 'lease', 'busy')
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '-1e15')
redis.call('HSET', KEYS[1], 'last', math.max(last, now))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// KEYS[1] bucket. ARGV[1] every (ms), ARGV[2] retry-after (ms), ARGV[3] ttl.
var penalizeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local every, after = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '-1e15')
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
redis.call('HSET', KEYS[1], 'last', math.max(last, now + after - every), 'tat', math.max(tat, now + after))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// Reserve asks whether holder (a unique id of the piece of work, such as a
// request id) may call now. Zero means yes: the call is recorded and the
// caller must make it now. Otherwise it is how long to wait before asking
// again; the holder keeps its place in the queue meanwhile.
func (p *Pacer) Reserve(ctx context.Context, pace Pace, holder string) (time.Duration, error) {
	if pace.Every <= 0 {
		return 0, errors.New("slackapi: pace interval must be positive")
	}
	res, err := reserveScript.Run(ctx, p.rdb, []string{pace.bucketKey(), pace.holderKey(holder)},
		ceilMS(pace.Every), p.holderTTL().Milliseconds(), ceilMS(pace.Hold), holder).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("slackapi: pacing %s for %s: %w", pace.Method, pace.Tenant, err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("slackapi: pacing %s: unexpected script reply %v", pace.Method, res)
	}
	if res[0] == 1 {
		return 0, nil
	}
	return max(time.Duration(res[1])*time.Millisecond, time.Millisecond), nil
}

// Wait reserves a slot for holder and sleeps until it comes, when that is at
// most maxBlock away (in all: a holder that keeps losing its slot to others
// stops blocking after maxBlock). A longer wait returns *[WaitError] with the
// time left, and the holder keeps its slot: come back then (the bus turns it
// into a NakWithDelay through its RetryAfter method). With [Pace.Hold] set,
// call [Pacer.Done] once the call has ended.
func (p *Pacer) Wait(ctx context.Context, pace Pace, holder string, maxBlock time.Duration) error {
	deadline := time.Now().Add(maxBlock)
	for {
		wait, err := p.Reserve(ctx, pace, holder)
		if err != nil || wait == 0 {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return &WaitError{Pace: pace, After: wait}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Done records that holder's call of pace has ended (answered, failed or
// timed out): the next call is let through Every from now. Call it whatever
// the outcome, with a context that is not already cancelled.
func (p *Pacer) Done(ctx context.Context, pace Pace, holder string) error {
	err := doneScript.Run(ctx, p.rdb, []string{pace.bucketKey()}, holder, p.holderTTL().Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("slackapi: recording the end of a %s call for %s: %w", pace.Method, pace.Tenant, err)
	}
	return nil
}

// Penalize records a 429: no call of pace goes out before retryAfter (real
// time) from now.
func (p *Pacer) Penalize(ctx context.Context, pace Pace, retryAfter time.Duration) error {
	err := penalizeScript.Run(ctx, p.rdb, []string{pace.bucketKey()},
		ceilMS(pace.Every), retryAfter.Milliseconds(), p.holderTTL().Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("slackapi: recording rate limit of %s for %s: %w", pace.Method, pace.Tenant, err)
	}
	return nil
}

// ceilMS rounds d up to whole milliseconds, the scripts' unit.
func ceilMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func (p *Pacer) holderTTL() time.Duration {
	if p.HolderTTL <= 0 {
		return 7 * 24 * time.Hour
	}
	return p.HolderTTL
}

// WaitError says a paced call must wait longer than the caller wanted to block.
type WaitError struct {
	Pace  Pace
	After time.Duration
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("slackapi: %s for %s is paced; next slot in %s", e.Pace.Method, e.Pace.Tenant, e.After)
}

// Retryable reports that waiting helps.
func (e *WaitError) Retryable() bool { return true }

// RetryAfter is how long until the slot.
func (e *WaitError) RetryAfter() time.Duration { return e.After }
