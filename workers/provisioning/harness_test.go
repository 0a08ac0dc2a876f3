package provisioning_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

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
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// scale makes a Slack Tier 2 minute pass in 100 ms.
const scale = 600

// acme is the org emulator's default org; alice is its admin, bob is not.
const (
	acme      = "00D000000000001"
	team      = "T0PROV0001"
	slackRoot = "U0ADMIN001"
	team2     = "T0PROV0002"
	admin2    = "U1ADMIN001"
)

// seed is the Slack world of these tests: an admin who is also an org user,
// members, both kinds of guests, a bot, an app user, a deleted user, a user
// without email and one whose email differs from another's only by case.
var seed = map[string]any{
	"workspaces": []map[string]any{{"id": team, "name": "Acme Slack"}, {"id": team2, "name": "Acme New Slack"}},
	"users": []map[string]any{
		{"id": slackRoot, "team_id": team, "name": "alice", "first_name": "Alice", "last_name": "Archer", "email": "alice@acme.example", "is_admin": true, "title": "CEO"},
		{"id": "U0MEMB0001", "team_id": team, "name": "frank", "first_name": "Frank", "last_name": "Fox", "email": "frank@acme.example", "title": "Engineer"},
		{"id": "U0MEMB0002", "team_id": team, "name": "grace", "first_name": "Grace", "last_name": "Gale", "email": "grace@acme.example", "title": "Designer"},
		{"id": "U0GUEST001", "team_id": team, "name": "gina", "first_name": "Gina", "last_name": "Guest", "email": "gina@contractor.example", "is_restricted": true},
		{"id": "U0GUEST002", "team_id": team, "name": "sam", "first_name": "Sam", "last_name": "Single", "email": "sam@temp.example", "is_ultra_restricted": true},
		{"id": "U0BOT00001", "team_id": team, "name": "deploybot", "first_name": "Deploy", "last_name": "Bot", "is_bot": true},
		{"id": "U0APP00001", "team_id": team, "name": "helper", "first_name": "Helper", "last_name": "App", "email": "helper@apps.example", "is_app_user": true},
		{"id": "U0GONE0001", "team_id": team, "name": "olga", "first_name": "Olga", "last_name": "Old", "email": "olga@acme.example", "deleted": true},
		{"id": "U0NOMAIL01", "team_id": team, "name": "nomail", "first_name": "No", "last_name": "Mail"},
		{"id": "U0CASE0001", "team_id": team, "name": "grace2", "first_name": "Grace", "last_name": "Twin", "email": "Grace@Acme.example"},
		{"id": "U0MEMBER03", "team_id": team, "name": "henry", "first_name": "Henry", "last_name": "Hill", "email": "henry@acme.example"},
		// the second workspace: the same people under new ids, and a newcomer
		{"id": admin2, "team_id": team2, "name": "alice", "first_name": "Alice", "last_name": "Archer", "email": "alice@acme.example", "is_owner": true, "title": "CEO"},
		{"id": "U1FRANK001", "team_id": team2, "name": "frank", "first_name": "Frank", "last_name": "Fox", "email": "frank@acme.example", "title": "Engineer"},
		{"id": "U1NEW00001", "team_id": team2, "name": "nina", "first_name": "Nina", "last_name": "New", "email": "nina@acme.example"},
	},
	"groups": []map[string]any{
		{"id": "S0ENG00001", "team_id": team, "name": "Engineering", "handle": "eng", "users": []string{"U0MEMB0001", "U0MEMB0002"}},
		{"id": "S0SALES001", "team_id": team, "name": "Sales", "handle": "sales", "users": []string{slackRoot, "U0MEMBER03"}},
		{"id": "S0OPS00001", "team_id": team, "name": "Operations", "handle": "ops", "users": []string{"U0MEMBER03"}, "disabled": true},
	},
}

type env struct {
	t     *testing.T
	nats  *testenv.NATS
	rdb   redis.UniversalClient
	slack *slackemu.Emulator
	org   *orgemu.Emulator
	keys  *store.Keyring
	sc    *slackapi.Client
	oc    *orgapi.Client
	oauth *slackapi.OAuthApp
	// faults, when set, fails directory writes (a directory outage).
	faults *faultSwitch
	// ingress is the HTTP ingress Slack's events reach; mux takes the
	// worker's admin API and connect pages (serve).
	ingress *httptest.Server
	mux     *http.ServeMux
	states  *store.OAuthStates
}

func newEnv(t *testing.T) *env { return newEnvWith(t, seed) }

// newEnvWith is newEnv with another Slack world and, optionally, another
// org emulator configuration.
func newEnvWith(t *testing.T, world map[string]any, orgCfg ...orgemu.Config) *env {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(world)
	path := filepath.Join(dir, "slack.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, nats: testenv.StartStreams(t), faults: &faultSwitch{}}
	if onCluster {
		e.rdb = testenv.SharedRedisCluster(t).Client
	} else {
		e.rdb = testenv.StartRedis(t).Client
	}
	e.slack = slackemu.StartTest(t, slackemu.Config{SeedFile: path, TimeScale: scale})
	var oc orgemu.Config
	if len(orgCfg) > 0 {
		oc = orgCfg[0]
	}
	e.org = orgemu.StartTest(t, oc)
	keys, err := store.ParseKeyring(store.GenerateKeySpec("k1"))
	if err != nil {
		t.Fatal(err)
	}
	e.keys = keys
	if e.sc, err = slackapi.New(e.slack.APIURL()); err != nil {
		t.Fatal(err)
	}
	e.oc, err = orgapi.New(orgapi.Config{BaseURL: e.org.URL(), ClientID: "org-client", ClientSecret: "org-secret",
		RedirectURL: "http://127.0.0.1:1/provisioning/org/callback"})
	if err != nil {
		t.Fatal(err)
	}
	e.oauth = &slackapi.OAuthApp{APIURL: e.slack.APIURL(), ClientID: e.slack.ClientID(), ClientSecret: e.slack.ClientSecret()}

	// the ingress: verified Slack events go to JetStream
	e.mux = http.NewServeMux()
	e.ingress = httptest.NewServer(e.mux)
	t.Cleanup(e.ingress.Close)
	js, err := jetstream.New(e.nats.Conn, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingress.New(ingress.Config{SigningSecret: e.slack.SigningSecret()}, js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.mux.Handle("/", srv.Handler())
	e.states = store.NewOAuthStates(e.rdb, e.keys)
	return e
}

// deliverEvents makes the emulated Slack send its events to the ingress
// (without it, world changes reach orgbridge only through syncs).
func (e *env) deliverEvents() { e.slack.SetIngressURL(e.ingress.URL) }

// serve mounts w's connect pages and admin API (bearer "admin-token") on the ingress.
func (e *env) serve(w *provisioning.Worker) {
	oc, err := orgapi.New(orgapi.Config{BaseURL: e.org.URL(), ClientID: "org-client", ClientSecret: "org-secret",
		RedirectURL: e.ingress.URL + provisioning.PathOrgCallback})
	if err != nil {
		e.t.Fatal(err)
	}
	pages, start := w.ConnectHandler(provisioning.ConnectConfig{PublicURL: e.ingress.URL, SlackAuthorizeURL: e.slack.URL() + "/oauth/v2/authorize",
		SlackClientID: e.slack.ClientID(), Org: oc, States: e.states})
	e.mux.Handle("/provisioning/", pages)
	e.mux.Handle("/admin/api/provisioning/", httpx.AdminOnly("admin-token", w.AdminHandler(start)))
}

func (e *env) config(c provisioning.Config) provisioning.Config {
	if c.TimeScale == 0 {
		c.TimeScale = scale
	}
	if c.PageSize == 0 {
		c.PageSize = 4
	}
	if c.AckWait == 0 {
		c.AckWait = 2 * time.Second
	}
	if c.RunLockTTL == 0 {
		c.RunLockTTL = 3 * time.Second
	}
	return c
}

func (e *env) worker(c provisioning.Config) *provisioning.Worker {
	e.t.Helper()
	w, err := provisioning.New(provisioning.Deps{JS: e.nats.JS, Redis: e.rdb, Keys: e.keys, Slack: e.sc, Org: e.oc,
		SlackOAuth: e.oauth, Directory: e.faults.factory, Logger: testLogger(e.t)}, e.config(c))
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// start runs w's consumer until the test ends (or stop is called).
func (e *env) start(w *provisioning.Worker) (stop func()) {
	e.t.Helper()
	r, err := bus.NewRunner(e.nats.JS, testLogger(e.t), nil, bus.RunnerConfig{ShutdownTimeout: 2 * time.Second, DisableMaxDeliveriesCapture: true})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Register(r); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// slackToken signs user into Slack through OAuth with the provisioning
// user scopes, as the connect page does.
func (e *env) slackToken(user string) (store.Secret, store.Secret, time.Time) {
	e.t.Helper()
	q := url.Values{"client_id": {e.slack.ClientID()}, "user_scope": {strings.Join(provisioning.SlackUserScopes, ",")},
		"redirect_uri": {"http://127.0.0.1:1/cb"}, "user": {user}}
	switch {
	case strings.HasPrefix(user, "W"):
		q.Set("enterprise", gridID)
	case strings.HasPrefix(user, "U1"):
		q.Set("team", team2)
	default:
		q.Set("team", team)
	}
	loc := noFollow(e.t, e.slack.URL()+"/oauth/v2/authorize?"+q.Encode())
	code := loc.Query().Get("code")
	if code == "" {
		e.t.Fatalf("Slack authorize gave no code: %s", loc)
	}
	r, err := e.oauth.Exchange(context.Background(), code, "http://127.0.0.1:1/cb")
	if err != nil {
		e.t.Fatal(err)
	}
	exp := time.Now().Add(time.Duration(float64(time.Duration(r.AuthedUser.ExpiresIn)*time.Second) / scale))
	return store.Secret(r.AuthedUser.AccessToken), store.Secret(r.AuthedUser.RefreshToken), exp
}

// orgToken logs username into the org, as the connect page does.
func (e *env) orgToken(username string) *orgapi.Token {
	e.t.Helper()
	loc := noFollow(e.t, e.oc.AuthorizeURL("s", username))
	code, _, err := orgapi.ParseCallback(loc.Query())
	if err != nil {
		e.t.Fatalf("org login of %s: %v", username, err)
	}
	tok, err := e.oc.Exchange(context.Background(), code)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) connectRequest(slackUser, orgUser string) provisioning.ConnectRequest {
	st, sr, exp := e.slackToken(slackUser)
	ot := e.orgToken(orgUser)
	return provisioning.ConnectRequest{OrgID: acme, DirectoryURL: strings.TrimRight(ot.InstanceURL, "/") + "/services/scim/v2",
		DirectoryToken: store.Secret(ot.AccessToken.Reveal()), DirectoryRefresh: store.Secret(ot.RefreshToken.Reveal()),
		SlackToken: st, SlackRefresh: sr, SlackExpires: exp}
}

func (e *env) connect(w *provisioning.Worker) *provisioning.Integration {
	e.t.Helper()
	in, err := w.Connect(context.Background(), e.connectRequest(slackRoot, "alice@acme.example"))
	if err != nil {
		e.t.Fatalf("connect: %v", err)
	}
	return in
}

// scim is a directory client with alice's token, for reading what a sync did.
func (e *env) scim() *orgapi.SCIM {
	ot := e.orgToken("alice@acme.example")
	return orgapi.NewSCIM(strings.TrimRight(ot.InstanceURL, "/")+"/services/scim/v2", ot.AccessToken, nil)
}

// dirUsers reads the directory's users by userName.
func (e *env) dirUsers() map[string]orgapi.User {
	e.t.Helper()
	out := map[string]orgapi.User{}
	for u, err := range e.scim().AllUsers(context.Background(), "", 0) {
		if err != nil {
			e.t.Fatal(err)
		}
		out[strings.ToLower(u.UserName)] = u
	}
	return out
}

// sync starts a run and waits until it is no longer pending or running.
func (e *env) sync(w *provisioning.Worker, dry bool) *provisioning.Run {
	e.t.Helper()
	trigger := events.TriggerSyncNow
	if dry {
		trigger = events.TriggerPreview
	}
	run, err := w.StartRun(context.Background(), acme, trigger, "test", dry)
	if err != nil {
		e.t.Fatalf("start run: %v", err)
	}
	return e.wait(w, run.ID, func(r *provisioning.Run) bool {
		return r.Status != events.RunPending && r.Status != events.RunRunning
	})
}

func (e *env) wait(w *provisioning.Worker, id string, cond func(r *provisioning.Run) bool) *provisioning.Run {
	e.t.Helper()
	var last *provisioning.Run
	e.t.Cleanup(func() {
		if e.t.Failed() && last != nil {
			e.t.Logf("run %s when the test failed: %+v", id, *last)
		}
	})
	testenv.Eventually(e.t, 20*time.Second, func() bool {
		r, err := w.Store().Run(context.Background(), acme, id)
		if err != nil {
			return false
		}
		last = r
		return cond(r)
	}, "run %s did not reach the expected state", id)
	return last
}

func (e *env) report(w *provisioning.Worker, id string, f provisioning.RowFilter) []provisioning.Row {
	e.t.Helper()
	_, rows, err := w.Report(context.Background(), acme, id, f)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

func noFollow(t *testing.T, u string) *url.URL { return testenv.Redirect(t, u) }

// faultSwitch wraps the real SCIM client; while on, every write answers 503
// as a failing directory would.
type faultSwitch struct {
	mu sync.Mutex
	on bool
}

func (f *faultSwitch) set(on bool) { f.mu.Lock(); f.on = on; f.mu.Unlock() }
func (f *faultSwitch) failing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on
}

func (f *faultSwitch) factory(base string, tok store.Secret) provisioning.SCIMClient {
	return &faultyDir{SCIM: orgapi.NewSCIM(base, orgapi.Secret(tok.Reveal()), nil), f: f}
}

type faultyDir struct {
	*orgapi.SCIM
	f *faultSwitch
}

var errUnavailable = &orgapi.APIError{Status: 503, Code: "unavailable", Description: "directory down for maintenance"}

func (d *faultyDir) CreateUser(ctx context.Context, u *orgapi.User) (*orgapi.User, error) {
	if d.f.failing() {
		return nil, errUnavailable
	}
	return d.SCIM.CreateUser(ctx, u)
}

func (d *faultyDir) PatchUserIfMatch(ctx context.Context, id, v string, ops ...orgapi.PatchOperation) (*orgapi.User, error) {
	if d.f.failing() {
		return nil, errUnavailable
	}
	return d.SCIM.PatchUserIfMatch(ctx, id, v, ops...)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ORGBRIDGE_TEST_LOGS") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}
