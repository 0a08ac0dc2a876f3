package bus

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

const waitLong = 20 * time.Second

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startNATS(t *testing.T) *testenv.NATS {
	t.Helper()
	n := testenv.StartNATS(t)
	if err := EnsureStreams(ctxT(t), n.JS, events.StreamOptions{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	return n
}

// running is a Runner started in the background.
type running struct {
	cancel   context.CancelFunc
	done     chan error
	returned bool // touched only by the test goroutine
}

// stop cancels the runner and returns Run's error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.returned = true
		return err
	case <-time.After(waitLong):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

func startRunner(t *testing.T, js jetstream.JetStream, cfg RunnerConfig, reg prometheus.Registerer, register func(r *Runner)) *running {
	t.Helper()
	r, err := NewRunner(js, nil, reg, cfg)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	register(r)
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if !rr.returned {
			<-rr.done
		}
	})
	return rr
}

func mustRegister(t *testing.T, r *Runner, cfg ConsumerConfig, h Handler, mws ...Middleware) {
	t.Helper()
	if err := r.Register(cfg, h, mws...); err != nil {
		t.Fatalf("Register: %v", err)
	}
}

// publish stores a message on subject with msgID and extra headers and returns
// its stream sequence.
func publish(t *testing.T, js jetstream.JetStream, subject, msgID string, data string, hdr map[string]string) uint64 {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(data)
	for k, v := range hdr {
		msg.Header.Set(k, v)
	}
	ack, err := js.PublishMsg(ctxT(t), msg, jetstream.WithMsgID(msgID))
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

// acked reports whether the consumer has acknowledged (or terminated) every
// message up to seq and has nothing pending.
func acked(t *testing.T, js jetstream.JetStream, stream, durable string, seq uint64) bool {
	t.Helper()
	c, err := js.Consumer(ctxT(t), stream, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(ctxT(t))
	if err != nil {
		return false
	}
	return info.AckFloor.Stream >= seq && info.NumAckPending == 0 && info.NumPending == 0
}

// dlqMessage returns the last dead letter on dlq.<stream>.<consumer>, or nil.
func dlqMessage(t *testing.T, js jetstream.JetStream, stream, consumer string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(ctxT(t), events.StreamDLQ)
	if err != nil {
		t.Fatalf("DLQ stream: %v", err)
	}
	raw, err := s.GetLastMsgForSubject(ctxT(t), events.DLQSubject(stream, consumer))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading DLQ: %v", err)
	}
	return raw
}

func subjectCount(t *testing.T, js jetstream.JetStream, stream, filter string) uint64 {
	t.Helper()
	s, err := js.Stream(ctxT(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctxT(t), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// calls records handler invocations by identity, with the delivery count and
// the time of each.
type calls struct {
	mu  sync.Mutex
	got []call
}

type call struct {
	identity   string
	deliveries uint64
	at         time.Time
}

func (c *calls) add(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, call{identity: m.Identity, deliveries: m.Deliveries, at: time.Now()})
}

func (c *calls) list() []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call(nil), c.got...)
}

func (c *calls) count() int { return len(c.list()) }

func (c *calls) byIdentity() map[string]int {
	out := map[string]int{}
	for _, x := range c.list() {
		out[x.identity]++
	}
	return out
}

func seqStr(n uint64) string { return strconv.FormatUint(n, 10) }
