package slackemu

import (
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

type orgsPage struct {
	ids    []string
	names  []string
	status []string
	last   []int64
	total  int
	next   string
	err    string
}

func listExternal(t *testing.T, e *Emulator, token string, args url.Values) orgsPage {
	t.Helper()
	_, body := callAPI(t, e, "team.externalTeams.list", token, args)
	var p orgsPage
	if body["ok"] != true {
		p.err, _ = body["error"].(string)
		return p
	}
	for _, o := range body["organizations"].([]any) {
		m := o.(map[string]any)
		p.ids = append(p.ids, m["team_id"].(string))
		p.names = append(p.names, m["team_name"].(string))
		p.status = append(p.status, m["connection_status"].(string))
		p.last = append(p.last, int64(m["last_active_timestamp"].(float64)))
	}
	p.total = int(body["total_count"].(float64))
	p.next = body["response_metadata"].(map[string]any)["next_cursor"].(string)
	return p
}

func seedFile(t *testing.T) string {
	t.Helper()
	const seed = `{
  "enterprises": [{"id": "E0GRID", "name": "Grid Co"}],
  "workspaces": [{"id": "T0HQ", "name": "HQ", "enterprise_id": "E0GRID"}, {"id": "T0EU", "name": "EU", "enterprise_id": "E0GRID"}, {"id": "T0SOLO", "name": "Solo"}],
  "users": [{"id": "W0ADA", "team_id": "T0HQ", "name": "ada", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@grid.example", "is_admin": true}],
  "groups": [{"id": "S0ENG", "team_id": "T0HQ", "name": "Engineering", "users": ["W0ADA"]}],
  "external_teams": [
    {"id": "T1A", "enterprise_id": "E0GRID", "name": "Acme", "connection_status": "CONNECTED", "last_active_timestamp": 300, "slack_connect_prefs": ["approved_orgs_only"]},
    {"id": "T1B", "enterprise_id": "E0GRID", "name": "beta", "connection_status": "BLOCKED", "last_active_timestamp": 100},
    {"id": "T1C", "enterprise_id": "E0GRID", "name": "Cyan", "connection_status": "CONNECTED", "last_active_timestamp": 200},
    {"id": "T1D", "enterprise_id": "E0GRID", "name": "Delta", "connection_status": "IN_REVIEW", "last_active_timestamp": 400, "slack_connect_prefs": ["profile_visibility"]},
    {"id": "T1E", "enterprise_id": "E0GRID", "name": "Echo", "connection_status": "DISCONNECTED", "last_active_timestamp": 50}
  ]
}`
	p := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(p, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExternalTeamsList(t *testing.T) {
	e := StartTest(t, Config{SeedFile: seedFile(t), DisableRateLimits: true})
	tok := mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token
	tests := []struct {
		name    string
		args    url.Values
		wantIDs []string
		total   int
		next    string
		err     string
	}{
		{name: "default: by name asc", args: nil, wantIDs: []string{"T1A", "T1B", "T1C", "T1D", "T1E"}, total: 5},
		{name: "limit and cursor", args: url.Values{"limit": {"2"}, "cursor": {"T1C"}}, wantIDs: []string{"T1C", "T1D"}, total: 5, next: "T1E"},
		{name: "status filter", args: url.Values{"connection_status_filter": {"CONNECTED"}}, wantIDs: []string{"T1A", "T1C"}, total: 2},
		{name: "pref filter", args: url.Values{"slack_connect_pref_filter": {`["profile_visibility","approved_orgs_only"]`}}, wantIDs: []string{"T1A", "T1D"}, total: 2},
		{name: "workspace filter", args: url.Values{"workspace_filter": {"T0EU"}}, wantIDs: []string{"T1A", "T1B", "T1C", "T1D", "T1E"}, total: 5},
		{name: "workspace filter, no match", args: url.Values{"workspace_filter": {"T0SOLO"}}, wantIDs: nil, total: 0},
		{name: "last active desc", args: url.Values{"sort_field": {"last_active_timestamp"}, "sort_direction": {"desc"}}, wantIDs: []string{"T1D", "T1A", "T1C", "T1B", "T1E"}, total: 5},
		{name: "by status", args: url.Values{"sort_field": {"connection_status"}}, wantIDs: []string{"T1B", "T1A", "T1C", "T1E", "T1D"}, total: 5},
		{name: "bad status", args: url.Values{"connection_status_filter": {"GONE"}}, err: "invalid_arguments"},
		{name: "bad cursor", args: url.Values{"cursor": {"T9NOPE"}}, err: "invalid_cursor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := listExternal(t, e, tok, tc.args)
			if p.err != tc.err {
				t.Fatalf("error = %q, want %q", p.err, tc.err)
			}
			if tc.err != "" {
				return
			}
			if len(p.ids) != len(tc.wantIDs) || p.total != tc.total || p.next != tc.next {
				t.Fatalf("got %v total %d next %q, want %v total %d next %q", p.ids, p.total, p.next, tc.wantIDs, tc.total, tc.next)
			}
			for i := range p.ids {
				if p.ids[i] != tc.wantIDs[i] {
					t.Fatalf("order %v, want %v", p.ids, tc.wantIDs)
				}
			}
		})
	}
	t.Run("following cursors visits every team once", func(t *testing.T) {
		var seen []string
		args := url.Values{"limit": {"2"}}
		for {
			p := listExternal(t, e, tok, args)
			seen = append(seen, p.ids...)
			if p.next == "" {
				break
			}
			args.Set("cursor", p.next)
		}
		if !sort.StringsAreSorted(seen) || len(seen) != 5 {
			t.Errorf("visited %v", seen)
		}
	})
	t.Run("standalone workspace token", func(t *testing.T) {
		if p := listExternal(t, e, mint(t, e, TokenRequest{TeamID: "T0SOLO"}).Token, nil); p.err != "not_allowed_token_type" {
			t.Errorf("error = %q, want not_allowed_token_type", p.err)
		}
	})
}

func TestExternalTeamsDisconnect(t *testing.T) {
	// 1000×: the 30 s background disconnect takes 30 ms.
	e := StartTest(t, Config{SeedFile: seedFile(t), TimeScale: 1000, DisconnectDelay: 30 * time.Second})
	grid := mint(t, e, TokenRequest{TeamID: "T0HQ", Scopes: []string{"conversations.connect:manage", "team:read"}}).Token
	tests := []struct {
		name   string
		token  string
		target string
		err    string
	}{
		{name: "not grid", token: mint(t, e, TokenRequest{TeamID: "T0SOLO"}).Token, target: "T1A", err: "not_allowed_token_type"},
		{name: "no scope", token: mint(t, e, TokenRequest{TeamID: "T0EU", Scopes: []string{"team:read"}}).Token, target: "T1A", err: "missing_scope"},
		{name: "missing target", token: mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token, target: "", err: "missing_argument"},
		{name: "unknown target", token: grid, target: "T9NOPE", err: "invalid_target_team"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Tier 1 is per workspace; each case waits out its minute (60 ms).
			testenv.Eventually(t, 5*time.Second, func() bool {
				_, body := callAPI(t, e, "team.externalTeams.disconnect", tc.token, url.Values{"target_team": {tc.target}})
				return body["error"] == tc.err
			}, "disconnect %s: want %s", tc.target, tc.err)
		})
	}
	t.Run("disconnects in the background", func(t *testing.T) {
		testenv.Eventually(t, 5*time.Second, func() bool {
			_, body := callAPI(t, e, "team.externalTeams.disconnect", grid, url.Values{"target_team": {"T1A"}})
			return body["ok"] == true
		}, "disconnect accepted")
		status := func() string {
			for _, x := range e.World().Enterprises[0].ExternalTeams {
				if x.ID == "T1A" {
					return x.ConnectionStatus
				}
			}
			return ""
		}
		testenv.Eventually(t, 5*time.Second, func() bool { return status() == "DISCONNECTED" }, "T1A disconnected")
		calls := 0
		for _, c := range e.Calls("team.externalTeams.disconnect") {
			if c.OK && c.Args["target_team"] == "T1A" {
				calls++
			}
		}
		if calls != 1 {
			t.Errorf("%d successful disconnect calls for T1A, want 1", calls)
		}
	})
	t.Run("every documented error is reachable by fault injection", func(t *testing.T) {
		codes := []string{"missing_argument", "restricted_action", "invalid_target_team", "access_denied", "account_inactive",
			"deprecated_endpoint", "ekm_access_denied", "enterprise_is_restricted", "invalid_auth", "is_bot", "user_is_restricted",
			"method_deprecated", "missing_scope", "not_allowed_token_type", "not_authed", "no_permission", "org_login_required",
			"token_expired", "token_revoked", "two_factor_setup_required", "accesslimited", "fatal_error", "internal_error",
			"invalid_arg_name", "invalid_arguments", "invalid_array_arg", "invalid_charset", "invalid_form_data", "invalid_post_type",
			"missing_post_type", "ratelimited", "request_timeout", "service_unavailable", "team_added_to_org"}
		for _, code := range codes {
			if err := e.InjectFault(Fault{Method: "team.externalTeams.disconnect", Error: code, Count: 1}); err != nil {
				t.Fatal(err)
			}
			if _, body := callAPI(t, e, "team.externalTeams.disconnect", grid, url.Values{"target_team": {"T1C"}}); body["error"] != code {
				t.Errorf("fault %s: got %v", code, body)
			}
		}
	})
}

func TestSeedFileWorld(t *testing.T) {
	e := StartTest(t, Config{SeedFile: seedFile(t)})
	w := e.World()
	if len(w.Workspaces) != 3 || w.Workspaces[0].ID != "T0HQ" || w.Workspaces[0].Admins[0] != "W0ADA" || w.Enterprises[0].ID != "E0GRID" {
		t.Fatalf("world = %+v", w)
	}
	if w.Workspaces[0].Groups[0].ID != "S0ENG" || w.Workspaces[0].Groups[0].Users != 1 {
		t.Errorf("groups = %+v", w.Workspaces[0].Groups)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`{"workspaces":[{"id":"T1"}],"users":[{"id":"U1","team_id":"T9"}]}`), 0o600)
	if _, err := New(Config{SeedFile: bad}); err == nil {
		t.Errorf("seed with a user in an unknown team was accepted")
	}
}
