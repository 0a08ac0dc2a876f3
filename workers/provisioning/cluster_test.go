package provisioning_test

import (
	"os"
	"testing"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// onCluster makes newEnv keep the worker's state on the package's six-node
// Redis Cluster instead of a single server; TestOnRedisCluster sets it.
var onCluster bool

// TestOnRedisCluster runs the worker's main scenarios against a Redis Cluster
// (three primaries, three replicas): every key a script or transaction
// touches together must share a slot, or the cluster answers CROSSSLOT.
func TestOnRedisCluster(t *testing.T) {
	onCluster = true
	t.Cleanup(func() { onCluster = false })
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{name: "first sync, then a sync that changes nothing", run: TestFirstSyncAndNoChangeSync},
		{name: "connect rules", run: TestConnectRules},
		{name: "people change in Slack", run: TestPeopleChangeInSlack},
		{name: "teams", run: TestTeams},
		{name: "a killed run resumes", run: TestKilledRunResumes},
		{name: "a schedule fires once per slot", run: TestScheduleOncePerSlot},
		{name: "disconnect keeps the data", run: TestDisconnectKeepsData},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}
