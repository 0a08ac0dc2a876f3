package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

func printOrgUsage(w io.Writer) {
	fmt.Fprintln(w, `Usage: orgbridge org <command> [flags]

Commands:
  disconnect      --team T [--enterprise E] [--app A]   uninstall one app (apps.uninstall); Slack's events clear the rest
  unbind          --team T|--enterprise E [--app A]     uninstall every app there (or A); with none left, clear the binding and mappings at once
  invalidate      --team T|--enterprise E [--reason R]  mark the binding invalid: the next connect may bind another org
  delete-mappings --team T|--enterprise E [--org O] --yes   delete a workspace's mappings and associations (with org O only)
  delete-mappings --org O --yes                         delete org O's mappings and associations in every workspace

Every change is kept in the workspace's audit trail (GET /admin/api/bindings/{id}).
Run `+"`orgbridge org <command> --help`"+` for a command's flags.`)
}

// runOrg is `orgbridge org …`: an operator's clean-up of workspaces' org
// connections, against Redis (and Slack for uninstalls) directly, through
// [binding.Admin] as the admin API is.
func runOrg(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		printOrgUsage(c.stderr)
		return usagef("usage: orgbridge org disconnect --team T (see orgbridge org --help)")
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		printOrgUsage(c.stdout)
		return errHelp
	case "disconnect":
		return runOrgDisconnect(ctx, c, args[1:])
	case "unbind", "invalidate", "delete-mappings":
		return runOrgAdmin(ctx, c, args[0], args[1:])
	}
	return usagef("unknown org command %q; use disconnect, unbind, invalidate or delete-mappings", args[0])
}

// runOrgDisconnect is `orgbridge org disconnect --team T [--enterprise E] [--app A]`: it
// uninstalls the app from the workspace (apps.uninstall, with the bot token
// refreshed first as the binding worker does, [binding.Tokens]); Slack then sends
// app_uninstalled and tokens_revoked, and the binding worker clears the
// install, the org binding and the workspace's mappings.
func runOrgDisconnect(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	var team, ent, app string
	fs := newFlags(c, "org", "disconnect --team T [--enterprise E] [--app A]\n\nUninstalls the app from a workspace, which disconnects it from its org.",
		configEnv("REDIS_URL", "ORGBRIDGE_ENCRYPTION_KEYS", "SLACK_API_URL", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_APP_ID")...)
	f.register(fs, false, false)
	fs.StringVar(&team, "team", "", "team id (T…) to disconnect")
	fs.StringVar(&ent, "enterprise", "", "enterprise id (E…), for Grid; alone it names an org-wide install")
	fs.StringVar(&app, "app", "", "app id (default SLACK_APP_ID)")
	if err := parseFlags(fs, args); err != nil {
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

// orgAdminUsage is each clean-up command's usage line.
var orgAdminUsage = map[string]string{
	"unbind": "unbind --team T|--enterprise E [--app A]\n\nUninstalls every app from the workspace (or app A) with apps.uninstall; Slack's events then clear the\n" +
		"install, the org binding and the mappings. With no app installed any more, clears the binding, mappings and\nassociations at once.",
	"invalidate": "invalidate --team T|--enterprise E [--reason R]\n\nMarks the workspace's org binding invalid, as an expired org would: its users are prompted to log into a\n" +
		"new org, and the next connect may bind another org (the old org's mappings are removed then).",
	"delete-mappings": "delete-mappings (--team T|--enterprise E [--org O] | --org O) --yes\n\nDeletes mappings and their associations in bulk, so users may connect to any org user again: a\n" +
		"workspace's (with org O only when --org is set), or org O's in every workspace. Bindings stay.",
}

// runOrgAdmin runs one of the clean-up commands of [binding.Admin].
func runOrgAdmin(ctx context.Context, c *cli, cmd string, args []string) error {
	var f serviceFlags
	var team, ent, app, reason, org string
	var yes, asJSON bool
	env := []string{"REDIS_URL", "ORGBRIDGE_ENCRYPTION_KEYS", "ORGBRIDGE_LOG_LEVEL"}
	if cmd == "unbind" {
		env = append(env, "SLACK_API_URL", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
	}
	fs := newFlags(c, "org", orgAdminUsage[cmd], configEnv(env...)...)
	f.register(fs, false, false)
	fs.StringVar(&team, "team", "", "team id (T…)")
	fs.StringVar(&ent, "enterprise", "", "enterprise id (E…) of an org-wide install")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	switch cmd {
	case "unbind":
		fs.StringVar(&app, "app", "", "only this app id (default: every app installed there)")
	case "invalidate":
		fs.StringVar(&reason, "reason", "", "why, for the audit trail")
	case "delete-mappings":
		fs.StringVar(&org, "org", "", "org id (00D…)")
		fs.BoolVar(&yes, "yes", false, "really delete")
	}
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if team != "" && ent != "" {
		return usagef("give --team or --enterprise, not both: the workspace is a team, or the enterprise of an org-wide install")
	}
	ws := team + ent
	switch {
	case cmd == "delete-mappings" && ws == "" && org == "":
		return usagef("--team, --enterprise or --org is required")
	case cmd == "delete-mappings" && !yes:
		return usagef("deleting mappings cannot be undone: add --yes")
	case cmd != "delete-mappings" && ws == "":
		return usagef("--team (or --enterprise) is required")
	}
	cfg, err := f.load(c)
	if err != nil {
		return err
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
	adm := newOrgAdmin(cfg, rdb, keys, newLogger(c, cfg))
	var out any
	switch cmd {
	case "unbind":
		res, err := adm.Unbind(ctx, ws, app)
		if err != nil {
			return err
		}
		out = res
		if !asJSON {
			if res.Cleared {
				fmt.Fprintf(c.stdout, "no app is installed in %s: binding, mappings and associations removed (%d Slack users)\n", ws, res.Mappings)
			} else {
				fmt.Fprintf(c.stdout, "apps.uninstall sent for %v in %s; the binding worker clears the install, binding and mappings when Slack's events arrive\n", res.Uninstalled, ws)
			}
		}
	case "invalidate":
		b, changed, err := adm.Invalidate(ctx, ws, reason)
		if err != nil {
			return err
		}
		out = map[string]any{"binding": b, "changed": changed}
		if !asJSON {
			if changed {
				fmt.Fprintf(c.stdout, "the binding of %s to %s is now invalid; its users are prompted to log into a new org\n", ws, b.OrgID)
			} else {
				fmt.Fprintf(c.stdout, "the binding of %s to %s was already invalid (%s)\n", ws, b.OrgID, b.InvalidReason)
			}
		}
	case "delete-mappings":
		deleted, err := adm.DeleteMappings(ctx, ws, org)
		if err != nil {
			return err
		}
		out = map[string]any{"deleted": deleted}
		if !asJSON {
			if len(deleted) == 0 {
				fmt.Fprintln(c.stdout, "no mapping or association matched; nothing deleted")
			}
			keys := make([]string, 0, len(deleted))
			for w := range deleted {
				keys = append(keys, w)
			}
			slices.Sort(keys)
			for _, w := range keys {
				fmt.Fprintf(c.stdout, "%s: %d Slack users' mappings and associations deleted\n", w, deleted[w])
			}
		}
	}
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return nil
}

// newOrgAdmin builds the [binding.Admin] the clean-up commands run.
func newOrgAdmin(cfg config.Config, rdb redis.UniversalClient, keys *store.Keyring, log *slog.Logger) *binding.Admin {
	installs := store.NewInstallations(rdb, keys)
	locker := store.NewLocker(rdb)
	d := workerDeps{cfg: cfg, rdb: rdb, log: log}
	return &binding.Admin{Installations: installs, Bindings: binding.NewStore(rdb, keys), Mappings: mapping.NewStore(rdb, keys),
		Locker: locker, Tokens: &binding.Tokens{Installations: installs, Locker: locker, Slack: newSlackOAuth(d), Log: log}, Log: log}
}
