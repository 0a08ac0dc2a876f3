package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Observed is what one fault's traffic came to, as the sender, JetStream and
// Redis saw it.
type Observed struct {
	// Sent are the ids of the valid events sent (each once, retries aside).
	Sent []string
	// Retried counts the sent events that needed at least one retry: the
	// fault's footprint on the ingress.
	Retried int
	// Acked are the ids the ingress answered 200, on any attempt.
	Acked map[string]bool
	// Stored counts the copies of each id on the SLACK stream.
	Stored map[string]int
	// Processed are the stored ids whose effect the worker recorded in Redis.
	Processed map[string]bool
	// DeadLetters is how many dead letters arrived while the fault ran.
	DeadLetters int
	// Rejected counts the hostile requests the ingress refused with a 4xx.
	Rejected int
	// Stuck names consumers still holding messages when the run gave up waiting.
	Stuck []string
	// Down names parts that were not running or not ready after the fault.
	Down []string
}

// Expect is what a fault may legitimately cause.
type Expect struct {
	// DeadLetters the fault causes on purpose (bad input, never an outage).
	DeadLetters int
	// Rejected hostile requests the ingress must refuse.
	Rejected int
}

// Row is one line of the table: the counts and what is wrong with them.
type Row struct {
	Fault                                                 string
	Sent, Retried, Acked, Stored, Processed, DeadLettered int
	Duplicates, Rejected                                  int
	Problems                                              []string
}

// OK reports whether the fault lost, repeated or parked nothing it should not have.
func (r Row) OK() bool { return len(r.Problems) == 0 }

// Tally counts o and lists every way it falls short of e: an event Slack
// gave up on, an acknowledged event not stored (lost), a stored event whose
// effect is missing, a stored duplicate, a dead letter no bad input explains,
// a hostile request let through, a stuck consumer, a part left down.
func Tally(fault string, o Observed, e Expect) Row {
	r := Row{Fault: fault, Sent: len(o.Sent), Retried: o.Retried, DeadLettered: o.DeadLetters, Rejected: o.Rejected}
	var unacked, lost, unprocessed int
	for _, id := range o.Sent {
		if o.Acked[id] {
			r.Acked++
			if o.Stored[id] == 0 {
				lost++
			}
		} else {
			unacked++
		}
	}
	for id, n := range o.Stored {
		r.Stored++
		r.Duplicates += n - 1
		if o.Processed[id] {
			r.Processed++
		} else {
			unprocessed++
		}
	}
	add := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	if unacked > 0 {
		add("%d events never acknowledged after Slack's retries", unacked)
	}
	if lost > 0 {
		add("%d acknowledged events not stored (lost)", lost)
	}
	if unprocessed > 0 {
		add("%d stored events not processed", unprocessed)
	}
	if r.Duplicates > 0 {
		add("%d duplicate copies stored", r.Duplicates)
	}
	switch {
	case o.DeadLetters > e.DeadLetters && e.DeadLetters == 0:
		add("%d dead letters caused by an outage", o.DeadLetters)
	case o.DeadLetters != e.DeadLetters:
		add("%d dead letters, want %d (the bad input's)", o.DeadLetters, e.DeadLetters)
	}
	if o.Rejected != e.Rejected {
		add("%d of %d hostile requests refused", o.Rejected, e.Rejected)
	}
	if len(o.Stuck) > 0 {
		add("stuck consumers: %s", strings.Join(sorted(o.Stuck), ", "))
	}
	if len(o.Down) > 0 {
		add("not running afterwards: %s", strings.Join(sorted(o.Down), ", "))
	}
	return r
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// WriteTable prints rows as an aligned Markdown table, one line per fault,
// with the problems of failed rows under it. "retried" counts events that
// needed Slack to retry them; "refused" the hostile requests answered 4xx.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| fault\t| sent\t| retried\t| acked\t| stored\t| processed\t| dead-lettered\t| duplicates\t| refused\t| result\t|")
	fmt.Fprintln(tw, "| ---\t| ---:\t| ---:\t| ---:\t| ---:\t| ---:\t| ---:\t| ---:\t| ---:\t| ---\t|")
	for _, r := range rows {
		result := "ok"
		if !r.OK() {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "| %s\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %s\t|\n",
			r.Fault, r.Sent, r.Retried, r.Acked, r.Stored, r.Processed, r.DeadLettered, r.Duplicates, r.Rejected, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		for _, p := range r.Problems {
			if _, err := fmt.Fprintf(w, "- %s: %s\n", r.Fault, p); err != nil {
				return err
			}
		}
	}
	return nil
}
