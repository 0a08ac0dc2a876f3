package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// installForCLI installs the emulator's app in team through Slack's OAuth
// (authorize → code → oauth.v2.access) and stores the install as the binding
// worker does; expired makes the stored bot token one Slack no longer accepts,
// due for refresh (the emulator's 12 h expiry cannot pass in a test).
func installForCLI(t *testing.T, e *slackemu.Emulator, installs *store.Installations, team string, expired bool) {
	t.Helper()
	const redirect = "https://orgbridge.test/slack/oauth/callback"
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(e.URL() + "/oauth/v2/authorize?" + url.Values{"client_id": {e.ClientID()},
		"scope": {"commands,users:read"}, "redirect_uri": {redirect}, "team": {team}, "state": {"s"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	oauth := &slackapi.OAuthApp{APIURL: e.APIURL(), ClientID: e.ClientID(), ClientSecret: e.ClientSecret()}
	r, err := oauth.Exchange(context.Background(), loc.Query().Get("code"), redirect)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	in := &store.Installation{AppID: r.AppID, TeamID: r.Team.ID, TeamName: r.Team.Name, BotUserID: r.BotUserID,
		Scopes: strings.Split(r.Scope, ","), BotToken: store.Secret(r.AccessToken), BotRefreshToken: store.Secret(r.RefreshToken),
		TokenExpiresAt: time.Now().Add(time.Duration(r.ExpiresIn) * time.Second).UTC()}
	if expired {
		in.BotToken, in.TokenExpiresAt = "xoxe.xoxb-expired-long-ago", time.Now().Add(-time.Minute).UTC()
	}
	if err := installs.Save(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func TestOrgDisconnect(t *testing.T) {
	tests := []struct {
		name          string
		expired       bool
		args          []string // after `org disconnect`; "{team}" is the installed team
		wantCode      int
		wantOut       string
		wantUninstall int
		wantRefresh   bool
	}{
		{name: "fresh token", args: []string{"--team", "{team}"}, wantCode: 0, wantOut: "apps.uninstall sent", wantUninstall: 1},
		{name: "expired token is refreshed first", expired: true, args: []string{"--team", "{team}"}, wantCode: 0,
			wantOut: "apps.uninstall sent", wantUninstall: 1, wantRefresh: true},
		{name: "team without the app", args: []string{"--team", "T0NOSUCH"}, wantCode: 1,
			wantOut: "app A0EMULATOR is not installed in T0NOSUCH; `GET /admin/api/installations` lists installs"},
		{name: "no team", args: nil, wantCode: 2, wantOut: "--team (or --enterprise) is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := testenv.StartRedis(t)
			e := slackemu.StartTest(t, slackemu.Config{Seed: 3, DisableRateLimits: true})
			keySpec := store.GenerateKeySpec("k1")
			keys, err := store.ParseKeyring(keySpec)
			if err != nil {
				t.Fatal(err)
			}
			installs := store.NewInstallations(rd.Client, keys)
			team := e.World().Workspaces[0].ID
			installForCLI(t, e, installs, team, tt.expired)
			refreshesBefore := refreshCalls(e)

			args := []string{"org", "disconnect"}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "{team}", team))
			}
			env := map[string]string{"REDIS_URL": rd.URL(), "ORGBRIDGE_ENCRYPTION_KEYS": keySpec, "SLACK_API_URL": e.APIURL(),
				"SLACK_CLIENT_ID": e.ClientID(), "SLACK_CLIENT_SECRET": e.ClientSecret(), "SLACK_APP_ID": e.AppID()}
			code, stdout, stderr := invokeWait(t, env, args...)
			if code != tt.wantCode || !strings.Contains(stdout+stderr, tt.wantOut) {
				t.Fatalf("exit %d, output:\n%s%s\nwant exit %d and %q", code, stdout, stderr, tt.wantCode, tt.wantOut)
			}
			calls := e.Calls("apps.uninstall")
			if len(calls) != tt.wantUninstall {
				t.Fatalf("apps.uninstall called %d times, want %d: %+v", len(calls), tt.wantUninstall, calls)
			}
			for _, c := range calls {
				if !c.OK || c.TeamID != team {
					t.Fatalf("apps.uninstall = %+v, want ok for %s", c, team)
				}
			}
			if got := refreshCalls(e) - refreshesBefore; (got > 0) != tt.wantRefresh {
				t.Fatalf("%d token refreshes, want refresh=%v", got, tt.wantRefresh)
			}
			if tt.wantUninstall > 0 {
				// The app is gone from the workspace: its tokens no longer work.
				in, err := installs.Find(context.Background(), e.AppID(), "", team)
				if err != nil {
					t.Fatal(err)
				}
				_, err = (&slackapi.OAuthApp{APIURL: e.APIURL()}).Client(in.BotToken.Reveal()).AuthTestContext(context.Background())
				if err == nil || !strings.Contains(err.Error(), "token_revoked") {
					t.Fatalf("auth.test with the install's token after disconnect: %v, want token_revoked", err)
				}
			}
		})
	}
}

func refreshCalls(e *slackemu.Emulator) int {
	n := 0
	for _, c := range e.Calls("oauth.v2.access") {
		if c.Args["grant_type"] == "refresh_token" && c.OK {
			n++
		}
	}
	return n
}

// `orgbridge org unbind|invalidate|delete-mappings`: an operator's clean-up,
// against Redis (and Slack's apps.uninstall) directly, audited like the admin API.
func TestOrgCleanupCommands(t *testing.T) {
	const org, other = "00D000000000001", "00D000000000002"
	tests := []struct {
		name     string
		install  bool // the app is installed in {team} (emulator)
		args     []string
		wantCode int
		wantOut  []string
		// then checks the stores; b is {team}'s binding.
		then func(t *testing.T, b *binding.Binding, ms *mapping.Store, team string)
	}{
		{name: "invalidate", args: []string{"invalidate", "--team", "{team}", "--reason", "support case 42"},
			wantOut: []string{"is now invalid"},
			then: func(t *testing.T, b *binding.Binding, _ *mapping.Store, _ string) {
				if b == nil || b.Valid || !strings.Contains(b.InvalidReason, "support case 42") {
					t.Fatalf("binding %+v, want invalid with the reason", b)
				}
			}},
		{name: "invalidate a workspace that is not bound", args: []string{"invalidate", "--team", "T0NOTBOUND"},
			wantCode: 1, wantOut: []string{"not connected to an org"}},
		{name: "delete an org's mappings everywhere", args: []string{"delete-mappings", "--org", org, "--yes"},
			wantOut: []string{"{team}: 2 Slack users'", "T0SECOND: 1 Slack users'"},
			then: func(t *testing.T, b *binding.Binding, ms *mapping.Store, team string) {
				if list, _ := ms.List(context.Background(), mapping.Filter{OrgID: org}); len(list) != 0 {
					t.Fatalf("mappings of the org left: %+v", list)
				}
				if list, _ := ms.List(context.Background(), mapping.Filter{OrgID: other}); len(list) != 1 {
					t.Fatalf("another org's mappings went: %+v", list)
				}
				if b == nil || !b.Valid {
					t.Fatal("deleting mappings touched the binding")
				}
			}},
		{name: "delete a workspace's mappings, as JSON", args: []string{"delete-mappings", "--team", "{team}", "--yes", "--json"},
			wantOut: []string{`"{team}": 2`}},
		{name: "delete without --yes", args: []string{"delete-mappings", "--team", "{team}"}, wantCode: 2, wantOut: []string{"add --yes"}},
		{name: "delete naming nothing", args: []string{"delete-mappings", "--yes"}, wantCode: 2, wantOut: []string{"--team, --enterprise or --org is required"}},
		{name: "unbind uninstalls the app", install: true, args: []string{"unbind", "--team", "{team}"},
			wantOut: []string{"apps.uninstall sent for [A0EMULATOR]"}},
		{name: "unbind with no app left clears the rest", args: []string{"unbind", "--team", "{team}"},
			wantOut: []string{"binding, mappings and associations removed (2 Slack users)"},
			then: func(t *testing.T, b *binding.Binding, ms *mapping.Store, team string) {
				if b != nil {
					t.Fatalf("binding left: %+v", b)
				}
				if list, _ := ms.List(context.Background(), mapping.Filter{Workspace: team}); len(list) != 0 {
					t.Fatalf("mappings left: %+v", list)
				}
			}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantOut: []string{"unknown org command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rd := testenv.StartRedis(t)
			e := slackemu.StartTest(t, slackemu.Config{Seed: 3, DisableRateLimits: true})
			keySpec := store.GenerateKeySpec("k1")
			keys, err := store.ParseKeyring(keySpec)
			if err != nil {
				t.Fatal(err)
			}
			team := e.World().Workspaces[0].ID
			if tt.install {
				installForCLI(t, e, store.NewInstallations(rd.Client, keys), team, false)
			}
			bs, ms := binding.NewStore(rd.Client, keys), mapping.NewStore(rd.Client, keys)
			for _, w := range []string{team, "T0SECOND"} {
				lock, err := store.NewLocker(rd.Client).Obtain(ctx, binding.LockKey(w), time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if err := bs.Bind(ctx, &binding.Binding{Scope: w, OrgID: org, Valid: true, ConnectedByOrgUser: "005A",
					ConnectedByUsername: "alice", RefreshToken: "rt"}, lock); err != nil {
					t.Fatal(err)
				}
				_ = lock.Release(ctx)
			}
			for _, m := range []mapping.Mapping{{Workspace: team, SlackUserID: "U1", OrgID: org, OrgUserID: "005A"},
				{Workspace: team, SlackUserID: "U2", OrgID: org, OrgUserID: "005B"},
				{Workspace: "T0SECOND", SlackUserID: "U3", OrgID: org, OrgUserID: "005A"},
				{Workspace: "T0THIRD", SlackUserID: "U4", OrgID: other, OrgUserID: "005Z"}} {
				m.Source = "import"
				if _, err := ms.Connect(ctx, &m); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"org"}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "{team}", team))
			}
			env := map[string]string{"REDIS_URL": rd.URL(), "ORGBRIDGE_ENCRYPTION_KEYS": keySpec, "SLACK_API_URL": e.APIURL(),
				"SLACK_CLIENT_ID": e.ClientID(), "SLACK_CLIENT_SECRET": e.ClientSecret(), "SLACK_APP_ID": e.AppID()}
			code, stdout, stderr := invokeWait(t, env, args...)
			for _, want := range tt.wantOut {
				want = strings.ReplaceAll(want, "{team}", team)
				if code != tt.wantCode || !strings.Contains(stdout+stderr, want) {
					t.Fatalf("exit %d, output:\n%s%s\nwant exit %d and %q", code, stdout, stderr, tt.wantCode, want)
				}
			}
			if tt.install {
				if calls := e.Calls("apps.uninstall"); len(calls) != 1 || !calls[0].OK {
					t.Fatalf("apps.uninstall calls: %+v", calls)
				}
			}
			if tt.then != nil {
				b, err := bs.Get(ctx, team)
				if err != nil {
					t.Fatal(err)
				}
				tt.then(t, b, ms, team)
			}
			if code == 0 && tt.name != "unknown command" {
				if trail, _ := bs.AuditLog(ctx, team); len(trail) == 0 || trail[0].Actor != "admin" {
					t.Fatalf("no admin audit entry in %s: %+v", team, trail)
				}
			}
		})
	}
}
