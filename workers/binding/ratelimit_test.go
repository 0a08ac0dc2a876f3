package binding_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
)

// Listing a Grid org's Slack users waits out short rate limits inside the
// handler, hands long ones back (the bus redelivers after their Retry-After),
// and stops waiting when its ctx ends.
func TestSlackUsersRateLimits(t *testing.T) {
	e := startEnv(t, envOpts{})
	ent := e.slack.World().Enterprises[0]
	if code, page := e.browse(e.ingress.URL + "/slack/install?enterprise=" + ent.ID + "&channel=%23general"); code != http.StatusOK || !strings.Contains(page, "every workspace of the organization") {
		t.Fatalf("org-wide install: %d %s", code, page)
	}
	u1 := e.users(ent.Workspaces[0])

	tests := []struct {
		name    string
		faults  []slackemu.Fault
		timeout time.Duration
		check   func(t *testing.T, users map[string]bool, err error, lists, teams int)
	}{
		{
			name: "429s of a second are waited out",
			faults: []slackemu.Fault{
				{Method: "auth.teams.list", HTTPStatus: http.StatusTooManyRequests, RetryAfter: 1, Count: 1},
				{Method: "users.list", HTTPStatus: http.StatusTooManyRequests, RetryAfter: 1, Count: 1},
			},
			check: func(t *testing.T, users map[string]bool, err error, lists, teams int) {
				if err != nil {
					t.Fatalf("SlackUsers: %v", err)
				}
				if !users[u1[0]] {
					t.Fatalf("user %s missing from %d listed", u1[0], len(users))
				}
				if teams != 2 || lists != len(ent.Workspaces)+1 {
					t.Fatalf("auth.teams.list called %d times, users.list %d: want each limited call once more", teams, lists)
				}
			},
		},
		{
			name:   "a 429 longer than 30 s goes back to the bus",
			faults: []slackemu.Fault{{Method: "users.list", HTTPStatus: http.StatusTooManyRequests, RetryAfter: 60, Count: 1}},
			check: func(t *testing.T, _ map[string]bool, err error, lists, _ int) {
				var rl *slack.RateLimitedError
				if !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
					t.Fatalf("SlackUsers = %v, want the 60 s rate limit", err)
				}
				if lists != 1 {
					t.Fatalf("users.list called %d times, want 1", lists)
				}
			},
		},
		{
			name:    "the wait ends with the ctx",
			faults:  []slackemu.Fault{{Method: "users.list", HTTPStatus: http.StatusTooManyRequests, RetryAfter: 20, Count: 1}},
			timeout: 200 * time.Millisecond,
			check: func(t *testing.T, _ map[string]bool, err error, lists, _ int) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("SlackUsers = %v, want the ctx's deadline", err)
				}
				if lists != 1 {
					t.Fatalf("users.list called %d times, want 1", lists)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.slack.ClearFaults()
			t.Cleanup(e.slack.ClearFaults)
			for _, f := range tt.faults {
				if err := e.slack.InjectFault(f); err != nil {
					t.Fatal(err)
				}
			}
			ctx := e.ctx
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			lists, teams := len(e.slack.Calls("users.list")), len(e.slack.Calls("auth.teams.list"))
			users, err := e.binding.SlackUsers(ctx, ent.ID)
			tt.check(t, users, err, len(e.slack.Calls("users.list"))-lists, len(e.slack.Calls("auth.teams.list"))-teams)
		})
	}
}
