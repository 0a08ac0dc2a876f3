package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// Handler handles one message. Its error decides the outcome: nil acks,
// [Permanent] dead-letters, anything else is retried (see the package doc).
// ctx ends at the consumer's HandlerTimeout, or when a shutdown runs out of time.
type Handler func(ctx context.Context, m *Message) error

// Middleware wraps a Handler with cross-cutting behaviour.
type Middleware func(Handler) Handler

// Message is one delivery of a stored message. Worker tests may build one
// directly; InProgress is then a no-op.
type Message struct {
	Subject string
	Data    []byte
	Header  nats.Header
	// Stream and Consumer name where the message is stored and the durable
	// consumer it was delivered to.
	Stream   string
	Consumer string
	// StreamSeq is the message's sequence in Stream.
	StreamSeq uint64
	// Deliveries is how many times this consumer has delivered it, this one
	// included (1 on the first delivery).
	Deliveries uint64
	// Timestamp is when the stream stored it.
	Timestamp time.Time
	// Identity is what handlers de-duplicate on; see [events.MessageIdentity].
	Identity string
	// Tenant is the team id, or the enterprise id for org-wide traffic, from the
	// message's headers; empty when it has neither.
	Tenant string

	msg        jetstream.Msg
	maxDeliver int
	hb         *heartbeat // nil outside the runner
}

func newMessage(jm jetstream.Msg, maxDeliver int) (*Message, error) {
	md, err := jm.Metadata()
	if err != nil {
		return nil, fmt.Errorf("bus: reading message metadata: %w", err)
	}
	h := jm.Headers()
	tenant := h.Get(events.HeaderTeam)
	if tenant == "" {
		tenant = h.Get(events.HeaderEnterprise)
	}
	if tenant == "" {
		tenant = subjectTenant(jm.Subject())
	}
	return &Message{
		Subject:    jm.Subject(),
		Data:       jm.Data(),
		Header:     h,
		Stream:     md.Stream,
		Consumer:   md.Consumer,
		StreamSeq:  md.Sequence.Stream,
		Deliveries: md.NumDelivered,
		Timestamp:  md.Timestamp,
		Identity:   events.MessageIdentity(h, md.Stream, md.Sequence.Stream),
		Tenant:     tenant,
		msg:        jm,
		maxDeliver: maxDeliver,
	}, nil
}

// subjectTenant is the tenant of a message published without tenant headers
// whose subject names one: org.user.deactivated.<org> (other systems publish
// it) falls back to the org id, so its records do not all land in one slot.
func subjectTenant(subject string) string {
	if org, ok := strings.CutPrefix(subject, "org.user.deactivated."); ok && org != "" && org != events.NoTenant && !strings.Contains(org, ".") {
		return org
	}
	return ""
}

// InProgress tells JetStream the message is still being worked on, resetting
// its redelivery timer. The runner already does this periodically while a
// handler runs; call it only to be explicit at a known long step.
func (m *Message) InProgress() error {
	if m.msg == nil {
		return nil
	}
	return m.msg.InProgress()
}

// RequestID is the correlation id the ingress gave the message.
func (m *Message) RequestID() string { return m.Header.Get(events.HeaderRequestID) }

// LastDelivery reports whether this is the consumer's last allowed delivery:
// a retryable error now dead-letters the message.
func (m *Message) LastDelivery() bool {
	return m.maxDeliver > 0 && m.Deliveries >= uint64(m.maxDeliver)
}

// outcome is what the runner does with a handler's result.
type outcome string

const (
	outcomeAck        outcome = "ack"
	outcomeRetry      outcome = "retry"
	outcomeDeadLetter outcome = "dead_letter"
	// outcomeHandBack: the runner shut down while the message waited for a
	// dependency; it is handed back for another replica.
	outcomeHandBack outcome = "hand_back"
)

func classify(m *Message, err error) outcome {
	switch {
	case err == nil:
		return outcomeAck
	case errors.As(err, new(*handBackError)):
		return outcomeHandBack
	case IsPermanent(err) || m.LastDelivery():
		return outcomeDeadLetter
	default:
		return outcomeRetry
	}
}
