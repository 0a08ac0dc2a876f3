package slackemu

import (
	"slices"
	"strconv"
	"strings"
)

// Grid-only methods for Slack Connect teams. A token of a standalone
// workspace gets not_allowed_token_type.

var connectionStatuses = []string{"CONNECTED", "DISCONNECTED", "BLOCKED", "IN_REVIEW"}

func (e *Emulator) gridOf(c *apiCall) (*enterprise, error) {
	if c.tok.inst.ent == nil {
		return nil, slackErr("not_allowed_token_type")
	}
	return c.tok.inst.ent, nil
}

func (e *Emulator) apiExternalTeamsList(c *apiCall) (map[string]any, error) {
	ent, err := e.gridOf(c)
	if err != nil {
		return nil, err
	}
	limit := 20
	if s := c.arg("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, slackErr("invalid_limit")
		}
		limit = min(n, 1000)
	}
	status := c.arg("connection_status_filter")
	if status != "" && !slices.Contains(connectionStatuses, status) {
		return nil, slackErr("invalid_arguments")
	}
	prefs := splitList(c.arg("slack_connect_pref_filter"))
	wsFilter := splitList(c.arg("workspace_filter"))
	field := c.arg("sort_field")
	if field == "" {
		field = "team_name"
	}
	dir := c.arg("sort_direction")
	if dir == "" {
		dir = "asc"
	}
	if !slices.Contains([]string{"team_name", "last_active_timestamp", "connection_status"}, field) || (dir != "asc" && dir != "desc") {
		return nil, slackErr("invalid_arguments")
	}

	var list []*externalTeam
	for _, x := range ent.External {
		if status != "" && x.status(c.now) != status {
			continue
		}
		if len(prefs) > 0 && !slices.ContainsFunc(prefs, func(p string) bool { return slices.Contains(x.Prefs, p) }) {
			continue
		}
		if len(wsFilter) > 0 && !slices.ContainsFunc(x.Workspaces, func(ws *workspace) bool { return slices.Contains(wsFilter, ws.ID) }) {
			continue
		}
		list = append(list, x)
	}
	slices.SortStableFunc(list, func(a, b *externalTeam) int {
		var r int
		switch field {
		case "team_name":
			r = strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		case "last_active_timestamp":
			r = int(a.LastActive - b.LastActive)
		case "connection_status":
			r = strings.Compare(a.status(c.now), b.status(c.now))
		}
		if r == 0 {
			r = strings.Compare(a.ID, b.ID)
		}
		if dir == "desc" {
			r = -r
		}
		return r
	})
	start := 0
	if cur := c.arg("cursor"); cur != "" {
		start = slices.IndexFunc(list, func(x *externalTeam) bool { return x.ID == cur })
		if start < 0 {
			return nil, slackErr("invalid_cursor")
		}
	}
	end := min(start+limit, len(list))
	orgs := make([]orgJSON, 0, end-start)
	for _, x := range list[start:end] {
		orgs = append(orgs, renderExternal(x, c.now))
	}
	next := ""
	if end < len(list) {
		next = list[end].ID
	}
	return map[string]any{"organizations": orgs, "total_count": len(list), "response_metadata": map[string]any{"next_cursor": next}}, nil
}

func (e *Emulator) apiExternalTeamsDisconnect(c *apiCall) (map[string]any, error) {
	ent, err := e.gridOf(c)
	if err != nil {
		return nil, err
	}
	target := c.arg("target_team")
	if target == "" {
		return nil, slackErr("missing_argument")
	}
	x := e.world.externals[target]
	if x == nil || !slices.Contains(ent.External, x) {
		return nil, slackErr("invalid_target_team")
	}
	if x.DisconnectAt.IsZero() && x.Status != "DISCONNECTED" {
		// Slack finishes the disconnect in the background.
		x.DisconnectAt = c.now.Add(e.cfg.DisconnectDelay)
	}
	return map[string]any{}, nil
}
