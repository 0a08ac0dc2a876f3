// Package testenv starts the real servers tests run against: an in-process NATS
// server with JetStream on a temporary store, and a redis-server child process on
// a free loopback port. Nothing here is a mock.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
)

// NATS is a running in-process NATS server and a client connected to it.
type NATS struct {
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	URL    string
	dir    string
}

// StartNATS starts a NATS server with JetStream whose store lives in a fresh
// t.TempDir, connects to it over loopback, and stops both when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return StartNATSAt(t, t.TempDir())
}

// StartStreams is [StartNATS] with every contract stream created.
func StartStreams(t testing.TB) *NATS {
	t.Helper()
	n := StartNATS(t)
	n.EnsureStreams(t)
	return n
}

// StartNATSAt is [StartNATS] with a store directory of the caller's, so a test can
// stop a server and start another on the same data.
func StartNATSAt(t testing.TB, dir string) *NATS {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		t.Fatalf("testenv: creating NATS server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("testenv: NATS server not ready within 10s")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		s.Shutdown()
		t.Fatalf("testenv: connecting to NATS: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testenv: jetstream: %v", err)
	}
	n := &NATS{Server: s, Conn: nc, JS: js, URL: s.ClientURL(), dir: dir}
	t.Cleanup(n.Stop)
	return n
}

// Stop closes the client and shuts the server down; it is safe to call twice.
func (n *NATS) Stop() {
	n.Conn.Close()
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
}

// Dir is the server's JetStream store directory.
func (n *NATS) Dir() string { return n.dir }

// EnsureStreams creates every contract stream on n with default options.
func (n *NATS) EnsureStreams(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, spec := range events.StreamSpecs() {
		if _, err := n.JS.CreateOrUpdateStream(ctx, events.StreamConfig(spec, events.StreamOptions{})); err != nil {
			t.Fatalf("testenv: creating stream %s: %v", spec.Name, err)
		}
	}
}

// Redis is a redis-server child process and a client connected to it. A test
// can take the server away and bring it back on the same address to play an
// outage: [Redis.Stop] and [Redis.Restart] (a crash and a restart, data lost),
// [Redis.Freeze] and [Redis.Thaw] (a hung server: connections open, no answers).
type Redis struct {
	Client *redis.Client
	Addr   string

	bin, dir string
	port     int
	mu       sync.Mutex
	proc     *redisProc // nil while stopped
}

type redisProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *redisProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// StartRedis starts redis-server on a free loopback port with persistence off and
// stops it when the test ends. A machine without redis-server fails the test with
// a message that says how to install it: tests needing Redis never skip.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server is not installed (run `make test`, which installs it with apt-get, or `apt-get install -y redis-server`): %v", err)
	}
	r := &Redis{bin: bin, dir: t.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			t.Fatalf("testenv: finding a free port: %v", err)
		}
		r.port = port
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		r.Client = redis.NewClient(&redis.Options{Addr: r.Addr})
		if lastErr = r.start(); lastErr != nil {
			_ = r.Client.Close()
			continue // most likely the port was taken between FreePort and bind
		}
		t.Cleanup(func() {
			_ = r.Client.Close()
			r.Stop()
		})
		return r
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	t.Fatalf("testenv: redis-server did not start: %v\n%s", lastErr, log)
	return nil
}

// start runs redis-server on r's port and waits for it to answer PING.
func (r *Redis) start() error {
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"), "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	p := &redisProc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	if err := waitRedis(r.Client, p.exited, 10*time.Second); err != nil {
		p.kill()
		return err
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	return nil
}

// Stop kills the server (SIGKILL, as a crash would) and waits for it to exit;
// clients then get connection refused. It is safe to call when stopped.
func (r *Redis) Stop() {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p != nil {
		_ = p.cmd.Process.Signal(syscall.SIGCONT) // a frozen server cannot exit otherwise
		p.kill()
	}
}

// Restart starts the server again on the same address after [Redis.Stop], with
// no data (persistence is off), and waits until it answers.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	running := r.proc != nil
	r.mu.Unlock()
	if running {
		t.Fatalf("testenv: Restart of a running redis-server")
	}
	if err := r.start(); err != nil {
		log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
		t.Fatalf("testenv: restarting redis-server on %s: %v\n%s", r.Addr, err, log)
	}
}

// Freeze suspends the server (SIGSTOP): connections stay open and nothing is
// answered, so clients time out, as with a hung or partitioned server.
func (r *Redis) Freeze(t testing.TB) { r.signal(t, syscall.SIGSTOP) }

// Thaw resumes a server [Redis.Freeze] suspended.
func (r *Redis) Thaw(t testing.TB) { r.signal(t, syscall.SIGCONT) }

func (r *Redis) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p == nil {
		t.Fatalf("testenv: redis-server is stopped")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("testenv: signalling redis-server: %v", err)
	}
}

func waitRedis(c *redis.Client, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited early")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server not answering PING within %s", within)
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Eventually polls cond every 10ms until it returns true or within elapses, then
// fails the test with msg. Tests wait with it instead of sleeping.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: not within %s: "+msg, append([]any{within}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Redirect GETs u without following redirects and returns the Location of
// its 302 (a browser's next step in an OAuth flow); anything else fails t.
func Redirect(t testing.TB, u string) *url.URL {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: %d, Location %q", u, resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc
}
