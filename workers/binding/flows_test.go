package binding_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestInstallAndConnectFlow(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)

	in, err := e.installs.Find(e.ctx, e.slack.AppID(), "", team)
	if err != nil || in.BotToken == "" || in.WebhookChannel == "" || !in.HasScope("chat:write") {
		t.Fatalf("installation = %+v, %v", in, err)
	}

	// First command of an unbound workspace: an ephemeral prompt with a button.
	first := e.command(team, users[0], "/orgbridge", "whoami")
	if first.ResponseType != "ephemeral" || !strings.Contains(first.Text, "isn't connected to an org") {
		t.Fatalf("first command answer = %+v", first)
	}
	code, page := e.login(connectURL(t, first), "alice@acme.example")
	if code != http.StatusOK || !strings.Contains(page, "Connected") {
		t.Fatalf("connect page: %d %s", code, page)
	}
	if e.boundOrg(team) != acme {
		t.Fatalf("workspace bound to %q, want Acme", e.boundOrg(team))
	}
	if m := e.mapped(team, users[0]); m == nil || m.OrgID != acme {
		t.Fatalf("mapping = %+v", m)
	}
	if who := e.command(team, users[0], "/orgbridge", "whoami"); !strings.Contains(who.Text, "alice@acme.example") {
		t.Fatalf("whoami = %q", who.Text)
	}

	// Another user of the bound workspace maps themselves with their own org user.
	e.mustConnect(team, users[1], "bob@acme.example")
	if m := e.mapped(team, users[1]); m == nil || m.Username != "bob@acme.example" {
		t.Fatalf("bob's mapping = %+v", m)
	}
	if e.boundOrg(team) != acme {
		t.Fatal("binding changed when a second user connected")
	}

	// Secrets never in Redis in plain text.
	keys := e.redis.Client.Keys(e.ctx, "*").Val()
	for _, k := range keys {
		if e.redis.Client.Type(e.ctx, k).Val() != "string" {
			continue
		}
		v := e.redis.Client.Get(e.ctx, k).Val()
		if strings.Contains(v, "xoxb-") || strings.Contains(v, "xoxe-") || strings.Contains(v, "5Aep") {
			t.Fatalf("plain-text token in %s: %s", k, v)
		}
	}
}

func TestSecondAppNeverPromptsAgain(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	e.mustConnect(team, users[0], "alice@acme.example")

	// A second app's command (another command, same workspace): forwarded with
	// the org identity, no prompt.
	sub := subscribeApp(t, e, events.AppCommandSubject("expenses"))
	before := len(e.slack.Messages(team, users[0]))
	if _, err := e.slack.DeliverCommand(slackemuCommand(team, users[0], "/expenses", "report 42")); err != nil {
		t.Fatal(err)
	}
	var cmd events.AppCommand
	testenv.Eventually(t, 20*time.Second, func() bool {
		msg, err := sub.Fetch(1, natsMaxWait(100*time.Millisecond))
		if err != nil {
			return false
		}
		for m := range msg.Messages() {
			_ = m.Ack()
			_ = json.Unmarshal(m.Data(), &cmd)
			return true
		}
		return false
	}, "no app.commands.expenses message")
	if cmd.Org.OrgID != acme || cmd.Org.Username != "alice@acme.example" || cmd.Text != "report 42" || cmd.ResponseURL == "" {
		t.Fatalf("forwarded command = %+v", cmd)
	}
	if got := len(e.slack.Messages(team, users[0])); got != before {
		t.Fatalf("the user was answered (%d messages) instead of the app handler", got-before)
	}
}

func TestDifferentOrgAndConcurrentConnect(t *testing.T) {
	e := startEnv(t, envOpts{})
	teams := e.teams()
	team := teams[0]
	users := e.users(team)
	e.install(team)

	// Two users connect the unbound workspace to two orgs at once: one wins.
	p1 := e.command(team, users[0], "/orgbridge", "connect")
	p2 := e.command(team, users[1], "/orgbridge", "connect")
	u1, u2 := connectURL(t, p1), connectURL(t, p2)
	type res struct {
		code int
		page string
	}
	ch := make(chan res, 2)
	go func() { c, p := e.login(u1, "alice@acme.example"); ch <- res{c, p} }()
	go func() { c, p := e.login(u2, "hank@globex.example"); ch <- res{c, p} }()
	a, b := <-ch, <-ch
	wins := 0
	var loser res
	for _, r := range []res{a, b} {
		if r.code == http.StatusOK {
			wins++
		} else {
			loser = r
		}
	}
	if wins != 1 {
		t.Fatalf("want exactly one winner: %d %q / %d %q", a.code, a.page, b.code, b.page)
	}
	bound := e.boundOrg(team)
	if bound != acme && bound != globex {
		t.Fatalf("bound to %q", bound)
	}
	if !strings.Contains(loser.page, "This workspace is already connected to") || !strings.Contains(loser.page, "uninstall the app first") {
		t.Fatalf("loser page = %s", loser.page)
	}

	// Later, connecting to a different org than the bound one is refused the same way.
	other := "hank@globex.example"
	if bound == globex {
		other = "bob@acme.example"
	}
	code, page := e.connect(team, users[2], other)
	if code == http.StatusOK || !strings.Contains(page, "already connected to") {
		t.Fatalf("different org: %d %s", code, page)
	}
}

func TestPermissionErrors(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	users := e.users(team)
	e.install(team)
	tests := []struct {
		name, user, username, want string
	}{
		{name: "org does not permit the app", user: users[0], username: "peter@initech.example", want: "Your org does not permit this app"},
		{name: "user not permitted", user: users[1], username: "dave@acme.example", want: "Your org user is not permitted to use this app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, page := e.connect(team, tt.user, tt.username)
			if code == http.StatusOK || !strings.Contains(page, tt.want) {
				t.Fatalf("%d %s", code, page)
			}
			if e.boundOrg(team) != "" {
				t.Fatal("a refused login bound the workspace")
			}
		})
	}
}

func TestChatWriteNeedsChannel(t *testing.T) {
	e := startEnv(t, envOpts{scopes: []string{"commands", "chat:write"}})
	team := e.teams()[0]
	code, page := e.browse(e.ingress.URL + "/slack/install?team=" + team)
	if code == http.StatusOK || !strings.Contains(page, "must carry a channel to post to") {
		t.Fatalf("install without a channel: %d %s", code, page)
	}
	if list, _ := e.installs.List(e.ctx); len(list) != 0 {
		t.Fatalf("refused install was stored: %+v", list)
	}
}
