package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// disconnectScale makes one emulated Tier 1 minute pass in 50 ms.
const disconnectScale = 1200

// disconnectEnv is NATS, Redis, the Slack emulator with one Enterprise Grid
// org installed org-wide, and the environment a command sees.
type disconnectEnv struct {
	env   map[string]string
	nats  *testenv.NATS
	redis *testenv.Redis
	emu   *slackemu.Emulator
	ent   slackemu.EnterpriseInfo
}

func startDisconnectEnv(t *testing.T) *disconnectEnv {
	t.Helper()
	e := &disconnectEnv{nats: testenv.StartStreams(t), redis: testenv.StartRedis(t),
		emu: slackemu.StartTest(t, slackemu.Config{TimeScale: disconnectScale, ExternalTeams: 6, Users: 2, Workspaces: -1, Groups: -1})}
	e.ent = e.emu.World().Enterprises[0]
	tok, err := e.emu.MintToken(slackemu.TokenRequest{EnterpriseID: e.ent.ID})
	if err != nil {
		t.Fatal(err)
	}
	keySpec := store.GenerateKeySpec("k1")
	keys, err := store.ParseKeyring(keySpec)
	if err != nil {
		t.Fatal(err)
	}
	org := store.Installation{AppID: e.emu.AppID(), EnterpriseID: e.ent.ID, IsEnterpriseInstall: true, BotToken: store.Secret(tok.Token), Scopes: tok.Scopes}
	if err := store.NewInstallations(e.redis.Client, keys).Save(tctx(t), &org); err != nil {
		t.Fatal(err)
	}
	e.env = map[string]string{"NATS_URL": e.nats.URL, "REDIS_URL": e.redis.URL(), "SLACK_API_URL": e.emu.APIURL(),
		"SLACK_APP_ID": e.emu.AppID(), "ORGBRIDGE_ENCRYPTION_KEYS": keySpec, "ORGBRIDGE_TIME_SCALE": "1200", "USER": "tester"}
	return e
}

// startWorker runs a disconnect worker (one replica) until the test ends.
func (e *disconnectEnv) startWorker(t *testing.T) {
	t.Helper()
	keys, err := store.ParseKeyring(e.env["ORGBRIDGE_ENCRYPTION_KEYS"])
	if err != nil {
		t.Fatal(err)
	}
	sc, err := slackapi.New(e.emu.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	w, err := disconnect.New(disconnect.Deps{JS: e.nats.JS, Redis: e.redis.Client, Slack: sc,
		Installations: disconnect.StoreInstallations{Store: store.NewInstallations(e.redis.Client, keys), AppID: e.emu.AppID()}},
		disconnect.Config{TimeScale: disconnectScale, AckWait: 5 * time.Second, WorkerID: "cli-test"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := bus.NewRunner(e.nats.JS, nil, nil, bus.RunnerConfig{ShutdownTimeout: 5 * time.Second, DisableMaxDeliveriesCapture: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Register(r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func (e *disconnectEnv) connected() []string {
	var out []string
	for _, x := range e.emu.World().Enterprises[0].ExternalTeams {
		if x.ConnectionStatus == slackapi.StatusConnected {
			out = append(out, x.ID)
		}
	}
	return out
}

// disconnectStatus runs `disconnect status id` and decodes its answer.
func (e *disconnectEnv) disconnectStatus(t *testing.T, id string) (disconnect.Record, []disconnect.AuditEntry) {
	t.Helper()
	code, stdout, stderr := invokeWait(t, e.env, "disconnect", "status", id)
	if code != 0 {
		t.Fatalf("status %s: exit %d: %s", id, code, stderr)
	}
	var out struct {
		Request disconnect.Record       `json:"request"`
		Audit   []disconnect.AuditEntry `json:"audit"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("status %s printed no JSON: %v\n%s", id, err, stdout)
	}
	return out.Request, out.Audit
}

// waitFinal polls `disconnect status` until the request is final.
func (e *disconnectEnv) waitFinal(t *testing.T, id string) (disconnect.Record, []disconnect.AuditEntry) {
	t.Helper()
	var rec disconnect.Record
	var trail []disconnect.AuditEntry
	testenv.Eventually(t, 20*time.Second, func() bool {
		code, _, _ := invokeWait(t, e.env, "disconnect", "status", id)
		if code != 0 {
			return false
		}
		rec, trail = e.disconnectStatus(t, id)
		return rec.State.Final()
	}, "request %s never became final; last state %q", id, func() events.DisconnectState { return rec.State }())
	return rec, trail
}

func TestDisconnectCLIHelpAndUsage(t *testing.T) {
	// Nothing listens on port 1: a usage error must come before any dialling.
	down := map[string]string{"NATS_URL": "nats://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1/0", "USER": "tester"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"disconnect help", []string{"--help"}, 0, "Usage: orgbridge disconnect <request|status|list|audit|policy>"},
		{"request help", []string{"request", "--help"}, 0, "-not-before"},
		{"status help", []string{"status", "--help"}, 0, "<request_id>"},
		{"list help", []string{"list", "--help"}, 0, "-state"},
		{"audit help", []string{"audit", "--help"}, 0, "-format"},
		{"policy help", []string{"policy", "--help"}, 0, "set   --enterprise"},
		{"policy set help", []string{"policy", "set", "--help"}, 0, "-inactive-days"},
		{"policy list help", []string{"policy", "list", "--help"}, 0, "-enterprise"},
		{"policy run help", []string{"policy", "run", "--help"}, 0, "ORGBRIDGE_ENCRYPTION_KEYS"},

		{"no subcommand", nil, 2, "a subcommand is required"},
		{"unknown subcommand", []string{"frob"}, 2, `unknown subcommand "frob"`},
		{"policy without action", []string{"policy"}, 2, "policy needs set, list or run"},
		{"request without target", []string{"request", "--enterprise", "E0A1", "--reason", "gone"}, 2, `--target "" is not a Slack team id (T…)`},
		{"request with a bad enterprise", []string{"request", "--enterprise", "T0A1", "--target", "T0B2", "--reason", "gone"}, 2,
			`--enterprise "T0A1" is not an Enterprise Grid id (E…)`},
		{"request without reason", []string{"request", "--enterprise", "E0A1", "--target", "T0B2"}, 2, "--reason is required: say why"},
		{"request with a bad not-before", []string{"request", "--enterprise", "E0A1", "--target", "T0B2", "--reason", "r", "--not-before", "tomorrow"}, 2,
			`--not-before "tomorrow" is not an RFC 3339 time`},
		{"request with a stray argument", []string{"request", "E0A1"}, 2, `unexpected argument "E0A1"`},
		{"status without id", []string{"status"}, 2, "status takes one request id"},
		{"list with a bad state", []string{"list", "--state", "done"}, 2, `--state "done" is not a state`},
		{"audit with a bad since", []string{"audit", "--since", "last week"}, 2, "give an RFC 3339 time"},
		{"audit with a bad format", []string{"audit", "--format", "xml"}, 2, `--format "xml": choose jsonl or csv`},
		{"policy set without rules", []string{"policy", "set", "--enterprise", "E0A1", "--name", "p1"}, 2, "give an allowlist"},
		{"policy set with a bad schedule", []string{"policy", "set", "--enterprise", "E0A1", "--name", "p1", "--inactive-days", "30", "--schedule", "daily"}, 2,
			"want 5 fields"},
		{"policy run without name", []string{"policy", "run", "--enterprise", "E0A1"}, 2, "policy run needs --enterprise and --name"},

		{"request with NATS down", []string{"request", "--enterprise", "E0A1", "--target", "T0B2", "--reason", "r"}, 1, "cannot reach NATS at nats://127.0.0.1:1"},
		{"status with Redis down", []string{"status", "dr-1"}, 1, "cannot reach Redis at 127.0.0.1:1"},
		{"list with Redis down", []string{"list"}, 1, "cannot reach Redis at 127.0.0.1:1"},
		{"audit with Redis down", []string{"audit"}, 1, "cannot reach Redis at 127.0.0.1:1"},
		{"policy list with Redis down", []string{"policy", "list"}, 1, "cannot reach Redis at 127.0.0.1:1"},
		{"policy run with Redis down", []string{"policy", "run", "--enterprise", "E0A1", "--name", "p1"}, 1, "cannot reach Redis at 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := invokeWait(t, down, append([]string{"disconnect"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stdout+stderr, tt.want) {
				t.Fatalf("exit %d, output:\n%s%s\nwant exit %d and %q", code, stdout, stderr, tt.wantCode, tt.want)
			}
			if tt.wantCode != 0 && !strings.Contains(stderr, "Usage") {
				if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 || !strings.HasPrefix(stderr, "orgbridge disconnect: ") {
					t.Fatalf("an error should be one line starting with the command, got %d:\n%s", lines, stderr)
				}
			}
		})
	}
}

// TestDisconnectCLI drives the commands against a running worker: request,
// then follow with status and list, export the audit trail, and manage a policy.
func TestDisconnectCLI(t *testing.T) {
	e := startDisconnectEnv(t)
	e.startWorker(t)
	teams := e.connected()
	if len(teams) < 4 {
		t.Fatalf("the emulator has %d connected external teams, the test needs 4", len(teams))
	}
	target := teams[0]
	start := time.Now()

	code, stdout, stderr := invokeWait(t, e.env, "disconnect", "request", "--enterprise", e.ent.ID, "--target", target,
		"--reason", "contract ended", "--id", "cli-1")
	if code != 0 || !strings.Contains(stdout, "queued cli-1: disconnect "+target+" from "+e.ent.ID) {
		t.Fatalf("request: exit %d\n%s%s", code, stdout, stderr)
	}
	e.waitFinal(t, "cli-1") // so that the next one is newer
	code, _, stderr = invokeWait(t, e.env, "disconnect", "request", "--enterprise", "E0UNKNOWN", "--target", teams[1], "--reason", "r", "--id", "cli-unknown")
	if code != 0 {
		t.Fatalf("request for an unknown enterprise was not queued: exit %d: %s", code, stderr)
	}

	t.Run("status", func(t *testing.T) {
		tests := []struct {
			id         string
			wantState  events.DisconnectState
			wantEvents []string
			wantMsg    string
			wantBy     string
		}{
			{"cli-1", events.DisconnectCompleted, []string{"received", "accepted", "slack_call", "submitted", "confirm_check", "completed"},
				target, "tester"},
			{"cli-unknown", events.DisconnectRejected, []string{"received", "rejected"}, "orgbridge does not know enterprise E0UNKNOWN", "tester"},
		}
		for _, tt := range tests {
			t.Run(tt.id, func(t *testing.T) {
				rec, trail := e.waitFinal(t, tt.id)
				if rec.State != tt.wantState || !strings.Contains(rec.Message, tt.wantMsg) || rec.RequestedBy != tt.wantBy {
					t.Fatalf("status = %+v, want %s with %q by %s", rec, tt.wantState, tt.wantMsg, tt.wantBy)
				}
				var got []string
				for _, a := range trail {
					got = append(got, a.Event)
				}
				for _, ev := range tt.wantEvents {
					if !slices.Contains(got, ev) {
						t.Fatalf("audit events %v lack %s", got, ev)
					}
				}
			})
		}
		if s := e.status(target); s == slackapi.StatusConnected {
			t.Fatalf("Slack still lists %s as %s", target, s)
		}
		code, _, stderr := invokeWait(t, e.env, "disconnect", "status", "dr-nope")
		if code != 1 || !strings.Contains(stderr, "no disconnect request dr-nope") {
			t.Fatalf("status of an unknown id: exit %d: %s", code, stderr)
		}
	})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want []string // "request_id enterprise target state requested_by", newest first
		}{
			{"all", nil, []string{"cli-unknown E0UNKNOWN " + teams[1] + " rejected tester", "cli-1 " + e.ent.ID + " " + target + " completed tester"}},
			{"by state", []string{"--state", "rejected"}, []string{"cli-unknown E0UNKNOWN " + teams[1] + " rejected tester"}},
			{"by enterprise", []string{"--enterprise", e.ent.ID}, []string{"cli-1 " + e.ent.ID + " " + target + " completed tester"}},
			{"limit", []string{"--limit", "1"}, []string{"cli-unknown E0UNKNOWN " + teams[1] + " rejected tester"}},
			{"nothing", []string{"--state", "failed"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, stdout, stderr := invokeWait(t, e.env, append([]string{"disconnect", "list"}, tt.args...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
				if strings.Join(strings.Fields(lines[0]), " ") != "REQUEST ENTERPRISE TARGET STATE REQUESTED BY UPDATED MESSAGE" {
					t.Fatalf("no header:\n%s", stdout)
				}
				var rows []string
				for _, l := range lines[1:] {
					rows = append(rows, strings.Join(strings.Fields(l)[:5], " "))
				}
				if !slices.Equal(rows, tt.want) {
					t.Fatalf("listed %q, want %q:\n%s", rows, tt.want, stdout)
				}
			})
		}
	})

	t.Run("audit", func(t *testing.T) {
		later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		tests := []struct {
			name     string
			args     []string
			wantReqs []string // request ids seen
			wantNone bool
		}{
			{"jsonl since 1h", []string{"--since", "1h", "--format", "jsonl"}, []string{"cli-1", "cli-unknown"}, false},
			{"csv since RFC 3339", []string{"--since", start.Add(-time.Minute).UTC().Format(time.RFC3339), "--format", "csv"}, []string{"cli-1", "cli-unknown"}, false},
			{"one request", []string{"--request-id", "cli-1", "--format", "jsonl"}, []string{"cli-1"}, false},
			{"one enterprise as csv", []string{"--enterprise", "E0UNKNOWN", "--format", "csv"}, []string{"cli-unknown"}, false},
			{"since later", []string{"--since", later, "--format", "csv"}, nil, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, stdout, stderr := invokeWait(t, e.env, append([]string{"disconnect", "audit"}, tt.args...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				entries := parseAudit(t, stdout, slices.Contains(tt.args, "csv"))
				if tt.wantNone != (len(entries) == 0) {
					t.Fatalf("%d entries:\n%s", len(entries), stdout)
				}
				var reqs []string
				for _, a := range entries {
					if !slices.Contains(reqs, a.RequestID) {
						reqs = append(reqs, a.RequestID)
					}
					if strings.Contains(a.Message+string(a.SlackResponse), "xoxb-") || strings.Contains(a.Message+string(a.SlackResponse), "xoxe") {
						t.Fatalf("a token reached the audit trail: %+v", a)
					}
				}
				slices.Sort(reqs)
				if !slices.Equal(reqs, tt.wantReqs) {
					t.Fatalf("requests in the audit %v, want %v", reqs, tt.wantReqs)
				}
			})
		}
	})

	t.Run("policy", func(t *testing.T) {
		allowed := teams[1:3]
		code, stdout, stderr := invokeWait(t, e.env, "disconnect", "policy", "set", "--enterprise", e.ent.ID, "--name", "partners",
			"--allow", strings.Join(allowed, ","), "--schedule", "0 3 * * 1")
		if code != 0 || !strings.Contains(stdout, "policy partners of "+e.ent.ID+" saved") {
			t.Fatalf("policy set: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = invokeWait(t, e.env, "disconnect", "policy", "list", "--enterprise", e.ent.ID)
		var ps []disconnect.Policy
		if code != 0 || json.Unmarshal([]byte(stdout), &ps) != nil || len(ps) != 1 || !slices.Equal(ps[0].Allowlist, allowed) ||
			ps[0].Schedule != "0 3 * * 1" || ps[0].UpdatedBy != "tester" {
			t.Fatalf("policy list: exit %d\n%s%s", code, stdout, stderr)
		}

		callsBefore := len(e.emu.Calls(slackapi.MethodExternalTeamsDisconnect))
		code, stdout, stderr = invokeWait(t, e.env, "disconnect", "policy", "run", "--enterprise", e.ent.ID, "--name", "partners", "--dry-run")
		var rep disconnect.PolicyReport
		if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil {
			t.Fatalf("policy run --dry-run: exit %d\n%s%s", code, stdout, stderr)
		}
		var want, got []string
		for _, x := range e.emu.World().Enterprises[0].ExternalTeams {
			if x.ConnectionStatus != slackapi.StatusDisconnected && !slices.Contains(allowed, x.ID) {
				want = append(want, x.ID)
			}
		}
		for _, v := range rep.Violations {
			got = append(got, v.TeamID)
			if v.RequestID != "" || !slices.Contains(v.Rules, "not_in_allowlist") {
				t.Fatalf("dry run violation %+v: want no request and rule not_in_allowlist", v)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !rep.DryRun || rep.Checked != len(e.ent.ExternalTeams) || !slices.Equal(got, want) {
			t.Fatalf("report = %+v, want a dry run over %d teams flagging %v", rep, len(e.ent.ExternalTeams), want)
		}
		if n := len(e.emu.Calls(slackapi.MethodExternalTeamsDisconnect)); n != callsBefore {
			t.Fatalf("a dry run called team.externalTeams.disconnect %d times", n-callsBefore)
		}

		code, _, stderr = invokeWait(t, e.env, "disconnect", "policy", "run", "--enterprise", e.ent.ID, "--name", "nope")
		if code != 1 || !strings.Contains(stderr, "no policy nope for "+e.ent.ID) {
			t.Fatalf("run of an unknown policy: exit %d: %s", code, stderr)
		}
	})
}

func (e *disconnectEnv) status(team string) string {
	for _, x := range e.emu.World().Enterprises[0].ExternalTeams {
		if x.ID == team {
			return x.ConnectionStatus
		}
	}
	return ""
}

// parseAudit reads `disconnect audit` output in either format.
func parseAudit(t *testing.T, out string, isCSV bool) []disconnect.AuditEntry {
	t.Helper()
	var entries []disconnect.AuditEntry
	if !isCSV {
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var a disconnect.AuditEntry
			if err := json.Unmarshal([]byte(l), &a); err != nil {
				t.Fatalf("not a JSON line: %q: %v", l, err)
			}
			entries = append(entries, a)
		}
		return entries
	}
	rows, err := csv.NewReader(bytes.NewReader([]byte(out))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("not CSV with a header: %v\n%s", err, out)
	}
	if strings.Join(rows[0], ",") != "time,enterprise_id,request_id,target_team,event,state,requested_by,reason,error,message,slack_method,slack_status,slack_response,worker" {
		t.Fatalf("CSV header = %v", rows[0])
	}
	for _, r := range rows[1:] {
		at, err := time.Parse(time.RFC3339Nano, r[0])
		if err != nil {
			t.Fatalf("CSV time %q: %v", r[0], err)
		}
		entries = append(entries, disconnect.AuditEntry{Time: at, EnterpriseID: r[1], RequestID: r[2], TargetTeam: r[3], Event: r[4],
			State: r[5], Message: r[9], SlackResponse: json.RawMessage(r[12])})
	}
	return entries
}
