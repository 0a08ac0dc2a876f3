package main

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// parkDead parks the SLACK message at seq as consumer's dead letter the way the
// worker runtime does, and returns the dead letter id.
func parkDead(t *testing.T, js jetstream.JetStream, seq uint64, consumer, reason string) uint64 {
	t.Helper()
	s, err := js.Stream(tctx(t), events.StreamSlack)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	orig, err := s.GetMsg(tctx(t), seq)
	if err != nil {
		t.Fatalf("original %d: %v", seq, err)
	}
	msg := nats.NewMsg(events.DLQSubject(events.StreamSlack, consumer))
	msg.Data = orig.Data
	for k, vs := range orig.Header {
		msg.Header[k] = vs
	}
	msg.Header.Set(events.HeaderDLQStream, events.StreamSlack)
	msg.Header.Set(events.HeaderDLQSeq, strconv.FormatUint(seq, 10))
	msg.Header.Set(events.HeaderDLQSubject, orig.Subject)
	msg.Header.Set(events.HeaderDLQConsumer, consumer)
	msg.Header.Set(events.HeaderDLQDeliveries, "5")
	msg.Header.Set(events.HeaderDLQError, reason)
	msg.Header.Set(events.HeaderDLQFailedAt, "2026-03-01T12:00:00Z")
	ack, err := js.PublishMsg(tctx(t), msg, jetstream.WithMsgID("dlq:SLACK:"+strconv.FormatUint(seq, 10)+":"+consumer))
	if err != nil {
		t.Fatalf("parking: %v", err)
	}
	return ack.Sequence
}

// populateDead stores three originals, parks them (two for binding, one for
// mapping) and captures a MAX_DELIVERIES advisory between them.
func populateDead(t *testing.T, js jetstream.JetStream) (ids []uint64, advisory uint64) {
	t.Helper()
	s1 := pub(t, js, "slack.install.T1", "Inst-1", `{"team":"T1","scopes":["users:read"]}`)
	s2 := pub(t, js, "slack.events.T1.message", "Ev-1", `{"event_id":"Ev-1"}`)
	s3 := pub(t, js, "slack.commands.T1", "Cmd-1", "text=hello")
	ids = append(ids, parkDead(t, js, s1, "binding", "org 00D1 expired: "+strings.Repeat("very long reason ", 10)))
	ack, err := js.Publish(tctx(t), events.MaxDeliveriesAdvisoryPrefix+"SLACK.binding", []byte(`{"stream_seq":1}`))
	if err != nil {
		t.Fatalf("advisory: %v", err)
	}
	ids = append(ids, parkDead(t, js, s2, "binding", "handler panicked"), parkDead(t, js, s3, "mapping", "bad\nform"))
	return ids, ack.Sequence
}

func TestDLQList(t *testing.T) {
	n := testenv.StartStreams(t)
	ids, _ := populateDead(t, n.JS)
	tests := []struct {
		name      string
		args      []string
		wantLines []string
		wantNot   []string
		wantErr   string // on stderr; "" wants no "more" hint
	}{
		{
			name: "all",
			args: []string{"dlq", "list"},
			wantLines: []string{
				"ID FAILED AT STREAM SEQ SUBJECT CONSUMER DELIVERIES ERROR",
				strconv.FormatUint(ids[0], 10) + " 2026-03-01T12:00:00Z SLACK 1 slack.install.T1 binding 5 org 00D1 expired: very long reason very long reason very lo…",
				strconv.FormatUint(ids[1], 10) + " 2026-03-01T12:00:00Z SLACK 2 slack.events.T1.message binding 5 handler panicked",
				strconv.FormatUint(ids[2], 10) + " 2026-03-01T12:00:00Z SLACK 3 slack.commands.T1 mapping 5 bad form",
			},
			wantNot: []string{"ADVISORY", "{"},
		},
		{
			name:      "by consumer",
			args:      []string{"dlq", "list", "--consumer", "mapping"},
			wantLines: []string{strconv.FormatUint(ids[2], 10) + " 2026-03-01T12:00:00Z SLACK 3 slack.commands.T1 mapping 5 bad form"},
			wantNot:   []string{"binding"},
		},
		{
			name:      "nothing matches",
			args:      []string{"dlq", "list", "--stream", "ORG"},
			wantLines: []string{"No dead letters."},
		},
		{
			name:      "a page",
			args:      []string{"dlq", "list", "--limit", "1"},
			wantLines: []string{strconv.FormatUint(ids[0], 10) + " 2026-03-01T12:00:00Z SLACK 1 slack.install.T1 binding 5 org 00D1 expired: very long reason very long reason very lo…"},
			wantNot:   []string{"handler panicked", "mapping"},
			wantErr:   "more dead letters follow: `orgbridge dlq list --after " + strconv.FormatUint(ids[0], 10) + "`",
		},
		{
			name:      "the next page",
			args:      []string{"dlq", "list", "--limit", "1", "--after", strconv.FormatUint(ids[0], 10)},
			wantLines: []string{strconv.FormatUint(ids[1], 10) + " 2026-03-01T12:00:00Z SLACK 2 slack.events.T1.message binding 5 handler panicked"},
			wantNot:   []string{"expired", "mapping"},
			wantErr:   "--after " + strconv.FormatUint(ids[1], 10),
		},
		{
			name:      "the last page",
			args:      []string{"dlq", "list", "--after", strconv.FormatUint(ids[1], 10)},
			wantLines: []string{strconv.FormatUint(ids[2], 10) + " 2026-03-01T12:00:00Z SLACK 3 slack.commands.T1 mapping 5 bad form"},
			wantNot:   []string{"binding"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, n.URL, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) || (tt.wantErr == "" && strings.Contains(stderr, "more dead letters")) {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantErr)
			}
			for _, want := range tt.wantLines {
				if !hasLine(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, not := range tt.wantNot {
				if strings.Contains(stdout, not) {
					t.Errorf("stdout has %q:\n%s", not, stdout)
				}
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, n.URL, "dlq", "list", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got []struct {
			ID       uint64
			Consumer string
			Body     json.RawMessage
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 3 {
			t.Fatalf("list --json = %d entries (%v):\n%s", len(got), err, stdout)
		}
		if got[0].ID != ids[0] || got[0].Consumer != "binding" || !strings.Contains(string(got[0].Body), `"scopes"`) {
			t.Errorf("first entry = %+v", got[0])
		}
	})
}

func TestDLQShow(t *testing.T) {
	n := testenv.StartStreams(t)
	ids, advisory := populateDead(t, n.JS)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{
			name: "text with pretty JSON body",
			args: []string{"dlq", "show", strconv.FormatUint(ids[0], 10)},
			wantOut: []string{
				"Failed on SLACK seq 1 (slack.install.T1) in consumer binding after 5 deliveries",
				"  Orgbridge-Dlq-Consumer: binding", "  Orgbridge-Team: T1", "  Nats-Msg-Id: dlq:SLACK:1:binding",
				"{\n  \"team\": \"T1\",\n  \"scopes\": [\n    \"users:read\"\n  ]\n}",
			},
		},
		{
			name:    "text body",
			args:    []string{"dlq", "show", strconv.FormatUint(ids[2], 10)},
			wantOut: []string{"Body (10 bytes):\ntext=hello\n"},
		},
		{
			name:    "json after the id",
			args:    []string{"dlq", "show", strconv.FormatUint(ids[1], 10), "--json"},
			wantOut: []string{`"consumer": "binding"`, `"Orgbridge-Dlq-Error": [`, `"body": {`, `"event_id": "Ev-1"`},
		},
		{name: "advisory", args: []string{"dlq", "show", strconv.FormatUint(advisory, 10)}, wantCode: 1, wantErr: "not a dead letter"},
		{name: "missing", args: []string{"dlq", "show", "999"}, wantCode: 1, wantErr: "dead letter 999: dead letter not found"},
		{name: "not a number", args: []string{"dlq", "show", "abc"}, wantCode: 2, wantErr: `"abc" is not a dead letter id`},
		{name: "no id", args: []string{"dlq", "show"}, wantCode: 2, wantErr: "give one dead letter id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, n.URL, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

func TestDLQRedriveOne(t *testing.T) {
	n := testenv.StartStreams(t)
	ids, _ := populateDead(t, n.JS)
	id := strconv.FormatUint(ids[1], 10)
	tests := []struct {
		name     string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "first", wantOut: "Re-drove dead letter " + id + " to slack.events.T1.message (stream seq 4) and removed it from the DLQ."},
		{name: "again", wantCode: 1, wantErr: "dead letter " + id + ": dead letter not found (already re-driven or purged?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, n.URL, "dlq", "redrive", id)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d stdout %q stderr %q, want %d, %q, %q", code, stdout, stderr, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if got := streamState(t, n.JS, events.StreamSlack).Msgs; got != 4 {
				t.Errorf("SLACK holds %d messages, want 4 (3 originals, 1 re-drive)", got)
			}
		})
	}
	s, _ := n.JS.Stream(tctx(t), events.StreamSlack)
	cp, err := s.GetMsg(tctx(t), 4)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if cp.Header.Get(events.HeaderOriginID) != "Ev-1" || cp.Header.Get(events.HeaderReplayFor) != "binding" || cp.Header.Get(events.HeaderDLQError) != "" {
		t.Errorf("copy headers = %v", cp.Header)
	}
	if got := streamState(t, n.JS, events.StreamDLQ).Msgs; got != 3 {
		t.Errorf("DLQ holds %d messages, want 3 (2 dead letters, 1 advisory)", got)
	}
}

func TestDLQRedriveAll(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantOut   string
		wantAdded uint64
		wantLeft  uint64 // DLQ messages left, the advisory included
	}{
		{name: "all", args: []string{"--all"}, wantOut: "Re-drove 3 dead letters (0 had already been re-driven, 0 failed and stay in the DLQ).", wantAdded: 3, wantLeft: 1},
		{name: "one consumer", args: []string{"--all", "--consumer", "binding"}, wantOut: "Re-drove 2 dead letters", wantAdded: 2, wantLeft: 2},
		{name: "json", args: []string{"--all", "--stream", "SLACK", "--json"}, wantOut: `"redriven": 3`, wantAdded: 3, wantLeft: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			populateDead(t, n.JS)
			code, stdout, stderr := runCLI(t, n.URL, append([]string{"dlq", "redrive"}, tt.args...)...)
			if code != 0 || !strings.Contains(stdout, tt.wantOut) {
				t.Fatalf("exit %d stdout %q stderr %q, want %q", code, stdout, stderr, tt.wantOut)
			}
			if got := streamState(t, n.JS, events.StreamSlack).Msgs; got != 3+tt.wantAdded {
				t.Errorf("SLACK holds %d messages, want %d", got, 3+tt.wantAdded)
			}
			if got := streamState(t, n.JS, events.StreamDLQ).Msgs; got != tt.wantLeft {
				t.Errorf("DLQ holds %d messages, want %d", got, tt.wantLeft)
			}
		})
	}
}

func TestDLQUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no command", args: []string{"dlq"}, wantErr: "say what to do"},
		{name: "unknown command", args: []string{"dlq", "drop"}, wantErr: `unknown dlq command "drop"`},
		{name: "redrive id and all", args: []string{"dlq", "redrive", "3", "--all"}, wantErr: "either an id or --all"},
		{name: "redrive nothing", args: []string{"dlq", "redrive"}, wantErr: "or --all"},
		{name: "redrive filter without all", args: []string{"dlq", "redrive", "3", "--consumer", "x"}, wantErr: "select dead letters for --all"},
		{name: "list with an id", args: []string{"dlq", "list", "3"}, wantErr: "dlq show ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "nats://127.0.0.1:1", tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d stderr %q, want 2 and %q", code, stderr, tt.wantErr)
			}
		})
	}
}

func TestDLQPurge(t *testing.T) {
	n := testenv.StartStreams(t)
	populateDead(t, n.JS)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
		wantLeft uint64
	}{
		{name: "without --yes refuses", args: []string{"dlq", "purge"}, wantCode: 2, wantErr: "cannot be undone; check them with `orgbridge dlq list`, then run `orgbridge dlq purge --yes`", wantLeft: 4},
		{name: "with --yes", args: []string{"dlq", "purge", "--yes"}, wantOut: "Purged 3 dead letters.", wantLeft: 1},
		{name: "again", args: []string{"dlq", "purge", "--yes"}, wantOut: "Purged 0 dead letters.", wantLeft: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, n.URL, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d stdout %q stderr %q, want %d, %q, %q", code, stdout, stderr, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if got := streamState(t, n.JS, events.StreamDLQ).Msgs; got != tt.wantLeft {
				t.Errorf("DLQ holds %d messages, want %d", got, tt.wantLeft)
			}
		})
	}
}

// A body that is not valid UTF-8 (an event whose JSON holds stray bytes)
// leaves `dlq list --json` and `dlq show --json` readable by jq: valid UTF-8,
// the body in base64 with body_encoding saying so.
func TestDLQJSONWithInvalidUTF8Body(t *testing.T) {
	n := testenv.StartStreams(t)
	body := "{\"event_id\":\"Ev-9\",\"text\":\"caf\xe9\"}"
	id := strconv.FormatUint(parkDead(t, n.JS, pub(t, n.JS, "slack.events.T1.message", "Ev-9", body), "binding", "bad"), 10)
	tests := []struct {
		name string
		args []string
		list bool
	}{
		{"list", []string{"dlq", "list", "--json"}, true},
		{"show", []string{"dlq", "show", id, "--json"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, n.URL, tt.args...)
			if code != 0 || !utf8.ValidString(stdout) {
				t.Fatalf("exit %d (%s), output valid UTF-8: %v:\n%q", code, stderr, utf8.ValidString(stdout), stdout)
			}
			type entry struct {
				Body         string `json:"body"`
				BodyEncoding string `json:"body_encoding"`
			}
			var got []entry
			if tt.list {
				err := json.Unmarshal([]byte(stdout), &got)
				if err != nil || len(got) != 1 {
					t.Fatalf("%d entries (%v):\n%s", len(got), err, stdout)
				}
			} else {
				var e entry
				if err := json.Unmarshal([]byte(stdout), &e); err != nil {
					t.Fatalf("%v:\n%s", err, stdout)
				}
				got = append(got, e)
			}
			raw, err := base64.StdEncoding.DecodeString(got[0].Body)
			if got[0].BodyEncoding != "base64" || err != nil || string(raw) != body {
				t.Fatalf("body %q (%s, %v), want the original bytes in base64", got[0].Body, got[0].BodyEncoding, err)
			}
		})
	}
	code, stdout, _ := runCLI(t, n.URL, "dlq", "show", id)
	if code != 0 || !strings.Contains(stdout, "not UTF-8, shown in base64):\n"+base64.StdEncoding.EncodeToString([]byte(body))) {
		t.Fatalf("dlq show: exit %d:\n%s", code, stdout)
	}
}
