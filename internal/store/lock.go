package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"
)

// Locker hands out per-key locks in Redis. A lock is a key holding a random
// token with an expiry: only the owner of the token may release or refresh it,
// and Lua scripts that write under the lock check the token (see [Lock.Token] and
// [ApplyOnce]), which fences out a former owner whose lock expired while it was
// paused. Use [Key] for lock keys so they share the tenant's slot.
//
// Locker follows github.com/bsm/redislock's API (Obtain, Release, Refresh,
// Token, ErrNotObtained) but deliberately is not built on it. What keeps two
// holders from both writing is not the lock but the fencing: every write made
// under a lock is a Lua script of ours that compares GET of the lock key with
// [Lock.Token] in the same script. redislock's token only guards its own
// release and refresh; it is not a fencing token (DESIGN.md), so with the
// library that check would still be ours, plus [Lock.KeepAlive] (cancel the
// work once a refresh finds the lock lost). What the library would replace is
// one SET NX PX and two compare-and-act scripts: not worth a dependency.
// Retries use backoff/v4 like the rest of the code ([Locker.ObtainWait]).
type Locker struct {
	rdb redis.Cmdable
	// replicationWait bounds [Locker.ObtainReplicated]'s wait for a replica.
	replicationWait time.Duration
}

// NewLocker returns a Locker over rdb (a *redis.Client, *redis.ClusterClient or
// *redis.Ring all work).
func NewLocker(rdb redis.Cmdable) *Locker {
	return &Locker{rdb: rdb, replicationWait: DefaultReplicationWait}
}

// WithReplicationWait returns a Locker whose [Locker.ObtainReplicated] waits
// up to d for a replica (default [DefaultReplicationWait]).
func (l *Locker) WithReplicationWait(d time.Duration) *Locker {
	c := *l
	c.replicationWait = d
	return &c
}

// Lock is one obtained lock. It is not safe to refresh and release from several
// goroutines at once without the caller's own ordering.
type Lock struct {
	rdb   redis.Cmdable
	key   string
	token string
}

var (
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)
	refreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
)

// Obtain takes the lock on key for ttl if nobody holds it, and returns
// [ErrNotObtained] at once if somebody does.
func (l *Locker) Obtain(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if ttl <= 0 {
		return nil, ErrInvalidTTL
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	ok, err := l.rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("store: obtaining lock %s: %w", key, err)
	}
	if !ok {
		return nil, ErrNotObtained
	}
	return &Lock{rdb: l.rdb, key: key, token: token}, nil
}

// ObtainReplicated is [Locker.Obtain] for a lock that guards an effect which
// must not happen twice: it returns the lock only once a Redis replica has it
// too ([Replicated]), so a failover right after cannot hand the same lock to
// another owner. When no replica acknowledges it in time, the lock is given up
// again and the error matches [ErrNotReplicated]; try later.
func (l *Locker) ObtainReplicated(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if ttl <= 0 {
		return nil, ErrInvalidTTL
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	_, err = Replicated(ctx, l.rdb, key, l.replicationWait, func(c redis.Cmdable) error {
		ok, err := c.SetNX(ctx, key, token, ttl).Result()
		if err != nil {
			return fmt.Errorf("store: obtaining lock %s: %w", key, err)
		}
		if !ok {
			return ErrNotObtained
		}
		return nil
	})
	lock := &Lock{rdb: l.rdb, key: key, token: token}
	if errors.Is(err, ErrNotReplicated) {
		_ = lock.Release(context.WithoutCancel(ctx))
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return lock, nil
}

// ObtainWait is [Locker.Obtain] that keeps trying, with jittered exponential
// backoff from 10 ms to 500 ms, until it gets the lock or ctx ends. An ended wait
// returns an error matching both [ErrNotObtained] and ctx's error.
func (l *Locker) ObtainWait(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(500*time.Millisecond),
		backoff.WithMaxElapsedTime(0),
	)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		lock, err := l.Obtain(ctx, key, ttl)
		if !errors.Is(err, ErrNotObtained) {
			return lock, err
		}
		d := b.NextBackOff()
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrNotObtained, ctx.Err())
		case <-timer.C:
		}
	}
}

// Key is the locked key.
func (k *Lock) Key() string { return k.key }

// Token is the lock's random token. Pass it to Lua scripts that must write only
// while this lock is held: they compare it with GET of [Lock.Key] (fencing).
func (k *Lock) Token() string { return k.token }

// Release gives the lock up if this owner still holds it, and returns
// [ErrLockNotHeld] otherwise (it expired, or another owner has it now).
func (k *Lock) Release(ctx context.Context) error {
	n, err := releaseScript.Run(ctx, k.rdb, []string{k.key}, k.token).Int64()
	if err != nil {
		return fmt.Errorf("store: releasing lock %s: %w", k.key, err)
	}
	if n == 0 {
		return ErrLockNotHeld
	}
	return nil
}

// Refresh sets the lock to expire ttl from now if this owner still holds it, and
// returns [ErrLockNotHeld] otherwise.
func (k *Lock) Refresh(ctx context.Context, ttl time.Duration) error {
	if ttl <= 0 {
		return ErrInvalidTTL
	}
	n, err := refreshScript.Run(ctx, k.rdb, []string{k.key}, k.token, ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("store: refreshing lock %s: %w", k.key, err)
	}
	if n == 0 {
		return ErrLockNotHeld
	}
	return nil
}

// KeepAlive runs fn while refreshing the lock to ttl every ttl/3, for work that
// may outlast one ttl. The ctx fn receives is cancelled (with cause
// [ErrLockNotHeld]) as soon as a refresh finds the lock lost, so fn can stop
// early; its writes should still be fenced with [Lock.Token]. KeepAlive returns
// when fn does, and its refresher has ended by then. It returns fn's error, or
// [ErrLockNotHeld] if fn succeeded but the lock was lost while it ran. It does
// not release the lock.
func (k *Lock) KeepAlive(ctx context.Context, ttl time.Duration, fn func(ctx context.Context) error) error {
	if ttl <= 0 {
		return ErrInvalidTTL
	}
	fnCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-fnCtx.Done():
				return
			case <-t.C:
				// A transient Redis error is retried at the next tick; the lock
				// only counts as lost when Redis says the token does not match.
				if err := k.Refresh(fnCtx, ttl); errors.Is(err, ErrLockNotHeld) {
					cancel(ErrLockNotHeld)
					return
				}
			}
		}
	}()
	err := fn(fnCtx)
	close(stop)
	<-ended
	if err == nil && errors.Is(context.Cause(fnCtx), ErrLockNotHeld) {
		return ErrLockNotHeld
	}
	return err
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: generating lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
