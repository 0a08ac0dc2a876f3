package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSentinel is a Redis primary with two replicas watched by three
// Sentinels (`redis-server --sentinel`), all child processes on free loopback
// ports. The Sentinels declare the primary down after 1s without answers and
// need two of them to agree, so a killed primary is replaced in a few seconds.
type RedisSentinel struct {
	// Client is a failover client: it asks the Sentinels for the primary.
	Client *redis.Client
	// Master is the name the Sentinels monitor the primary under.
	Master string

	data      []*redisNode // data[0] is the first primary
	sentinels []*redisNode
}

// sentinelDownAfter is down-after-milliseconds: how long a primary may be
// silent before a Sentinel thinks it down.
const sentinelDownAfter = time.Second

// StartRedisSentinel starts the primary, the replicas and the Sentinels, waits
// until every Sentinel knows both replicas and the other two Sentinels (so a
// failover can be agreed), and stops everything when the test ends.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	dir := t.TempDir()
	s := &RedisSentinel{Master: "orgbridge"}
	t.Cleanup(s.Stop)
	primary := startRedisNode(t, dir, "data0", commonArgs)
	s.data = append(s.data, primary)
	for i := 1; i <= 2; i++ {
		s.data = append(s.data, startRedisNode(t, dir, fmt.Sprintf("data%d", i), func(n *redisNode) []string {
			return append(commonArgs(n), "--replicaof", "127.0.0.1", strconv.Itoa(primary.port))
		}))
	}
	for i := range 3 {
		s.sentinels = append(s.sentinels, startRedisNode(t, dir, fmt.Sprintf("sentinel%d", i), func(n *redisNode) []string {
			conf := filepath.Join(n.dir, "sentinel.conf")
			m := s.Master
			body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nlogfile %s\n", n.port, n.dir, filepath.Join(n.dir, "redis.log")) +
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n", m, primary.port) +
				fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", m, sentinelDownAfter.Milliseconds()) +
				fmt.Sprintf("sentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 2\n", m, m)
			_ = os.WriteFile(conf, []byte(body), 0o644)
			return []string{conf, "--sentinel"}
		}))
	}
	err := pollUntil(30*time.Second, func(ctx context.Context) error {
		for _, n := range s.sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: n.addr})
			m, err := sc.Master(ctx, s.Master).Result()
			sc.Close()
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", n.addr, err)
			}
			if m["flags"] != "master" || m["num-slaves"] != "2" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("sentinel %s sees the primary as %q with %s replicas and %s other sentinels",
					n.addr, m["flags"], m["num-slaves"], m["num-other-sentinels"])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: Sentinels not ready within 30s: %v", err)
	}
	s.Client = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Master, SentinelAddrs: s.SentinelAddrs()})
	return s
}

// SentinelAddrs are the Sentinels' host:port addresses.
func (s *RedisSentinel) SentinelAddrs() []string {
	out := make([]string, len(s.sentinels))
	for i, n := range s.sentinels {
		out[i] = n.addr
	}
	return out
}

// SentinelURL is a redis:// URL of one Sentinel: what an operator who mistook
// it for the server would put in REDIS_URL.
func (s *RedisSentinel) SentinelURL() string { return "redis://" + s.sentinels[0].addr + "/0" }

// Primary asks a Sentinel which node is the primary now.
func (s *RedisSentinel) Primary(ctx context.Context) (string, error) {
	var lastErr error
	for _, n := range s.sentinels {
		if !n.running() {
			continue
		}
		sc := redis.NewSentinelClient(&redis.Options{Addr: n.addr})
		hp, err := sc.GetMasterAddrByName(ctx, s.Master).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("no Sentinel names the primary: %v", lastErr)
}

// primaryNow is [RedisSentinel.Primary], failing the test when no Sentinel names one.
func (s *RedisSentinel) primaryNow(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := s.Primary(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return addr
}

// KillPrimary kills (SIGKILL) the current primary and returns its address.
func (s *RedisSentinel) KillPrimary(t testing.TB) string {
	t.Helper()
	addr := s.primaryNow(t)
	for _, n := range s.data {
		if n.addr == addr {
			n.kill()
			return addr
		}
	}
	t.Fatalf("testenv: the primary %s is none of the data nodes", addr)
	return ""
}

// ReplicaClients are plain clients of every data node that is not the primary
// now, closed when the test ends.
func (s *RedisSentinel) ReplicaClients(t testing.TB) []*redis.Client {
	t.Helper()
	primary := s.primaryNow(t)
	var out []*redis.Client
	for _, n := range s.data {
		if n.addr != primary && n.running() {
			c := n.client()
			t.Cleanup(func() { _ = c.Close() })
			out = append(out, c)
		}
	}
	return out
}

// FreezeReplicas suspends (SIGSTOP) every data node but the current primary,
// as stalled or cut-off replicas would be: the primary keeps them as
// connected replicas that acknowledge nothing. It returns a func that resumes
// them (also run when the test ends).
func (s *RedisSentinel) FreezeReplicas(t testing.TB) (thaw func()) {
	t.Helper()
	primary := s.primaryNow(t)
	var frozen []*redisNode
	for _, n := range s.data {
		if n.addr != primary && n.running() {
			if err := n.signal(syscall.SIGSTOP); err != nil {
				t.Fatalf("testenv: freezing replica %s: %v", n.addr, err)
			}
			frozen = append(frozen, n)
		}
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			for _, n := range frozen {
				_ = n.signal(syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}

// WaitFailover waits until the Sentinels name a primary other than old and it
// accepts writes, and returns the new primary's address.
func (s *RedisSentinel) WaitFailover(t testing.TB, old string, within time.Duration) string {
	t.Helper()
	var now string
	err := pollUntil(within, func(ctx context.Context) error {
		addr, err := s.Primary(ctx)
		if err != nil {
			return err
		}
		if addr == old {
			return fmt.Errorf("the Sentinels still name %s", old)
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		if err := c.Set(ctx, "testenv:failover", addr, time.Minute).Err(); err != nil {
			return fmt.Errorf("new primary %s: %w", addr, err)
		}
		now = addr
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: no failover within %s: %v", within, err)
	}
	return now
}

// Stop kills every process and closes the client; it is safe to call twice.
func (s *RedisSentinel) Stop() {
	if s.Client != nil {
		_ = s.Client.Close()
	}
	var wg sync.WaitGroup
	for _, n := range append(append([]*redisNode(nil), s.data...), s.sentinels...) {
		wg.Go(n.kill)
	}
	wg.Wait()
}
