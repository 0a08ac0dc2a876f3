package slackapi_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"

	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
)

// leanFields are the fields ListUsers promises, as one comparable value.
func leanFields(u slack.User) string {
	p := u.Profile
	return fmt.Sprintf("%s|%s|%s|%v|%s|%s|bot=%v admin=%v owner=%v primary=%v restricted=%v ultra=%v app=%v connector=%v workflow=%v|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s",
		u.ID, u.TeamID, u.Name, u.Deleted, u.RealName, u.TZ, u.IsBot, u.IsAdmin, u.IsOwner, u.IsPrimaryOwner,
		u.IsRestricted, u.IsUltraRestricted, u.IsAppUser, u.IsConnectorBot, u.IsWorkflowBot,
		u.Enterprise.ID, u.Enterprise.EnterpriseID, p.FirstName, p.LastName, p.RealName, p.DisplayName, p.Email,
		p.Title, p.Phone, p.Image72, p.Image192, p.Image512, p.Image1024, p.ImageOriginal)
}

// TestListUsersMatchesSlackGo reads every user of a workspace and of a Grid
// member workspace (org-wide token, team_id) page by page with ListUsers and
// with slack-go: the same users in the same order, every promised field
// equal, the same cursors; errors are slack-go's types.
func TestListUsersMatchesSlackGo(t *testing.T) {
	emu := slackemu.StartTest(t, slackemu.Config{Users: 120, Workspaces: 1, Enterprises: 1, GridWorkspaces: 2})
	c, err := slackapi.New(emu.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	world := emu.World()
	ws, ent := world.Workspaces[0], world.Enterprises[0]
	wsTok, err := emu.MintToken(slackemu.TokenRequest{TeamID: ws.ID})
	if err != nil {
		t.Fatal(err)
	}
	entTok, err := emu.MintToken(slackemu.TokenRequest{EnterpriseID: ent.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, token, team string }{
		{"workspace token", wsTok.Token, ""},
		{"org-wide token, one member workspace", entTok.Token, ent.Workspaces[1]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := []slack.GetUsersOption{slack.GetUsersOptionLimit(50)}
			if tt.team != "" {
				opts = append(opts, slack.GetUsersOptionTeamID(tt.team))
			}
			want := c.Slack(tt.token).GetUsersPaginated(opts...)
			cursor, pages, users, kinds := "", 0, 0, map[string]bool{}
			for {
				var err error
				if want, err = want.Next(ctx); err != nil {
					t.Fatalf("slack-go page %d: %v", pages+1, err)
				}
				got, err := c.ListUsers(ctx, tt.token, slackapi.ListUsersParams{TeamID: tt.team, Cursor: cursor, Limit: 50})
				if err != nil {
					t.Fatalf("ListUsers page %d: %v", pages+1, err)
				}
				pages++
				if len(got.Users) != len(want.Users) || got.NextCursor != want.Cursor {
					t.Fatalf("page %d: %d users, cursor %q; slack-go %d, %q", pages, len(got.Users), got.NextCursor, len(want.Users), want.Cursor)
				}
				for i := range got.Users {
					if g, w := leanFields(got.Users[i]), leanFields(want.Users[i]); g != w {
						t.Fatalf("user %d of page %d:\n got %s\nwant %s", i, pages, g, w)
					}
					u := want.Users[i]
					kinds[fmt.Sprintf("bot=%v deleted=%v guest=%v grid=%v", u.IsBot, u.Deleted, u.IsRestricted, u.Enterprise.ID != "")] = true
				}
				users += len(got.Users)
				if got.NextCursor == "" {
					break
				}
				cursor = got.NextCursor
			}
			if pages < 3 || users < 120 {
				t.Fatalf("read %d users in %d pages; the comparison needs several pages", users, pages)
			}
			t.Logf("%d users in %d pages, kinds %v", users, pages, kinds)
			if len(kinds) < 3 {
				t.Fatalf("only %d kinds of user compared: %v", len(kinds), kinds)
			}
		})
	}
	t.Run("errors are slack-go's", func(t *testing.T) {
		_, err := c.ListUsers(ctx, "xoxb-nope", slackapi.ListUsersParams{Limit: 10})
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) || se.Err != "invalid_auth" {
			t.Fatalf("a bad token: %#v", err)
		}
		if err := emu.InjectFault(slackemu.Fault{Method: slackapi.MethodUsersList, HTTPStatus: 429, RetryAfter: 7, Count: 1}); err != nil {
			t.Fatal(err)
		}
		_, err = c.ListUsers(ctx, wsTok.Token, slackapi.ListUsersParams{Limit: 10})
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
			t.Fatalf("a 429: %#v", err)
		}
	})
}
