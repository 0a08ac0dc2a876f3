package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

const provisioningUsage = `<subcommand> --org 00D… [flags]

  status                      the integration: source, settings, pending, quarantine, next run
  connect    [--replace] [--whole-grid]   print the link an org admin opens to connect Slack
  config get                  the saved settings (JSON)
  config set [--file F.json] [--scope everyone|groups] [--groups S1,S2] [--map-teams=true|false]
             [--team TEAM_ID=S1,S2 …] [--time HH:MM] [--tz Zone] [--auto-invite=true|false]
             [--max-deactivations N] [--max-deactivation-percent P]
  groups     [--q text]       search the source's Slack user groups
  sync       [--no-wait]      sync now, with progress until it ends
  preview    [--no-wait]      a dry run: the diff a sync would apply, nothing written
  runs       [--limit N]      history, newest first
  report     RUN [--outcome o1,o2] [--action a1,a2] [--field f1,f2] [--q text] [--csv]
  approve    RUN              apply the deactivations RUN holds
  reject     RUN              drop the deactivations RUN holds
  resume                      lift a quarantine and sync now
  disconnect --yes            stop syncing and forget the credentials (directory data and history stay)

It talks to the admin API of a running ingress (--api-url; default http://ORGBRIDGE_ADMIN_ADDR when that is
set, else ORGBRIDGE_PUBLIC_URL) with ORGBRIDGE_ADMIN_TOKEN (or --token-file: orgbridge dev keeps its token in ./data/dev-admin-token).`

var provisioningSubs = []string{"status", "connect", "config get", "config set", "groups", "sync", "preview", "runs", "report",
	"approve", "reject", "resume", "disconnect"}

// adminClient calls the admin API.
type adminClient struct {
	base, token string
	hc          *http.Client
}

// apiError is an error answer of the admin API.
type apiError struct {
	status      int
	code, msg   string
	path        string
	unavailable bool
}

func (e *apiError) Error() string {
	if e.unavailable {
		return e.msg
	}
	return fmt.Sprintf("%s (%d %s)", e.msg, e.status, e.code)
}

func (a *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+"/admin/api/provisioning/"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return &apiError{unavailable: true, msg: "cannot reach the admin API at " + a.base + ": " + err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error, Message string }
		_ = json.Unmarshal(raw, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
		}
		return &apiError{status: resp.StatusCode, code: e.Error, msg: e.Message, path: path}
	}
	if w, ok := out.(io.Writer); ok {
		_, err = w.Write(raw)
		return err
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// teamFlags collects repeated --team TEAM=S1,S2 flags.
type teamFlags []provisioning.TeamMapping

func (t *teamFlags) String() string { return "" }
func (t *teamFlags) Set(v string) error {
	id, groups, ok := strings.Cut(v, "=")
	if !ok || id == "" || groups == "" {
		return errors.New("want TEAM_ID=S1,S2")
	}
	*t = append(*t, provisioning.TeamMapping{TeamID: id, SlackGroups: splitList(groups)})
	return nil
}

// runProvisioning is `orgbridge provisioning`.
func runProvisioning(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(c.stderr, "Usage: orgbridge provisioning "+provisioningUsage)
		if len(args) == 0 {
			return usagef("a subcommand is required")
		}
		return errHelp
	}
	sub, rest := args[0], args[1:]
	if sub == "config" {
		if len(rest) == 0 || (rest[0] != "get" && rest[0] != "set") {
			return usagef("config needs get or set")
		}
		sub, rest = "config "+rest[0], rest[1:]
	}
	known := false
	for _, s := range provisioningSubs {
		known = known || s == sub
	}
	if !known {
		return usagef("unknown subcommand %q; run `orgbridge provisioning --help`", sub)
	}
	fs := newFlags(c, "provisioning "+sub, "--org 00D… [flags]", configEnv("ORGBRIDGE_ADMIN_ADDR", "ORGBRIDGE_PUBLIC_URL", "ORGBRIDGE_HTTP_ADDR", "ORGBRIDGE_ADMIN_TOKEN")...)
	org := fs.String("org", "", "the org id (00D…)")
	apiURL := fs.String("api-url", "", "base URL of the ingress serving the admin API (default http://ORGBRIDGE_ADMIN_ADDR when set, else ORGBRIDGE_PUBLIC_URL)")
	tokenFile := fs.String("token-file", "", "read the admin token from this file instead of ORGBRIDGE_ADMIN_TOKEN")
	var (
		replace, wholeGrid, noWait, csvOut, yes *bool
		q, file, scope, groups, at, tz          *string
		outcome, action, field                  *string
		limit, maxDeact, maxPct                 *int
		mapTeams, autoInvite                    *string
		teams                                   teamFlags
	)
	switch sub {
	case "connect":
		replace = fs.Bool("replace", false, "replace the active integration's Slack account")
		wholeGrid = fs.Bool("whole-grid", false, "the source is the whole Enterprise Grid org, not one workspace")
	case "config set":
		file = fs.String("file", "", "settings as JSON (the config get format); flags override it")
		scope = fs.String("scope", "", "everyone or groups")
		groups = fs.String("groups", "", "comma-separated Slack group ids in scope (with --scope groups)")
		mapTeams = fs.String("map-teams", "", "true or false: map Slack groups to directory teams")
		fs.Var(&teams, "team", "TEAM_ID=S1,S2: the directory team fed by these Slack groups (repeatable; replaces the mappings)")
		at = fs.String("time", "", "daily sync time HH:MM")
		tz = fs.String("tz", "", "IANA time zone of --time")
		autoInvite = fs.String("auto-invite", "", "true or false: email an invitation to each user a sync creates")
		maxDeact = fs.Int("max-deactivations", 0, "hold deactivations above this many users for approval")
		maxPct = fs.Int("max-deactivation-percent", -1, "hold deactivations above this share of provisioned users (0 turns it off)")
	case "groups":
		q = fs.String("q", "", "part of the group's name or handle")
	case "sync", "preview":
		noWait = fs.Bool("no-wait", false, "queue the run and return")
	case "runs":
		limit = fs.Int("limit", 20, "how many runs")
	case "report":
		outcome = fs.String("outcome", "", "only these outcomes: "+strings.Join(provisioning.Outcomes, ","))
		action = fs.String("action", "", "only these actions: "+strings.Join(provisioning.Actions, ","))
		field = fs.String("field", "", "only rows changing these fields (email, title, active, team, …)")
		q = fs.String("q", "", "only rows whose Slack id, name or email contain this")
		csvOut = fs.Bool("csv", false, "write CSV instead of a table")
	case "disconnect":
		yes = fs.Bool("yes", false, "confirm")
	}
	var positional []string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		positional, rest = rest[:1], rest[1:] // `report RUN --org …`: the run before the flags
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	positional = append(positional, fs.Args()...)
	if !events.ValidOrgID(*org) {
		return usagef("--org: %q is not an org id (15 or 18 characters starting 00D)", *org)
	}
	var runID string
	switch sub {
	case "report", "approve", "reject":
		if len(positional) != 1 || !events.ValidRunID(positional[0]) {
			return usagef("%s needs one run id", sub)
		}
		runID = positional[0]
	default:
		if len(positional) > 0 {
			return usagef("unexpected argument %q", positional[0])
		}
	}
	if sub == "disconnect" && !*yes {
		return usagef("disconnect stops syncing and forgets the Slack and directory credentials; add --yes to confirm")
	}
	a, err := newAdminClient(c, *apiURL, *tokenFile)
	if err != nil {
		return err
	}
	o := *org
	out := c.stdout
	switch sub {
	case "status":
		var v provisioning.IntegrationView
		if err := a.do(ctx, "GET", o, nil, &v); err != nil {
			return err
		}
		printIntegration(out, v)
	case "connect":
		var r struct{ URL string }
		if err := a.do(ctx, "POST", o+"/connect", map[string]bool{"replace": *replace, "whole_grid": *wholeGrid}, &r); err != nil {
			return err
		}
		fmt.Fprintln(out, "Open this link in a browser as an administrator of the org and of Slack (it works once, for 10 minutes):")
		fmt.Fprintln(out, r.URL)
	case "config get":
		return a.do(ctx, "GET", o+"/config", nil, out)
	case "config set":
		set := provisioning.DefaultSettings()
		if err := a.do(ctx, "GET", o+"/config", nil, &set); err != nil {
			return err
		}
		if *file != "" {
			b, err := os.ReadFile(*file)
			if err != nil {
				return usagef("--file: %v", err)
			}
			if err := json.Unmarshal(b, &set); err != nil {
				return usagef("--file: not settings JSON: %v", err)
			}
		}
		if err := applySettingsFlags(fs, &set, *scope, *groups, *mapTeams, teams, *at, *tz, *autoInvite, *maxDeact, *maxPct); err != nil {
			return err
		}
		var v provisioning.IntegrationView
		if err := a.do(ctx, "PUT", o+"/config", set, &v); err != nil {
			return err
		}
		fmt.Fprintln(out, "Saved. Your sync is pending: the settings apply at the next daily sync ("+v.NextRun.Local().Format(time.RFC1123)+
			"); run `orgbridge provisioning sync --org "+o+"` to sync now.")
	case "groups":
		var r struct{ Groups []provisioning.GroupMatch }
		if err := a.do(ctx, "GET", o+"/groups?q="+url.QueryEscape(*q), nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tHANDLE\tMEMBERS\tDISABLED")
		for _, g := range r.Groups {
			fmt.Fprintf(tw, "%s\t%s\t@%s\t%d\t%v\n", g.ID, g.Name, g.Handle, g.Members, g.Disabled)
		}
		return tw.Flush()
	case "sync", "preview", "resume":
		path := map[string]string{"sync": "/sync", "preview": "/preview", "resume": "/resume"}[sub]
		var r struct {
			Run     provisioning.Run
			Message string
		}
		if err := a.do(ctx, "POST", o+path, nil, &r); err != nil {
			return err
		}
		if r.Message != "" {
			fmt.Fprintln(c.stderr, r.Message)
		}
		fmt.Fprintf(out, "run %s queued\n", r.Run.ID)
		if noWait != nil && *noWait {
			return nil
		}
		return followRun(ctx, a, c, o, r.Run.ID)
	case "runs":
		var r struct{ Runs []provisioning.Run }
		if err := a.do(ctx, "GET", fmt.Sprintf("%s/runs?limit=%d", o, *limit), nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tTRIGGER\tSTARTED\tDURATION\tSTATUS\tCOUNTS")
		for _, run := range r.Runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", run.ID, run.Trigger, run.Started.Local().Format("2006-01-02 15:04:05"),
				run.Duration(time.Now()).Round(time.Millisecond), run.Status, countsLine(run.Counts))
		}
		return tw.Flush()
	case "report":
		qs := url.Values{}
		for k, v := range map[string]string{"outcome": *outcome, "action": *action, "field": *field, "q": *q} {
			if v != "" {
				qs.Set(k, v)
			}
		}
		if *csvOut {
			qs.Set("format", "csv")
			return a.do(ctx, "GET", o+"/runs/"+runID+"/report?"+qs.Encode(), nil, out)
		}
		qs.Set("limit", "10000000")
		var r struct {
			Total int
			Rows  []provisioning.Row
		}
		if err := a.do(ctx, "GET", o+"/runs/"+runID+"/report?"+qs.Encode(), nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tOUTCOME\tSLACK ID\tNAME\tEMAIL\tCHANGES\tDETAILS")
		for _, row := range r.Rows {
			var ch []string
			for _, x := range row.Changes {
				ch = append(ch, x.Field+": "+x.Old+" → "+x.New)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Action, row.Outcome, row.SlackID, row.Name, row.Email, strings.Join(ch, "; "), row.Details)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "%d rows\n", r.Total)
	case "approve", "reject":
		if err := a.do(ctx, "POST", o+"/runs/"+runID+"/"+sub, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: the held deactivations of run %s\n", map[string]string{"approve": "approved", "reject": "rejected"}[sub], runID)
		return followRun(ctx, a, c, o, runID)
	case "disconnect":
		if err := a.do(ctx, "POST", o+"/disconnect", nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(out, "Disconnected: syncing stopped and the credentials are forgotten; directory users and history stay.")
	}
	return nil
}

func newAdminClient(c *cli, apiURL, tokenFile string) (*adminClient, error) {
	if addr := c.getenv("ORGBRIDGE_ADMIN_ADDR"); apiURL == "" && addr != "" {
		apiURL = "http://" + addr // the admin API is only there
	}
	if apiURL == "" {
		apiURL = c.getenv("ORGBRIDGE_PUBLIC_URL")
	}
	if apiURL == "" {
		addr := c.getenv("ORGBRIDGE_HTTP_ADDR")
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		apiURL = "http://" + addr
	}
	if u, err := url.Parse(apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--api-url: %q is not an http(s) URL", apiURL)
	}
	token := c.getenv("ORGBRIDGE_ADMIN_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, usagef("--token-file: %v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, usagef("no admin token: set ORGBRIDGE_ADMIN_TOKEN or pass --token-file")
	}
	return &adminClient{base: strings.TrimRight(apiURL, "/"), token: token, hc: &http.Client{Timeout: 10 * time.Minute}}, nil
}

func applySettingsFlags(fs *flag.FlagSet, set *provisioning.Settings, scope, groups, mapTeams string, teams teamFlags, at, tz, autoInvite string, maxDeact, maxPct int) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	parseBool := func(name, v string) (bool, error) {
		switch v {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, usagef("--%s takes true or false", name)
	}
	if given["scope"] {
		set.Scope = provisioning.Scope(scope)
		if set.Scope == provisioning.ScopeEveryone {
			set.Groups = nil
		}
	}
	if given["groups"] {
		set.Groups = splitList(groups)
	}
	if given["map-teams"] {
		v, err := parseBool("map-teams", mapTeams)
		if err != nil {
			return err
		}
		set.MapTeams = v
	}
	if given["team"] {
		set.Teams = teams
	}
	if given["time"] {
		set.ScheduleTime = at
	}
	if given["tz"] {
		set.TimeZone = tz
	}
	if given["auto-invite"] {
		v, err := parseBool("auto-invite", autoInvite)
		if err != nil {
			return err
		}
		set.AutoInvite = v
	}
	if given["max-deactivations"] {
		set.DeactivationLimit = maxDeact
	}
	if given["max-deactivation-percent"] {
		set.DeactivationPercent = maxPct
	}
	if err := set.Validate(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// followRun prints a run's progress until it ends or waits for approval;
// a failed run exits 1.
func followRun(ctx context.Context, a *adminClient, c *cli, org, id string) error {
	last := ""
	for {
		var r struct{ Run provisioning.Run }
		if err := a.do(ctx, "GET", org+"/runs/"+id, nil, &r); err != nil {
			return err
		}
		run := r.Run
		line := fmt.Sprintf("%s: %s, %d pages, %d Slack users read, %s", run.ID, run.Status, run.Pages, run.UsersSeen, countsLine(run.Counts))
		if line != last {
			fmt.Fprintln(c.stderr, line)
			last = line
		}
		switch {
		case run.Status == events.RunAwaitingApproval:
			fmt.Fprintf(c.stdout, "run %s holds %d deactivations over the threshold: review them with `orgbridge provisioning report %s --org %s --action held`,\nthen `approve` or `reject` it\n",
				run.ID, run.Held, run.ID, org)
			return nil
		case run.Status == events.RunFailed:
			return fmt.Errorf("run %s failed: %s", run.ID, run.Error)
		case run.Status.Final():
			fmt.Fprintf(c.stdout, "run %s %s in %s: %s\n", run.ID, run.Status, run.Duration(time.Now()).Round(time.Millisecond), countsLine(run.Counts))
			if run.Status == events.RunPartial {
				fmt.Fprintf(c.stdout, "see what failed: `orgbridge provisioning report %s --org %s --outcome failed`\n", run.ID, org)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func countsLine(m map[string]int) string {
	if len(m) == 0 {
		return "nothing yet"
	}
	var parts []string
	for _, k := range []string{"create:succeeded", "update:succeeded", "reactivate:succeeded", "deactivate:succeeded", "add_to_team:succeeded",
		"remove_from_team:succeeded", "unchanged"} {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimSuffix(k, ":succeeded"), n))
		}
	}
	failed, planned := 0, 0
	for k, n := range m {
		if strings.HasSuffix(k, ":failed") {
			failed += n
		}
		if strings.HasSuffix(k, ":planned") {
			planned += n
		}
	}
	if planned > 0 {
		parts = append(parts, fmt.Sprintf("planned %d", planned))
	}
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("failed %d", failed))
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

func printIntegration(w io.Writer, v provisioning.IntegrationView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	src := v.Source.Name + " (" + v.Source.ID() + ")"
	fmt.Fprintf(tw, "integration\t%s\nstatus\t%s\nSlack\t%s\nconnected by\t%s\n", v.ID, v.Status, src, v.OrgAdmin)
	scope := string(v.Settings.Scope)
	if len(v.Settings.Groups) > 0 {
		scope += " " + strings.Join(v.Settings.Groups, ",")
	}
	fmt.Fprintf(tw, "scope\t%s\nteam mapping\t%v (%d teams)\nschedule\t%s %s\nauto-invite\t%v\n", scope, v.Settings.MapTeams, len(v.Settings.Teams),
		v.Settings.ScheduleTime, v.Settings.TimeZone, v.Settings.AutoInvite)
	fmt.Fprintf(tw, "threshold\t%d users or %d%%\n", v.Settings.DeactivationLimit, v.Settings.DeactivationPercent)
	if v.Pending {
		fmt.Fprintln(tw, "pending\tyour sync is pending: saved settings apply at the next sync (or sync now)")
	}
	if v.Quarantine != nil {
		fmt.Fprintf(tw, "QUARANTINED\tsince %s: %s; next retry %s\n", v.Quarantine.Since.Local().Format(time.RFC1123), v.Quarantine.Reason, v.Quarantine.NextRetry.Local().Format(time.RFC1123))
	}
	if !v.NextRun.IsZero() {
		fmt.Fprintf(tw, "next run\t%s\n", v.NextRun.Local().Format(time.RFC1123))
	}
	if v.CurrentRunID != "" {
		fmt.Fprintf(tw, "current run\t%s\n", v.CurrentRunID)
	}
	if v.LastRunID != "" {
		fmt.Fprintf(tw, "last run\t%s\n", v.LastRunID)
	}
	_ = tw.Flush()
}
