package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ProductionNATSUsers are the users of deploy/nats/nats.conf, one per role.
var ProductionNATSUsers = []string{"ingress", "worker", "ops", "systems", "apps"}

// ProductionNATS is an in-process NATS server running deploy/nats/nats.conf
// (its accounts, users and permissions) on a free loopback port with a
// temporary store; each user has a fresh random password.
type ProductionNATS struct {
	Server    *server.Server
	URL       string
	passwords map[string]string
}

// Password is user's password.
func (n *ProductionNATS) Password(user string) string { return n.passwords[user] }

// PasswordEnv is the variable deploy/nats/nats.conf reads user's password from.
func PasswordEnv(user string) string { return "NATS_" + strings.ToUpper(user) + "_PASSWORD" }

// StartProductionNATS loads deploy/nats/nats.conf with a password per user in
// the environment (so its tests cannot run in parallel), moves the listener,
// store and monitoring out of the way, starts the server and stops it when
// the test ends.
func StartProductionNATS(t *testing.T) *ProductionNATS {
	t.Helper()
	n := &ProductionNATS{passwords: map[string]string{}}
	for _, u := range ProductionNATSUsers {
		var raw [16]byte
		_, _ = rand.Read(raw[:])
		n.passwords[u] = hex.EncodeToString(raw[:])
		t.Setenv(PasswordEnv(u), n.passwords[u])
	}
	conf := filepath.Join(DeployDir(t), "nats", "nats.conf")
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("testenv: %s: %v", conf, err)
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("testenv: NATS server from %s: %v", conf, err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("testenv: NATS server from %s not ready within 10s", conf)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	n.Server, n.URL = s, s.ClientURL()
	return n
}
