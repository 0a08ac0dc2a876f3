package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// runOrg is `orgbridge org disconnect --team T [--enterprise E] [--app A]`: it
// uninstalls the app from the workspace (apps.uninstall, with the bot token
// refreshed first as the binding worker does, [binding.Tokens]); Slack then sends
// app_uninstalled and tokens_revoked, and the binding worker clears the
// install, the org binding and the workspace's mappings.
func runOrg(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	var team, ent, app string
	fs := newFlags(c, "org", "disconnect --team T [--enterprise E] [--app A]\n\nUninstalls the app from a workspace, which disconnects it from its org.",
		configEnv("REDIS_URL", "ORGBRIDGE_ENCRYPTION_KEYS", "SLACK_API_URL", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_APP_ID")...)
	f.register(fs, false, false)
	fs.StringVar(&team, "team", "", "team id (T…) to disconnect")
	fs.StringVar(&ent, "enterprise", "", "enterprise id (E…), for Grid; alone it names an org-wide install")
	fs.StringVar(&app, "app", "", "app id (default SLACK_APP_ID)")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fs.Usage()
		return errHelp
	}
	if len(args) == 0 || args[0] != "disconnect" {
		return usagef("usage: orgbridge org disconnect --team T (see orgbridge org --help)")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if team == "" && ent == "" {
		return usagef("--team (or --enterprise) is required")
	}
	cfg, err := f.load(c)
	if err != nil {
		return err
	}
	if app == "" {
		app = cfg.Slack.AppID
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
	installs := store.NewInstallations(rdb, keys)
	in, err := installs.Find(ctx, app, ent, team)
	if errors.Is(err, store.ErrNoInstallation) {
		return fmt.Errorf("app %s is not installed in %s; `GET /admin/api/installations` lists installs", app, team+ent)
	}
	if err != nil {
		return err
	}
	d := workerDeps{cfg: cfg, rdb: rdb, log: newLogger(c, cfg)}
	// The binding worker's own path: a bot token about to expire (or expired)
	// is refreshed, under the install's lock, before apps.uninstall.
	tokens := &binding.Tokens{Installations: installs, Locker: store.NewLocker(rdb), Slack: newSlackOAuth(d), Log: d.log}
	if err := tokens.Uninstall(ctx, in); err != nil {
		return fmt.Errorf("uninstalling app %s from %s: %w", app, in.Tenant(), err)
	}
	fmt.Fprintf(c.stdout, "apps.uninstall sent for %s in %s; the binding worker clears the install, binding and mappings when Slack's events arrive\n", app, in.Tenant())
	return nil
}
