package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
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

// NATSCluster is three nats-server nodes joined by routes into one cluster
// with JetStream on each, so streams and consumers can have three replicas.
// Nodes keep their ports and stores across [NATSCluster.Kill] and
// [NATSCluster.Restart]. [StartNATSCluster] runs the nodes in this process;
// [StartNATSClusterProcesses] runs each in a child process, so that Kill is
// a crash.
type NATSCluster struct {
	// Conn and JS are a client that knows every node and follows the cluster
	// through node losses.
	Conn *nats.Conn
	JS   jetstream.JetStream

	specs     []natsNode
	processes bool

	mu      sync.Mutex
	servers []*server.Server // in-process nodes; nil while killed
	procs   []*natsProc      // child-process nodes; nil while killed
}

// natsNode is what a node needs to start, in this process or in a child.
type natsNode struct {
	Name       string   `json:"name"`
	ClientPort int      `json:"client_port"`
	RoutePort  int      `json:"route_port"`
	StoreDir   string   `json:"store_dir"`
	Routes     []string `json:"routes"`
}

func (n natsNode) options() *server.Options {
	return &server.Options{
		ServerName: n.Name,
		Host:       "127.0.0.1",
		Port:       n.ClientPort,
		JetStream:  true,
		StoreDir:   n.StoreDir,
		Cluster:    server.ClusterOpts{Name: "orgbridge-test", Host: "127.0.0.1", Port: n.RoutePort},
		Routes:     server.RoutesFromStr(strings.Join(n.Routes, ",")),
		NoSigs:     true,
		NoLog:      true,
	}
}

type natsProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartNATSCluster starts the three nodes in this process, waits until
// JetStream has a meta leader and answers, and stops everything when the
// test ends.
func StartNATSCluster(t testing.TB) *NATSCluster {
	t.Helper()
	return startNATSCluster(t, false)
}

// StartNATSClusterProcesses is [StartNATSCluster] with each node in a child
// process (this test binary, run as a node), so that [NATSCluster.Kill] is
// SIGKILL: a crash, whose leaderships the others must take by election,
// where an in-process node's shutdown hands them over first. The package's
// TestMain must call [Main].
func StartNATSClusterProcesses(t testing.TB) *NATSCluster {
	t.Helper()
	shared.Lock()
	inMain := shared.inMain
	shared.Unlock()
	if !inMain {
		t.Fatal("testenv: StartNATSClusterProcesses needs the package's TestMain to call testenv.Main, which runs the nodes")
	}
	return startNATSCluster(t, true)
}

func startNATSCluster(t testing.TB, processes bool) *NATSCluster {
	dir := t.TempDir()
	c := &NATSCluster{processes: processes}
	t.Cleanup(c.Stop)
	// A port found free can be taken by another test before the node binds
	// it: then the whole cluster starts again on fresh ports (the routes name
	// every node's).
	for attempt := 1; ; attempt++ {
		err := c.startNodes(dir)
		if err == nil {
			break
		}
		for i := range c.servers {
			c.Kill(i)
		}
		if attempt == 3 {
			t.Fatalf("testenv: %v (3 tries on fresh ports)", err)
		}
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

// startNodes starts the three nodes on fresh ports, stores under dir.
func (c *NATSCluster) startNodes(dir string) error {
	c.specs = nil
	c.servers = make([]*server.Server, 3)
	c.procs = make([]*natsProc, 3)
	var routes []string
	for i := range 3 {
		clientPort, err1 := FreePort()
		routePort, err2 := FreePort()
		if err1 != nil || err2 != nil {
			return fmt.Errorf("finding free ports: %v %v", err1, err2)
		}
		name := "n" + strconv.Itoa(i)
		c.specs = append(c.specs, natsNode{Name: name, ClientPort: clientPort, RoutePort: routePort, StoreDir: filepath.Join(dir, name)})
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(routePort))
	}
	for i := range c.specs {
		c.specs[i].Routes = routes
		_ = os.RemoveAll(c.specs[i].StoreDir) // a failed try's
		if err := c.tryStart(i); err != nil {
			return err
		}
	}
	return nil
}

func (c *NATSCluster) start(t testing.TB, i int) {
	t.Helper()
	if err := c.tryStart(i); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

func (c *NATSCluster) tryStart(i int) error {
	if c.processes {
		return c.startProcess(i)
	}
	s, err := server.NewServer(c.specs[i].options())
	if err != nil {
		return fmt.Errorf("creating NATS node %d: %w", i, err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("NATS node %d not ready within 10s", i)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return nil
}

// natsNodeEnv carries a node's natsNode (JSON) to a child process.
const natsNodeEnv = "ORGBRIDGE_TESTENV_NATS_NODE"

func (c *NATSCluster) startProcess(i int) error {
	spec, _ := json.Marshal(c.specs[i])
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), natsNodeEnv+"="+string(spec))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting NATS node %d: %w", i, err)
	}
	p := &natsProc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.specs[i].ClientPort))
	err := pollUntil(10*time.Second, func(context.Context) error {
		select {
		case <-p.exited:
			return fmt.Errorf("NATS node %d exited", i)
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err
	})
	if err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("NATS node %d not ready within 10s: %w", i, err)
	}
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()
	return nil
}

// runNATSNode is a child process's life as a node: it serves until killed,
// or until its parent (the test binary) is gone.
func runNATSNode(spec string) int {
	var n natsNode
	if err := json.Unmarshal([]byte(spec), &n); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: bad node spec:", err)
		return 2
	}
	s, err := server.NewServer(n.options())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 2
	}
	s.Start()
	parent := os.Getppid()
	for os.Getppid() == parent {
		time.Sleep(200 * time.Millisecond)
	}
	s.Shutdown()
	return 0
}

// URLs are the nodes' client URLs, comma-separated, as NATS_URL takes them.
func (c *NATSCluster) URLs() string {
	urls := make([]string, len(c.specs))
	for i, n := range c.specs {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(n.ClientPort)
	}
	return strings.Join(urls, ",")
}

// Server is node i, or nil while it is killed or runs in a child process.
func (c *NATSCluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

func (c *NATSCluster) running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i] != nil || c.procs[i] != nil
}

// Kill stops node i. An in-process node shuts down as nats-server does on
// SIGTERM: it hands the leadership of its streams and consumers to another
// node first. A child-process node is killed with SIGKILL, as a crash: the
// others elect new leaders after their election timeout.
func (c *NATSCluster) Kill(i int) {
	c.mu.Lock()
	s, p := c.servers[i], c.procs[i]
	c.servers[i], c.procs[i] = nil, nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
	if p != nil {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Restart starts node i again on its ports and store after [NATSCluster.Kill].
func (c *NATSCluster) Restart(t testing.TB, i int) {
	t.Helper()
	if c.running(i) {
		t.Fatalf("testenv: Restart of running NATS node %d", i)
	}
	c.start(t, i)
}

// StreamLeader is the index of the node leading stream (of the global
// account), or -1 while it has none.
func (c *NATSCluster) StreamLeader(stream string) int {
	if c.processes {
		return c.leaderByAPI(func(ctx context.Context) (*jetstream.ClusterInfo, error) {
			s, err := c.JS.Stream(ctx, stream)
			if err != nil {
				return nil, err
			}
			return s.CachedInfo().Cluster, nil
		})
	}
	for i := range c.specs {
		if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// ConsumerLeader is the index of the node leading consumer of stream, or -1.
func (c *NATSCluster) ConsumerLeader(stream, consumer string) int {
	if c.processes {
		return c.leaderByAPI(func(ctx context.Context) (*jetstream.ClusterInfo, error) {
			cons, err := c.JS.Consumer(ctx, stream, consumer)
			if err != nil {
				return nil, err
			}
			return cons.CachedInfo().Cluster, nil
		})
	}
	for i := range c.specs {
		if s := c.Server(i); s != nil && s.JetStreamIsConsumerLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream, consumer) {
			return i
		}
	}
	return -1
}

// leaderByAPI asks JetStream (its leader answers info requests) who leads.
func (c *NATSCluster) leaderByAPI(info func(context.Context) (*jetstream.ClusterInfo, error)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ci, err := info(ctx)
	if err != nil || ci == nil {
		return -1
	}
	for i, n := range c.specs {
		if ci.Leader == n.Name && c.running(i) {
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
		if len(ci.Replicas) != len(c.specs)-1 {
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
	for i := range c.specs {
		wg.Go(func() { c.Kill(i) })
	}
	wg.Wait()
}
