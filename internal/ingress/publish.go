package ingress

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish retries. A NATS cluster that lost the node leading a stream, or
// whose node is restarting, elects a new leader; meanwhile a publish gets no
// answer, or "no responders", and the connection of a client that was on the
// lost node moves to another. The ingress rides that out within its publish
// timeout: it publishes again, with the same Msg-Id, so a copy the old leader
// did store is not stored twice, and answers 503 only once the timeout is
// spent. Each attempt gets at most PublishAttemptTimeout, so one sent into an
// election does not use the whole budget.

// errNoAckYet marks an attempt that got no answer within PublishAttemptTimeout.
var errNoAckYet = errors.New("no acknowledgement yet")

// Publish retry reasons, the label of orgbridge_ingress_publish_retries_total.
const (
	retryNoLeader     = "no_stream_leader"
	retryReconnecting = "reconnecting"
	retryNoAck        = "no_ack_yet"
	retryUnavailable  = "jetstream_unavailable"
)

// publishRetryReason says why publishing again may store what err did not,
// or "" when it cannot help.
func publishRetryReason(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, errNoAckYet):
		return retryNoAck
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return retryNoLeader
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrStaleConnection):
		return retryReconnecting
	case errors.As(err, &apiErr) && apiErr.Code == 503:
		return retryUnavailable
	}
	return ""
}

// store publishes msg with msgID and waits for JetStream's acknowledgement,
// publishing again while that may help, until ctx ends or the publish
// timeout is spent.
func (s *Server) store(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	deadline := time.NewTimer(s.cfg.PublishTimeout)
	defer deadline.Stop()
	// An abandoned attempt may still be acknowledged: the first answer wins.
	late := make(chan *jetstream.PubAck, 1)
	done := make(chan struct{})
	defer close(done)
	wait := 20 * time.Millisecond
	m := msg
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			// A fresh message: nats.go may still hold the first one for its
			// own no-responders retry.
			m = &nats.Msg{Subject: msg.Subject, Header: maps.Clone(msg.Header), Data: msg.Data}
		}
		fut, err := s.pub.PublishMsgAsync(m, jetstream.WithMsgID(msgID))
		if err == nil {
			try := time.NewTimer(s.cfg.PublishAttemptTimeout)
			select {
			case ack := <-fut.Ok():
				try.Stop()
				return ack, nil
			case ack := <-late:
				try.Stop()
				return ack, nil
			case err = <-fut.Err():
				try.Stop()
			case <-try.C:
				err = errNoAckYet
				go watchLate(fut, late, done)
			case <-deadline.C:
				try.Stop()
				return nil, fmt.Errorf("no acknowledgement from JetStream within %s (%d attempts)", s.cfg.PublishTimeout, attempt)
			case <-ctx.Done():
				try.Stop()
				return nil, ctx.Err()
			}
		}
		reason := publishRetryReason(err)
		if reason == "" {
			return nil, err
		}
		s.metrics.publishRetries.WithLabelValues(reason).Inc()
		if reason == retryNoAck {
			continue // the attempt's timeout was the wait
		}
		pause := time.NewTimer(wait/2 + rand.N(wait))
		wait = min(wait*2, 200*time.Millisecond)
		select {
		case <-pause.C:
		case ack := <-late:
			pause.Stop()
			return ack, nil
		case <-deadline.C:
			pause.Stop()
			return nil, fmt.Errorf("not stored within %s (%d attempts): %w", s.cfg.PublishTimeout, attempt, err)
		case <-ctx.Done():
			pause.Stop()
			return nil, ctx.Err()
		}
	}
}

// watchLate forwards a late acknowledgement of an abandoned attempt.
func watchLate(fut jetstream.PubAckFuture, late chan<- *jetstream.PubAck, done <-chan struct{}) {
	select {
	case ack := <-fut.Ok():
		select {
		case late <- ack:
		default:
		}
	case <-fut.Err():
	case <-done:
	}
}
