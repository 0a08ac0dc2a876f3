package slackemu

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// authTeamJSON is one workspace in auth.teams.list.
type authTeamJSON struct {
	ID   string         `json:"id"`
	Name string         `json:"name"`
	Icon map[string]any `json:"icon,omitempty"`
}

// apiAuthTeamsList is auth.teams.list: the workspaces the token's app is
// installed in (an org-wide install: every workspace of the Grid org; a
// workspace token: that one workspace). Arguments cursor, limit (default
// 100, at most 1000) and include_icon; no scope needed.
func (e *Emulator) apiAuthTeamsList(c *apiCall) (map[string]any, error) {
	wss := []*workspace{c.tok.inst.ws}
	if c.tok.inst.ws == nil {
		wss = c.tok.inst.ent.Workspaces
	}
	limit := 100
	if s := c.arg("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, slackErr("invalid_limit")
		}
		limit = min(n, 1000)
	}
	start := 0
	if cur := c.arg("cursor"); cur != "" {
		b, err := base64.StdEncoding.DecodeString(cur)
		id, ok := strings.CutPrefix(string(b), "team:")
		start = slices.IndexFunc(wss, func(ws *workspace) bool { return ws.ID == id })
		if err != nil || !ok || start < 0 {
			return nil, slackErr("invalid_cursor")
		}
	}
	icon := truthy(c.arg("include_icon"))
	end := min(start+limit, len(wss))
	teams := make([]authTeamJSON, 0, end-start)
	for _, ws := range wss[start:end] {
		t := authTeamJSON{ID: ws.ID, Name: ws.Name}
		if icon {
			t.Icon = renderTeam(ws).Icon
		}
		teams = append(teams, t)
	}
	next := ""
	if end < len(wss) {
		next = base64.StdEncoding.EncodeToString([]byte("team:" + wss[end].ID))
	}
	return map[string]any{"teams": teams, "response_metadata": map[string]any{"next_cursor": next}}, nil
}
