package orgapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

const adminToken = "scim-admin-token"

func startSCIM(t *testing.T, cfg orgemu.Config) (*orgemu.Emulator, *orgapi.SCIM) {
	t.Helper()
	cfg.SCIMToken = adminToken
	e := orgemu.StartTest(t, cfg)
	return e, orgapi.NewSCIM(e.URL()+"/services/scim/v2", adminToken, nil)
}

func newUser(n int) *orgapi.User {
	return &orgapi.User{
		UserName:    fmt.Sprintf("user%03d@new.example", n),
		ExternalID:  fmt.Sprintf("U%05d", n),
		Name:        &orgapi.Name{GivenName: "User", FamilyName: fmt.Sprint(n)},
		DisplayName: fmt.Sprintf("User %d", n),
		Emails:      []orgapi.MultiValue{{Value: fmt.Sprintf("user%03d@mail.example", n), Type: "work", Primary: true}},
	}
}

func TestSCIMUserLifecycle(t *testing.T) {
	_, s := startSCIM(t, orgemu.Config{})
	ctx := context.Background()

	created, err := s.CreateUser(ctx, newUser(1))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if !strings.HasPrefix(created.ID, "005") || !created.IsActive() || created.Meta == nil ||
		created.Meta.ResourceType != "User" || created.Meta.Version == "" || created.Meta.Created.IsZero() ||
		!strings.HasSuffix(created.Meta.Location, "/Users/"+created.ID) || !slices.Contains(created.Schemas, orgapi.SchemaUser) {
		t.Fatalf("created = %+v meta=%+v", created, created.Meta)
	}
	got, err := s.GetUser(ctx, created.ID)
	if err != nil || got.UserName != "user001@new.example" || got.ExternalID != "U00001" || got.PrimaryEmail() != "user001@mail.example" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}

	dup := newUser(2)
	dup.UserName = "USER001@new.example" // userName is case-insensitive
	_, err = s.CreateUser(ctx, dup)
	var apiErr *orgapi.APIError
	if !errors.Is(err, orgapi.ErrConflict) || !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "uniqueness" {
		t.Fatalf("duplicate userName: err = %#v, want 409 uniqueness", err)
	}

	got.Title = "Engineer"
	got.DisplayName = "Renamed"
	replaced, err := s.ReplaceUser(ctx, got)
	if err != nil || replaced.Title != "Engineer" || replaced.DisplayName != "Renamed" || replaced.Meta.Version == created.Meta.Version {
		t.Fatalf("ReplaceUser = %+v, %v", replaced, err)
	}

	patched, err := s.PatchUser(ctx, created.ID, orgapi.PatchOperation{Op: "replace", Path: "name.givenName", Value: "Ursula"})
	if err != nil || patched.Name.GivenName != "Ursula" || patched.Name.FamilyName != "1" {
		t.Fatalf("PatchUser = %+v, %v", patched, err)
	}

	deactivated, err := s.DeactivateUser(ctx, created.ID)
	if err != nil || deactivated.IsActive() {
		t.Fatalf("DeactivateUser = %+v, %v", deactivated, err)
	}
	again, err := s.GetUser(ctx, created.ID)
	if err != nil || again.IsActive() {
		t.Fatalf("after deactivation GetUser = %+v, %v", again, err)
	}

	if _, err := s.GetUser(ctx, "005999999999999"); !errors.Is(err, orgapi.ErrNotFound) {
		t.Fatalf("GetUser unknown: err = %v, want ErrNotFound", err)
	}
}

func TestSCIMUserPatch(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		ops     []orgapi.PatchOperation
		check   func(u *orgapi.User) bool
		errCode string // scimType of the expected 400, "" for success
	}{
		{"no path object", []orgapi.PatchOperation{{Op: "replace", Value: map[string]any{"active": false, "title": "Ops"}}},
			func(u *orgapi.User) bool { return !u.IsActive() && u.Title == "Ops" }, ""},
		{"active as a string", []orgapi.PatchOperation{{Op: "replace", Path: "active", Value: "False"}},
			func(u *orgapi.User) bool { return !u.IsActive() }, ""},
		{"value filter path", []orgapi.PatchOperation{{Op: "replace", Path: `emails[type eq "work"].value`, Value: "new@mail.example"}},
			func(u *orgapi.User) bool { return u.PrimaryEmail() == "new@mail.example" }, ""},
		{"add an email", []orgapi.PatchOperation{{Op: "add", Path: "emails", Value: []map[string]any{{"value": "home@mail.example", "type": "home"}}}},
			func(u *orgapi.User) bool { return len(u.Emails) == 2 }, ""},
		{"remove by filter", []orgapi.PatchOperation{{Op: "remove", Path: `emails[type eq "work"]`}},
			func(u *orgapi.User) bool { return len(u.Emails) == 0 }, ""},
		{"case-insensitive path", []orgapi.PatchOperation{{Op: "replace", Path: "DISPLAYNAME", Value: "Loud"}},
			func(u *orgapi.User) bool { return u.DisplayName == "Loud" }, ""},
		{"unknown attribute", []orgapi.PatchOperation{{Op: "replace", Path: "shoeSize", Value: 42}}, nil, "invalidPath"},
		{"read-only id", []orgapi.PatchOperation{{Op: "replace", Path: "id", Value: "x"}}, nil, "mutability"},
		{"remove without path", []orgapi.PatchOperation{{Op: "remove"}}, nil, "noTarget"},
		{"userName taken", []orgapi.PatchOperation{{Op: "replace", Path: "userName", Value: "alice@acme.example"}}, nil, "uniqueness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, s := startSCIM(t, orgemu.Config{})
			u, err := s.CreateUser(ctx, newUser(1))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.PatchUser(ctx, u.ID, tt.ops...)
			if tt.errCode != "" {
				var apiErr *orgapi.APIError
				if !errors.As(err, &apiErr) || apiErr.Code != tt.errCode {
					t.Fatalf("err = %#v, want scimType %s", err, tt.errCode)
				}
				stored, _ := s.GetUser(ctx, u.ID)
				if stored.Meta.Version != u.Meta.Version {
					t.Fatalf("a refused patch changed the user")
				}
				return
			}
			if err != nil || !tt.check(got) {
				t.Fatalf("PatchUser = %+v, %v", got, err)
			}
			stored, err := s.GetUser(ctx, u.ID)
			if err != nil || !tt.check(stored) {
				t.Fatalf("stored = %+v, %v", stored, err)
			}
		})
	}
}

func TestSCIMFilters(t *testing.T) {
	_, s := startSCIM(t, orgemu.Config{})
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if _, err := s.CreateUser(ctx, newUser(i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		filter string
		want   []string // userNames
		err    error
	}{
		{"userName", orgapi.FilterEq("userName", "user002@new.example"), []string{"user002@new.example"}, nil},
		{"userName ignores case", orgapi.FilterEq("username", "USER002@NEW.example"), []string{"user002@new.example"}, nil},
		{"emails.value", orgapi.FilterEq("emails.value", "user003@mail.example"), []string{"user003@new.example"}, nil},
		{"externalId", orgapi.FilterEq("externalId", "U00001"), []string{"user001@new.example"}, nil},
		{"externalId is case-exact", orgapi.FilterEq("externalId", "u00001"), nil, nil},
		{"urn-qualified", orgapi.FilterEq("urn:ietf:params:scim:schemas:core:2.0:User:userName", "user001@new.example"), []string{"user001@new.example"}, nil},
		{"and", orgapi.FilterEq("userName", "alice@acme.example") + " and active eq true", []string{"alice@acme.example"}, nil},
		{"and excludes", orgapi.FilterEq("userName", "erin@acme.example") + " and active eq true", nil, nil},
		{"scan on active", "active eq false", []string{"erin@acme.example"}, nil},
		{"no match", orgapi.FilterEq("userName", "nobody@new.example"), nil, nil},
		{"unsupported operator", `userName co "user"`, nil, orgapi.ErrInvalidFilter},
		{"or", `userName eq "a" or userName eq "b"`, nil, orgapi.ErrInvalidFilter},
		{"unquoted string", `userName eq alice`, nil, orgapi.ErrInvalidFilter},
		{"unknown attribute", `shoeSize eq "9"`, nil, orgapi.ErrInvalidFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := s.FindUsers(ctx, tt.filter)
			if tt.err != nil {
				var apiErr *orgapi.APIError
				if !errors.Is(err, tt.err) || !errors.As(err, &apiErr) || apiErr.Status != 400 {
					t.Fatalf("err = %v, want 400 %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.UserName)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("FindUsers(%s) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func TestSCIMPagination(t *testing.T) {
	_, s := startSCIM(t, orgemu.Config{})
	ctx := context.Background()
	const extra = 25
	for i := 1; i <= extra; i++ {
		if _, err := s.CreateUser(ctx, newUser(i)); err != nil {
			t.Fatal(err)
		}
	}
	const total = extra + 5 // Acme is seeded with 5 users

	tests := []struct {
		name                 string
		opts                 orgapi.ListOptions
		wantItems, wantStart int
		wantFirst            string
		wantNext             int
	}{
		{"first page", orgapi.ListOptions{StartIndex: 1, Count: 10}, 10, 1, "alice@acme.example", 11},
		{"middle page", orgapi.ListOptions{StartIndex: 11, Count: 10}, 10, 11, "user006@new.example", 21},
		{"last partial page", orgapi.ListOptions{StartIndex: 21, Count: 15}, 10, 21, "user016@new.example", 0},
		{"past the end", orgapi.ListOptions{StartIndex: 100, Count: 10}, 0, 100, "", 0},
		{"count 0 gives only the total", orgapi.ListOptions{Count: -1}, 0, 1, "", 0},
		{"startIndex below 1 means 1", orgapi.ListOptions{StartIndex: -3, Count: 2}, 2, 1, "alice@acme.example", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.ListUsers(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalResults != total || p.ItemsPerPage != tt.wantItems || len(p.Resources) != tt.wantItems || p.StartIndex != tt.wantStart || p.Next() != tt.wantNext {
				t.Fatalf("page = total %d items %d start %d next %d, want %d/%d/%d/%d", p.TotalResults, p.ItemsPerPage, p.StartIndex, p.Next(), total, tt.wantItems, tt.wantStart, tt.wantNext)
			}
			if tt.wantFirst != "" && p.Resources[0].UserName != tt.wantFirst {
				t.Fatalf("first = %s, want %s", p.Resources[0].UserName, tt.wantFirst)
			}
		})
	}

	seen := map[string]bool{}
	var order []string
	for u, err := range s.AllUsers(ctx, "", 7) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[u.ID] {
			t.Fatalf("AllUsers yielded %s twice", u.ID)
		}
		seen[u.ID] = true
		order = append(order, u.UserName)
	}
	if len(order) != total || order[total-1] != "user025@new.example" {
		t.Fatalf("AllUsers gave %d users ending %v", len(order), order[len(order)-1])
	}
}

func TestSCIMGroups(t *testing.T) {
	_, s := startSCIM(t, orgemu.Config{})
	ctx := context.Background()
	var ids []string
	for i := 1; i <= 4; i++ {
		u, err := s.CreateUser(ctx, newUser(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}

	g, err := s.CreateGroup(ctx, &orgapi.Group{DisplayName: "Engineering", ExternalID: "S-ENG", Members: []orgapi.Member{{Value: ids[0]}, {Value: ids[1]}}})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if !strings.HasPrefix(g.ID, "00G") || len(g.Members) != 2 || g.Meta.ResourceType != "Group" {
		t.Fatalf("created group = %+v", g)
	}
	if err := s.PatchGroupMembers(ctx, g.ID, []string{ids[2], ids[3], ids[0]}, []string{ids[1]}); err != nil {
		t.Fatalf("PatchGroupMembers: %v", err)
	}
	got, err := s.GetGroup(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, m := range got.Members {
		members = append(members, m.Value)
	}
	slices.Sort(members)
	if want := []string{ids[0], ids[2], ids[3]}; !slices.Equal(members, want) {
		t.Fatalf("members = %v, want %v", members, want)
	}
	if got.Meta.Version == g.Meta.Version {
		t.Fatalf("version did not change after a member patch")
	}

	if err := s.PatchGroup(ctx, g.ID, orgapi.PatchOperation{Op: "replace", Path: "displayName", Value: "Eng"}); err != nil {
		t.Fatalf("rename: %v", err)
	}

	other, err := s.CreateGroup(ctx, &orgapi.Group{DisplayName: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	other.Members = []orgapi.Member{{Value: ids[1]}}
	other.DisplayName = "Support"
	put, err := s.ReplaceGroup(ctx, other)
	if err != nil || put.DisplayName != "Support" || len(put.Members) != 1 || put.Members[0].Value != ids[1] {
		t.Fatalf("ReplaceGroup = %+v, %v", put, err)
	}
	if err := s.DeleteGroup(ctx, other.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		filter  string
		members bool
		want    int
	}{
		{"by displayName", orgapi.FilterEq("displayName", "eng"), true, 1},
		{"by externalId", orgapi.FilterEq("externalId", "S-ENG"), true, 1},
		{"by member", orgapi.FilterEq("members.value", ids[2]), true, 1},
		{"by removed member", orgapi.FilterEq("members.value", ids[1]), true, 0},
		{"old name", orgapi.FilterEq("displayName", "Engineering"), true, 0},
		{"without members", "", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var found []orgapi.Group
			for g, err := range s.AllGroups(ctx, tt.filter, 0, tt.members) {
				if err != nil {
					t.Fatal(err)
				}
				found = append(found, g)
			}
			if len(found) != tt.want {
				t.Fatalf("found %d groups, want %d", len(found), tt.want)
			}
			if tt.want > 0 && (len(found[0].Members) > 0) != tt.members {
				t.Fatalf("members present = %v, want %v", len(found[0].Members) > 0, tt.members)
			}
		})
	}

	refusals := []struct {
		name string
		call func() error
		want error
		code string
	}{
		{"duplicate displayName", func() error { _, err := s.CreateGroup(ctx, &orgapi.Group{DisplayName: "ENG"}); return err }, orgapi.ErrConflict, "uniqueness"},
		{"member is not a user", func() error { return s.PatchGroupMembers(ctx, g.ID, []string{"005000000009999"}, nil) }, nil, "invalidValue"},
		{"unsupported path", func() error {
			return s.PatchGroup(ctx, g.ID, orgapi.PatchOperation{Op: "add", Path: "owner", Value: "x"})
		}, nil, "invalidPath"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var apiErr *orgapi.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tt.code || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %#v, want scimType %s", err, tt.code)
			}
		})
	}
	after, _ := s.GetGroup(ctx, g.ID)
	if len(after.Members) != 3 {
		t.Fatalf("a refused patch changed the members: %d", len(after.Members))
	}

	if err := s.DeleteGroup(ctx, g.ID); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	if _, err := s.GetGroup(ctx, g.ID); !errors.Is(err, orgapi.ErrNotFound) {
		t.Fatalf("GetGroup after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateGroup(ctx, &orgapi.Group{DisplayName: "Eng"}); err != nil {
		t.Fatalf("the name of a deleted group should be free: %v", err)
	}
}

func TestSCIMWriteRateLimit(t *testing.T) {
	clk := newClock()
	e, s := startSCIM(t, orgemu.Config{Now: clk.Now, SCIMWritesPerSecond: 2, SCIMWriteBurst: 1})
	ctx := context.Background()

	if _, err := s.CreateUser(ctx, newUser(1)); err != nil {
		t.Fatalf("first write: %v", err)
	}
	_, err := s.CreateUser(ctx, newUser(2))
	var rl *orgapi.RateLimitedError
	if !errors.As(err, &rl) || !errors.Is(err, orgapi.ErrRateLimited) || !rl.Retryable() || rl.RetryAfter() != 500*time.Millisecond {
		t.Fatalf("second write: err = %#v, want a 429 asking for 500ms", err)
	}
	if rl.Err.Status != http.StatusTooManyRequests {
		t.Fatalf("status = %d", rl.Err.Status)
	}
	if _, err := s.FindUsers(ctx, orgapi.FilterEq("userName", "user001@new.example")); err != nil {
		t.Fatalf("reads are not limited: %v", err)
	}

	// The raw answer carries Retry-After in whole seconds and a SCIM error body.
	req, _ := http.NewRequest(http.MethodPost, e.URL()+"/services/scim/v2/Users", strings.NewReader(`{"userName":"x@new.example"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("raw 429: status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	clk.Advance(rl.RetryAfter())
	if _, err := s.CreateUser(ctx, newUser(2)); err != nil {
		t.Fatalf("write after waiting: %v", err)
	}
	if st := e.Stats(); st.SCIMWrites != 2 || st.SCIMThrottled != 2 {
		t.Fatalf("stats = %+v, want 2 writes and 2 throttled", st)
	}
}

func TestSCIMErrorBodies(t *testing.T) {
	e, s := startSCIM(t, orgemu.Config{})
	if _, err := s.CreateUser(context.Background(), newUser(1)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, token, body string
		status                          int
		scimType                        string
	}{
		{"no token", "GET", "/Users", "", "", 401, ""},
		{"bad token", "GET", "/Users", "nope", "", 401, ""},
		{"duplicate", "POST", "/Users", adminToken, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"user001@new.example"}`, 409, "uniqueness"},
		{"not JSON", "POST", "/Users", adminToken, `{`, 400, "invalidSyntax"},
		{"no userName", "POST", "/Users", adminToken, `{"displayName":"x"}`, 400, "invalidValue"},
		{"bad filter", "GET", "/Users?filter=userName+sw+%22a%22", adminToken, "", 400, "invalidFilter"},
		{"unknown user", "GET", "/Users/005000000000999", adminToken, "", 404, ""},
		{"users are not deleted", "DELETE", "/Users/005000000000001", adminToken, "", 405, ""},
		{"patch without PatchOp schema", "PATCH", "/Users/005000000000001", adminToken, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`, 400, "invalidSyntax"},
		{"stale If-Match", "PATCH", "/Users/005000000000001", adminToken, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"x"}]}`, 412, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.URL()+"/services/scim/v2"+tt.path, strings.NewReader(tt.body))
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if tt.status == 412 {
				req.Header.Set("If-Match", `W/"999"`)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var body struct {
				Schemas  []string `json:"schemas"`
				Status   string   `json:"status"`
				ScimType string   `json:"scimType"`
				Detail   string   `json:"detail"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			if resp.StatusCode != tt.status || body.Status != fmt.Sprint(tt.status) || body.ScimType != tt.scimType ||
				!slices.Equal(body.Schemas, []string{orgapi.SchemaError}) || body.Detail == "" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/scim+json") {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
		})
	}
}

func TestSCIMConcurrentCreates(t *testing.T) {
	e, s := startSCIM(t, orgemu.Config{})
	ctx := context.Background()
	const workers, users = 4, 20
	created := make(chan string, workers*users)
	errs := make(chan error, workers*users)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := 1; i <= users; i++ {
				u, err := s.CreateUser(ctx, newUser(i))
				switch {
				case err == nil:
					created <- u.ID
				case !errors.Is(err, orgapi.ErrConflict):
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(created)
	close(errs)
	for err := range errs {
		t.Fatalf("unexpected error: %v", err)
	}
	if n := len(created); n != users {
		t.Fatalf("%d users created, want exactly %d (one per userName)", n, users)
	}
	snap, err := e.SCIMSnapshot("00D000000000001")
	if err != nil || len(snap.Users) != users+5 {
		t.Fatalf("snapshot has %d users, %v", len(snap.Users), err)
	}
}

func TestSCIMWithOAuthToken(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	c := newClient(t, e, "cid", "secret")
	tok := login(t, c, "hank@globex.example")
	s := orgapi.NewSCIM(tok.InstanceURL+"/services/scim/v2", tok.AccessToken, nil)
	ctx := context.Background()

	users, err := s.FindUsers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.UserName)
	}
	if !slices.Equal(names, []string{"hank@globex.example", "ivy@globex.example"}) {
		t.Fatalf("the token's org directory = %v, want Globex's users", names)
	}
	if users[0].ID != tok.UserID() {
		t.Fatalf("SCIM id %s differs from the token's user id %s", users[0].ID, tok.UserID())
	}
	spc, err := s.ServiceProviderConfig(ctx)
	if err != nil || !spc.Patch.Supported || !spc.Filter.Supported || spc.Bulk.Supported {
		t.Fatalf("ServiceProviderConfig = %+v, %v", spc, err)
	}

	// Deactivating through SCIM revokes the user's OAuth grant.
	if _, err := s.DeactivateUser(ctx, users[1].ID); err != nil {
		t.Fatal(err)
	}
	if w := e.World(); w.Orgs[1].Users[1].Active {
		t.Fatalf("world still shows ivy active")
	}

	if err := e.ExpireOrg("00D000000000002"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindUsers(ctx, ""); !errors.Is(err, orgapi.ErrInvalidToken) {
		t.Fatalf("SCIM on an expired org: err = %v, want ErrInvalidToken", err)
	}
}
