package testenv

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a Redis Cluster of three primaries and three replicas, each a
// redis-server child process (--cluster-enabled yes) on free loopback ports,
// joined with `redis-cli --cluster create … --cluster-replicas 1`. Its node
// timeout is 1s, so a killed primary's replica takes over in a few seconds.
type RedisCluster struct {
	// Client is a cluster client over every node.
	Client *redis.ClusterClient
	nodes  []*redisNode
}

// clusterNodeTimeout is cluster-node-timeout: how long a primary may be
// silent before its replica is promoted.
const clusterNodeTimeout = time.Second

// StartRedisCluster starts a six-node cluster, waits until every slot is
// served and every replica is in sync, and stops it when the test ends. Most
// tests want [SharedRedisCluster] instead, which is started once per package.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	c, err := startRedisCluster(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func startRedisCluster(t testing.TB, dir string) (*RedisCluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("testenv: redis-cli is not installed (it comes with the redis-server package; run `make deps`): %w", err)
	}
	c := &RedisCluster{}
	ok := false
	defer func() {
		if !ok { // a node that failed to start ends the test: stop the others
			c.Stop()
		}
	}()
	for i := range 6 {
		busPort, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("testenv: finding a free port: %w", err)
		}
		n := startRedisNode(t, dir, fmt.Sprintf("node%d", i), func(n *redisNode) []string {
			return append(commonArgs(n), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout/time.Millisecond)),
				"--cluster-port", strconv.Itoa(busPort))
		})
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := pollUntil(30*time.Second, c.settled); err != nil {
		return nil, fmt.Errorf("testenv: Redis Cluster not settled within 30s: %w", err)
	}
	c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRedirects: 8})
	ok = true
	return c, nil
}

// settled reports nil once every running node sees three primaries serving
// every slot, each with a replica whose link is up.
func (c *RedisCluster) settled(ctx context.Context) error {
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		nc := n.client()
		info, err := nc.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = fmt.Errorf("%s: cluster_state is not ok", n.addr)
		}
		var role map[string]string
		if err == nil {
			role, err = nodeInfo(ctx, nc, "replication")
		}
		nc.Close()
		if err != nil {
			return err
		}
		if role["role"] == "slave" && role["master_link_status"] != "up" {
			return fmt.Errorf("%s: replica link is %q", n.addr, role["master_link_status"])
		}
		if role["role"] == "master" && role["connected_slaves"] != "1" && c.countRunning() == 6 {
			return fmt.Errorf("%s: primary has %q replicas", n.addr, role["connected_slaves"])
		}
	}
	return nil
}

func (c *RedisCluster) countRunning() int {
	n := 0
	for _, node := range c.nodes {
		if node.running() {
			n++
		}
	}
	return n
}

// Addrs are the nodes' host:port addresses (the seed list of a cluster client).
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr
	}
	return out
}

// Flush empties the cluster: FLUSHALL on every primary.
func (c *RedisCluster) Flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushAll(ctx).Err() })
	if err != nil {
		t.Fatalf("testenv: flushing the Redis Cluster: %v", err)
	}
}

// FailPrimary kills (SIGKILL) the primary that serves key, waits until its
// replica has taken over and the cluster client writes key again, and
// returns how long that took.
func (c *RedisCluster) FailPrimary(t testing.TB, key string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := c.Client.MasterForKey(ctx, key)
	if err != nil {
		t.Fatalf("testenv: finding the primary of %s: %v", key, err)
	}
	addr := m.Options().Addr
	var victim *redisNode
	for _, n := range c.nodes {
		if n.addr == addr {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("testenv: the primary of %s (%s) is not one of the cluster's nodes", key, addr)
	}
	start := time.Now()
	victim.kill()
	err = pollUntil(30*time.Second, func(ctx context.Context) error {
		if err := c.Client.Set(ctx, key, "after-failover", time.Minute).Err(); err != nil {
			c.Client.ReloadState(ctx)
			return err
		}
		m, err := c.Client.MasterForKey(ctx, key)
		if err != nil {
			return err
		}
		if m.Options().Addr == addr {
			return errors.New("the killed node still serves the slot")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: no replica took over %s's slot within 30s: %v", key, err)
	}
	return time.Since(start)
}

// Stop kills every node and closes the client; it is safe to call twice.
func (c *RedisCluster) Stop() {
	if c.Client != nil {
		_ = c.Client.Close()
	}
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(n.kill)
	}
	wg.Wait()
}
