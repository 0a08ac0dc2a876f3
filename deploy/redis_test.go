package deploy_test

import (
	"context"
	"crypto/rand"
	"errors"
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

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestRedisSentinelScripts runs deploy/redis's Sentinel shape on loopback:
// three data nodes from node.sh (through start.sh and its ACL users) and
// three Sentinels from sentinel.sh, everything authenticated. It checks that
// orgbridge's user reaches the primary through the Sentinels, that a client
// without the passwords is refused, that the Sentinels fail over when the
// primary is killed (their `sentinel` user may reconfigure the nodes, the
// replicas' `replica` user may replicate), and that the old primary, started
// again by node.sh, rejoins as a replica of the new one.
func TestRedisSentinelScripts(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (run `make test`, or `apt-get install -y redis-server`): %v", err)
	}
	rs := startSentinelShape(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: rs.master, SentinelAddrs: rs.sentinelAddrs(), SentinelPassword: rs.sentinelPassword,
		Username: "orgbridge", Password: rs.password,
	})
	defer client.Close()
	if err := client.Set(ctx, "ob:{T1}:before", "1", 0).Err(); err != nil {
		t.Fatalf("orgbridge writing through the Sentinels: %v", err)
	}
	// The writes that must survive a failover: orgbridge's user counts the
	// primary's replicas (INFO) and waits for one (WAIT), which the replicas'
	// user acknowledges.
	testenv.Eventually(t, 20*time.Second, func() bool {
		rep, err := store.Replicated(ctx, client, "ob:{T1}:rotated", 5*time.Second, func(c redis.Cmdable) error {
			return c.Set(ctx, "ob:{T1}:rotated", "token", 0).Err()
		})
		return err == nil && rep.Replicas == 2 && rep.Acked >= 1
	}, "orgbridge's user could not count the replicas or no replica acknowledged its write")

	for _, c := range []struct {
		name string
		opts *redis.Options
	}{
		{"Sentinel without password", &redis.Options{Addr: rs.sentinels[0].addr}},
		{"Sentinel with a wrong password", &redis.Options{Addr: rs.sentinels[0].addr, Password: "wrong"}},
		{"data node without user", &redis.Options{Addr: rs.nodes[0].addr}},
		{"data node as sentinel with a wrong password", &redis.Options{Addr: rs.nodes[0].addr, Username: "sentinel", Password: "wrong"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.MaxRetries = -1
			rc := redis.NewClient(c.opts)
			defer rc.Close()
			if err := rc.Do(ctx, "sentinel", "get-master-addr-by-name", rs.master).Err(); err == nil {
				t.Fatal("answered without the right password")
			}
		})
	}

	old := rs.primary(ctx, t)
	if old != rs.nodes[0].addr {
		t.Fatalf("the Sentinels name %s as the first primary; want %s (REDIS_PRIMARY)", old, rs.nodes[0].addr)
	}
	rs.nodes[0].kill()
	var now string
	err := poll(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if now = rs.primary(ctx, t); now == old || now == "" {
			return fmt.Errorf("the Sentinels still name %q", now)
		}
		return client.Set(ctx, "ob:{T1}:after", "1", 0).Err()
	})
	if err != nil {
		t.Fatalf("no failover from the killed primary: %v\n%s", err, rs.logs())
	}
	if v, err := client.Get(ctx, "ob:{T1}:before").Result(); err != nil || v != "1" {
		t.Errorf("a key written before the failover reads %q, %v on the new primary", v, err)
	}

	// node.sh asks the Sentinels: the old primary comes back as a replica from
	// its first answer on, never as a second primary (the Sentinels would
	// convert one later, after it took writes).
	rs.nodes[0].start(t)
	restarted := rs.nodes[0].admin(rs.adminPassword)
	defer restarted.Close()
	if role, err := restarted.Do(ctx, "role").Slice(); err != nil || len(role) == 0 || role[0] != "slave" {
		t.Fatalf("the old primary started again answers ROLE %v, %v; want a replica at once", role, err)
	}
	err = poll(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		role, err := restarted.Do(ctx, "role").Slice()
		if err != nil {
			return err
		}
		if len(role) < 4 || role[0] != "slave" || net.JoinHostPort(fmt.Sprint(role[1]), fmt.Sprint(role[2])) != now || role[3] != "connected" {
			return fmt.Errorf("the restarted node's role is %v; want a connected replica of %s", role, now)
		}
		v, err := restarted.Get(ctx, "ob:{T1}:after").Result()
		if err != nil || v != "1" {
			return fmt.Errorf("the restarted node reads ob:{T1}:after as %q, %v", v, err)
		}
		return rs.sentinelsAgree(ctx, now, 2)
	})
	if err != nil {
		t.Fatalf("the old primary did not rejoin as a replica: %v\n%s", err, rs.logs())
	}
}

// sentinelShape is three data nodes and three Sentinels started by
// deploy/redis's scripts on loopback.
type sentinelShape struct {
	master                                                     string
	password, replicaPassword, sentinelPassword, adminPassword string
	nodes, sentinels                                           []*scriptProc
}

func startSentinelShape(t *testing.T) *sentinelShape {
	t.Helper()
	// A port found free can be taken by another test before its server binds
	// it: then all six start again on fresh ports.
	for attempt := 1; ; attempt++ {
		rs, err := trySentinelShape(t)
		if err == nil {
			return rs
		}
		if attempt == 3 {
			t.Fatalf("%v (3 tries on fresh ports)", err)
		}
	}
}

func trySentinelShape(t *testing.T) (*sentinelShape, error) {
	t.Helper()
	dir := t.TempDir()
	rs := &sentinelShape{master: "orgbridge", password: hexSecret(), replicaPassword: hexSecret(),
		sentinelPassword: hexSecret(), adminPassword: hexSecret()}
	ports := make([]int, 6)
	for i := range ports {
		p, err := testenv.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	sentinelAddrs := strings.Join([]string{addr(ports[3]), addr(ports[4]), addr(ports[5])}, ",")
	redisDir := filepath.Join(testenv.DeployDir(t), "redis")
	for i := range 3 {
		d := filepath.Join(dir, "node"+strconv.Itoa(i))
		n := &scriptProc{addr: addr(ports[i]), dir: d,
			argv: []string{"sh", filepath.Join(redisDir, "node.sh"), "--port", strconv.Itoa(ports[i]), "--bind", "127.0.0.1",
				"--dir", d, "--appendonly", "no", "--logfile", filepath.Join(d, "redis.log"),
				"--repl-diskless-sync-delay", "0"}, // a replica syncs at once, not after 5s
			env: []string{"REDIS_PASSWORD=" + rs.password, "REDIS_REPLICA_PASSWORD=" + rs.replicaPassword,
				"REDIS_SENTINEL_PASSWORD=" + rs.sentinelPassword, "REDIS_ADMIN_PASSWORD=" + rs.adminPassword,
				"REDIS_ACL_FILE=" + filepath.Join(d, "users.acl"), "REDIS_ANNOUNCE=" + addr(ports[i]),
				"REDIS_PRIMARY=" + addr(ports[0]), "REDIS_SENTINEL_ADDRS=" + sentinelAddrs},
			ready: func(n *scriptProc) *redis.Client { return n.admin(rs.adminPassword) }}
		rs.nodes = append(rs.nodes, n)
	}
	for i := 3; i < 6; i++ {
		d := filepath.Join(dir, "sentinel"+strconv.Itoa(i-3))
		n := &scriptProc{addr: addr(ports[i]), dir: d,
			argv: []string{"sh", filepath.Join(redisDir, "sentinel.sh"), "--bind", "127.0.0.1",
				"--dir", d, "--logfile", filepath.Join(d, "redis.log")},
			env: []string{"REDIS_SENTINEL_PASSWORD=" + rs.sentinelPassword, "REDIS_ANNOUNCE=" + addr(ports[i]),
				"REDIS_PRIMARY=" + addr(ports[0]), "REDIS_SENTINEL_ADDRS=" + sentinelAddrs,
				"REDIS_SENTINEL_CONF=" + filepath.Join(d, "sentinel.conf"),
				"REDIS_SENTINEL_DOWN_AFTER_MS=1000"}, // the test's patience, not production's 5 s
			ready: func(n *scriptProc) *redis.Client {
				return redis.NewClient(&redis.Options{Addr: n.addr, Password: rs.sentinelPassword, MaxRetries: -1})
			}}
		rs.sentinels = append(rs.sentinels, n)
	}
	all := append(append([]*scriptProc(nil), rs.nodes...), rs.sentinels...)
	for _, n := range all {
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.kill)
		if err := n.tryStart(); err != nil {
			for _, started := range all {
				started.kill()
			}
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := poll(30*time.Second, func() error { return rs.sentinelsAgree(ctx, rs.nodes[0].addr, 2) }); err != nil {
		t.Fatalf("the Sentinels do not see the primary, its replicas and each other: %v\n%s", err, rs.logs())
	}
	return rs, nil
}

// sentinelsAgree says why not every Sentinel sees primary as the primary
// with replicas replicas and the other two Sentinels.
func (rs *sentinelShape) sentinelsAgree(ctx context.Context, primary string, replicas int) error {
	for _, s := range rs.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr, Password: rs.sentinelPassword})
		m, err := sc.Master(ctx, rs.master).Result()
		sc.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", s.addr, err)
		}
		if net.JoinHostPort(m["ip"], m["port"]) != primary || m["flags"] != "master" ||
			m["num-slaves"] != strconv.Itoa(replicas) || m["num-other-sentinels"] != "2" {
			return fmt.Errorf("sentinel %s sees %s:%s (%s) with %s replicas and %s other sentinels", s.addr,
				m["ip"], m["port"], m["flags"], m["num-slaves"], m["num-other-sentinels"])
		}
	}
	return nil
}

// primary is the primary the first answering Sentinel names.
func (rs *sentinelShape) primary(ctx context.Context, t *testing.T) string {
	t.Helper()
	for _, s := range rs.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr, Password: rs.sentinelPassword})
		hp, err := sc.GetMasterAddrByName(ctx, rs.master).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1])
		}
	}
	return ""
}

func (rs *sentinelShape) sentinelAddrs() []string {
	var out []string
	for _, s := range rs.sentinels {
		out = append(out, s.addr)
	}
	return out
}

func (rs *sentinelShape) logs() string {
	var b strings.Builder
	for _, n := range append(append([]*scriptProc(nil), rs.nodes...), rs.sentinels...) {
		log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
		fmt.Fprintf(&b, "--- %s (%s)\n%s", n.addr, filepath.Base(n.dir), log)
	}
	return b.String()
}

// scriptProc is a redis-server started by one of deploy/redis's scripts.
type scriptProc struct {
	addr, dir string
	argv, env []string
	ready     func(*scriptProc) *redis.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *scriptProc) admin(password string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: p.addr, Username: "admin", Password: password, MaxRetries: -1})
}

// start runs the script and waits until its server answers PING.
func (p *scriptProc) start(t *testing.T) {
	t.Helper()
	if err := p.tryStart(); err != nil {
		t.Fatal(err)
	}
}

// tryStart starts the script and waits until its server answers.
func (p *scriptProc) tryStart() error {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stderr = &lockedBuffer{}
	// A test binary that dies without its cleanups takes its servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %v: %w", p.argv, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	c := p.ready(p)
	defer c.Close()
	err := poll(10*time.Second, func() error {
		select {
		case <-exited:
			return errors.New("exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
		return fmt.Errorf("%s (%s) not answering: %w\nstderr: %s\n%s", p.argv[1], p.addr, err, cmd.Stderr, log)
	}
	return nil
}

// kill stops the server with SIGKILL, as a crash would; safe to call twice.
func (p *scriptProc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func hexSecret() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	return fmt.Sprintf("%x", raw)
}
