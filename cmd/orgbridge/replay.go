package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/ops"
)

const replayUsage = "--stream NAME (--since DURATION|RFC3339 | --from-seq N) [--to-seq N] [--subject FILTER] [--consumer NAME] [--dry-run] [--json] [--nats-url URL]"

// runReplay re-delivers a range of a stream to the workers; see [ops.Replay].
func runReplay(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "replay", replayUsage, natsURLEnv)
	natsURL := natsURLFlag(fs, c)
	stream := fs.String("stream", "", "stream to replay, such as SLACK (required; not DLQ: re-drive dead letters with `orgbridge dlq redrive`)")
	since := fs.String("since", "", "start at messages stored since this long ago (90m, 2h, 3d) or since this RFC 3339 time")
	fromSeq := fs.Uint64("from-seq", 0, "start at this stream sequence")
	toSeq := fs.Uint64("to-seq", 0, "end at this stream sequence (default: the stream's last sequence when the replay starts)")
	subject := fs.String("subject", "", "replay only these subjects, comma-separated, wildcards allowed (default: the consumer's filter with --consumer, else all; DISCONNECT: "+ops.DisconnectRequestSubjects+" only)")
	consumer := fs.String("consumer", "", "durable consumer the copies are for; other consumers skip them")
	dryRun := fs.Bool("dry-run", false, "count what would be replayed and publish nothing")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q; replay takes flags only", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *stream == "":
		return usagef("--stream is required (SLACK, ORG, DISCONNECT, PROVISIONING, APP); `orgbridge streams` lists them")
	case strings.EqualFold(*stream, events.StreamDLQ):
		return usagef("--stream %s: %v", *stream, ops.ErrReplayDLQ)
	case set["since"] == set["from-seq"]:
		return usagef("give exactly one of --since and --from-seq to say where the replay starts")
	case set["from-seq"] && *fromSeq == 0:
		return usagef("--from-seq starts at 1")
	case set["to-seq"] && *toSeq == 0:
		return usagef("--to-seq must be at least 1")
	}
	cfg := ops.ReplayConfig{
		Stream:   *stream,
		FromSeq:  *fromSeq,
		ToSeq:    *toSeq,
		Subjects: splitList(*subject),
		Consumer: *consumer,
		DryRun:   *dryRun,
	}
	if set["since"] {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return usagef("--since: %v", err)
		}
		cfg.Since = t
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}

	nc, js, err := connectJetStream(ctx, c, *natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()

	sum, err := ops.Replay(ctx, js, cfg, c.stderr)
	if sum != nil {
		if *asJSON {
			if werr := writeJSON(c.stdout, sum); werr != nil && err == nil {
				err = werr
			}
		} else {
			printReplaySummary(c.stdout, sum)
		}
	}
	if errors.Is(err, context.Canceled) && sum != nil {
		return fmt.Errorf("interrupted after %d messages; the summary above shows what was done, and running the same replay again skips what was already published", sum.Read)
	}
	return err
}

// parseSince reads --since: a duration back from now (Go syntax, plus a "d"
// suffix for days) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := parseAgo(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q is not a positive duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (90m, 2h, 3d) nor an RFC 3339 time (2026-03-01T12:00:00Z)", s)
}

func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

func printReplaySummary(w io.Writer, s *ops.ReplaySummary) {
	target := "all consumers"
	if s.Consumer != "" {
		target = "consumer " + s.Consumer
	}
	filter := ""
	if len(s.Subjects) > 0 {
		filter = " on " + strings.Join(s.Subjects, ",")
	}
	switch {
	case s.Read == 0:
		fmt.Fprintf(w, "Nothing to replay in %s%s up to seq %d.\n", s.Stream, filter, s.EndSeq)
		return
	case s.DryRun:
		fmt.Fprintf(w, "Dry run: would replay %d messages of %s%s (seq %d..%d) for %s; nothing was published.\n",
			s.Read, s.Stream, filter, s.FirstSeq, s.LastSeq, target)
	default:
		fmt.Fprintf(w, "Replayed %s%s seq %d..%d for %s in %s: %d published, %d already replayed (duplicates).\n",
			s.Stream, filter, s.FirstSeq, s.LastSeq, target, s.Elapsed.Round(time.Millisecond), s.Published, s.Duplicates)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tREAD\tPUBLISHED\tDUPLICATES")
	for _, c := range s.BySubject {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", c.Subject, c.Read, c.Published, c.Duplicates)
	}
	fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\n", s.Read, s.Published, s.Duplicates)
	_ = tw.Flush()
}
