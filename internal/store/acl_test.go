package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestProductionACL runs the store's operations as the orgbridge user of
// deploy/redis (start.sh, redis.conf and its ACL users), and checks that a
// client without that user's password, or a command the user has no business
// running, is refused.
func TestProductionACL(t *testing.T) {
	r := testenv.StartProductionRedis(t)
	ctx := testCtx(t)

	allowed := []struct {
		name string
		op   func(ctx context.Context, rdb *redis.Client) error
	}{
		{name: "lock: obtain, refresh, release (Lua)", op: func(ctx context.Context, rdb *redis.Client) error {
			l, err := NewLocker(rdb).Obtain(ctx, Key("T1", "lock", "acl"), time.Minute)
			if err != nil {
				return err
			}
			if err := l.Refresh(ctx, time.Minute); err != nil {
				return err
			}
			return l.Release(ctx)
		}},
		{name: "replicated writes: a fenced install save and a replicated lock (INFO replication, WAIT)", op: func(ctx context.Context, rdb *redis.Client) error {
			keys, err := ParseKeyring(GenerateKeySpec("k1"))
			if err != nil {
				return err
			}
			locker := NewLocker(rdb)
			lock, err := locker.ObtainReplicated(ctx, InstallLockKey("A2", "", "T2"), time.Minute)
			if err != nil {
				return err
			}
			in := &Installation{AppID: "A2", TeamID: "T2", BotToken: "xoxb-acl", BotRefreshToken: "xoxe-1-acl",
				Scopes: []string{"chat:write"}, TokenExpiresAt: time.Now().Add(time.Hour)}
			installs := NewInstallations(rdb, keys)
			if err := installs.SaveFenced(ctx, in, lock); err != nil {
				return err
			}
			defer installs.Delete(ctx, "A2", "", "T2") // sealed with this step's keys only
			// The user can count replicas: none here, so nothing was waited for.
			rep, err := Replicated(ctx, rdb, Key("T2", "acl"), time.Minute, func(c redis.Cmdable) error {
				return c.Set(ctx, Key("T2", "acl"), "v", time.Minute).Err()
			})
			if err != nil || rep.Replicas != 0 {
				return fmt.Errorf("Replicated as orgbridge = %+v, %v; want 0 replicas counted", rep, err)
			}
			return lock.Release(ctx)
		}},
		{name: "large keys a page at a time (HSCAN, SSCAN)", op: func(ctx context.Context, rdb *redis.Client) error {
			if err := rdb.HSet(ctx, Key("T3", "h"), "f", "v").Err(); err != nil {
				return err
			}
			if err := rdb.SAdd(ctx, Key("T3", "s"), "m").Err(); err != nil {
				return err
			}
			if err := ScanHash(ctx, rdb, Key("T3", "h"), func(string, string) error { return nil }); err != nil {
				return err
			}
			_, err := SetMembers(ctx, rdb, Key("T3", "s"))
			return err
		}},
		{name: "idempotency: begin, done, check", op: func(ctx context.Context, rdb *redis.Client) error {
			idem, key := NewIdempotency(rdb), Key("T1", "bus", "processed", "acl", "m1")
			if _, err := idem.Begin(ctx, key, time.Minute); err != nil {
				return err
			}
			if err := idem.Done(ctx, key, time.Minute); err != nil {
				return err
			}
			_, err := idem.Check(ctx, key)
			return err
		}},
		{name: "apply once, fenced by a lock (Lua)", op: func(ctx context.Context, rdb *redis.Client) error {
			l, err := NewLocker(rdb).Obtain(ctx, Key("T1", "lock", "apply"), time.Minute)
			if err != nil {
				return err
			}
			script := NewApplyScript(`redis.call('HSET', KEYS[1], 'f', ARGV[1]); redis.call('SADD', KEYS[2], ARGV[1]); return 1`)
			_, _, err = ApplyOnce(ctx, rdb, script, Once{ProcessedKey: Key("T1", "bus", "processed", "acl", "m2"), TTL: time.Minute,
				LockKey: l.Key(), Token: l.Token()}, []string{Key("T1", "acl", "hash"), Key("T1", "acl", "set")}, "v")
			return err
		}},
		{name: "installations: save sealed, find, list, delete (transactions, sets, sorted sets)", op: func(ctx context.Context, rdb *redis.Client) error {
			keys, err := ParseKeyring(GenerateKeySpec("k1"))
			if err != nil {
				return err
			}
			s := NewInstallations(rdb, keys)
			in := &Installation{AppID: "A1", TeamID: "T1", BotToken: "xoxb-acl", BotRefreshToken: "xoxe-1-acl",
				Scopes: []string{"chat:write"}, TokenExpiresAt: time.Now().Add(time.Hour)}
			if err := s.Save(ctx, in); err != nil {
				return err
			}
			if _, err := s.Find(ctx, "A1", "", "T1"); err != nil {
				return err
			}
			if _, err := s.List(ctx); err != nil {
				return err
			}
			if _, err := s.Due(ctx, time.Now().Add(2*time.Hour)); err != nil {
				return err
			}
			if _, err := CheckSealed(ctx, rdb, keys, s.SealedSet()); err != nil {
				return err
			}
			_, err = s.Delete(ctx, "A1", "", "T1")
			return err
		}},
		{name: "streams, lists and TIME in a script", op: func(ctx context.Context, rdb *redis.Client) error {
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: Key("T1", "acl", "stream"), Values: []any{"k", "v"}}).Err(); err != nil {
				return err
			}
			if err := rdb.RPush(ctx, Key("T1", "acl", "list"), "a").Err(); err != nil {
				return err
			}
			return redis.NewScript(`return redis.call('TIME')`).Run(ctx, rdb, []string{Key("T1", "acl", "t")}).Err()
		}},
	}
	for _, tt := range allowed {
		t.Run("orgbridge may: "+tt.name, func(t *testing.T) {
			if err := tt.op(ctx, r.Client); err != nil {
				t.Fatalf("as the orgbridge user: %v", err)
			}
		})
	}

	anonymous := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defaultUser := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.Password, MaxRetries: -1})
	wrongPassword := redis.NewClient(&redis.Options{Addr: r.Addr, Username: testenv.ProductionRedisUser, Password: "not-" + r.Password, MaxRetries: -1})
	for _, c := range []*redis.Client{anonymous, defaultUser, wrongPassword} {
		t.Cleanup(func() { _ = c.Close() })
	}
	refused := []struct {
		name string
		rdb  *redis.Client
		cmd  func(ctx context.Context, rdb *redis.Client) error
		want func(error) bool
	}{
		{name: "no user and no password", rdb: anonymous, want: redis.IsAuthError,
			cmd: func(ctx context.Context, rdb *redis.Client) error {
				return rdb.Get(ctx, Key("T1", "acl", "hash")).Err()
			}},
		{name: "the default user, with the orgbridge password", rdb: defaultUser, want: redis.IsAuthError,
			cmd: func(ctx context.Context, rdb *redis.Client) error { return rdb.Ping(ctx).Err() }},
		{name: "the orgbridge user with a wrong password", rdb: wrongPassword, want: redis.IsAuthError,
			cmd: func(ctx context.Context, rdb *redis.Client) error { return rdb.Ping(ctx).Err() }},
		{name: "orgbridge: a key outside ob:*", rdb: r.Client, want: redis.IsPermissionError,
			cmd: func(ctx context.Context, rdb *redis.Client) error { return rdb.Set(ctx, "other:app", "x", 0).Err() }},
		{name: "orgbridge: FLUSHALL", rdb: r.Client, want: redis.IsPermissionError,
			cmd: func(ctx context.Context, rdb *redis.Client) error { return rdb.FlushAll(ctx).Err() }},
		{name: "orgbridge: KEYS", rdb: r.Client, want: redis.IsPermissionError,
			cmd: func(ctx context.Context, rdb *redis.Client) error { return rdb.Keys(ctx, "ob:*").Err() }},
		{name: "orgbridge: CONFIG SET", rdb: r.Client, want: redis.IsPermissionError,
			cmd: func(ctx context.Context, rdb *redis.Client) error {
				return rdb.ConfigSet(ctx, "appendonly", "no").Err()
			}},
		{name: "orgbridge: PUBLISH", rdb: r.Client, want: redis.IsPermissionError,
			cmd: func(ctx context.Context, rdb *redis.Client) error { return rdb.Publish(ctx, "ob:chan", "x").Err() }},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			err := tt.cmd(ctx, tt.rdb)
			if err == nil || !tt.want(err) {
				t.Fatalf("err = %v; want it refused", err)
			}
		})
	}
	if n := r.Client.Exists(ctx, "other:app").Val(); n != 0 {
		t.Fatalf("a refused write left other:app behind")
	}
}
