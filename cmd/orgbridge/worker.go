package main

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/config"
)

func runWorker(ctx context.Context, c *cli, args []string) error {
	return usagef("not built yet")
}

// runWorkers runs the named workers (all when only is empty) until ctx ends.
func runWorkers(ctx context.Context, cfg config.Config, natsURL string, rdb *redis.Client, reg *prometheus.Registry, log *slog.Logger, only []string, natsOpts ...nats.Option) error {
	<-ctx.Done()
	return nil
}
