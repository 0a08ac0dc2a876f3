package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster is three nats-server nodes in this process, joined by routes
// into one cluster with JetStream on each, so streams and consumers can have
// three replicas. Nodes keep their ports and stores across [NATSCluster.Kill]
// and [NATSCluster.Restart].
type NATSCluster struct {
	// Conn and JS are a client that knows every node and follows the cluster
	// through node losses.
	Conn *nats.Conn
	JS   jetstream.JetStream

	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server // nil while killed
}

// StartNATSCluster starts the three nodes, waits until JetStream has a
// meta leader and answers, and stops everything when the test ends.
func StartNATSCluster(t testing.TB) *NATSCluster {
	t.Helper()
	dir := t.TempDir()
	c := &NATSCluster{}
	t.Cleanup(c.Stop)
	var routes []string
	for i := range 3 {
		clientPort, err1 := FreePort()
		routePort, err2 := FreePort()
		if err1 != nil || err2 != nil {
			t.Fatalf("testenv: finding free ports: %v %v", err1, err2)
		}
		c.opts = append(c.opts, &server.Options{
			ServerName: "n" + strconv.Itoa(i),
			Host:       "127.0.0.1",
			Port:       clientPort,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, "n"+strconv.Itoa(i)),
			Cluster:    server.ClusterOpts{Name: "orgbridge-test", Host: "127.0.0.1", Port: routePort},
			NoSigs:     true,
			NoLog:      true,
		})
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(routePort))
	}
	c.servers = make([]*server.Server, len(c.opts))
	for i, o := range c.opts {
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.start(t, i)
	}
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("testenv: connecting to the NATS cluster: %v", err)
	}
	c.Conn = nc
	if c.JS, err = jetstream.New(nc); err != nil {
		t.Fatalf("testenv: jetstream: %v", err)
	}
	c.WaitJetStream(t, 30*time.Second)
	return c
}

func (c *NATSCluster) start(t testing.TB, i int) {
	t.Helper()
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		t.Fatalf("testenv: creating NATS node %d: %v", i, err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("testenv: NATS node %d not ready within 10s", i)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
}

// URLs are the nodes' client URLs, comma-separated, as NATS_URL takes them.
func (c *NATSCluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(o.Port)
	}
	return strings.Join(urls, ",")
}

// Server is node i, or nil while it is killed.
func (c *NATSCluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Kill shuts node i down. In-process this is nats-server's own shutdown: it
// hands the leadership of its streams and consumers to another node first,
// as a node stopped with SIGTERM does (not as one that crashed).
func (c *NATSCluster) Kill(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts node i again on its ports and store after [NATSCluster.Kill].
func (c *NATSCluster) Restart(t testing.TB, i int) {
	t.Helper()
	if c.Server(i) != nil {
		t.Fatalf("testenv: Restart of running NATS node %d", i)
	}
	c.start(t, i)
}

// StreamLeader is the index of the node leading stream (of the global
// account), or -1 while it has none.
func (c *NATSCluster) StreamLeader(stream string) int {
	for i := range c.opts {
		if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// ConsumerLeader is the index of the node leading consumer of stream, or -1.
func (c *NATSCluster) ConsumerLeader(stream, consumer string) int {
	for i := range c.opts {
		if s := c.Server(i); s != nil && s.JetStreamIsConsumerLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream, consumer) {
			return i
		}
	}
	return -1
}

// WaitJetStream waits until JetStream answers through the cluster client
// (the cluster has a meta leader).
func (c *NATSCluster) WaitJetStream(t testing.TB, within time.Duration) {
	t.Helper()
	err := pollUntil(within, func(ctx context.Context) error {
		_, err := c.JS.AccountInfo(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("testenv: NATS cluster JetStream not answering within %s: %v", within, err)
	}
}

// WaitStreamLeader waits until stream has a leader that answers, and
// returns its node. After a restart a replica answers stream info before
// the stream has a leader, so tests wait with this before asserting.
func (c *NATSCluster) WaitStreamLeader(t testing.TB, stream string, within time.Duration) int {
	t.Helper()
	leader := -1
	err := pollUntil(within, func(ctx context.Context) error {
		if leader = c.StreamLeader(stream); leader < 0 {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		_, err := c.JS.Stream(ctx, stream)
		return err
	})
	if err != nil {
		t.Fatalf("testenv: %v within %s", err, within)
	}
	return leader
}

// WaitStreamCurrent waits until stream's leader sees every other replica
// online and current (caught up), as `orgbridge streams` shows it.
func (c *NATSCluster) WaitStreamCurrent(t testing.TB, stream string, within time.Duration) {
	t.Helper()
	err := pollUntil(within, func(ctx context.Context) error {
		s, err := c.JS.Stream(ctx, stream)
		if err != nil {
			return err
		}
		ci := s.CachedInfo().Cluster
		if ci == nil || ci.Leader == "" {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		if len(ci.Replicas) != len(c.opts)-1 {
			return fmt.Errorf("stream %s's leader knows %d other replicas", stream, len(ci.Replicas))
		}
		for _, r := range ci.Replicas {
			if !r.Current || r.Offline || r.Lag > 0 {
				return fmt.Errorf("replica %s of %s is behind (current %v, offline %v, lag %d)", r.Name, stream, r.Current, r.Offline, r.Lag)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: %v after %s", err, within)
	}
}

// Stop closes the client and shuts every node down; it is safe to call twice.
func (c *NATSCluster) Stop() {
	if c.Conn != nil {
		c.Conn.Close()
	}
	var wg sync.WaitGroup
	for i := range c.opts {
		wg.Go(func() { c.Kill(i) })
	}
	wg.Wait()
}
