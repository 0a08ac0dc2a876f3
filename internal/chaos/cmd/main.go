// Command cmd runs orgbridge's reliability suite (internal/chaos): `make chaos`,
// or `go run ./internal/chaos/cmd` after `make build` and building nats-server.
// It prints a table of sent / acked / stored / processed / dead-lettered /
// duplicates per fault and exits 1 when any fault lost or repeated something,
// left a consumer stuck or dead-lettered what an outage caused.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/orgbridge/orgbridge/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx))
}

func run(ctx context.Context) int {
	var cfg chaos.Config
	var faults string
	var keep bool
	flag.StringVar(&cfg.OrgbridgeBin, "orgbridge", "bin/orgbridge", "the orgbridge binary")
	flag.StringVar(&cfg.NATSServerBin, "nats-server", "bin/nats-server", "the nats-server binary")
	flag.StringVar(&cfg.DeployDir, "deploy", "deploy", "the repository's deploy directory (nats.conf, redis.conf, start.sh)")
	flag.StringVar(&cfg.Dir, "dir", "", "where data and logs go (default: a new temporary directory, removed after a passing run)")
	flag.IntVar(&cfg.Rate, "rate", 300, "signed events per second")
	flag.DurationVar(&cfg.Duration, "duration", 20*time.Second, "load per fault (longer when the fault outlasts it)")
	flag.DurationVar(&cfg.FaultAt, "fault-at", 5*time.Second, "when in the load each fault starts")
	flag.Float64Var(&cfg.TimeScale, "time-scale", 12, "Slack's retry schedule (0 s, 1 min, 5 min) runs this many times faster")
	flag.DurationVar(&cfg.Settle, "settle", 90*time.Second, "how long consumers may take to catch up before they count as stuck")
	flag.StringVar(&faults, "faults", "", "comma-separated faults to run (default all: "+strings.Join(chaos.Faults(), ", ")+")")
	flag.BoolVar(&keep, "keep", false, "keep the data and logs directory")
	flag.Parse()
	for _, f := range strings.Split(faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Faults = append(cfg.Faults, f)
		}
	}
	for _, p := range []*string{&cfg.OrgbridgeBin, &cfg.NATSServerBin, &cfg.DeployDir} {
		if _, err := os.Stat(*p); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: %v (run it with `make chaos`, which builds what it needs)\n", err)
			return 2
		}
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "orgbridge-chaos-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
			return 1
		}
		cfg.Dir = dir
	}
	cfg.Progress = os.Stderr
	start := time.Now()
	rows, err := chaos.Run(ctx, cfg)
	fmt.Printf("\norgbridge chaos: %d events/s, %s per fault, Slack's retries %g× faster, %s in all\n\n",
		cfg.Rate, cfg.Duration, cfg.TimeScale, time.Since(start).Round(time.Second))
	_ = chaos.WriteTable(os.Stdout, rows)
	failed := err != nil
	for _, r := range rows {
		failed = failed || !r.OK()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
	}
	if failed || keep {
		fmt.Fprintf(os.Stderr, "data and logs kept in %s\n", cfg.Dir)
	} else {
		_ = os.RemoveAll(cfg.Dir)
	}
	if failed {
		return 1
	}
	return 0
}
