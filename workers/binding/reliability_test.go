package binding_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// TestConnectRetryDoesNotSpendCodeAgain: the first attempt exchanges the
// single-use code, then finds the workspace lock busy and is retried. The
// retry uses the tokens the first attempt got: the login completes and the
// org saw one token exchange.
func TestConnectRetryDoesNotSpendCodeAgain(t *testing.T) {
	e := startEnv(t, envOpts{lockWait: 200 * time.Millisecond})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	button := connectURL(t, e.command(team, users[0], "/orgbridge", "connect"))

	lock, err := store.NewLocker(e.redis.Client).Obtain(e.ctx, binding.LockKey(team), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	issued := e.org.Stats().TokensIssued
	type res struct {
		code int
		page string
	}
	done := make(chan res, 1)
	go func() { c, p := e.login(button, "alice@acme.example"); done <- res{c, p} }()
	cons, err := e.nats.JS.Consumer(e.ctx, events.StreamOrg, binding.DurableConnects)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		info, err := cons.Info(e.ctx)
		return err == nil && info.Delivered.Consumer >= 2
	}, "the org login was not retried while the lock was held")
	if err := lock.Release(e.ctx); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.code != http.StatusOK || !strings.Contains(got.page, "Connected") {
		t.Fatalf("login page: %d %s", got.code, got.page)
	}
	if e.boundOrg(team) != acme || e.mapped(team, users[0]) == nil {
		t.Fatalf("bound to %q, mapping %+v", e.boundOrg(team), e.mapped(team, users[0]))
	}
	if n := e.org.Stats().TokensIssued - issued; n != 1 {
		t.Fatalf("the org issued tokens %d times, want one exchange", n)
	}
}

// cancelAfterRefresh cancels a context as soon as Slack answered a token
// refresh (a shutdown arriving at the worst moment).
type cancelAfterRefresh struct {
	armed  atomic.Bool
	cancel context.CancelFunc
}

func (c *cancelAfterRefresh) RoundTrip(r *http.Request) (*http.Response, error) {
	var form []byte
	if r.Body != nil {
		form, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(form))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !c.armed.Load() || !strings.Contains(string(form), "grant_type=refresh_token") {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	c.cancel()
	return resp, err
}

// TestRotatedTokensSurviveCancel: Slack rotated the install's tokens (the old
// refresh token is now dead) and the worker's ctx ends right then: the new
// tokens are still stored and work.
func TestRotatedTokensSurviveCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tap := &cancelAfterRefresh{cancel: cancel}
	e := startEnv(t, envOpts{slackHTTP: &http.Client{Transport: tap}})
	team := e.teams()[0]
	e.install(team)
	in, err := e.installs.Find(e.ctx, e.slack.AppID(), "", team)
	if err != nil {
		t.Fatal(err)
	}
	in.TokenExpiresAt = time.Now().Add(time.Minute)
	if err := e.installs.Save(e.ctx, in); err != nil {
		t.Fatal(err)
	}
	tap.armed.Store(true)
	ok, err := e.binding.RefreshInstall(ctx, in.AppID, in.EnterpriseID, in.TeamID)
	if ctx.Err() == nil {
		t.Fatal("the refresh did not reach Slack")
	}
	if !ok || err != nil {
		t.Fatalf("refresh = %v, %v; want the rotated tokens saved", ok, err)
	}
	tap.armed.Store(false)
	after, err := e.installs.Find(e.ctx, e.slack.AppID(), "", team)
	if err != nil {
		t.Fatal(err)
	}
	if after.BotToken == in.BotToken || after.BotRefreshToken == in.BotRefreshToken {
		t.Fatal("the rotated tokens were lost")
	}
	if _, err := slack.New(after.BotToken.Reveal(), slack.OptionAPIURL(e.slack.APIURL())).AuthTestContext(e.ctx); err != nil {
		t.Fatalf("stored bot token: %v", err)
	}
	after.TokenExpiresAt = time.Now()
	if err := e.installs.Save(e.ctx, after); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.binding.RefreshInstall(e.ctx, in.AppID, in.EnterpriseID, in.TeamID); !ok || err != nil {
		t.Fatalf("refreshing with the stored refresh token: %v, %v", ok, err)
	}
}

// TestLateUninstallKeepsReinstall: an app_uninstalled queued during an
// outage and handled after a reinstall (its event_time is older than the
// install) removes nothing.
func TestLateUninstallKeepsReinstall(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	sent := time.Now().Add(-time.Minute) // the uninstall Slack sent before the reinstall
	e.install(team)                      // the reinstall

	body, _ := json.Marshal(map[string]any{"type": "event_callback", "api_app_id": e.slack.AppID(), "team_id": team,
		"event_id": "Ev0LATE", "event_time": sent.Unix(), "event": map[string]any{"type": "app_uninstalled"}})
	msg := nats.NewMsg(events.SlackUninstallSubject(team))
	msg.Data = body
	msg.Header.Set(events.HeaderTeam, team)
	ack, err := e.nats.JS.PublishMsg(e.ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := e.nats.JS.Consumer(e.ctx, events.StreamSlack, binding.DurableUninstalls)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		info, err := cons.Info(e.ctx)
		return err == nil && info.AckFloor.Stream >= ack.Sequence
	}, "the late uninstall was not handled")
	if _, err := e.installs.Find(e.ctx, e.slack.AppID(), "", team); err != nil {
		t.Fatalf("the reinstall was deleted: %v", err)
	}
	if e.boundOrg(team) != acme || e.mapped(team, users[0]) == nil {
		t.Fatalf("binding %q / mapping %+v cleared by a stale uninstall", e.boundOrg(team), e.mapped(team, users[0]))
	}
}

// TestUserRevokedOwnToken: a user's org refresh token stops working (they
// revoked the app, or it expired by policy) while the user stays active: only
// their mapping goes, the association stays (so the reconnect must use the
// same org user), the binding stays valid and the others keep their mappings.
func TestUserRevokedOwnToken(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	e.mustConnect(team, users[1], "bob@acme.example")
	m := e.mapped(team, users[1])
	m.RefreshToken = "5Aep-revoked-by-bob"
	if _, err := e.mappings.Connect(e.ctx, m); err != nil {
		t.Fatal(err)
	}
	answer := e.command(team, users[1], "/orgbridge", "whoami")
	if !strings.Contains(answer.Text, "no longer valid") || !strings.Contains(answer.Text, "bob@acme.example") {
		t.Fatalf("answer = %q", answer.Text)
	}
	if e.mapped(team, users[1]) != nil {
		t.Fatal("the mapping with the dead token is still there")
	}
	if a, err := e.mappings.Association(e.ctx, team, acme, users[1]); err != nil || a.OrgUserID != m.OrgUserID {
		t.Fatalf("association = %+v, %v; want it kept", a, err)
	}
	if b, _ := e.bindings.Get(e.ctx, team); b == nil || !b.Valid {
		t.Fatalf("binding = %+v; one user's dead token must not invalidate it", b)
	}
	if e.mapped(team, users[0]) == nil {
		t.Fatal("another user's mapping went too")
	}
	if code, page := e.connect(team, users[1], "carol@acme.example"); code == http.StatusOK || !strings.Contains(page, "log in as bob@acme.example") {
		t.Fatalf("reconnect as another org user: %d %s", code, page)
	}
	e.mustConnect(team, users[1], "bob@acme.example")
}

// TestRefreshDueReadsOnlyDueInstalls: a refresh round reads the installs due
// and no other (a record it would fail to decode is never read).
func TestRefreshDueReadsOnlyDueInstalls(t *testing.T) {
	e := startEnv(t, envOpts{})
	teams := e.teams()
	e.install(teams[0])
	e.install(teams[1])
	due, err := e.installs.Find(e.ctx, e.slack.AppID(), "", teams[0])
	if err != nil {
		t.Fatal(err)
	}
	due.TokenExpiresAt = time.Now().Add(time.Minute)
	if err := e.installs.Save(e.ctx, due); err != nil {
		t.Fatal(err)
	}
	// The other install (token good for 12 h) cannot even be decoded now.
	if err := e.redis.Client.Set(e.ctx, store.InstallKey(e.slack.AppID(), "", teams[1]), "not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := e.binding.RefreshDue(e.ctx)
	if n != 1 || err != nil {
		t.Fatalf("RefreshDue = %d, %v; want the one due install refreshed and nothing else read", n, err)
	}
}

// TestUserChangeLeavesNoRecord: profile edits (user_change, deleted=false)
// are acked without an idempotency record; a deactivation is recorded.
func TestUserChangeLeavesNoRecord(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	var cons jetstream.Consumer
	testenv.Eventually(t, 20*time.Second, func() bool {
		var err error
		cons, err = e.nats.JS.Consumer(e.ctx, events.StreamSlack, mapping.DurableSlackUsers)
		return err == nil
	}, "the mapping worker's consumer was not created")
	processed := func() int {
		return len(e.redis.Client.Keys(e.ctx, "*:bus:processed:"+mapping.DurableSlackUsers+":*").Val())
	}
	deliver := func(deleted bool) {
		t.Helper()
		d, err := e.slack.DeliverEvent(team, map[string]any{"type": "user_change",
			"user": map[string]any{"id": users[0], "team_id": team, "deleted": deleted, "profile": map[string]any{"title": "new"}}})
		if err != nil || d.Status != http.StatusOK {
			t.Fatalf("deliver: %+v %v", d, err)
		}
		s, _ := e.nats.JS.Stream(e.ctx, events.StreamSlack)
		info, _ := s.Info(e.ctx)
		testenv.Eventually(t, 20*time.Second, func() bool {
			ci, err := cons.Info(e.ctx)
			return err == nil && ci.AckFloor.Stream >= info.State.LastSeq
		}, "user_change not handled")
	}
	deliver(false)
	if n := processed(); n != 0 {
		t.Fatalf("a profile edit left %d processed records", n)
	}
	deliver(true)
	if n := processed(); n != 1 {
		t.Fatalf("a deactivation left %d processed records, want 1", n)
	}
}

// TestImportListsSlackUsersOnce: an import checks Slack users with one
// users.list per workspace, not users.info per row.
func TestImportListsSlackUsersOnce(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")
	lists, infos := len(e.slack.Calls("users.list")), len(e.slack.Calls("users.info"))
	rows := []mapping.ImportRow{
		{Workspace: team, SlackUserID: users[1], OrgID: acme, OrgUserID: "005000000000101"},
		{Workspace: team, SlackUserID: users[2], OrgID: acme, OrgUserID: "005000000000102"},
		{Workspace: team, SlackUserID: "U0NOBODY0", OrgID: acme, OrgUserID: "005000000000103"},
	}
	res := e.mapping.Import(e.ctx, rows)
	want := []string{mapping.ResultOK, mapping.ResultOK, mapping.ResultInvalidSlackUser}
	for i, r := range res {
		if r.Result != want[i] {
			t.Errorf("row %d: %s (%s), want %s", i+1, r.Result, r.Message, want[i])
		}
	}
	if n := len(e.slack.Calls("users.list")) - lists; n != 1 {
		t.Errorf("users.list called %d times, want 1", n)
	}
	if n := len(e.slack.Calls("users.info")) - infos; n != 0 {
		t.Errorf("users.info called %d times, want 0", n)
	}
}
