package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// Defaults for [ReplayConfig].
const (
	DefaultProgressEvery    = 10000
	DefaultProgressInterval = time.Second
	DefaultPublishWindow    = 256
	DefaultAckTimeout       = 10 * time.Second
)

// ReplayAllConsumers is the Nats-Msg-Id suffix of a replay meant for every
// consumer of the stream.
const ReplayAllConsumers = "all"

// DisconnectRequestSubjects is the subject filter a DISCONNECT replay uses
// when no subjects are given: the requests only (disconnect.requests.*). The
// stream also holds disconnect.results.*, which other systems consume; replaying
// those would announce old results to them again.
var DisconnectRequestSubjects = strings.TrimSuffix(events.DisconnectRequestSubject("x"), "x") + "*"

// ErrReplayDLQ is returned for a replay of the DLQ stream: its dead letters and
// captured MAX_DELIVERIES advisories would come back as more dead letters.
// Dead letters are re-delivered with `orgbridge dlq redrive`.
var ErrReplayDLQ = errors.New("the DLQ stream cannot be replayed: its copies would only become more dead letters; use `orgbridge dlq redrive` to re-deliver dead letters")

// ReplayConfig says which part of a stream to re-deliver and to whom.
type ReplayConfig struct {
	// Stream is the stream to replay, such as [events.StreamSlack].
	Stream string
	// Since starts the replay at the first message stored at or after it.
	// Exactly one of Since and FromSeq is set.
	Since time.Time
	// FromSeq starts the replay at this stream sequence.
	FromSeq uint64
	// ToSeq, when not zero, ends the replay at this stream sequence (inclusive).
	// The replay always ends at the stream's last sequence as of its start, so
	// it never reads its own copies.
	ToSeq uint64
	// Subjects limits the replay to messages on these subjects (wildcards
	// allowed). Empty means the consumer's filter subjects with Consumer, else
	// all; except on [events.StreamDisconnect], where empty means
	// [DisconnectRequestSubjects] (narrowed to the consumer's filter with
	// Consumer), never the results.
	Subjects []string
	// Consumer, when set, names the durable consumer the copies are for: the
	// copies carry [events.HeaderReplayFor] and other consumers skip them.
	Consumer string
	// DryRun reads and counts without publishing anything.
	DryRun bool
	// ProgressEvery and ProgressInterval say how often progress is written:
	// every so many messages or every interval, whichever comes first.
	// Zero means [DefaultProgressEvery] and [DefaultProgressInterval].
	ProgressEvery    int
	ProgressInterval time.Duration
	// PublishWindow bounds the copies awaiting their acknowledgement. Zero means
	// [DefaultPublishWindow].
	PublishWindow int
	// AckTimeout bounds the wait for one copy's acknowledgement. Zero means
	// [DefaultAckTimeout].
	AckTimeout time.Duration
}

// Validate reports a configuration that cannot describe a replay.
func (c ReplayConfig) Validate() error {
	switch {
	case c.Stream == "":
		return errors.New("a stream is required")
	case strings.EqualFold(c.Stream, events.StreamDLQ):
		return ErrReplayDLQ
	case c.Since.IsZero() && c.FromSeq == 0:
		return errors.New("say where the replay starts: one of --since or --from-seq")
	case !c.Since.IsZero() && c.FromSeq != 0:
		return errors.New("--since and --from-seq both say where the replay starts; give only one")
	case c.ToSeq != 0 && c.FromSeq != 0 && c.ToSeq < c.FromSeq:
		return fmt.Errorf("--to-seq %d is before --from-seq %d", c.ToSeq, c.FromSeq)
	case c.ProgressEvery < 0, c.ProgressInterval < 0, c.PublishWindow < 0, c.AckTimeout < 0:
		return errors.New("progress and publish settings may not be negative")
	}
	return nil
}

func (c ReplayConfig) withDefaults() ReplayConfig {
	if c.ProgressEvery == 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.PublishWindow == 0 {
		c.PublishWindow = DefaultPublishWindow
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	return c
}

// SubjectCount is what a replay or a re-drive did on one subject.
type SubjectCount struct {
	Subject string `json:"subject"`
	// Read is how many messages were read on the subject.
	Read int `json:"read"`
	// Published is how many copies were stored.
	Published int `json:"published"`
	// Duplicates is how many copies the stream already had (same Nats-Msg-Id
	// within its duplicate window) and so did not store again.
	Duplicates int `json:"duplicates"`
}

// ReplaySummary reports a replay.
type ReplaySummary struct {
	Stream   string   `json:"stream"`
	Consumer string   `json:"consumer,omitempty"`
	Subjects []string `json:"filter_subjects,omitempty"`
	DryRun   bool     `json:"dry_run"`
	// EndSeq is the last stream sequence the replay could reach: the stream's
	// last sequence when it started, or ToSeq if lower.
	EndSeq uint64 `json:"end_seq"`
	// FirstSeq and LastSeq are the sequences of the first and last message
	// read; both zero when nothing was read.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`

	Read       int `json:"read"`
	Published  int `json:"published"`
	Duplicates int `json:"duplicates"`
	// BySubject breaks the counts down per subject, sorted by subject.
	BySubject []SubjectCount `json:"by_subject"`
	Elapsed   time.Duration  `json:"elapsed_ns"`
}

// Replay re-delivers part of a stream to the workers by republishing copies of
// its messages into the same stream on the same subjects. Each copy keeps the
// original's headers and gets [events.HeaderOriginID] = the original's
// [events.MessageIdentity], [events.HeaderReplayFor] = cfg.Consumer when set,
// and Nats-Msg-Id "replay:<identity>:<consumer or all>", so replaying the same
// range twice within the duplicate window stores nothing the second time.
//
// Progress goes to progress (nil for none). On error the summary says what was
// done before it.
func Replay(ctx context.Context, js jetstream.JetStream, cfg ReplayConfig, progress io.Writer) (*ReplaySummary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	started := time.Now()
	if progress == nil {
		progress = io.Discard
	}

	s, err := openStream(ctx, js, cfg.Stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	filter := cfg.Subjects
	if cfg.Consumer != "" {
		ci, err := s.Consumer(ctx, cfg.Consumer)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			return nil, fmt.Errorf("consumer %q on stream %s: %w; run `orgbridge streams` to list consumers", cfg.Consumer, cfg.Stream, ErrConsumerNotFound)
		case err != nil:
			return nil, fmt.Errorf("consumer %q on stream %s: %w", cfg.Consumer, cfg.Stream, err)
		}
		if len(filter) == 0 {
			filter = consumerFilters(ci.CachedInfo().Config)
		}
	}
	if cfg.Stream == events.StreamDisconnect && len(cfg.Subjects) == 0 {
		filter = disconnectRequestFilter(filter)
	}

	end := info.State.LastSeq
	if cfg.ToSeq != 0 && cfg.ToSeq < end {
		end = cfg.ToSeq
	}
	sum := &ReplaySummary{Stream: cfg.Stream, Consumer: cfg.Consumer, Subjects: filter, DryRun: cfg.DryRun, EndSeq: end}
	if cfg.FromSeq > end {
		sum.Elapsed = time.Since(started)
		return sum, nil
	}

	occ := jetstream.OrderedConsumerConfig{FilterSubjects: filter}
	if cfg.FromSeq != 0 {
		occ.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		occ.OptStartSeq = cfg.FromSeq
	} else {
		since := cfg.Since
		occ.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		occ.OptStartTime = &since
	}

	target := cfg.Consumer
	if target == "" {
		target = ReplayAllConsumers
	}
	counts := map[string]*SubjectCount{}
	count := func(subject string) *SubjectCount {
		c := counts[subject]
		if c == nil {
			c = &SubjectCount{Subject: subject}
			counts[subject] = c
		}
		return c
	}
	pub := &asyncPublisher{js: js, window: cfg.PublishWindow, ackTimeout: cfg.AckTimeout}
	pub.onAck = func(subject string, ack *jetstream.PubAck) {
		c := count(subject)
		if ack.Duplicate {
			c.Duplicates++
			sum.Duplicates++
		} else {
			c.Published++
			sum.Published++
		}
	}

	var total uint64 // estimate, known once the first message tells where the range starts
	lastReport := time.Now()
	report := func(final bool) {
		pct := 100
		if total > 0 && !final {
			pct = min(int(uint64(sum.Read)*100/total), 99)
		}
		shown := total
		if final || shown < uint64(sum.Read) {
			shown = uint64(sum.Read)
		}
		verb := "replayed"
		if cfg.DryRun {
			verb = "read"
		}
		fmt.Fprintf(progress, "%s %d/%d (%d%%)\n", verb, sum.Read, shown, pct)
		lastReport = time.Now()
	}
	reported := false

	err = scan(ctx, s, occ, end, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
		seq := md.Sequence.Stream
		if sum.Read == 0 {
			sum.FirstSeq = seq
			total = min(md.NumPending+1, end-seq+1)
		}
		sum.LastSeq = seq
		sum.Read++
		count(msg.Subject()).Read++
		if !cfg.DryRun {
			id := events.MessageIdentity(msg.Headers(), cfg.Stream, seq)
			cp := nats.NewMsg(msg.Subject())
			cp.Data = msg.Data()
			cp.Header = copyHeader(msg.Headers(), jsControlHeader)
			cp.Header.Set(events.HeaderOriginID, id)
			if cfg.Consumer != "" {
				cp.Header.Set(events.HeaderReplayFor, cfg.Consumer)
			} else {
				cp.Header.Del(events.HeaderReplayFor)
			}
			if err := pub.publish(ctx, cp, jetstream.WithMsgID("replay:"+id+":"+target), jetstream.WithExpectStream(cfg.Stream)); err != nil {
				return fmt.Errorf("replaying %s seq %d: %w", msg.Subject(), seq, err)
			}
		}
		if sum.Read%cfg.ProgressEvery == 0 || time.Since(lastReport) >= cfg.ProgressInterval {
			report(false)
			reported = true
		}
		return nil
	})
	if ferr := pub.flush(ctx); err == nil && ferr != nil {
		err = fmt.Errorf("replaying: %w", ferr)
	}
	if reported && err == nil {
		report(true)
	}
	sum.BySubject = sortedCounts(counts)
	sum.Elapsed = time.Since(started)
	return sum, err
}

// disconnectRequestFilter keeps the filters that select only disconnect
// requests; when none do, it is [DisconnectRequestSubjects].
func disconnectRequestFilter(filters []string) []string {
	var out []string
	for _, f := range filters {
		if subjectWithin(f, DisconnectRequestSubjects) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return []string{DisconnectRequestSubjects}
	}
	return out
}

// subjectWithin reports whether every subject matching filter also matches
// pattern; pattern may use '*' and a final '>'.
func subjectWithin(filter, pattern string) bool {
	ft, pt := strings.Split(filter, "."), strings.Split(pattern, ".")
	for i, p := range pt {
		if p == ">" {
			return len(ft) > i
		}
		if i >= len(ft) {
			return false
		}
		switch {
		case ft[i] == ">":
			return false
		case p == "*":
		case ft[i] != p:
			return false
		}
	}
	return len(ft) == len(pt)
}

// consumerFilters returns the subjects a consumer configuration filters on.
func consumerFilters(cfg jetstream.ConsumerConfig) []string {
	if len(cfg.FilterSubjects) > 0 {
		return append([]string(nil), cfg.FilterSubjects...)
	}
	if cfg.FilterSubject != "" {
		return []string{cfg.FilterSubject}
	}
	return nil
}

func sortedCounts(m map[string]*SubjectCount) []SubjectCount {
	out := make([]SubjectCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out
}

// asyncPublisher publishes with at most window acknowledgements outstanding
// and hands each acknowledgement to onAck in publish order.
type asyncPublisher struct {
	js         jetstream.JetStream
	window     int
	ackTimeout time.Duration
	onAck      func(subject string, ack *jetstream.PubAck)
	inflight   []jetstream.PubAckFuture
}

func (p *asyncPublisher) publish(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) error {
	for len(p.inflight) >= p.window {
		if err := p.waitOldest(ctx); err != nil {
			return err
		}
	}
	f, err := p.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return err
	}
	p.inflight = append(p.inflight, f)
	return nil
}

// flush waits for every outstanding acknowledgement.
func (p *asyncPublisher) flush(ctx context.Context) error {
	var first error
	for len(p.inflight) > 0 {
		if err := p.waitOldest(ctx); err != nil && first == nil {
			first = err
			if ctx.Err() != nil {
				return first
			}
		}
	}
	return first
}

func (p *asyncPublisher) waitOldest(ctx context.Context) error {
	f := p.inflight[0]
	p.inflight = p.inflight[1:]
	timer := time.NewTimer(p.ackTimeout)
	defer timer.Stop()
	select {
	case ack := <-f.Ok():
		p.onAck(f.Msg().Subject, ack)
		return nil
	case err := <-f.Err():
		return fmt.Errorf("publishing a copy on %s: %w", f.Msg().Subject, err)
	case <-timer.C:
		return fmt.Errorf("publishing a copy on %s: no acknowledgement within %s", f.Msg().Subject, p.ackTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
