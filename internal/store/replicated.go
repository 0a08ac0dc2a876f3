package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated is returned when a write reached the primary but no replica
// acknowledged it within the wait: a failover in the next instant could lose
// it. The write itself stands on the primary.
var ErrNotReplicated = errors.New("store: written on the Redis primary, but no replica acknowledged it in time")

// DefaultReplicationWait is how long [Replicated] waits for a replica by
// default: replicas on the same network acknowledge in about a millisecond.
const DefaultReplicationWait = time.Second

// Replication is what [Replicated] found: how many replicas the primary had
// (-1: unknown, the Redis user may not run INFO) and how many acknowledged
// the write.
type Replication struct {
	Replicas int
	Acked    int
}

// Replicated runs write on one connection to the primary that holds key, and
// then, if that primary has replicas, waits up to timeout until at least one
// of them has everything the connection wrote (Redis WAIT). Redis replicates
// asynchronously, so a write acknowledged by the primary alone is lost if the
// primary dies and a replica is promoted; once a replica has it, the replica
// Sentinel or the Cluster promotes (the one with the most data) has it too.
// It is for the few writes whose loss cannot be repaired (a rotated token
// Slack has already revoked the predecessor of; a lock that guards an
// irreversible effect), not for every write: it adds a round trip to the
// replica.
//
// A single server (no replicas) is not waited for, nor is a primary whose
// replicas the Redis user may not count (INFO refused by its ACL). rdb may be a
// *redis.Client (plain or Sentinel failover) or a *redis.ClusterClient; any
// other Cmdable runs write without waiting. write's error is returned as is;
// a write that no replica acknowledged returns [ErrNotReplicated].
func Replicated(ctx context.Context, rdb redis.Cmdable, key string, timeout time.Duration, write func(c redis.Cmdable) error) (Replication, error) {
	var node *redis.Client
	switch c := rdb.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return Replication{}, fmt.Errorf("store: finding the primary of %s: %w", key, err)
		}
		node = n
	default:
		return Replication{}, write(rdb)
	}
	// WAIT counts what this connection wrote: write and wait on one connection.
	conn := node.Conn()
	defer conn.Close()
	if err := write(conn); err != nil {
		return Replication{}, err
	}
	info, err := conn.Info(ctx, "replication").Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOPERM") {
		// An ACL without INFO (deploy/redis allows it): made, not waited for.
		return Replication{Replicas: -1}, nil
	}
	if err != nil {
		return Replication{}, fmt.Errorf("store: reading the primary's replicas: %w", err)
	}
	r := Replication{Replicas: connectedReplicas(info)}
	if r.Replicas == 0 {
		return r, nil
	}
	acked, err := conn.Wait(ctx, 1, timeout).Result()
	if err != nil {
		return r, fmt.Errorf("store: waiting for a replica of %s: %w", key, err)
	}
	r.Acked = int(acked)
	if r.Acked == 0 {
		return r, fmt.Errorf("%w (%s, %d replicas, waited %s)", ErrNotReplicated, key, r.Replicas, timeout)
	}
	return r, nil
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(info string) int {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
