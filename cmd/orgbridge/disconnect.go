package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// disconnectSubUsage is each subcommand's usage line for its --help.
var disconnectSubUsage = map[string]string{
	"request":     "--enterprise E… --target T… --reason … [--requested-by …] [--id …] [--not-before RFC3339] [--dry-run]",
	"status":      "[flags] <request_id>",
	"list":        "[--enterprise E…] [--state STATE] [--limit N]",
	"audit":       "[--since 24h|7d|RFC3339] [--enterprise E…] [--request-id …] [--format jsonl|csv]",
	"policy set":  "--enterprise E… --name … [--allow T1,T2] [--inactive-days N] [--schedule \"0 3 * * 1\"] [--dry-run]",
	"policy list": "[--enterprise E…]",
	"policy run":  "--enterprise E… --name … [--dry-run]",
}

// disconnectStates are the states `list --state` takes.
var disconnectStates = []events.DisconnectState{events.DisconnectAccepted, events.DisconnectSubmitted, events.DisconnectCompleted,
	events.DisconnectFailed, events.DisconnectRejected, events.DisconnectUnconfirmed}

// requestFlags maps the request schema's fields to the flags that set them,
// so a schema error names the flag to fix.
var requestFlags = map[string]string{"request_id": "--id", "enterprise_id": "--enterprise", "target_team": "--target",
	"reason": "--reason", "requested_by": "--requested-by"}

// runDisconnect is `orgbridge disconnect`: request disconnects, follow them,
// export the audit trail and manage scheduled policies. Everything a person
// typed is checked before NATS or Redis is dialled, so a typo is a usage
// error (exit 2) even with the servers down.
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
		if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" {
			fmt.Fprintln(c.stderr, "Usage: orgbridge disconnect policy <set|list|run> [flags]\n\n"+
				"  set   "+disconnectSubUsage["policy set"]+"\n  list  "+disconnectSubUsage["policy list"]+"\n  run   "+disconnectSubUsage["policy run"])
			if len(rest) == 0 {
				return usagef("policy needs set, list or run")
			}
			return errHelp
		}
		sub, rest = "policy "+rest[0], rest[1:]
	}
	usage, ok := disconnectSubUsage[sub]
	if !ok {
		return usagef("unknown subcommand %q; run `orgbridge disconnect --help`", sub)
	}
	var f serviceFlags
	env := []string{"REDIS_URL"}
	switch sub {
	case "request":
		env = []string{"NATS_URL"}
	case "policy run":
		env = []string{"NATS_URL", "REDIS_URL", "SLACK_API_URL", "SLACK_APP_ID", "ORGBRIDGE_ENCRYPTION_KEYS", "ORGBRIDGE_TIME_SCALE"}
	}
	fs := newFlags(c, "disconnect "+sub, usage, configEnv(env...)...)
	f.register(fs, false, sub == "request" || sub == "policy run")
	var (
		enterprise, target, reason, by, id, notBefore, state, since, format, requestID, name, allow, schedule *string
		dryRun                                                                                                *bool
		limit, inactive                                                                                       *int
	)
	if sub != "status" {
		enterprise = fs.String("enterprise", "", "Enterprise Grid org id (E…)")
	}
	switch sub {
	case "request":
		target = fs.String("target", "", "external team id to disconnect (T…)")
		reason = fs.String("reason", "", "why, for the audit trail")
		by = fs.String("requested-by", c.getenv("USER"), "who asks (default $USER)")
		id = fs.String("id", "", "request id (default: a new random one)")
		notBefore = fs.String("not-before", "", "do not disconnect before this RFC 3339 time")
		dryRun = fs.Bool("dry-run", false, "validate and report only")
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
		by = fs.String("updated-by", c.getenv("USER"), "who sets it (default $USER)")
	case "policy run":
		name = fs.String("name", "", "policy name")
		dryRun = fs.Bool("dry-run", false, "report violators without disconnecting")
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if sub != "status" && fs.NArg() > 0 {
		return usagef("unexpected argument %q; flags go before arguments, run `orgbridge disconnect %s --help`", fs.Arg(0), sub)
	}
	cfg, err := f.load(c)
	if err != nil {
		return err
	}

	if sub == "request" {
		req := events.DisconnectRequest{SchemaVersion: events.SchemaVersion, RequestID: *id, EnterpriseID: *enterprise,
			TargetTeam: *target, Reason: *reason, RequestedBy: *by, DryRun: *dryRun}
		if req.RequestID == "" {
			req.RequestID = disconnect.NewRequestID()
		}
		if *notBefore != "" {
			t, err := time.Parse(time.RFC3339, *notBefore)
			if err != nil {
				return usagef("--not-before %q is not an RFC 3339 time (2026-01-02T15:04:05Z)", *notBefore)
			}
			req.NotBefore = &t
		}
		var re *events.DisconnectRequestError
		if err := req.Validate(); errors.As(err, &re) {
			flag, ok := requestFlags[re.Field]
			if !ok {
				flag = re.Field
			}
			return usagef("%s %s", flag, re.Problem)
		}
		nc, js, err := connectJetStream(ctx, c, cfg.NATSURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		if req, err = disconnect.PublishRequest(ctx, js, req); err != nil {
			return fmt.Errorf("could not queue the request: %w; nothing was sent, try again", err)
		}
		fmt.Fprintf(c.stdout, "queued %s: disconnect %s from %s; follow it with `orgbridge disconnect status %s`\n", req.RequestID, req.TargetTeam, req.EnterpriseID, req.RequestID)
		return nil
	}

	// Check what was typed before dialling anything.
	var from time.Time
	var policy disconnect.Policy
	switch sub {
	case "status":
		if fs.NArg() != 1 {
			return usagef("status takes one request id, as `queued` printed it")
		}
	case "list":
		if *state != "" && !slices.Contains(disconnectStates, events.DisconnectState(*state)) {
			return usagef("--state %q is not a state; use one of %v", *state, disconnectStates)
		}
		if *limit < 1 {
			return usagef("--limit must be at least 1")
		}
	case "audit":
		if from, err = disconnect.ParseSince(*since, time.Now()); err != nil {
			return usagef("--%v", err)
		}
		if *format != disconnect.FormatJSONL && *format != disconnect.FormatCSV {
			return usagef("--format %q: choose jsonl or csv", *format)
		}
	case "policy set":
		policy = disconnect.Policy{Name: *name, EnterpriseID: *enterprise, Allowlist: splitList(*allow), InactiveDays: *inactive,
			Schedule: *schedule, DryRun: *dryRun, UpdatedBy: *by, UpdatedAt: time.Now().UTC()}
		if err := policy.Validate(); err != nil {
			return usagef("%v", err)
		}
	case "policy run":
		if *enterprise == "" || *name == "" {
			return usagef("policy run needs --enterprise and --name; `orgbridge disconnect policy list` shows the policies")
		}
	}

	if !cfg.Redis.Configured() {
		return usagef("REDIS_URL (or --redis-url, or REDIS_SENTINEL_ADDRS, or REDIS_CLUSTER_ADDRS) is required")
	}
	rdb, err := openRedis(ctx, cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	st := disconnect.NewStore(rdb, 0, cfg.AuditRetention)
	switch sub {
	case "status":
		rec, err := st.Find(ctx, fs.Arg(0))
		if errors.Is(err, disconnect.ErrNotFound) {
			return fmt.Errorf("no disconnect request %s (requests are kept 90 days after their last change); `orgbridge disconnect list` shows the recent ones", fs.Arg(0))
		}
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
		entries, err := st.Audit(ctx, disconnect.AuditFilter{Since: from, EnterpriseID: *enterprise, RequestID: *requestID})
		if err != nil {
			return err
		}
		return disconnect.WriteAudit(c.stdout, *format, entries)
	case "policy set":
		if err := st.SavePolicy(ctx, policy); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "policy %s of %s saved\n", policy.Name, policy.EnterpriseID)
		return nil
	case "policy list":
		ps, err := st.Policies(ctx, *enterprise)
		if err != nil {
			return err
		}
		if ps == nil {
			ps = []disconnect.Policy{}
		}
		return writeJSON(c.stdout, ps)
	case "policy run":
		if _, err := st.Policy(ctx, *enterprise, *name); errors.Is(err, disconnect.ErrNotFound) {
			return fmt.Errorf("no policy %s for %s; `orgbridge disconnect policy list` shows the policies", *name, *enterprise)
		} else if err != nil {
			return err
		}
		installs, err := disconnectInstallations(cfg, rdb)
		if err != nil {
			return err
		}
		nc, js, err := connectJetStream(ctx, c, cfg.NATSURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		sc, err := slackapi.New(cfg.Slack.APIURL)
		if err != nil {
			return err
		}
		w, err := disconnect.New(disconnect.Deps{JS: js, Redis: rdb, Slack: sc, Installations: installs},
			disconnect.Config{TimeScale: cfg.TimeScale, AuditRetention: cfg.AuditRetention})
		if err != nil {
			return err
		}
		rep, err := w.RunPolicy(ctx, *enterprise, *name, *dryRun, "")
		if err != nil {
			return fmt.Errorf("policy %s of %s: %w", *name, *enterprise, err)
		}
		return writeJSON(c.stdout, rep)
	}
	return nil
}
