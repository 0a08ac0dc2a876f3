package store

import (
	"errors"
	"strconv"
	"testing"
)

// TestScanHashAndSet reads a hash and a set of several ScanCount pages each:
// every field and member, and fn's error stops the scan.
func TestScanHashAndSet(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		ctx := testCtx(t)
		hash, set := Key("T1", "scan", "hash"), Key("T1", "scan", "set")
		const n = 2*ScanCount + 500
		fields := make([]any, 0, 2*n)
		members := make([]any, 0, n)
		for i := range n {
			fields = append(fields, "f"+strconv.Itoa(i), "v"+strconv.Itoa(i))
			members = append(members, "m"+strconv.Itoa(i))
		}
		if err := r.Client.HSet(ctx, hash, fields...).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Client.SAdd(ctx, set, members...).Err(); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		err := ScanHash(ctx, r.Client, hash, func(f, v string) error {
			got[f] = v
			return nil
		})
		if err != nil || len(got) != n || got["f0"] != "v0" || got["f"+strconv.Itoa(n-1)] != "v"+strconv.Itoa(n-1) {
			t.Fatalf("ScanHash: %d fields, %v", len(got), err)
		}
		ms, err := SetMembers(ctx, r.Client, set)
		if err != nil || len(ms) != n {
			t.Fatalf("SetMembers: %d members, %v", len(ms), err)
		}
		stop := errors.New("stop")
		calls := 0
		if err := ScanSet(ctx, r.Client, set, func(string) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("ScanSet after fn's error: %v, %d calls", err, calls)
		}
		if ms, err := SetMembers(ctx, r.Client, Key("T1", "scan", "none")); err != nil || len(ms) != 0 {
			t.Fatalf("a missing set: %v, %v", ms, err)
		}
	})
}
