package provisioning_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// TestFirstSyncAndNoChangeSync plays the seed's story: connect, a preview
// that writes nothing, Sync now that provisions people (guests included,
// never bots, app users or deleted users), matches an existing directory
// user by email, explains every user it cannot provision, and leaves
// directory users who are not in Slack alone; then a sync with nothing new
// that writes nothing.
func TestFirstSyncAndNoChangeSync(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	in := e.connect(w)
	if !in.Pending() || in.Source.TeamID != team {
		t.Fatalf("a new integration is pending until its first sync, source %s: %+v", team, in)
	}
	before := e.dirUsers()

	writes := e.org.Stats().SCIMWrites
	preview := e.sync(w, true)
	if preview.Status != events.RunPartial || !preview.DryRun { // the email clash shows in a preview too
		t.Fatalf("preview: %+v", preview)
	}
	if got := e.org.Stats().SCIMWrites; got != writes {
		t.Fatalf("a preview wrote %d times to the directory", got-writes)
	}
	planned := e.report(w, preview.ID, provisioning.RowFilter{Actions: []string{provisioning.ActCreate}, Outcomes: []string{provisioning.OutPlanned}})
	if len(planned) != 5 {
		names := []string{}
		for _, r := range planned {
			names = append(names, r.Email)
		}
		t.Fatalf("preview plans to create %v, want frank, grace, gina, sam and henry", names)
	}
	if in2, _ := w.Store().Integration(context.Background(), acme); !in2.Pending() {
		t.Fatal("a preview must not clear the pending state")
	}

	run := e.sync(w, false)
	if run.Status != events.RunPartial {
		t.Fatalf("first sync: status %s (error %q), want succeeded_with_failures (one email clash)", run.Status, run.Error)
	}
	after := e.dirUsers()
	for _, email := range []string{"frank@acme.example", "grace@acme.example", "gina@contractor.example", "sam@temp.example", "henry@acme.example"} {
		u, ok := after[email]
		if !ok {
			t.Fatalf("%s was not provisioned; directory has %d users", email, len(after))
		}
		if !u.IsActive() || u.ExternalID == "" || len(u.Photos) == 0 || u.Name == nil || u.Name.GivenName == "" {
			t.Errorf("%s provisioned without its data: %+v", email, u)
		}
	}
	if u := after["gina@contractor.example"]; u.UserType != "guest" {
		t.Errorf("a multi-channel guest is provisioned as %q, want guest", u.UserType)
	}
	if u := after["sam@temp.example"]; u.UserType != "single_channel_guest" {
		t.Errorf("a single-channel guest is provisioned as %q", u.UserType)
	}
	if u := after["frank@acme.example"]; u.Title != "Engineer" {
		t.Errorf("title %q, want Engineer", u.Title)
	}
	for _, email := range []string{"helper@apps.example", "olga@acme.example"} {
		if _, ok := after[email]; ok {
			t.Errorf("%s (an app user or a user deleted when first seen) was provisioned", email)
		}
	}
	for _, u := range after {
		if strings.Contains(strings.ToLower(u.UserName), "bot") {
			t.Errorf("a bot was provisioned: %s", u.UserName)
		}
	}
	alice := after["alice@acme.example"]
	if alice.ID != before["alice@acme.example"].ID || alice.ExternalID != slackRoot || alice.Title != "CEO" {
		t.Errorf("alice existed before the first sync: she must be linked (same id, externalId %s, title CEO): %+v", slackRoot, alice)
	}
	bob := after["bob@acme.example"]
	if !bob.IsActive() || bob.ExternalID != "" || bob.Meta.Version != before["bob@acme.example"].Meta.Version {
		t.Errorf("bob is not in Slack: orgbridge must leave him untouched: %+v", bob)
	}
	if len(after) != len(before)+5 {
		t.Errorf("directory grew by %d users, want 5", len(after)-len(before))
	}

	failed := e.report(w, run.ID, provisioning.RowFilter{Outcomes: []string{provisioning.OutFailed}})
	if len(failed) != 1 || failed[0].SlackID != "U0CASE0001" || !strings.Contains(failed[0].Details, "U0MEMB0002") {
		t.Fatalf("the user whose email differs only by case must fail naming the other: %+v", failed)
	}
	skipped := e.report(w, run.ID, provisioning.RowFilter{Actions: []string{provisioning.ActSkip}})
	var noMail bool
	for _, r := range skipped {
		noMail = noMail || (r.SlackID == "U0NOMAIL01" && strings.Contains(r.Details, "no email"))
	}
	if !noMail {
		t.Errorf("the user without an email needs a skipped row saying why: %+v", skipped)
	}
	if in2, _ := w.Store().Integration(context.Background(), acme); in2.Pending() {
		t.Error("after a sync the integration is no longer pending")
	}

	// CSV export of the report, safe and complete
	_, rows, err := w.Report(context.Background(), acme, run.ID, provisioning.RowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := provisioning.WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != len(rows)+1 || recs[0][1] != "action" {
		t.Fatalf("CSV: %d records for %d rows (%v)", len(recs), len(rows), err)
	}

	// nothing changed in Slack: no directory write at all
	writes = e.org.Stats().SCIMWrites
	again := e.sync(w, false)
	if got := e.org.Stats().SCIMWrites - writes; got != 0 {
		t.Fatalf("a no-change sync made %d directory writes", got)
	}
	if again.Counts["unchanged"] != 6 {
		t.Errorf("no-change sync counts %v, want 6 unchanged", again.Counts)
	}
	if n := len(e.dirUsers()); n != len(after) {
		t.Errorf("a second sync changed the number of directory users: %d → %d", len(after), n)
	}
}

// TestConnectRules: only an administrator on both sides may connect, and an
// org has one active integration at a time.
func TestConnectRules(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	ctx := context.Background()

	_, err := w.Connect(ctx, e.connectRequest("U0MEMB0001", "alice@acme.example"))
	mustErr(t, err, provisioning.ErrNotSlackAdmin)
	_, err = w.Connect(ctx, e.connectRequest(slackRoot, "bob@acme.example"))
	mustErr(t, err, provisioning.ErrNotOrgAdmin)
	if _, err := w.Store().Integration(ctx, acme); err == nil {
		t.Fatal("a refused connect left an integration behind")
	}

	// two admins connect at once: exactly one wins, the other is told which is active
	reqs := []provisioning.ConnectRequest{e.connectRequest(slackRoot, "alice@acme.example"), e.connectRequest(slackRoot, "alice@acme.example")}
	errs := make(chan error, 2)
	for _, r := range reqs {
		go func() {
			_, err := w.Connect(ctx, r)
			errs <- err
		}()
	}
	var won, refused int
	for range 2 {
		err := <-errs
		switch {
		case err == nil:
			won++
		case strings.Contains(err.Error(), "already has an active") && strings.Contains(err.Error(), "pi-"):
			refused++
		default:
			t.Fatalf("unexpected connect error: %v", err)
		}
	}
	if won != 1 || refused != 1 {
		t.Fatalf("racing connects: %d won, %d refused; want 1 and 1", won, refused)
	}
}
