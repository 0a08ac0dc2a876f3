package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// maxErrorHeader bounds the error text stored in [events.HeaderDLQError].
const maxErrorHeader = 1024

// deadLetter is what a DLQ copy is made from.
type deadLetter struct {
	stream, subject, consumer string
	seq, deliveries           uint64
	header                    nats.Header
	data                      []byte
	reason                    string
}

// DLQMsgID is the Nats-Msg-Id of the dead letter of message seq of stream for
// consumer. The handler's copy and the max-deliveries capture's use the same
// one, so the DLQ stream stores a message once however many paths copy it.
func DLQMsgID(stream string, seq uint64, consumer string) string {
	return "dlq:" + stream + ":" + strconv.FormatUint(seq, 10) + ":" + consumer
}

// publishDLQ stores the dead letter d on dlq.<stream>.<consumer> with the
// original body and headers plus the dead-letter headers, and waits for the
// DLQ stream's acknowledgement.
func (r *Runner) publishDLQ(ctx context.Context, d deadLetter) error {
	msg := nats.NewMsg(events.DLQSubject(d.stream, d.consumer))
	msg.Data = d.data
	for k, vs := range d.header {
		if jsControlHeader(k) {
			continue
		}
		msg.Header[k] = append([]string(nil), vs...)
	}
	if msg.Header.Get(events.HeaderOriginID) == "" {
		// Keep the original's identity: the copy's own Nats-Msg-Id is the DLQ's.
		msg.Header.Set(events.HeaderOriginID, events.MessageIdentity(d.header, d.stream, d.seq))
	}
	msg.Header.Set(events.HeaderDLQStream, d.stream)
	msg.Header.Set(events.HeaderDLQSeq, strconv.FormatUint(d.seq, 10))
	msg.Header.Set(events.HeaderDLQSubject, d.subject)
	msg.Header.Set(events.HeaderDLQConsumer, d.consumer)
	msg.Header.Set(events.HeaderDLQDeliveries, strconv.FormatUint(d.deliveries, 10))
	msg.Header.Set(events.HeaderDLQError, truncate(d.reason, maxErrorHeader))
	msg.Header.Set(events.HeaderDLQFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.PublishTimeout)
		defer cancel()
	}
	_, err := r.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(DLQMsgID(d.stream, d.seq, d.consumer)),
		jetstream.WithExpectStream(events.StreamDLQ))
	if err != nil {
		return fmt.Errorf("bus: storing dead letter %s#%d for %s: %w", d.stream, d.seq, d.consumer, err)
	}
	return nil
}

// jsControlHeader reports headers that steer JetStream at publish time and
// must not travel on a copy: the de-duplication id and the expectations.
func jsControlHeader(k string) bool {
	return k == events.HeaderMsgID || k == "Nats-Rollup" || k == "Nats-TTL" || strings.HasPrefix(k, "Nats-Expected-")
}

// maxDeliveriesAdvisory is the part of the server's
// io.nats.jetstream.advisory.v1.max_deliver advisory the capture needs.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// captureRegistration is the consumer that turns MAX_DELIVERIES advisories,
// which the DLQ stream stores, into dead letters.
func (r *Runner) captureRegistration() *registration {
	cfg := ConsumerConfig{
		Stream:         events.StreamDLQ,
		Durable:        r.cfg.CaptureDurable,
		FilterSubjects: []string{events.MaxDeliveriesAdvisoryPrefix + ">"},
		// Unlimited: the capture itself never gives up (and so never raises an
		// advisory of its own); transient failures are retried with backoff.
		MaxDeliver:  -1,
		Concurrency: 2,
	}.withDefaults()
	return &registration{cfg: cfg, handler: r.wrap(cfg, r.captureAdvisory, nil)}
}

// captureAdvisory stores the dead letter an advisory stands for, then deletes
// the advisory from the DLQ stream so only dead letters remain there.
func (r *Runner) captureAdvisory(ctx context.Context, m *Message) error {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		return Permanent(fmt.Errorf("decoding max-deliveries advisory: %w", err))
	}
	if adv.Stream == "" || adv.Consumer == "" || adv.StreamSeq == 0 {
		return Permanent(fmt.Errorf("max-deliveries advisory without stream, consumer or sequence: %s", truncate(string(m.Data), 200)))
	}
	log := LoggerFrom(ctx).With(slog.String("original_stream", adv.Stream),
		slog.String("original_consumer", adv.Consumer), slog.Uint64("original_seq", adv.StreamSeq))
	if adv.Stream == events.StreamDLQ {
		// A consumer of dead letters gave up on one; copying it into the DLQ
		// again could loop. The dead letter itself is still there.
		log.Error("a consumer on the DLQ stream exhausted its deliveries; no copy made")
		return r.deleteAdvisory(ctx, m)
	}
	d := deadLetter{
		stream: adv.Stream, seq: adv.StreamSeq, consumer: adv.Consumer, deliveries: adv.Deliveries,
		reason: fmt.Sprintf("gave up after %d deliveries without an outcome (worker crashed or timed out)", adv.Deliveries),
	}
	raw, err := r.originalMessage(ctx, adv.Stream, adv.StreamSeq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
		// Aged out or purged: park what is known so the failure is still seen.
		d.reason += "; the original message is no longer in its stream"
	case err != nil:
		return err
	default:
		d.subject, d.header, d.data = raw.Subject, raw.Header, raw.Data
	}
	if err := r.publishDLQ(ctx, d); err != nil {
		return err
	}
	r.metrics.deadLetters.WithLabelValues(adv.Stream, adv.Consumer, "max_deliveries").Inc()
	log.Warn("captured a message that ran out of deliveries into the DLQ", slog.Uint64("deliveries", adv.Deliveries))
	return r.deleteAdvisory(ctx, m)
}

func (r *Runner) originalMessage(ctx context.Context, stream string, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("bus: opening stream %s: %w", stream, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("bus: reading %s#%d: %w", stream, seq, err)
	}
	return raw, nil
}

func (r *Runner) deleteAdvisory(ctx context.Context, m *Message) error {
	s, err := r.js.Stream(ctx, m.Stream)
	if err != nil {
		return fmt.Errorf("bus: opening stream %s: %w", m.Stream, err)
	}
	if err := s.DeleteMsg(ctx, m.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("bus: deleting advisory %s#%d: %w", m.Stream, m.StreamSeq, err)
	}
	return nil
}
