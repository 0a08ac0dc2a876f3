package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKey(t *testing.T) {
	tests := []struct {
		name   string
		tenant string
		parts  []string
		want   string
	}{
		{name: "team", tenant: "T123", parts: []string{"binding"}, want: "ob:{T123}:binding"},
		{name: "several parts", tenant: "E9", parts: []string{"mapping", "U1", "org"}, want: "ob:{E9}:mapping:U1:org"},
		{name: "no parts", tenant: "T1", want: "ob:{T1}"},
		{name: "no tenant", tenant: "", parts: []string{"x"}, want: "ob:{_}:x"},
		{name: "braces cannot break the hash tag", tenant: "T{1}", parts: []string{"x"}, want: "ob:{T_1_}:x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(tt.tenant, tt.parts...); got != tt.want {
				t.Fatalf("Key(%q, %q) = %q, want %q", tt.tenant, tt.parts, got, tt.want)
			}
		})
	}
}

// TestKeySlot checks that keys of one tenant land in one Redis Cluster slot,
// which is what lets a Lua script touch several of them.
func TestKeySlot(t *testing.T) {
	a, b := Key("T42", "binding"), Key("T42", "mapping", "U1")
	if redisSlot(a) != redisSlot(b) {
		t.Fatalf("%s and %s hash to different slots", a, b)
	}
}

// redisSlot is the hash-tag part of Redis Cluster's key slot rule.
func redisSlot(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						return key[i+1 : j]
					}
					return key
				}
			}
			return key
		}
	}
	return key
}

func TestLocker(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		locker := NewLocker(r.Client)

		t.Run("two obtainers, one wins", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "contention")
			first, err1 := locker.Obtain(ctx, key, time.Minute)
			second, err2 := locker.Obtain(ctx, key, time.Minute)
			if err1 != nil {
				t.Fatalf("first Obtain: %v", err1)
			}
			if !errors.Is(err2, ErrNotObtained) || second != nil {
				t.Fatalf("second Obtain = %v, %v; want ErrNotObtained", second, err2)
			}
			if err := first.Release(ctx); err != nil {
				t.Fatalf("Release: %v", err)
			}
			third, err := locker.Obtain(ctx, key, time.Minute)
			if err != nil {
				t.Fatalf("Obtain after release: %v", err)
			}
			if third.Token() == first.Token() {
				t.Fatalf("tokens repeat: %s", third.Token())
			}
		})

		t.Run("release with a wrong token fails and keeps the lock", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "wrong-token")
			held, err := locker.Obtain(ctx, key, time.Minute)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			impostor := &Lock{rdb: r.Client, key: key, token: "not-the-token"}
			if err := impostor.Release(ctx); !errors.Is(err, ErrLockNotHeld) {
				t.Fatalf("impostor Release = %v, want ErrLockNotHeld", err)
			}
			if err := impostor.Refresh(ctx, time.Minute); !errors.Is(err, ErrLockNotHeld) {
				t.Fatalf("impostor Refresh = %v, want ErrLockNotHeld", err)
			}
			if v := r.Client.Get(ctx, key).Val(); v != held.Token() {
				t.Fatalf("lock holds %q after impostor release, want %q", v, held.Token())
			}
			if err := held.Release(ctx); err != nil {
				t.Fatalf("owner Release: %v", err)
			}
			if err := held.Release(ctx); !errors.Is(err, ErrLockNotHeld) {
				t.Fatalf("second Release = %v, want ErrLockNotHeld", err)
			}
		})

		t.Run("refresh extends the expiry", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "refresh")
			l, err := locker.Obtain(ctx, key, 2*time.Second)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			if err := l.Refresh(ctx, time.Hour); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if ttl := r.Client.PTTL(ctx, key).Val(); ttl < 30*time.Minute {
				t.Fatalf("PTTL after Refresh(1h) = %s", ttl)
			}
			if err := l.Refresh(ctx, 0); !errors.Is(err, ErrInvalidTTL) {
				t.Fatalf("Refresh(0) = %v, want ErrInvalidTTL", err)
			}
		})

		t.Run("an expired lock cannot be refreshed or released", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "expired")
			l, err := locker.Obtain(ctx, key, 30*time.Millisecond)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			testenv.Eventually(t, 5*time.Second, func() bool { return r.Client.Exists(ctx, key).Val() == 0 }, "lock %s never expired", key)
			next, err := locker.Obtain(ctx, key, time.Minute)
			if err != nil {
				t.Fatalf("Obtain after expiry: %v", err)
			}
			if err := l.Refresh(ctx, time.Minute); !errors.Is(err, ErrLockNotHeld) {
				t.Fatalf("stale Refresh = %v, want ErrLockNotHeld", err)
			}
			if err := l.Release(ctx); !errors.Is(err, ErrLockNotHeld) {
				t.Fatalf("stale Release = %v, want ErrLockNotHeld", err)
			}
			if v := r.Client.Get(ctx, key).Val(); v != next.Token() {
				t.Fatalf("stale owner disturbed the new lock: holds %q", v)
			}
		})

		t.Run("ObtainWait gets the lock once it is released", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "wait")
			held, err := locker.Obtain(ctx, key, time.Minute)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			got := make(chan error, 1)
			go func() {
				l, err := locker.ObtainWait(ctx, key, time.Minute)
				if err == nil && l.Token() == held.Token() {
					err = errors.New("waiter got the holder's token")
				}
				got <- err
			}()
			if err := held.Release(ctx); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if err := <-got; err != nil {
				t.Fatalf("ObtainWait: %v", err)
			}
		})

		t.Run("ObtainWait gives up when its context ends", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "wait-timeout")
			if _, err := locker.Obtain(ctx, key, time.Minute); err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err := locker.ObtainWait(wctx, key, time.Minute)
			if !errors.Is(err, ErrNotObtained) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("ObtainWait = %v, want ErrNotObtained and DeadlineExceeded", err)
			}
		})

		t.Run("KeepAlive holds the lock past its ttl", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "keepalive")
			ttl := 150 * time.Millisecond
			l, err := locker.Obtain(ctx, key, ttl)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			err = l.KeepAlive(ctx, ttl, func(ctx context.Context) error {
				work := time.NewTimer(4 * ttl) // the work outlasts the ttl several times
				defer work.Stop()
				select {
				case <-work.C:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				if v := r.Client.Get(ctx, key).Val(); v != l.Token() {
					return errors.New("lock lost while kept alive")
				}
				return nil
			})
			if err != nil {
				t.Fatalf("KeepAlive: %v", err)
			}
		})

		t.Run("KeepAlive cancels the work when the lock is taken away", func(t *testing.T) {
			ctx := testCtx(t)
			key := Key("T1", "lock", "keepalive-lost")
			ttl := 150 * time.Millisecond
			l, err := locker.Obtain(ctx, key, ttl)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			err = l.KeepAlive(ctx, ttl, func(fctx context.Context) error {
				r.Client.Set(ctx, key, "someone-else", time.Minute)
				<-fctx.Done()
				return nil
			})
			if !errors.Is(err, ErrLockNotHeld) {
				t.Fatalf("KeepAlive = %v, want ErrLockNotHeld", err)
			}
		})

		t.Run("non-positive ttl is refused", func(t *testing.T) {
			if _, err := locker.Obtain(testCtx(t), Key("T1", "lock", "ttl"), 0); !errors.Is(err, ErrInvalidTTL) {
				t.Fatalf("Obtain(ttl 0) = %v, want ErrInvalidTTL", err)
			}
		})
	})
}

func TestIdempotency(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		rec := NewIdempotency(r.Client)
		ctx := testCtx(t)
		key := Key("T9", "processed", "evt-1")

		steps := []struct {
			name  string
			do    func() error
			state State
		}{
			{name: "fresh key has no record", do: func() error { return nil }, state: StateNone},
			{name: "begin records in flight", do: func() error {
				ok, err := rec.Begin(ctx, key, time.Minute)
				if err == nil && !ok {
					err = errors.New("Begin on a fresh key returned false")
				}
				return err
			}, state: StateInFlight},
			{name: "a second begin loses", do: func() error {
				ok, err := rec.Begin(ctx, key, time.Minute)
				if err == nil && ok {
					err = errors.New("second Begin returned true")
				}
				return err
			}, state: StateInFlight},
			{name: "done records done", do: func() error { return rec.Done(ctx, key, time.Minute) }, state: StateDone},
			{name: "begin after done loses", do: func() error {
				ok, err := rec.Begin(ctx, key, time.Minute)
				if err == nil && ok {
					err = errors.New("Begin after Done returned true")
				}
				return err
			}, state: StateDone},
			{name: "forget clears", do: func() error { return rec.Forget(ctx, key) }, state: StateNone},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				if err := s.do(); err != nil {
					t.Fatal(err)
				}
				got, err := rec.Check(ctx, key)
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if got != s.state {
					t.Fatalf("state = %s, want %s", got, s.state)
				}
			})
		}

		t.Run("a foreign value is reported, not guessed", func(t *testing.T) {
			other := Key("T9", "processed", "foreign")
			r.Client.Set(ctx, other, "42", time.Minute)
			if _, err := rec.Check(ctx, other); err == nil {
				t.Fatal("Check of a foreign value returned no error")
			}
		})

		t.Run("records expire", func(t *testing.T) {
			short := Key("T9", "processed", "short")
			if err := rec.Done(ctx, short, 30*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 5*time.Second, func() bool {
				s, err := rec.Check(ctx, short)
				return err == nil && s == StateNone
			}, "done record never expired")
		})
	})
}

// incrScript adds ARGV[1] to KEYS[1] and returns the new value; the counter
// shows how many times the effect really happened.
var incrScript = NewApplyScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)

var refuseScript = NewApplyScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	return redis.error_reply('no such account')
end
return redis.call('INCR', KEYS[1])`)

func TestApplyOnce(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		locker := NewLocker(r.Client)
		rec := NewIdempotency(r.Client)
		ctx := testCtx(t)

		t.Run("applies once per processed key", func(t *testing.T) {
			counter := Key("T5", "counter", "once")
			lock, err := locker.Obtain(ctx, Key("T5", "lock"), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Release(ctx) //nolint:errcheck // test cleanup
			once := Once{ProcessedKey: Key("T5", "processed", "m1"), TTL: time.Minute, LockKey: lock.Key(), Token: lock.Token()}
			tries := []struct {
				name        string
				wantApplied bool
				wantValue   any
			}{
				{name: "first run applies", wantApplied: true, wantValue: int64(5)},
				{name: "second run is skipped", wantApplied: false},
				{name: "third run is skipped", wantApplied: false},
			}
			for _, tr := range tries {
				applied, value, err := ApplyOnce(ctx, r.Client, incrScript, once, []string{counter}, 5)
				if err != nil {
					t.Fatalf("%s: %v", tr.name, err)
				}
				if applied != tr.wantApplied || value != tr.wantValue {
					t.Fatalf("%s: applied=%v value=%v, want %v %v", tr.name, applied, value, tr.wantApplied, tr.wantValue)
				}
			}
			if got := r.Client.Get(ctx, counter).Val(); got != "5" {
				t.Fatalf("counter = %s after three runs, want 5", got)
			}
			if s, _ := rec.Check(ctx, once.ProcessedKey); s != StateDone {
				t.Fatalf("processed key state = %s, want done", s)
			}
		})

		t.Run("a stale lock token is fenced out", func(t *testing.T) {
			counter := Key("T6", "counter", "fenced")
			lockKey := Key("T6", "lock")
			stale, err := locker.Obtain(ctx, lockKey, 30*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			// The first owner pauses past its ttl; a second owner takes the lock.
			testenv.Eventually(t, 5*time.Second, func() bool { return r.Client.Exists(ctx, lockKey).Val() == 0 }, "lock never expired")
			fresh, err := locker.Obtain(ctx, lockKey, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			staleOnce := Once{ProcessedKey: Key("T6", "processed", "m-stale"), TTL: time.Minute, LockKey: lockKey, Token: stale.Token()}
			applied, _, err := ApplyOnce(ctx, r.Client, incrScript, staleOnce, []string{counter}, 1)
			if !errors.Is(err, ErrLockNotHeld) || applied {
				t.Fatalf("stale ApplyOnce = %v, %v; want ErrLockNotHeld", applied, err)
			}
			if n := r.Client.Exists(ctx, counter, staleOnce.ProcessedKey).Val(); n != 0 {
				t.Fatalf("stale owner wrote %d keys", n)
			}
			freshOnce := Once{ProcessedKey: Key("T6", "processed", "m-fresh"), TTL: time.Minute, LockKey: lockKey, Token: fresh.Token()}
			applied, _, err = ApplyOnce(ctx, r.Client, incrScript, freshOnce, []string{counter}, 1)
			if err != nil || !applied {
				t.Fatalf("fresh ApplyOnce = %v, %v; want applied", applied, err)
			}
		})

		t.Run("without fencing it still applies once", func(t *testing.T) {
			counter := Key("T7", "counter", "nofence")
			once := Once{ProcessedKey: Key("T7", "processed", "m1"), TTL: time.Minute}
			for i := 0; i < 2; i++ {
				if _, _, err := ApplyOnce(ctx, r.Client, incrScript, once, []string{counter}, 2); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.Client.Get(ctx, counter).Val(); got != "2" {
				t.Fatalf("counter = %s, want 2", got)
			}
		})

		t.Run("a refusing script records nothing", func(t *testing.T) {
			account := Key("T8", "account")
			once := Once{ProcessedKey: Key("T8", "processed", "m1"), TTL: time.Minute}
			_, _, err := ApplyOnce(ctx, r.Client, refuseScript, once, []string{account})
			if err == nil {
				t.Fatal("refusing script returned no error")
			}
			if s, _ := rec.Check(ctx, once.ProcessedKey); s != StateNone {
				t.Fatalf("processed key state after refusal = %s, want none", s)
			}
			r.Client.Set(ctx, account, 0, time.Minute)
			applied, value, err := ApplyOnce(ctx, r.Client, refuseScript, once, []string{account})
			if err != nil || !applied || value != int64(1) {
				t.Fatalf("retry after fixing = %v %v %v", applied, value, err)
			}
		})

		t.Run("bad arguments are refused", func(t *testing.T) {
			tests := []struct {
				name string
				once Once
			}{
				{name: "no ttl", once: Once{ProcessedKey: "k"}},
				{name: "no processed key", once: Once{TTL: time.Minute}},
				{name: "token without lock key", once: Once{ProcessedKey: "k", TTL: time.Minute, Token: "t"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if _, _, err := ApplyOnce(ctx, r.Client, incrScript, tt.once, nil); err == nil {
						t.Fatal("no error")
					}
				})
			}
		})
	})
}

var _ redis.Scripter = (*redis.Client)(nil)
