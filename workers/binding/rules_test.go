package binding_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/ops"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
)

func TestDeleteAndReconnectSameUser(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	e.mustConnect(team, users[1], "bob@acme.example")
	old := e.mapped(team, users[1])

	// The user deletes their own mapping with the App Home button.
	before := len(e.slack.Messages(team, users[1]))
	if _, err := e.slack.DeliverInteraction(team, users[1], map[string]any{
		"actions": []map[string]any{{"action_id": binding.ActionDeleteMapping, "value": old.ID}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		for _, m := range e.slack.Messages(team, users[1])[before:] {
			if m.Source == "response_url" && strings.Contains(m.Text, "Mapping deleted") {
				return true
			}
		}
		return false
	}, "no 'Mapping deleted' answer")
	if e.mapped(team, users[1]) != nil {
		t.Fatal("mapping still there")
	}
	// Reconnecting with another org user is refused, naming the rule and the user.
	code, page := e.connect(team, users[1], "carol@acme.example")
	if code == http.StatusOK || !strings.Contains(page, "log in as bob@acme.example") || !strings.Contains(page, "Deleting a mapping keeps that association") {
		t.Fatalf("reconnect as carol: %d %s", code, page)
	}
	e.mustConnect(team, users[1], "bob@acme.example")
	if m := e.mapped(team, users[1]); m == nil || m.ID == old.ID {
		t.Fatalf("reconnect must create a new mapping record: %+v (old %s)", m, old.ID)
	}
}

func TestDeactivateAndRemap(t *testing.T) {
	tests := []struct {
		name       string
		deactivate func(e *env, team, slackUser string)
	}{
		{name: "Slack side: user_change deleted=true", deactivate: func(e *env, team, u string) {
			if _, err := e.slack.DeactivateUser(u); err != nil {
				e.t.Fatal(err)
			}
			testenv.Eventually(e.t, 20*time.Second, func() bool { return e.mapped(team, u) == nil }, "mapping not revoked")
		}},
		{name: "org side: org.user.deactivated", deactivate: func(e *env, team, u string) {
			m := e.mapped(team, u)
			if _, err := events.NewPublisher(e.nats.JS).Publish(e.ctx, events.OrgUserDeactivatedSubject(acme), "hr-1",
				events.OrgUserDeactivated{SchemaVersion: 1, OrgID: acme, OrgUserID: m.OrgUserID}); err != nil {
				e.t.Fatal(err)
			}
			testenv.Eventually(e.t, 20*time.Second, func() bool { return e.mapped(team, u) == nil }, "mapping not revoked")
		}},
		{name: "org side: refresh refused for a deactivated user", deactivate: func(e *env, team, u string) {
			if err := e.org.DeactivateUser(acme, "bob@acme.example"); err != nil {
				e.t.Fatal(err)
			}
			if m := e.command(team, u, "/orgbridge", "whoami"); !strings.Contains(m.Text, "no longer active") {
				e.t.Fatalf("answer after org deactivation = %q", m.Text)
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
			tt.deactivate(e, team, users[1])
			if _, err := e.mappings.Association(e.ctx, team, acme, users[1]); err == nil {
				t.Fatal("association survived full revocation")
			}
			if e.boundOrg(team) != acme {
				t.Fatal("revoking a user touched the binding")
			}
			// Bob's org user is free: another Slack user may take it (Slack side),
			// and the Slack user may map to another org user.
			if tt.name[0] == 'S' {
				e.mustConnect(team, users[2], "bob@acme.example")
			} else {
				e.mustConnect(team, users[1], "carol@acme.example")
			}
		})
	}
}

func TestOrgExpiryThenNewOrg(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "admin@scratch.acme.example")
	if err := e.org.ExpireOrg(scratch); err != nil {
		t.Fatal(err)
	}
	m := e.command(team, users[0], "/orgbridge", "status")
	if !strings.Contains(m.Text, "expired or is no longer valid") {
		t.Fatalf("after expiry: %q", m.Text)
	}
	if b, _ := e.bindings.Get(e.ctx, team); b == nil || b.Valid {
		t.Fatalf("binding = %+v, want invalid", b)
	}
	code, page := e.login(connectURL(t, m), "hank@globex.example")
	if code != http.StatusOK || e.boundOrg(team) != globex {
		t.Fatalf("new org: %d %s bound=%s", code, page, e.boundOrg(team))
	}
}

func TestReconnectSameOrgNeedsSameUser(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	// The org refuses the workspace's tokens (its connecting user is inactive):
	// the binding becomes invalid.
	_ = e.org.DeactivateUser(acme, "alice@acme.example")
	if m := e.command(team, users[0], "/orgbridge", "status"); !strings.Contains(m.Text, "no longer valid") {
		t.Fatalf("status = %q", m.Text)
	}
	_ = e.org.ActivateUser(acme, "alice@acme.example")
	code, page := e.connect(team, users[1], "bob@acme.example")
	if code == http.StatusOK || !strings.Contains(page, "was connected to") || !strings.Contains(page, "log in as alice@acme.example") {
		t.Fatalf("reconnect with another user: %d %s", code, page)
	}
	e.mustConnect(team, users[0], "alice@acme.example")
	if e.boundOrg(team) != acme {
		t.Fatal("not bound again")
	}
}

func TestUninstallThenReinstallToNewOrg(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	in, _ := e.installs.Find(e.ctx, e.slack.AppID(), "", team)
	if err := e.binding.Disconnect(e.ctx, in); err != nil { // apps.uninstall: Slack sends both events
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		b, _ := e.bindings.Get(e.ctx, team)
		list, _ := e.installs.List(e.ctx)
		return b == nil && len(list) == 0 && e.mapped(team, users[0]) == nil
	}, "uninstall did not clear install, binding and mappings")
	if _, err := e.mappings.Association(e.ctx, team, acme, users[0]); err == nil {
		t.Fatal("association survived uninstall")
	}
	// Both of Slack's signals (app_uninstalled, tokens_revoked) are handled
	// before the reinstall: one arriving seconds after it would be taken for
	// an uninstall of the new installation (the clock-skew allowance).
	testenv.Eventually(t, 20*time.Second, func() bool {
		st, err := e.nats.JS.Stream(e.ctx, events.StreamSlack)
		if err != nil {
			return false
		}
		info, err := st.Info(e.ctx, jetstream.WithSubjectFilter(events.SlackUninstallSubject(team)))
		if err != nil || info.State.Subjects[events.SlackUninstallSubject(team)] < 2 {
			return false
		}
		c, err := st.Consumer(e.ctx, binding.DurableUninstalls)
		if err != nil {
			return false
		}
		ci, err := c.Info(e.ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	}, "the uninstall signals were not both handled")
	e.install(team)
	e.mustConnect(team, users[0], "hank@globex.example")
	if e.boundOrg(team) != globex {
		t.Fatal("reinstall did not bind the new org")
	}
}

func TestTokenRotationRace(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	e.install(team)
	in, _ := e.installs.Find(e.ctx, e.slack.AppID(), "", team)
	// Two (and more) workers find the token due at the same moment.
	in.TokenExpiresAt = time.Now().Add(time.Minute)
	if err := e.installs.Save(e.ctx, in); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 8)
	refreshed := make(chan bool, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := e.binding.RefreshInstall(context.Background(), in.AppID, in.EnterpriseID, in.TeamID)
			errs <- err
			refreshed <- ok
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	close(refreshed)
	for err := range errs {
		if err != nil {
			t.Fatalf("a refresh failed: %v", err)
		}
	}
	n := 0
	for ok := range refreshed {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d refreshes, want exactly 1", n)
	}
	after, _ := e.installs.Find(e.ctx, e.slack.AppID(), "", team)
	if after.BotToken == in.BotToken || time.Until(after.TokenExpiresAt) < 11*time.Hour {
		t.Fatalf("token not rotated: expires %s", after.TokenExpiresAt)
	}
	// The new refresh token still works: the install is not broken.
	after.TokenExpiresAt = time.Now()
	_ = e.installs.Save(e.ctx, after)
	if ok, err := e.binding.RefreshInstall(e.ctx, in.AppID, in.EnterpriseID, in.TeamID); !ok || err != nil {
		t.Fatalf("second rotation: %v %v", ok, err)
	}
}

func TestReplayOfSlackStreamChangesNothing(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	e.mustConnect(team, users[1], "bob@acme.example")
	if _, err := e.slack.DeactivateUser(users[1]); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return e.mapped(team, users[1]) == nil }, "not revoked")
	e.mustConnect(team, users[2], "bob@acme.example")
	snap := snapshot(e)
	msgs := len(e.slack.Messages("", ""))
	calls := len(e.slack.Calls(""))

	res, err := ops.Replay(e.ctx, e.nats.JS, ops.ReplayConfig{Stream: events.StreamSlack, FromSeq: 1}, nil)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.Published == 0 {
		t.Fatalf("replay published nothing: %+v", res)
	}
	// Wait for every consumer to have handled the copies.
	s, _ := e.nats.JS.Stream(e.ctx, events.StreamSlack)
	testenv.Eventually(t, 20*time.Second, func() bool {
		for c := range s.ListConsumers(e.ctx).Info() {
			if c.NumPending > 0 || c.NumAckPending > 0 {
				return false
			}
		}
		return true
	}, "consumers still busy with the replay")
	if got := snapshot(e); !equalMaps(got, snap) {
		t.Fatalf("replay changed state:\nbefore %v\nafter  %v", snap, got)
	}
	if len(e.slack.Messages("", "")) != msgs || len(e.slack.Calls("")) != calls {
		t.Fatalf("replay talked to Slack: messages %d→%d, calls %d→%d", msgs, len(e.slack.Messages("", "")), calls, len(e.slack.Calls("")))
	}
}

// snapshot is every Redis key but the runtime's own bookkeeping, with its value.
func snapshot(e *env) map[string]string {
	out := map[string]string{}
	for _, k := range e.redis.Client.Keys(e.ctx, "*").Val() {
		if strings.Contains(k, ":bus:processed:") || strings.Contains(k, ":lock:") || strings.Contains(k, ":oauth:") {
			continue
		}
		var v any
		switch e.redis.Client.Type(e.ctx, k).Val() {
		case "string":
			v = e.redis.Client.Get(e.ctx, k).Val()
		case "set":
			m := e.redis.Client.SMembers(e.ctx, k).Val()
			sort.Strings(m)
			v = m
		case "hash":
			v = e.redis.Client.HGetAll(e.ctx, k).Val()
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

var _ = slackemu.Message{}
