package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// long is longer than the NATS server's control line (4 KiB): as a subject
// token it used to make the server answer "maximum control line exceeded",
// which closes the ingress's connection for good.
var long = strings.Repeat("T", 5000)

// The reproduction: two validly signed events whose team_id is 5,000
// characters used to close the ingress's NATS connection, and from then on
// every event got 503 until a restart.
func TestOverlongTeamIDRefusedAndIngressKeepsWorking(t *testing.T) {
	f := newFixture(t)
	for i := range 2 {
		code, text := f.post(t, "/slack/events", "application/json", eventBody(fmt.Sprintf("EvLong%d", i), long, "message"), nil)
		if code != http.StatusBadRequest || !strings.Contains(text, "team_id") || len(text) > 300 {
			t.Fatalf("event %d with a 5,000-character team_id: got %d %.300q, want a short 400 naming team_id", i, code, text)
		}
	}
	if s := f.nats.Conn.Status(); s != nats.CONNECTED {
		t.Fatalf("NATS connection is %s after the refused events", s)
	}
	if code, text := f.post(t, "/slack/events", "application/json", eventBody("EvNormal", "T1", "message"), nil); code != http.StatusOK {
		t.Fatalf("normal event after the refused ones: %d %q", code, text)
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != 1 {
		t.Fatalf("stream holds %d messages, want only the normal event", n)
	}
}

func TestValuesThatBecomeSubjectsOrIDsAreBounded(t *testing.T) {
	f := newFixture(t)
	form := "application/x-www-form-urlencoded"
	command := func(kv ...string) string {
		v := url.Values{"command": {"/expenses"}, "team_id": {"T1"}, "user_id": {"U1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	interaction := func(payload string) string { return url.Values{"payload": {payload}}.Encode() }
	tests := []struct {
		name, path, contentType, body, want string
	}{
		{"long enterprise_id", "/slack/events", "application/json",
			`{"type":"event_callback","event_id":"Ev1","enterprise_id":"` + long + `","event":{"type":"user_change"}}`, "enterprise_id"},
		{"long enterprise_id beside a team", "/slack/events", "application/json",
			`{"type":"event_callback","event_id":"Ev1","team_id":"T1","enterprise_id":"` + long + `","event":{"type":"message"}}`, "enterprise_id"},
		{"lower-case team_id", "/slack/events", "application/json", string(eventBody("Ev1", "t1", "message")), "team_id"},
		{"team_id with a dot", "/slack/events", "application/json", string(eventBody("Ev1", "T1.x", "message")), "team_id"},
		{"long event type", "/slack/events", "application/json", string(eventBody("Ev1", "T1", strings.Repeat("m", 5000))), "event.type"},
		{"wildcard in event type", "/slack/events", "application/json", string(eventBody("Ev1", "T1", "a*b")), "event.type"},
		{"long outer type", "/slack/events", "application/json", `{"type":"` + strings.Repeat("x", 100) + `","team_id":"T1"}`, "type"},
		{"event_id over 128", "/slack/events", "application/json", string(eventBody(strings.Repeat("E", 129), "T1", "message")), "event_id"},
		{"event_id with a line break", "/slack/events", "application/json", string(eventBody("Ev1\r\nNats-Msg-Id: x", "T1", "message")), "event_id"},
		{"long team_id", "/slack/commands", form, command("team_id", long), "team_id"},
		{"long enterprise_id", "/slack/commands", form, command("enterprise_id", long), "enterprise_id"},
		{"long api_app_id", "/slack/commands", form, command("api_app_id", long), "api_app_id"},
		{"long command", "/slack/commands", form, command("command", "/"+long), "command"},
		{"command of 33 characters", "/slack/commands", form, command("command", "/"+strings.Repeat("c", 33)), "command"},
		{"command without slash", "/slack/commands", form, command("command", "expenses"), "command"},
		{"command with a space", "/slack/commands", form, command("command", "/exp enses"), "command"},
		{"command with a dot", "/slack/commands", form, command("command", "/exp.enses"), "command"},
		{"long trigger_id", "/slack/commands", form, command("trigger_id", strings.Repeat("1", 200)), "trigger_id"},
		{"long team.id", "/slack/interactivity", form, interaction(`{"type":"block_actions","team":{"id":"` + long + `"}}`), "team.id"},
		{"long user.team_id", "/slack/interactivity", form, interaction(`{"type":"block_actions","user":{"team_id":"` + long + `"}}`), "user.team_id"},
		{"long enterprise.id", "/slack/interactivity", form, interaction(`{"type":"block_actions","team":{"id":"T1"},"enterprise":{"id":"` + long + `"}}`), "enterprise.id"},
		{"long api_app_id", "/slack/interactivity", form, interaction(`{"type":"block_actions","team":{"id":"T1"},"api_app_id":"` + long + `"}`), "api_app_id"},
		{"long type", "/slack/interactivity", form, interaction(`{"type":"` + long + `","team":{"id":"T1"}}`), "type"},
		{"long trigger_id", "/slack/interactivity", form, interaction(`{"type":"block_actions","team":{"id":"T1"},"trigger_id":"` + long + `"}`), "trigger_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.path, func(t *testing.T) {
			code, text := f.post(t, tt.path, tt.contentType, []byte(tt.body), nil)
			if code != http.StatusBadRequest || !strings.Contains(text, tt.want) || len(text) > 300 {
				t.Fatalf("got %d %.300q, want a short 400 naming %s", code, text, tt.want)
			}
		})
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != 0 {
		t.Fatalf("refused requests were published: %d", n)
	}
	if s := f.nats.Conn.Status(); s != nats.CONNECTED {
		t.Fatalf("NATS connection is %s", s)
	}
	// Real Slack values still pass.
	ok := []struct{ path, contentType, body string }{
		{"/slack/events", "application/json", `{"type":"event_callback","event_id":"Ev0A1B2C3D4E","team_id":"T0123ABCD45","enterprise_id":"E0123ABCD45","event":{"type":"message"}}`},
		{"/slack/commands", form, command("command", "/orgbridge", "team_id", "T0123ABCD45", "enterprise_id", "E0123ABCD45",
			"api_app_id", "A0123ABCD45", "trigger_id", "13345224609.738474920.8088930838d88f008e0")},
		{"/slack/commands", form, command("command", "/"+strings.Repeat("c", 32))},
		{"/slack/interactivity", form, interaction(`{"type":"view_submission","team":{"id":"T0123ABCD45"},"user":{"team_id":"T0123ABCD45"},"enterprise":{"id":"E0123ABCD45"},"api_app_id":"A0123ABCD45","trigger_id":"12466734323.1395872398"}`)},
	}
	for _, r := range ok {
		if code, text := f.post(t, r.path, r.contentType, []byte(r.body), nil); code != http.StatusOK {
			t.Fatalf("%s refused %s: %d %q", r.path, r.body, code, text)
		}
	}
}

// GET /healthz fails once a NATS connection is closed for good, so the
// orchestrator restarts the process instead of leaving it answering 503.
func TestHealthzFailsWhenANATSConnectionIsClosed(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, err := nats.Connect(n.URL, nats.Name("ingress-test"), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := ingress.New(ingress.Config{SigningSecret: secret,
		Live: map[string]func(ctx context.Context) error{"nats": ingress.NATSAlive(n.Conn, nc)}}, n.JS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	healthz := func() (int, string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := healthz(); code != http.StatusOK {
		t.Fatalf("healthz with both connections up: %d %q", code, body)
	}
	// The fault the issue found: a subject over the control line. nats.go
	// closes the connection for good; it never reconnects.
	_ = nc.Publish("slack.events."+long+".message", nil)
	testenv.Eventually(t, 5*time.Second, nc.IsClosed, "the connection survived a 5,000-byte subject")
	code, body := healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "closed for good") || !strings.Contains(body, "ingress-test") {
		t.Fatalf("healthz with a closed connection: %d %q, want 503 naming it", code, body)
	}
}
