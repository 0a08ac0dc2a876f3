// Package testenv starts the real servers tests run against: an in-process NATS
// server with JetStream on a temporary store, and a redis-server child process on
// a free loopback port. Nothing here is a mock.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// Redis is a redis-server child process and a client connected to it.
type Redis struct {
	Client *redis.Client
	Addr   string
	cmd    *exec.Cmd
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
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			t.Fatalf("testenv: finding a free port: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"), "--protected-mode", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("testenv: starting redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() { _ = cmd.Process.Kill(); <-exited }
		client := redis.NewClient(&redis.Options{Addr: addr})
		if err := waitRedis(client, exited, 10*time.Second); err != nil {
			lastErr = err
			_ = client.Close()
			stop()
			continue // most likely the port was taken between FreePort and bind
		}
		r := &Redis{Client: client, Addr: addr, cmd: cmd}
		t.Cleanup(func() {
			_ = client.Close()
			stop()
		})
		return r
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	t.Fatalf("testenv: redis-server did not start: %v\n%s", lastErr, log)
	return nil
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
