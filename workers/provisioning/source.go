package provisioning

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/internal/slackapi"
)

// Slack methods the source reads, with their tiers.
const (
	methodUsersList      = slackapi.MethodUsersList
	methodUsergroupsList = "usergroups.list"
	methodTeamsList      = "auth.teams.list"
	methodUsersInfo      = "users.info"
	maxRateLimitRetries  = 20
	slackCallTimeout     = 30 * time.Second
)

// source reads one Slack source's users and groups, paced within Slack's
// tiers across every replica (the pacer lives in Redis) and waiting out a
// 429's Retry-After instead of failing.
type source struct {
	src Source
	c   *slack.Client
	// api and token read users.list leanly ([slackapi.Client.ListUsers]).
	api       *slackapi.Client
	token     string
	pacer     *slackapi.Pacer
	scale     float64
	holder    string
	calls     atomic.Int64
	throttled atomic.Int64
}

func (s *source) pace(method string) slackapi.Pace {
	tier := slackapi.Tier2
	if method == methodUsersInfo {
		tier = slackapi.Tier4
	}
	// Calls are spaced from their grants (no Hold): a run reads with one
	// goroutine, and Slack's limit is a count per minute, so grants a tier
	// interval (+1 %) apart keep any minute within the limit while the time
	// a page takes to answer is not added to every interval.
	return slackapi.Pace{Tenant: s.src.ID(), Method: method,
		Every: slackapi.PaceEvery(tier, s.scale, 0.01, time.Millisecond)}
}

// call runs fn once the pacer lets method through, again after a 429.
func (s *source) call(ctx context.Context, method string, fn func(ctx context.Context) error) error {
	pace := s.pace(method)
	for attempt := 0; ; attempt++ {
		holder := s.holder + ":" + method + ":" + strconv.FormatInt(s.calls.Add(1), 10)
		if err := s.pacer.Wait(ctx, pace, holder, 24*time.Hour); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, slackCallTimeout)
		err := fn(cctx)
		cancel()
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) && attempt < maxRateLimitRetries {
			s.throttled.Add(1)
			if perr := s.pacer.Penalize(ctx, pace, rl.RetryAfter); perr != nil {
				return perr
			}
			continue
		}
		if err != nil {
			return &slackError{method: method, err: err}
		}
		return nil
	}
}

// slackError is a failed Slack call, with advice for the report.
type slackError struct {
	method string
	err    error
}

func (e *slackError) Error() string { return "Slack " + e.method + ": " + e.err.Error() }
func (e *slackError) Unwrap() error { return e.err }

// advice says what an admin can do about a Slack failure.
func (e *slackError) advice() string {
	switch slackapi.ErrorCode(e.err) {
	case "invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired":
		return "the Slack connection is no longer valid: use Replace with another Slack account to reconnect"
	case "missing_scope":
		return "the Slack connection lacks a permission: reconnect Slack and approve every requested permission"
	case "plan_upgrade_required":
		return "Slack user groups need a paid Slack plan: choose \"everyone\" or upgrade the Slack plan"
	}
	return "Slack did not answer as expected; the next run tries again"
}

// workspaces lists the workspaces to read: the one workspace, or every
// workspace of a Grid org.
func (s *source) workspaces(ctx context.Context) ([]string, error) {
	if s.src.TeamID != "" {
		return []string{""}, nil // a workspace token: no team_id
	}
	var out []string
	cursor := ""
	for {
		var teams []slack.Team
		var next string
		err := s.call(ctx, methodTeamsList, func(ctx context.Context) error {
			var err error
			teams, next, err = s.c.ListTeamsContext(ctx, slack.ListTeamsParameters{Limit: 1000, Cursor: cursor})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, t := range teams {
			out = append(out, t.ID)
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// slackGroup is a user group as the sync needs it.
type slackGroup struct {
	ID, Name, Handle, Team string
	Disabled               bool
	Members                []string
}

// groups lists the user groups of every workspace, members included,
// disabled ones too (a disabled group contributes nobody).
func (s *source) groups(ctx context.Context, teams []string) (map[string]*slackGroup, error) {
	out := map[string]*slackGroup{}
	for _, team := range teams {
		var gs []slack.UserGroup
		err := s.call(ctx, methodUsergroupsList, func(ctx context.Context) error {
			opts := []slack.GetUserGroupsOption{slack.GetUserGroupsOptionIncludeUsers(true), slack.GetUserGroupsOptionIncludeDisabled(true)}
			if team != "" {
				opts = append(opts, slack.GetUserGroupsOptionTeamID(team))
			}
			var err error
			gs, err = s.c.GetUserGroupsContext(ctx, opts...)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			sg := out[g.ID]
			if sg == nil {
				sg = &slackGroup{ID: g.ID, Name: g.Name, Handle: g.Handle, Team: g.TeamID, Disabled: g.DateDelete != 0}
				out[g.ID] = sg
			}
			sg.Members = append(sg.Members, g.Users...)
		}
	}
	return out, nil
}

// usersPage reads one page of users.list of team ("" for a workspace token).
func (s *source) usersPage(ctx context.Context, team, cursor string, limit int) ([]slack.User, string, error) {
	var page slackapi.UsersPage
	err := s.call(ctx, methodUsersList, func(ctx context.Context) error {
		var err error
		page, err = s.api.ListUsers(ctx, s.token, slackapi.ListUsersParams{TeamID: team, Cursor: cursor, Limit: limit})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return page.Users, page.NextCursor, nil
}

// user reads one user (events between syncs).
func (s *source) user(ctx context.Context, id string) (*slack.User, error) {
	var u *slack.User
	err := s.call(ctx, methodUsersInfo, func(ctx context.Context) error {
		var err error
		u, err = s.c.GetUserInfoContext(ctx, id)
		return err
	})
	return u, err
}

// userID is the id a Slack user is provisioned under: on Grid the org-level
// (enterprise) id, the same in every workspace.
func userID(u *slack.User) string {
	if u.Enterprise.ID != "" {
		return u.Enterprise.ID
	}
	return u.ID
}

// provisionable reports whether u is a person orgbridge may provision: bots,
// app users, workflow bots and Slackbot never are.
func provisionable(u *slack.User) bool {
	return !u.IsBot && !u.IsAppUser && !u.IsWorkflowBot && !u.IsConnectorBot && u.ID != "USLACKBOT"
}

// fieldsOf builds the directory attributes of a Slack user.
func fieldsOf(u *slack.User) Fields {
	email := strings.TrimSpace(u.Profile.Email)
	f := Fields{UserName: email, GivenName: u.Profile.FirstName, FamilyName: u.Profile.LastName, Email: email,
		Title: u.Profile.Title, Photo: photoOf(&u.Profile), UserType: "member"}
	f.DisplayName = u.Profile.RealName
	if f.DisplayName == "" {
		f.DisplayName = u.RealName
	}
	if f.DisplayName == "" {
		f.DisplayName = u.Profile.DisplayName
	}
	if f.GivenName == "" && f.FamilyName == "" && f.DisplayName != "" {
		f.GivenName, f.FamilyName, _ = strings.Cut(f.DisplayName, " ")
	}
	switch {
	case u.IsUltraRestricted:
		f.UserType = "single_channel_guest"
	case u.IsRestricted:
		f.UserType = "guest"
	}
	return f
}

// photoOf picks the largest profile picture Slack gives.
func photoOf(p *slack.UserProfile) string {
	for _, v := range []string{p.ImageOriginal, p.Image1024, p.Image512, p.Image192, p.Image72} {
		if v != "" {
			return v
		}
	}
	return ""
}

func describeUser(u *slack.User) string {
	if u.RealName != "" {
		return u.RealName
	}
	return fmt.Sprintf("%s %s", u.Profile.FirstName, u.Profile.LastName)
}
