package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// EnsureStreams creates every stream of [events.StreamSpecs], or updates it to
// the contract's configuration, after checking opts.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts events.StreamOptions) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("bus: stream options: %w", err)
	}
	for _, spec := range events.StreamSpecs() {
		if _, err := js.CreateOrUpdateStream(ctx, events.StreamConfig(spec, opts)); err != nil {
			return fmt.Errorf("bus: creating or updating stream %s: %w", spec.Name, err)
		}
	}
	return nil
}
