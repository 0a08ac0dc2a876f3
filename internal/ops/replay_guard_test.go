package ops

import (
	"errors"
	"testing"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestReplayRefusesDLQ covers a replay of the DLQ stream: its copies (dead
// letters, captured advisories) would only become more dead letters.
func TestReplayRefusesDLQ(t *testing.T) {
	n := testenv.StartStreams(t)
	f := populateDLQ(t, n.JS)
	before := streamMsgs(t, n.JS, events.StreamDLQ)
	for _, stream := range []string{events.StreamDLQ, "dlq"} {
		t.Run(stream, func(t *testing.T) {
			if err := (ReplayConfig{Stream: stream, FromSeq: 1}).Validate(); !errors.Is(err, ErrReplayDLQ) {
				t.Errorf("Validate() = %v, want %v", err, ErrReplayDLQ)
			}
			sum, err := Replay(testCtx(t), n.JS, ReplayConfig{Stream: stream, FromSeq: f.ids[0]}, nil)
			if !errors.Is(err, ErrReplayDLQ) || sum != nil {
				t.Errorf("Replay = %+v, %v; want %v and no summary", sum, err, ErrReplayDLQ)
			}
		})
	}
	if got := streamMsgs(t, n.JS, events.StreamDLQ); got != before {
		t.Errorf("DLQ holds %d messages after the refused replays, want %d", got, before)
	}
}

// TestReplayDisconnectDefaultsToRequests covers a DISCONNECT replay without
// subjects: it re-delivers the requests, never the results other systems read.
func TestReplayDisconnectDefaultsToRequests(t *testing.T) {
	reqE1, reqE2 := events.DisconnectRequestSubject("E1"), events.DisconnectRequestSubject("E2")
	resE1 := events.DisconnectResultSubject("E1")
	tests := []struct {
		name         string
		cfg          ReplayConfig
		consumer     []string // filter subjects of a durable "disconnect", when set
		wantSubjects map[string]int
		wantFilter   []string
	}{
		{
			name:         "no subjects: requests only",
			cfg:          ReplayConfig{},
			wantSubjects: map[string]int{reqE1: 1, reqE2: 1},
			wantFilter:   []string{DisconnectRequestSubjects},
		},
		{
			name:         "explicit subject: results too",
			cfg:          ReplayConfig{Subjects: []string{resE1}},
			wantSubjects: map[string]int{resE1: 2},
			wantFilter:   []string{resE1},
		},
		{
			name:         "consumer on one team's requests",
			cfg:          ReplayConfig{Consumer: "disconnect"},
			consumer:     []string{reqE1},
			wantSubjects: map[string]int{reqE1: 1},
			wantFilter:   []string{reqE1},
		},
		{
			name:         "consumer on every disconnect subject",
			cfg:          ReplayConfig{Consumer: "disconnect"},
			consumer:     []string{"disconnect.>"},
			wantSubjects: map[string]int{reqE1: 1, reqE2: 1},
			wantFilter:   []string{DisconnectRequestSubjects},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			if tt.consumer != nil {
				createDurable(t, n.JS, events.StreamDisconnect, "disconnect", tt.consumer...)
			}
			first := publish(t, n.JS, reqE1, "req-1", `{"request_id":"req-1"}`)
			publish(t, n.JS, resE1, "res-1-accepted", `{"request_id":"req-1","state":"accepted"}`)
			publish(t, n.JS, reqE2, "req-2", `{"request_id":"req-2"}`)
			last := publish(t, n.JS, resE1, "res-1-done", `{"request_id":"req-1","state":"done"}`)

			cfg := tt.cfg
			cfg.Stream, cfg.FromSeq = events.StreamDisconnect, first
			sum, err := Replay(testCtx(t), n.JS, cfg, nil)
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if len(sum.Subjects) != len(tt.wantFilter) || (len(tt.wantFilter) > 0 && sum.Subjects[0] != tt.wantFilter[0]) {
				t.Errorf("filter = %v, want %v", sum.Subjects, tt.wantFilter)
			}
			got := map[string]int{}
			for _, m := range msgsAfter(t, n.JS, events.StreamDisconnect, last) {
				got[m.Subject]++
			}
			if len(got) != len(tt.wantSubjects) {
				t.Fatalf("copies per subject = %v, want %v", got, tt.wantSubjects)
			}
			for s, c := range tt.wantSubjects {
				if got[s] != c {
					t.Errorf("copies per subject = %v, want %v", got, tt.wantSubjects)
				}
			}
		})
	}
}

func TestSubjectWithin(t *testing.T) {
	tests := []struct {
		filter string
		want   bool
	}{
		{"disconnect.requests.*", true},
		{"disconnect.requests.E1", true},
		{"disconnect.requests.>", false},
		{"disconnect.>", false},
		{"disconnect.*.E1", false},
		{"disconnect.results.E1", false},
		{"disconnect.requests.E1.x", false},
		{"disconnect.requests", false},
	}
	for _, tt := range tests {
		if got := subjectWithin(tt.filter, DisconnectRequestSubjects); got != tt.want {
			t.Errorf("subjectWithin(%q) = %v, want %v", tt.filter, got, tt.want)
		}
	}
}
