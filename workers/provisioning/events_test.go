package provisioning_test

import (
	"testing"
	"time"

	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// TestEventsBetweenSyncs: team_join, user_change (a new email, a
// deactivation) and subteam_members_changed, delivered by Slack through the
// ingress, update that one user or team within seconds, without a daily sync.
func TestEventsBetweenSyncs(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.sync(w, false)
	e.deliverEvents()

	find := func(cond func(map[string]orgapi.User) bool, msg string) {
		t.Helper()
		testenv.Eventually(t, 15*time.Second, func() bool { return cond(e.dirUsers()) }, msg)
	}
	id, err := e.slack.CreateUser(slackemu.NewUser{TeamID: team, Name: "ivan", FirstName: "Ivan", LastName: "Ives", Email: "ivan@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	find(func(us map[string]orgapi.User) bool {
		u, ok := us["ivan@acme.example"]
		return ok && u.ExternalID == id
	},
		"team_join: the new Slack user is provisioned")

	if err := e.slack.UpdateUser("U0MEMBER03", slackemu.UserChange{Email: ptr("henry.hill@acme.example")}); err != nil {
		t.Fatal(err)
	}
	find(func(us map[string]orgapi.User) bool {
		u, ok := us["henry.hill@acme.example"]
		return ok && u.ExternalID == "U0MEMBER03"
	},
		"user_change: the new email reaches the directory user")

	// a burst of profile edits: gathered into few runs, every edit applied
	burst := map[string]string{"U0MEMB0001": "frank@acme.example", slackRoot: "alice@acme.example", "U0GUEST001": "gina@contractor.example", "U0GUEST002": "sam@temp.example"}
	for id := range burst {
		if err := e.slack.UpdateUser(id, slackemu.UserChange{Title: ptr("Burst " + id)}); err != nil {
			t.Fatal(err)
		}
	}
	find(func(us map[string]orgapi.User) bool {
		for id, email := range burst {
			if us[email].Title != "Burst "+id {
				return false
			}
		}
		return true
	}, "a burst of user_change events: every new title reaches the directory")

	if _, err := e.slack.DeactivateUser("U0MEMB0002"); err != nil {
		t.Fatal(err)
	}
	find(func(us map[string]orgapi.User) bool { u := us["grace@acme.example"]; return !u.IsActive() },
		"user_change with deleted: the user is deactivated")
}
