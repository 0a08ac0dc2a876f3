package binding_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// Stash retries a failed write (the OAuth code is spent: losing its tokens
// loses the flow) but not once its ctx has ended. Here every write fails for
// real: the store's Redis user may not SET, and Redis's ACL log counts the
// attempts.
func TestStashRetriesWhileCtxLives(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	if err := r.Client.Do(ctx, "ACL", "SETUSER", "nowrite", "on", ">pw", "~*", "+@all", "-set").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Username: "nowrite", Password: "pw"})
	t.Cleanup(func() { _ = rdb.Close() })
	keys, err := store.ParseKeyring(store.GenerateKeySpec("k1"))
	if err != nil {
		t.Fatal(err)
	}
	s := binding.NewStore(rdb, keys)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name         string
		ctx          context.Context
		wantAttempts int64
		wantCtxErr   bool
	}{
		{name: "live ctx: three tries", ctx: ctx, wantAttempts: 3},
		{name: "ended ctx: one try, no retries", ctx: cancelled, wantAttempts: 1, wantCtxErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.Client.Do(ctx, "ACL", "LOG", "RESET").Err(); err != nil {
				t.Fatal(err)
			}
			err := s.Stash(tt.ctx, "T1", "flow-"+tt.name, "aad", map[string]string{"access_token": "xoxb-1"})
			if err == nil || !strings.Contains(err.Error(), "NOPERM") {
				t.Fatalf("Stash = %v, want the refused write", err)
			}
			if got := errors.Is(err, context.Canceled); got != tt.wantCtxErr {
				t.Fatalf("Stash = %v; says the ctx ended: %v, want %v", err, got, tt.wantCtxErr)
			}
			log, err := r.Client.ACLLog(ctx, 10).Result()
			if err != nil {
				t.Fatal(err)
			}
			var attempts int64
			for _, e := range log {
				if e.Reason == "command" && e.Object == "set" {
					attempts += e.Count
				}
			}
			if attempts != tt.wantAttempts {
				t.Fatalf("%d writes tried, want %d", attempts, tt.wantAttempts)
			}
		})
	}
}
