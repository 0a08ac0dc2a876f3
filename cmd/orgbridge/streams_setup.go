package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/config"
)

// ensureStreams creates or updates every contract stream.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg config.Config) error {
	for _, spec := range events.StreamSpecs() {
		if _, err := js.CreateOrUpdateStream(ctx, events.StreamConfig(spec, cfg.Streams)); err != nil {
			return fmt.Errorf("creating stream %s: %w", spec.Name, err)
		}
	}
	return nil
}
