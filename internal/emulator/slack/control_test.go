package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

// ingress is a test app ingress: it verifies each request's signature with
// slack-go and records it.
type ingress struct {
	t      *testing.T
	secret string
	answer func(n int, w http.ResponseWriter, r *http.Request) // n: 0-based request number

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path     string
	header   http.Header
	body     []byte
	verified bool
}

func startIngress(t *testing.T, e *Emulator, answer func(int, http.ResponseWriter, *http.Request)) *ingress {
	in := &ingress{t: t, secret: e.SigningSecret(), answer: answer}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	e.SetIngressURL(srv.URL)
	return in
}

func (in *ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sv, err := slack.NewSecretsVerifier(r.Header, in.secret)
	ok := err == nil
	if ok {
		_, _ = sv.Write(body)
		ok = sv.Ensure() == nil
	}
	in.mu.Lock()
	n := len(in.reqs)
	in.reqs = append(in.reqs, recorded{path: r.URL.Path, header: r.Header.Clone(), body: body, verified: ok})
	in.mu.Unlock()
	if !ok {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if in.answer != nil {
		in.answer(n, w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (in *ingress) all() []recorded {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]recorded(nil), in.reqs...)
}

func TestDeliverEventSigned(t *testing.T) {
	e := StartTest(t, smallWorld())
	in := startIngress(t, e, nil)
	w := e.World()
	tests := []struct {
		name           string
		team           string
		wantEnterprise string
	}{
		{name: "standalone", team: w.Workspaces[0].ID},
		{name: "grid member", team: w.Enterprises[0].Workspaces[0], wantEnterprise: w.Enterprises[0].ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Delivery
			status := control(t, e, http.MethodPost, "/_emulator/deliver/event",
				map[string]any{"team_id": tc.team, "event": map[string]any{"type": "app_home_opened", "user": "U1", "tab": "home"}}, &d)
			if status != http.StatusOK || d.Status != http.StatusOK || !strings.HasPrefix(d.EventID, "Ev") {
				t.Fatalf("deliver/event = %d %+v", status, d)
			}
			reqs := in.all()
			last := reqs[len(reqs)-1]
			if !last.verified || last.path != "/slack/events" {
				t.Fatalf("ingress got %s, signature verified %v", last.path, last.verified)
			}
			var env struct {
				Type, TeamID, APIAppID, EventID, EnterpriseID, ContextTeamID string
				Token                                                        string
				Event                                                        map[string]any
				Authorizations                                               []map[string]any
			}
			if err := json.Unmarshal(last.body, &env); err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			_ = json.Unmarshal(last.body, &raw)
			if raw["type"] != "event_callback" || raw["team_id"] != tc.team || raw["api_app_id"] != e.AppID() || raw["event_id"] != d.EventID ||
				raw["context_team_id"] != tc.team || raw["event_time"] == nil || len(env.Authorizations) != 1 || raw["is_ext_shared_channel"] != false {
				t.Errorf("envelope = %s", last.body)
			}
			if got, _ := raw["enterprise_id"].(string); got != tc.wantEnterprise {
				t.Errorf("enterprise_id = %q, want %q", got, tc.wantEnterprise)
			}
			if ev := raw["event"].(map[string]any); ev["type"] != "app_home_opened" || ev["event_ts"] == nil {
				t.Errorf("inner event = %v", ev)
			}
		})
	}
	t.Run("unknown team", func(t *testing.T) {
		if _, err := e.DeliverEvent("T0NOPE", map[string]any{"type": "x"}); !errors.Is(err, ErrUnknownTeam) {
			t.Errorf("err = %v, want ErrUnknownTeam", err)
		}
	})
}

func TestEventRetries(t *testing.T) {
	tests := []struct {
		name       string
		answer     func(n int, w http.ResponseWriter, r *http.Request)
		wantReason string
		wantFirst  int
	}{
		{name: "ingress answers 500", wantReason: "http_error", wantFirst: 500,
			answer: func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }},
		{name: "ingress is slow", wantReason: "http_timeout", wantFirst: 0,
			answer: func(n int, w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done() // never answers before the emulator gives up
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// 1000×: the 1- and 5-minute retries come after 60 and 300 ms.
			cfg := smallWorld()
			cfg.TimeScale, cfg.IngressTimeout = 1000, 100*time.Millisecond
			e := StartTest(t, cfg)
			in := startIngress(t, e, tc.answer)
			d, err := e.DeliverEvent(e.World().Workspaces[0].ID, map[string]any{"type": "app_mention", "text": "hi"})
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != tc.wantFirst {
				t.Errorf("first attempt status = %d, want %d", d.Status, tc.wantFirst)
			}
			testenv.Eventually(t, 10*time.Second, func() bool { return len(in.all()) == 4 }, "4 attempts (1 + 3 retries)")
			reqs := in.all()
			for i, r := range reqs {
				num, reason := r.header.Get("X-Slack-Retry-Num"), r.header.Get("X-Slack-Retry-Reason")
				var env map[string]any
				_ = json.Unmarshal(r.body, &env)
				if env["event_id"] != d.EventID || !r.verified {
					t.Errorf("attempt %d: event_id %v verified %v", i, env["event_id"], r.verified)
				}
				if i == 0 && (num != "" || reason != "") {
					t.Errorf("first attempt carries retry headers %q %q", num, reason)
				}
				if i > 0 && (num != string(rune('0'+i)) || reason != tc.wantReason) {
					t.Errorf("attempt %d: X-Slack-Retry-Num %q reason %q, want %d %s", i, num, reason, i, tc.wantReason)
				}
			}
		})
	}
	t.Run("retries stop at the first 2xx", func(t *testing.T) {
		cfg := smallWorld()
		cfg.TimeScale = 1000
		e := StartTest(t, cfg)
		in := startIngress(t, e, func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		if _, err := e.DeliverEvent(e.World().Workspaces[0].ID, map[string]any{"type": "app_mention"}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, func() bool { return len(in.all()) == 3 }, "3 attempts")
		e.Close() // waits for the retry goroutine: no fourth attempt comes
		if n := len(in.all()); n != 3 {
			t.Errorf("%d attempts, want 3", n)
		}
	})
}

func TestDeliverCommandAndResponseURL(t *testing.T) {
	cfg := smallWorld()
	e := StartTest(t, cfg)
	in := startIngress(t, e, nil)
	ws := e.World().Enterprises[0].Workspaces[0]
	var d Delivery
	status := control(t, e, http.MethodPost, "/_emulator/deliver/command",
		map[string]any{"team_id": ws, "command": "/org", "text": "connect", "channel_id": "C0CHAN"}, &d)
	if status != http.StatusOK || d.Status != http.StatusOK {
		t.Fatalf("deliver/command = %d %+v", status, d)
	}
	last := in.all()[0]
	form, err := url.ParseQuery(string(last.body))
	if err != nil || !last.verified || last.path != "/slack/commands" {
		t.Fatalf("ingress got %s verified %v: %v", last.path, last.verified, err)
	}
	for _, k := range []string{"token", "team_id", "team_domain", "enterprise_id", "channel_id", "user_id", "user_name", "command", "text", "api_app_id", "response_url", "trigger_id"} {
		if form.Get(k) == "" {
			t.Errorf("command form lacks %s: %v", k, form)
		}
	}
	if form.Get("command") != "/org" || form.Get("text") != "connect" || form.Get("channel_id") != "C0CHAN" || form.Get("response_url") != d.ResponseURL {
		t.Errorf("command form = %v", form)
	}
	// Slack allows 5 posts to a response_url within 30 minutes.
	for i := range 6 {
		err := slack.PostWebhookContext(context.Background(), d.ResponseURL, &slack.WebhookMessage{Text: "reply", ResponseType: "ephemeral"})
		if i < 5 && err != nil {
			t.Fatalf("post %d: %v", i+1, err)
		}
		if i == 5 && err == nil {
			t.Fatalf("sixth post to a response_url was accepted")
		}
	}
	msgs := e.Messages(ws, form.Get("user_id"))
	if len(msgs) != 5 || msgs[0].Source != "response_url" || msgs[0].ResponseType != "ephemeral" || msgs[0].Channel != "C0CHAN" {
		t.Errorf("messages = %+v", msgs)
	}
	t.Run("response_url expires after 30 minutes", func(t *testing.T) {
		d, err := e.DeliverCommand(Command{TeamID: ws, Command: "/org"})
		if err != nil {
			t.Fatal(err)
		}
		e.mu.Lock()
		for _, ru := range e.respURLs {
			ru.created = ru.created.Add(-responseURLTTL)
		}
		e.mu.Unlock()
		resp, err := http.Post(d.ResponseURL, "application/json", strings.NewReader(`{"text":"late"}`))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || body["error"] != "expired_url" {
			t.Errorf("late post = %d %v", resp.StatusCode, body)
		}
	})
}

func TestDeliverInteraction(t *testing.T) {
	e := StartTest(t, smallWorld())
	in := startIngress(t, e, func(n int, w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"response_action":"clear"}`)
	})
	ws := e.World().Workspaces[0]
	var d Delivery
	control(t, e, http.MethodPost, "/_emulator/deliver/interaction", map[string]any{
		"team_id": ws.ID, "user_id": ws.Admins[0],
		"actions": []map[string]any{{"action_id": "connect_org", "block_id": "b1", "type": "button", "value": "go"}},
	}, &d)
	if d.Status != http.StatusOK || d.Body != `{"response_action":"clear"}` || d.ResponseURL == "" || d.TriggerID == "" {
		t.Fatalf("deliver/interaction = %+v", d)
	}
	last := in.all()[0]
	form, _ := url.ParseQuery(string(last.body))
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil || !last.verified || last.path != "/slack/interactivity" {
		t.Fatalf("payload %q verified %v: %v", form.Get("payload"), last.verified, err)
	}
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != ws.Admins[0] || cb.Team.ID != ws.ID || cb.ResponseURL != d.ResponseURL ||
		len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0].ActionID != "connect_org" || cb.APIAppID != e.AppID() {
		t.Errorf("payload = %s", form.Get("payload"))
	}
	// The trigger opens one modal.
	api := clientFor(e, mint(t, e, TokenRequest{TeamID: ws.ID}).Token)
	modal := slack.ModalViewRequest{Type: slack.VTModal, Title: slack.NewTextBlockObject("plain_text", "Connect", false, false)}
	if _, err := api.OpenViewContext(context.Background(), d.TriggerID, modal); err != nil {
		t.Fatalf("views.open: %v", err)
	}
	if _, err := api.OpenViewContext(context.Background(), d.TriggerID, modal); slackErrCode(err) != "exchanged_trigger_id" {
		t.Errorf("second views.open: err = %v, want exchanged_trigger_id", err)
	}
}

func TestDeactivateDeliversUserChange(t *testing.T) {
	e := StartTest(t, smallWorld())
	in := startIngress(t, e, nil)
	ws := e.World().Workspaces[0]
	uid := ws.Admins[1]
	var d Delivery
	if status := control(t, e, http.MethodPost, "/_emulator/users/"+uid+"/deactivate", nil, &d); status != http.StatusOK || d.Status != http.StatusOK {
		t.Fatalf("deactivate = %d %+v", status, d)
	}
	var env struct {
		Event struct {
			Type string     `json:"type"`
			User slack.User `json:"user"`
		} `json:"event"`
	}
	if err := json.Unmarshal(in.all()[0].body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Event.Type != "user_change" || env.Event.User.ID != uid || !env.Event.User.Deleted {
		t.Errorf("event = %+v", env.Event)
	}
	u, err := clientFor(e, mint(t, e, TokenRequest{TeamID: ws.ID}).Token).GetUserInfoContext(context.Background(), uid)
	if err != nil || !u.Deleted {
		t.Errorf("users.info after deactivation: deleted=%v err=%v", u != nil && u.Deleted, err)
	}
	if status := control(t, e, http.MethodPost, "/_emulator/users/U0NOPE/deactivate", nil, nil); status != http.StatusNotFound {
		t.Errorf("unknown user: status %d, want 404", status)
	}
}

func TestFaults(t *testing.T) {
	e := StartTest(t, Config{Seed: 3, Workspaces: 1, Enterprises: -1, DisableRateLimits: true})
	api := clientFor(e, mint(t, e, TokenRequest{}).Token)
	ctx := context.Background()
	authTest := func() error { _, err := api.AuthTestContext(ctx); return err }
	tests := []struct {
		name  string
		fault Fault
		check func(t *testing.T)
	}{
		{name: "error for the next 2 calls", fault: Fault{Method: "auth.test", Error: "internal_error", Count: 2}, check: func(t *testing.T) {
			for i, want := range []string{"internal_error", "internal_error", ""} {
				if got := slackErrCode(authTest()); got != want {
					t.Errorf("call %d: %q, want %q", i+1, got, want)
				}
			}
		}},
		{name: "http status", fault: Fault{Method: "*", HTTPStatus: 503, Count: 1}, check: func(t *testing.T) {
			var sc slack.StatusCodeError
			if err := authTest(); !errors.As(err, &sc) || sc.Code != 503 {
				t.Errorf("err = %v, want StatusCodeError 503", err)
			}
		}},
		{name: "429 with Retry-After", fault: Fault{Method: "auth.test", HTTPStatus: 429, RetryAfter: 7, Count: 1}, check: func(t *testing.T) {
			var rl *slack.RateLimitedError
			if err := authTest(); !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
				t.Errorf("err = %v, want RateLimitedError 7s", err)
			}
		}},
		{name: "rate", fault: Fault{Method: "auth.test", Error: "fatal_error", Rate: 0.5}, check: func(t *testing.T) {
			failed := 0
			for range 100 {
				if authTest() != nil {
					failed++
				}
			}
			if failed < 20 || failed > 80 {
				t.Errorf("%d of 100 calls failed at rate 0.5", failed)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if status := control(t, e, http.MethodPost, "/_emulator/faults", tc.fault, nil); status != http.StatusOK {
				t.Fatalf("POST /_emulator/faults: %d", status)
			}
			tc.check(t)
			control(t, e, http.MethodDelete, "/_emulator/faults", nil, nil)
			if err := authTest(); err != nil {
				t.Errorf("after DELETE /_emulator/faults: %v", err)
			}
		})
	}
	if status := control(t, e, http.MethodPost, "/_emulator/faults", Fault{Method: "auth.test"}, nil); status != http.StatusBadRequest {
		t.Errorf("fault without effect: status %d, want 400", status)
	}
}

func TestCallsLogRedacted(t *testing.T) {
	e := StartTest(t, smallWorld())
	m := mint(t, e, TokenRequest{})
	// token as a form parameter, the way slack-go sends most methods
	if _, err := http.PostForm(e.APIURL()+"users.info", url.Values{"token": {m.Token}, "user": {"U0NOPE"}}); err != nil {
		t.Fatal(err)
	}
	var out struct{ Calls []Call }
	control(t, e, http.MethodGet, "/_emulator/calls?method=users.info", nil, &out)
	if len(out.Calls) != 1 {
		t.Fatalf("calls = %+v", out.Calls)
	}
	c := out.Calls[0]
	if c.Args["token"] != "[redacted]" || c.Args["user"] != "U0NOPE" || c.OK || c.Error != "user_not_found" || c.TeamID != m.TeamID || c.Time.IsZero() {
		t.Errorf("call = %+v", c)
	}
	all := e.Calls("")
	b, _ := json.Marshal(all)
	if strings.Contains(string(b), m.Token) {
		t.Errorf("call log holds the token: %s", b)
	}
}

func TestWorldAndTokensOverHTTP(t *testing.T) {
	e := StartTest(t, Config{Seed: 9})
	var w WorldInfo
	control(t, e, http.MethodGet, "/_emulator/world", nil, &w)
	if len(w.Workspaces) != 4 || len(w.Enterprises) != 1 || len(w.Enterprises[0].Workspaces) != 2 || len(w.Enterprises[0].ExternalTeams) != 5 {
		t.Fatalf("default world = %+v", w)
	}
	for i, ws := range w.Workspaces {
		wantShared := 0
		if ws.ID == w.Enterprises[0].Workspaces[1] {
			wantShared = 2 // a few Grid users are members of both Grid workspaces
		}
		if len(ws.Shared) != wantShared {
			t.Errorf("workspace %d shares %v, want %d users", i, ws.Shared, wantShared)
		}
		if ws.Users-len(ws.Shared) != 20 || len(ws.Groups) != 3 || len(ws.Admins) < 2 || ws.Bots == 0 || ws.Guests == 0 || ws.Deleted == 0 {
			t.Errorf("workspace %+v", ws)
		}
	}
	var again WorldInfo
	control(t, StartTest(t, Config{Seed: 9}), http.MethodGet, "/_emulator/world", nil, &again)
	if again.Workspaces[3].ID != w.Workspaces[3].ID || again.Enterprises[0].ExternalTeams[4].ID != w.Enterprises[0].ExternalTeams[4].ID {
		t.Errorf("same seed, different worlds")
	}
	var m MintedToken
	control(t, e, http.MethodPost, "/_emulator/tokens", TokenRequest{EnterpriseID: w.Enterprises[0].ID, Scopes: []string{"users:read"}}, &m)
	if m.Token == "" || m.EnterpriseID != w.Enterprises[0].ID || m.TeamID != "" {
		t.Fatalf("token = %+v", m)
	}
	// An org-level token lists the users of one member workspace (team_id).
	users, err := clientFor(e, m.Token).GetUsersContext(context.Background(), slack.GetUsersOptionTeamID(w.Enterprises[0].Workspaces[0]))
	if err != nil || len(users) != 20 {
		t.Errorf("org-level users.list: %d users, %v", len(users), err)
	}
	if status := control(t, e, http.MethodPost, "/_emulator/tokens", TokenRequest{TeamID: "T0NOPE"}, nil); status != http.StatusNotFound {
		t.Errorf("unknown team: %d, want 404", status)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "zero value", cfg: Config{}, ok: true},
		{name: "negative time scale", cfg: Config{TimeScale: -1}},
		{name: "no workspace at all", cfg: Config{Workspaces: -1, Enterprises: -1}},
		{name: "ingress without scheme", cfg: Config{IngressURL: "localhost:8080"}},
		{name: "missing seed file", cfg: Config{SeedFile: "/nonexistent/seed.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New: err = %v, want ok %v", err, tc.ok)
			}
			if e != nil {
				e.Close()
			}
		})
	}
}
