package ops

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// dlqFixture is a DLQ populated the way the worker runtime populates it: two
// dead letters for binding, one for mapping, and a captured advisory between them.
type dlqFixture struct {
	origs    []uint64 // sequences in SLACK
	ids      []uint64 // dead letter ids, in the order of origs
	advisory uint64
}

func populateDLQ(t *testing.T, js jetstream.JetStream) dlqFixture {
	t.Helper()
	var f dlqFixture
	f.origs = append(f.origs,
		publish(t, js, subjInstall, "Inst-1", `{"team":"T1","token":"x"}`, events.HeaderTeam, "T1"),
		publish(t, js, subjMsg, "Ev-1", `{"event_id":"Ev-1"}`, events.HeaderTeam, "T1"),
		publish(t, js, subjCommand, "Cmd-1", "text=hello", events.HeaderTeam, "T1"),
	)
	f.ids = append(f.ids, parkFromStream(t, js, events.StreamSlack, f.origs[0], "binding", "org expired: "+strings.Repeat("x", 100)))
	f.advisory = captureAdvisory(t, js, events.StreamSlack, "binding")
	f.ids = append(f.ids,
		parkFromStream(t, js, events.StreamSlack, f.origs[1], "binding", "handler panicked"),
		parkFromStream(t, js, events.StreamSlack, f.origs[2], "mapping", "bad form body"),
	)
	return f
}

func TestListDeadLetters(t *testing.T) {
	tests := []struct {
		name    string
		filter  DLQFilter
		wantIdx []int // indexes into the fixture
	}{
		{name: "all", wantIdx: []int{0, 1, 2}},
		{name: "by consumer", filter: DLQFilter{Consumer: "binding"}, wantIdx: []int{0, 1}},
		{name: "by stream and consumer", filter: DLQFilter{Stream: events.StreamSlack, Consumer: "mapping"}, wantIdx: []int{2}},
		{name: "by another stream", filter: DLQFilter{Stream: events.StreamOrg}},
	}
	n := testenv.StartStreams(t)
	f := populateDLQ(t, n.JS)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ListDeadLetters(testCtx(t), n.JS, tt.filter)
			if err != nil {
				t.Fatalf("ListDeadLetters: %v", err)
			}
			if len(got) != len(tt.wantIdx) {
				t.Fatalf("got %d dead letters, want %d: %+v", len(got), len(tt.wantIdx), got)
			}
			for i, idx := range tt.wantIdx {
				d := got[i]
				orig := getMsg(t, n.JS, events.StreamSlack, f.origs[idx])
				if d.ID != f.ids[idx] || d.Stream != events.StreamSlack || d.Seq != f.origs[idx] || d.Subject != orig.Subject || d.Deliveries != 5 || d.FailedAt.IsZero() {
					t.Errorf("dead letter %d = %+v, want id %d for SLACK seq %d on %s", i, d, f.ids[idx], f.origs[idx], orig.Subject)
				}
			}
		})
	}
}

func TestListDeadLettersEmpty(t *testing.T) {
	n := testenv.StartStreams(t)
	captureAdvisory(t, n.JS, events.StreamSlack, "binding")
	got, err := ListDeadLetters(testCtx(t), n.JS, DLQFilter{})
	if err != nil || len(got) != 0 {
		t.Fatalf("ListDeadLetters = %v, %v; want none", got, err)
	}
}

func TestGetDeadLetter(t *testing.T) {
	n := testenv.StartStreams(t)
	f := populateDLQ(t, n.JS)
	tests := []struct {
		name     string
		id       uint64
		wantErr  error
		wantBody string
		wantCons string
	}{
		{name: "json body", id: f.ids[0], wantBody: `{"team":"T1","token":"x"}`, wantCons: "binding"},
		{name: "form body", id: f.ids[2], wantBody: `"text=hello"`, wantCons: "mapping"},
		{name: "advisory", id: f.advisory, wantErr: ErrNotDeadLetter},
		{name: "missing", id: 999, wantErr: ErrDeadLetterNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := GetDeadLetter(testCtx(t), n.JS, tt.id)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("GetDeadLetter error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetDeadLetter: %v", err)
			}
			if string(d.Body()) != tt.wantBody || d.Consumer != tt.wantCons || d.Header.Get(events.HeaderTeam) != "T1" {
				t.Errorf("dead letter = %+v body %s, want body %s consumer %s", d, d.Body(), tt.wantBody, tt.wantCons)
			}
			b, err := json.Marshal(d)
			if err != nil || !strings.Contains(string(b), `"body":`+tt.wantBody) || !strings.Contains(string(b), `"`+events.HeaderDLQError+`"`) {
				t.Errorf("JSON form %s (%v) lacks the body or the headers", b, err)
			}
		})
	}
}

func TestRedrive(t *testing.T) {
	n := testenv.StartStreams(t)
	f := populateDLQ(t, n.JS)
	last := getLastSeq(t, n.JS, events.StreamSlack)

	r, err := Redrive(testCtx(t), n.JS, f.ids[1])
	if err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	if r.Duplicate || r.Seq != last+1 || r.Subject != subjMsg {
		t.Errorf("result = %+v, want a new copy at SLACK seq %d on %s", r, last+1, subjMsg)
	}
	orig := getMsg(t, n.JS, events.StreamSlack, f.origs[1])
	cp := getMsg(t, n.JS, events.StreamSlack, r.Seq)
	checks := []struct{ name, got, want string }{
		{"subject", cp.Subject, orig.Subject},
		{"body", string(cp.Data), string(orig.Data)},
		{"identity", events.MessageIdentity(cp.Header, events.StreamSlack, cp.Sequence), events.MessageIdentity(orig.Header, events.StreamSlack, orig.Sequence)},
		{events.HeaderOriginID, cp.Header.Get(events.HeaderOriginID), "Ev-1"},
		{events.HeaderReplayFor, cp.Header.Get(events.HeaderReplayFor), "binding"},
		{events.HeaderMsgID, cp.Header.Get(events.HeaderMsgID), RedriveMsgID("Ev-1", f.ids[1])},
		{events.HeaderTeam, cp.Header.Get(events.HeaderTeam), "T1"},
		{events.HeaderDLQError, cp.Header.Get(events.HeaderDLQError), ""},
		{events.HeaderDLQConsumer, cp.Header.Get(events.HeaderDLQConsumer), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("copy %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if _, err := GetDeadLetter(testCtx(t), n.JS, f.ids[1]); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Errorf("dead letter still there after re-drive: %v", err)
	}
	if _, err := Redrive(testCtx(t), n.JS, f.ids[1]); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Errorf("second Redrive error = %v, want %v", err, ErrDeadLetterNotFound)
	}
	if got := getLastSeq(t, n.JS, events.StreamSlack); got != last+1 {
		t.Errorf("SLACK last seq = %d after re-driving once and retrying, want %d", got, last+1)
	}
	rest, err := ListDeadLetters(testCtx(t), n.JS, DLQFilter{})
	if err != nil || len(rest) != 2 {
		t.Errorf("left in the DLQ: %v (%v), want the other 2", rest, err)
	}
}

// TestRedriveTwiceStoresOnce covers a re-drive retried after its first attempt
// stored the copy but did not delete the dead letter.
func TestRedriveTwiceStoresOnce(t *testing.T) {
	n := testenv.StartStreams(t)
	f := populateDLQ(t, n.JS)
	d, err := GetDeadLetter(testCtx(t), n.JS, f.ids[0])
	if err != nil {
		t.Fatalf("GetDeadLetter: %v", err)
	}
	before := streamMsgs(t, n.JS, events.StreamSlack)
	tests := []struct {
		name          string
		wantDuplicate bool
	}{
		{name: "first publish stores", wantDuplicate: false},
		{name: "second publish is a duplicate", wantDuplicate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack, err := republish(testCtx(t), n.JS, d)
			if err != nil {
				t.Fatalf("republish: %v", err)
			}
			if ack.Duplicate != tt.wantDuplicate {
				t.Errorf("duplicate = %v, want %v", ack.Duplicate, tt.wantDuplicate)
			}
		})
	}
	if got := streamMsgs(t, n.JS, events.StreamSlack); got != before+1 {
		t.Errorf("SLACK holds %d messages, want %d", got, before+1)
	}
	r, err := Redrive(testCtx(t), n.JS, f.ids[0])
	if err != nil || !r.Duplicate {
		t.Errorf("Redrive after the retry = %+v, %v; want a duplicate", r, err)
	}
	if got := streamMsgs(t, n.JS, events.StreamSlack); got != before+1 {
		t.Errorf("SLACK holds %d messages after Redrive, want %d", got, before+1)
	}
}

func TestRedriveAll(t *testing.T) {
	tests := []struct {
		name         string
		filter       DLQFilter
		wantRedriven int
		wantLeft     int
	}{
		{name: "everything", wantRedriven: 3},
		{name: "one consumer", filter: DLQFilter{Consumer: "binding"}, wantRedriven: 2, wantLeft: 1},
		{name: "nothing matches", filter: DLQFilter{Stream: events.StreamOrg}, wantLeft: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			f := populateDLQ(t, n.JS)
			before := streamMsgs(t, n.JS, events.StreamSlack)
			sum, err := RedriveAll(testCtx(t), n.JS, tt.filter, nil)
			if err != nil {
				t.Fatalf("RedriveAll: %v", err)
			}
			if sum.Redriven != tt.wantRedriven || sum.Failed != 0 || sum.Duplicates != 0 {
				t.Errorf("summary = %+v, want %d re-driven", sum, tt.wantRedriven)
			}
			if got := streamMsgs(t, n.JS, events.StreamSlack); got != before+uint64(tt.wantRedriven) {
				t.Errorf("SLACK holds %d messages, want %d", got, before+uint64(tt.wantRedriven))
			}
			left, err := ListDeadLetters(testCtx(t), n.JS, DLQFilter{})
			if err != nil || len(left) != tt.wantLeft {
				t.Errorf("left in the DLQ: %d (%v), want %d", len(left), err, tt.wantLeft)
			}
			// The advisory is the runtime's to convert: never touched.
			if m := getMsg(t, n.JS, events.StreamDLQ, f.advisory); !strings.HasPrefix(m.Subject, events.MaxDeliveriesAdvisoryPrefix) {
				t.Errorf("advisory replaced by %s", m.Subject)
			}
		})
	}
}

func TestRedriveWithoutOriginalSubjectFails(t *testing.T) {
	n := testenv.StartStreams(t)
	id := park(t, n.JS, deadLetter{stream: events.StreamSlack, consumer: "binding", seq: 7, body: "{}"})
	sum, err := RedriveAll(testCtx(t), n.JS, DLQFilter{}, nil)
	if err != nil {
		t.Fatalf("RedriveAll: %v", err)
	}
	if sum.Failed != 1 || !strings.Contains(sum.Results[0].Error, ErrNoOriginalSubject.Error()) {
		t.Errorf("summary = %+v, want one failure naming the missing subject", sum)
	}
	if _, err := GetDeadLetter(testCtx(t), n.JS, id); err != nil {
		t.Errorf("failed dead letter was removed: %v", err)
	}
}

func TestPurgeDeadLetters(t *testing.T) {
	tests := []struct {
		name      string
		populate  bool
		filter    DLQFilter
		wantCount uint64
		wantLeft  int
	}{
		{name: "populated", populate: true, wantCount: 3},
		{name: "empty"},
		{name: "one consumer", populate: true, filter: DLQFilter{Consumer: "binding"}, wantCount: 2, wantLeft: 1},
		{name: "stream and consumer", populate: true, filter: DLQFilter{Stream: events.StreamSlack, Consumer: "mapping"}, wantCount: 1, wantLeft: 2},
		{name: "no match", populate: true, filter: DLQFilter{Stream: events.StreamOrg}, wantCount: 0, wantLeft: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			advisory := captureAdvisory(t, n.JS, events.StreamSlack, "binding")
			if tt.populate {
				populateDLQ(t, n.JS)
			}
			got, err := PurgeDeadLetters(testCtx(t), n.JS, tt.filter)
			if err != nil || got != tt.wantCount {
				t.Fatalf("PurgeDeadLetters = %d, %v; want %d", got, err, tt.wantCount)
			}
			left, err := ListDeadLetters(testCtx(t), n.JS, DLQFilter{})
			if err != nil || len(left) != tt.wantLeft {
				t.Errorf("left after purge: %v (%v); want %d", left, err, tt.wantLeft)
			}
			for _, d := range left {
				if tt.filter.match(&d) {
					t.Errorf("dead letter %d matches the filter but was kept", d.ID)
				}
			}
			if m := getMsg(t, n.JS, events.StreamDLQ, advisory); !strings.HasPrefix(m.Subject, events.MaxDeliveriesAdvisoryPrefix) {
				t.Errorf("advisory gone after purge")
			}
		})
	}
}

// TestRedriveAfterDLQRecreated covers a DLQ stream recreated within the
// duplicate window: its sequences start over, so a different dead letter is
// parked at the id of one already re-driven. Its re-drive must publish it, not
// take it for a duplicate and delete it unpublished.
func TestRedriveAfterDLQRecreated(t *testing.T) {
	n := testenv.StartStreams(t)
	first := publish(t, n.JS, subjMsg, "Ev-A", `{"event_id":"Ev-A"}`, events.HeaderTeam, "T1")
	id := parkFromStream(t, n.JS, events.StreamSlack, first, "mapping", "boom")
	if r, err := Redrive(testCtx(t), n.JS, id); err != nil || r.Duplicate {
		t.Fatalf("first Redrive = %+v, %v; want a new copy", r, err)
	}

	if err := n.JS.DeleteStream(testCtx(t), events.StreamDLQ); err != nil {
		t.Fatalf("deleting the DLQ stream: %v", err)
	}
	n.EnsureStreams(t)
	second := publish(t, n.JS, subjMsg, "Ev-B", `{"event_id":"Ev-B"}`, events.HeaderTeam, "T1")
	if got := parkFromStream(t, n.JS, events.StreamSlack, second, "mapping", "boom"); got != id {
		t.Fatalf("new dead letter parked at id %d, want the re-used id %d", got, id)
	}

	last := getLastSeq(t, n.JS, events.StreamSlack)
	r, err := Redrive(testCtx(t), n.JS, id)
	if err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	if r.Duplicate || r.Seq != last+1 {
		t.Fatalf("Redrive = %+v, want a new copy at SLACK seq %d", r, last+1)
	}
	cp := getMsg(t, n.JS, events.StreamSlack, r.Seq)
	if string(cp.Data) != `{"event_id":"Ev-B"}` || cp.Header.Get(events.HeaderOriginID) != "Ev-B" ||
		cp.Header.Get(events.HeaderMsgID) != RedriveMsgID("Ev-B", id) {
		t.Errorf("copy = %s %v, want Ev-B's body and identity", cp.Data, cp.Header)
	}
}

// Bodies that are not valid UTF-8 (here inside what is otherwise JSON, and
// plain binary) come out as base64, so the JSON form is always valid UTF-8
// and the bytes survive; JSON and text bodies stay readable.
func TestDeadLetterBodyEncoding(t *testing.T) {
	n := testenv.StartStreams(t)
	tests := []struct {
		name, body, wantEncoding string
		wantBody                 string // the "body" member
	}{
		{"json", `{"team":"T1"}`, BodyJSON, `{"team":"T1"}`},
		{"text", "text=héllo", BodyText, `"text=héllo"`},
		{"empty", "", BodyText, `""`},
		{"invalid UTF-8 inside JSON", "{\"text\":\"\xff\xfe\"}", BodyBase64, `"eyJ0ZXh0Ijoi//4ifQ=="`},
		{"binary", "\x00\x80\xc3", BodyBase64, `"AIDD"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := park(t, n.JS, deadLetter{stream: events.StreamSlack, subject: "slack.commands.T1", consumer: "mapping",
				seq: uint64(i + 1), deliveries: 5, err: "bad", body: tt.body, header: nats.Header{events.HeaderTeam: {"T1"}}})
			d, err := GetDeadLetter(testCtx(t), n.JS, id)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(d)
			if err != nil || !utf8.Valid(b) || !json.Valid(b) {
				t.Fatalf("JSON form is not valid UTF-8 JSON (%v): %q", err, b)
			}
			var got struct {
				Body         json.RawMessage `json:"body"`
				BodyEncoding string          `json:"body_encoding"`
			}
			if err := json.Unmarshal(b, &got); err != nil || string(got.Body) != tt.wantBody || got.BodyEncoding != tt.wantEncoding {
				t.Fatalf("body %s encoding %q (%v), want %s %q", got.Body, got.BodyEncoding, err, tt.wantBody, tt.wantEncoding)
			}
			if tt.wantEncoding == BodyBase64 {
				var s string
				_ = json.Unmarshal(got.Body, &s)
				if raw, err := base64.StdEncoding.DecodeString(s); err != nil || string(raw) != tt.body {
					t.Fatalf("base64 body decodes to %q (%v), want the original bytes", raw, err)
				}
			}
		})
	}
}
