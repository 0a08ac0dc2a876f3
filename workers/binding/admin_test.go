package binding_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// An admin cleans up without a support case: unbind a workspace (Slack's
// apps.uninstall), mark a binding invalid, delete mappings in bulk by org or
// by workspace. Every change is in the workspace's audit trail.
func TestAdminCleanup(t *testing.T) {
	tests := []struct {
		name string
		// do runs the admin call; teams[0] has alice (users[0]) and bob
		// (users[1]) connected to acme, teams[1] carol to acme.
		method, path, body string
		wantCode           int
		wantBody           string
		// then checks what a user or admin would notice.
		then        func(e *env, teams []string, users []string)
		wantAudit   string // action in teams[0]'s trail ("": none expected)
		auditDetail string
	}{
		{name: "unbind: apps.uninstall, then Slack's events clear everything", method: http.MethodPost,
			path: "/admin/api/bindings/{team}/uninstall", wantCode: http.StatusAccepted, wantBody: `"uninstalled":["A0EMULATOR"]`,
			then: func(e *env, teams, users []string) {
				testenv.Eventually(e.t, 20*time.Second, func() bool {
					b, _ := e.bindings.Get(e.ctx, teams[0])
					apps, _ := e.installs.AppsAt(e.ctx, teams[0])
					return b == nil && len(apps) == 0 && e.mapped(teams[0], users[0]) == nil && e.mapped(teams[0], users[1]) == nil
				}, "uninstall did not clear the install, binding and mappings")
				if calls := e.slack.Calls("apps.uninstall"); len(calls) != 1 || !calls[0].OK || calls[0].TeamID != teams[0] {
					e.t.Fatalf("apps.uninstall calls: %+v", calls)
				}
				if e.boundOrg(teams[1]) != acme {
					e.t.Fatal("another workspace lost its binding")
				}
			}, wantAudit: binding.AuditUnbind},
		{name: "unbind where no app is installed any more clears what is left", method: http.MethodPost,
			path: "/admin/api/bindings/{team}/uninstall", wantCode: http.StatusOK, wantBody: `"cleared":true`,
			then: func(e *env, teams, users []string) {
				if b, _ := e.bindings.Get(e.ctx, teams[0]); b != nil || e.mapped(teams[0], users[0]) != nil {
					e.t.Fatalf("binding %+v or mappings left", b)
				}
			}, wantAudit: binding.AuditCleared},
		{name: "mark the binding invalid: the next connect binds a new org", method: http.MethodPost,
			path: "/admin/api/bindings/{team}/invalidate", body: `{"reason":"support case 42"}`, wantCode: http.StatusOK, wantBody: `"changed":true`,
			then: func(e *env, teams, users []string) {
				m := e.command(teams[0], users[2], "/orgbridge", "whoami")
				if !strings.Contains(m.Text, "is no longer valid for it (an admin marked it invalid: support case 42)") {
					e.t.Fatalf("after invalidate: %q", m.Text)
				}
				if code, page := e.login(connectURL(e.t, m), "hank@globex.example"); code != http.StatusOK || e.boundOrg(teams[0]) != globex {
					e.t.Fatalf("connecting globex: %d %s", code, page)
				}
			}, wantAudit: binding.AuditInvalidated, auditDetail: "support case 42"},
		{name: "delete a workspace's mappings", method: http.MethodDelete,
			path: "/admin/api/bindings/{team}/mappings", wantCode: http.StatusOK, wantBody: `"deleted":{"{team}":2}`,
			then: func(e *env, teams, users []string) {
				for _, u := range users[:2] {
					if e.mapped(teams[0], u) != nil {
						e.t.Fatalf("mapping of %s left", u)
					}
					if _, err := e.mappings.Association(e.ctx, teams[0], acme, u); err == nil {
						e.t.Fatalf("association of %s left", u)
					}
				}
				if e.boundOrg(teams[0]) != acme || e.mapped(teams[1], e.users(teams[1])[0]) == nil {
					e.t.Fatal("the binding or another workspace's mapping went too")
				}
				// Freed: bob's Slack user may now be carol.
				e.mustConnect(teams[0], users[1], "carol@acme.example")
			}, wantAudit: binding.AuditMappingsDelete},
		{name: "delete an org's mappings in every workspace", method: http.MethodDelete,
			path: "/admin/api/orgs/" + acme + "/mappings", wantCode: http.StatusOK, wantBody: `"{team2}":1`,
			then: func(e *env, teams, users []string) {
				if e.mapped(teams[0], users[0]) != nil || e.mapped(teams[0], users[1]) != nil || e.mapped(teams[1], e.users(teams[1])[0]) != nil {
					e.t.Fatal("mappings of the org left")
				}
			}, wantAudit: binding.AuditMappingsDelete},
		{name: "delete a workspace's mappings with one org only", method: http.MethodDelete,
			path: "/admin/api/bindings/{team}/mappings?org=" + globex, wantCode: http.StatusOK, wantBody: `"deleted":{}`,
			then: func(e *env, teams, users []string) {
				if e.mapped(teams[0], users[0]) == nil {
					e.t.Fatal("a mapping of another org went")
				}
			}},
		{name: "invalidate a workspace that is not bound", method: http.MethodPost,
			path: "/admin/api/bindings/T0NOTBOUND/invalidate", wantCode: http.StatusNotFound, wantBody: "not connected to an org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, envOpts{})
			teams := e.teams()[:2]
			users := e.users(teams[0])
			for _, team := range teams {
				e.install(team)
			}
			e.mustConnect(teams[0], users[0], "alice@acme.example")
			e.mustConnect(teams[0], users[1], "bob@acme.example")
			e.mustConnect(teams[1], e.users(teams[1])[0], "carol@acme.example")
			if tt.wantBody == `"cleared":true` {
				if _, err := e.installs.Delete(e.ctx, e.slack.AppID(), "", teams[0]); err != nil {
					t.Fatal(err)
				}
			}
			fill := strings.NewReplacer("{team}", teams[0], "{team2}", teams[1])
			code, body := e.admin(tt.method, fill.Replace(tt.path), tt.body)
			if code != tt.wantCode || !strings.Contains(body, fill.Replace(tt.wantBody)) {
				t.Fatalf("%s %s: %d %s, want %d with %s", tt.method, tt.path, code, body, tt.wantCode, fill.Replace(tt.wantBody))
			}
			if tt.then != nil {
				tt.then(e, teams, users)
			}
			if tt.wantAudit == "" {
				return
			}
			_, body = e.admin(http.MethodGet, "/admin/api/bindings/"+teams[0], "")
			var got struct {
				Audit []binding.AuditEntry `json:"audit"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			for _, a := range got.Audit {
				if a.Action == tt.wantAudit && a.Actor == "admin" && strings.Contains(a.Detail, tt.auditDetail) {
					return
				}
			}
			t.Fatalf("no %s audit entry by an admin in %s", tt.wantAudit, body)
		})
	}
}
