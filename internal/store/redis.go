package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Ping checks that every Redis server holding orgbridge's data answers: the
// one server, the primary Sentinel names now, or each primary of a Redis
// Cluster. A cluster client's own Ping asks one node at random, which says
// nothing about a primary that died with its slots; a worker that probed that
// way would fail its handlers (and spend their deliveries) instead of pausing
// until a replica is promoted.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		// ForEachMaster reads the cluster's slot map first, so this also
		// brings the client's view up to date after a failover.
		return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
	}
	return rdb.Ping(ctx).Err()
}

// FollowFailovers makes c reload the cluster's slot map as soon as a node
// fails to answer. go-redis reloads it only when a node answers MOVED or
// READONLY, or once a minute (ClusterStateReloadInterval): after a primary
// dies, its replica is promoted in seconds, but a client keeps sending the
// slots to the dead node, getting "connection refused", until then.
// Reloading is cheap (CLUSTER SLOTS on one node) and go-redis coalesces
// reloads asked for at once.
func FollowFailovers(c *redis.ClusterClient) { c.AddHook(reloadOnFailure{c}) }

type reloadOnFailure struct{ c *redis.ClusterClient }

func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if nodeFailed(err) {
			h.c.ReloadState(context.WithoutCancel(ctx))
		}
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if nodeFailed(err) {
			h.c.ReloadState(context.WithoutCancel(ctx))
		}
		return err
	}
}

// nodeFailed reports whether err says a node is gone or the cluster is
// changing: network errors, timeouts, CLUSTERDOWN, TRYAGAIN. Answers about
// the data (redis.Nil, script errors, WRONGTYPE) are not.
func nodeFailed(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "CLUSTERDOWN") || strings.HasPrefix(msg, "TRYAGAIN")
}
