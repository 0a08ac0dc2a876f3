package failover_test

import (
	"os"
	"testing"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestMain lets testenv run crashing NATS nodes as child processes of this
// test binary (BenchmarkNATSLeaderCrash).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
