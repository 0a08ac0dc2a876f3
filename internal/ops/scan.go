package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// scanInactiveThreshold lets the server remove a scan's ephemeral consumer soon
// if the process dies before deleting it.
const scanInactiveThreshold = 30 * time.Second

// cleanupTimeout bounds deleting a scan's consumer after the caller's context ended.
const cleanupTimeout = 2 * time.Second

// scan reads s in order with an ordered consumer configured by cfg and calls fn
// for every message up to stream sequence end, inclusive. It stops at end even
// while new messages land after it, and returns as soon as nothing more
// matching the filter exists up to end, so it never waits for messages that
// have not been published yet.
func scan(ctx context.Context, s jetstream.Stream, cfg jetstream.OrderedConsumerConfig, end uint64,
	fn func(msg jetstream.Msg, md *jetstream.MsgMetadata) error) error {
	if end == 0 {
		return nil
	}
	if cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = scanInactiveThreshold
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("creating a reader on stream %s: %w", s.CachedInfo().Config.Name, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", s.CachedInfo().Config.Name, err)
	}
	defer func() {
		it.Stop()
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			_ = s.DeleteConsumer(dctx, info.Name) // best effort: the inactive threshold removes it otherwise
			cancel()
		}
	}()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return ctxErr
			}
			return fmt.Errorf("reading stream %s: %w", s.CachedInfo().Config.Name, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("reading stream %s: %w", s.CachedInfo().Config.Name, err)
		}
		seq := md.Sequence.Stream
		if seq > end {
			return nil
		}
		if err := fn(msg, md); err != nil {
			return err
		}
		if seq >= end || md.NumPending == 0 {
			return nil
		}
	}
}

// openStream returns the stream named name, with [ErrStreamNotFound] when it
// does not exist.
func openStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s: %w; run `orgbridge streams` to list them", name, ErrStreamNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}
