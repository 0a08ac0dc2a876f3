package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/workers/mapping"
)

// natsUsers are the users of deploy/nats/nats.conf.
var natsUsers = []string{"ingress", "worker", "ops", "systems", "apps"}

// shape is orgbridge's production shape on loopback: nats-server and
// redis-server from deploy/ with their users, the emulators, one ingress and
// two workers, each its own process; and the driver's own connections (the
// ops user, the orgbridge Redis user) to count with.
type shape struct {
	cfg Config

	natsAddr, natsMon, redisAddr, ingressAddr string
	slackAddr, orgAddr, smtpAddr              string
	workerAddrs                               [2]string

	natsPasswords map[string]string
	redisPassword string
	signingSecret string

	nats, redis, emulate, ingress *proc
	workers                       [2]*proc

	nc  *nats.Conn
	js  jetstream.JetStream
	rdb *redis.Client
}

func secret() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newShape picks free loopback ports and fresh passwords and describes the
// processes; start runs them.
func newShape(cfg Config) (*shape, error) {
	s := &shape{cfg: cfg, natsPasswords: map[string]string{}, redisPassword: secret(), signingSecret: secret()}
	for _, u := range natsUsers {
		s.natsPasswords[u] = secret()
	}
	for _, a := range []*string{&s.natsAddr, &s.natsMon, &s.redisAddr, &s.ingressAddr, &s.slackAddr, &s.orgAddr, &s.smtpAddr, &s.workerAddrs[0], &s.workerAddrs[1]} {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		*a = addr
	}
	for _, d := range []string{"jetstream", "redis"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	logf := func(name string) string { return filepath.Join(cfg.Dir, name+".log") }

	// nats-server refuses a store directory both in the file and on the
	// command line: the run's copy of the production file points at its own.
	natsConf := filepath.Join(cfg.Dir, "nats.conf")
	prod, err := os.ReadFile(filepath.Join(cfg.DeployDir, "nats", "nats.conf"))
	if err != nil {
		return nil, err
	}
	const storeLine = "store_dir: /data/jetstream"
	if strings.Count(string(prod), storeLine) != 1 {
		return nil, fmt.Errorf("deploy/nats/nats.conf has no %q line to point at the run's directory", storeLine)
	}
	conf := strings.Replace(string(prod), storeLine, fmt.Sprintf("store_dir: %q", filepath.Join(cfg.Dir, "jetstream")), 1)
	if err := os.WriteFile(natsConf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// nats.conf includes the users and permissions from accounts.conf beside it.
	accounts, err := os.ReadFile(filepath.Join(cfg.DeployDir, "nats", "accounts.conf"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "accounts.conf"), accounts, 0o600); err != nil {
		return nil, err
	}
	natsEnv := append([]string(nil), base...)
	for _, u := range natsUsers {
		natsEnv = append(natsEnv, "NATS_"+strings.ToUpper(u)+"_PASSWORD="+s.natsPasswords[u])
	}
	s.nats = &proc{name: "nats-server", env: natsEnv, log: logf("nats"),
		argv:  []string{cfg.NATSServerBin, "-c", natsConf, "-a", "127.0.0.1", "-p", port(s.natsAddr), "-m", port(s.natsMon)},
		ready: httpOK("http://" + s.natsMon + "/healthz?js-enabled-only=true")}

	s.redis = &proc{name: "redis-server", log: logf("redis"),
		env: append(append([]string(nil), base...), "REDIS_PASSWORD="+s.redisPassword, "REDIS_ACL_FILE="+filepath.Join(cfg.Dir, "users.acl")),
		argv: []string{"sh", filepath.Join(cfg.DeployDir, "redis", "start.sh"),
			"--port", port(s.redisAddr), "--bind", "127.0.0.1", "--dir", filepath.Join(cfg.Dir, "redis")},
		ready: func(ctx context.Context) error {
			c := redis.NewClient(&redis.Options{Addr: s.redisAddr, Username: "orgbridge", Password: s.redisPassword, MaxRetries: -1})
			defer c.Close()
			return c.Ping(ctx).Err()
		}}

	app := append(append([]string(nil), base...),
		"SLACK_SIGNING_SECRET="+s.signingSecret,
		"ORGBRIDGE_LOG_LEVEL=warn", "ORGBRIDGE_LOG_FORMAT=json")
	s.emulate = &proc{name: "emulators", env: app, log: logf("emulators"),
		argv: []string{cfg.OrgbridgeBin, "emulate", "--slack-addr", s.slackAddr, "--org-addr", s.orgAddr, "--smtp-addr", s.smtpAddr,
			"--ingress-url", "http://" + s.ingressAddr},
		ready: httpOK("http://" + s.slackAddr + "/_emulator/world")}

	keys := make([]byte, 32)
	_, _ = rand.Read(keys)
	redisURL := (&url.URL{Scheme: "redis", User: url.UserPassword("orgbridge", s.redisPassword), Host: s.redisAddr, Path: "/0"}).String()
	svc := append(append([]string(nil), app...),
		"NATS_URL=nats://"+s.natsAddr, "REDIS_URL="+redisURL,
		"ORGBRIDGE_ENCRYPTION_KEYS=k1:"+base64.StdEncoding.EncodeToString(keys),
		"ORGBRIDGE_PUBLIC_URL=http://"+s.ingressAddr,
		"SLACK_API_URL=http://"+s.slackAddr+"/api/", "SLACK_OAUTH_URL=http://"+s.slackAddr+"/oauth/v2/authorize",
		"SLACK_CLIENT_ID=1111.2222", "SLACK_CLIENT_SECRET=emulator-client-secret", "SLACK_APP_ID=A0EMULATOR",
		"ORG_LOGIN_URL=http://"+s.orgAddr, "ORG_CLIENT_ID=orgbridge-dev", "ORG_CLIENT_SECRET=orgbridge-dev")
	s.ingress = &proc{name: "ingress", log: logf("ingress"),
		env: append(append([]string(nil), svc...), "ORGBRIDGE_HTTP_ADDR="+s.ingressAddr,
			"NATS_USER=ingress", "NATS_PASSWORD="+s.natsPasswords["ingress"],
			"NATS_ADMIN_USER=ops", "NATS_ADMIN_PASSWORD="+s.natsPasswords["ops"]),
		argv:  []string{cfg.OrgbridgeBin, "ingress"},
		ready: httpOK("http://" + s.ingressAddr + "/readyz")}
	for i := range s.workers {
		s.workers[i] = &proc{name: fmt.Sprintf("worker %d", i+1), log: logf(fmt.Sprintf("worker%d", i+1)),
			env: append(append([]string(nil), svc...), "ORGBRIDGE_METRICS_ADDR="+s.workerAddrs[i],
				"NATS_USER=worker", "NATS_PASSWORD="+s.natsPasswords["worker"]),
			argv:  []string{cfg.OrgbridgeBin, "worker"},
			ready: httpOK("http://" + s.workerAddrs[i] + "/healthz")}
	}
	return s, nil
}

// procs lists every process, in start order.
func (s *shape) procs() []*proc {
	return []*proc{s.nats, s.redis, s.emulate, s.ingress, s.workers[0], s.workers[1]}
}

// start runs every process, connects the driver and waits for the workers'
// consumers.
func (s *shape) start(ctx context.Context) error {
	for _, p := range s.procs() {
		if err := p.start(ctx); err != nil {
			return err
		}
	}
	var err error
	s.nc, err = nats.Connect("nats://"+s.natsAddr, nats.Name("orgbridge-chaos"),
		nats.UserInfo("ops", s.natsPasswords["ops"]), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connecting to NATS as ops: %w", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return err
	}
	s.rdb = redis.NewClient(&redis.Options{Addr: s.redisAddr, Username: "orgbridge", Password: s.redisPassword})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return poll(wctx, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := s.js.Consumer(ctx, "SLACK", mapping.DurableSlackUsers)
		return err
	})
}

// down names the processes that are not running or do not answer.
func (s *shape) down(ctx context.Context) []string {
	var out []string
	for _, p := range s.procs() {
		if !p.running() {
			out = append(out, p.name)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := poll(rctx, 100*time.Millisecond, p.ready); err != nil {
			out = append(out, p.name+" ("+err.Error()+")")
		}
		cancel()
	}
	return out
}

// close ends the driver's connections and every process, by pid.
func (s *shape) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	procs := s.procs()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
}
