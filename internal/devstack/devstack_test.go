package devstack

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestRelativeDataDir runs both servers from a relative data dir, as `make run`
// does with ./data: redis-server changes directory before opening its log, so a
// relative path would make it exit at start.
func TestRelativeDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	r, err := StartRedis(context.Background(), filepath.Join("data", "redis"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(r.URL(), "redis://"), "/0")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("redis-server not answering on %s: %v", addr, err)
	}
	conn.Close()
	r.Stop()
	if _, err := os.Stat(filepath.Join("data", "redis", "redis.log")); err != nil {
		t.Fatalf("redis log not under the data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join("data", "redis", "appendonlydir")); err != nil {
		t.Fatalf("AOF not under the data dir: %v", err)
	}

	ns, err := StartNATS("127.0.0.1:0", filepath.Join("data", "jetstream"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	ns.Shutdown()
	if _, err := os.Stat(filepath.Join("data", "jetstream", "jetstream")); err != nil {
		t.Fatalf("JetStream store not under the data dir: %v", err)
	}
}
