package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ScanCount is how many entries [ScanHash] and [ScanSet] ask Redis for at a
// time: about a millisecond of the server's time, where HGETALL or SMEMBERS
// of a 100,000-entry key holds every other client for ~50 ms.
const ScanCount = 1000

// ScanHash calls fn for every field of the hash at key, reading it with
// HSCAN ScanCount at a time, so a large hash (a provisioning org's links)
// never stalls the Redis every tenant shares. As HSCAN promises, a field
// changed meanwhile may be seen twice, with either value; fn's error stops
// the scan.
func ScanHash(ctx context.Context, rdb redis.Cmdable, key string, fn func(field, value string) error) error {
	var cursor uint64
	for {
		kv, next, err := rdb.HScan(ctx, key, cursor, "", ScanCount).Result()
		if err != nil {
			return fmt.Errorf("store: reading %s: %w", key, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if err := fn(kv[i], kv[i+1]); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// ScanSet calls fn for every member of the set at key, reading it with SSCAN
// ScanCount at a time (see [ScanHash]); a member may be seen twice.
func ScanSet(ctx context.Context, rdb redis.Cmdable, key string, fn func(member string) error) error {
	var cursor uint64
	for {
		members, next, err := rdb.SScan(ctx, key, cursor, "", ScanCount).Result()
		if err != nil {
			return fmt.Errorf("store: reading %s: %w", key, err)
		}
		for _, m := range members {
			if err := fn(m); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// SetMembers is every member of the set at key, once each, read with
// [ScanSet].
func SetMembers(ctx context.Context, rdb redis.Cmdable, key string) ([]string, error) {
	seen := map[string]struct{}{}
	var out []string
	err := ScanSet(ctx, rdb, key, func(m string) error {
		if _, dup := seen[m]; !dup {
			seen[m] = struct{}{}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}
