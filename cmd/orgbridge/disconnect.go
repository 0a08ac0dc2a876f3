package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

const disconnectUsage = `<request|status|list|audit|policy> [flags]

  request  --enterprise E… --target T… --reason … --requested-by … [--id] [--not-before RFC3339] [--dry-run]
  status   <request_id>
  list     [--enterprise E…] [--state accepted|submitted|completed|failed|rejected|unconfirmed] [--limit N]
  audit    [--since 24h|RFC3339] [--enterprise E…] [--request-id …] [--format jsonl|csv]
  policy   set --enterprise E… --name … [--allow T1,T2] [--inactive-days N] [--schedule "0 3 * * 1"] [--dry-run]
  policy   list [--enterprise E…]
  policy   run --enterprise E… --name … [--dry-run]`

// runDisconnect is `orgbridge disconnect`: request disconnects, follow them,
// export the audit trail and manage scheduled policies.
func runDisconnect(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(c.stderr, "Usage: orgbridge disconnect "+disconnectUsage)
		if len(args) == 0 {
			return usagef("a subcommand is required")
		}
		return errHelp
	}
	sub, rest := args[0], args[1:]
	if sub == "policy" {
		if len(rest) == 0 {
			return usagef("policy needs set, list or run")
		}
		sub, rest = "policy "+rest[0], rest[1:]
	}
	var f serviceFlags
	fs := newFlags(c, "disconnect "+sub, disconnectUsage, configEnv("NATS_URL", "REDIS_URL", "SLACK_API_URL", "ORGBRIDGE_TIME_SCALE")...)
	f.register(fs, false, true)
	enterprise := fs.String("enterprise", "", "Enterprise Grid org id (E…)")
	var (
		target, reason, by, id, notBefore, state, since, format, requestID, name, allow, schedule *string
		dryRun                                                                                    *bool
		limit, inactive                                                                           *int
	)
	switch sub {
	case "request":
		target = fs.String("target", "", "external team id to disconnect (T…)")
		reason = fs.String("reason", "", "why, for the audit trail")
		by = fs.String("requested-by", os.Getenv("USER"), "who asks")
		id = fs.String("id", "", "request id (default: a new random one)")
		notBefore = fs.String("not-before", "", "do not disconnect before this RFC 3339 time")
		dryRun = fs.Bool("dry-run", false, "validate and report only")
	case "status":
	case "list":
		state = fs.String("state", "", "only requests in this state")
		limit = fs.Int("limit", 100, "at most this many, newest first")
	case "audit":
		since = fs.String("since", "24h", "RFC 3339 time or duration back from now (90m, 24h, 7d)")
		format = fs.String("format", "jsonl", "jsonl or csv")
		requestID = fs.String("request-id", "", "only this request")
	case "policy set":
		name = fs.String("name", "", "policy name")
		allow = fs.String("allow", "", "comma-separated external team ids allowed to stay connected")
		inactive = fs.Int("inactive-days", 0, "disconnect teams without activity for this many days")
		schedule = fs.String("schedule", "", "5-field cron expression (UTC); empty: run on demand only")
		dryRun = fs.Bool("dry-run", false, "report violators without disconnecting")
		by = fs.String("updated-by", os.Getenv("USER"), "who sets it")
	case "policy list":
	case "policy run":
		name = fs.String("name", "", "policy name")
		dryRun = fs.Bool("dry-run", false, "report violators without disconnecting")
	default:
		return usagef("unknown subcommand %q; run `orgbridge disconnect --help`", sub)
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	cfg, err := f.load(c)
	if err != nil {
		return err
	}

	if sub == "request" {
		req := events.DisconnectRequest{RequestID: *id, EnterpriseID: *enterprise, TargetTeam: *target, Reason: *reason,
			RequestedBy: *by, DryRun: *dryRun}
		if *notBefore != "" {
			t, err := time.Parse(time.RFC3339, *notBefore)
			if err != nil {
				return usagef("--not-before %q is not an RFC 3339 time", *notBefore)
			}
			req.NotBefore = &t
		}
		nc, js, err := connectJetStream(ctx, cfg.NATSURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		req, err = disconnect.PublishRequest(ctx, js, req)
		var re *events.DisconnectRequestError
		if errors.As(err, &re) {
			return usagef("%v", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "queued %s: disconnect %s from %s; follow it with `orgbridge disconnect status %s`\n", req.RequestID, req.TargetTeam, req.EnterpriseID, req.RequestID)
		return nil
	}

	if cfg.RedisURL == "" {
		return usagef("REDIS_URL (or --redis-url) is required")
	}
	rdb, err := openRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	st := disconnect.NewStore(rdb, 0, 0)
	switch sub {
	case "status":
		if fs.NArg() != 1 {
			return usagef("status takes one request id")
		}
		rec, err := st.Find(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		trail, err := st.Audit(ctx, disconnect.AuditFilter{EnterpriseID: rec.EnterpriseID, RequestID: rec.RequestID})
		if err != nil {
			return err
		}
		return writeJSON(c.stdout, map[string]any{"request": rec, "audit": trail})
	case "list":
		recs, err := st.List(ctx, disconnect.ListFilter{EnterpriseID: *enterprise, State: events.DisconnectState(*state), Limit: *limit})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REQUEST\tENTERPRISE\tTARGET\tSTATE\tREQUESTED BY\tUPDATED\tMESSAGE")
		for _, r := range recs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RequestID, r.EnterpriseID, r.TargetTeam, r.State, r.RequestedBy, fmtTime(r.UpdatedAt), r.Message)
		}
		return tw.Flush()
	case "audit":
		from, err := disconnect.ParseSince(*since, time.Now())
		if err != nil {
			return usagef("%v", err)
		}
		if *format != disconnect.FormatJSONL && *format != disconnect.FormatCSV {
			return usagef("--format must be jsonl or csv")
		}
		entries, err := st.Audit(ctx, disconnect.AuditFilter{Since: from, EnterpriseID: *enterprise, RequestID: *requestID})
		if err != nil {
			return err
		}
		return disconnect.WriteAudit(c.stdout, *format, entries)
	case "policy set":
		p := disconnect.Policy{Name: *name, EnterpriseID: *enterprise, Allowlist: splitList(*allow), InactiveDays: *inactive,
			Schedule: *schedule, DryRun: *dryRun, UpdatedBy: *by, UpdatedAt: time.Now().UTC()}
		if err := st.SavePolicy(ctx, p); err != nil {
			if errors.Is(err, disconnect.ErrInvalidPolicy) {
				return usagef("%v", err)
			}
			return err
		}
		fmt.Fprintf(c.stdout, "policy %s of %s saved\n", p.Name, p.EnterpriseID)
		return nil
	case "policy list":
		ps, err := st.Policies(ctx, *enterprise)
		if err != nil {
			return err
		}
		return writeJSON(c.stdout, ps)
	case "policy run":
		nc, js, err := connectJetStream(ctx, cfg.NATSURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		sc, err := slackapi.New(cfg.Slack.APIURL)
		if err != nil {
			return err
		}
		installs, err := disconnectInstallations(cfg, rdb)
		if err != nil {
			return err
		}
		w, err := disconnect.New(disconnect.Deps{JS: js, Redis: rdb, Slack: sc, Installations: installs},
			disconnect.Config{TimeScale: cfg.TimeScale})
		if err != nil {
			return err
		}
		rep, err := w.RunPolicy(ctx, *enterprise, *name, *dryRun, "")
		if err != nil {
			return err
		}
		return writeJSON(c.stdout, rep)
	}
	return nil
}
