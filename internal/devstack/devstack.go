// Package devstack runs the infrastructure `orgbridge dev` and the benchmarks
// need on one machine: an embedded NATS server with JetStream, and a redis-server
// child process with AOF on. Production runs both as their own services.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is an embedded NATS server with JetStream.
type NATSServer struct {
	srv *server.Server
}

// StartNATS starts NATS with JetStream storing under dir and listening on addr
// (host:port; port 0 picks a free one), and waits until it accepts connections.
func StartNATS(addr, dir string) (*NATSServer, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("NATS address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("NATS address %q: port is not a number", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "orgbridge-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("NATS server did not start listening on %s within 10s (is the port in use?)", addr)
	}
	return &NATSServer{srv: srv}, nil
}

// URL is the nats:// URL clients connect to.
func (n *NATSServer) URL() string { return n.srv.ClientURL() }

// Server is the embedded server, for in-process connections (nats.InProcessServer).
func (n *NATSServer) Server() *server.Server { return n.srv }

// Shutdown stops the server and waits until its store is closed.
func (n *NATSServer) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// Redis is a redis-server child process.
type Redis struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	log    *slog.Logger
}

// ErrNoRedisServer means redis-server is not installed.
var ErrNoRedisServer = errors.New("redis-server is not installed: run `make run` (it installs it with apt-get) or set REDIS_URL")

// StartRedis starts redis-server bound to loopback on a free port with AOF on
// under dir, and waits until it answers. The child gets SIGTERM if this process
// dies, so it never outlives orgbridge.
func StartRedis(ctx context.Context, dir string, log *slog.Logger) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	// redis-server changes into --dir before it opens --logfile: both must be absolute.
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec",
		"--save", "", "--logfile", filepath.Join(dir, "redis.log"), "--protected-mode", "yes")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	r := &Redis{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{}), log: log}
	go func() { _ = cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return r, nil
		}
		select {
		case <-r.exited:
			return nil, fmt.Errorf("redis-server exited at start; see %s", filepath.Join(dir, "redis.log"))
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("redis-server not listening on %s within 10s", r.addr)
		}
	}
}

// URL is the redis:// URL of the child.
func (r *Redis) URL() string { return "redis://" + r.addr + "/0" }

// Stop asks redis-server to exit (it flushes the AOF on SIGTERM) and waits up
// to 10 s before killing it.
func (r *Redis) Stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.log.Warn("redis-server did not exit on SIGTERM; killing it")
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}
