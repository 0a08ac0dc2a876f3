// Package deploy_test checks the files under deploy/ and docker-compose.yml
// the way they run: NATS configs are loaded by nats-server and started, Redis
// scripts start redis-server, and the Kubernetes and compose manifests are
// parsed and checked for what a reviewer would check by hand.
package deploy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestNATSClusterConfig starts three nodes from deploy/nats/cluster.conf and
// checks that they form a JetStream cluster in which the worker user creates
// orgbridge's streams with three replicas and the ingress's events land on
// every node, and that a node with the wrong route password stays out while
// one with the right password joins.
func TestNATSClusterConfig(t *testing.T) {
	c := testenv.StartProductionNATSCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	worker := connect(t, c, "worker")
	wjs, err := jetstream.New(worker)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, wjs, events.StreamOptions{Replicas: 3}, bus.WaitWithin(30*time.Second)); err != nil {
		t.Fatalf("the worker user creating R3 streams on the cluster: %v", err)
	}
	for _, spec := range events.StreamSpecs() {
		s, err := wjs.Stream(ctx, spec.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", spec.Name, err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas, cluster %+v; want 3 with a leader", spec.Name, info.Config.Replicas, info.Cluster)
		}
	}

	ingress := connect(t, c, "ingress")
	ijs, err := jetstream.New(ingress)
	if err != nil {
		t.Fatal(err)
	}
	subject := events.SlackEventSubject("T0123", "message")
	if _, err := ijs.Publish(ctx, subject, []byte(`{"type":"message"}`)); err != nil {
		t.Fatalf("the ingress user publishing %s: %v", subject, err)
	}
	// Each node's own copy of SLACK, as its monitoring reports it.
	err = poll(15*time.Second, func() error {
		for _, s := range c.Servers {
			if n := storedOn(s, events.StreamSlack); n != 1 {
				return fmt.Errorf("node %s holds %d messages of SLACK", s.Name(), n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the event is not replicated to every node: %v", err)
	}

	t.Run("wrong route password", func(t *testing.T) {
		logs := &captureLog{}
		bad := startNode(t, "nats-4", "not-"+c.RoutePassword, c.RoutePorts, logs)
		err := poll(15*time.Second, func() error {
			if !logs.has("Authorization Violation") {
				return fmt.Errorf("no refusal logged yet; log: %s", logs)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("nats-4's routes with a wrong password are not refused: %v", err)
		}
		if n := bad.NumRemotes(); n != 0 {
			t.Errorf("nats-4 with a wrong route password is routed to %d nodes", n)
		}
		for _, s := range c.Servers {
			if n := s.NumRemotes(); n != 2 {
				t.Errorf("node %s is routed to %d other nodes with nats-4 refused; want 2", s.Name(), n)
			}
		}
		if peers := metaPeers(c); len(peers) != 3 {
			t.Errorf("JetStream peers %v with nats-4 refused; want the 3 nodes", peers)
		}
		bad.Shutdown()
		bad.WaitForShutdown()
	})

	// The same fourth node with the right password joins: what kept it out
	// above was the password alone.
	t.Run("right route password", func(t *testing.T) {
		good := startNode(t, "nats-5", c.RoutePassword, c.RoutePorts, &captureLog{})
		err := poll(15*time.Second, func() error {
			if n := good.NumRemotes(); n != 3 {
				return fmt.Errorf("nats-5 is routed to %d nodes", n)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("a node with the route password does not join: %v", err)
		}
	})
}

// TestNATSConfigsShareUsers loads the single-server and the cluster config
// and checks that they give every user the same account, password and
// permissions: both include accounts.conf.
func TestNATSConfigsShareUsers(t *testing.T) {
	for _, u := range testenv.ProductionNATSUsers {
		t.Setenv(testenv.PasswordEnv(u), "pw-"+u)
	}
	t.Setenv("NATS_SERVER_NAME", "nats-1")
	t.Setenv("NATS_ROUTE_PASSWORD", "r")
	t.Setenv("NATS_ROUTES", "[nats-route://route:r@nats-1:6222]")
	type grant struct {
		Account, Password string
		Permissions       *server.Permissions
	}
	load := func(name string) (*server.Options, map[string]grant) {
		opts, err := server.ProcessConfigFile(filepath.Join(testenv.DeployDir(t), "nats", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		users := map[string]grant{}
		for _, u := range opts.Users {
			g := grant{Password: u.Password, Permissions: u.Permissions}
			if u.Account != nil {
				g.Account = u.Account.Name
			}
			users[u.Username] = g
		}
		return opts, users
	}
	single, singleUsers := load("nats.conf")
	cluster, clusterUsers := load("cluster.conf")
	if len(singleUsers) != len(testenv.ProductionNATSUsers) {
		t.Fatalf("nats.conf has users %v; want %v", keys(singleUsers), testenv.ProductionNATSUsers)
	}
	for _, u := range testenv.ProductionNATSUsers {
		s, ok := singleUsers[u]
		if !ok || s.Permissions == nil || s.Password != "pw-"+u {
			t.Errorf("nats.conf: user %s missing, without permissions or without its password from %s", u, testenv.PasswordEnv(u))
		}
		if !reflect.DeepEqual(s, clusterUsers[u]) {
			t.Errorf("user %s: nats.conf grants %+v, cluster.conf %+v", u, s, clusterUsers[u])
		}
	}
	if len(clusterUsers) != len(singleUsers) {
		t.Errorf("cluster.conf has users %v, nats.conf %v", keys(clusterUsers), keys(singleUsers))
	}
	if single.Cluster.Port != 0 || len(single.Routes) != 0 {
		t.Errorf("nats.conf is a single server but has cluster port %d and routes %v", single.Cluster.Port, single.Routes)
	}
	if !single.JetStream || !cluster.JetStream || single.StoreDir != cluster.StoreDir {
		t.Errorf("JetStream: nats.conf %v in %q, cluster.conf %v in %q; want both on, in the same directory",
			single.JetStream, single.StoreDir, cluster.JetStream, cluster.StoreDir)
	}
	if cluster.ServerName != "nats-1" || cluster.Cluster.Username != "route" || cluster.Cluster.Password != "r" {
		t.Errorf("cluster.conf: server name %q, route user %q password %q; want them from NATS_SERVER_NAME and NATS_ROUTE_PASSWORD",
			cluster.ServerName, cluster.Cluster.Username, cluster.Cluster.Password)
	}
}

func connect(t *testing.T, c *testenv.ProductionNATSCluster, user string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.UserInfo(user, c.Password(user)))
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startNode starts one more node from cluster.conf, routed to peers, logging
// to logs.
func startNode(t *testing.T, name, routePassword string, peers []int, logs *captureLog) *server.Server {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(testenv.ProductionClusterNodeOptions(t, name, routePassword, port, peers))
	if err != nil {
		t.Fatal(err)
	}
	s.SetLoggerV2(logs, false, false, false)
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("node %s not ready within 10s", name)
	}
	return s
}

// storedOn is the number of messages node s holds of stream in orgbridge's
// account, or -1 when it holds no replica of it.
func storedOn(s *server.Server, stream string) int {
	info, err := s.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return -1
	}
	for _, a := range info.AccountDetails {
		for _, st := range a.Streams {
			if a.Name == "ORGBRIDGE" && st.Name == stream {
				return int(st.State.Msgs)
			}
		}
	}
	return -1
}

// metaPeers are the JetStream peers the meta leader knows.
func metaPeers(c *testenv.ProductionNATSCluster) []string {
	for _, s := range c.Servers {
		if s.JetStreamIsLeader() {
			return s.JetStreamClusterPeers()
		}
	}
	return nil
}

func poll(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// captureLog is a nats-server logger that keeps warnings and errors.
type captureLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *captureLog) add(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *captureLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func (l *captureLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *captureLog) Noticef(string, ...any)         {}
func (l *captureLog) Debugf(string, ...any)          {}
func (l *captureLog) Tracef(string, ...any)          {}
func (l *captureLog) Warnf(format string, v ...any)  { l.add(format, v...) }
func (l *captureLog) Errorf(format string, v ...any) { l.add(format, v...) }
func (l *captureLog) Fatalf(format string, v ...any) { l.add(format, v...) }
