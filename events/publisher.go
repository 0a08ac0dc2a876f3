package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SchemaVersion is the version of every message body in this package. A reader
// refuses a body whose version it does not know instead of guessing.
const SchemaVersion = 1

// ErrNoMsgID is returned by [Publisher.Publish] when no message id was given:
// without one, a retried publish would be stored twice.
var ErrNoMsgID = errors.New("events: a Nats-Msg-Id is required so retried publishes are stored once")

// defaultPublishTimeout bounds a publish whose context has no deadline.
const defaultPublishTimeout = 5 * time.Second

// Publisher publishes contract messages to JetStream and waits for the stream's
// acknowledgement, so a nil error means the message is stored.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a Publisher over js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// PublishOption sets something optional on a published message.
type PublishOption func(*nats.Msg)

// WithTenant sets the tenant headers ([HeaderTeam], [HeaderEnterprise]) of a
// message whose subject alone does not carry a Slack tenant (the ORG stream):
// orgbridge keeps its per-message records under that tenant. Empty values set nothing.
func WithTenant(team, enterprise string) PublishOption {
	return func(m *nats.Msg) {
		if team != "" {
			m.Header.Set(HeaderTeam, team)
		}
		if enterprise != "" {
			m.Header.Set(HeaderEnterprise, enterprise)
		}
	}
}

// Publish encodes v as JSON and publishes it on subject with msgID as its
// Nats-Msg-Id and the schema version header, then applies opts. Publishing the
// same msgID again within the stream's duplicate window stores nothing new and
// reports PubAck.Duplicate.
//
// A subject [ValidateSubject] refuses is never sent: Publish returns its
// [*SubjectError] (errors.Is [ErrInvalidSubject]), so a bad value from outside
// cannot close the connection the caller's consumers share.
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, v any, opts ...PublishOption) (*jetstream.PubAck, error) {
	if err := ValidateSubject(subject); err != nil {
		return nil, err
	}
	if msgID == "" {
		return nil, ErrNoMsgID
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("events: encoding %T for %s: %w", v, subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set(HeaderSchema, strconv.Itoa(SchemaVersion))
	msg.Header.Set(HeaderContentType, "application/json")
	for _, o := range opts {
		o(msg)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultPublishTimeout)
		defer cancel()
	}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	if err != nil {
		return nil, fmt.Errorf("events: publishing %s: %w", subject, err)
	}
	return ack, nil
}

// Decode decodes a contract message body into v and checks its schema version
// header, so a reader never half-understands a newer message.
func Decode(header nats.Header, data []byte, v any) error {
	if s := header.Get(HeaderSchema); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > SchemaVersion {
			return fmt.Errorf("events: schema version %q is not supported (this reader knows 1..%d)", s, SchemaVersion)
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("events: decoding %T: %w", v, err)
	}
	return nil
}
