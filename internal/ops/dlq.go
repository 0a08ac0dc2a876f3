package ops

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// DeadLetterSubjects is the filter that selects dead letters in the DLQ
// stream. The stream also captures MAX_DELIVERIES advisories, which the worker
// runtime converts into dead letters and deletes; ops never touches those.
const DeadLetterSubjects = "dlq.>"

// DeadLetter is one message in the DLQ stream with its dead-letter headers decoded.
type DeadLetter struct {
	// ID is the message's sequence in the DLQ stream.
	ID uint64 `json:"id"`
	// DLQSubject is the subject the dead letter is stored on (dlq.<stream>.<consumer>).
	DLQSubject string    `json:"dlq_subject"`
	StoredAt   time.Time `json:"stored_at"`
	// FailedAt is when the runtime gave up on the message; zero when the header
	// is missing or unreadable (FailedAtRaw keeps it as written).
	FailedAt    time.Time `json:"failed_at"`
	FailedAtRaw string    `json:"-"`
	// Stream, Seq, Subject and Consumer say where the original message was and
	// which durable consumer failed on it.
	Stream     string `json:"stream"`
	Seq        uint64 `json:"seq"`
	Subject    string `json:"subject"`
	Consumer   string `json:"consumer"`
	Deliveries int    `json:"deliveries"`
	Error      string `json:"error"`
	// Header is every header of the dead letter, the original's and the
	// dead-letter ones.
	Header nats.Header `json:"headers,omitempty"`
	// Data is the original body.
	Data []byte `json:"-"`
}

// Body encodings of a dead letter's JSON form ([DeadLetter.BodyEncoding]).
const (
	// BodyJSON: "body" is the body itself, a JSON value.
	BodyJSON = "json"
	// BodyText: "body" is a string holding the body (valid UTF-8).
	BodyText = "text"
	// BodyBase64: "body" is the body in standard base64; it is not valid
	// UTF-8, so no JSON string can hold it as it is.
	BodyBase64 = "base64"
)

// BodyEncoding says how [DeadLetter.Body] holds the original body.
func (d *DeadLetter) BodyEncoding() string {
	switch {
	case !utf8.Valid(d.Data):
		return BodyBase64
	case len(d.Data) > 0 && json.Valid(d.Data):
		return BodyJSON
	default:
		return BodyText
	}
}

// Body returns the original body for JSON output, as [DeadLetter.BodyEncoding]
// says: the body itself when it is JSON, else a string of its text, else a
// string of its base64. The result is always valid UTF-8, so jq and every
// other JSON reader can read it (json.Valid alone lets invalid UTF-8 through
// inside strings).
func (d *DeadLetter) Body() json.RawMessage {
	var b []byte
	switch d.BodyEncoding() {
	case BodyJSON:
		return json.RawMessage(d.Data)
	case BodyBase64:
		b, _ = json.Marshal(base64.StdEncoding.EncodeToString(d.Data))
	default:
		b, _ = json.Marshal(string(d.Data))
	}
	return b
}

// MarshalJSON adds the body and its encoding to the JSON form of a dead letter.
func (d *DeadLetter) MarshalJSON() ([]byte, error) {
	type plain DeadLetter
	return json.Marshal(struct {
		*plain
		Body         json.RawMessage `json:"body"`
		BodyEncoding string          `json:"body_encoding"`
	}{(*plain)(d), d.Body(), d.BodyEncoding()})
}

// newDeadLetter decodes the headers of a DLQ message.
func newDeadLetter(id uint64, subject string, stored time.Time, h nats.Header, data []byte) DeadLetter {
	d := DeadLetter{
		ID: id, DLQSubject: subject, StoredAt: stored, Header: h, Data: data,
		Stream:      h.Get(events.HeaderDLQStream),
		Subject:     h.Get(events.HeaderDLQSubject),
		Consumer:    h.Get(events.HeaderDLQConsumer),
		Error:       h.Get(events.HeaderDLQError),
		FailedAtRaw: h.Get(events.HeaderDLQFailedAt),
	}
	d.Seq, _ = strconv.ParseUint(h.Get(events.HeaderDLQSeq), 10, 64)
	d.Deliveries, _ = strconv.Atoi(h.Get(events.HeaderDLQDeliveries))
	if t, err := time.Parse(time.RFC3339Nano, d.FailedAtRaw); err == nil {
		d.FailedAt = t
	}
	return d
}

// DLQFilter selects dead letters by where they failed; empty fields match all.
type DLQFilter struct {
	Stream   string
	Consumer string
}

func (f DLQFilter) match(d *DeadLetter) bool {
	return (f.Stream == "" || d.Stream == f.Stream) && (f.Consumer == "" || d.Consumer == f.Consumer)
}

// ListDeadLetters returns the dead letters in the DLQ stream that match f, in
// the order they were parked, all at once: for a DLQ known to be small (the
// console, the CLI and [RedriveAll] read pages, [ListDeadLetterPage]). Only
// messages under [DeadLetterSubjects] are read; the stream's last sequence
// when the call started bounds the read.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, f DLQFilter) ([]DeadLetter, error) {
	s, err := openStream(ctx, js, events.StreamDLQ)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamDLQ, err)
	}
	var out []DeadLetter
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{DeadLetterSubjects}}
	err = scan(ctx, s, occ, info.State.LastSeq, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
		d := newDeadLetter(md.Sequence.Stream, msg.Subject(), md.Timestamp, msg.Headers(), msg.Data())
		if f.match(&d) {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// DeadLetterPage is one page of dead letters, oldest first.
type DeadLetterPage struct {
	Letters []DeadLetter
	// Total is how many dead letters match the filter; Before how many of
	// them come before this page.
	Total, Before uint64
	// Next is the id to pass as after for the next page; 0 when this is the last.
	Next uint64
	// Parked counts every dead letter (whatever the filter) by the stream and
	// consumer it failed in: the choices a filter has.
	Parked []ParkedCount
}

// ParkedCount is how many dead letters one consumer of one stream has.
type ParkedCount struct {
	Stream, Consumer string
	Count            uint64
}

// ListDeadLetterPage returns up to limit dead letters matching f whose id is
// above after (0: from the first), reading only those: the page costs the
// same with ten dead letters or a million. Counts come from the stream's
// per-subject state (dead letters live on dlq.<stream>.<consumer>).
func ListDeadLetterPage(ctx context.Context, js jetstream.JetStream, f DLQFilter, after uint64, limit int) (DeadLetterPage, error) {
	var page DeadLetterPage
	if limit <= 0 {
		return page, errors.New("ops: a page needs a limit above 0")
	}
	s, err := openStream(ctx, js, events.StreamDLQ)
	if err != nil {
		return page, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(DeadLetterSubjects))
	if err != nil {
		return page, fmt.Errorf("stream %s: %w", events.StreamDLQ, err)
	}
	for subj, n := range info.State.Subjects {
		parts := strings.SplitN(strings.TrimPrefix(subj, "dlq."), ".", 2)
		if len(parts) != 2 {
			continue
		}
		c := ParkedCount{Stream: parts[0], Consumer: parts[1], Count: n}
		page.Parked = append(page.Parked, c)
		if f.match(&DeadLetter{Stream: c.Stream, Consumer: c.Consumer}) {
			page.Total += n
		}
	}
	slices.SortFunc(page.Parked, func(a, b ParkedCount) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Consumer, b.Consumer))
	})
	if page.Total == 0 {
		return page, nil
	}
	letters, pending, next, err := readPage(ctx, s, f, after, info.State.LastSeq, limit)
	page.Letters, page.Next = letters, next
	// pending counts what matched from the page's first letter on, up to now:
	// whatever landed since the count above is not in Total yet either.
	page.Before = page.Total - min(page.Total, pending)
	return page, err
}

// readPage reads up to limit dead letters matching f with ids in (after,
// end]. pending is how many matched from the first of them on (0 when none);
// next is the last one's id when more follow up to end, else 0.
func readPage(ctx context.Context, s jetstream.Stream, f DLQFilter, after, end uint64, limit int) (letters []DeadLetter, pending, next uint64, err error) {
	if after >= end {
		return nil, 0, 0, nil
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.subject()},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1}
	errFull := errors.New("page full")
	err = scan(ctx, s, occ, end, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
		if len(letters) == 0 {
			pending = md.NumPending + 1
		}
		if len(letters) == limit {
			next = letters[limit-1].ID
			return errFull
		}
		letters = append(letters, newDeadLetter(md.Sequence.Stream, msg.Subject(), md.Timestamp, msg.Headers(), msg.Data()))
		return nil
	})
	if errors.Is(err, errFull) {
		err = nil
	}
	return letters, pending, next, err
}

// GetDeadLetter returns the dead letter with DLQ stream sequence id.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, id uint64) (*DeadLetter, error) {
	s, err := openStream(ctx, js, events.StreamDLQ)
	if err != nil {
		return nil, err
	}
	return getDeadLetter(ctx, s, id)
}

func getDeadLetter(ctx context.Context, s jetstream.Stream, id uint64) (*DeadLetter, error) {
	raw, err := s.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("dead letter %d: %w (already re-driven or purged?); run `orgbridge dlq list`", id, ErrDeadLetterNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", id, err)
	}
	if !strings.HasPrefix(raw.Subject, "dlq.") {
		return nil, fmt.Errorf("DLQ message %d on %s: %w", id, raw.Subject, ErrNotDeadLetter)
	}
	d := newDeadLetter(raw.Sequence, raw.Subject, raw.Time, raw.Header, raw.Data)
	return &d, nil
}

// RedriveResult is what happened to one dead letter.
type RedriveResult struct {
	ID      uint64 `json:"id"`
	Subject string `json:"subject"`
	// Duplicate is true when the original stream already had this re-drive
	// (same Nats-Msg-Id within its duplicate window) and stored nothing new.
	Duplicate bool `json:"duplicate"`
	// Seq is the stream sequence of the re-driven copy.
	Seq   uint64 `json:"seq,omitempty"`
	Error string `json:"error,omitempty"`
}

// RedriveSummary reports a re-drive.
type RedriveSummary struct {
	Redriven   int             `json:"redriven"`
	Duplicates int             `json:"duplicates"`
	Failed     int             `json:"failed"`
	Results    []RedriveResult `json:"results"`
}

func (s *RedriveSummary) add(r RedriveResult) {
	s.Results = append(s.Results, r)
	switch {
	case r.Error != "":
		s.Failed++
	case r.Duplicate:
		s.Duplicates++
	default:
		s.Redriven++
	}
}

// Redrive re-delivers the dead letter id to the consumer that failed on it:
// it republishes the original body and headers (without the dead-letter
// headers) on the original subject with [events.HeaderOriginID] = the
// original's identity, [events.HeaderReplayFor] = the failing consumer and
// Nats-Msg-Id [RedriveMsgID] (the origin identity and the DLQ id), waits for
// the stream's acknowledgement and only then deletes the dead letter.
// Re-driving the same dead letter again within the duplicate window (say after
// the delete failed) stores nothing new.
func Redrive(ctx context.Context, js jetstream.JetStream, id uint64) (RedriveResult, error) {
	s, err := openStream(ctx, js, events.StreamDLQ)
	if err != nil {
		return RedriveResult{ID: id}, err
	}
	d, err := getDeadLetter(ctx, s, id)
	if err != nil {
		return RedriveResult{ID: id}, err
	}
	return redrive(ctx, js, s, d)
}

// RedriveAll re-drives every dead letter matching f, one at a time as
// [Redrive] does, writing progress to progress (nil for none). A dead letter
// that fails stays in the DLQ and is counted in Failed; the others go on.
func RedriveAll(ctx context.Context, js jetstream.JetStream, f DLQFilter, progress io.Writer) (*RedriveSummary, error) {
	if progress == nil {
		progress = io.Discard
	}
	s, err := openStream(ctx, js, events.StreamDLQ)
	if err != nil {
		return nil, err
	}
	// Only what is parked now: a letter re-driven here that fails again is
	// parked after end and waits for the next re-drive.
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(f.subject()))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamDLQ, err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	sum := &RedriveSummary{Results: []RedriveResult{}}
	last := time.Now()
	done := 0
	// A page at a time, so a DLQ of any size is re-driven in bounded memory.
	for after := uint64(0); ; {
		page, _, next, err := readPage(ctx, s, f, after, info.State.LastSeq, redrivePage)
		if err != nil {
			return sum, err
		}
		for i := range page {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
			r, err := redrive(ctx, js, s, &page[i])
			if err != nil {
				r.Error = err.Error()
			}
			sum.add(r)
			done++
			if time.Since(last) >= DefaultProgressInterval {
				fmt.Fprintf(progress, "re-drove %d/%d (%d%%)\n", done, total, uint64(done)*100/max(total, 1))
				last = time.Now()
			}
		}
		if next == 0 {
			return sum, nil
		}
		after = next
	}
}

// redrivePage is how many dead letters [RedriveAll] holds at a time.
const redrivePage = 100

// RedriveMsgID is the Nats-Msg-Id of the re-drive of dead letter id whose
// original has identity originID: "redrive:<origin id>:<dlq id>". The DLQ id
// alone is not enough: when the DLQ stream is recreated its sequences start
// over, and a different dead letter parked at a re-used id within the
// duplicate window would be taken for a duplicate and deleted unpublished.
func RedriveMsgID(originID string, id uint64) string {
	return "redrive:" + originID + ":" + strconv.FormatUint(id, 10)
}

func redrive(ctx context.Context, js jetstream.JetStream, dlq jetstream.Stream, d *DeadLetter) (RedriveResult, error) {
	r := RedriveResult{ID: d.ID, Subject: d.Subject}
	ack, err := republish(ctx, js, d)
	if err != nil {
		return r, err
	}
	r.Duplicate, r.Seq = ack.Duplicate, ack.Sequence
	if err := dlq.DeleteMsg(ctx, d.ID); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return r, fmt.Errorf("dead letter %d was re-driven but could not be deleted (re-driving it again stores nothing new): %w", d.ID, err)
	}
	return r, nil
}

// republish publishes the copy of d and waits for its acknowledgement.
func republish(ctx context.Context, js jetstream.JetStream, d *DeadLetter) (*jetstream.PubAck, error) {
	if d.Subject == "" {
		return nil, fmt.Errorf("dead letter %d: %w (%s)", d.ID, ErrNoOriginalSubject, events.HeaderDLQSubject)
	}
	orig := copyHeader(d.Header, func(k string) bool {
		return strings.HasPrefix(k, dlqHeaderPrefix) || jsControlHeader(k)
	})
	id := originIdentity(ctx, js, d, orig)
	msg := nats.NewMsg(d.Subject)
	msg.Data = d.Data
	msg.Header = orig
	msg.Header.Set(events.HeaderOriginID, id)
	if d.Consumer != "" {
		msg.Header.Set(events.HeaderReplayFor, d.Consumer)
	} else {
		msg.Header.Del(events.HeaderReplayFor)
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(RedriveMsgID(id, d.ID))}
	if d.Stream != "" {
		opts = append(opts, jetstream.WithExpectStream(d.Stream))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultAckTimeout)
		defer cancel()
	}
	ack, err := js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("re-driving dead letter %d to %s: %w", d.ID, d.Subject, err)
	}
	return ack, nil
}

// originIdentity is the [events.MessageIdentity] of the message d was made
// from: the origin id the dead letter carries when one is there (the failed
// message was itself a copy, or the runtime recorded it); else that of the
// original read back from its stream, so the identity does not depend on which
// Nats-Msg-Id the runtime parked the dead letter with; else, when the original
// has aged out, its stream and sequence.
func originIdentity(ctx context.Context, js jetstream.JetStream, d *DeadLetter, orig nats.Header) string {
	if v := orig.Get(events.HeaderOriginID); v != "" {
		return v
	}
	if d.Stream != "" && d.Seq != 0 {
		if s, err := js.Stream(ctx, d.Stream); err == nil {
			if raw, err := s.GetMsg(ctx, d.Seq); err == nil && raw.Subject == d.Subject {
				return events.MessageIdentity(raw.Header, d.Stream, d.Seq)
			}
		}
	}
	// The dead letter's own Nats-Msg-Id is the one the runtime parked it with,
	// not the original's, so orig (which has none) falls back to stream:seq.
	return events.MessageIdentity(orig, d.Stream, d.Seq)
}

// PurgeDeadLetters removes the dead letters that match f (every one when f is
// empty) and returns how many it removed. Captured advisories are left alone.
// Dead letters live on dlq.<stream>.<consumer>, so the filter is a subject
// filter and the purge is one server-side operation.
func PurgeDeadLetters(ctx context.Context, js jetstream.JetStream, f DLQFilter) (uint64, error) {
	s, err := openStream(ctx, js, events.StreamDLQ)
	if err != nil {
		return 0, err
	}
	subject := f.subject()
	n, err := countSubjects(ctx, s, subject)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return 0, fmt.Errorf("purging %s on stream %s: %w", subject, events.StreamDLQ, err)
	}
	return n, nil
}

// subject is the DLQ subject filter that selects the dead letters f matches.
func (f DLQFilter) subject() string {
	if f.Stream == "" && f.Consumer == "" {
		return DeadLetterSubjects
	}
	tok := func(s string) string {
		if s == "" {
			return "*"
		}
		return events.Token(s)
	}
	return "dlq." + tok(f.Stream) + "." + tok(f.Consumer)
}

// countSubjects counts the messages of s on subjects matching filter.
func countSubjects(ctx context.Context, s jetstream.Stream, filter string) (uint64, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", filter, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}
