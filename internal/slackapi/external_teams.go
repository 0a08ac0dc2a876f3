package slackapi

import (
	"context"
	"net/url"
	"strconv"
	"strings"
)

// Methods this package implements, and their rate tiers.
const (
	MethodExternalTeamsList       = "team.externalTeams.list"
	MethodExternalTeamsDisconnect = "team.externalTeams.disconnect"
)

// Connection statuses team.externalTeams.list reports.
const (
	StatusConnected    = "CONNECTED"
	StatusDisconnected = "DISCONNECTED"
	StatusBlocked      = "BLOCKED"
	StatusInReview     = "IN_REVIEW"
)

// ScopeConnectManage is the scope team.externalTeams.disconnect needs (and
// team.externalTeams.list accepts).
const ScopeConnectManage = "conversations.connect:manage"

// ExternalTeam is one organization in team.externalTeams.list.
type ExternalTeam struct {
	TeamID              string         `json:"team_id"`
	TeamName            string         `json:"team_name"`
	TeamDomain          string         `json:"team_domain"`
	PublicChannelCount  int            `json:"public_channel_count"`
	PrivateChannelCount int            `json:"private_channel_count"`
	IMChannelCount      int            `json:"im_channel_count"`
	MPIMChannelCount    int            `json:"mpim_channel_count"`
	ConnectionStatus    string         `json:"connection_status"`
	LastActiveTimestamp int64          `json:"last_active_timestamp"`
	IsSponsored         bool           `json:"is_sponsored"`
	SlackConnectPrefs   map[string]any `json:"slack_connect_prefs,omitempty"`
	ConnectedWorkspaces []struct {
		WorkspaceID   string `json:"workspace_id"`
		WorkspaceName string `json:"workspace_name"`
	} `json:"connected_workspaces,omitempty"`
	Canvas map[string]any `json:"canvas,omitempty"`
	Lists  map[string]any `json:"lists,omitempty"`
}

// ListExternalTeamsParams are team.externalTeams.list's optional arguments.
type ListExternalTeamsParams struct {
	Limit                  int    // default 20 at Slack; up to 1000
	Cursor                 string // next_cursor of the previous page
	SortField              string // team_name, last_active_timestamp or connection_status
	SortDirection          string // asc or desc
	SlackConnectPrefFilter []string
	WorkspaceFilter        []string
	ConnectionStatusFilter string // CONNECTED, DISCONNECTED, BLOCKED or IN_REVIEW
}

func (p ListExternalTeamsParams) values() url.Values {
	v := url.Values{}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("cursor", p.Cursor)
	set("sort_field", p.SortField)
	set("sort_direction", p.SortDirection)
	set("connection_status_filter", p.ConnectionStatusFilter)
	set("slack_connect_pref_filter", strings.Join(p.SlackConnectPrefFilter, ","))
	set("workspace_filter", strings.Join(p.WorkspaceFilter, ","))
	return v
}

// ExternalTeamsPage is one page of team.externalTeams.list.
type ExternalTeamsPage struct {
	Organizations []ExternalTeam `json:"organizations"`
	TotalCount    int            `json:"total_count"`
	NextCursor    string         `json:"-"`
}

// ListExternalTeams calls team.externalTeams.list (Tier 2, Enterprise Grid
// only) for one page.
func (c *Client) ListExternalTeams(ctx context.Context, token string, p ListExternalTeamsParams) (ExternalTeamsPage, Response, error) {
	var out struct {
		ExternalTeamsPage
		Meta struct {
			NextCursor string `json:"next_cursor"`
		} `json:"response_metadata"`
	}
	resp, err := c.call(ctx, MethodExternalTeamsList, token, p.values(), &out)
	if err != nil {
		return ExternalTeamsPage{}, resp, err
	}
	page := out.ExternalTeamsPage
	page.NextCursor = out.Meta.NextCursor
	return page, resp, nil
}

// DisconnectExternalTeam calls team.externalTeams.disconnect (Tier 1,
// Enterprise Grid only, scope conversations.connect:manage) for targetTeam.
// A nil error means Slack accepted the request; it completes in the background,
// so confirm with [Client.ListExternalTeams].
func (c *Client) DisconnectExternalTeam(ctx context.Context, token, targetTeam string) (Response, error) {
	return c.call(ctx, MethodExternalTeamsDisconnect, token, url.Values{"target_team": {targetTeam}}, nil)
}
