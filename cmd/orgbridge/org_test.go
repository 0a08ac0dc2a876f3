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
