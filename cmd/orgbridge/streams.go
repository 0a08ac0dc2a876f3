package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/orgbridge/orgbridge/internal/ops"
)

// runStreams prints every stream with its size and sequences, then every
// consumer with what it still has to do.
func runStreams(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "streams", "[--json] [--nats-url URL]", natsURLEnv)
	natsURL := natsURLFlag(fs, c)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q; streams takes flags only", fs.Arg(0))
	}
	nc, js, err := connectJetStream(ctx, c, *natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()

	streams, err := ops.ListStreams(ctx, js)
	if err != nil {
		return err
	}
	if *asJSON {
		if streams == nil {
			streams = []ops.StreamStatus{}
		}
		return writeJSON(c.stdout, streams)
	}
	if len(streams) == 0 {
		fmt.Fprintln(c.stdout, "No streams. The ingress, the workers and `orgbridge dev` create them at start.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tFIRST SEQ\tFIRST TIME\tLAST SEQ\tLAST TIME\tCONSUMERS")
	for _, s := range streams {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%s\t%d\n", s.Name, s.Messages, fmtBytes(s.Bytes),
			s.FirstSeq, fmtTime(s.FirstTime), s.LastSeq, fmtTime(s.LastTime), len(s.Consumers))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tFILTER\tPENDING\tACK PENDING\tREDELIVERED\tLAST ACTIVE")
	for _, s := range streams {
		for _, cs := range s.Consumers {
			filter := strings.Join(cs.Filter, ",")
			if filter == "" {
				filter = "(all)"
			}
			last := "-"
			if cs.LastActive != nil {
				last = fmtTime(*cs.LastActive)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, cs.Name, filter, cs.Pending, cs.AckPending, cs.Redelivered, last)
		}
	}
	return tw.Flush()
}

// fmtBytes prints a byte count with a binary unit.
func fmtBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
