package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ProductionRedis is a redis-server started the way production starts it:
// deploy/redis/start.sh with deploy/redis/redis.conf and its ACL users, on a
// free loopback port with persistence off. Client is the orgbridge user.
type ProductionRedis struct {
	Addr string
	// Password is the orgbridge user's.
	Password string
	Client   *redis.Client
	dir      string
}

// ProductionRedisUser is the ACL user orgbridge connects as.
const ProductionRedisUser = "orgbridge"

// URL is the REDIS_URL of the orgbridge user.
func (r *ProductionRedis) URL() string {
	return (&url.URL{Scheme: "redis", User: url.UserPassword(ProductionRedisUser, r.Password), Host: r.Addr, Path: "/0"}).String()
}

// DeployDir is the repository's deploy/ directory, found from this file's
// location so tests in any package can read the production configs.
func DeployDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate the source tree")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy")
}

// StartProductionRedis starts redis-server through deploy/redis/start.sh with
// a fresh random password and stops it when the test ends. Like [StartRedis]
// it fails (never skips) without redis-server.
func StartProductionRedis(t testing.TB) *ProductionRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testenv: redis-server is not installed (run `make test`, or `apt-get install -y redis-server`): %v", err)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	r := &ProductionRedis{Password: hex.EncodeToString(raw[:]), dir: t.TempDir()}
	script := filepath.Join(DeployDir(t), "redis", "start.sh")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			t.Fatalf("testenv: finding a free port: %v", err)
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command("sh", script,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", r.dir,
			"--appendonly", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
		cmd.Env = append(os.Environ(), "REDIS_PASSWORD="+r.Password, "REDIS_ACL_FILE="+filepath.Join(r.dir, "users.acl"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("testenv: starting %s: %v", script, err)
		}
		p := &redisProc{cmd: cmd, exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(p.exited) }()
		r.Client = redis.NewClient(&redis.Options{Addr: r.Addr, Username: ProductionRedisUser, Password: r.Password})
		if lastErr = waitRedis(r.Client, p.exited, 10*time.Second); lastErr != nil {
			p.kill()
			_ = r.Client.Close()
			continue // most likely the port was taken between FreePort and bind
		}
		t.Cleanup(func() {
			_ = r.Client.Close()
			p.kill()
		})
		return r
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	t.Fatalf("testenv: %s did not start redis-server: %v\n%s", script, lastErr, log)
	return nil
}
