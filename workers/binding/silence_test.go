package binding_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// orgFault answers the worker's token requests with an error no retry can
// fix once armed (the org refusing something orgbridge does not expect).
type orgFault struct{ armed atomic.Bool }

func (f *orgFault) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.armed.Load() && strings.HasSuffix(r.URL.Path, "/services/oauth2/token") {
		body := `{"error":"unsupported_grant_type","error_description":"this org refuses the request"}`
		return &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// Seed 000's "Dispatch failed" section: a user is never left with silence.
func TestNeverSilence(t *testing.T) {
	tests := []struct {
		name    string
		install bool
		// before runs after alice (users[0]) connected, when install is set.
		before  func(e *env, fault *orgFault)
		command string
		text    string
		// check looks at the answer.
		check func(e *env, team string, m slackemu.Message)
	}{
		{name: "an unknown subcommand gets the help", install: true, command: "/orgbridge", text: "frobnicate now",
			check: func(e *env, team string, m slackemu.Message) {
				if !strings.Contains(m.Text, "`/orgbridge frobnicate` is not something orgbridge knows") || !strings.Contains(m.Text, "`/orgbridge connect`") {
					e.t.Fatalf("answer %q, want what was not understood and the help", m.Text)
				}
			}},
		{name: "a command that ends in the dead-letter queue", install: true, command: "/expenses", text: "report 42",
			before: func(e *env, fault *orgFault) { fault.armed.Store(true) },
			check: func(e *env, team string, m slackemu.Message) {
				_, ref, ok := strings.Cut(m.Text, "reference: DLQ-")
				if !strings.Contains(m.Text, "Something went wrong") || !ok || m.Source != "response_url" || m.ResponseType != "ephemeral" {
					e.t.Fatalf("answer %+v, want an ephemeral 'something went wrong' with a DLQ reference", m)
				}
				seq, err := strconv.ParseUint(strings.TrimSuffix(ref, "."), 10, 64)
				if err != nil {
					e.t.Fatalf("reference %q: %v", ref, err)
				}
				dlq, err := e.nats.JS.Stream(e.ctx, events.StreamDLQ)
				if err != nil {
					e.t.Fatal(err)
				}
				dead, err := dlq.GetMsg(e.ctx, seq)
				if err != nil || dead.Header.Get(events.HeaderDLQSubject) != events.SlackCommandSubject(team) {
					e.t.Fatalf("the reference names no dead letter of the command: %+v %v", dead, err)
				}
			}},
		{name: "a workspace without an installation gets an install prompt", install: false, command: "/orgbridge", text: "whoami",
			check: func(e *env, team string, m slackemu.Message) {
				if !strings.Contains(m.Text, "isn't installed in this workspace") {
					e.t.Fatalf("answer %q, want an install prompt", m.Text)
				}
				u := buttonURL(e.t, m, binding.ActionInstall)
				if !strings.HasPrefix(u, e.ingress.URL+"/slack/install?team="+team) {
					e.t.Fatalf("install button %q", u)
				}
				if code, page := e.browse(u + "&channel=%23general"); code != http.StatusOK || !strings.Contains(page, "Installed") {
					e.t.Fatalf("following the install button: %d %s", code, page)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fault := &orgFault{}
			e := startEnv(t, envOpts{orgHTTP: &http.Client{Transport: fault}})
			team := e.teams()[0]
			users := e.users(team)
			if tt.install {
				e.install(team)
				e.mustConnect(team, users[0], "alice@acme.example")
			}
			if tt.before != nil {
				tt.before(e, fault)
			}
			tt.check(e, team, e.command(team, users[0], tt.command, tt.text))
		})
	}
}

// A refusal on the connect page is posted back in Slack too (the page may be
// closed or never load), and pages name Slack users as people read them, not
// in Slack markup.
func TestConnectRefusalIsToldInSlackWithNames(t *testing.T) {
	tests := []struct {
		name     string
		username string // users[1] logs in as
		wantPage string
	}{
		{name: "org user mapped to another Slack user", username: "bob@acme.example", wantPage: "already mapped to another Slack user in this workspace ({name})"},
		{name: "org user not permitted", username: "dave@acme.example", wantPage: "not permitted to use this app"},
		{name: "org user inactive", username: "erin@acme.example", wantPage: "The org refused the login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, envOpts{})
			team := e.teams()[0]
			users := e.users(team)
			e.install(team)
			e.mustConnect(team, users[0], "bob@acme.example")
			name := e.slackUser(team, users[0])
			want := strings.ReplaceAll(tt.wantPage, "{name}", name.RealName+" (@"+name.Name+")")

			before := len(e.slack.Messages(team, users[1]))
			code, page := e.connect(team, users[1], tt.username)
			if code == http.StatusOK || !strings.Contains(page, want) {
				t.Fatalf("page %d %s, want %q", code, page, want)
			}
			if strings.Contains(page, "&lt;@") || strings.Contains(page, "<@") {
				t.Fatalf("the page shows Slack markup: %s", page)
			}
			var told slackemu.Message
			testenv.Eventually(t, 20*time.Second, func() bool {
				for _, m := range e.slack.Messages(team, users[1])[before:] {
					if m.Source == "chat.postMessage" && strings.Contains(m.Text, "Connecting to the org failed") {
						told = m
						return true
					}
				}
				return false
			}, "the refusal was not posted in Slack")
			if !strings.Contains(told.Text, want) {
				t.Fatalf("Slack was told %q, want %q", told.Text, want)
			}
		})
	}
}

// buttonURL pulls the URL of the button with action id action out of m.
func buttonURL(t *testing.T, m slackemu.Message, action string) string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			URL      string `json:"url"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	for _, b := range blocks {
		for _, el := range b.Elements {
			if el.ActionID == action {
				return el.URL
			}
		}
	}
	t.Fatalf("no %s button in %q / %s", action, m.Text, m.Blocks)
	return ""
}

// slackUser is Slack's users.info of id.
func (e *env) slackUser(team, id string) *slack.User {
	e.t.Helper()
	tok, err := e.slack.MintToken(slackemu.TokenRequest{TeamID: team, Scopes: []string{"users:read"}})
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := slack.New(tok.Token, slack.OptionAPIURL(e.slack.APIURL())).GetUserInfoContext(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}
