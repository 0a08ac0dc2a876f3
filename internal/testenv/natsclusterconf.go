package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ProductionNATSCluster is deploy/nats/cluster.conf run as three in-process
// nodes, nats-1 to nats-3 as docker-compose.yml names them, on loopback: the
// production users and permissions (accounts.conf), JetStream, and routes that
// authenticate with the route password.
type ProductionNATSCluster struct {
	Servers []*server.Server
	// RoutePassword is the nodes' NATS_ROUTE_PASSWORD.
	RoutePassword string
	// RoutePorts are the loopback ports the nodes' routes listen on.
	RoutePorts []int
	passwords  map[string]string
}

// Password is user's password.
func (c *ProductionNATSCluster) Password(user string) string { return c.passwords[user] }

// URLs are the nodes' client URLs, comma-separated, as NATS_URL takes them.
func (c *ProductionNATSCluster) URLs() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// ClusterNodeName is the name of node i (from 0) in docker-compose.yml's
// cluster profile: nats-1, nats-2, nats-3.
func ClusterNodeName(i int) string { return "nats-" + strconv.Itoa(i+1) }

// StartProductionNATSCluster sets a fresh random password per user and for
// the routes in the environment (so its tests cannot run in parallel), starts
// three nodes from deploy/nats/cluster.conf ([ProductionClusterNodeOptions]),
// waits until they are routed to each other and JetStream has a meta leader,
// and stops them when the test ends.
func StartProductionNATSCluster(t *testing.T) *ProductionNATSCluster {
	t.Helper()
	c := &ProductionNATSCluster{passwords: map[string]string{}, RoutePassword: randomHex()}
	for _, u := range ProductionNATSUsers {
		c.passwords[u] = randomHex()
		t.Setenv(PasswordEnv(u), c.passwords[u])
	}
	// A route port found free can be taken by another test before its node
	// binds it: then the three start again on fresh ports.
	for attempt := 1; ; attempt++ {
		err := c.startNodes(t)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("testenv: %v (3 tries on fresh ports)", err)
		}
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	if err := pollUntil(30*time.Second, func(context.Context) error { return c.formed() }); err != nil {
		t.Fatalf("testenv: the cluster from deploy/nats/cluster.conf did not form within 30s: %v", err)
	}
	return c
}

// startNodes starts the three nodes on fresh route ports; on an error it
// stops those it started.
func (c *ProductionNATSCluster) startNodes(t *testing.T) error {
	c.RoutePorts, c.Servers = nil, nil
	for range 3 {
		p, err := FreePort()
		if err != nil {
			return fmt.Errorf("finding a free port: %w", err)
		}
		c.RoutePorts = append(c.RoutePorts, p)
	}
	for i := range c.RoutePorts {
		opts := ProductionClusterNodeOptions(t, ClusterNodeName(i), c.RoutePassword, c.RoutePorts[i], c.RoutePorts)
		s, err := server.NewServer(opts)
		if err == nil {
			s.Start()
			if !s.ReadyForConnections(10 * time.Second) {
				s.Shutdown()
				err = errors.New("not ready within 10s")
			}
		}
		if err != nil {
			for _, started := range c.Servers {
				started.Shutdown()
				started.WaitForShutdown()
			}
			return fmt.Errorf("NATS node %s from deploy/nats/cluster.conf: %w", opts.ServerName, err)
		}
		c.Servers = append(c.Servers, s)
	}
	return nil
}

// formed says why the cluster is not formed yet: a node not routed to both
// others, no JetStream meta leader, or a node whose meta state is behind.
func (c *ProductionNATSCluster) formed() error {
	leaders := 0
	for _, s := range c.Servers {
		if n := s.NumRemotes(); n != len(c.Servers)-1 {
			return fmt.Errorf("node %s is routed to %d other nodes", s.Name(), n)
		}
		if s.JetStreamIsLeader() {
			leaders++
		}
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("node %s's JetStream meta state is not current", s.Name())
		}
	}
	if leaders != 1 {
		return errors.New("JetStream has no meta leader")
	}
	return nil
}

// ProductionClusterNodeOptions loads deploy/nats/cluster.conf for the node
// called name the way docker-compose.yml runs it: NATS_SERVER_NAME=name,
// NATS_ROUTE_PASSWORD=routePassword and NATS_ROUTES listing
// nats-route://route:<routePassword>@nats-<i+1>:6222 for each of peers (the
// users' passwords must be in the environment already). Then it moves only
// what cannot stay on one machine: the client listener to a free loopback
// port, the route listener to routePort, each route's host nats-<i+1> to
// 127.0.0.1:peers[i] (keeping the user and password the file gave it), the
// store and pid file to temporary directories, monitoring and signals off.
func ProductionClusterNodeOptions(t *testing.T, name, routePassword string, routePort int, peers []int) *server.Options {
	t.Helper()
	routes := make([]string, len(peers))
	for i := range peers {
		routes[i] = "nats-route://route:" + routePassword + "@" + ClusterNodeName(i) + ":6222"
	}
	t.Setenv("NATS_SERVER_NAME", name)
	t.Setenv("NATS_ROUTE_PASSWORD", routePassword)
	t.Setenv("NATS_ROUTES", "["+strings.Join(routes, ", ")+"]")
	conf := filepath.Join(DeployDir(t), "nats", "cluster.conf")
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("testenv: %s: %v", conf, err)
	}
	if len(opts.Routes) != len(peers) {
		t.Fatalf("testenv: %s has %d routes for NATS_ROUTES of %d", conf, len(opts.Routes), len(peers))
	}
	for _, r := range opts.Routes {
		i := -1
		for j := range peers {
			if r.Hostname() == ClusterNodeName(j) {
				i = j
			}
		}
		if i < 0 {
			t.Fatalf("testenv: %s: route to %s is none of the nodes", conf, r.Redacted())
		}
		r.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(peers[i]))
	}
	dir := t.TempDir()
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routePort
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = filepath.Join(dir, "jetstream")
	opts.PidFile = filepath.Join(dir, "nats.pid")
	opts.NoSigs, opts.NoLog = true, true
	return opts
}

func randomHex() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}
