package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/console"
	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/mapping"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

const (
	acme   = "00D000000000001"
	globex = "00D000000000002"
	team   = "T0CONSOLE1"
)

// world is the Slack workspace of the console tests: its first user (the
// one the emulated Slack approves as) is an admin; groups to pick.
var world = map[string]any{
	"workspaces": []map[string]any{{"id": team, "name": "Acme Slack"}},
	"users": []map[string]any{
		{"id": "U0ALICE001", "team_id": team, "name": "alice", "first_name": "Alice", "last_name": "Archer", "email": "alice@acme.example", "is_admin": true},
		{"id": "U0FRANK001", "team_id": team, "name": "frank", "first_name": "Frank", "last_name": "Fox", "email": "frank@acme.example", "title": "Engineer"},
		{"id": "U0GRACE001", "team_id": team, "name": "grace", "first_name": "Grace", "last_name": "Gale", "email": "grace@acme.example"},
		{"id": "U0HENRY001", "team_id": team, "name": "henry", "first_name": "Henry", "last_name": "Hill", "email": "henry@acme.example"},
		{"id": "U0IRIS0001", "team_id": team, "name": "iris", "first_name": "Iris", "last_name": "Ives", "email": "iris@acme.example"},
		{"id": "U0TWIN0001", "team_id": team, "name": "twin", "first_name": "Grace", "last_name": "Twin", "email": "Grace@Acme.example"},
	},
	"groups": []map[string]any{
		{"id": "S0ENG00001", "team_id": team, "name": "Engineering", "handle": "eng", "users": []string{"U0FRANK001", "U0GRACE001"}},
		{"id": "S0SALES001", "team_id": team, "name": "Sales", "handle": "sales", "users": []string{"U0ALICE001", "U0HENRY001", "U0TWIN0001"}},
		{"id": "S0OPS00001", "team_id": team, "name": "Operations", "handle": "ops", "users": []string{"U0IRIS0001"}},
	},
}

// env is the console on a loopback server with real NATS, Redis, the
// emulators and the provisioning worker, and a headless Chromium.
type env struct {
	oauth    *slackapi.OAuthApp
	t        *testing.T
	srv      *httptest.Server
	slack    *slackemu.Emulator
	org      *orgemu.Emulator
	prov     *provisioning.Worker
	mappings *mapping.Store
	browser  context.Context
	// for envOptions (operator_browser_test.go): the servers, the keys, and
	// more consumers for the runner
	nats     *testenv.NATS
	redis    *testenv.Redis
	keys     *store.Keyring
	register []func(*bus.Runner) error
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	n, rd := testenv.StartStreams(t), testenv.StartRedis(t)
	dir := t.TempDir()
	b, _ := json.Marshal(world)
	seed := filepath.Join(dir, "slack.json")
	if err := os.WriteFile(seed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, nats: n, redis: rd}
	e.slack = slackemu.StartTest(t, slackemu.Config{SeedFile: seed, TimeScale: 600})
	e.org = orgemu.StartTest(t, orgemu.Config{})
	if err := e.org.SetAdmin(globex, "hank@globex.example", true); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	keys, err := store.ParseKeyring(store.GenerateKeySpec("k1"))
	if err != nil {
		t.Fatal(err)
	}
	e.keys = keys
	sc, err := slackapi.New(e.slack.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	orgFor := func(path string) *orgapi.Client {
		c, err := orgapi.New(orgapi.Config{BaseURL: e.org.URL(), ClientID: "orgbridge", ClientSecret: "s3cret", RedirectURL: e.srv.URL + path})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	oauth := &slackapi.OAuthApp{APIURL: e.slack.APIURL(), ClientID: e.slack.ClientID(), ClientSecret: e.slack.ClientSecret()}
	e.oauth = oauth
	e.prov, err = provisioning.New(provisioning.Deps{JS: n.JS, Redis: rd.Client, Keys: keys, Slack: sc, Org: orgFor(provisioning.PathOrgCallback),
		SlackOAuth: oauth}, provisioning.Config{TimeScale: 600, PageSize: 3, AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pages, start := e.prov.ConnectHandler(provisioning.ConnectConfig{PublicURL: e.srv.URL, SlackAuthorizeURL: e.slack.URL() + "/oauth/v2/authorize",
		SlackClientID: e.slack.ClientID(), Org: orgFor(provisioning.PathOrgCallback), States: store.NewOAuthStates(rd.Client, keys),
		ReturnURL: func(org string) string { return e.srv.URL + console.Prefix + "orgs/" + org + "/provisioning" }})
	mux.Handle("/provisioning/", pages)
	e.mappings = mapping.NewStore(rd.Client, keys)
	cfg := console.Config{PublicURL: e.srv.URL, Org: orgFor("/console/auth/callback"), AdminToken: "operator-token-0123456789",
		Redis: rd.Client, Provisioning: e.prov, ConnectURL: start, Mappings: e.mappings, Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(e, &cfg)
	}
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(console.Prefix, c.Handler())

	r, err := bus.NewRunner(n.JS, slog.New(slog.DiscardHandler), nil, bus.RunnerConfig{ShutdownTimeout: 2 * time.Second, DisableMaxDeliveriesCapture: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.prov.Register(r); err != nil {
		t.Fatal(err)
	}
	for _, reg := range e.register {
		if err := reg(r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.browser = newBrowser(t)
	return e
}

// chromium finds Debian's Chromium, which `make deps` installs.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("ORGBRIDGE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Fatal("the browser tests need Debian's chromium: run `make deps` (apt-get install chromium), or set ORGBRIDGE_CHROMIUM")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// newTab opens another browser with its own cookies (another person).
func (e *env) newPerson() context.Context { return newBrowser(e.t) }

// run runs steps in ctx with a deadline, failing the test with what the page shows.
func (e *env) run(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		e.t.Fatalf("%s: %v\n%s", what, err, e.page(ctx))
	}
	e.screenshot(ctx, what)
}

// value runs one action that reads something, failing the test like run.
func value[T any](e *env, ctx context.Context, what string, a chromedp.Action[T]) T {
	e.t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		e.t.Fatalf("%s: %v\n%s", what, err, e.page(ctx))
	}
	return v
}

// page describes where the browser is and what it shows, for failures.
func (e *env) page(ctx context.Context) string {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(sctx, chromedp.Location())
	body, _ := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("body")))
	return "at " + loc + ":\n" + body
}

// screenshot saves the page as docs/screenshots/<name>.png when
// ORGBRIDGE_SCREENSHOTS names a directory (`make screenshots`).
func (e *env) screenshot(ctx context.Context, what string) {
	dir := os.Getenv("ORGBRIDGE_SCREENSHOTS")
	if dir == "" {
		return
	}
	name := screenshotNames[what]
	if name == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		e.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		e.t.Logf("screenshot %s: %v", name, err)
	}
}

// screenshotNames are the steps whose pages go to docs/screenshots.
var screenshotNames = map[string]string{
	"save":                "provisioning-settings",
	"sync now":            "sync-report",
	"scope to Sales only": "held-deactivations",
	"my mappings":         "my-slack-mappings",
	// admin_browser_test.go, operator_browser_test.go
	"workspaces":                      "workspaces",
	"mappings":                        "mappings",
	"delete the workspace's mappings": "mappings-bulk-delete",
	"import mappings":                 "mappings-import",
	"the confirmation":                "disconnect-confirm",
	"disconnect status":               "disconnect-status",
	"policies":                        "disconnect-policy-run",
	"dead letters":                    "dead-letters",
	"dead letter":                     "dead-letter",
	"purge":                           "dead-letters-purge",
	"streams":                         "streams",
	"streams with a node stopped":     "streams-cluster", // cluster_browser_test.go
}

// text reads the visible text of the CSS selector sel.
func (e *env) text(ctx context.Context, sel string) string {
	e.t.Helper()
	return value(e, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// signInWithOrg signs in through the org's login page as username.
func (e *env) signInWithOrg(ctx context.Context, username string) {
	e.t.Helper()
	e.signInAt(ctx, e.srv.URL, username)
}

// signInAt is signInWithOrg on the console at base.
func (e *env) signInAt(ctx context.Context, base, username string) {
	e.t.Helper()
	e.run(ctx, "sign in as "+username,
		chromedp.Navigate(base+"/console/"),
		chromedp.Click(chromedp.ID("login-org")),
		chromedp.SendKeys(chromedp.CSS(`input[name="login_hint"]`), username),
		chromedp.Submit(chromedp.CSS(`input[name="login_hint"]`)),
		chromedp.WaitVisible(chromedp.CSS(".signout")),
	)
}

// status is the HTTP status a page answers in this browser's session
// (read with fetch, as the page's own scripts would).
func (e *env) status(ctx context.Context, method, path string) int {
	e.t.Helper()
	js := fmt.Sprintf(`fetch(%q, {method: %q, redirect: "manual", credentials: "same-origin"}).then(r => r.status)`, path, method)
	return value(e, ctx, method+" "+path, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
}

func contains(t *testing.T, got, want, what string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: %q does not contain %q", what, got, want)
	}
}

// present waits until the CSS selector sel matches an element (hidden ones too).
func (e *env) present(ctx context.Context, sel string) {
	e.t.Helper()
	value(e, ctx, "wait for "+sel, chromedp.Poll[bool](fmt.Sprintf("document.querySelector(%q) !== null", sel), chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
}

// absent waits until nothing matches sel.
func (e *env) absent(ctx context.Context, sel string) {
	e.t.Helper()
	value(e, ctx, "wait for no "+sel, chromedp.Poll[bool](fmt.Sprintf("document.querySelector(%q) === null", sel), chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
}

// settled waits until sel is on the page and htmx has finished swapping it
// in (a click before that would find no handler yet, as a person's click a
// few milliseconds after the list appears might).
func (e *env) settled(ctx context.Context, sel string) {
	e.t.Helper()
	js := fmt.Sprintf(`document.querySelector(%q) !== null && document.querySelector(".htmx-settling, .htmx-added, .htmx-swapping, .htmx-request") === null`, sel)
	tctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerHTML.slice(0, 4000) + " BUSY: " + Array.from(document.querySelectorAll(".htmx-settling, .htmx-added, .htmx-swapping, .htmx-request")).map(e => e.outerHTML.slice(0,200)).join(" ;; ")`))
		e.t.Fatalf("wait for %s: %v\n%s", sel, err, state)
	}
}

// waitURL waits until the page's address contains part (after a click that
// navigates): it asks the page every 50 ms, a navigation in between is no error.
func (e *env) waitURL(ctx context.Context, part string) {
	e.t.Helper()
	js := fmt.Sprintf("location.href.includes(%q) && document.readyState === 'complete'", part)
	testenv.Eventually(e.t, 20*time.Second, func() bool {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ok, err := chromedp.Run(qctx, chromedp.Evaluate[bool](js))
		return err == nil && ok
	}, "no page at …%s:\n%s", part, func() string { return "" }())
}

// until waits until the JavaScript condition js holds on the page (asked
// every 50 ms; navigations in between are no error).
func (e *env) until(ctx context.Context, js, what string) {
	e.t.Helper()
	testenv.Eventually(e.t, 20*time.Second, func() bool {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ok, err := chromedp.Run(qctx, chromedp.Evaluate[bool](js))
		return err == nil && ok
	}, "%s", what)
}

// orgUserID is the org's id of username (the emulator's SCIM id).
func (e *env) orgUserID(username string) string {
	e.t.Helper()
	snap, err := e.org.SCIMSnapshot(acme)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, u := range snap.Users {
		if u.UserName == username {
			return u.ID
		}
	}
	e.t.Fatalf("no org user %s", username)
	return ""
}

// connectAcme connects Acme's provisioning to the Slack workspace without
// the browser (alice is an admin on both sides).
func (e *env) connectAcme() {
	e.t.Helper()
	q := url.Values{"client_id": {e.slack.ClientID()}, "user_scope": {strings.Join(provisioning.SlackUserScopes, ",")},
		"redirect_uri": {"http://127.0.0.1:1/cb"}, "team": {team}, "user": {"U0ALICE001"}}
	loc := testenv.Redirect(e.t, e.slack.URL()+"/oauth/v2/authorize?"+q.Encode())
	r, err := e.oauth.Exchange(context.Background(), loc.Query().Get("code"), "http://127.0.0.1:1/cb")
	if err != nil {
		e.t.Fatal(err)
	}
	oc, err := orgapi.New(orgapi.Config{BaseURL: e.org.URL(), ClientID: "t", ClientSecret: "t", RedirectURL: "http://127.0.0.1:1/cb"})
	if err != nil {
		e.t.Fatal(err)
	}
	code, _, err := orgapi.ParseCallback(testenv.Redirect(e.t, oc.AuthorizeURL("s", "alice@acme.example")).Query())
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := oc.Exchange(context.Background(), code)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.prov.Connect(context.Background(), provisioning.ConnectRequest{OrgID: acme,
		DirectoryURL:   strings.TrimRight(tok.InstanceURL, "/") + "/services/scim/v2",
		DirectoryToken: store.Secret(tok.AccessToken.Reveal()), SlackToken: store.Secret(r.AuthedUser.AccessToken)}); err != nil {
		e.t.Fatal(err)
	}
}
