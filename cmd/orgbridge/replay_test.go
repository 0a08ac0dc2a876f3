package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// This file also holds the helpers the dlq and streams command tests share.

// runCLI runs one orgbridge command line in-process with NATS_URL set to
// natsURL (unless empty) and returns its exit code and output.
func runCLI(t *testing.T, natsURL string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"NATS_URL": natsURL}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, &cli{stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

func tctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pub stores a message with a Nats-Msg-Id and a team header; it returns the sequence.
func pub(t *testing.T, js jetstream.JetStream, subject, msgID, body string) uint64 {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	msg.Header.Set(events.HeaderTeam, "T1")
	ack, err := js.PublishMsg(tctx(t), msg, jetstream.WithMsgID(msgID))
	if err != nil {
		t.Fatalf("publishing on %s: %v", subject, err)
	}
	return ack.Sequence
}

func pubN(t *testing.T, js jetstream.JetStream, subject, prefix string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := 1; i <= n; i++ {
		id := prefix + strconv.Itoa(i)
		seqs = append(seqs, pub(t, js, subject, id, `{"event_id":"`+id+`"}`))
	}
	return seqs
}

func streamState(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	s, err := js.Stream(tctx(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(tctx(t))
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return info.State
}

// fields collapses each line of tabwriter output to single spaces.
func fields(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return lines
}

func hasLine(out, want string) bool {
	for _, l := range fields(out) {
		if l == want {
			return true
		}
	}
	return false
}

func TestReplayUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "no start", args: []string{"--stream", "SLACK"}, wantCode: 2, wantErr: "exactly one of --since and --from-seq"},
		{name: "two starts", args: []string{"--stream", "SLACK", "--since", "1h", "--from-seq", "3"}, wantCode: 2, wantErr: "exactly one of --since and --from-seq"},
		{name: "no stream", args: []string{"--from-seq", "1"}, wantCode: 2, wantErr: "--stream is required"},
		{name: "bad since", args: []string{"--stream", "SLACK", "--since", "yesterday"}, wantCode: 2, wantErr: "neither a duration"},
		{name: "to before from", args: []string{"--stream", "SLACK", "--from-seq", "5", "--to-seq", "2"}, wantCode: 2, wantErr: "before --from-seq"},
		{name: "positional", args: []string{"--stream", "SLACK", "--from-seq", "1", "extra"}, wantCode: 2, wantErr: `unexpected argument "extra"`},
		{name: "unknown flag", args: []string{"--stream", "SLACK", "--from", "1"}, wantCode: 2, wantErr: "flag provided but not defined"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantErr: "NATS_URL"},
		{name: "DLQ", args: []string{"--stream", "DLQ", "--from-seq", "1"}, wantCode: 2, wantErr: "use `orgbridge dlq redrive`"},
		{name: "DLQ without a start", args: []string{"--stream", "dlq"}, wantCode: 2, wantErr: "use `orgbridge dlq redrive`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No server: usage is checked before connecting.
			code, _, stderr := runCLI(t, "nats://127.0.0.1:1", append([]string{"replay"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d stderr %q, want %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestReplayCommand(t *testing.T) {
	const subjMsg, subjCmd = "slack.events.T1.message", "slack.commands.T1"
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantLines []string // whitespace-collapsed lines stdout must have
		wantErr   string
		wantAdded uint64
	}{
		{
			name:      "from-seq and to-seq",
			args:      []string{"--from-seq", "2", "--to-seq", "5"},
			wantLines: []string{"SUBJECT READ PUBLISHED DUPLICATES", subjCmd + " 2 2 0", subjMsg + " 2 2 0", "TOTAL 4 4 0"},
			wantAdded: 4,
		},
		{
			name:      "since",
			args:      []string{"--since", "1h"},
			wantLines: []string{subjCmd + " 2 2 0", subjMsg + " 4 4 0", "TOTAL 6 6 0"},
			wantAdded: 6,
		},
		{
			name:      "since an RFC 3339 time in the future",
			args:      []string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
			wantLines: []string{"Nothing to replay in SLACK up to seq 6."},
		},
		{
			name:      "subject filter",
			args:      []string{"--from-seq", "1", "--subject", "slack.commands.*"},
			wantLines: []string{subjCmd + " 2 2 0", "TOTAL 2 2 0"},
			wantAdded: 2,
		},
		{
			name:      "consumer",
			args:      []string{"--from-seq", "1", "--consumer", "binding"},
			wantLines: []string{subjCmd + " 2 2 0", "TOTAL 2 2 0"},
			wantAdded: 2,
		},
		{
			name:     "unknown consumer",
			args:     []string{"--from-seq", "1", "--consumer", "nobody"},
			wantCode: 1,
			wantErr:  `consumer "nobody" on stream SLACK: consumer not found; run ` + "`orgbridge streams`",
		},
		{
			name:      "dry run",
			args:      []string{"--from-seq", "1", "--dry-run"},
			wantLines: []string{"Dry run: would replay 6 messages of SLACK (seq 1..6) for all consumers; nothing was published.", subjMsg + " 4 0 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			if _, err := n.JS.CreateOrUpdateConsumer(tctx(t), events.StreamSlack, jetstream.ConsumerConfig{
				Durable: "binding", FilterSubject: "slack.commands.*", AckPolicy: jetstream.AckExplicitPolicy,
			}); err != nil {
				t.Fatalf("consumer: %v", err)
			}
			pubN(t, n.JS, subjMsg, "Ev", 3)
			pubN(t, n.JS, subjCmd, "Cmd", 2)
			pubN(t, n.JS, subjMsg, "Ev-late-", 1)
			before := streamState(t, n.JS, events.StreamSlack).Msgs

			code, stdout, stderr := runCLI(t, n.URL, append([]string{"replay", "--stream", "SLACK"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
			for _, want := range tt.wantLines {
				if !hasLine(stdout, want) {
					t.Errorf("stdout lacks line %q:\n%s", want, stdout)
				}
			}
			if got := streamState(t, n.JS, events.StreamSlack).Msgs; got != before+tt.wantAdded {
				t.Errorf("stream holds %d messages, want %d", got, before+tt.wantAdded)
			}
		})
	}
}

func TestReplayCommandTwiceStoresNothingNew(t *testing.T) {
	n := testenv.StartStreams(t)
	pubN(t, n.JS, "slack.events.T1.message", "Ev", 3)
	args := []string{"replay", "--stream", "SLACK", "--from-seq", "1", "--to-seq", "3", "--json"}
	tests := []struct {
		name           string
		wantPublished  int
		wantDuplicates int
	}{
		{name: "first", wantPublished: 3},
		{name: "second", wantDuplicates: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, n.URL, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var sum struct {
				Read, Published, Duplicates int
			}
			if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
				t.Fatalf("summary is not JSON: %v\n%s", err, stdout)
			}
			if sum.Read != 3 || sum.Published != tt.wantPublished || sum.Duplicates != tt.wantDuplicates {
				t.Errorf("summary = %+v, want read 3 published %d duplicates %d", sum, tt.wantPublished, tt.wantDuplicates)
			}
			if got := streamState(t, n.JS, events.StreamSlack).Msgs; got != 6 {
				t.Errorf("stream holds %d messages, want 6", got)
			}
		})
	}
}

// TestReplayCommandRefusesDLQ covers `replay --stream DLQ` against a DLQ that
// holds a dead letter and a captured advisory: exit 2, nothing published.
func TestReplayCommandRefusesDLQ(t *testing.T) {
	n := testenv.StartStreams(t)
	dl := nats.NewMsg(events.DLQSubject(events.StreamSlack, "binding"))
	dl.Data = []byte("{}")
	dl.Header.Set(events.HeaderDLQSubject, "slack.events.T1.message")
	if _, err := n.JS.PublishMsg(tctx(t), dl); err != nil {
		t.Fatal(err)
	}
	if _, err := n.JS.Publish(tctx(t), events.MaxDeliveriesAdvisoryPrefix+"SLACK.binding", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, n.URL, "replay", "--stream", "DLQ", "--from-seq", "1")
	if code != 2 || !strings.Contains(stderr, "orgbridge dlq redrive") || stdout != "" {
		t.Errorf("exit %d stdout %q stderr %q, want 2 pointing to `orgbridge dlq redrive`", code, stdout, stderr)
	}
	if got := streamState(t, n.JS, events.StreamDLQ).Msgs; got != 2 {
		t.Errorf("DLQ holds %d messages, want the 2 it had", got)
	}
}

// TestReplayCommandDisconnectRequestsOnly covers a DISCONNECT replay: without
// --subject it re-delivers the requests only, never the results.
func TestReplayCommandDisconnectRequestsOnly(t *testing.T) {
	req, res := events.DisconnectRequestSubject("E1"), events.DisconnectResultSubject("E1")
	tests := []struct {
		name      string
		args      []string
		wantLines []string
		wantAdded uint64
	}{
		{
			name:      "default subjects",
			args:      nil,
			wantLines: []string{req + " 2 2 0", "TOTAL 2 2 0"},
			wantAdded: 2,
		},
		{
			name:      "explicit results",
			args:      []string{"--subject", "disconnect.results.*"},
			wantLines: []string{res + " 1 1 0", "TOTAL 1 1 0"},
			wantAdded: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			pub(t, n.JS, req, "req-1", `{"request_id":"req-1"}`)
			pub(t, n.JS, res, "res-1", `{"request_id":"req-1","state":"done"}`)
			pub(t, n.JS, req, "req-2", `{"request_id":"req-2"}`)
			before := streamState(t, n.JS, events.StreamDisconnect)

			code, stdout, stderr := runCLI(t, n.URL, append([]string{"replay", "--stream", "DISCONNECT", "--from-seq", "1"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range tt.wantLines {
				if !hasLine(stdout, want) {
					t.Errorf("stdout lacks line %q:\n%s", want, stdout)
				}
			}
			if got := streamState(t, n.JS, events.StreamDisconnect).Msgs; got != before.Msgs+tt.wantAdded {
				t.Errorf("stream holds %d messages, want %d", got, before.Msgs+tt.wantAdded)
			}
		})
	}
}
