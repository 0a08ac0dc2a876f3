package main

import (
	"context"
	"fmt"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// runKeysRotate re-encrypts every stored secret under the first key of
// ORGBRIDGE_ENCRYPTION_KEYS. Rotate by putting a new key first (keeping the
// old ones after it), restarting, running this, then dropping the old keys.
func runKeysRotate(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	fs := newFlags(c, "keys", "rotate\n\nRe-encrypts installs, bindings and mappings under the first key of ORGBRIDGE_ENCRYPTION_KEYS.",
		configEnv("REDIS_URL", "ORGBRIDGE_ENCRYPTION_KEYS")...)
	f.register(fs, false, false)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fs.Usage()
		return errHelp
	}
	if len(args) == 0 || args[0] != "rotate" {
		return usagef("usage: orgbridge keys rotate (see orgbridge keys --help)")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := f.load(c)
	if err != nil {
		return err
	}
	if cfg.RedisURL == "" {
		return usagef("REDIS_URL is required")
	}
	keys, err := store.ParseKeyring(cfg.EncryptionKeys.Reveal())
	if err != nil {
		return usagef("ORGBRIDGE_ENCRYPTION_KEYS: %v", err)
	}
	rdb, err := openRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	parts := []struct {
		name string
		run  func(context.Context) (int, error)
	}{
		{"installations", store.NewInstallations(rdb, keys).Reencrypt},
		{"bindings", binding.NewStore(rdb, keys).Reencrypt},
		{"mappings", mapping.NewStore(rdb, keys).Reencrypt},
	}
	for _, p := range parts {
		n, err := p.run(ctx)
		if err != nil {
			return fmt.Errorf("re-encrypting %s: %w", p.name, err)
		}
		fmt.Fprintf(c.stdout, "%s: %d re-encrypted under key %s\n", p.name, n, keys.PrimaryID())
	}
	return nil
}
