package ops

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publish stores one message on subject with the given Nats-Msg-Id (none when
// empty) and extra headers, and returns its stream sequence.
func publish(t *testing.T, js jetstream.JetStream, subject, msgID, body string, hdr ...string) uint64 {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	msg.Header.Set(events.HeaderSchema, "1")
	for i := 0; i+1 < len(hdr); i += 2 {
		msg.Header.Set(hdr[i], hdr[i+1])
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := js.PublishMsg(testCtx(t), msg, opts...)
	if err != nil {
		t.Fatalf("publishing on %s: %v", subject, err)
	}
	if ack.Duplicate {
		t.Fatalf("publishing on %s: unexpected duplicate %q", subject, msgID)
	}
	return ack.Sequence
}

// publishEvents stores n Slack events on subject with msg ids prefix-1..prefix-n.
func publishEvents(t *testing.T, js jetstream.JetStream, subject, prefix string, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range n {
		id := prefix + "-" + strconv.Itoa(i+1)
		seqs[i] = publish(t, js, subject, id, `{"event_id":"`+id+`"}`)
	}
	return seqs
}

// streamState reads a stream's current state.
func streamState(t *testing.T, js jetstream.JetStream, stream string) jetstream.StreamState {
	t.Helper()
	s, err := js.Stream(testCtx(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	return streamState(t, js, stream).Msgs
}

func getMsg(t *testing.T, js jetstream.JetStream, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(testCtx(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	m, err := s.GetMsg(testCtx(t), seq)
	if err != nil {
		t.Fatalf("stream %s seq %d: %v", stream, seq, err)
	}
	return m
}

// msgsAfter returns the messages of stream after sequence after, in order.
func msgsAfter(t *testing.T, js jetstream.JetStream, stream string, after uint64) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(testCtx(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := after + 1; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(testCtx(t), seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

func createDurable(t *testing.T, js jetstream.JetStream, stream, name string, filters ...string) jetstream.Consumer {
	t.Helper()
	c, err := js.CreateOrUpdateConsumer(testCtx(t), stream, jetstream.ConsumerConfig{
		Durable:        name,
		FilterSubjects: filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        time.Minute,
	})
	if err != nil {
		t.Fatalf("creating consumer %s: %v", name, err)
	}
	return c
}

// deadLetter is a message parked the way the worker runtime parks one.
type deadLetter struct {
	stream, subject, consumer string
	seq                       uint64
	deliveries                int
	err                       string
	body                      string
	header                    nats.Header // original headers
}

// park publishes d into the DLQ stream with the dead-letter headers and returns its id.
func park(t *testing.T, js jetstream.JetStream, d deadLetter) uint64 {
	t.Helper()
	msg := nats.NewMsg(events.DLQSubject(d.stream, d.consumer))
	msg.Data = []byte(d.body)
	for k, vs := range d.header {
		msg.Header[k] = append([]string(nil), vs...)
	}
	msg.Header.Set(events.HeaderDLQStream, d.stream)
	msg.Header.Set(events.HeaderDLQSeq, strconv.FormatUint(d.seq, 10))
	msg.Header.Set(events.HeaderDLQSubject, d.subject)
	msg.Header.Set(events.HeaderDLQConsumer, d.consumer)
	msg.Header.Set(events.HeaderDLQDeliveries, strconv.Itoa(d.deliveries))
	msg.Header.Set(events.HeaderDLQError, d.err)
	msg.Header.Set(events.HeaderDLQFailedAt, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Format(time.RFC3339Nano))
	id := "dlq:" + d.stream + ":" + strconv.FormatUint(d.seq, 10) + ":" + d.consumer
	ack, err := js.PublishMsg(testCtx(t), msg, jetstream.WithMsgID(id))
	if err != nil {
		t.Fatalf("parking dead letter: %v", err)
	}
	return ack.Sequence
}

// parkFromStream parks the message at seq of stream as consumer's dead letter.
func parkFromStream(t *testing.T, js jetstream.JetStream, stream string, seq uint64, consumer, reason string) uint64 {
	t.Helper()
	m := getMsg(t, js, stream, seq)
	h := nats.Header{}
	for k, vs := range m.Header {
		if k != events.HeaderMsgID { // the runtime gives the dead letter an id of its own
			h[k] = vs
		}
	}
	return park(t, js, deadLetter{stream: stream, subject: m.Subject, consumer: consumer, seq: seq,
		deliveries: 5, err: reason, body: string(m.Data), header: h})
}

// captureAdvisory stores a MAX_DELIVERIES advisory in the DLQ stream the way the server does.
func captureAdvisory(t *testing.T, js jetstream.JetStream, stream, consumer string) uint64 {
	t.Helper()
	ack, err := js.Publish(testCtx(t), events.MaxDeliveriesAdvisoryPrefix+stream+"."+consumer,
		[]byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"`+stream+`","consumer":"`+consumer+`","stream_seq":1,"deliveries":5}`))
	if err != nil {
		t.Fatalf("capturing advisory: %v", err)
	}
	return ack.Sequence
}
