package provisioning_test

import (
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/config"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	smtpemu "github.com/orgbridge/orgbridge/internal/emulator/smtp"
	"github.com/orgbridge/orgbridge/internal/mailer"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// TestAutoInvite: with auto-invite on, each user a sync creates gets one
// invitation email, over SMTP; linked, updated or unchanged users get none,
// and a later sync never sends a second one.
func TestAutoInvite(t *testing.T) {
	e := newEnv(t)
	sink := smtpemu.StartTest(t)
	host, port, _ := net.SplitHostPort(sink.Addr())
	p, _ := strconv.Atoi(port)
	m, err := mailer.New(config.SMTP{Host: host, Port: p, TLS: config.SMTPTLSNone, From: "orgbridge <noreply@acme.example>"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := provisioning.New(provisioning.Deps{JS: e.nats.JS, Redis: e.rdb, Keys: e.keys, Slack: e.sc, Org: e.oc,
		SlackOAuth: e.oauth, Mailer: m, Logger: testLogger(t)}, e.config(provisioning.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	e.start(w)
	e.connect(w)
	e.deliverEvents()
	set := provisioning.DefaultSettings()
	set.AutoInvite = true
	if _, err := w.SaveSettings(context.Background(), acme, set); err != nil {
		t.Fatal(err)
	}
	e.sync(w, false)
	var to []string
	for _, msg := range sink.Messages() {
		to = append(to, msg.To...)
	}
	slices.Sort(to)
	want := []string{"frank@acme.example", "gina@contractor.example", "grace@acme.example", "henry@acme.example", "sam@temp.example"}
	if !slices.Equal(to, want) {
		t.Fatalf("invitations went to %v, want the 5 created users %v (not alice, who was linked)", to, want)
	}
	if err := e.slack.UpdateUser("U0MEMB0001", slackemu.UserChange{Title: ptr("Staff Engineer")}); err != nil {
		t.Fatal(err)
	}
	e.sync(w, false)
	if _, err := e.slack.CreateUser(slackemu.NewUser{TeamID: team, Name: "judy", FirstName: "Judy", LastName: "Jones", Email: "judy@acme.example"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() bool { return len(sink.Messages()) == 6 }, "the user created between syncs gets an invitation")
	e.sync(w, false)
	if n := len(sink.Messages()); n != 6 {
		t.Fatalf("%d invitations after more syncs, want 6: only creates invite, once", n)
	}
}
