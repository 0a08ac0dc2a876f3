package slackemu

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

// These tests drive the emulator through slack-go, unchanged, as the
// product does.

func TestAuthTest(t *testing.T) {
	e := StartTest(t, smallWorld())
	w := e.World()
	grid := w.Enterprises[0]
	tests := []struct {
		name          string
		req           TokenRequest
		wantTeam      string
		wantEnterpise string
	}{
		{name: "standalone workspace", req: TokenRequest{}, wantTeam: w.Workspaces[0].ID},
		{name: "grid member workspace", req: TokenRequest{TeamID: grid.Workspaces[1]}, wantTeam: grid.Workspaces[1], wantEnterpise: grid.ID},
		{name: "org-level grid token", req: TokenRequest{EnterpriseID: grid.ID}, wantEnterpise: grid.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mint(t, e, tc.req)
			got, err := clientFor(e, m.Token).AuthTestContext(context.Background())
			if err != nil {
				t.Fatalf("auth.test: %v", err)
			}
			if got.TeamID != tc.wantTeam || got.EnterpriseID != tc.wantEnterpise || got.BotID != m.BotID || got.UserID != m.BotUserID {
				t.Errorf("auth.test = %+v, want team %q enterprise %q bot %s/%s", got, tc.wantTeam, tc.wantEnterpise, m.BotID, m.BotUserID)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		_, body := callAPI(t, e, "auth.test", "", nil)
		if body["error"] != "not_authed" {
			t.Errorf("error = %v, want not_authed", body["error"])
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		_, err := clientFor(e, "xoxb-nope").AuthTestContext(context.Background())
		if slackErrCode(err) != "invalid_auth" {
			t.Errorf("err = %v, want invalid_auth", err)
		}
	})
}

func TestUsersListPagination(t *testing.T) {
	e := StartTest(t, Config{Seed: 7, Workspaces: 1, Enterprises: -1, Users: 1500, Groups: -1})
	tok := mint(t, e, TokenRequest{}).Token
	api := clientFor(e, tok)
	tests := []struct {
		name      string
		limit     int
		wantPages int
	}{
		{name: "limit 200", limit: 200, wantPages: 8},
		{name: "limit 999", limit: 999, wantPages: 2},
		{name: "limit 1000 is capped at 999", limit: 1000, wantPages: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.Calls("users.list"))
			p := api.GetUsersPaginated(slack.GetUsersOptionLimit(tc.limit))
			seen := map[string]bool{}
			pages := 0
			var err error
			for {
				p, err = p.Next(context.Background())
				if p.Done(err) {
					break
				}
				if err != nil {
					t.Fatalf("page %d: %v", pages, err)
				}
				pages++
				if len(p.Users) > min(tc.limit, 999) {
					t.Fatalf("page of %d users, limit %d", len(p.Users), tc.limit)
				}
				for _, u := range p.Users {
					if seen[u.ID] {
						t.Fatalf("user %s on two pages", u.ID)
					}
					seen[u.ID] = true
				}
			}
			if len(seen) != 1500 || pages != tc.wantPages {
				t.Errorf("got %d users in %d pages, want 1500 in %d", len(seen), pages, tc.wantPages)
			}
			if n := len(e.Calls("users.list")) - before; n != tc.wantPages {
				t.Errorf("%d users.list calls, want %d", n, tc.wantPages)
			}
		})
	}
	t.Run("GetUsersContext", func(t *testing.T) {
		users, err := api.GetUsersContext(context.Background(), slack.GetUsersOptionLimit(999))
		if err != nil || len(users) != 1500 {
			t.Fatalf("GetUsersContext = %d users, %v", len(users), err)
		}
		kinds := map[string]int{}
		for _, u := range users {
			switch {
			case u.Deleted:
				kinds["deleted"]++
			case u.IsBot:
				kinds["bot"]++
			case u.IsUltraRestricted:
				kinds["single-channel guest"]++
			case u.IsRestricted:
				kinds["guest"]++
			default:
				kinds["member"]++
			}
			if !u.IsBot && (u.Profile.Image72 == "" || u.Profile.Email == "" || u.RealName == "") {
				t.Fatalf("user %s lacks avatar, email or name: %+v", u.ID, u.Profile)
			}
		}
		for _, k := range []string{"deleted", "bot", "single-channel guest", "guest", "member"} {
			if kinds[k] == 0 {
				t.Errorf("no %s among users: %v", k, kinds)
			}
		}
	})
	t.Run("no limit on a large workspace", func(t *testing.T) {
		_, body := callAPI(t, e, "users.list", tok, nil)
		if body["error"] != "limit_required" {
			t.Errorf("error = %v, want limit_required", body["error"])
		}
	})
	t.Run("bad cursor", func(t *testing.T) {
		_, body := callAPI(t, e, "users.list", tok, url.Values{"limit": {"10"}, "cursor": {"garbage"}})
		if body["error"] != "invalid_cursor" {
			t.Errorf("error = %v, want invalid_cursor", body["error"])
		}
	})
}

func TestUsersInfoEmailNeedsScope(t *testing.T) {
	e := StartTest(t, smallWorld())
	uid := ""
	e.mu.Lock()
	uid = e.world.workspaces[0].Users[0].ID
	e.mu.Unlock()
	tests := []struct {
		name      string
		scopes    []string
		wantEmail bool
	}{
		{name: "users:read only", scopes: []string{"users:read"}, wantEmail: false},
		{name: "with users:read.email", scopes: []string{"users:read", "users:read.email"}, wantEmail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := clientFor(e, mint(t, e, TokenRequest{Scopes: tc.scopes}).Token).GetUserInfoContext(context.Background(), uid)
			if err != nil {
				t.Fatal(err)
			}
			if (u.Profile.Email != "") != tc.wantEmail || !u.IsPrimaryOwner {
				t.Errorf("user = email %q primary owner %v, want email %v", u.Profile.Email, u.IsPrimaryOwner, tc.wantEmail)
			}
		})
	}
}

func TestUsergroups(t *testing.T) {
	e := StartTest(t, smallWorld())
	ws := e.World().Workspaces[0]
	api := clientFor(e, mint(t, e, TokenRequest{TeamID: ws.ID}).Token)
	groups, err := api.GetUserGroupsContext(context.Background(), slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(ws.Groups) || len(groups) != 3 {
		t.Fatalf("%d groups, world has %d", len(groups), len(ws.Groups))
	}
	for i, g := range groups {
		members, err := api.GetUserGroupMembersContext(context.Background(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(members) != ws.Groups[i].Users || len(g.Users) != len(members) || len(members) == 0 {
			t.Errorf("group %s: %d members via users.list, %d inline, world says %d", g.Handle, len(members), len(g.Users), ws.Groups[i].Users)
		}
	}
	if _, err := api.GetUserGroupMembersContext(context.Background(), "S0NOPE"); slackErrCode(err) != "no_such_subteam" {
		t.Errorf("unknown group: err = %v, want no_such_subteam", err)
	}
}

// authorize walks Slack's consent screen and returns the redirect's query.
func authorize(t *testing.T, e *Emulator, q url.Values) url.Values {
	t.Helper()
	q.Set("client_id", e.ClientID())
	q.Set("redirect_uri", "https://app.example.com/slack/oauth/callback")
	q.Set("state", "st4te")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(e.URL() + "/oauth/v2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), "https://app.example.com/slack/oauth/callback?") {
		t.Fatalf("authorize redirected to %q", resp.Header.Get("Location"))
	}
	if loc.Query().Get("state") != "st4te" {
		t.Fatalf("state not echoed: %v", loc.Query())
	}
	return loc.Query()
}

func TestOAuthV2WithRotation(t *testing.T) {
	e := StartTest(t, smallWorld())
	ctx := context.Background()
	w := e.World()
	opt := slack.OAuthOptionAPIURL(e.APIURL())
	const redirect = "https://app.example.com/slack/oauth/callback"

	t.Run("workspace install, code single use, refresh rotates", func(t *testing.T) {
		ws := w.Workspaces[0]
		code := authorize(t, e, url.Values{"team": {ws.ID}, "scope": {"chat:write,users:read"}, "user_scope": {"search:read"}}).Get("code")
		resp, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), code, redirect, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.AccessToken, "xoxe.xoxb-") || resp.ExpiresIn != 43200 || !strings.HasPrefix(resp.RefreshToken, "xoxe-") ||
			resp.Team.ID != ws.ID || resp.IsEnterpriseInstall || resp.TokenType != "bot" || resp.AppID != e.AppID() || resp.BotUserID == "" {
			t.Fatalf("oauth.v2.access = %+v", resp)
		}
		if !strings.HasPrefix(resp.AuthedUser.AccessToken, "xoxe.xoxp-") || resp.AuthedUser.ID != ws.Admins[0] || resp.AuthedUser.RefreshToken == "" {
			t.Errorf("authed_user = %+v", resp.AuthedUser)
		}
		if _, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), code, redirect, opt); slackErrCode(err) != "code_already_used" {
			t.Errorf("second use of code: err = %v, want code_already_used", err)
		}
		ref, err := slack.RefreshOAuthV2TokenContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), resp.RefreshToken, opt)
		if err != nil {
			t.Fatal(err)
		}
		if ref.AccessToken == resp.AccessToken || ref.RefreshToken == resp.RefreshToken || ref.ExpiresIn != 43200 || ref.Team.ID != ws.ID {
			t.Fatalf("refresh = %+v", ref)
		}
		if _, err := slack.RefreshOAuthV2TokenContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), resp.RefreshToken, opt); slackErrCode(err) != "invalid_refresh_token" {
			t.Errorf("reusing the old refresh token: err = %v, want invalid_refresh_token", err)
		}
		for _, tok := range []string{resp.AccessToken, ref.AccessToken} {
			if _, err := clientFor(e, tok).AuthTestContext(ctx); err != nil {
				t.Errorf("access token %s…: %v (old access tokens live until they expire)", tok[:12], err)
			}
		}
		// Twelve emulated hours later the access token has expired.
		e.mu.Lock()
		e.tokens[ref.AccessToken].expires = e.clock.Now().Add(-time.Second)
		e.mu.Unlock()
		if _, err := clientFor(e, ref.AccessToken).AuthTestContext(ctx); slackErrCode(err) != "token_expired" {
			t.Errorf("expired token: err = %v, want token_expired", err)
		}
	})

	t.Run("org-wide install", func(t *testing.T) {
		ent := w.Enterprises[0]
		code := authorize(t, e, url.Values{"enterprise": {ent.ID}, "scope": {"users:read"}}).Get("code")
		resp, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), code, redirect, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.IsEnterpriseInstall || resp.Team.ID != "" || resp.Enterprise.ID != ent.ID || resp.Enterprise.Name != ent.Name {
			t.Fatalf("org install = team %+v enterprise %+v is_enterprise_install %v", resp.Team, resp.Enterprise, resp.IsEnterpriseInstall)
		}
		_, body := callAPI(t, e, "oauth.v2.access", "", url.Values{"client_id": {e.ClientID()}, "client_secret": {e.ClientSecret()},
			"grant_type": {"refresh_token"}, "refresh_token": {resp.RefreshToken}})
		if body["team"] != nil || body["is_enterprise_install"] != true {
			t.Errorf("refresh of org install: team = %v, is_enterprise_install = %v; want null, true", body["team"], body["is_enterprise_install"])
		}
	})

	t.Run("incoming webhook", func(t *testing.T) {
		ws := w.Workspaces[0]
		code := authorize(t, e, url.Values{"team": {ws.ID}, "scope": {"incoming-webhook,chat:write"}, "channel": {"C0ALERTS"}}).Get("code")
		resp, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), code, redirect, opt)
		if err != nil {
			t.Fatal(err)
		}
		hook := resp.IncomingWebhook
		if hook.ChannelID != "C0ALERTS" || hook.URL == "" || hook.ConfigurationURL == "" || hook.Channel == "" {
			t.Fatalf("incoming_webhook = %+v", hook)
		}
		if err := slack.PostWebhookContext(ctx, hook.URL, &slack.WebhookMessage{Text: "deploy done"}); err != nil {
			t.Fatal(err)
		}
		msgs := e.Messages(ws.ID, "")
		if last := msgs[len(msgs)-1]; last.Source != "incoming_webhook" || last.Text != "deploy done" || last.Channel != "C0ALERTS" {
			t.Errorf("last message = %+v", last)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if q := authorize(t, e, url.Values{"team": {"T0UNKNOWN"}}); q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Errorf("unknown team redirect = %v, want error=access_denied", q)
		}
		code := authorize(t, e, url.Values{"scope": {"chat:write"}}).Get("code")
		if _, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), "wrong", code, redirect, opt); slackErrCode(err) != "bad_client_secret" {
			t.Errorf("wrong secret: err = %v", err)
		}
		if _, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), "nope", redirect, opt); slackErrCode(err) != "invalid_code" {
			t.Errorf("unknown code: err = %v", err)
		}
		e.mu.Lock()
		e.codes[code].expires = e.clock.Now()
		e.mu.Unlock()
		if _, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), code, redirect, opt); slackErrCode(err) != "invalid_code" {
			t.Errorf("expired code: err = %v, want invalid_code", err)
		}
	})
}

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name   string
		method string
		limit  int
		call   func(*slack.Client) error
	}{
		{name: "users.list is Tier 2", method: "users.list", limit: 20, call: func(c *slack.Client) error {
			_, err := c.GetUsersPaginated(slack.GetUsersOptionLimit(5)).Next(context.Background())
			return err
		}},
		{name: "team.info is Tier 3", method: "team.info", limit: 50, call: func(c *slack.Client) error {
			_, err := c.GetTeamInfoContext(context.Background())
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One emulated minute every second: slow enough that the limit's
			// calls land in one window, fast enough to wait it out.
			e := StartTest(t, Config{Seed: 1, Workspaces: 2, Enterprises: -1, TimeScale: 60})
			api := clientFor(e, mint(t, e, TokenRequest{}).Token)
			for i := range tc.limit {
				if err := tc.call(api); err != nil {
					t.Fatalf("call %d within the limit: %v", i+1, err)
				}
			}
			err := tc.call(api)
			var rl *slack.RateLimitedError
			if !errors.As(err, &rl) {
				t.Fatalf("call %d: err = %v, want *slack.RateLimitedError", tc.limit+1, err)
			}
			if rl.RetryAfter < time.Second || rl.RetryAfter > time.Minute {
				t.Fatalf("RetryAfter = %s, want 1s..60s (emulated)", rl.RetryAfter)
			}
			calls := e.Calls(tc.method)
			if last := calls[len(calls)-1]; last.Status != http.StatusTooManyRequests || last.Error != "ratelimited" {
				t.Errorf("call log: %+v", last)
			}
			// Another workspace has its own budget.
			other := clientFor(e, mint(t, e, TokenRequest{TeamID: e.World().Workspaces[1].ID}).Token)
			if err := tc.call(other); err != nil {
				t.Errorf("other workspace: %v", err)
			}
			// Waiting RetryAfter of emulated time lets the next call through.
			testenv.Eventually(t, e.RealDuration(rl.RetryAfter)+5*time.Second, func() bool { return tc.call(api) == nil }, "%s still limited", tc.method)
		})
	}
}

func TestUninstallRevokesTokens(t *testing.T) {
	e := StartTest(t, smallWorld())
	ctx := context.Background()
	m := mint(t, e, TokenRequest{})
	api := clientFor(e, m.Token)
	// apps.uninstall is Tier 1 (1/min per workspace): try the wrong secret elsewhere.
	other := clientFor(e, mint(t, e, TokenRequest{TeamID: e.World().Workspaces[1].ID}).Token)
	if err := other.UninstallAppContext(ctx, e.ClientID(), "wrong"); slackErrCode(err) != "bad_client_secret" {
		t.Fatalf("wrong secret: err = %v", err)
	}
	if err := api.UninstallAppContext(ctx, e.ClientID(), e.ClientSecret()); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error { _, err := api.AuthTestContext(ctx); return err },
		func() error { _, err := api.GetUsersContext(ctx); return err },
	} {
		if err := call(); slackErrCode(err) != "token_revoked" {
			t.Errorf("after apps.uninstall: err = %v, want token_revoked", err)
		}
	}
	again := mint(t, e, TokenRequest{})
	if _, err := clientFor(e, again.Token).AuthTestContext(ctx); err != nil {
		t.Errorf("token of a new install: %v", err)
	}
}

func TestMissingScope(t *testing.T) {
	e := StartTest(t, smallWorld())
	api := clientFor(e, mint(t, e, TokenRequest{Scopes: []string{"chat:write"}}).Token)
	ctx := context.Background()
	tests := []struct {
		name   string
		needed string
		call   func() error
	}{
		{"users.list", "users:read", func() error { _, err := api.GetUsersContext(ctx); return err }},
		{"usergroups.list", "usergroups:read", func() error { _, err := api.GetUserGroupsContext(ctx); return err }},
		{"team.info", "team:read", func() error { _, err := api.GetTeamInfoContext(ctx); return err }},
		{"conversations.open", "im:write", func() error {
			_, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var se slack.SlackErrorResponse
			if !errors.As(err, &se) || se.Err != "missing_scope" || !strings.Contains(se.Needed, tc.needed) || se.Provided != "chat:write" {
				t.Errorf("err = %#v, want missing_scope needing %s", err, tc.needed)
			}
		})
	}
}

func TestMessagesRecorded(t *testing.T) {
	e := StartTest(t, smallWorld())
	ctx := context.Background()
	ws := e.World().Workspaces[0]
	api := clientFor(e, mint(t, e, TokenRequest{TeamID: ws.ID}).Token)
	user := ws.Admins[0]

	if _, err := api.PostEphemeralContext(ctx, "C0GENERAL", user, slack.MsgOptionText("only you can see this", false)); err != nil {
		t.Fatal(err)
	}
	dm, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, dm.ID, slack.MsgOptionText("hello in a DM", false)); err != nil {
		t.Fatal(err)
	}
	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "Connected to *org*", false, false), nil, nil)}}}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: home}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionText("x", false)); slackErrCode(err) != "channel_not_found" {
		t.Errorf("no channel: err = %v", err)
	}

	msgs := e.Messages(ws.ID, user)
	want := []struct{ source, text string }{{"chat.postEphemeral", "only you can see this"}, {"chat.postMessage", "hello in a DM"}, {"views.publish", ""}}
	if len(msgs) != len(want) {
		t.Fatalf("messages = %+v", msgs)
	}
	for i, w := range want {
		if msgs[i].Source != w.source || msgs[i].Text != w.text {
			t.Errorf("message %d = %s %q, want %s %q", i, msgs[i].Source, msgs[i].Text, w.source, w.text)
		}
	}
	if !strings.Contains(string(msgs[2].View), "Connected to *org*") {
		t.Errorf("App Home view not recorded: %s", msgs[2].View)
	}
	var out struct{ Messages []Message }
	control(t, e, http.MethodGet, "/_emulator/messages?team_id="+ws.ID+"&user_id="+user, nil, &out)
	if len(out.Messages) != 3 || out.Messages[0].Seq >= out.Messages[1].Seq {
		t.Errorf("GET /_emulator/messages = %+v", out.Messages)
	}
}
