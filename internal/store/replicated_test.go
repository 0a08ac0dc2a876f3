package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

func setKey(ctx context.Context, key, value string) func(c redis.Cmdable) error {
	return func(c redis.Cmdable) error { return c.Set(ctx, key, value, time.Minute).Err() }
}

// TestReplicatedSingleServer: a server without replicas has nothing to wait
// for; the write is made and nothing blocks (a WAIT here would hold the
// connection for the whole timeout, past ctx's deadline).
func TestReplicatedSingleServer(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := Replicated(ctx, r.Client, Key("T1", "k"), time.Minute, setKey(ctx, Key("T1", "k"), "v"))
	if err != nil || rep != (Replication{}) {
		t.Fatalf("Replicated on one server = %+v, %v; want no replicas, no error", rep, err)
	}
	if v, _ := r.Client.Get(ctx, Key("T1", "k")).Result(); v != "v" {
		t.Fatalf("the write did not happen: %q", v)
	}
	wantErr := errors.New("refused")
	if _, err := Replicated(ctx, r.Client, Key("T1", "k"), time.Minute, func(redis.Cmdable) error { return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("write's error = %v, want it returned as is", err)
	}
}

// TestReplicatedSentinel: behind Sentinel, a write returns once a replica has
// it (readable there at once); with the replicas stalled it returns
// ErrNotReplicated after the wait, the write standing on the primary. A lock
// taken with ObtainReplicated is given up again in that case, so nobody runs
// under a lock a failover could hand to someone else.
func TestReplicatedSentinel(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := Key("T1", "rotated")
	// Generous waits where replicas are healthy: a loaded test machine may
	// starve a replica for a moment; the stalled case below waits 300 ms.
	rep, err := Replicated(ctx, s.Client, key, 10*time.Second, setKey(ctx, key, "token-1"))
	if err != nil || rep.Replicas != 2 || rep.Acked < 1 {
		t.Fatalf("Replicated = %+v, %v; want 2 replicas, at least one acknowledging", rep, err)
	}
	replicas := s.ReplicaClients(t)
	// WAIT returned, so the replica that acknowledged has it without any delay.
	have := 0
	for _, c := range replicas {
		if v, _ := c.Get(ctx, key).Result(); v == "token-1" {
			have++
		}
	}
	if have < rep.Acked {
		t.Fatalf("%d replicas acknowledged, %d have the value", rep.Acked, have)
	}

	locker := NewLocker(s.Client).WithReplicationWait(10 * time.Second)
	lock, err := locker.ObtainReplicated(ctx, Key("T1", "run"), time.Minute)
	if err != nil {
		t.Fatalf("ObtainReplicated with healthy replicas: %v", err)
	}
	if _, err := locker.ObtainReplicated(ctx, Key("T1", "run"), time.Minute); !errors.Is(err, ErrNotObtained) {
		t.Fatalf("a held lock obtained again: %v", err)
	}
	if err := lock.Release(ctx); err != nil {
		t.Fatal(err)
	}

	thaw := s.FreezeReplicas(t)
	start := time.Now()
	rep, err = Replicated(ctx, s.Client, key, 300*time.Millisecond, setKey(ctx, key, "token-2"))
	if !errors.Is(err, ErrNotReplicated) || rep.Replicas != 2 || rep.Acked != 0 {
		t.Fatalf("with the replicas stalled: %+v, %v; want ErrNotReplicated", rep, err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("returned after %s, before the wait was over", waited)
	}
	if v, _ := s.Client.Get(ctx, key).Result(); v != "token-2" {
		t.Fatalf("the primary lost the write: %q", v)
	}
	if _, err := locker.WithReplicationWait(300*time.Millisecond).ObtainReplicated(ctx, Key("T1", "run"), time.Minute); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("ObtainReplicated with the replicas stalled: %v, want ErrNotReplicated", err)
	}
	if n, _ := s.Client.Exists(ctx, Key("T1", "run")).Result(); n != 0 {
		t.Fatal("a lock no replica has was kept")
	}
	thaw()
	if lock, err := locker.ObtainReplicated(ctx, Key("T1", "run"), time.Minute); err != nil {
		t.Fatalf("after the replicas resumed: %v", err)
	} else {
		_ = lock.Release(ctx)
	}
}

// TestReplicatedCluster: on a Redis Cluster the write and the wait go to the
// primary of the key's slot, whose one replica acknowledges it.
func TestReplicatedCluster(t *testing.T) {
	c := testenv.SharedRedisCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tenant := range []string{"T1", "T2", "E9"} {
		key := Key(tenant, "rotated")
		rep, err := Replicated(ctx, c.Client, key, 10*time.Second, setKey(ctx, key, "v"))
		if err != nil || rep.Replicas != 1 || rep.Acked != 1 {
			t.Fatalf("%s: Replicated = %+v, %v; want its primary's one replica to acknowledge", key, rep, err)
		}
	}
}
