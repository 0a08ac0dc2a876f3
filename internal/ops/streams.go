package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamStatus is the state of one stream and its consumers.
type StreamStatus struct {
	Name     string   `json:"name"`
	Subjects []string `json:"subjects"`
	// Replicas is how many copies the stream keeps (ORGBRIDGE_STREAM_REPLICAS);
	// Cluster says where they are and how current.
	Replicas  int              `json:"replicas"`
	Cluster   ClusterStatus    `json:"cluster"`
	Messages  uint64           `json:"messages"`
	Bytes     uint64           `json:"bytes"`
	FirstSeq  uint64           `json:"first_seq"`
	FirstTime time.Time        `json:"first_time"`
	LastSeq   uint64           `json:"last_seq"`
	LastTime  time.Time        `json:"last_time"`
	Consumers []ConsumerStatus `json:"consumers"`
	// Error says why the stream (or the list of its consumers) could not be
	// read this time: its replicas electing a leader, a node catching up.
	// The other fields are empty when the stream itself could not be read.
	Error string `json:"error,omitempty"`
}

// ConsumerStatus is the state of one consumer.
type ConsumerStatus struct {
	Name    string   `json:"name"`
	Durable bool     `json:"durable"`
	Filter  []string `json:"filter_subjects,omitempty"`
	// Replicas is how many copies of its state the consumer keeps (its
	// stream's, unless set); Cluster says where they are.
	Replicas int           `json:"replicas"`
	Cluster  ClusterStatus `json:"cluster"`
	// Pending is how many matching messages have not been delivered yet.
	Pending uint64 `json:"pending"`
	// AckPending is how many were delivered and not acknowledged yet.
	AckPending int `json:"ack_pending"`
	// Redelivered is how many unacknowledged messages were delivered more than once.
	Redelivered int `json:"redelivered"`
	// LastActive is when the consumer last delivered a message; nil if never.
	LastActive *time.Time `json:"last_active,omitempty"`
	// Error says why the consumer could not be read this time; the other
	// fields but Name are empty then.
	Error string `json:"error,omitempty"`
}

// ClusterStatus is where a replicated stream or consumer lives: the node
// that leads it and its other replicas. On a single server the leader is that
// server and there are no replicas.
type ClusterStatus struct {
	// Name is the NATS cluster's name ("" on a single server).
	Name string `json:"name,omitempty"`
	// Leader is the node that takes writes; "" while the replicas elect one.
	Leader   string          `json:"leader"`
	Replicas []ReplicaStatus `json:"replicas,omitempty"`
}

// ReplicaStatus is one follower replica.
type ReplicaStatus struct {
	Name string `json:"name"`
	// Current says the replica has every operation its leader has.
	Current bool `json:"current"`
	// Offline says the leader cannot reach it.
	Offline bool `json:"offline,omitempty"`
	// Lag is how many operations it is behind.
	Lag uint64 `json:"lag,omitempty"`
	// Active is how long ago its leader last heard from it.
	Active time.Duration `json:"active_ns"`
}

// Lagging lists the replicas that are offline or not current, each with why
// ("n2 offline", "n3 12 behind"): a node that was lost or is catching up.
func (c ClusterStatus) Lagging() []string {
	var out []string
	for _, r := range c.Replicas {
		switch {
		case r.Offline:
			out = append(out, r.Name+" offline")
		case !r.Current && r.Lag > 0:
			out = append(out, fmt.Sprintf("%s %d behind", r.Name, r.Lag))
		case !r.Current:
			out = append(out, r.Name+" catching up")
		}
	}
	return out
}

func clusterStatus(ci *jetstream.ClusterInfo) ClusterStatus {
	if ci == nil {
		return ClusterStatus{}
	}
	out := ClusterStatus{Name: ci.Name, Leader: ci.Leader}
	for _, p := range ci.Replicas {
		if p == nil {
			continue
		}
		out.Replicas = append(out.Replicas, ReplicaStatus{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag, Active: p.Active})
	}
	sort.Slice(out.Replicas, func(i, j int) bool { return out.Replicas[i].Name < out.Replicas[j].Name })
	return out
}

// infoTimeout bounds each stream's and consumer's info request: on a cluster
// a request can go unanswered while a node rejoins or a leader is elected,
// and one such request must not use up the whole listing's time.
const infoTimeout = 5 * time.Second

// ListStreams returns every stream on the server, sorted by name, each with its
// consumers sorted by name. It lists the names, then asks each stream for its
// own info: on a cluster that has lost a node, the paged info listing can
// return a stream twice and leave another out. A stream or consumer that does
// not answer within infoTimeout is listed with its Error, and the others are
// still read; only a failed listing of the names is an error.
func ListStreams(ctx context.Context, js jetstream.JetStream) ([]StreamStatus, error) {
	lctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	lister := js.StreamNames(lctx)
	var names []string
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("listing streams: %w", err)
	}
	sort.Strings(names)
	names = slices.Compact(names)
	out := make([]StreamStatus, 0, len(names))
	handles := map[string]jetstream.Stream{}
	for _, name := range names {
		ictx, cancel := context.WithTimeout(ctx, infoTimeout)
		st, err := js.Stream(ictx, name)
		cancel()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("reading stream %s: %w", name, ctx.Err())
			}
			out = append(out, StreamStatus{Name: name, Error: fmt.Sprintf("no answer: %v", err)})
			continue
		}
		info := st.CachedInfo()
		handles[info.Config.Name] = st
		out = append(out, StreamStatus{
			Name:      info.Config.Name,
			Subjects:  info.Config.Subjects,
			Replicas:  max(info.Config.Replicas, 1),
			Cluster:   clusterStatus(info.Cluster),
			Messages:  info.State.Msgs,
			Bytes:     info.State.Bytes,
			FirstSeq:  info.State.FirstSeq,
			FirstTime: info.State.FirstTime,
			LastSeq:   info.State.LastSeq,
			LastTime:  info.State.LastTime,
		})
	}
	for i := range out {
		if out[i].Error != "" {
			continue
		}
		cs, err := listConsumers(ctx, handles[out[i].Name], out[i].Replicas)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			out[i].Error = fmt.Sprintf("its consumers: %v", err)
		}
		out[i].Consumers = cs
	}
	return out, nil
}

func listConsumers(ctx context.Context, s jetstream.Stream, streamReplicas int) ([]ConsumerStatus, error) {
	stream := s.CachedInfo().Config.Name
	lctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	lister := s.ConsumerNames(lctx)
	var names []string
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("listing consumers of stream %s: %w", stream, err)
	}
	sort.Strings(names)
	out := []ConsumerStatus{}
	for _, name := range slices.Compact(names) {
		ictx, cancel := context.WithTimeout(ctx, infoTimeout)
		c, err := s.Consumer(ictx, name)
		cancel()
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("reading consumer %s of stream %s: %w", name, stream, ctx.Err())
			}
			out = append(out, ConsumerStatus{Name: name, Error: fmt.Sprintf("no answer: %v", err)})
			continue
		}
		ci := c.CachedInfo()
		out = append(out, ConsumerStatus{
			Name:        ci.Name,
			Durable:     ci.Config.Durable != "",
			Filter:      consumerFilters(ci.Config),
			Replicas:    cmp.Or(ci.Config.Replicas, streamReplicas),
			Cluster:     clusterStatus(ci.Cluster),
			Pending:     ci.NumPending,
			AckPending:  ci.NumAckPending,
			Redelivered: ci.NumRedelivered,
			LastActive:  ci.Delivered.Last,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
