package slackemu

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/slack-go/slack"
)

// TestAuthTeamsList: auth.teams.list lists every workspace of an org-wide
// install (paginated), or the one workspace of a workspace token.
func TestAuthTeamsList(t *testing.T) {
	e := StartTest(t, Config{Seed: 9})
	w := e.World()
	ent := w.Enterprises[0]
	org := clientFor(e, mint(t, e, TokenRequest{EnterpriseID: ent.ID}).Token)
	ctx := context.Background()

	t.Run("org-wide install, one page per workspace", func(t *testing.T) {
		before := len(e.Calls("auth.teams.list"))
		var got []string
		cursor := ""
		for {
			teams, next, err := org.ListTeamsContext(ctx, slack.ListTeamsParameters{Limit: 1, Cursor: cursor})
			if err != nil {
				t.Fatalf("auth.teams.list: %v", err)
			}
			for _, tm := range teams {
				if tm.Name == "" {
					t.Errorf("team %s has no name", tm.ID)
				}
				got = append(got, tm.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, ent.Workspaces) {
			t.Errorf("teams = %v, want %v", got, ent.Workspaces)
		}
		if n := len(e.Calls("auth.teams.list")) - before; n != len(ent.Workspaces) {
			t.Errorf("%d calls, want %d", n, len(ent.Workspaces))
		}
	})
	t.Run("workspace token lists its own team", func(t *testing.T) {
		var standalone string
		for _, ws := range w.Workspaces {
			if ws.EnterpriseID == "" {
				standalone = ws.ID
				break
			}
		}
		c := clientFor(e, mint(t, e, TokenRequest{TeamID: standalone}).Token)
		teams, next, err := c.ListTeamsContext(ctx, slack.ListTeamsParameters{})
		if err != nil || len(teams) != 1 || teams[0].ID != standalone || next != "" {
			t.Errorf("auth.teams.list = %+v, %q, %v; want only %s", teams, next, err, standalone)
		}
	})
	t.Run("include_icon", func(t *testing.T) {
		tok := mint(t, e, TokenRequest{EnterpriseID: ent.ID}).Token
		_, body := callAPI(t, e, "auth.teams.list", tok, nil)
		teams, _ := body["teams"].([]any)
		if len(teams) != len(ent.Workspaces) || teams[0].(map[string]any)["icon"] != nil {
			t.Errorf("without include_icon: %v", body)
		}
		_, body = callAPI(t, e, "auth.teams.list", tok, url.Values{"include_icon": {"true"}})
		teams, _ = body["teams"].([]any)
		if len(teams) == 0 || teams[0].(map[string]any)["icon"] == nil {
			t.Errorf("with include_icon: %v", body)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			params slack.ListTeamsParameters
			want   string
		}{
			{slack.ListTeamsParameters{Limit: -1}, "invalid_limit"},
			{slack.ListTeamsParameters{Cursor: "garbage"}, "invalid_cursor"},
		} {
			if _, _, err := org.ListTeamsContext(ctx, tc.params); slackErrCode(err) != tc.want {
				t.Errorf("%+v: %v, want %s", tc.params, err, tc.want)
			}
		}
	})
}

// TestUsersListOrgTokenNeedsTeamID: with an org-level token users.list
// requires team_id and lists only that workspace's users.
func TestUsersListOrgTokenNeedsTeamID(t *testing.T) {
	e := StartTest(t, Config{Seed: 9})
	w := e.World()
	ent := w.Enterprises[0]
	org := clientFor(e, mint(t, e, TokenRequest{EnterpriseID: ent.ID, Scopes: []string{"users:read"}}).Token)
	ctx := context.Background()
	if _, err := org.GetUsersContext(ctx, slack.GetUsersOptionLimit(999)); slackErrCode(err) != "missing_argument" {
		t.Errorf("org-level users.list without team_id: %v, want missing_argument", err)
	}
	seen := map[string]bool{}
	for _, team := range ent.Workspaces {
		users, err := org.GetUsersContext(ctx, slack.GetUsersOptionLimit(7), slack.GetUsersOptionTeamID(team))
		if err != nil {
			t.Fatalf("users.list team_id=%s: %v", team, err)
		}
		var want int
		for _, ws := range w.Workspaces {
			if ws.ID == team {
				want = ws.Users
			}
		}
		if len(users) != want {
			t.Errorf("users.list team_id=%s: %d users, want %d", team, len(users), want)
		}
		for _, u := range users {
			// A Grid user can be a member of several workspaces under one
			// id: listed in each, team_id its home, enterprise_user.teams all.
			if seen[u.ID] != (u.TeamID != team) {
				t.Errorf("user %s of team %s listed for %s (seen before: %v)", u.ID, u.TeamID, team, seen[u.ID])
			}
			if !slices.Contains(u.Enterprise.Teams, team) || !slices.Contains(u.Enterprise.Teams, u.TeamID) {
				t.Errorf("user %s listed for %s: enterprise_user.teams = %v", u.ID, team, u.Enterprise.Teams)
			}
			seen[u.ID] = true
		}
	}
	for _, c := range e.Calls("users.list")[1:] {
		if c.Args["team_id"] == "" {
			t.Errorf("users.list call without team_id: %+v", c)
		}
	}
	if _, err := org.GetUsersContext(ctx, slack.GetUsersOptionTeamID("T0NOPE")); slackErrCode(err) != "team_not_found" {
		t.Errorf("unknown team_id: %v, want team_not_found", err)
	}
}
