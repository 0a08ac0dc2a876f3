package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// rotateRounds is how many times `keys rotate` re-seals and checks before it
// gives up on values that keep coming back under an old key (a writer still
// running with the old key first).
const rotateRounds = 3

// runKeysRotate re-encrypts every stored secret under the first key of
// ORGBRIDGE_ENCRYPTION_KEYS, then reads everything back and fails, naming the
// records, while any value is still sealed under another key or does not
// open. Rotate by putting a new key first (keeping the old ones after it),
// restarting every component, running this until it succeeds, then dropping
// the old keys.
func runKeysRotate(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	fs := newFlags(c, "keys", "rotate\n\nRe-encrypts installations, bindings, mappings and provisioning integrations under the first key of\n"+
		"ORGBRIDGE_ENCRYPTION_KEYS, then checks every sealed value. Exits 1, naming the records, while any value is\n"+
		"still under another key or cannot be decrypted: do not remove an old key until it exits 0.",
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
	if !cfg.Redis.Configured() {
		return usagef("REDIS_URL (or REDIS_SENTINEL_ADDRS, or REDIS_CLUSTER_ADDRS) is required")
	}
	keys, err := store.ParseKeyring(cfg.EncryptionKeys.Reveal())
	if err != nil {
		return usagef("ORGBRIDGE_ENCRYPTION_KEYS: %v", err)
	}
	rdb, err := openRedis(ctx, cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return rotateKeys(ctx, c, rdb, keys, sealedSets(rdb, keys), store.ResealOptions{})
}

// sealedSets are every kind of long-lived record holding sealed values.
func sealedSets(rdb redis.UniversalClient, keys *store.Keyring) []store.SealedSet {
	return []store.SealedSet{
		store.NewInstallations(rdb, keys).SealedSet(),
		binding.NewStore(rdb, keys).SealedSet(),
		mapping.NewStore(rdb, keys).SealedSet(),
		provisioning.NewStore(rdb, keys).SealedSet(),
	}
}

// rotateKeys re-seals sets under keys' primary key and checks the result,
// in up to rotateRounds rounds: a value a concurrent writer put back under an
// old key is re-sealed in the next round; an unreadable one ends it.
func rotateKeys(ctx context.Context, c *cli, rdb redis.Cmdable, keys *store.Keyring, sets []store.SealedSet, opts store.ResealOptions) error {
	primary := keys.PrimaryID()
	var rep store.SealedReport
	for round := 1; round <= rotateRounds; round++ {
		if round > 1 {
			fmt.Fprintf(c.stdout, "round %d: %d values came back under an old key while rotating; re-encrypting again\n", round, len(rep.Problems))
		}
		for _, set := range sets {
			o := opts
			o.Progress = func(done, total int) {
				if done < total {
					fmt.Fprintf(c.stdout, "%s: %d/%d\n", set.Kind, done, total)
				}
			}
			st, err := store.Reseal(ctx, rdb, keys, set, o)
			if err != nil {
				return fmt.Errorf("re-encrypting %s: %w", set.Kind, err)
			}
			fmt.Fprintf(c.stdout, "%s: %d records, %d re-encrypted under key %s, %d already under it, %d gone, %d changed meanwhile and retried, %d failed\n",
				st.Kind, st.Records, st.Resealed, primary, st.Current, st.Gone, st.Conflicts, len(st.Failed))
		}
		var err error
		if rep, err = store.CheckSealed(ctx, rdb, keys, sets...); err != nil {
			return fmt.Errorf("checking the re-encrypted records: %w", err)
		}
		if len(rep.Problems) == 0 {
			fmt.Fprintf(c.stdout, "checked %d records, %d sealed values: all under key %s; keys other than %s may now be removed from ORGBRIDGE_ENCRYPTION_KEYS\n",
				rep.Records, rep.Values, primary, primary)
			return nil
		}
		if !onlyOldKeys(rep.Problems) {
			break // unreadable records stay unreadable
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d sealed values are not under key %s; keep every old key in ORGBRIDGE_ENCRYPTION_KEYS:", len(rep.Problems), primary)
	for _, p := range rep.Problems {
		b.WriteString("\n  " + p.String())
	}
	b.WriteString("\nA record under an old key that keeps coming back is written by a component still running with the old key first: restart it and run `orgbridge keys rotate` again." +
		"\nAn unreadable record needs a person: fix or delete it (its owner reconnects), then run the rotation again.")
	return fmt.Errorf("%s", b.String())
}

// onlyOldKeys reports whether every problem is a value that opens but is
// under an old key (another round can fix those).
func onlyOldKeys(ps []store.SealedProblem) bool {
	for _, p := range ps {
		if !errors.Is(p.Err, store.ErrOldKey) {
			return false
		}
	}
	return true
}
