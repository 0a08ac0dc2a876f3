package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/orgbridge/orgbridge/internal/ops"
)

// runStreams prints every stream with its replicas, leader, size and
// sequences, then every consumer with its leader and what it still has to do,
// then what an operator should look at (no leader, a replica behind).
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
		if err := writeJSON(c.stdout, streams); err != nil {
			return err
		}
		return unreadError(streams)
	}
	if len(streams) == 0 {
		fmt.Fprintln(c.stdout, "No streams. The ingress, the workers and `orgbridge dev` create them at start.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	var notes clusterNotes
	fmt.Fprintln(tw, "STREAM\tREPLICAS\tLEADER\tLAGGING\tMESSAGES\tBYTES\tFIRST SEQ\tFIRST TIME\tLAST SEQ\tLAST TIME\tCONSUMERS")
	for _, s := range streams {
		if s.Error != "" {
			notes.unread = append(notes.unread, s.Name+": "+s.Error)
			if s.Replicas == 0 { // the stream itself did not answer
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n", s.Name)
				continue
			}
		}
		leader, lagging := fmtCluster(s.Cluster)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%d\t%s\t%d\t%s\t%d\n", s.Name, s.Replicas, leader, lagging, s.Messages, fmtBytes(s.Bytes),
			s.FirstSeq, fmtTime(s.FirstTime), s.LastSeq, fmtTime(s.LastTime), len(s.Consumers))
		notes.add(s.Name, s.Cluster)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tLEADER\tLAGGING\tFILTER\tPENDING\tACK PENDING\tREDELIVERED\tLAST ACTIVE")
	for _, s := range streams {
		for _, cs := range s.Consumers {
			if cs.Error != "" {
				notes.unread = append(notes.unread, s.Name+"/"+cs.Name+": "+cs.Error)
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", s.Name, cs.Name)
				continue
			}
			filter := strings.Join(cs.Filter, ",")
			if filter == "" {
				filter = "(all)"
			}
			last := "-"
			if cs.LastActive != nil {
				last = fmtTime(*cs.LastActive)
			}
			leader, lagging := fmtCluster(cs.Cluster)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, cs.Name, leader, lagging, filter, cs.Pending, cs.AckPending, cs.Redelivered, last)
			notes.add(s.Name+"/"+cs.Name, cs.Cluster)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if lines := notes.lines(); len(lines) > 0 {
		fmt.Fprintln(c.stdout)
		for _, l := range lines {
			fmt.Fprintln(c.stdout, l)
		}
	}
	return unreadError(streams)
}

// unreadError says how many streams and consumers did not answer (their
// Error), nil when all did: the listing is printed either way.
func unreadError(streams []ops.StreamStatus) error {
	n := 0
	for _, s := range streams {
		if s.Error != "" {
			n++
		}
		for _, cs := range s.Consumers {
			if cs.Error != "" {
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d streams or consumers did not answer (a cluster electing a leader, a node rejoining, or the only node of a one-replica stream lost); run `orgbridge streams` again in a few seconds", n)
}

// fmtCluster prints a stream's or consumer's leader and lagging replicas for
// the tables; on a single server both are "-".
func fmtCluster(cs ops.ClusterStatus) (leader, lagging string) {
	if cs.Name == "" {
		return "-", "-"
	}
	leader = cs.Leader
	if leader == "" {
		leader = "NONE"
	}
	lagging = strings.Join(cs.Lagging(), ", ")
	if lagging == "" {
		lagging = "-"
	}
	return leader, lagging
}

// clusterNotes gathers what an operator should know about replicated streams
// and consumers: which have no leader, and which node's replicas are behind.
type clusterNotes struct {
	unread     []string // what did not answer, with why
	leaderless []string
	behind     map[string][]string // "n2 offline" → what it holds a replica of
	order      []string
}

func (n *clusterNotes) add(what string, cs ops.ClusterStatus) {
	if cs.Name == "" {
		return
	}
	if cs.Leader == "" {
		n.leaderless = append(n.leaderless, what)
	}
	for _, r := range cs.Replicas {
		state := "catching up"
		switch {
		case r.Offline:
			state = "offline"
		case r.Current:
			continue
		}
		key := r.Name + " " + state
		if n.behind == nil {
			n.behind = map[string][]string{}
		}
		if _, ok := n.behind[key]; !ok {
			n.order = append(n.order, key)
		}
		n.behind[key] = append(n.behind[key], what)
	}
}

func (n *clusterNotes) lines() []string {
	var out []string
	for _, u := range n.unread {
		out = append(out, "! not read: "+u)
	}
	if len(n.leaderless) > 0 {
		out = append(out, "! no leader: "+strings.Join(n.leaderless, ", ")+
			"; their replicas are electing one, or too few NATS nodes are up to agree")
	}
	for _, key := range n.order {
		out = append(out, "! "+key+": its replicas of "+strings.Join(n.behind[key], ", ")+
			" are not current; they catch up once the node is back (run `orgbridge streams` again to follow)")
	}
	return out
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
