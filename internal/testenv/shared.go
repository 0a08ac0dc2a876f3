package testenv

import (
	"os"
	"sync"
	"testing"
)

// shared holds the servers a package's tests share: started by the first test
// that asks, stopped by [Main] after the last.
var shared struct {
	sync.Mutex
	inMain  bool
	dir     string
	cluster *RedisCluster
	err     error
}

// Main runs a package's tests, then stops the servers they shared
// ([SharedRedisCluster]); in a child process of [StartNATSClusterProcesses]
// it runs a NATS node instead. A package whose tests use either calls it
// from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M) int {
	if spec := os.Getenv(natsNodeEnv); spec != "" {
		return runNATSNode(spec) // a child process of StartNATSClusterProcesses
	}
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// SharedRedisCluster is the package's six-node Redis Cluster
// ([StartRedisCluster]), started by the first test that asks and emptied
// (FLUSHALL) for every caller, so tests that run one after another do not see
// each other's keys. Starting a cluster takes a few seconds; sharing it keeps
// a package's tests fast. Tests that kill nodes start their own cluster. The
// package's TestMain must call [Main].
func SharedRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.inMain {
		t.Fatal("testenv: SharedRedisCluster needs the package's TestMain to call testenv.Main, which stops the cluster after the tests")
	}
	if shared.cluster == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "orgbridge-redis-cluster-")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		shared.dir = dir
		shared.cluster, shared.err = startRedisCluster(t, dir)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	shared.cluster.Flush(t)
	return shared.cluster
}
