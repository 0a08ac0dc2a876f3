package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// EnsureStreams creates every stream of [events.StreamSpecs], or updates it to
// the contract's configuration, after checking opts. While JetStream does not
// answer (a cluster forming, or electing a leader after a node was lost) it
// tries again with backoff, for up to [DefaultStartupWait] unless
// [WaitWithin] says otherwise, logging each wait to [WaitLogger]'s logger.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts events.StreamOptions, wait ...WaitOption) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("bus: stream options: %w", err)
	}
	w := waitOpts{within: DefaultStartupWait}
	for _, o := range wait {
		o(&w)
	}
	for _, spec := range events.StreamSpecs() {
		cfg := events.StreamConfig(spec, opts)
		err := untilJetStreamAnswers(ctx, w.log, w.within, "stream "+spec.Name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, cfg)
			return err
		})
		if err != nil {
			return fmt.Errorf("bus: creating or updating stream %s: %w", spec.Name, err)
		}
	}
	return nil
}
