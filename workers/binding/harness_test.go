package binding_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/httpx"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// env is the whole system in-process: NATS, Redis, both emulators, the
// ingress with its OAuth routes, and the binding and mapping workers.
type env struct {
	t        *testing.T
	ctx      context.Context
	nats     *testenv.NATS
	redis    *testenv.Redis
	slack    *slackemu.Emulator
	org      *orgemu.Emulator
	ingress  *httptest.Server
	keys     *store.Keyring
	installs *store.Installations
	bindings *binding.Store
	mappings *mapping.Store
	binding  *binding.Worker
	mapping  *mapping.Worker
	scopes   []string
}

type envOpts struct {
	scopes []string
	appID  string
	// slackHTTP, when set, is the HTTP client of the worker's Slack calls.
	slackHTTP *http.Client
	// lockWait is how long an org login waits for the workspace lock (0: the default).
	lockWait time.Duration
	// orgCheck is the worker's OrgCheckEvery (0: -1, every interaction);
	// orgProbe its OrgProbeEvery (0: the default).
	orgCheck, orgProbe time.Duration
	// orgHTTP, when set, is the HTTP client of the worker's org calls.
	orgHTTP *http.Client
}

func startEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, nats: testenv.StartStreams(t), redis: testenv.StartRedis(t)}
	e.scopes = o.scopes
	if e.scopes == nil {
		e.scopes = []string{"commands", "chat:write", "incoming-webhook", "users:read", "im:write"}
	}
	e.slack = slackemu.StartTest(t, slackemu.Config{Seed: 7, AppID: o.appID, DisableRateLimits: true})
	e.org = orgemu.StartTest(t, orgemu.Config{})
	var err error
	e.keys, err = store.ParseKeyring(store.GenerateKeySpec("k1"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := e.redis.Client
	e.installs = store.NewInstallations(rdb, e.keys)
	e.bindings = binding.NewStore(rdb, e.keys)
	e.mappings = mapping.NewStore(rdb, e.keys)
	states := store.NewOAuthStates(rdb, e.keys)

	// The ingress, with its public URL known before anything is built.
	mux := http.NewServeMux()
	e.ingress = httptest.NewServer(mux)
	t.Cleanup(e.ingress.Close)
	e.slack.SetIngressURL(e.ingress.URL)
	orgClient, err := orgapi.New(orgapi.Config{BaseURL: e.org.URL(), ClientID: "orgbridge", ClientSecret: "s3cret",
		RedirectURL: e.ingress.URL + ingress.PathOrgCallback})
	if err != nil {
		t.Fatal(err)
	}
	workerOrg := orgClient
	if o.orgHTTP != nil {
		if workerOrg, err = orgapi.New(orgapi.Config{BaseURL: e.org.URL(), ClientID: "orgbridge", ClientSecret: "s3cret",
			RedirectURL: e.ingress.URL + ingress.PathOrgCallback, HTTPClient: o.orgHTTP}); err != nil {
			t.Fatal(err)
		}
	}
	orgCheck := o.orgCheck
	if orgCheck == 0 {
		orgCheck = -1
	}
	js, err := jetstream.New(e.nats.Conn, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingress.New(ingress.Config{SigningSecret: e.slack.SigningSecret()}, js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(e.nats.JS)
	if err := srv.MountOAuth(ingress.OAuthConfig{PublicURL: e.ingress.URL, SlackAuthorizeURL: e.slack.URL() + "/oauth/v2/authorize",
		SlackClientID: e.slack.ClientID(), SlackAppID: e.slack.AppID(), SlackScopes: e.scopes, Org: orgClient,
		States: states, Keys: e.keys, Publisher: pub, Wait: ingress.MaxOAuthWait}); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", srv.Handler())

	e.binding, err = binding.New(binding.Config{Installations: e.installs, Bindings: e.bindings, Mappings: e.mappings,
		States: states, Locker: store.NewLocker(rdb), Idempotency: store.NewIdempotency(rdb), Keys: e.keys,
		Slack: &slackapi.OAuthApp{APIURL: e.slack.APIURL(), ClientID: e.slack.ClientID(), ClientSecret: e.slack.ClientSecret(), HTTP: o.slackHTTP},
		Org:   workerOrg, Publish: pub, PublicURL: e.ingress.URL, OrgCheckEvery: orgCheck, OrgProbeEvery: o.orgProbe,
		RefreshEvery: time.Hour, ConnectLockWait: o.lockWait, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.mapping, err = mapping.New(mapping.Config{Store: e.mappings, NC: e.nats.Conn, Idempotency: store.NewIdempotency(rdb),
		Bindings: e.bindings, SlackUsers: e.binding})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/admin/api/", httpx.AdminOnly("admin-token", adminMux(e.binding, e.mapping)))
	runner, err := bus.NewRunner(e.nats.JS, testLogger(t), nil, bus.RunnerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.binding.Register(runner); err != nil {
		t.Fatal(err)
	}
	if err := e.mapping.Register(runner); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { _ = runner.Run(runCtx); done <- struct{}{} }()
	go func() { _ = e.mapping.Run(runCtx); done <- struct{}{} }()
	go func() { _ = e.binding.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() {
		stop()
		for range 3 {
			<-done
		}
	})
	return e
}

func adminMux(b *binding.Worker, m *mapping.Worker) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/admin/api/installations", b.AdminHandler())
	mux.Handle("/admin/api/bindings/", b.AdminHandler())
	mux.Handle("/admin/api/orgs/", b.AdminHandler())
	mux.Handle("/admin/api/mappings", m.AdminHandler())
	mux.Handle("/admin/api/mappings/", m.AdminHandler())
	return mux
}

// admin calls the admin API with the admin token and returns status and body.
func (e *env) admin(method, path, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.ingress.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// browse follows redirects like a browser and returns the final page.
func (e *env) browse(u string) (int, string) {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// install runs the Slack install in a browser for team (with a channel).
func (e *env) install(team string) {
	e.t.Helper()
	code, page := e.browse(e.ingress.URL + "/slack/install?team=" + team + "&channel=%23general")
	if code != http.StatusOK || !strings.Contains(page, "Installed") {
		e.t.Fatalf("install of %s: %d %s", team, code, page)
	}
}

// teams returns the ids of the emulator's standalone workspaces.
func (e *env) teams() []string {
	var out []string
	for _, ws := range e.slack.World().Workspaces {
		if ws.EnterpriseID == "" {
			out = append(out, ws.ID)
		}
	}
	return out
}

// users returns active, non-bot members of team.
func (e *env) users(team string) []string {
	e.t.Helper()
	tok, err := e.slack.MintToken(slackemu.TokenRequest{TeamID: team, Scopes: []string{"users:read"}})
	if err != nil {
		e.t.Fatal(err)
	}
	list, err := slack.New(tok.Token, slack.OptionAPIURL(e.slack.APIURL())).GetUsersContext(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, u := range list {
		if !u.Deleted && !u.IsBot && !u.IsRestricted && u.ID != "USLACKBOT" {
			out = append(out, u.ID)
		}
	}
	return out
}

// command delivers a slash command and waits for orgbridge's answer on its response_url.
func (e *env) command(team, user, cmd, text string) slackemu.Message {
	e.t.Helper()
	before := len(e.slack.Messages(team, user))
	d, err := e.slack.DeliverCommand(slackemu.Command{TeamID: team, UserID: user, Command: cmd, Text: text})
	if err != nil || d.Status != http.StatusOK {
		e.t.Fatalf("deliver %s %s: %+v %v", cmd, text, d, err)
	}
	return e.waitMessage(team, user, before)
}

func (e *env) waitMessage(team, user string, before int) slackemu.Message {
	e.t.Helper()
	var msgs []slackemu.Message
	testenv.Eventually(e.t, 20*time.Second, func() bool {
		msgs = e.slack.Messages(team, user)
		return len(msgs) > before
	}, "no answer for %s/%s", team, user)
	return msgs[before]
}

// connectURL pulls the "connect" button's URL out of a prompt.
func connectURL(t *testing.T, m slackemu.Message) string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			URL      string `json:"url"`
		} `json:"elements"`
	}
	raw := m.Blocks
	if len(raw) == 0 && len(m.View) > 0 {
		var v struct {
			Blocks json.RawMessage `json:"blocks"`
		}
		_ = json.Unmarshal(m.View, &v)
		raw = v.Blocks
	}
	_ = json.Unmarshal(raw, &blocks)
	for _, b := range blocks {
		for _, el := range b.Elements {
			if el.ActionID == binding.ActionConnect {
				return el.URL
			}
		}
	}
	t.Fatalf("no connect button in %s / %s", m.Text, raw)
	return ""
}

// connect runs a user's prompt → org login as username → outcome page.
func (e *env) connect(team, user, username string) (int, string) {
	e.t.Helper()
	m := e.command(team, user, "/orgbridge", "connect")
	if !strings.Contains(m.Text, "onnect") {
		e.t.Fatalf("expected a connect prompt, got %q", m.Text)
	}
	return e.login(connectURL(e.t, m), username)
}

func (e *env) login(button, username string) (int, string) {
	return e.browse(button + "&login_hint=" + username)
}

func (e *env) mustConnect(team, user, username string) {
	e.t.Helper()
	code, page := e.connect(team, user, username)
	if code != http.StatusOK || !strings.Contains(page, "Connected") {
		e.t.Fatalf("connect %s as %s: %d %s", user, username, code, page)
	}
}

func (e *env) mapped(team, user string) *mapping.Mapping {
	m, err := e.mappings.Get(e.ctx, team, user)
	if err != nil {
		return nil
	}
	return m
}

func (e *env) boundOrg(team string) string {
	org, _ := e.bindings.BoundOrg(e.ctx, team)
	return org
}

const (
	acme    = "00D000000000001"
	globex  = "00D000000000002"
	scratch = "00D000000000003"
)

func subscribeApp(t *testing.T, e *env, subject string) jetstream.Consumer {
	t.Helper()
	c, err := e.nats.JS.CreateOrUpdateConsumer(e.ctx, events.StreamApp, jetstream.ConsumerConfig{
		Durable: "test-app-handler", FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func natsMaxWait(d time.Duration) jetstream.FetchOpt { return jetstream.FetchMaxWait(d) }

func slackemuCommand(team, user, cmd, text string) slackemu.Command {
	return slackemu.Command{TeamID: team, UserID: user, Command: cmd, Text: text}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testLogger logs to the test's output when ORGBRIDGE_TEST_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ORGBRIDGE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
