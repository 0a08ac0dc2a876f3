package binding_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// Seed 000: "If the org you're connecting to already expired or is no longer
// valid, you're prompted to log into a new org when interacting with the
// Slack app." The expiry is found on the interaction itself, whoever
// interacts, and the next connect binds a new org without an uninstall.
func TestExpiredOrgFoundOnTheInteraction(t *testing.T) {
	tests := []struct {
		name string
		opts envOpts
		// prime runs before the org expires (users[0] is connected to acme).
		prime func(e *env, team string, users []string)
		// who interacts after the expiry, and what they must be told.
		who      int
		wantText string
	}{
		{name: "mapped user whose session was checked a minute ago", opts: envOpts{orgCheck: 5 * time.Minute},
			who: 0, wantText: "expired or is no longer valid"},
		{name: "user not mapped yet", opts: envOpts{orgCheck: 5 * time.Minute},
			who: 1, wantText: "expired or is no longer valid"},
		{name: "stale prompt: the last check still says the org is fine", opts: envOpts{orgCheck: 5 * time.Minute, orgProbe: time.Hour},
			prime: func(e *env, team string, users []string) {
				if m := e.command(team, users[0], "/orgbridge", "whoami"); !strings.Contains(m.Text, "You are alice") {
					e.t.Fatalf("before the expiry: %q", m.Text)
				}
			},
			who: 1, wantText: "Connect your Slack account to Acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, tt.opts)
			team := e.teams()[0]
			users := e.users(team)
			e.install(team)
			e.mustConnect(team, users[0], "alice@acme.example")
			if tt.prime != nil {
				tt.prime(e, team, users)
			}
			if err := e.org.ExpireOrg(acme); err != nil {
				t.Fatal(err)
			}
			m := e.command(team, users[tt.who], "/orgbridge", "whoami")
			if !strings.Contains(m.Text, tt.wantText) {
				t.Fatalf("after the expiry %s was told %q, want %q", users[tt.who], m.Text, tt.wantText)
			}
			code, page := e.login(connectURL(t, m), "hank@globex.example")
			if code != http.StatusOK || !strings.Contains(page, "Connected") || e.boundOrg(team) != globex {
				t.Fatalf("connecting a new org: %d %s (bound to %q)", code, page, e.boundOrg(team))
			}
		})
	}
}

// The check of the bound org on interactions is cheap: at most one token
// refresh per workspace per OrgProbeEvery, however many users interact.
func TestOrgCheckIsRateLimited(t *testing.T) {
	e := startEnv(t, envOpts{orgCheck: time.Hour, orgProbe: time.Hour})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	before := e.org.Stats().TokensIssued
	for _, u := range []string{users[1], users[2], users[1], users[0]} {
		e.command(team, u, "/orgbridge", "status")
	}
	if n := e.org.Stats().TokensIssued - before; n != 1 {
		t.Fatalf("%d tokens issued for four interactions, want 1 (one check per workspace per OrgProbeEvery)", n)
	}
}

// A user-level failure (a deactivated org user, a revoked user token) only
// affects that user: the workspace stays bound, the user's mapping goes, and
// "the same org user as before" never asks for a user who cannot log in.
func TestUserLevelFailureOnlyAffectsThatUser(t *testing.T) {
	tests := []struct {
		name string
		// connected are the org users connected, users[i] as connected[i];
		// users[0] connects first (the workspace's connecting user).
		connected []string
		fail      func(e *env)
		// who interacts after the failure, and what they are told.
		who      int
		wantText string
		// then: who connects next as whom; it must succeed.
		next []struct {
			who      int
			username string
		}
		// wantRevoked: users whose mapping and association are gone.
		wantRevoked []int
		// wantAssociated: users whose association (not mapping) stays.
		wantAssociated []int
	}{
		{name: "the user who connected the workspace is deactivated, alone", connected: []string{"alice@acme.example"},
			fail: func(e *env) { must(e.t, e.org.DeactivateUser(acme, "alice@acme.example")) },
			who:  0, wantText: "log in",
			next: []struct {
				who      int
				username string
			}{{1, "bob@acme.example"}, {0, "carol@acme.example"}},
			wantRevoked: nil},
		{name: "the user who connected the workspace is deactivated, others mapped", connected: []string{"alice@acme.example", "bob@acme.example"},
			fail: func(e *env) { must(e.t, e.org.DeactivateUser(acme, "alice@acme.example")) },
			who:  2, wantText: "Connect your Slack account to Acme",
			next: []struct {
				who      int
				username string
			}{{2, "carol@acme.example"}},
			wantRevoked: []int{0}},
		{name: "another user is deactivated", connected: []string{"alice@acme.example", "bob@acme.example"},
			fail: func(e *env) { must(e.t, e.org.DeactivateUser(acme, "bob@acme.example")) },
			who:  1, wantText: "no longer active",
			next: []struct {
				who      int
				username string
			}{{1, "carol@acme.example"}},
			wantRevoked: []int{1}},
		{name: "a user revoked their token", connected: []string{"alice@acme.example", "bob@acme.example"},
			fail: func(e *env) { must(e.t, e.org.RevokeTokens(acme, "bob@acme.example")) },
			who:  1, wantText: "same org user (bob@acme.example)",
			next: []struct {
				who      int
				username string
			}{{1, "bob@acme.example"}},
			wantAssociated: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every interaction checks the org (no OrgProbeEvery window), so
			// what each one finds shows at once.
			e := startEnv(t, envOpts{orgProbe: -1})
			team := e.teams()[0]
			users := e.users(team)
			e.install(team)
			for i, u := range tt.connected {
				e.mustConnect(team, users[i], u)
			}
			tt.fail(e)
			if m := e.command(team, users[tt.who], "/orgbridge", "whoami"); !strings.Contains(m.Text, tt.wantText) {
				t.Fatalf("after the failure %s was told %q, want %q", users[tt.who], m.Text, tt.wantText)
			}
			for _, i := range tt.wantRevoked {
				if e.mapped(team, users[i]) != nil {
					t.Fatalf("the mapping of %s (org user inactive) is still there", users[i])
				}
				if _, err := e.mappings.Association(e.ctx, team, acme, users[i]); err == nil {
					t.Fatalf("the association of %s (org user inactive) is still there: not fully revoked", users[i])
				}
			}
			for _, i := range tt.wantAssociated {
				if _, err := e.mappings.Association(e.ctx, team, acme, users[i]); err != nil {
					t.Fatalf("the association of %s is gone: %v", users[i], err)
				}
			}
			for _, n := range tt.next {
				e.mustConnect(team, users[n.who], n.username)
			}
			b, _ := e.bindings.Get(e.ctx, team)
			if b == nil || !b.Valid || b.OrgID != acme {
				t.Fatalf("binding = %+v, want still bound to acme", b)
			}
		})
	}
}

// Seed 000's permission errors — "A user doesn't have permission to access a
// Slack app", "An org doesn't have permission to access a Slack app" — are
// said in Slack on every command, never dead-lettered in silence; the
// mapping and the binding stay for when the permission comes back.
func TestRevokedPermissionIsSaidEveryTime(t *testing.T) {
	no := false
	tests := []struct {
		name     string
		perm     orgemu.Permissions
		who      []int // interacting after the change (users[1] is mapped as bob)
		wantText string
	}{
		{name: "the user's permission", perm: orgemu.Permissions{Users: map[string]bool{"bob@acme.example": false}},
			who: []int{1, 1}, wantText: "Your org user bob@acme.example is not permitted to use this app"},
		{name: "the org's permission", perm: orgemu.Permissions{AppAllowed: &no},
			who: []int{1, 1, 2}, wantText: "does not permit this app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, envOpts{orgProbe: -1})
			team := e.teams()[0]
			users := e.users(team)
			e.install(team)
			e.mustConnect(team, users[0], "alice@acme.example")
			e.mustConnect(team, users[1], "bob@acme.example")
			must(t, e.org.SetPermissions(acme, tt.perm))
			for _, i := range tt.who {
				m := e.command(team, users[i], "/orgbridge", "whoami")
				if !strings.Contains(m.Text, tt.wantText) || strings.Contains(m.Text, "You are") {
					t.Fatalf("%s was told %q, want %q", users[i], m.Text, tt.wantText)
				}
			}
			if e.mapped(team, users[1]) == nil || e.boundOrg(team) != acme {
				t.Fatal("a permission change removed the mapping or the binding")
			}
			// Permission back: the same mapping works again.
			yes := true
			must(t, e.org.SetPermissions(acme, orgemu.Permissions{AppAllowed: &yes, Users: map[string]bool{"bob@acme.example": true}}))
			if m := e.command(team, users[1], "/orgbridge", "whoami"); !strings.Contains(m.Text, "You are bob@acme.example") {
				t.Fatalf("with the permission back: %q", m.Text)
			}
		})
	}
}

// After a workspace is re-bound to a new org, the old org's mappings and
// associations there go with the old binding, and the audit trail says so.
func TestRebindRemovesTheOldOrgsMappings(t *testing.T) {
	tests := []struct {
		name  string
		unset func(e *env, team string)
	}{
		{name: "the org expired", unset: func(e *env, team string) { must(e.t, e.org.ExpireOrg(acme)) }},
		{name: "an admin marked the binding invalid", unset: func(e *env, team string) {
			if code, body := e.admin(http.MethodPost, "/admin/api/bindings/"+team+"/invalidate", `{"reason":"moving to Globex"}`); code != http.StatusOK {
				e.t.Fatalf("invalidate: %d %s", code, body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, envOpts{})
			team := e.teams()[0]
			users := e.users(team)
			e.install(team)
			e.mustConnect(team, users[0], "alice@acme.example")
			e.mustConnect(team, users[1], "bob@acme.example")
			tt.unset(e, team)
			m := e.command(team, users[2], "/orgbridge", "connect")
			if code, page := e.login(connectURL(t, m), "hank@globex.example"); code != http.StatusOK || e.boundOrg(team) != globex {
				t.Fatalf("re-binding to globex: %d %s", code, page)
			}
			for _, u := range users[:2] {
				if m := e.mapped(team, u); m != nil {
					t.Fatalf("the old org's mapping of %s is still there: %+v", u, m)
				}
				if _, err := e.mappings.Association(e.ctx, team, acme, u); err == nil {
					t.Fatalf("the old org's association of %s is still there", u)
				}
			}
			if m := e.mapped(team, users[2]); m == nil || m.OrgID != globex {
				t.Fatalf("the new mapping: %+v", m)
			}
			_, body := e.admin(http.MethodGet, "/admin/api/bindings/"+team, "")
			var got struct {
				Audit []binding.AuditEntry `json:"audit"`
			}
			_ = json.Unmarshal([]byte(body), &got)
			found := false
			for _, a := range got.Audit {
				found = found || (a.Action == binding.AuditOldOrgRemoved && a.OrgID == acme && a.Mappings == 2)
			}
			if !found {
				t.Fatalf("no audit entry of the old org's 2 mappings removed: %s", body)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
