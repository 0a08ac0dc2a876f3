package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestReplicasMeasuresEveryPhase checks the benchmark's machinery, not speed,
// on one server with R1 streams: the flat-out phase gets answers, every event
// of the paced phase is sent and answered 200, and the worker acts on each one
// of them exactly as often as the report counts. It runs twice on the same
// servers, as the benchmark's rounds do: the second run's events must not be
// taken for the first's.
func TestReplicasMeasuresEveryPhase(t *testing.T) {
	n := testenv.StartNATS(t)
	r := testenv.StartRedis(t)
	for round := 1; round <= 2; round++ {
		var progress strings.Builder
		rep, err := Replicas(context.Background(), ReplicasOptions{
			NATSURL: n.URL, Replicas: 1, Redis: r.Client, Concurrency: 4,
			Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
			Rate: 200, RateFor: time.Second, Progress: &progress,
		})
		if err != nil {
			t.Fatal(err)
		}
		checkReplicasReport(t, round, rep, progress.String())
	}
}

func checkReplicasReport(t *testing.T, round int, rep ReplicasReport, progress string) {
	t.Helper()
	t.Logf("round %d:\n%s\n%s\n%s", round, rep.Throughput, rep.Acks, rep.Effects)
	if rep.Throughput.Requests == 0 || rep.Throughput.Errors != 0 {
		t.Fatalf("flat-out phase: %s", rep.Throughput)
	}
	if rep.Sent != 200 || rep.Acks.Requests != 200 || rep.Acks.Errors != 0 {
		t.Fatalf("paced phase: sent %d; %s", rep.Sent, rep.Acks)
	}
	if rep.Missing != 0 || rep.Effects.Requests != 200 || rep.Effects.P99 <= 0 || rep.Effects.Max < rep.Effects.P50 {
		t.Fatalf("effects: %d missing; %s", rep.Missing, rep.Effects)
	}
	if !strings.Contains(progress, "event → effect R1") {
		t.Fatalf("no progress output:\n%s", progress)
	}
}

// BenchmarkReplicas runs the ingress and a worker on a three-node NATS
// cluster (each node its own process) with every stream at one replica, then
// at three, twice in turn so a disturbance hits both alike, and logs both
// phases of each. Run it with
//
//	go test -run '^$' -bench Replicas -benchtime 1x ./internal/bench
func BenchmarkReplicas(b *testing.B) {
	c := testenv.StartNATSClusterProcesses(b)
	r := testenv.StartRedis(b)
	for range b.N {
		var reports []ReplicasReport
		for _, replicas := range []int{1, 3, 1, 3} {
			rep, err := Replicas(context.Background(), ReplicasOptions{NATSURL: c.URLs(), Replicas: replicas, Redis: r.Client, Progress: os.Stderr})
			if err != nil {
				b.Fatal(err)
			}
			if rep.Missing > 0 {
				b.Fatalf("R%d: %d acknowledged events never reached the worker", replicas, rep.Missing)
			}
			reports = append(reports, rep)
		}
		for _, rep := range reports {
			b.Logf("\n%s\n%s\n%s", rep.Throughput, rep.Acks, rep.Effects)
		}
		for i, rep := range reports[2:] {
			suffix := "-R" + map[int]string{0: "1", 1: "3"}[i]
			b.ReportMetric(rep.Throughput.PerSecond(), "events/s"+suffix)
			b.ReportMetric(float64(rep.Throughput.P99.Microseconds())/1000, "ms-p99-flat"+suffix)
			b.ReportMetric(float64(rep.Acks.P99.Microseconds())/1000, "ms-p99-ack-1k"+suffix)
			b.ReportMetric(float64(rep.Effects.P99.Microseconds())/1000, "ms-p99-effect-1k"+suffix)
		}
	}
}
