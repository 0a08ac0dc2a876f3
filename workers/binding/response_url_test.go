package binding_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// Anyone who can publish on NATS can put any response_url in a command or an
// interaction. The worker must never call it unless it is Slack's (here: the
// emulator's), must not hand it to app handlers either, and must dead-letter
// the message once; the emulator's own response URLs keep working.
func TestForgedResponseURLIsNeverCalled(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	user := e.users(team)[0]
	e.install(team)
	e.mustConnect(team, user, "alice@acme.example")

	var hits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(internal.Close)
	forged := internal.URL + "/internal/admin"

	command := func(cmd, text string) []byte {
		return []byte(url.Values{"command": {cmd}, "text": {text}, "team_id": {team}, "user_id": {user},
			"api_app_id": {e.slack.AppID()}, "response_url": {forged}, "trigger_id": {"1.2.3"}}.Encode())
	}
	interaction := func(actionID string) []byte {
		p, _ := json.Marshal(map[string]any{"type": "block_actions", "team": map[string]string{"id": team},
			"user": map[string]string{"id": user, "team_id": team}, "api_app_id": e.slack.AppID(), "response_url": forged,
			"trigger_id": "1.2.3", "actions": []map[string]string{{"action_id": actionID, "value": "m1"}}})
		return []byte(url.Values{"payload": {string(p)}}.Encode())
	}
	tests := []struct {
		name, subject, durable, typ string
		body                        []byte
	}{
		{"platform command answered by the worker", events.SlackCommandSubject(team), binding.DurableCommands, "/orgbridge", command("/orgbridge", "whoami")},
		{"app command forwarded to app handlers", events.SlackCommandSubject(team), binding.DurableCommands, "/expenses", command("/expenses", "report")},
		{"orgbridge's own button", events.SlackInteractionSubject(team), binding.DurableInteractions, "block_actions", interaction(binding.ActionDeleteMapping)},
		{"app button forwarded to app handlers", events.SlackInteractionSubject(team), binding.DurableInteractions, "block_actions", interaction("approve")},
	}
	dlq, err := e.nats.JS.Stream(e.ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := nats.NewMsg(tt.subject)
			msg.Data = tt.body
			msg.Header.Set(events.HeaderSchema, "1")
			msg.Header.Set(events.HeaderContentType, "application/x-www-form-urlencoded")
			msg.Header.Set(events.HeaderTeam, team)
			msg.Header.Set(events.HeaderType, tt.typ)
			if _, err := e.nats.JS.PublishMsg(e.ctx, msg, jetstream.WithMsgID("forged-"+tt.name)); err != nil {
				t.Fatal(err)
			}
			var dead *jetstream.RawStreamMsg
			testenv.Eventually(t, 20*time.Second, func() bool {
				info, err := dlq.Info(e.ctx)
				if err != nil || info.State.Msgs != uint64(i+1) {
					return false
				}
				dead, err = dlq.GetMsg(e.ctx, info.State.LastSeq)
				return err == nil
			}, "the forged message was not dead-lettered")
			if got := dead.Header.Get(events.HeaderDLQSubject); got != tt.subject {
				t.Fatalf("dead letter of %q, want %q", got, tt.subject)
			}
			if !strings.HasSuffix(dead.Subject, tt.durable) {
				t.Fatalf("dead-lettered by %s, want %s", dead.Subject, tt.durable)
			}
			if got := dead.Header.Get(events.HeaderDLQDeliveries); got != "1" {
				t.Fatalf("dead-lettered after %s deliveries, want 1", got)
			}
			if reason := dead.Header.Get(events.HeaderDLQError); !strings.Contains(reason, "response_url") || strings.Contains(reason, "/internal/admin") {
				t.Fatalf("dead-letter reason %q: want it to name the response_url problem, never the URL's path", reason)
			}
			if n := hits.Load(); n != 0 {
				t.Fatalf("the forged response_url was called %d times", n)
			}
		})
	}
	app, err := e.nats.JS.Stream(e.ctx, events.StreamApp)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := app.Info(e.ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("forged messages were forwarded to app handlers: %+v %v", info.State, err)
	}

	// Slack's (the emulator's) response URLs are answered as before.
	if m := e.command(team, user, "/orgbridge", "whoami"); !strings.Contains(m.Text, "You are") {
		t.Fatalf("whoami through the emulator's response_url: %q", m.Text)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the forged response_url was called %d times", n)
	}
}
