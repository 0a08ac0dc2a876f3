package binding_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/orgbridge/orgbridge/workers/mapping"
)

// TestGridSlackUsersPerWorkspace: for an org-wide install the Slack
// directory lists the Grid org's workspaces with auth.teams.list and calls
// users.list once per workspace with team_id, so a mapping import sees the
// users of every member workspace.
func TestGridSlackUsersPerWorkspace(t *testing.T) {
	e := startEnv(t, envOpts{})
	ent := e.slack.World().Enterprises[0]
	if len(ent.Workspaces) < 2 {
		t.Fatalf("the emulated Grid org has %d workspaces, want 2", len(ent.Workspaces))
	}
	ws1, ws2 := ent.Workspaces[0], ent.Workspaces[1]
	if code, page := e.browse(e.ingress.URL + "/slack/install?enterprise=" + ent.ID + "&channel=%23general"); code != http.StatusOK || !strings.Contains(page, "every workspace of the organization") {
		t.Fatalf("org-wide install: %d %s", code, page)
	}
	u1, u2 := e.users(ws1), e.users(ws2)

	lists, teams := len(e.slack.Calls("users.list")), len(e.slack.Calls("auth.teams.list"))
	users, err := e.binding.SlackUsers(e.ctx, ent.ID)
	if err != nil {
		t.Fatalf("SlackUsers(%s): %v", ent.ID, err)
	}
	for _, u := range append(append([]string{}, u1...), u2...) {
		if !users[u] {
			t.Errorf("user %s missing or inactive in %d listed users", u, len(users))
		}
	}
	if n := len(e.slack.Calls("auth.teams.list")) - teams; n != 1 {
		t.Errorf("auth.teams.list called %d times, want 1", n)
	}
	calls := e.slack.Calls("users.list")[lists:]
	perTeam := map[string]int{}
	for _, c := range calls {
		if !c.OK {
			t.Errorf("users.list failed: %+v", c)
		}
		perTeam[c.Args["team_id"]]++
	}
	if len(calls) != len(ent.Workspaces) {
		t.Errorf("users.list called %d times, want %d (one per workspace): %v", len(calls), len(ent.Workspaces), perTeam)
	}
	for _, ws := range ent.Workspaces {
		if perTeam[ws] != 1 {
			t.Errorf("users.list with team_id=%s called %d times, want 1", ws, perTeam[ws])
		}
	}

	// A mapping import under the Grid org accepts users of both workspaces.
	e.mustConnect(ws1, u1[0], "alice@acme.example")
	lists = len(e.slack.Calls("users.list"))
	rows := []mapping.ImportRow{
		{Workspace: ent.ID, SlackUserID: u1[1], OrgID: acme, OrgUserID: "005000000000101"},
		{Workspace: ent.ID, SlackUserID: u2[1], OrgID: acme, OrgUserID: "005000000000102"},
		{Workspace: ent.ID, SlackUserID: "U0NOBODY0", OrgID: acme, OrgUserID: "005000000000103"},
	}
	want := []string{mapping.ResultOK, mapping.ResultOK, mapping.ResultInvalidSlackUser}
	for i, r := range e.mapping.Import(e.ctx, rows) {
		if r.Result != want[i] {
			t.Errorf("row %d: %s (%s), want %s", i+1, r.Result, r.Message, want[i])
		}
	}
	for _, c := range e.slack.Calls("users.list")[lists:] {
		if c.Args["team_id"] == "" || !c.OK {
			t.Errorf("import's users.list: %+v", c)
		}
	}
	if n := len(e.slack.Calls("users.list")) - lists; n != len(ent.Workspaces) {
		t.Errorf("import called users.list %d times, want %d", n, len(ent.Workspaces))
	}
}
