package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/orgbridge/orgbridge/internal/ops"
)

// dlqErrorWidth is how much of a dead letter's error `dlq list` shows.
const dlqErrorWidth = 60

// runDLQ lists, shows, re-drives and purges dead letters; see the ops package.
func runDLQ(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		printDLQUsage(c.stderr)
		return usagef("say what to do: list, show, redrive or purge")
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		printDLQUsage(c.stdout)
		return errHelp
	case "list":
		return runDLQList(ctx, c, args[1:])
	case "show":
		return runDLQShow(ctx, c, args[1:])
	case "redrive":
		return runDLQRedrive(ctx, c, args[1:])
	case "purge":
		return runDLQPurge(ctx, c, args[1:])
	}
	return usagef("unknown dlq command %q; use list, show, redrive or purge", args[0])
}

func printDLQUsage(w io.Writer) {
	fmt.Fprintln(w, `Usage: orgbridge dlq <command> [flags]

Commands:
  list                              dead letters, oldest first (id, failed at, stream, seq, subject, consumer, deliveries, error);
                                    --json adds headers and body (body_encoding json, text or base64); --limit N --after ID pages
  show ID                           one dead letter: every header and the body
  redrive ID | --all                re-deliver to the consumer that failed, then remove from the DLQ
  purge --yes [--stream S] [--consumer C]  remove dead letters (all, or those matching)

Run `+"`orgbridge dlq <command> --help`"+` for a command's flags.`)
}

// parseInterspersed parses flags that may come before or after positional
// arguments (`dlq show 12 --json`) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func dlqFilterFlags(fs *flag.FlagSet) (stream, consumer *string) {
	return fs.String("stream", "", "only dead letters from this stream"),
		fs.String("consumer", "", "only dead letters of this durable consumer")
}

func runDLQList(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "dlq list", "[--stream NAME] [--consumer NAME] [--limit N] [--after ID] [--json] [--nats-url URL]", natsURLEnv)
	natsURL := natsURLFlag(fs, c)
	stream, consumer := dlqFilterFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (with headers and bodies) instead of a table")
	limit := fs.Int("limit", 0, "list at most N dead letters (0: every one, read a page at a time)")
	after := fs.Uint64("after", 0, "list only dead letters after this id (the last id a --limit listing showed)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q; to see one dead letter use `orgbridge dlq show ID`", pos[0])
	}
	if *limit < 0 {
		return usagef("--limit: must be 0 (every one) or more")
	}
	nc, js, err := connectJetStream(ctx, c, *natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()

	// Page by page: a DLQ of any size is listed in bounded memory.
	f := ops.DLQFilter{Stream: *stream, Consumer: *consumer}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	shown, cursor := 0, *after
	for {
		size := dlqListPage
		if *limit > 0 {
			size = min(size, *limit-shown)
		}
		page, err := ops.ListDeadLetterPage(ctx, js, f, cursor, size)
		if err != nil {
			return err
		}
		for i := range page.Letters {
			if err := printDeadLetterRow(c, tw, *asJSON, shown == 0, &page.Letters[i]); err != nil {
				return err
			}
			shown++
		}
		cursor = page.Next
		if cursor == 0 || (*limit > 0 && shown >= *limit) {
			break
		}
	}
	switch {
	case *asJSON && shown == 0:
		fmt.Fprintln(c.stdout, "[]")
	case *asJSON:
		fmt.Fprintln(c.stdout, "\n]")
	case shown == 0:
		fmt.Fprintln(c.stdout, "No dead letters.")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cursor != 0 {
		fmt.Fprintf(c.stderr, "more dead letters follow: `orgbridge dlq list --after %d`\n", cursor)
	}
	return nil
}

// dlqListPage is how many dead letters `dlq list` reads at a time.
const dlqListPage = 100

// printDeadLetterRow prints one dead letter of a listing: a table row (the
// header first), or an element of a JSON array written as it goes.
func printDeadLetterRow(c *cli, tw *tabwriter.Writer, asJSON, first bool, d *ops.DeadLetter) error {
	if asJSON {
		b, err := json.MarshalIndent(d, "  ", "  ")
		if err != nil {
			return err
		}
		sep := ","
		if first {
			sep = "["
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n  %s", sep, b)
		return err
	}
	if first {
		fmt.Fprintln(tw, "ID\tFAILED AT\tSTREAM\tSEQ\tSUBJECT\tCONSUMER\tDELIVERIES\tERROR")
	}
	failed := fmtTime(d.FailedAt)
	if d.FailedAt.IsZero() && d.FailedAtRaw != "" {
		failed = d.FailedAtRaw
	}
	_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", d.ID, failed, orDash(d.Stream), d.Seq,
		orDash(d.Subject), orDash(d.Consumer), d.Deliveries, truncate(oneLine(d.Error), dlqErrorWidth))
	return err
}

func runDLQShow(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "dlq show", "ID [--json] [--nats-url URL]", natsURLEnv)
	natsURL := natsURLFlag(fs, c)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give one dead letter id (the ID column of `orgbridge dlq list`)")
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	nc, js, err := connectJetStream(ctx, c, *natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()

	d, err := ops.GetDeadLetter(ctx, js, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, d)
	}
	w := c.stdout
	fmt.Fprintf(w, "Dead letter %d on %s, stored %s\n", d.ID, d.DLQSubject, fmtTime(d.StoredAt))
	fmt.Fprintf(w, "Failed on %s seq %d (%s) in consumer %s after %d deliveries\n",
		orDash(d.Stream), d.Seq, orDash(d.Subject), orDash(d.Consumer), d.Deliveries)
	fmt.Fprintf(w, "\nHeaders:\n")
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range d.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	var pretty bytes.Buffer
	switch {
	case d.BodyEncoding() == ops.BodyBase64:
		fmt.Fprintf(w, "\nBody (%d bytes, not UTF-8, shown in base64):\n%s\n", len(d.Data), base64.StdEncoding.EncodeToString(d.Data))
	case d.BodyEncoding() == ops.BodyJSON && json.Indent(&pretty, d.Data, "", "  ") == nil:
		fmt.Fprintf(w, "\nBody (%d bytes):\n%s\n", len(d.Data), pretty.String())
	default:
		fmt.Fprintf(w, "\nBody (%d bytes):\n%s\n", len(d.Data), d.Data)
	}
	return nil
}

func runDLQRedrive(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "dlq redrive", "(ID | --all [--stream NAME] [--consumer NAME]) [--json] [--nats-url URL]", natsURLEnv)
	natsURL := natsURLFlag(fs, c)
	all := fs.Bool("all", false, "re-drive every dead letter (matching --stream and --consumer)")
	stream, consumer := dlqFilterFlags(fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	filtered := *stream != "" || *consumer != ""
	switch {
	case *all && len(pos) > 0:
		return usagef("give either an id or --all, not both")
	case !*all && len(pos) != 1:
		return usagef("give one dead letter id (the ID column of `orgbridge dlq list`), or --all")
	case !*all && filtered:
		return usagef("--stream and --consumer select dead letters for --all; an id already names one")
	}
	var id uint64
	if !*all {
		if id, err = parseID(pos[0]); err != nil {
			return err
		}
	}
	nc, js, err := connectJetStream(ctx, c, *natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()

	if !*all {
		r, err := ops.Redrive(ctx, js, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, r)
		}
		if r.Duplicate {
			fmt.Fprintf(c.stdout, "Dead letter %d had already been re-driven to %s; nothing new was published. Removed it from the DLQ.\n", r.ID, r.Subject)
		} else {
			fmt.Fprintf(c.stdout, "Re-drove dead letter %d to %s (stream seq %d) and removed it from the DLQ.\n", r.ID, r.Subject, r.Seq)
		}
		return nil
	}

	sum, err := ops.RedriveAll(ctx, js, ops.DLQFilter{Stream: *stream, Consumer: *consumer}, c.stderr)
	if sum != nil {
		if *asJSON {
			if werr := writeJSON(c.stdout, sum); werr != nil && err == nil {
				err = werr
			}
		} else {
			fmt.Fprintf(c.stdout, "Re-drove %d dead letters (%d had already been re-driven, %d failed and stay in the DLQ).\n",
				sum.Redriven, sum.Duplicates, sum.Failed)
			for _, r := range sum.Results {
				if r.Error != "" {
					fmt.Fprintf(c.stderr, "dead letter %d: %s\n", r.ID, r.Error)
				}
			}
		}
	}
	if err == nil && sum.Failed > 0 {
		err = fmt.Errorf("%d dead letters could not be re-driven; see above, fix the cause and run it again", sum.Failed)
	}
	return err
}

func runDLQPurge(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "dlq purge", "--yes [--stream S] [--consumer C] [--nats-url URL]", natsURLEnv)
	natsURL := natsURLFlag(fs, c)
	yes := fs.Bool("yes", false, "confirm: delete the dead letters for good")
	var f ops.DLQFilter
	fs.StringVar(&f.Stream, "stream", "", "only dead letters from this stream")
	fs.StringVar(&f.Consumer, "consumer", "", "only dead letters this consumer gave up on")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q; purge takes no id (filter with --stream and --consumer)", pos[0])
	}
	if !*yes {
		return usagef("purge deletes every dead letter for good and cannot be undone; check them with `orgbridge dlq list`, then run `orgbridge dlq purge --yes`")
	}
	nc, js, err := connectJetStream(ctx, c, *natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()

	n, err := ops.PurgeDeadLetters(ctx, js, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Purged %d dead letters.\n", n)
	return nil
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usagef("%q is not a dead letter id; ids are the numbers in the ID column of `orgbridge dlq list`", s)
	}
	return id, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
