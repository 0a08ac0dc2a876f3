package main

import (
	"fmt"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// buildMapping builds the mapping worker: full revocation, the lookup
// service and the mappings admin API.
func buildMapping(d workerDeps) (worker, error) {
	keys, err := store.ParseKeyring(d.cfg.EncryptionKeys.Reveal())
	if err != nil {
		return nil, fmt.Errorf("ORGBRIDGE_ENCRYPTION_KEYS: %w", err)
	}
	cfg := mapping.Config{Store: mapping.NewStore(d.rdb, keys), NC: d.nc, Idempotency: store.NewIdempotency(d.rdb),
		Bindings: binding.NewStore(d.rdb, keys), Log: d.log.With("worker", "mapping")}
	if b, err := newBindingWorker(d); err == nil {
		cfg.SlackUsers = b // imports check Slack users with users.info when the binding side is configured
	}
	return mapping.New(cfg)
}
