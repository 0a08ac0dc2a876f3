package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

const gridSeed = `{
  "enterprises": [{"id": "E0GRID", "name": "Grid Co"}],
  "workspaces": [{"id": "T0HQ", "name": "HQ", "enterprise_id": "E0GRID"},
                 {"id": "T0EMEA", "name": "EMEA", "enterprise_id": "E0GRID"},
                 {"id": "T0SOLO", "name": "Solo"}],
  "users": [
    {"id": "W0ADA", "team_id": "T0HQ", "team_ids": ["T0EMEA"], "name": "ada", "first_name": "Ada", "last_name": "Lovelace",
     "display_name": "Countess", "email": "ada@grid.example", "image_original": "https://img.example/ada.png", "is_admin": true},
    {"id": "W0BOB", "team_id": "T0EMEA", "name": "bob", "first_name": "Bob", "email": "bob@grid.example"},
    {"id": "W0APP", "team_id": "T0HQ", "name": "deploy-app", "is_app_user": true},
    {"id": "W0GONE", "team_id": "T0EMEA", "name": "gone", "email": "gone@grid.example", "deleted": true},
    {"id": "U0SOLO", "team_id": "T0SOLO", "name": "solo", "email": "solo@solo.example", "is_invited_user": true, "is_owner": true}
  ],
  "groups": [{"id": "S0EMEA", "team_id": "T0EMEA", "name": "EMEA people", "users": ["W0ADA", "W0BOB"]},
             {"id": "S0HQ", "team_id": "T0HQ", "name": "HQ people", "users": ["W0ADA"]}]
}`

func writeSeed(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "world.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startSeeded(t *testing.T) *Emulator {
	t.Helper()
	return StartTest(t, Config{SeedFile: writeSeed(t, gridSeed), DisableRateLimits: true})
}

// TestSeedFileProfilesAndSharedGridUsers: the seed file's display names,
// app users, invited users and pictures show in users.info, and a Grid user
// with team_ids is listed, under one id, in each of its workspaces.
func TestSeedFileProfilesAndSharedGridUsers(t *testing.T) {
	e := startSeeded(t)
	ctx := context.Background()
	org := clientFor(e, mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token)
	solo := clientFor(e, mint(t, e, TokenRequest{TeamID: "T0SOLO"}).Token)

	ids := func(us []slack.User) []string {
		out := []string{}
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name, team string
		want       []string
	}{
		{name: "home workspace", team: "T0HQ", want: []string{"W0ADA", "W0APP"}},
		{name: "second workspace lists the shared user after its own", team: "T0EMEA", want: []string{"W0BOB", "W0GONE", "W0ADA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			us, err := org.GetUsersContext(ctx, slack.GetUsersOptionTeamID(tc.team), slack.GetUsersOptionLimit(1))
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(us); !slices.Equal(got, tc.want) {
				t.Errorf("users.list team_id=%s (pages of 1) = %v, want %v", tc.team, got, tc.want)
			}
		})
	}

	ada, err := org.GetUserInfoContext(ctx, "W0ADA")
	if err != nil {
		t.Fatal(err)
	}
	if ada.TeamID != "T0HQ" || !slices.Equal(ada.Enterprise.Teams, []string{"T0HQ", "T0EMEA"}) || ada.Enterprise.EnterpriseID != "E0GRID" {
		t.Errorf("W0ADA team %s enterprise_user %+v, want home T0HQ, teams [T0HQ T0EMEA]", ada.TeamID, ada.Enterprise)
	}
	if p := ada.Profile; p.DisplayName != "Countess" || p.ImageOriginal != "https://img.example/ada.png" || p.Image1024 == "" || !ada.IsAdmin || p.Email != "ada@grid.example" {
		t.Errorf("W0ADA profile = %+v admin %v", p, ada.IsAdmin)
	}
	tests := []struct {
		name   string
		api    *slack.Client
		id     string
		verify func(u *slack.User) bool
	}{
		{"app user", org, "W0APP", func(u *slack.User) bool { return u.IsAppUser && !u.IsBot }},
		{"generated pictures", org, "W0BOB", func(u *slack.User) bool {
			return strings.Contains(u.Profile.ImageOriginal, "W0BOB") && strings.Contains(u.Profile.Image1024, "_1024") &&
				u.Profile.DisplayName == "bob" && !u.IsAppUser
		}},
		{"deleted", org, "W0GONE", func(u *slack.User) bool { return u.Deleted }},
		{"invited owner", solo, "U0SOLO", func(u *slack.User) bool {
			return u.IsInvitedUser && u.IsOwner && !u.IsPrimaryOwner && u.Enterprise.ID == ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.api.GetUserInfoContext(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.verify(u) {
				b, _ := json.Marshal(u)
				t.Errorf("users.info %s = %s", tc.id, b)
			}
		})
	}
	members, err := org.GetUserGroupMembersContext(ctx, "S0EMEA")
	if err != nil || !slices.Equal(members, []string{"W0ADA", "W0BOB"}) {
		t.Errorf("S0EMEA members = %v, %v; want the shared W0ADA and W0BOB", members, err)
	}
	w := e.World()
	for _, ws := range w.Workspaces {
		if ws.ID == "T0EMEA" && (ws.Users != 3 || !slices.Equal(ws.Shared, []string{"W0ADA"})) {
			t.Errorf("world T0EMEA = %+v, want 3 users, W0ADA shared", ws)
		}
	}
}

func TestSeedFileRefusesBadMemberships(t *testing.T) {
	tests := []struct {
		name, users, groups, want string
	}{
		{name: "unknown team in team_ids", users: `{"id": "W1", "team_id": "T0HQ", "team_ids": ["T0NOPE"]}`, want: `unknown team "T0NOPE"`},
		{name: "standalone user in a Grid workspace", users: `{"id": "U1", "team_id": "T0SOLO", "team_ids": ["T0HQ"]}`, want: "Grid org"},
		{name: "group member of another workspace", users: `{"id": "W1", "team_id": "T0HQ"}`,
			groups: `{"id": "S1", "team_id": "T0EMEA", "name": "x", "users": ["W1"]}`, want: "not in team T0EMEA"},
		{name: "group member unknown", groups: `{"id": "S1", "team_id": "T0EMEA", "name": "x", "users": ["W404"]}`, want: "W404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seed := fmt.Sprintf(`{"enterprises": [{"id": "E0GRID"}], "workspaces": [{"id": "T0HQ", "enterprise_id": "E0GRID"},
				{"id": "T0EMEA", "enterprise_id": "E0GRID"}, {"id": "T0SOLO"}], "users": [%s], "groups": [%s]}`, tc.users, tc.groups)
			_, err := New(Config{SeedFile: writeSeed(t, seed)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// lastEvent is the inner event of the last request the ingress got, parsed
// by slack-go as an app would.
func lastEvent(t *testing.T, in *ingress) (slackevents.EventsAPIEvent, map[string]any) {
	t.Helper()
	reqs := in.all()
	if len(reqs) == 0 {
		t.Fatal("the ingress got nothing")
	}
	last := reqs[len(reqs)-1]
	if !last.verified || last.path != "/slack/events" {
		t.Fatalf("ingress got %s, signature verified %v", last.path, last.verified)
	}
	ev, err := slackevents.ParseEvent(last.body, slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatalf("slackevents.ParseEvent: %v\n%s", err, last.body)
	}
	var raw struct {
		Event map[string]any `json:"event"`
	}
	_ = json.Unmarshal(last.body, &raw)
	return ev, raw.Event
}

// via runs a world change through the Go method or the control API.
type via struct {
	name string
	http bool
}

var vias = []via{{name: "go"}, {name: "control API", http: true}}

// ctl posts to the control API and turns a non-200 answer into an error.
func ctl(t *testing.T, e *Emulator, path string, body any, out any) error {
	t.Helper()
	var raw json.RawMessage
	status := control(t, e, http.MethodPost, path, body, &raw)
	if status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d %s", path, status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func TestCreateUserDeliversTeamJoin(t *testing.T) {
	for _, v := range vias {
		tests := []struct {
			name       string
			spec       NewUser
			wantPrefix string
			wantTeams  []string // listed in these workspaces
		}{
			{name: "standalone member", spec: NewUser{TeamID: "T0SOLO", FirstName: "Grace", LastName: "Hopper",
				Email: "grace@solo.example", Title: "Rear Admiral", DisplayName: "amazing grace"}, wantPrefix: "U", wantTeams: []string{"T0SOLO"}},
			{name: "guest", spec: NewUser{TeamID: "T0SOLO", Email: "temp@contractor.example", IsUltraRestricted: true}, wantPrefix: "U", wantTeams: []string{"T0SOLO"}},
			{name: "grid member of two workspaces", spec: NewUser{TeamID: "T0HQ", TeamIDs: []string{"T0EMEA"}, FirstName: "Linus",
				Email: "linus@grid.example", IsAdmin: true}, wantPrefix: "W", wantTeams: []string{"T0HQ", "T0EMEA"}},
		}
		for _, tc := range tests {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				e := startSeeded(t)
				in := startIngress(t, e, nil)
				var id string
				if v.http {
					var out struct {
						ID       string    `json:"id"`
						Delivery *Delivery `json:"delivery"`
					}
					if err := ctl(t, e, "/_emulator/users", tc.spec, &out); err != nil {
						t.Fatal(err)
					}
					if out.Delivery == nil || out.Delivery.Status != http.StatusOK {
						t.Errorf("delivery = %+v", out.Delivery)
					}
					id = out.ID
				} else {
					var err error
					if id, err = e.CreateUser(tc.spec); err != nil {
						t.Fatal(err)
					}
				}
				if !strings.HasPrefix(id, tc.wantPrefix) || len(id) != 11 {
					t.Errorf("id = %q, want %s + 10 characters", id, tc.wantPrefix)
				}
				ev, _ := lastEvent(t, in)
				join, ok := ev.InnerEvent.Data.(*slackevents.TeamJoinEvent)
				if !ok || join.User == nil || join.User.ID != id || join.User.Profile.Email != tc.spec.Email || ev.TeamID != tc.spec.TeamID {
					t.Fatalf("event = %s %+v, want team_join of %s", ev.InnerEvent.Type, ev.InnerEvent.Data, id)
				}
				if join.User.IsRestricted != (tc.spec.IsRestricted || tc.spec.IsUltraRestricted) || join.User.IsUltraRestricted != tc.spec.IsUltraRestricted ||
					join.User.IsAdmin != tc.spec.IsAdmin || join.User.Profile.Title != tc.spec.Title {
					t.Errorf("team_join user = %+v", join.User)
				}
				tok := mint(t, e, TokenRequest{TeamID: tc.spec.TeamID}).Token
				if strings.HasPrefix(id, "W") {
					tok = mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token
				}
				api := clientFor(e, tok)
				for _, team := range tc.wantTeams {
					us, err := api.GetUsersContext(context.Background(), slack.GetUsersOptionTeamID(team))
					if err != nil {
						t.Fatal(err)
					}
					if !slices.ContainsFunc(us, func(u slack.User) bool { return u.ID == id }) {
						t.Errorf("users.list team_id=%s does not list %s", team, id)
					}
				}
				u, err := api.GetUserInfoContext(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if tc.spec.DisplayName != "" && u.Profile.DisplayName != tc.spec.DisplayName {
					t.Errorf("display name = %q", u.Profile.DisplayName)
				}
				if u.TeamID != tc.spec.TeamID || (u.Enterprise.ID != "" && !slices.Equal(u.Enterprise.Teams, tc.wantTeams)) {
					t.Errorf("users.info team %s enterprise teams %v, want %s %v", u.TeamID, u.Enterprise.Teams, tc.spec.TeamID, tc.wantTeams)
				}
			})
		}
	}
}

func TestUpdateUserDeliversUserChange(t *testing.T) {
	str := func(s string) *string { return &s }
	yes, no := true, false
	tests := []struct {
		name   string
		id     string
		change UserChange
		verify func(u *slack.User) bool
	}{
		{name: "email", id: "W0BOB", change: UserChange{Email: str("robert@grid.example")},
			verify: func(u *slack.User) bool { return u.Profile.Email == "robert@grid.example" && u.Name == "bob" }},
		{name: "names and title", id: "W0BOB", change: UserChange{FirstName: str("Robert"), LastName: str("Baker"), DisplayName: str("bobby"), Title: str("CTO")},
			verify: func(u *slack.User) bool {
				return u.RealName == "Robert Baker" && u.Profile.DisplayName == "bobby" && u.Profile.Title == "CTO" && u.Profile.FirstName == "Robert"
			}},
		{name: "picture", id: "W0BOB", change: UserChange{ImageOriginal: str("https://img.example/bob2.png")},
			verify: func(u *slack.User) bool { return u.Profile.ImageOriginal == "https://img.example/bob2.png" }},
		{name: "roles", id: "W0ADA", change: UserChange{IsAdmin: &no, IsOwner: &yes},
			verify: func(u *slack.User) bool { return !u.IsAdmin && u.IsOwner }},
	}
	for _, v := range vias {
		for _, tc := range tests {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				e := startSeeded(t)
				in := startIngress(t, e, nil)
				var err error
				if v.http {
					err = ctl(t, e, "/_emulator/users/"+tc.id, tc.change, nil)
				} else {
					err = e.UpdateUser(tc.id, tc.change)
				}
				if err != nil {
					t.Fatal(err)
				}
				ev, raw := lastEvent(t, in)
				// slackevents' user leaves the email and pictures out: read
				// the event's user as slack.User, as users.info answers it.
				var changed slack.User
				b, _ := json.Marshal(raw["user"])
				_ = json.Unmarshal(b, &changed)
				if _, ok := ev.InnerEvent.Data.(*slackevents.UserChangeEvent); !ok || changed.ID != tc.id || !tc.verify(&changed) {
					t.Fatalf("event = %s %s", ev.InnerEvent.Type, b)
				}
				info, err := clientFor(e, mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token).GetUserInfoContext(context.Background(), tc.id)
				if err != nil || !tc.verify(info) || info.Updated < 1 {
					t.Errorf("users.info = %+v, %v", info, err)
				}
			})
		}
	}
}

func TestDeactivateAndReactivate(t *testing.T) {
	e := startSeeded(t)
	in := startIngress(t, e, nil)
	ctx := context.Background()
	api := clientFor(e, mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token)
	members := func() []string {
		m, err := api.GetUserGroupMembersContext(ctx, "S0EMEA")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	steps := []struct {
		name        string
		do          func() error
		wantDeleted bool
		wantEvent   bool
		wantMembers []string
	}{
		{name: "deactivate", do: func() error {
			d, err := e.DeactivateUser("W0BOB")
			if err == nil && d.Status != http.StatusOK {
				err = fmt.Errorf("delivery %+v", d)
			}
			return err
		}, wantDeleted: true, wantEvent: true, wantMembers: []string{"W0ADA"}},
		{name: "reactivate", do: func() error { return e.ReactivateUser("W0BOB") }, wantEvent: true, wantMembers: []string{"W0ADA", "W0BOB"}},
		{name: "reactivate an active user changes nothing", do: func() error { return e.ReactivateUser("W0BOB") }, wantMembers: []string{"W0ADA", "W0BOB"}},
		{name: "deactivate over HTTP", do: func() error { return ctl(t, e, "/_emulator/users/W0BOB/deactivate", nil, nil) },
			wantDeleted: true, wantEvent: true, wantMembers: []string{"W0ADA"}},
		{name: "reactivate over HTTP", do: func() error { return ctl(t, e, "/_emulator/users/W0BOB/reactivate", nil, nil) },
			wantEvent: true, wantMembers: []string{"W0ADA", "W0BOB"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := len(in.all())
			if err := s.do(); err != nil {
				t.Fatal(err)
			}
			if got := len(in.all()) - before; got != map[bool]int{true: 1, false: 0}[s.wantEvent] {
				t.Fatalf("%d events delivered, want event %v", got, s.wantEvent)
			}
			if s.wantEvent {
				ev, _ := lastEvent(t, in)
				uc, ok := ev.InnerEvent.Data.(*slackevents.UserChangeEvent)
				if !ok || uc.User.ID != "W0BOB" || uc.User.Deleted != s.wantDeleted {
					t.Errorf("event = %+v, want user_change of W0BOB deleted=%v", ev.InnerEvent.Data, s.wantDeleted)
				}
			}
			u, err := api.GetUserInfoContext(ctx, "W0BOB")
			if err != nil || u.Deleted != s.wantDeleted {
				t.Errorf("users.info W0BOB deleted = %v (%v), want %v", u.Deleted, err, s.wantDeleted)
			}
			if got := members(); !slices.Equal(got, s.wantMembers) {
				t.Errorf("S0EMEA members = %v, want %v", got, s.wantMembers)
			}
		})
	}
}

func TestGroupChangesDeliverEvents(t *testing.T) {
	for _, v := range vias {
		t.Run(v.name, func(t *testing.T) {
			e := startSeeded(t)
			in := startIngress(t, e, nil)
			ctx := context.Background()
			api := clientFor(e, mint(t, e, TokenRequest{TeamID: "T0EMEA"}).Token)

			// Create a group with one member.
			var gid string
			if v.http {
				var out struct {
					ID string `json:"id"`
				}
				if err := ctl(t, e, "/_emulator/usergroups", map[string]any{"team_id": "T0EMEA", "name": "On call", "users": []string{"W0BOB"}}, &out); err != nil {
					t.Fatal(err)
				}
				gid = out.ID
			} else {
				var err error
				if gid, err = e.CreateGroup("T0EMEA", "On call", "", []string{"W0BOB"}); err != nil {
					t.Fatal(err)
				}
			}
			ev, _ := lastEvent(t, in)
			created, ok := ev.InnerEvent.Data.(*slackevents.SubteamCreatedEvent)
			if !ok || created.Subteam.ID != gid || created.Subteam.Handle != "on-call" || created.Subteam.UserCount != 1 || created.Subteam.TeamID != "T0EMEA" {
				t.Fatalf("event = %s %+v", ev.InnerEvent.Type, ev.InnerEvent.Data)
			}
			dateCreate := created.Subteam.DateUpdate

			setMembers := func(add, remove []string) error {
				if v.http {
					return ctl(t, e, "/_emulator/usergroups/"+gid+"/members", map[string]any{"add": add, "remove": remove}, nil)
				}
				return e.SetGroupMembers(gid, add, remove)
			}
			setDisabled := func(disabled bool) error {
				if v.http {
					return ctl(t, e, "/_emulator/usergroups/"+gid+"/"+map[bool]string{true: "disable", false: "enable"}[disabled], nil, nil)
				}
				return e.SetGroupDisabled(gid, disabled)
			}

			// Add the shared Grid user and W0GONE, remove W0BOB.
			if err := setMembers([]string{"W0ADA", "W0BOB"}, nil); err != nil {
				t.Fatal(err)
			}
			ev, raw := lastEvent(t, in)
			mc, ok := ev.InnerEvent.Data.(*slackevents.SubteamMembersChangedEvent)
			if !ok || mc.SubteamID != gid || mc.TeamID != "T0EMEA" || !slices.Equal(mc.AddedUsers, []string{"W0ADA"}) || mc.AddedUsersCount != 1 ||
				len(mc.RemovedUsers) != 0 || mc.RemovedUsersCount != 0 || int64(mc.DatePreviousUpdate) != dateCreate || mc.DateUpdate < dateCreate {
				t.Fatalf("event = %s %+v (W0BOB was a member already)", ev.InnerEvent.Type, ev.InnerEvent.Data)
			}
			if _, isList := raw["removed_users"].([]any); !isList {
				t.Errorf("removed_users = %v, want [] (Slack sends both lists)", raw["removed_users"])
			}
			prev := mc.DateUpdate
			if err := setMembers(nil, []string{"W0BOB"}); err != nil {
				t.Fatal(err)
			}
			ev, _ = lastEvent(t, in)
			mc = ev.InnerEvent.Data.(*slackevents.SubteamMembersChangedEvent)
			if !slices.Equal(mc.RemovedUsers, []string{"W0BOB"}) || len(mc.AddedUsers) != 0 || int64(mc.DatePreviousUpdate) != prev {
				t.Errorf("event = %+v", mc)
			}
			before := len(in.all())
			if err := setMembers(nil, []string{"W0BOB"}); err != nil || len(in.all()) != before {
				t.Errorf("removing a non-member: %v, %d events (want none)", err, len(in.all())-before)
			}
			if m, err := api.GetUserGroupMembersContext(ctx, gid); err != nil || !slices.Equal(m, []string{"W0ADA"}) {
				t.Errorf("members = %v, %v", m, err)
			}

			// Disable, then enable.
			for _, disabled := range []bool{true, false} {
				if err := setDisabled(disabled); err != nil {
					t.Fatal(err)
				}
				ev, _ = lastEvent(t, in)
				up, ok := ev.InnerEvent.Data.(*slackevents.SubteamUpdatedEvent)
				if !ok || up.Subteam.ID != gid || (up.Subteam.DateDelete != 0) != disabled || !slices.Equal(up.Subteam.Users, []string{"W0ADA"}) {
					t.Fatalf("disabled=%v: event = %s %+v", disabled, ev.InnerEvent.Type, ev.InnerEvent.Data)
				}
				listed, err := api.GetUserGroupsContext(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(listed, func(g slack.UserGroup) bool { return g.ID == gid }) == disabled {
					t.Errorf("disabled=%v: usergroups.list lists it: %v", disabled, !disabled)
				}
				all, _ := api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeDisabled(true))
				i := slices.IndexFunc(all, func(g slack.UserGroup) bool { return g.ID == gid })
				if i < 0 || (all[i].DateDelete != 0) != disabled {
					t.Errorf("disabled=%v: include_disabled lists %+v", disabled, all)
				}
				before := len(in.all())
				if err := setDisabled(disabled); err != nil || len(in.all()) != before {
					t.Errorf("disabled=%v twice: %v, %d events (want none)", disabled, err, len(in.all())-before)
				}
			}
		})
	}
}

func TestWorldChangeErrors(t *testing.T) {
	e := startSeeded(t)
	empty := UserChange{}
	tests := []struct {
		name       string
		do         func() error
		path       string
		body       any
		wantErr    error // nil: any error
		wantStatus int
	}{
		{name: "user in unknown team", do: func() error { _, err := e.CreateUser(NewUser{TeamID: "T0NOPE"}); return err },
			path: "/_emulator/users", body: NewUser{TeamID: "T0NOPE"}, wantErr: ErrUnknownTeam, wantStatus: 404},
		{name: "standalone user in a Grid workspace", do: func() error { _, err := e.CreateUser(NewUser{TeamID: "T0SOLO", TeamIDs: []string{"T0HQ"}}); return err },
			path: "/_emulator/users", body: NewUser{TeamID: "T0SOLO", TeamIDs: []string{"T0HQ"}}, wantStatus: 400},
		{name: "name taken in the Grid org", do: func() error { _, err := e.CreateUser(NewUser{TeamID: "T0EMEA", Name: "ada"}); return err },
			path: "/_emulator/users", body: NewUser{TeamID: "T0EMEA", Name: "ada"}, wantErr: ErrTaken, wantStatus: 409},
		{name: "update unknown user", do: func() error { s := "x"; return e.UpdateUser("W0NOPE", UserChange{Title: &s}) },
			path: "/_emulator/users/W0NOPE", body: map[string]string{"title": "x"}, wantErr: ErrUnknownUser, wantStatus: 404},
		{name: "empty change", do: func() error { return e.UpdateUser("W0BOB", empty) },
			path: "/_emulator/users/W0BOB", body: map[string]string{}, wantStatus: 400},
		{name: "reactivate unknown user", do: func() error { return e.ReactivateUser("W0NOPE") },
			path: "/_emulator/users/W0NOPE/reactivate", wantErr: ErrUnknownUser, wantStatus: 404},
		{name: "members of unknown group", do: func() error { return e.SetGroupMembers("S0NOPE", []string{"W0BOB"}, nil) },
			path: "/_emulator/usergroups/S0NOPE/members", body: map[string]any{"add": []string{"W0BOB"}}, wantErr: ErrUnknownGroup, wantStatus: 404},
		{name: "member of another workspace", do: func() error { return e.SetGroupMembers("S0HQ", []string{"W0BOB"}, nil) },
			path: "/_emulator/usergroups/S0HQ/members", body: map[string]any{"add": []string{"W0BOB"}}, wantErr: ErrUnknownUser, wantStatus: 404},
		{name: "added and removed", do: func() error { return e.SetGroupMembers("S0EMEA", []string{"W0BOB"}, []string{"W0BOB"}) },
			path: "/_emulator/usergroups/S0EMEA/members", body: map[string]any{"add": []string{"W0BOB"}, "remove": []string{"W0BOB"}}, wantStatus: 400},
		{name: "disable unknown group", do: func() error { return e.SetGroupDisabled("S0NOPE", true) },
			path: "/_emulator/usergroups/S0NOPE/disable", wantErr: ErrUnknownGroup, wantStatus: 404},
		{name: "group handle taken", do: func() error { _, err := e.CreateGroup("T0EMEA", "Other", "emea-people", nil); return err },
			path: "/_emulator/usergroups", body: map[string]any{"team_id": "T0EMEA", "name": "Other", "handle": "emea-people"}, wantErr: ErrTaken, wantStatus: 409},
		{name: "group without name", do: func() error { _, err := e.CreateGroup("T0EMEA", " ", "", nil); return err },
			path: "/_emulator/usergroups", body: map[string]any{"team_id": "T0EMEA"}, wantStatus: 400},
	}
	before := e.World()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("Go: err = %v, want %v", err, tc.wantErr)
			}
			var out map[string]any
			if status := control(t, e, http.MethodPost, tc.path, tc.body, &out); status != tc.wantStatus || out["error"] == "" {
				t.Errorf("HTTP: %d %v, want %d with an error", status, out, tc.wantStatus)
			}
		})
	}
	after := e.World()
	if b1, b2 := fmt.Sprint(before), fmt.Sprint(after); b1 != b2 {
		t.Errorf("refused changes changed the world:\n%s\n%s", b1, b2)
	}
}

// TestWorldChangesWithoutIngress: with no ingress URL the world changes and
// no error is returned.
func TestWorldChangesWithoutIngress(t *testing.T) {
	e := startSeeded(t)
	id, err := e.CreateUser(NewUser{TeamID: "T0SOLO", Email: "new@solo.example"})
	if err != nil {
		t.Fatal(err)
	}
	title := "Boss"
	for _, err := range []error{
		e.UpdateUser(id, UserChange{Title: &title}),
		e.SetGroupMembers("S0EMEA", nil, []string{"W0BOB"}),
		e.SetGroupDisabled("S0EMEA", true),
	} {
		if err != nil {
			t.Error(err)
		}
	}
	if d, err := e.DeactivateUser(id); err != nil || d.Error != ErrNoIngress.Error() {
		t.Errorf("DeactivateUser = %+v, %v", d, err)
	}
	if err := e.ReactivateUser(id); err != nil {
		t.Error(err)
	}
	u, err := clientFor(e, mint(t, e, TokenRequest{TeamID: "T0SOLO"}).Token).GetUserInfoContext(context.Background(), id)
	if err != nil || u.Profile.Title != "Boss" || u.Deleted {
		t.Errorf("users.info = %+v, %v", u, err)
	}
}

// TestWorldChangeDeliveryRefused: when the ingress refuses the event the
// change still happened, the error says so, and Slack retries.
func TestWorldChangeDeliveryRefused(t *testing.T) {
	e := StartTest(t, Config{SeedFile: writeSeed(t, gridSeed), TimeScale: 10000})
	in := startIngress(t, e, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	err := e.SetGroupMembers("S0EMEA", nil, []string{"W0BOB"})
	var de *DeliveryError
	if !errors.Is(err, ErrDeliveryFailed) || !errors.As(err, &de) || de.Event != "subteam_members_changed" || de.Delivery.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want a DeliveryError for the 503", err)
	}
	if e.World().Workspaces[1].Groups[0].Users != 1 {
		t.Errorf("the change did not happen: %+v", e.World().Workspaces[1].Groups)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(in.all()) >= 2 }, "Slack's retry of the refused event")
	if r := in.all()[1]; r.header.Get("X-Slack-Retry-Num") != "1" {
		t.Errorf("retry headers = %v", r.header)
	}
}

// TestWorldChangesConcurrent: changes and reads in parallel are safe (run with -race).
func TestWorldChangesConcurrent(t *testing.T) {
	e := startSeeded(t)
	startIngress(t, e, nil)
	api := clientFor(e, mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			id, err := e.CreateUser(NewUser{TeamID: "T0EMEA", TeamIDs: []string{"T0HQ"}, Email: fmt.Sprintf("p%d@grid.example", i)})
			if err == nil {
				err = e.SetGroupMembers("S0EMEA", []string{id}, nil)
			}
			if err == nil {
				_, err = e.DeactivateUser(id)
			}
			if err == nil {
				_, err = api.GetUsersContext(context.Background(), slack.GetUsersOptionTeamID("T0HQ"), slack.GetUsersOptionLimit(2))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	w := e.World()
	for _, ws := range w.Workspaces {
		if ws.ID == "T0HQ" && len(ws.Shared) != 8 {
			t.Errorf("T0HQ shares %d users, want 8", len(ws.Shared))
		}
	}
}

// TestUserScopeOAuth: an install asking only for user scopes answers with
// authed_user's token (no bot token), and that token reads users with emails
// and user groups: on its workspace, or org-wide (team_id per workspace) for
// an org-wide install.
func TestUserScopeOAuth(t *testing.T) {
	e := startSeeded(t)
	ctx := context.Background()
	opt := slack.OAuthOptionAPIURL(e.APIURL())
	const redirect = "https://app.example.com/slack/oauth/callback"
	const userScopes = "users:read,users:read.email,usergroups:read"

	tests := []struct {
		name    string
		query   url.Values
		wantID  string
		teamArg string // users.list needs team_id (org-wide token)
		list    []string
	}{
		{name: "workspace admin", query: url.Values{"team": {"T0EMEA"}, "user": {"W0ADA"}},
			wantID: "W0ADA", list: []string{"W0BOB", "W0GONE", "W0ADA"}},
		{name: "org-wide install", query: url.Values{"enterprise": {"E0GRID"}, "user": {"W0BOB"}},
			wantID: "W0BOB", teamArg: "T0HQ", list: []string{"W0ADA", "W0APP"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.query.Set("user_scope", userScopes)
			code := authorize(t, e, tc.query).Get("code")
			resp, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), code, redirect, opt)
			if err != nil {
				t.Fatal(err)
			}
			au := resp.AuthedUser
			if resp.AccessToken != "" || resp.BotUserID != "" || au.ID != tc.wantID || au.TokenType != "user" || au.Scope != userScopes ||
				!strings.HasPrefix(au.AccessToken, "xoxe.xoxp-") {
				t.Fatalf("oauth.v2.access = %+v", resp)
			}
			api := clientFor(e, au.AccessToken)
			if tc.teamArg != "" {
				if _, err := api.GetUsersContext(ctx); slackErrCode(err) != "missing_argument" {
					t.Errorf("org-wide user token without team_id: %v, want missing_argument", err)
				}
			}
			users, err := api.GetUsersContext(ctx, slack.GetUsersOptionTeamID(tc.teamArg))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.ID)
				if u.Profile.Email == "" && !u.IsAppUser {
					t.Errorf("user %s without email under users:read.email", u.ID)
				}
			}
			if !slices.Equal(got, tc.list) {
				t.Errorf("users.list = %v, want %v", got, tc.list)
			}
			me, err := api.GetUserInfoContext(ctx, tc.wantID)
			if err != nil || me.IsAdmin != (tc.wantID == "W0ADA") || me.IsOwner || me.IsPrimaryOwner {
				t.Errorf("users.info %s = admin %v owner %v primary %v, %v", tc.wantID, me.IsAdmin, me.IsOwner, me.IsPrimaryOwner, err)
			}
			groups, err := api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeUsers(true))
			if err != nil || len(groups) == 0 {
				t.Fatalf("usergroups.list = %v, %v", groups, err)
			}
			if m, err := api.GetUserGroupMembersContext(ctx, groups[0].ID); err != nil || !slices.Equal(m, groups[0].Users) {
				t.Errorf("usergroups.users.list %s = %v, %v; usergroups.list says %v", groups[0].ID, m, err, groups[0].Users)
			}
		})
	}

	t.Run("user scopes are enforced", func(t *testing.T) {
		code := authorize(t, e, url.Values{"team": {"T0SOLO"}, "user": {"U0SOLO"}, "user_scope": {"users:read"}}).Get("code")
		resp, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, e.ClientID(), e.ClientSecret(), code, redirect, opt)
		if err != nil {
			t.Fatal(err)
		}
		api := clientFor(e, resp.AuthedUser.AccessToken)
		if _, err := api.GetUserGroupsContext(ctx); slackErrCode(err) != "missing_scope" {
			t.Errorf("usergroups.list without usergroups:read: %v, want missing_scope", err)
		}
		if u, err := api.GetUserInfoContext(ctx, "U0SOLO"); err != nil || u.Profile.Email != "" {
			t.Errorf("users.info without users:read.email: email %q, %v", u.Profile.Email, err)
		}
	})

	for _, tc := range []struct {
		name  string
		query url.Values
	}{
		{name: "unknown user", query: url.Values{"team": {"T0HQ"}, "user": {"W0NOPE"}}},
		{name: "user of another workspace", query: url.Values{"team": {"T0HQ"}, "user": {"U0SOLO"}}},
		{name: "deactivated user", query: url.Values{"team": {"T0EMEA"}, "user": {"W0GONE"}}},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			tc.query.Set("user_scope", userScopes)
			if q := authorize(t, e, tc.query); q.Get("error") != "access_denied" || q.Get("code") != "" {
				t.Errorf("authorize = %v, want error=access_denied", q)
			}
		})
	}
}
