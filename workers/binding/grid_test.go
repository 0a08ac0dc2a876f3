package binding_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestEnterpriseGridOrgWideInstall: an org-wide install (team null,
// enterprise set) serves every member workspace of the Grid org, and the Grid
// org, like a workspace, is bound to exactly one org for all its users.
func TestEnterpriseGridOrgWideInstall(t *testing.T) {
	e := startEnv(t, envOpts{})
	ent := e.slack.World().Enterprises[0]
	if len(ent.Workspaces) < 2 {
		t.Fatalf("the emulated Grid org has %d workspaces, want 2", len(ent.Workspaces))
	}
	ws1, ws2 := ent.Workspaces[0], ent.Workspaces[1]
	code, page := e.browse(e.ingress.URL + "/slack/install?enterprise=" + ent.ID + "&channel=%23general")
	if code != http.StatusOK || !strings.Contains(page, "every workspace of the organization") {
		t.Fatalf("org-wide install: %d %s", code, page)
	}
	app := e.slack.AppID()
	in, err := e.installs.Get(e.ctx, app, ent.ID, "")
	if err != nil || in.TeamID != "" || !in.IsEnterpriseInstall || in.Tenant() != ent.ID {
		t.Fatalf("stored install = %+v, %v; want one under %s with no team", in, err, ent.ID)
	}
	for _, ws := range []string{ws1, ws2} {
		found, err := e.installs.Find(e.ctx, app, ent.ID, ws)
		if err != nil || found.Tenant() != ent.ID {
			t.Fatalf("Find for member workspace %s = %+v, %v; want the org-wide install", ws, found, err)
		}
	}

	u1, u2 := e.users(ws1), e.users(ws2)
	tests := []struct {
		name, team, user, username string
		wantPrompt                 string
		wantPage                   string
		wantOK                     bool
	}{
		{name: "first user of the Grid org binds it", team: ws1, user: u1[0], username: "alice@acme.example",
			wantPrompt: "isn't connected to an org yet", wantPage: "connected to Acme (00D000000000001)", wantOK: true},
		{name: "another member workspace is already bound", team: ws2, user: u2[0], username: "bob@acme.example",
			wantPrompt: "Connect your Slack account to Acme (00D000000000001)", wantPage: "Connected", wantOK: true},
		{name: "another org is refused for the whole Grid org", team: ws2, user: u2[1], username: "hank@globex.example",
			wantPrompt: "Connect your Slack account to Acme", wantPage: "already connected to Acme (00D000000000001)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := e.command(tt.team, tt.user, "/orgbridge", "whoami")
			if !strings.Contains(m.Text, tt.wantPrompt) {
				t.Fatalf("prompt = %q, want %q", m.Text, tt.wantPrompt)
			}
			code, page := e.login(connectURL(t, m), tt.username)
			if (code == http.StatusOK) != tt.wantOK || !strings.Contains(page, tt.wantPage) {
				t.Fatalf("connect: %d %s", code, page)
			}
			if e.boundOrg(ent.ID) != acme {
				t.Fatalf("Grid org bound to %q, want Acme", e.boundOrg(ent.ID))
			}
			for _, ws := range []string{ws1, ws2} {
				if b, _ := e.bindings.Get(e.ctx, ws); b != nil {
					t.Fatalf("member workspace %s has a binding of its own: %+v", ws, b)
				}
			}
		})
	}

	// Both users are mapped under the Grid org and forwarded without a prompt.
	for _, c := range []struct{ team, user, username string }{{ws1, u1[0], "alice@acme.example"}, {ws2, u2[0], "bob@acme.example"}} {
		if m := e.mapped(ent.ID, c.user); m == nil || m.Username != c.username {
			t.Fatalf("mapping of %s under %s = %+v", c.user, ent.ID, m)
		}
		if who := e.command(c.team, c.user, "/orgbridge", "whoami"); !strings.Contains(who.Text, c.username) || !strings.Contains(who.Text, "Acme") {
			t.Fatalf("whoami in %s = %q", c.team, who.Text)
		}
	}
	if b, _ := e.bindings.Get(e.ctx, ent.ID); b == nil || b.OrgName != "Acme" {
		t.Fatalf("binding = %+v, want the org's name Acme", b)
	}
}
