package binding_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// A command whose name is too long for a subject token reaches the worker
// (stored before the ingress refused such names, or published on NATS by
// hand). Publishing it on app.commands.<name> would overflow the server's
// control line and close the worker's connection for good, stopping every
// consumer in the process, and the next replica would die the same way. It
// must be answered, dead-lettered once, and leave the connection working.
func TestOverlongCommandIsDeadLetteredNotFatal(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	user := e.users(team)[0]
	e.install(team)
	e.mustConnect(team, user, "alice@acme.example")

	long := "/" + strings.Repeat("x", 5000)
	d, err := e.slack.DeliverCommand(slackemuCommand(team, user, long, "report"))
	if err != nil || d.Status != http.StatusBadRequest {
		t.Fatalf("ingress took a 5,001-character command: %+v %v, want 400", d, err)
	}

	before := len(e.slack.Messages(team, user))
	form := url.Values{"command": {long}, "text": {"report"}, "team_id": {team}, "user_id": {user},
		"api_app_id": {e.slack.AppID()}, "response_url": {d.ResponseURL}}
	msg := nats.NewMsg(events.SlackCommandSubject(team))
	msg.Data = []byte(form.Encode())
	msg.Header.Set(events.HeaderSchema, "1")
	msg.Header.Set(events.HeaderContentType, "application/x-www-form-urlencoded")
	msg.Header.Set(events.HeaderTeam, team)
	msg.Header.Set(events.HeaderType, long)
	if _, err := e.nats.JS.PublishMsg(e.ctx, msg, jetstream.WithMsgID("overlong-command")); err != nil {
		t.Fatal(err)
	}

	answer := e.waitMessage(team, user, before)
	if !strings.Contains(answer.Text, "cannot pass this command on") {
		t.Fatalf("the user was told %q", answer.Text)
	}
	dlq, err := e.nats.JS.Stream(e.ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	var dead *jetstream.RawStreamMsg
	testenv.Eventually(t, 20*time.Second, func() bool {
		dead, err = dlq.GetLastMsgForSubject(e.ctx, events.DLQSubject(events.StreamSlack, binding.DurableCommands))
		return err == nil
	}, "the command was not dead-lettered")
	if got := dead.Header.Get(events.HeaderDLQSubject); got != events.SlackCommandSubject(team) {
		t.Fatalf("dead letter of %q, want the command", got)
	}
	if got := dead.Header.Get(events.HeaderDLQDeliveries); got != "1" {
		t.Fatalf("dead-lettered after %s deliveries, want 1: retrying cannot help", got)
	}
	if reason := dead.Header.Get(events.HeaderDLQError); !strings.Contains(reason, "cannot be forwarded") || len(reason) > 1024 {
		t.Fatalf("dead-letter reason %.200q", reason)
	}
	// The user was told why already: the dead letter adds no second answer.
	dlqReader, err := e.nats.JS.Consumer(e.ctx, events.StreamDLQ, binding.DurableDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		info, err := dlqReader.Info(e.ctx)
		return err == nil && info.Delivered.Stream >= dead.Sequence && info.NumAckPending == 0
	}, "the dead letter was not read")
	if n := len(e.slack.Messages(team, user)) - before; n != 1 {
		t.Fatalf("the user got %d answers, want 1: %+v", n, e.slack.Messages(team, user)[before:])
	}
	if s := e.nats.Conn.Status(); s != nats.CONNECTED {
		t.Fatalf("the worker's NATS connection is %s", s)
	}

	// The consumers still run: the next command is forwarded.
	sub := subscribeApp(t, e, events.AppCommandSubject("expenses"))
	if d, err := e.slack.DeliverCommand(slackemuCommand(team, user, "/expenses", "report 42")); err != nil || d.Status != http.StatusOK {
		t.Fatalf("next command: %+v %v", d, err)
	}
	var cmd events.AppCommand
	testenv.Eventually(t, 20*time.Second, func() bool {
		batch, err := sub.Fetch(1, natsMaxWait(100*time.Millisecond))
		if err != nil {
			return false
		}
		for m := range batch.Messages() {
			_ = m.Ack()
			return json.Unmarshal(m.Data(), &cmd) == nil
		}
		return false
	}, "the next command was not forwarded")
	if cmd.Command != "/expenses" || cmd.Org.OrgID != acme {
		t.Fatalf("forwarded %+v", cmd)
	}
}
