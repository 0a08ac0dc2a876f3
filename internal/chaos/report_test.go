package chaos

import (
	"bytes"
	"strings"
	"testing"
)

func set(ids ...string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func TestTally(t *testing.T) {
	tests := []struct {
		name     string
		o        Observed
		e        Expect
		want     Row // counts only
		problems []string
	}{
		{
			name: "everything sent is acked, stored once and processed",
			o: Observed{Sent: []string{"a", "b", "c"}, Acked: set("a", "b", "c"), Stored: map[string]int{"a": 1, "b": 1, "c": 1},
				Processed: set("a", "b", "c")},
			want: Row{Sent: 3, Acked: 3, Stored: 3, Processed: 3},
		},
		{
			name: "an event Slack gave up on is not lost data but a failure",
			o: Observed{Sent: []string{"a", "b"}, Acked: set("a"), Stored: map[string]int{"a": 1},
				Processed: set("a")},
			want:     Row{Sent: 2, Acked: 1, Stored: 1, Processed: 1},
			problems: []string{"1 events never acknowledged after Slack's retries"},
		},
		{
			name: "acknowledged but not stored is a loss",
			o: Observed{Sent: []string{"a", "b"}, Acked: set("a", "b"), Stored: map[string]int{"a": 1},
				Processed: set("a")},
			want:     Row{Sent: 2, Acked: 2, Stored: 1, Processed: 1},
			problems: []string{"1 acknowledged events not stored (lost)"},
		},
		{
			name: "stored but not processed, and stored twice",
			o: Observed{Sent: []string{"a", "b"}, Acked: set("a", "b"), Stored: map[string]int{"a": 2, "b": 1},
				Processed: set("a")},
			want:     Row{Sent: 2, Acked: 2, Stored: 2, Processed: 1, Duplicates: 1},
			problems: []string{"1 stored events not processed", "1 duplicate copies stored"},
		},
		{
			name:     "a dead letter during an outage",
			o:        Observed{Sent: []string{"a"}, Acked: set("a"), Stored: map[string]int{"a": 1}, Processed: set("a"), DeadLetters: 2},
			want:     Row{Sent: 1, Acked: 1, Stored: 1, Processed: 1, DeadLettered: 2},
			problems: []string{"2 dead letters caused by an outage"},
		},
		{
			name: "the bad input's dead letter and refusals are expected",
			o: Observed{Sent: []string{"a"}, Retried: 1, Acked: set("a"), Stored: map[string]int{"a": 1}, Processed: set("a"),
				DeadLetters: 1, Rejected: 5},
			e:    Expect{DeadLetters: 1, Rejected: 5},
			want: Row{Sent: 1, Retried: 1, Acked: 1, Stored: 1, Processed: 1, DeadLettered: 1, Rejected: 5},
		},
		{
			name:     "bad input that was let through, or not dead-lettered",
			o:        Observed{Sent: []string{"a"}, Acked: set("a"), Stored: map[string]int{"a": 1}, Processed: set("a"), Rejected: 4},
			e:        Expect{DeadLetters: 1, Rejected: 5},
			want:     Row{Sent: 1, Acked: 1, Stored: 1, Processed: 1, Rejected: 4},
			problems: []string{"0 dead letters, want 1 (the bad input's)", "4 of 5 hostile requests refused"},
		},
		{
			name: "stuck consumers and parts left down",
			o: Observed{Sent: []string{"a"}, Acked: set("a"), Stored: map[string]int{"a": 1}, Processed: set("a"),
				Stuck: []string{"SLACK/b", "SLACK/a"}, Down: []string{"worker 2"}},
			want:     Row{Sent: 1, Acked: 1, Stored: 1, Processed: 1},
			problems: []string{"stuck consumers: SLACK/a, SLACK/b", "not running afterwards: worker 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tally("f", tt.o, tt.e)
			want := tt.want
			want.Fault, want.Problems = "f", tt.problems
			if got.Sent != want.Sent || got.Retried != want.Retried || got.Acked != want.Acked || got.Stored != want.Stored || got.Processed != want.Processed ||
				got.DeadLettered != want.DeadLettered || got.Duplicates != want.Duplicates || got.Rejected != want.Rejected {
				t.Fatalf("counts = %+v, want %+v", got, want)
			}
			if strings.Join(got.Problems, "|") != strings.Join(want.Problems, "|") {
				t.Fatalf("problems = %q, want %q", got.Problems, want.Problems)
			}
			if got.OK() != (len(want.Problems) == 0) {
				t.Fatalf("OK() = %v with problems %q", got.OK(), got.Problems)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	rows := []Row{
		Tally("none", Observed{Sent: []string{"a"}, Acked: set("a"), Stored: map[string]int{"a": 1}, Processed: set("a")}, Expect{}),
		Tally("kill -9 nats-server", Observed{Sent: []string{"a", "b"}, Retried: 1, Acked: set("a", "b"), Stored: map[string]int{"a": 1}, Processed: set("a")}, Expect{}),
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		"| fault               | sent | retried | acked | stored | processed | dead-lettered | duplicates | refused | result |",
		"| ---                 | ---: | ---:    | ---:  | ---:   | ---:      | ---:          | ---:       | ---:    | ---    |",
		"| none                | 1    | 0       | 1     | 1      | 1         | 0             | 0          | 0       | ok     |",
		"| kill -9 nats-server | 2    | 1       | 2     | 1      | 1         | 0             | 0          | 0       | FAIL   |",
		"- kill -9 nats-server: 1 acknowledged events not stored (lost)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("table:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
}
