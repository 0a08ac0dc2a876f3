package ops

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamStatus is the state of one stream and its consumers.
type StreamStatus struct {
	Name      string           `json:"name"`
	Subjects  []string         `json:"subjects"`
	Messages  uint64           `json:"messages"`
	Bytes     uint64           `json:"bytes"`
	FirstSeq  uint64           `json:"first_seq"`
	FirstTime time.Time        `json:"first_time"`
	LastSeq   uint64           `json:"last_seq"`
	LastTime  time.Time        `json:"last_time"`
	Consumers []ConsumerStatus `json:"consumers"`
}

// ConsumerStatus is the state of one consumer.
type ConsumerStatus struct {
	Name    string   `json:"name"`
	Durable bool     `json:"durable"`
	Filter  []string `json:"filter_subjects,omitempty"`
	// Pending is how many matching messages have not been delivered yet.
	Pending uint64 `json:"pending"`
	// AckPending is how many were delivered and not acknowledged yet.
	AckPending int `json:"ack_pending"`
	// Redelivered is how many unacknowledged messages were delivered more than once.
	Redelivered int `json:"redelivered"`
	// LastActive is when the consumer last delivered a message; nil if never.
	LastActive *time.Time `json:"last_active,omitempty"`
}

// ListStreams returns every stream on the server, sorted by name, each with its
// consumers sorted by name.
func ListStreams(ctx context.Context, js jetstream.JetStream) ([]StreamStatus, error) {
	lister := js.ListStreams(ctx)
	var out []StreamStatus
	for info := range lister.Info() {
		out = append(out, StreamStatus{
			Name:      info.Config.Name,
			Subjects:  info.Config.Subjects,
			Messages:  info.State.Msgs,
			Bytes:     info.State.Bytes,
			FirstSeq:  info.State.FirstSeq,
			FirstTime: info.State.FirstTime,
			LastSeq:   info.State.LastSeq,
			LastTime:  info.State.LastTime,
		})
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("listing streams: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := range out {
		cs, err := listConsumers(ctx, js, out[i].Name)
		if err != nil {
			return nil, err
		}
		out[i].Consumers = cs
	}
	return out, nil
}

func listConsumers(ctx context.Context, js jetstream.JetStream, stream string) ([]ConsumerStatus, error) {
	s, err := openStream(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	lister := s.ListConsumers(ctx)
	out := []ConsumerStatus{}
	for ci := range lister.Info() {
		out = append(out, ConsumerStatus{
			Name:        ci.Name,
			Durable:     ci.Config.Durable != "",
			Filter:      consumerFilters(ci.Config),
			Pending:     ci.NumPending,
			AckPending:  ci.NumAckPending,
			Redelivered: ci.NumRedelivered,
			LastActive:  ci.Delivered.Last,
		})
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("listing consumers of stream %s: %w", stream, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
