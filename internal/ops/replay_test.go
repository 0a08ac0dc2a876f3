package ops

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

const (
	subjMsg     = "slack.events.T1.message"
	subjCommand = "slack.commands.T1"
	subjInstall = "slack.install.T1"
)

func TestReplay(t *testing.T) {
	tests := []struct {
		name string
		// setup publishes originals and returns the replay config.
		setup         func(t *testing.T, js jetstream.JetStream) ReplayConfig
		wantErr       error
		wantRead      int
		wantPublished int
		wantSubjects  map[string]int // copies per subject
		wantReplayFor string
	}{
		{
			name: "from-seq and to-seq",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				seqs := publishEvents(t, js, subjMsg, "Ev", 10)
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: seqs[2], ToSeq: seqs[5]}
			},
			wantRead: 4, wantPublished: 4, wantSubjects: map[string]int{subjMsg: 4},
		},
		{
			name: "to-seq beyond the end stops at the last sequence",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				publishEvents(t, js, subjMsg, "Ev", 3)
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: 2, ToSeq: 1000}
			},
			wantRead: 2, wantPublished: 2, wantSubjects: map[string]int{subjMsg: 2},
		},
		{
			name: "since",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				publishEvents(t, js, subjMsg, "Old", 3)
				seqs := publishEvents(t, js, subjMsg, "New", 2)
				since := getMsg(t, js, events.StreamSlack, seqs[0]).Time
				return ReplayConfig{Stream: events.StreamSlack, Since: since}
			},
			wantRead: 2, wantPublished: 2, wantSubjects: map[string]int{subjMsg: 2},
		},
		{
			name: "since after the last message replays nothing",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				seqs := publishEvents(t, js, subjMsg, "Ev", 3)
				since := getMsg(t, js, events.StreamSlack, seqs[2]).Time.Add(time.Millisecond)
				return ReplayConfig{Stream: events.StreamSlack, Since: since}
			},
		},
		{
			name: "subject filter",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				publishEvents(t, js, subjMsg, "Ev", 3)
				publishEvents(t, js, subjCommand, "Cmd", 2)
				publishEvents(t, js, subjMsg, "Ev2", 3)
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: 1, Subjects: []string{"slack.commands.*"}}
			},
			wantRead: 2, wantPublished: 2, wantSubjects: map[string]int{subjCommand: 2},
		},
		{
			name: "consumer sets replay-for and defaults the filter to the consumer's",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				createDurable(t, js, events.StreamSlack, "binding", "slack.install.>")
				publishEvents(t, js, subjMsg, "Ev", 3)
				publishEvents(t, js, subjInstall, "Inst", 2)
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: 1, Consumer: "binding"}
			},
			wantRead: 2, wantPublished: 2, wantSubjects: map[string]int{subjInstall: 2}, wantReplayFor: "binding",
		},
		{
			name: "consumer with an explicit subject",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				createDurable(t, js, events.StreamSlack, "mapping")
				publishEvents(t, js, subjMsg, "Ev", 3)
				publishEvents(t, js, subjCommand, "Cmd", 1)
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: 1, Consumer: "mapping", Subjects: []string{subjCommand}}
			},
			wantRead: 1, wantPublished: 1, wantSubjects: map[string]int{subjCommand: 1}, wantReplayFor: "mapping",
		},
		{
			name: "unknown consumer",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				publishEvents(t, js, subjMsg, "Ev", 3)
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: 1, Consumer: "nobody"}
			},
			wantErr: ErrConsumerNotFound,
		},
		{
			name: "unknown stream",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				return ReplayConfig{Stream: "NOPE", FromSeq: 1}
			},
			wantErr: ErrStreamNotFound,
		},
		{
			name: "from-seq past the end",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				publishEvents(t, js, subjMsg, "Ev", 3)
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: 50}
			},
		},
		{
			name: "empty stream",
			setup: func(t *testing.T, js jetstream.JetStream) ReplayConfig {
				return ReplayConfig{Stream: events.StreamSlack, FromSeq: 1}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			cfg := tt.setup(t, n.JS)
			if tt.wantErr != nil {
				if _, err := Replay(testCtx(t), n.JS, cfg, nil); !errors.Is(err, tt.wantErr) {
					t.Fatalf("Replay error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			before := streamMsgs(t, n.JS, cfg.Stream)
			lastBefore := getLastSeq(t, n.JS, cfg.Stream)

			sum, err := Replay(testCtx(t), n.JS, cfg, nil)
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if sum.Read != tt.wantRead || sum.Published != tt.wantPublished || sum.Duplicates != 0 {
				t.Errorf("read/published/duplicates = %d/%d/%d, want %d/%d/0", sum.Read, sum.Published, sum.Duplicates, tt.wantRead, tt.wantPublished)
			}
			if got := streamMsgs(t, n.JS, cfg.Stream); got != before+uint64(tt.wantPublished) {
				t.Errorf("stream holds %d messages, want %d", got, before+uint64(tt.wantPublished))
			}
			copies := msgsAfter(t, n.JS, cfg.Stream, lastBefore)
			gotSubjects := map[string]int{}
			for _, c := range copies {
				gotSubjects[c.Subject]++
				if got := c.Header.Get(events.HeaderReplayFor); got != tt.wantReplayFor {
					t.Errorf("copy on %s: %s = %q, want %q", c.Subject, events.HeaderReplayFor, got, tt.wantReplayFor)
				}
				target := tt.wantReplayFor
				if target == "" {
					target = ReplayAllConsumers
				}
				wantID := "replay:" + c.Header.Get(events.HeaderOriginID) + ":" + target
				if got := c.Header.Get(events.HeaderMsgID); got != wantID {
					t.Errorf("copy Nats-Msg-Id = %q, want %q", got, wantID)
				}
			}
			if fmt.Sprint(gotSubjects) != fmt.Sprint(orEmpty(tt.wantSubjects)) {
				t.Errorf("copies per subject = %v, want %v", gotSubjects, tt.wantSubjects)
			}
			var perSubject int
			for _, c := range sum.BySubject {
				perSubject += c.Published
			}
			if perSubject != sum.Published {
				t.Errorf("per-subject published sums to %d, summary says %d", perSubject, sum.Published)
			}
		})
	}
}

func getLastSeq(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	return streamState(t, js, stream).LastSeq
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func TestReplayTwiceStoresNothingNew(t *testing.T) {
	tests := []struct {
		name     string
		consumer string
	}{
		{name: "all consumers"},
		{name: "one consumer", consumer: "binding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			if tt.consumer != "" {
				createDurable(t, n.JS, events.StreamSlack, tt.consumer)
			}
			publishEvents(t, n.JS, subjMsg, "Ev", 5)
			publishEvents(t, n.JS, subjCommand, "Cmd", 2)
			cfg := ReplayConfig{Stream: events.StreamSlack, FromSeq: 1, ToSeq: 7, Consumer: tt.consumer}

			first, err := Replay(testCtx(t), n.JS, cfg, nil)
			if err != nil {
				t.Fatalf("first replay: %v", err)
			}
			if first.Published != 7 || first.Duplicates != 0 {
				t.Fatalf("first replay published/duplicates = %d/%d, want 7/0", first.Published, first.Duplicates)
			}
			afterFirst := streamMsgs(t, n.JS, events.StreamSlack)

			second, err := Replay(testCtx(t), n.JS, cfg, nil)
			if err != nil {
				t.Fatalf("second replay: %v", err)
			}
			if second.Read != 7 || second.Published != 0 || second.Duplicates != 7 {
				t.Errorf("second replay read/published/duplicates = %d/%d/%d, want 7/0/7", second.Read, second.Published, second.Duplicates)
			}
			want := []SubjectCount{{Subject: subjCommand, Read: 2, Duplicates: 2}, {Subject: subjMsg, Read: 5, Duplicates: 5}}
			if fmt.Sprint(second.BySubject) != fmt.Sprint(want) {
				t.Errorf("second replay by subject = %+v, want %+v", second.BySubject, want)
			}
			if got := streamMsgs(t, n.JS, events.StreamSlack); got != afterFirst {
				t.Errorf("stream grew from %d to %d messages on the second replay", afterFirst, got)
			}
		})
	}
}

func TestReplayStopsAtLastSequenceAtStart(t *testing.T) {
	n := testenv.StartStreams(t)
	const total = 1200
	publishEvents(t, n.JS, subjMsg, "Ev", total)
	var progress bytes.Buffer
	// A small publish window makes copies land while the replay is still
	// reading: they match the same subject and must not be read back.
	cfg := ReplayConfig{Stream: events.StreamSlack, FromSeq: 1, ProgressEvery: 400, PublishWindow: 8}

	sum, err := Replay(testCtx(t), n.JS, cfg, &progress)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if sum.Read != total || sum.Published != total || sum.EndSeq != total || sum.LastSeq != total {
		t.Errorf("read %d published %d end %d last %d, want all %d", sum.Read, sum.Published, sum.EndSeq, sum.LastSeq, total)
	}
	if got := streamMsgs(t, n.JS, events.StreamSlack); got != 2*total {
		t.Errorf("stream holds %d messages, want %d", got, 2*total)
	}
	for _, want := range []string{"replayed 400/1200 (33%)", "replayed 800/1200 (66%)", "replayed 1200/1200 (100%)"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress %q lacks %q", progress.String(), want)
		}
	}
}

func TestReplayDryRunPublishesNothing(t *testing.T) {
	n := testenv.StartStreams(t)
	publishEvents(t, n.JS, subjMsg, "Ev", 4)
	publishEvents(t, n.JS, subjCommand, "Cmd", 1)
	before := streamMsgs(t, n.JS, events.StreamSlack)

	sum, err := Replay(testCtx(t), n.JS, ReplayConfig{Stream: events.StreamSlack, FromSeq: 2, DryRun: true}, nil)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	want := []SubjectCount{{Subject: subjCommand, Read: 1}, {Subject: subjMsg, Read: 3}}
	if sum.Read != 4 || sum.Published != 0 || !sum.DryRun || fmt.Sprint(sum.BySubject) != fmt.Sprint(want) {
		t.Errorf("summary = %+v, want 4 read, none published, by subject %+v", sum, want)
	}
	if got := streamMsgs(t, n.JS, events.StreamSlack); got != before {
		t.Errorf("dry run changed the stream from %d to %d messages", before, got)
	}
}

func TestReplayCopiesKeepIdentityAndHeaders(t *testing.T) {
	n := testenv.StartStreams(t)
	withID := publish(t, n.JS, subjMsg, "Ev123", `{"a":1}`, events.HeaderTeam, "T1", events.HeaderRequestID, "req-1")
	withoutID := publish(t, n.JS, subjCommand, "", "text=hi", events.HeaderTeam, "T1")
	// A copy from an earlier replay for another consumer: its identity is its
	// origin and a replay for everyone drops the old target.
	copyOf := publish(t, n.JS, subjMsg, "replay:Ev9:mapping", `{"a":9}`, events.HeaderOriginID, "Ev9", events.HeaderReplayFor, "mapping")

	if _, err := Replay(testCtx(t), n.JS, ReplayConfig{Stream: events.StreamSlack, FromSeq: 1}, nil); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	copies := msgsAfter(t, n.JS, events.StreamSlack, copyOf)
	if len(copies) != 3 {
		t.Fatalf("got %d copies, want 3", len(copies))
	}
	tests := []struct {
		name     string
		orig     uint64
		copy     *jetstream.RawStreamMsg
		wantID   string
		wantTeam string
	}{
		{name: "with a msg id", orig: withID, copy: copies[0], wantID: "Ev123", wantTeam: "T1"},
		{name: "without a msg id", orig: withoutID, copy: copies[1], wantID: fmt.Sprintf("SLACK:%d", withoutID), wantTeam: "T1"},
		{name: "a copy", orig: copyOf, copy: copies[2], wantID: "Ev9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := getMsg(t, n.JS, events.StreamSlack, tt.orig)
			origID := events.MessageIdentity(orig.Header, events.StreamSlack, orig.Sequence)
			copyID := events.MessageIdentity(tt.copy.Header, events.StreamSlack, tt.copy.Sequence)
			if origID != tt.wantID || copyID != origID {
				t.Errorf("identity original %q copy %q, want both %q", origID, copyID, tt.wantID)
			}
			if tt.copy.Subject != orig.Subject || string(tt.copy.Data) != string(orig.Data) {
				t.Errorf("copy %s %q, want %s %q", tt.copy.Subject, tt.copy.Data, orig.Subject, orig.Data)
			}
			for _, h := range []string{events.HeaderSchema, events.HeaderTeam, events.HeaderRequestID} {
				if got, want := tt.copy.Header.Get(h), orig.Header.Get(h); got != want {
					t.Errorf("copy header %s = %q, want %q", h, got, want)
				}
			}
			if got := tt.copy.Header.Get(events.HeaderReplayFor); got != "" {
				t.Errorf("copy for all consumers has %s = %q", events.HeaderReplayFor, got)
			}
		})
	}
}

func TestReplayConfigValidate(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		cfg     ReplayConfig
		wantErr string
	}{
		{name: "from-seq", cfg: ReplayConfig{Stream: "SLACK", FromSeq: 1}},
		{name: "since", cfg: ReplayConfig{Stream: "SLACK", Since: now}},
		{name: "no stream", cfg: ReplayConfig{FromSeq: 1}, wantErr: "stream is required"},
		{name: "no start", cfg: ReplayConfig{Stream: "SLACK"}, wantErr: "one of --since or --from-seq"},
		{name: "two starts", cfg: ReplayConfig{Stream: "SLACK", FromSeq: 1, Since: now}, wantErr: "give only one"},
		{name: "to before from", cfg: ReplayConfig{Stream: "SLACK", FromSeq: 5, ToSeq: 4}, wantErr: "before --from-seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
