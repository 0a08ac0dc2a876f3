package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// storedIDs reads every message on subject from the SLACK stream and counts
// the copies of each Nats-Msg-Id (Slack's event_id).
func storedIDs(ctx context.Context, js jetstream.JetStream, subject string) (map[string]int, error) {
	s, err := js.Stream(ctx, events.StreamSlack)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, err
	}
	want := info.State.Subjects[subject]
	ids := map[string]int{}
	if want == 0 {
		return ids, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			_ = s.DeleteConsumer(context.WithoutCancel(ctx), ci.Name)
		}
	}()
	it, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	for got := uint64(0); got < want; got++ {
		m, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %d of %d messages: %w", subject, got, want, err)
		}
		ids[m.Headers().Get(jetstream.MsgIDHeader)]++
	}
	return ids, nil
}

// processedIDs reports which of ids the mapping worker recorded processed:
// the idempotency record bus.Idempotent writes after the effect, before the ack.
func processedIDs(ctx context.Context, rdb *redis.Client, team string, ids []string) (map[string]bool, error) {
	done := map[string]bool{}
	const batch = 500
	for start := 0; start < len(ids); start += batch {
		chunk := ids[start:min(len(ids), start+batch)]
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(chunk))
		for i, id := range chunk {
			key := bus.ProcessedKey(&bus.Message{Tenant: team, Consumer: mapping.DurableSlackUsers, Identity: id})
			cmds[i] = pipe.Exists(ctx, key)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for i, c := range cmds {
			if c.Val() == 1 {
				done[chunk[i]] = true
			}
		}
	}
	return done, nil
}

// deadLetters is how many messages the DLQ stream has taken so far.
func deadLetters(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// settle waits until every durable consumer has delivered and had
// acknowledged everything on its stream; it returns those still holding
// messages when within runs out.
func settle(ctx context.Context, js jetstream.JetStream, within time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var stuck []string
	err := poll(ctx, 250*time.Millisecond, func(ctx context.Context) error {
		stuck = stuck[:0]
		streams := js.ListStreams(ctx)
		for si := range streams.Info() {
			s, err := js.Stream(ctx, si.Config.Name)
			if err != nil {
				return err
			}
			lister := s.ListConsumers(ctx)
			for ci := range lister.Info() {
				if ci.Config.Durable == "" {
					continue
				}
				if ci.NumPending > 0 || ci.NumAckPending > 0 {
					stuck = append(stuck, fmt.Sprintf("%s/%s (%d pending, %d unacknowledged)", si.Config.Name, ci.Name, ci.NumPending, ci.NumAckPending))
				}
			}
			if err := lister.Err(); err != nil {
				return err
			}
		}
		if err := streams.Err(); err != nil {
			return err
		}
		if len(stuck) > 0 {
			return errors.New("consumers still busy")
		}
		return nil
	})
	if err != nil && len(stuck) > 0 {
		return stuck, nil
	}
	return nil, err
}
