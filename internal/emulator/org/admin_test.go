package orgemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

// identity reads userinfo and the identity URL with tok, as a connected app does.
func identity(t *testing.T, tok *orgapi.Token) (userinfo, id map[string]any) {
	t.Helper()
	get := func(u string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken.Reveal())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return get(tok.InstanceURL + "/services/oauth2/userinfo"), get(tok.ID)
}

func orgAdmin(m map[string]any) any {
	ca, _ := m["custom_attributes"].(map[string]any)
	return ca["org_admin"]
}

// TestOrgAdminInIdentity: userinfo and the identity URL carry the org-admin
// flag as Salesforce carries a connected app's custom attributes, and a
// change shows at once with the same token.
func TestOrgAdminInIdentity(t *testing.T) {
	tests := []struct {
		name     string
		cfg      orgemu.Config
		username string
		want     string
	}{
		{name: "default world admin", username: "alice@acme.example", want: "true"},
		{name: "default world member", username: "bob@acme.example", want: "false"},
		{name: "generated world: first user of an org", cfg: orgemu.Config{Orgs: 2, UsersPerOrg: 2}, username: "user1@org2.example", want: "true"},
		{name: "generated world: second user", cfg: orgemu.Config{Orgs: 2, UsersPerOrg: 2}, username: "user2@org2.example", want: "false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := orgemu.StartTest(t, tc.cfg)
			tok, err := connect(t, e, tc.username)
			if err != nil {
				t.Fatal(err)
			}
			ui, id := identity(t, tok)
			if orgAdmin(ui) != tc.want || orgAdmin(id) != tc.want {
				t.Fatalf("org_admin: userinfo %v, identity %v; want %q", ui["custom_attributes"], id["custom_attributes"], tc.want)
			}
			flip := tc.want != "true"
			org := tok.OrgID()
			if st := call(t, e, "POST", "/_emulator/orgs/"+org+"/users/"+tc.username+"/admin", fmt.Sprintf(`{"admin": %v}`, flip), nil); st != http.StatusNoContent {
				t.Fatalf("set admin: status %d", st)
			}
			ui, id = identity(t, tok)
			if want := fmt.Sprint(flip); orgAdmin(ui) != want || orgAdmin(id) != want {
				t.Errorf("after the change: userinfo %v, identity %v; want %q", ui["custom_attributes"], id["custom_attributes"], want)
			}
			var w orgemu.World
			call(t, e, "GET", "/_emulator/world", "", &w)
			for _, o := range w.Orgs {
				for _, u := range o.Users {
					if u.Username == tc.username && u.Admin != flip {
						t.Errorf("world shows %+v", u)
					}
				}
			}
		})
	}
}

func TestSetAdminRefusals(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	tests := []struct {
		name, path, body string
		wantStatus       int
		goErr            error
	}{
		{"unknown org", "/_emulator/orgs/00D000000000099/users/bob@acme.example/admin", `{"admin":true}`, 404, orgemu.ErrUnknownOrg},
		{"unknown user", "/_emulator/orgs/00D000000000001/users/zed@acme.example/admin", `{"admin":true}`, 404, orgemu.ErrUnknownUser},
		{"no admin field", "/_emulator/orgs/00D000000000001/users/bob@acme.example/admin", `{}`, 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st := call(t, e, "POST", tc.path, tc.body, nil); st != tc.wantStatus {
				t.Errorf("status %d, want %d", st, tc.wantStatus)
			}
			if tc.goErr != nil {
				parts := strings.Split(tc.path, "/")
				if err := e.SetAdmin(parts[3], parts[5], true); !errors.Is(err, tc.goErr) {
					t.Errorf("SetAdmin = %v, want %v", err, tc.goErr)
				}
			}
		})
	}
}

// TestAddUser: a user added to an existing org can log in, shows in SCIM
// with its id, and a taken username is refused.
func TestAddUser(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	const acme = "00D000000000001"
	tests := []struct {
		name       string
		via        string // "go" or "http"
		spec       orgemu.UserSpec
		wantErr    error
		wantStatus int
	}{
		{name: "admin over HTTP", via: "http", spec: orgemu.UserSpec{Username: "zoe@acme.example", Name: "Zoe Zhang", Admin: true}, wantStatus: 201},
		{name: "member from Go", via: "go", spec: orgemu.UserSpec{Username: "yan@acme.example", Email: "Yan@Acme.Example"}},
		{name: "username taken in another org", via: "go", spec: orgemu.UserSpec{Username: "hank@globex.example"}, wantErr: orgemu.ErrUsernameTaken},
		{name: "username taken over HTTP", via: "http", spec: orgemu.UserSpec{Username: "ALICE@acme.example"}, wantStatus: 409},
		{name: "no username", via: "http", spec: orgemu.UserSpec{}, wantStatus: 400},
		{name: "unknown org", via: "go", spec: orgemu.UserSpec{Username: "x@nowhere.example"}, wantErr: orgemu.ErrUnknownOrg},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			org := acme
			if errors.Is(tc.wantErr, orgemu.ErrUnknownOrg) {
				org = "00D000000000099"
			}
			var id string
			switch tc.via {
			case "go":
				var err error
				id, err = e.AddUser(org, tc.spec)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("AddUser = %q, %v; want %v", id, err, tc.wantErr)
				}
			default:
				b, _ := json.Marshal(tc.spec)
				var info orgemu.UserInfo
				if st := call(t, e, "POST", "/_emulator/orgs/"+org+"/users", string(b), &info); st != tc.wantStatus {
					t.Fatalf("status %d, want %d", st, tc.wantStatus)
				}
				id = info.ID
				if tc.wantStatus == 201 && (info.Username != tc.spec.Username || info.Admin != tc.spec.Admin || !info.Active || !info.Permitted) {
					t.Errorf("answer = %+v", info)
				}
			}
			if tc.wantErr != nil || tc.wantStatus >= 300 {
				return
			}
			u, err := e.SCIMUser(acme, id)
			if err != nil || u.UserName != tc.spec.Username || !u.Active || u.Meta.Version == "" {
				t.Fatalf("SCIMUser(%s) = %+v, %v", id, u, err)
			}
			tok, err := connect(t, e, tc.spec.Username)
			if err != nil {
				t.Fatalf("the new user cannot log in: %v", err)
			}
			if ui, _ := identity(t, tok); ui["user_id"] != id || orgAdmin(ui) != fmt.Sprint(tc.spec.Admin) {
				t.Errorf("userinfo = %v", ui)
			}
		})
	}
	if _, err := e.SCIMUser(acme, "005999999999999"); !errors.Is(err, orgemu.ErrUnknownResource) {
		t.Errorf("SCIMUser(unknown) = %v", err)
	}
}

// TestSCIMVersionsAndStats: PUT, PATCH and DELETE honour If-Match with 412
// on a stale version, and the stats count accepted writes apart from
// refused and throttled ones.
func TestSCIMVersionsAndStats(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{SCIMToken: "admin", SCIMOrgID: "00D000000000002"})
	s := orgapi.NewSCIM(e.URL()+"/services/scim/v2", "admin", nil)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, &orgapi.User{UserName: "v@globex.example", ExternalID: "U1"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGroup(ctx, &orgapi.Group{DisplayName: "Versioned"})
	if err != nil {
		t.Fatal(err)
	}
	// raw sends a SCIM write with If-Match and returns the status and ETag.
	raw := func(method, path, ifMatch, body string) (int, string) {
		req, _ := http.NewRequest(method, e.URL()+"/services/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer admin")
		req.Header.Set("Content-Type", "application/scim+json")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("ETag")
	}
	const patchTitle = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"T"}]}`
	const patchName = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Versioned 2"}]}`
	userV, groupV := `W/"1"`, `W/"1"`
	start := e.Stats()
	steps := []struct {
		name, method, path string
		ifMatch            *string // nil: no If-Match
		stale              bool    // send an old version instead
		body               string
		want               int
		version            *string // where the new ETag goes
	}{
		{name: "PATCH user, current version", method: "PATCH", path: "/Users/" + u.ID, ifMatch: &userV, body: patchTitle, want: 200, version: &userV},
		{name: "PATCH user, stale version", method: "PATCH", path: "/Users/" + u.ID, stale: true, body: patchTitle, want: 412},
		{name: "PUT user, current version", method: "PUT", path: "/Users/" + u.ID, ifMatch: &userV, body: `{"userName":"v@globex.example","externalId":"U1"}`, want: 200, version: &userV},
		{name: "PUT user, stale version", method: "PUT", path: "/Users/" + u.ID, stale: true, body: `{"userName":"v@globex.example"}`, want: 412},
		{name: "PUT user, no If-Match", method: "PUT", path: "/Users/" + u.ID, body: `{"userName":"v@globex.example","externalId":"U1"}`, want: 200, version: &userV},
		{name: "PATCH group, current version", method: "PATCH", path: "/Groups/" + g.ID, ifMatch: &groupV, body: patchName, want: 204, version: &groupV},
		{name: "PATCH group, stale version", method: "PATCH", path: "/Groups/" + g.ID, stale: true, body: patchName, want: 412},
		{name: "PUT group, current version", method: "PUT", path: "/Groups/" + g.ID, ifMatch: &groupV, body: `{"displayName":"Versioned 3"}`, want: 200, version: &groupV},
		{name: "PUT group, stale version", method: "PUT", path: "/Groups/" + g.ID, stale: true, body: `{"displayName":"Versioned 4"}`, want: 412},
		{name: "DELETE group, stale version", method: "DELETE", path: "/Groups/" + g.ID, stale: true, want: 412},
		{name: "conflict", method: "POST", path: "/Users", body: `{"userName":"hank@globex.example"}`, want: 409},
		{name: "bad PATCH", method: "PATCH", path: "/Users/" + u.ID, body: `{"Operations":[]}`, want: 400},
		{name: "unknown user", method: "PATCH", path: "/Users/005999999999999", body: patchTitle, want: 404},
		{name: "DELETE user", method: "DELETE", path: "/Users/" + u.ID, want: 405},
		{name: "DELETE group, current version", method: "DELETE", path: "/Groups/" + g.ID, ifMatch: &groupV, want: 204},
	}
	accepted, refused := 0, 0
	for _, st := range steps {
		ifMatch := ""
		if st.ifMatch != nil {
			ifMatch = *st.ifMatch
		}
		if st.stale {
			ifMatch = `W/"1"`
		}
		status, tag := raw(st.method, st.path, ifMatch, st.body)
		if status != st.want {
			t.Fatalf("%s: status %d, want %d", st.name, status, st.want)
		}
		if st.version != nil {
			if tag == "" || tag == *st.version {
				t.Fatalf("%s: ETag %q, want a new version after %s", st.name, tag, *st.version)
			}
			*st.version = tag
		}
		if status < 300 {
			accepted++
		} else {
			refused++
		}
	}
	got := e.Stats()
	if w, r := got.SCIMWrites-start.SCIMWrites, got.SCIMRefused-start.SCIMRefused; w != int64(accepted) || r != int64(refused) || got.SCIMThrottled != 0 {
		t.Errorf("stats: %d writes, %d refused, %d throttled; want %d, %d, 0", w, r, got.SCIMThrottled, accepted, refused)
	}
	snap, err := e.SCIMSnapshot("00D000000000002")
	if err != nil {
		t.Fatal(err)
	}
	last := snap.Users[len(snap.Users)-1]
	if last.ID != u.ID || last.ExternalID != "U1" || last.Meta.Version != userV || !last.Active {
		t.Errorf("snapshot user = %+v, want externalId U1 and version %s", last, userV)
	}
}

// TestStatsOverHTTP: /_emulator/stats shows refused writes.
func TestStatsOverHTTP(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{SCIMToken: "admin"})
	s := orgapi.NewSCIM(e.URL()+"/services/scim/v2", "admin", nil)
	if _, err := s.CreateUser(context.Background(), &orgapi.User{UserName: "alice@acme.example"}); err == nil {
		t.Fatal("creating a taken userName succeeded")
	}
	var st orgemu.Stats
	call(t, e, "GET", "/_emulator/stats", "", &st)
	if st.SCIMWrites != 0 || st.SCIMRefused != 1 {
		t.Errorf("stats = %+v, want 0 writes, 1 refused (a 409 is not a write)", st)
	}
}
