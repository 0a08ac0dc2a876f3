package provisioning_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

func ptr[T any](v T) *T { return &v }

// TestPeopleChangeInSlack: changed profiles are patched with each field's
// old → new value in the report, deactivated people are deactivated (never
// deleted), and a reactivated person comes back as the same directory user.
func TestPeopleChangeInSlack(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.sync(w, false)
	frank := e.dirUsers()["frank@acme.example"]

	if err := e.slack.UpdateUser("U0MEMB0002", slackemu.UserChange{Title: ptr("Lead Designer"), ImageOriginal: ptr("https://img.example/grace.png")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.slack.DeactivateUser("U0MEMB0001"); err != nil {
		t.Fatal(err)
	}
	run := e.sync(w, false)
	if run.Status != events.RunPartial { // the email clash of the seed still fails
		t.Fatalf("status %s: %s", run.Status, run.Error)
	}
	users := e.dirUsers()
	if u := users["frank@acme.example"]; u.IsActive() || u.ID != frank.ID {
		t.Fatalf("frank was deactivated in Slack: want the same directory user, inactive: %+v", u)
	}
	if u := users["grace@acme.example"]; u.Title != "Lead Designer" || len(u.Photos) == 0 || u.Photos[0].Value != "https://img.example/grace.png" {
		t.Fatalf("grace's new title and photo are not in the directory: %+v", u)
	}
	rows := e.report(w, run.ID, provisioning.RowFilter{Fields: []string{"title"}})
	if len(rows) != 1 || rows[0].Action != provisioning.ActUpdate || !slices.Contains(rows[0].Changes, provisioning.Change{Field: "title", Old: "Designer", New: "Lead Designer"}) {
		t.Fatalf("report filtered by changed field title: %+v", rows)
	}
	deact := e.report(w, run.ID, provisioning.RowFilter{Actions: []string{provisioning.ActDeactivate}})
	if len(deact) != 1 || deact[0].SlackID != "U0MEMB0001" || deact[0].Outcome != provisioning.OutSucceeded {
		t.Fatalf("deactivation rows: %+v", deact)
	}

	if err := e.slack.ReactivateUser("U0MEMB0001"); err != nil {
		t.Fatal(err)
	}
	run = e.sync(w, false)
	if u := e.dirUsers()["frank@acme.example"]; !u.IsActive() || u.ID != frank.ID {
		t.Fatalf("a reactivated user must come back as the same directory user: %+v (was %s)", u, frank.ID)
	}
	if rows := e.report(w, run.ID, provisioning.RowFilter{Actions: []string{provisioning.ActReactivate}}); len(rows) != 1 {
		t.Fatalf("reactivation rows: %+v", rows)
	}
}

// TestTeams: several Slack groups feed one team, a disabled group
// contributes nobody, members leave when they leave the group, members an
// admin added by hand stay, and switching the mapping off leaves teams alone.
func TestTeams(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.sync(w, false)
	ctx := context.Background()
	dir := e.scim()
	teamA, err := dir.CreateGroup(ctx, &orgapi.Group{DisplayName: "Product"})
	if err != nil {
		t.Fatal(err)
	}
	users := e.dirUsers()
	bob := users["bob@acme.example"]
	if err := dir.PatchGroupMembers(ctx, teamA.ID, []string{bob.ID}, nil); err != nil {
		t.Fatal(err)
	}
	set := provisioning.DefaultSettings()
	set.MapTeams = true
	set.Teams = []provisioning.TeamMapping{{TeamID: teamA.ID, SlackGroups: []string{"S0ENG00001", "S0SALES001", "S0OPS00001"}}}
	in, err := w.SaveSettings(ctx, acme, set)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Pending() || in.Settings.Teams[0].TeamName != "Product" {
		t.Fatalf("saved settings: pending %v, team name %q", in.Pending(), in.Settings.Teams[0].TeamName)
	}
	e.sync(w, false)
	members := func() []string {
		g, err := dir.GetGroup(ctx, teamA.ID)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]string{}
		for n, u := range e.dirUsers() {
			byID[u.ID] = n
		}
		var out []string
		for _, m := range g.Members {
			out = append(out, byID[m.Value])
		}
		slices.Sort(out)
		return out
	}
	want := []string{"alice@acme.example", "bob@acme.example", "frank@acme.example", "grace@acme.example", "henry@acme.example"}
	if got := members(); !slices.Equal(got, want) {
		t.Fatalf("team members %v, want %v (henry through Sales, not the disabled Operations group)", got, want)
	}

	if err := e.slack.SetGroupMembers("S0ENG00001", nil, []string{"U0MEMB0002"}); err != nil {
		t.Fatal(err)
	}
	run := e.sync(w, false)
	want = []string{"alice@acme.example", "bob@acme.example", "frank@acme.example", "henry@acme.example"}
	if got := members(); !slices.Equal(got, want) {
		t.Fatalf("after grace left Engineering: %v, want %v (bob was added by hand and stays)", got, want)
	}
	if rows := e.report(w, run.ID, provisioning.RowFilter{Actions: []string{provisioning.ActRemoveTeam}}); len(rows) != 1 || rows[0].Email != "grace@acme.example" || rows[0].Team != "Product" {
		t.Fatalf("remove-from-team rows: %+v", rows)
	}

	set.MapTeams = false
	if _, err := w.SaveSettings(ctx, acme, set); err != nil {
		t.Fatal(err)
	}
	if err := e.slack.SetGroupMembers("S0SALES001", nil, []string{"U0MEMBER03"}); err != nil {
		t.Fatal(err)
	}
	e.sync(w, false)
	if got := members(); !slices.Equal(got, want) {
		t.Fatalf("with team mapping off, teams are left alone: %v, want %v", got, want)
	}
}

// TestScopeAndDeletionThreshold: narrowing the scope to one group would
// deactivate most people, so the run applies the rest, holds the
// deactivations and waits; reject keeps everyone, approve deactivates them.
func TestScopeAndDeletionThreshold(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.sync(w, false)
	ctx := context.Background()

	set := provisioning.DefaultSettings()
	set.Scope, set.Groups = provisioning.ScopeGroups, []string{"S0SALES001"}
	if _, err := w.SaveSettings(ctx, acme, set); err != nil {
		t.Fatal(err)
	}
	held := e.sync(w, false)
	if held.Status != events.RunAwaitingApproval || held.Held != 4 {
		t.Fatalf("4 of 6 users out of scope is over 20%%: want awaiting approval with 4 held, got %s with %d", held.Status, held.Held)
	}
	_, _, err := w.Report(ctx, acme, held.ID, provisioning.RowFilter{})
	if err != nil {
		t.Fatalf("a run awaiting approval shows its report with the held rows: %v", err)
	}
	if rows := e.report(w, held.ID, provisioning.RowFilter{Actions: []string{provisioning.ActHeld}}); len(rows) != 4 {
		t.Fatalf("held rows: %+v", rows)
	}
	if u := e.dirUsers()["frank@acme.example"]; !u.IsActive() {
		t.Fatal("a held deactivation was applied")
	}
	if _, err := w.StartRun(ctx, acme, events.TriggerSyncNow, "test", false); !errors.Is(err, provisioning.ErrRunInProgress) {
		t.Fatalf("sync now while a run awaits approval: %v, want ErrRunInProgress", err)
	}

	if _, err := w.Decide(ctx, acme, held.ID, false, "test admin"); err != nil {
		t.Fatal(err)
	}
	rejected := e.wait(w, held.ID, func(r *provisioning.Run) bool { return r.Status.Final() })
	frank := e.dirUsers()["frank@acme.example"]
	if rejected.Decision != "rejected" || !frank.IsActive() {
		t.Fatalf("after reject everyone stays active: %+v", rejected)
	}

	held = e.sync(w, false)
	if held.Status != events.RunAwaitingApproval {
		t.Fatalf("the next run holds again: %s", held.Status)
	}
	if _, err := w.Decide(ctx, acme, held.ID, true, "test admin"); err != nil {
		t.Fatal(err)
	}
	approved := e.wait(w, held.ID, func(r *provisioning.Run) bool { return r.Status.Final() })
	if approved.Counts["deactivate:succeeded"] != 4 {
		t.Fatalf("approved run counts %v, want 4 deactivations", approved.Counts)
	}
	users := e.dirUsers()
	for email, active := range map[string]bool{"alice@acme.example": true, "henry@acme.example": true, "frank@acme.example": false,
		"gina@contractor.example": false, "bob@acme.example": true} {
		u := users[email]
		if u.IsActive() != active {
			t.Errorf("%s active = %v, want %v", email, u.IsActive(), active)
		}
	}
	if _, err := w.Decide(ctx, acme, held.ID, true, "again"); !errors.Is(err, provisioning.ErrNothingHeld) {
		t.Fatalf("approving a finished run: %v", err)
	}
}

// TestBadSettingsChangeNothing: each invalid configuration is refused with
// an error naming the field, and the saved settings stay as they were.
func TestBadSettingsChangeNothing(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.connect(w)
	ctx := context.Background()
	before, _ := w.Store().Integration(ctx, acme)
	cases := []struct {
		name  string
		edit  func(s *provisioning.Settings)
		field string
	}{
		{"unknown group", func(s *provisioning.Settings) { s.Scope, s.Groups = provisioning.ScopeGroups, []string{"S0NOPE0001"} }, "groups"},
		{"malformed group", func(s *provisioning.Settings) { s.Scope, s.Groups = provisioning.ScopeGroups, []string{"eng"} }, "groups"},
		{"groups scope without groups", func(s *provisioning.Settings) { s.Scope = provisioning.ScopeGroups }, "groups"},
		{"unknown team", func(s *provisioning.Settings) {
			s.MapTeams, s.Teams = true, []provisioning.TeamMapping{{TeamID: "00G000000009999", SlackGroups: []string{"S0ENG00001"}}}
		}, "teams[0].team_id"},
		{"bad time zone", func(s *provisioning.Settings) { s.TimeZone = "Mars/Olympus" }, "time_zone"},
		{"bad time", func(s *provisioning.Settings) { s.ScheduleTime = "25:00" }, "schedule_time"},
		{"limit out of range", func(s *provisioning.Settings) { s.DeactivationLimit = 0 }, "deactivation_limit"},
		{"percent out of range", func(s *provisioning.Settings) { s.DeactivationPercent = 101 }, "deactivation_percent"},
		{"auto-invite without mail server", func(s *provisioning.Settings) { s.AutoInvite = true }, "auto_invite"},
		{"unknown scope", func(s *provisioning.Settings) { s.Scope = "some" }, "scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := provisioning.DefaultSettings()
			tc.edit(&set)
			_, err := w.SaveSettings(ctx, acme, set)
			var se *provisioning.SettingsError
			if !errors.As(err, &se) || se.Field != tc.field {
				t.Fatalf("error %v, want a settings error on %s", err, tc.field)
			}
			after, _ := w.Store().Integration(ctx, acme)
			if after.Rev != before.Rev || after.SettingsVersion != before.SettingsVersion {
				t.Fatal("a refused configuration changed the integration")
			}
		})
	}
}

// TestDisconnectKeepsData: disconnecting forgets the credentials and stops
// syncing; directory users and history stay.
func TestDisconnectKeepsData(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	run := e.sync(w, false)
	ctx := context.Background()
	n := len(e.dirUsers())
	in, err := w.Disconnect(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if !in.SlackToken.IsZero() || !in.DirectoryToken.IsZero() || !in.SlackRefresh.IsZero() || !in.DirectoryRefresh.IsZero() {
		t.Fatal("disconnect must remove the stored credentials")
	}
	frank := e.dirUsers()["frank@acme.example"]
	if got := len(e.dirUsers()); got != n || !frank.IsActive() {
		t.Fatalf("disconnect removed or deactivated directory users: %d → %d", n, got)
	}
	if _, err := w.StartRun(ctx, acme, events.TriggerSyncNow, "test", false); !errors.Is(err, provisioning.ErrNotActive) {
		t.Fatalf("sync after disconnect: %v", err)
	}
	if rows := e.report(w, run.ID, provisioning.RowFilter{}); len(rows) == 0 {
		t.Fatal("history must stay readable after disconnect")
	}
	// connecting again is allowed and finds the same directory users
	e.connect(w)
	again := e.sync(w, false)
	if again.Counts["create:succeeded"] != 0 || len(e.dirUsers()) != n {
		t.Fatalf("reconnect created users again: %v", again.Counts)
	}
}

// TestReplaceSlackAccount: replacing the source with another workspace
// keeps the directory users; the next sync moves their externalId to their
// new Slack ids (no duplicates), creates the newcomers and holds the
// deactivation of everyone the new source lacks.
func TestReplaceSlackAccount(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.sync(w, false)
	before := e.dirUsers()
	ctx := context.Background()
	req := e.connectRequest(admin2, "alice@acme.example")
	req.Replace = true
	in, err := w.Connect(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Pending() || len(in.PreviousSource) != 1 || in.Source.TeamID != team2 {
		t.Fatalf("replace: %+v", in)
	}
	run := e.sync(w, false)
	if run.Status != events.RunAwaitingApproval || run.Held != 4 {
		t.Fatalf("grace, gina, sam and henry are not in the new workspace: want their deactivation held, got %s, %d held", run.Status, run.Held)
	}
	after := e.dirUsers()
	for _, email := range []string{"alice@acme.example", "frank@acme.example"} {
		if after[email].ID != before[email].ID {
			t.Errorf("%s's directory id changed on replace", email)
		}
	}
	if after["frank@acme.example"].ExternalID != "U1FRANK001" || after["alice@acme.example"].ExternalID != admin2 {
		t.Errorf("externalIds must move to the new Slack ids: frank %q, alice %q", after["frank@acme.example"].ExternalID, after["alice@acme.example"].ExternalID)
	}
	if _, ok := after["nina@acme.example"]; !ok || len(after) != len(before)+1 {
		t.Errorf("the newcomer must be created and nobody else: %d → %d users", len(before), len(after))
	}
	rows := e.report(w, run.ID, provisioning.RowFilter{Fields: []string{"externalId"}})
	if len(rows) != 2 {
		t.Errorf("report rows changing externalId: %+v", rows)
	}
}

// TestKilledRunResumes: a worker stopped mid-run leaves a checkpoint; the
// next replica resumes it from there and nobody is created twice.
func TestKilledRunResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := e.worker(provisioning.Config{PageSize: 2})
	stopped := make(chan struct{})
	var once bool
	provisioning.SetAfterPage(first, func(ctx context.Context, r *provisioning.Run) error {
		if r.Pages == 2 && !once {
			once = true
			close(stopped)
			<-ctx.Done() // the worker dies here, mid-run
			return ctx.Err()
		}
		return nil
	})
	stop := e.start(first)
	e.connect(first)
	run, err := first.StartRun(ctx, acme, events.TriggerSyncNow, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	<-stopped
	stop()
	mid, _ := first.Store().Run(ctx, acme, run.ID)
	if mid.Status != events.RunRunning || mid.Pages != 2 {
		t.Fatalf("after the kill the run is running at its checkpoint: %+v", mid)
	}
	second := e.worker(provisioning.Config{PageSize: 2})
	e.start(second)
	done := e.wait(second, run.ID, func(r *provisioning.Run) bool { return r.Status.Final() })
	if done.Resumes != 1 || done.Status != events.RunPartial {
		t.Fatalf("resumed run: %+v", done)
	}
	seen := map[string]int{}
	for _, u := range e.dirUsers() {
		if u.ExternalID != "" {
			seen[u.ExternalID]++
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("Slack user %s has %d directory users", id, n)
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d Slack users provisioned after the resume, want 6", len(seen))
	}
}

// TestQuarantineAndResume: a directory that keeps failing quarantines the
// integration with its reason; an admin's resume runs it again.
func TestQuarantineAndResume(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.faults.set(true)
	run := e.sync(w, false)
	if run.Error == "" || !strings.Contains(run.Error, "most directory writes failed") {
		t.Fatalf("a run whose writes all fail says so: %+v", run)
	}
	ctx := context.Background()
	in, _ := w.Store().Integration(ctx, acme)
	if in.Quarantine == nil || !strings.Contains(in.Quarantine.Reason, "directory") || !in.Quarantine.NextRetry.After(time.Now()) {
		t.Fatalf("the integration must be quarantined with its reason and a retry time: %+v", in.Quarantine)
	}
	failed := e.report(w, run.ID, provisioning.RowFilter{Outcomes: []string{provisioning.OutFailed}})
	if len(failed) < 5 || !strings.Contains(failed[0].Details, "503") {
		t.Fatalf("failed rows must say what the directory answered: %+v", failed)
	}
	e.faults.set(false)
	resumed, err := w.Resume(ctx, acme, "test admin")
	if err != nil {
		t.Fatal(err)
	}
	done := e.wait(w, resumed.ID, func(r *provisioning.Run) bool { return r.Status.Final() })
	in, _ = w.Store().Integration(ctx, acme)
	if done.Status != events.RunPartial || in.Quarantine != nil || in.ConsecutiveFailures != 0 {
		t.Fatalf("after resume: run %s, quarantine %+v", done.Status, in.Quarantine)
	}
}

// TestScheduleOncePerSlot: two replicas ticking at the same moment start one
// run for the day's slot; the next tick starts nothing more.
func TestScheduleOncePerSlot(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := e.worker(provisioning.Config{Now: clock, WorkerID: "a"})
	b := e.worker(provisioning.Config{Now: clock, WorkerID: "b"})
	e.start(a)
	e.start(b)
	ctx := context.Background()
	e.connect(a)
	set := provisioning.DefaultSettings()
	set.ScheduleTime, set.TimeZone = "10:30", "Europe/Paris" // 09:30 UTC in winter
	if _, err := a.SaveSettings(ctx, acme, set); err != nil {
		t.Fatal(err)
	}
	tick := func() {
		errs := make(chan error, 2)
		for _, w := range []*provisioning.Worker{a, b} {
			go func() { errs <- w.Tick(ctx) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	tick()
	if runs, _ := a.Store().Runs(ctx, acme, 10); len(runs) != 0 {
		t.Fatalf("nothing is due before 10:30 Paris: %d runs", len(runs))
	}
	now = time.Date(2026, 11, 30, 9, 31, 0, 0, time.UTC)
	tick()
	tick()
	var runs []*provisioning.Run
	testenv.Eventually(t, 10*time.Second, func() bool {
		runs, _ = a.Store().Runs(ctx, acme, 10)
		return len(runs) == 1 && runs[0].Status.Final()
	}, "one scheduled run, finished")
	if runs[0].Trigger != events.TriggerSchedule {
		t.Fatalf("trigger %s", runs[0].Trigger)
	}
	// three days later after an outage: the missed days run once
	now = now.Add(72 * time.Hour)
	tick()
	testenv.Eventually(t, 10*time.Second, func() bool {
		runs, _ = a.Store().Runs(ctx, acme, 10)
		return len(runs) == 2 && runs[0].Status.Final()
	}, "the missed slots run once")
	tick()
	if runs, _ = a.Store().Runs(ctx, acme, 10); len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
}

// TestCaseTwinNeverTakesOver: when the user who holds an email leaves the
// scope, the Slack user whose email differs only by case does not inherit
// their directory user.
func TestCaseTwinNeverTakesOver(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.sync(w, false)
	ctx := context.Background()
	if err := e.slack.SetGroupMembers("S0SALES001", []string{"U0CASE0001"}, nil); err != nil {
		t.Fatal(err)
	}
	set := provisioning.DefaultSettings()
	set.Scope, set.Groups = provisioning.ScopeGroups, []string{"S0SALES001"}
	if _, err := w.SaveSettings(ctx, acme, set); err != nil {
		t.Fatal(err)
	}
	run := e.sync(w, false)
	rows := e.report(w, run.ID, provisioning.RowFilter{Query: "U0CASE0001"})
	if len(rows) != 1 || rows[0].Outcome != provisioning.OutFailed || !strings.Contains(rows[0].Details, "U0MEMB0002") {
		t.Fatalf("the twin's row: %+v", rows)
	}
	if u := e.dirUsers()["grace@acme.example"]; u.ExternalID != "U0MEMB0002" {
		t.Fatalf("grace's directory user was taken over: externalId %q", u.ExternalID)
	}
}
