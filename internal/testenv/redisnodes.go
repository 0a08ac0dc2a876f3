package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisNode is one redis-server child process of a Redis Cluster or a Sentinel
// set, on a loopback port of its own that it keeps across restarts.
type redisNode struct {
	bin, dir string
	port     int
	addr     string
	args     func(n *redisNode) []string // the command line after the binary

	mu   sync.Mutex
	proc *redisProc // nil while stopped
}

// startRedisNode starts a node in a fresh directory under parent, trying a few
// free ports (one may be taken between FreePort and bind), and waits until it
// answers PING. args builds its command line once the port is known.
func startRedisNode(t testing.TB, parent, name string, args func(n *redisNode) []string) *redisNode {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server is not installed (run `make test`, which installs it with apt-get, or `apt-get install -y redis-server`): %v", err)
	}
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	n := &redisNode{bin: bin, dir: dir, args: args}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if n.port, err = FreePort(); err != nil {
			t.Fatalf("testenv: finding a free port: %v", err)
		}
		n.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
		if lastErr = n.start(); lastErr == nil {
			return n
		}
	}
	t.Fatalf("testenv: redis-server %s did not start: %v\n%s", name, lastErr, n.log())
	return nil
}

func (n *redisNode) start() error {
	cmd := exec.Command(n.bin, n.args(n)...)
	cmd.Dir = n.dir
	// A test binary that dies without its cleanups (a panic, a timeout) takes
	// its servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	p := &redisProc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	c := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1})
	defer c.Close()
	if err := waitRedis(c, p.exited, 10*time.Second); err != nil {
		p.kill()
		return err
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return nil
}

// kill stops the node with SIGKILL, as a crash would; it is safe to call twice.
func (n *redisNode) kill() {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p != nil {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.kill()
	}
}

// signal sends sig to the node's process, if it runs.
func (n *redisNode) signal(sig syscall.Signal) error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("redis-server %s is stopped", n.addr)
	}
	return p.cmd.Process.Signal(sig)
}

func (n *redisNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil
}

func (n *redisNode) log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	return string(b)
}

// client is a plain connection to this one node.
func (n *redisNode) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
}

// commonArgs are the settings every test node shares: loopback, no
// persistence, a log file in its directory, replicas synced without delay.
func commonArgs(n *redisNode) []string {
	return []string{"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", n.dir, "--logfile", filepath.Join(n.dir, "redis.log"), "--protected-mode", "no",
		"--repl-diskless-sync-delay", "0"} // a replica syncs at once, not after the default 5s
}

// nodeInfo reads one section of INFO from addr as key → value.
func nodeInfo(ctx context.Context, c *redis.Client, section string) (map[string]string, error) {
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// pollUntil calls cond every 20ms until it returns nil or within elapses; it
// returns cond's last error then.
func pollUntil(within time.Duration, cond func(ctx context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
