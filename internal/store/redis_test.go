package store

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestClusterClientFollowsAFailover: after a primary dies and its replica is
// promoted, a cluster client with FollowFailovers writes the slot again
// within a couple of seconds, and Ping passes again. (A bare go-redis
// cluster client keeps sending the slot to the dead node until its minutely
// reload.)
func TestClusterClientFollowsAFailover(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	FollowFailovers(rdb)
	t.Cleanup(func() { rdb.Close() })
	ctx := testCtx(t)
	key := Key("T0FOLLOW", "counter")
	if err := rdb.Incr(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, rdb); err != nil {
		t.Fatalf("Ping before the failover: %v", err)
	}
	// Our client goes on writing while the test's own client kills the primary
	// and waits for the promotion.
	writes := make(chan time.Time, 1)
	stop := make(chan struct{})
	go func() {
		failedAt := time.Time{}
		for {
			select {
			case <-stop:
				return
			default:
			}
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err := rdb.Incr(wctx, key).Err()
			cancel()
			switch {
			case err != nil && failedAt.IsZero():
				failedAt = time.Now()
			case err == nil && !failedAt.IsZero():
				writes <- time.Now()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer close(stop)
	promoted := c.FailPrimary(t, Key("T0FOLLOW", "probe")) // same slot

	promotedAt := time.Now()
	select {
	case at := <-writes:
		if lag := at.Sub(promotedAt); lag > 3*time.Second {
			t.Fatalf("writes resumed %s after the promotion", lag)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no write succeeded within 10s of the promotion (%s after the kill)", promoted)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return Ping(ctx, rdb) == nil }, "Ping still fails after the promotion")
}
