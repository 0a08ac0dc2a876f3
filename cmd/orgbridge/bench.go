package main

import (
	"context"
	"fmt"
	"time"

	"github.com/orgbridge/orgbridge/internal/bench"
)

func runBench(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 && args[0] == "provisioning" {
		return runBenchProvisioning(ctx, c, args[1:])
	}
	if len(args) == 0 || args[0] != "ingress" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(c.stderr, "Usage: orgbridge bench ingress|provisioning [flags]\n\nRun `orgbridge bench ingress --help` or `orgbridge bench provisioning --help` for their flags.")
			return errHelp
		}
		return usagef("usage: orgbridge bench ingress|provisioning [flags] (the package benchmarks are `go test -bench`, see docs/BENCHMARKS.md)")
	}
	var opts bench.IngressOptions
	fs := newFlags(c, "bench ingress", "[flags]\n\nLoads, in turn and with the same generator: a do-nothing HTTP server (the HTTP floor),\n"+
		"the ingress (signature check + JetStream publish + ack), and bare JetStream publishing;\n"+
		"prints events/s, p50/p99 ack latency and the ingress's ratio to both ceilings.",
		envVar{"SLACK_SIGNING_SECRET", "signing secret of the ingress given with --target"})
	fs.IntVar(&opts.Concurrency, "concurrency", 64, "concurrent senders")
	fs.DurationVar(&opts.Duration, "duration", 5*time.Second, "measured time per phase")
	fs.DurationVar(&opts.Warmup, "warmup", 2*time.Second, "unmeasured warm-up per phase")
	fs.IntVar(&opts.Rounds, "rounds", 3, "rounds of the three phases, interleaved; the median round is reported")
	fs.IntVar(&opts.PayloadBytes, "payload", 600, "size of each signed event in bytes")
	fs.StringVar(&opts.Target, "target", "", "URL of a running ingress's /slack/events to load instead of an in-process one")
	conns := fs.String("conns", "both", "how senders connect: reuse (keep-alive), new (a connection per request, as many webhook senders do) or both")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the ingress phase to this file")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if opts.Concurrency < 1 || opts.Duration <= 0 || opts.PayloadBytes < 200 || opts.Rounds < 1 {
		return usagef("--concurrency and --rounds must be ≥ 1, --duration > 0 and --payload ≥ 200")
	}
	if opts.Target != "" {
		opts.Secret = c.getenv("SLACK_SIGNING_SECRET")
		if opts.Secret == "" {
			return usagef("SLACK_SIGNING_SECRET: is required with --target (the running ingress's signing secret)")
		}
	}
	var modes []bool
	switch *conns {
	case "reuse":
		modes = []bool{false}
	case "new":
		modes = []bool{true}
	case "both":
		modes = []bool{false, true}
	default:
		return usagef("--conns: %q is not reuse, new or both", *conns)
	}
	opts.Progress = c.stderr
	for _, newConn := range modes {
		opts.NewConnEach = newConn
		rep, err := bench.Ingress(ctx, opts)
		if err != nil {
			return err
		}
		printIngressReport(c, rep)
	}
	return nil
}

func printIngressReport(c *cli, rep bench.IngressReport) {
	opts := rep.Options
	conns := "keep-alive connections"
	if opts.NewConnEach {
		conns = "a new connection per request"
	}
	fmt.Fprintf(c.stdout, "\ningress benchmark: %d senders, %d-byte signed events, %s, %s per phase, median of %d rounds\n",
		opts.Concurrency, opts.PayloadBytes, conns, opts.Duration, len(rep.Rounds))
	for i, r := range rep.Rounds {
		fmt.Fprintf(c.stdout, "  round %d: ingress/HTTP %.2f, ingress/publish %.2f\n", i+1, r.RatioToHTTP(), r.RatioToPublish())
	}
	fmt.Fprintln(c.stdout, rep.HTTPFloor)
	fmt.Fprintln(c.stdout, rep.Ingress)
	fmt.Fprintln(c.stdout, rep.BarePublish)
	fmt.Fprintf(c.stdout, "ingress / HTTP floor:   %.2f (target ≥ 0.80)\n", rep.RatioToHTTP())
	fmt.Fprintf(c.stdout, "ingress / bare publish: %.2f\n", rep.RatioToPublish())
}
