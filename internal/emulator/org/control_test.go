package orgemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

// call sends a control API request and decodes a JSON answer into out.
func call(t *testing.T, e *orgemu.Emulator, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, e.URL()+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// connect runs the OAuth flow for username through orgapi and reports the error.
func connect(t *testing.T, e *orgemu.Emulator, username string) (*orgapi.Token, error) {
	t.Helper()
	c, err := orgapi.New(orgapi.Config{BaseURL: e.URL(), ClientID: "cid", ClientSecret: "secret", RedirectURL: "https://app.test/cb"})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(c.AuthorizeURL("s", username))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := orgapi.ParseCallback(loc.Query())
	if err != nil {
		return nil, err
	}
	return c.Exchange(context.Background(), code)
}

func TestDefaultWorld(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	var w orgemu.World
	if st := call(t, e, "GET", "/_emulator/world", "", &w); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	type row struct {
		id, name    string
		app, scr    bool
		users       []string
		inactive    []string
		notPermited []string
	}
	want := []row{
		{"00D000000000001", "Acme", true, false, []string{"alice@acme.example", "bob@acme.example", "carol@acme.example", "dave@acme.example", "erin@acme.example"}, []string{"erin@acme.example"}, []string{"dave@acme.example"}},
		{"00D000000000002", "Globex", true, false, []string{"hank@globex.example", "ivy@globex.example"}, nil, nil},
		{"00D000000000003", "Acme Scratch", true, true, []string{"admin@scratch.acme.example"}, nil, nil},
		{"00D000000000004", "Initech", false, false, []string{"peter@initech.example"}, nil, nil},
	}
	if len(w.Orgs) != len(want) {
		t.Fatalf("%d orgs, want %d", len(w.Orgs), len(want))
	}
	for i, o := range w.Orgs {
		var got row
		got.id, got.name, got.app, got.scr = o.ID, o.Name, o.AppAllowed, o.Scratch
		for _, u := range o.Users {
			got.users = append(got.users, u.Username)
			if !u.Active {
				got.inactive = append(got.inactive, u.Username)
			}
			if !u.Permitted {
				got.notPermited = append(got.notPermited, u.Username)
			}
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("org %d = %+v, want %+v", i, got, want[i])
		}
		if (o.ExpiresAt != nil) != o.Scratch || o.Expired || len(o.ID18) != 18 {
			t.Errorf("org %s: expires_at %v expired %v id18 %q", o.ID, o.ExpiresAt, o.Expired, o.ID18)
		}
	}
}

func TestGeneratedWorldIsDeterministic(t *testing.T) {
	world := func(seed int64) orgemu.World {
		e, err := orgemu.New(orgemu.Config{Seed: seed, Orgs: 3, UsersPerOrg: 4})
		if err != nil {
			t.Fatal(err)
		}
		return e.World()
	}
	a, b, c := world(7), world(7), world(8)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different worlds")
	}
	if len(a.Orgs) != 3 || len(a.Orgs[2].Users) != 4 || a.Orgs[2].ID != "00D000000000003" || a.Orgs[2].Users[3].Username != "user4@org3.example" {
		t.Fatalf("world shape = %+v", a.Orgs[2])
	}
	if reflect.DeepEqual(a, c) {
		t.Fatalf("different seeds gave the same names")
	}
}

func TestControlAPI(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path, body string
		status     int
		user       string // whose connection is checked afterwards
		want       error  // nil: the connection succeeds
	}{
		{"create org", "POST", "/_emulator/orgs", `{"name":"Umbrella","users":[{"username":"wes@umbrella.example","name":"Wes Ker"}]}`, 201, "wes@umbrella.example", nil},
		{"create org with taken id", "POST", "/_emulator/orgs", `{"id":"00D000000000001","name":"Again","users":[]}`, 409, "alice@acme.example", nil},
		{"create org with taken username", "POST", "/_emulator/orgs", `{"name":"Dup","users":[{"username":"alice@acme.example"}]}`, 409, "alice@acme.example", nil},
		{"expire", "POST", "/_emulator/orgs/00D000000000002/expire", "", 204, "hank@globex.example", orgapi.ErrAccessDenied},
		{"expire by 18-char id", "POST", "/_emulator/orgs/00D000000000002EAA/expire", "", 204, "ivy@globex.example", orgapi.ErrAccessDenied},
		{"expire unknown org", "POST", "/_emulator/orgs/00D000000000099/expire", "", 404, "", nil},
		{"deactivate", "POST", "/_emulator/orgs/00D000000000001/users/carol@acme.example/deactivate", "", 204, "carol@acme.example", orgapi.ErrAccessDenied},
		{"activate", "POST", "/_emulator/orgs/00D000000000001/users/erin@acme.example/activate", "", 204, "erin@acme.example", nil},
		{"deactivate unknown user", "POST", "/_emulator/orgs/00D000000000001/users/zed@acme.example/deactivate", "", 404, "", nil},
		{"allow list", "PUT", "/_emulator/orgs/00D000000000001/permissions", `{"users_allowed":["bob@acme.example"]}`, 204, "alice@acme.example", orgapi.ErrUserNotPermitted},
		{"permission map", "PUT", "/_emulator/orgs/00D000000000001/permissions", `{"users_allowed":{"dave@acme.example":true}}`, 204, "dave@acme.example", nil},
		{"allow the app", "PUT", "/_emulator/orgs/00D000000000004/permissions", `{"app_allowed":true}`, 204, "peter@initech.example", nil},
		{"block the app", "PUT", "/_emulator/orgs/00D000000000001/permissions", `{"app_allowed":false}`, 204, "alice@acme.example", orgapi.ErrOrgNotPermitted},
		{"unknown user in permissions", "PUT", "/_emulator/orgs/00D000000000001/permissions", `{"users_allowed":["zed@acme.example"]}`, 404, "alice@acme.example", nil},
		{"malformed permissions", "PUT", "/_emulator/orgs/00D000000000001/permissions", `{"users_allowed":7}`, 400, "alice@acme.example", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := orgemu.StartTest(t, orgemu.Config{})
			if st := call(t, e, tt.method, tt.path, tt.body, nil); st != tt.status {
				t.Fatalf("status = %d, want %d", st, tt.status)
			}
			if tt.user == "" {
				return
			}
			_, err := connect(t, e, tt.user)
			if (tt.want == nil && err != nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("connecting %s: err = %v, want %v", tt.user, err, tt.want)
			}
		})
	}
}

func TestScratchOrgFromControlAPI(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	var info orgemu.OrgInfo
	body := `{"name":"Short","scratch":true,"expires_in":"1h","users":[{"username":"s@short.example","active":false}]}`
	if st := call(t, e, "POST", "/_emulator/orgs", body, &info); st != 201 {
		t.Fatalf("status %d", st)
	}
	if !info.Scratch || info.ExpiresAt == nil || info.ExpiresAt.Sub(time.Now()) > time.Hour || info.Users[0].Active {
		t.Fatalf("org = %+v", info)
	}
	if _, err := connect(t, e, "s@short.example"); !errors.Is(err, orgapi.ErrAccessDenied) {
		t.Fatalf("inactive user connected: %v", err)
	}
	if err := e.ActivateUser(info.ID, "s@short.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, e, "s@short.example"); err != nil {
		t.Fatalf("after activation: %v", err)
	}
	if err := e.DeactivateUser(info.ID, "nobody@short.example"); !errors.Is(err, orgemu.ErrUnknownUser) {
		t.Fatalf("DeactivateUser unknown: %v", err)
	}
	if err := e.DeactivateUser("00D000000000099", "s@short.example"); !errors.Is(err, orgemu.ErrUnknownOrg) {
		t.Fatalf("DeactivateUser unknown org: %v", err)
	}
	if st := call(t, e, "POST", "/_emulator/orgs", `{"name":"Bad","expires_in":"soon","users":[]}`, nil); st != 400 {
		t.Fatalf("bad duration status %d", st)
	}
}

func TestSnapshotAndStats(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{SCIMToken: "admin", SCIMOrgID: "00D000000000002"})
	s := orgapi.NewSCIM(e.URL()+"/services/scim/v2", "admin", nil)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, &orgapi.User{UserName: "new@globex.example", ExternalID: "X1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, &orgapi.Group{DisplayName: "Sales", Members: []orgapi.Member{{Value: u.ID}}}); err != nil {
		t.Fatal(err)
	}

	var snap orgemu.Snapshot
	if st := call(t, e, "GET", "/_emulator/scim?org=00D000000000002", "", &snap); st != 200 {
		t.Fatalf("status %d", st)
	}
	var names []string
	for _, u := range snap.Users {
		names = append(names, u.UserName)
	}
	if !slices.Equal(names, []string{"hank@globex.example", "ivy@globex.example", "new@globex.example"}) ||
		len(snap.Groups) != 1 || snap.Groups[0].Members == nil || (*snap.Groups[0].Members)[0].Value != u.ID {
		t.Fatalf("snapshot = %+v", snap)
	}
	if st := call(t, e, "GET", "/_emulator/scim?org=00D000000000099", "", nil); st != 404 {
		t.Fatalf("unknown org snapshot status %d", st)
	}

	var stats orgemu.Stats
	call(t, e, "GET", "/_emulator/stats", "", &stats)
	if stats.SCIMWrites != 2 {
		t.Fatalf("stats = %+v, want 2 SCIM writes", stats)
	}
	if _, err := connect(t, e, "hank@globex.example"); err != nil {
		t.Fatal(err)
	}
	call(t, e, "GET", "/_emulator/stats", "", &stats)
	if stats.TokensIssued != 1 || stats.SCIMReads != 0 {
		t.Fatalf("stats = %+v", stats)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  orgemu.Config
		ok   bool
	}{
		{"zero", orgemu.Config{}, true},
		{"negative orgs", orgemu.Config{Orgs: -1}, false},
		{"negative rate", orgemu.Config{SCIMWritesPerSecond: -1}, false},
		{"secret without id", orgemu.Config{ClientSecret: "s"}, false},
		{"unknown SCIM org", orgemu.Config{SCIMToken: "t", SCIMOrgID: "00D000000000042"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := orgemu.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New() err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
