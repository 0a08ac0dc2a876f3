package ingress_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

var oauthScopes = []string{"commands", "chat:write", "incoming-webhook"}

// oauthFixture is the ingress with only its OAuth routes, real NATS and
// Redis, both emulators, and a binding worker whose handlers the test calls
// itself with what the ingress put on the stream (no consumers run, so the
// streams show exactly what the ingress published).
type oauthFixture struct {
	ctx    context.Context
	nats   *testenv.NATS
	rdb    *redis.Client
	keys   *store.Keyring
	states *store.OAuthStates
	slack  *slackemu.Emulator
	org    *orgemu.Emulator
	srv    *httptest.Server
	worker *binding.Worker
}

func newOAuthFixture(t *testing.T, wait time.Duration) *oauthFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	f := &oauthFixture{ctx: ctx, nats: testenv.StartStreams(t), rdb: testenv.StartRedis(t).Client,
		slack: slackemu.StartTest(t, slackemu.Config{Seed: 7, DisableRateLimits: true}), org: orgemu.StartTest(t, orgemu.Config{})}
	var err error
	if f.keys, err = store.ParseKeyring(store.GenerateKeySpec("k1")); err != nil {
		t.Fatal(err)
	}
	f.states = store.NewOAuthStates(f.rdb, f.keys)
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	org, err := orgapi.New(orgapi.Config{BaseURL: f.org.URL(), ClientID: "orgbridge", ClientSecret: "s3cret",
		RedirectURL: f.srv.URL + ingress.PathOrgCallback})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(f.nats.Conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ingress.New(ingress.Config{SigningSecret: secret}, js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(f.nats.JS)
	if err := s.MountOAuth(ingress.OAuthConfig{PublicURL: f.srv.URL, SlackAuthorizeURL: f.slack.URL() + "/oauth/v2/authorize",
		SlackClientID: f.slack.ClientID(), SlackAppID: f.slack.AppID(), SlackScopes: oauthScopes, Org: org,
		States: f.states, Keys: f.keys, Publisher: pub, Wait: wait}); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", s.Handler())
	f.worker, err = binding.New(binding.Config{Installations: store.NewInstallations(f.rdb, f.keys),
		Bindings: binding.NewStore(f.rdb, f.keys), Mappings: mapping.NewStore(f.rdb, f.keys), States: f.states,
		Locker: store.NewLocker(f.rdb), Idempotency: store.NewIdempotency(f.rdb), Keys: f.keys,
		Slack: &slackapi.OAuthApp{APIURL: f.slack.APIURL(), ClientID: f.slack.ClientID(), ClientSecret: f.slack.ClientSecret()},
		Org:   org, Publish: pub, PublicURL: f.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// noFollow is the browser: it keeps cookies (a flow is bound to the browser
// that started it) and does not follow redirects.
var noFollow = &http.Client{Timeout: 30 * time.Second, Jar: mustJar(),
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func mustJar() http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	return jar
}

// get fetches u without following redirects.
func get(t *testing.T, u string) (status int, location *url.URL, page string) {
	t.Helper()
	resp, err := noFollow.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	loc, _ := resp.Location()
	return resp.StatusCode, loc, string(b)
}

// published counts the messages on the SLACK and ORG streams.
func (f *oauthFixture) published(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	for _, name := range []string{events.StreamSlack, events.StreamOrg} {
		s, err := f.nats.JS.Stream(f.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += info.State.Msgs
	}
	return n
}

// nextMsg waits for message seq of stream and returns it as the bus delivers it.
func (f *oauthFixture) nextMsg(t *testing.T, stream string, seq uint64) *bus.Message {
	t.Helper()
	s, err := f.nats.JS.Stream(f.ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var raw *jetstream.RawStreamMsg
	testenv.Eventually(t, 20*time.Second, func() bool {
		raw, err = s.GetMsg(f.ctx, seq)
		return err == nil
	}, "message %d of %s not published", seq, stream)
	return &bus.Message{Subject: raw.Subject, Data: raw.Data, Header: raw.Header, Stream: stream, StreamSeq: raw.Sequence}
}

type pageResult struct {
	status int
	page   string
}

// callback opens a callback URL in the background, as the browser waiting on it.
func callback(t *testing.T, u string) <-chan pageResult {
	ch := make(chan pageResult, 1)
	go func() {
		resp, err := noFollow.Get(u)
		if err != nil {
			ch <- pageResult{status: -1, page: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- pageResult{status: resp.StatusCode, page: string(b)}
	}()
	return ch
}

// slackConsent starts an install at the ingress and lets the emulated Slack
// approve it: it returns the callback URL Slack redirects the browser to.
func (f *oauthFixture) slackConsent(t *testing.T, query string) *url.URL {
	t.Helper()
	status, loc, page := get(t, f.srv.URL+ingress.PathSlackInstall+query)
	if status != http.StatusFound || loc == nil {
		t.Fatalf("install: %d %s", status, page)
	}
	status, back, page := get(t, loc.String())
	if status != http.StatusFound || back == nil || back.Query().Get("code") == "" {
		t.Fatalf("Slack authorize: %d %s", status, page)
	}
	return back
}

// orgLogin follows a connect button for a ticket and logs into the emulated
// org as username: it returns the callback URL the org redirects to.
func (f *oauthFixture) orgLogin(t *testing.T, username string) *url.URL {
	t.Helper()
	ticket, err := f.states.IssueTicket(f.ctx, binding.Ticket{AppID: f.slack.AppID(), TeamID: "T0TEST", Scope: "T0TEST", SlackUserID: "U0TEST"})
	if err != nil {
		t.Fatal(err)
	}
	status, loc, page := get(t, f.srv.URL+ingress.PathOrgConnect+"?ticket="+url.QueryEscape(ticket)+"&login_hint="+url.QueryEscape(username))
	if status != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), f.org.URL()+"/services/oauth2/authorize") {
		t.Fatalf("connect: %d %v %s", status, loc, page)
	}
	status, back, page := get(t, loc.String())
	if status != http.StatusFound || back == nil || !strings.HasPrefix(back.String(), f.srv.URL+ingress.PathOrgCallback) {
		t.Fatalf("org authorize: %d %v %s", status, back, page)
	}
	return back
}

func TestSlackInstallRedirect(t *testing.T) {
	f := newOAuthFixture(t, 20*time.Second)
	status, loc, page := get(t, f.srv.URL+ingress.PathSlackInstall+"?team=T0X&channel=%23general")
	if status != http.StatusFound || loc == nil {
		t.Fatalf("GET /slack/install: %d %s", status, page)
	}
	q := loc.Query()
	checks := []struct{ name, got, want string }{
		{"authorize URL", loc.Scheme + "://" + loc.Host + loc.Path, f.slack.URL() + "/oauth/v2/authorize"},
		{"client_id", q.Get("client_id"), f.slack.ClientID()},
		{"scope", q.Get("scope"), strings.Join(oauthScopes, ",")},
		{"redirect_uri", q.Get("redirect_uri"), f.srv.URL + ingress.PathSlackCallback},
		{"team hint", q.Get("team"), "T0X"},
		{"channel hint", q.Get("channel"), "#general"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// The state is one the callback accepts, for a Slack install only.
	if _, err := f.states.Consume(f.ctx, "org", q.Get("state"), nil); err == nil {
		t.Error("the install state was accepted as an org login state")
	}
	if _, err := f.states.Consume(f.ctx, "slack", q.Get("state"), nil); err != nil {
		t.Errorf("the install state is not a valid Slack state: %v", err)
	}
	if f.published(t) != 0 {
		t.Error("starting an install published something")
	}
}

// refusals are the states a callback must refuse; each returns the callback
// query to send (good is a fresh, valid callback query for that route).
var refusals = []struct {
	name  string
	query func(t *testing.T, f *oauthFixture, good url.Values) url.Values
}{
	{"missing state", func(_ *testing.T, _ *oauthFixture, good url.Values) url.Values {
		good.Del("state")
		return good
	}},
	{"forged signature", func(_ *testing.T, _ *oauthFixture, good url.Values) url.Values {
		nonce, _, _ := strings.Cut(good.Get("state"), ".")
		good.Set("state", nonce+".Zm9yZ2Vk")
		return good
	}},
	{"made-up state", func(_ *testing.T, _ *oauthFixture, good url.Values) url.Values {
		good.Set("state", "bm9uY2U.c2ln")
		return good
	}},
	{"expired", func(t *testing.T, f *oauthFixture, good url.Values) url.Values {
		f.states.SetClock(func() time.Time { return time.Now().Add(store.StateTTL + time.Second) })
		t.Cleanup(func() { f.states.SetClock(nil) })
		return good
	}},
}

func TestSlackCallbackRefusesBadStates(t *testing.T) {
	f := newOAuthFixture(t, 20*time.Second)
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			back := f.slackConsent(t, "?channel=%23general")
			q := tt.query(t, f, back.Query())
			before := f.published(t)
			status, _, page := get(t, f.srv.URL+ingress.PathSlackCallback+"?"+q.Encode())
			if status != http.StatusBadRequest || !strings.Contains(page, "Install link expired") ||
				!strings.Contains(page, "Start again from "+f.srv.URL+ingress.PathSlackInstall) {
				t.Fatalf("callback: %d %s", status, page)
			}
			if f.published(t) != before {
				t.Fatal("a refused callback published the install")
			}
		})
	}
	t.Run("org state at the Slack callback", func(t *testing.T) {
		orgBack := f.orgLogin(t, "alice@acme.example")
		back := f.slackConsent(t, "?channel=%23general")
		q := back.Query()
		q.Set("state", orgBack.Query().Get("state"))
		before := f.published(t)
		if status, _, page := get(t, f.srv.URL+ingress.PathSlackCallback+"?"+q.Encode()); status != http.StatusBadRequest {
			t.Fatalf("callback: %d %s", status, page)
		}
		if f.published(t) != before {
			t.Fatal("a refused callback published the install")
		}
	})
}

func TestSlackCallbackPublishesAndShowsOutcome(t *testing.T) {
	f := newOAuthFixture(t, 20*time.Second)
	back := f.slackConsent(t, "?channel=%23general")
	code := back.Query().Get("code")
	done := callback(t, back.String())

	m := f.nextMsg(t, events.StreamSlack, 1)
	if m.Subject != events.SlackInstallSubject(events.NoTenant) {
		t.Fatalf("subject = %s", m.Subject)
	}
	if strings.Contains(string(m.Data), code) {
		t.Fatalf("the install code is in plain text on the stream: %s", m.Data)
	}
	var in events.SlackInstall
	if err := events.Decode(m.Header, m.Data, &in); err != nil {
		t.Fatal(err)
	}
	opened, err := f.keys.Open(store.Sealed{KeyID: in.Code.KeyID, Ciphertext: in.Code.Ciphertext}, binding.AADInstallCode(in.FlowID))
	if err != nil || opened.Reveal() != code {
		t.Fatalf("sealed code does not open to Slack's code: %v", err)
	}
	if in.AppID != f.slack.AppID() || in.RedirectURI != f.srv.URL+ingress.PathSlackCallback || in.Error != "" {
		t.Fatalf("install message = %+v", in)
	}
	if err := f.worker.HandleInstall(f.ctx, m); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.status != http.StatusOK || !strings.Contains(got.page, "Installed") {
		t.Fatalf("callback page: %d %s", got.status, got.page)
	}

	// The same callback again (a reload, or someone replaying the URL).
	before := f.published(t)
	status, _, page := get(t, back.String())
	if status != http.StatusBadRequest || !strings.Contains(page, "already used") {
		t.Fatalf("reused state: %d %s", status, page)
	}
	if f.published(t) != before {
		t.Fatal("a reused state published the install again")
	}
}

func TestCallbackStillWorking(t *testing.T) {
	f := newOAuthFixture(t, 300*time.Millisecond)
	back := f.slackConsent(t, "?channel=%23general")
	// Nobody handles the install: the page says so within the bound.
	got := <-callback(t, back.String())
	if got.status != http.StatusAccepted || !strings.Contains(got.page, "Still working") {
		t.Fatalf("callback page: %d %s", got.status, got.page)
	}
	if f.published(t) != 1 {
		t.Fatal("the install was not stored before the page answered")
	}
}

func TestOrgConnectRedirect(t *testing.T) {
	f := newOAuthFixture(t, 20*time.Second)
	tests := []struct {
		name       string
		ticket     func(t *testing.T) string
		wantStatus int
		wantPage   string
	}{
		{name: "good ticket", wantStatus: http.StatusFound, ticket: func(t *testing.T) string {
			id, err := f.states.IssueTicket(f.ctx, binding.Ticket{AppID: "A1", TeamID: "T1", Scope: "T1", SlackUserID: "U1"})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}},
		{name: "unknown ticket", ticket: func(*testing.T) string { return "nope" }, wantStatus: http.StatusBadRequest, wantPage: "Connect link expired"},
		{name: "no ticket", ticket: func(*testing.T) string { return "" }, wantStatus: http.StatusBadRequest, wantPage: "Run /orgbridge connect in Slack for a new one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, loc, page := get(t, f.srv.URL+ingress.PathOrgConnect+"?ticket="+url.QueryEscape(tt.ticket(t))+"&login_hint=alice%40acme.example")
			if status != tt.wantStatus || !strings.Contains(page, tt.wantPage) {
				t.Fatalf("connect: %d %s", status, page)
			}
			if status != http.StatusFound {
				return
			}
			q := loc.Query()
			if !strings.HasPrefix(loc.String(), f.org.URL()+"/services/oauth2/authorize?") || q.Get("client_id") != "orgbridge" ||
				q.Get("redirect_uri") != f.srv.URL+ingress.PathOrgCallback || q.Get("login_hint") != "alice@acme.example" ||
				q.Get("response_type") != "code" {
				t.Fatalf("org authorize URL = %s", loc)
			}
			var tk binding.Ticket
			if _, err := f.states.Consume(f.ctx, "org", q.Get("state"), &tk); err != nil || tk.SlackUserID != "U1" || tk.Scope != "T1" {
				t.Fatalf("state carries %+v, %v; want the ticket", tk, err)
			}
		})
	}
}

func TestOrgCallbackRefusesBadStates(t *testing.T) {
	f := newOAuthFixture(t, 20*time.Second)
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.query(t, f, f.orgLogin(t, "alice@acme.example").Query())
			before := f.published(t)
			status, _, page := get(t, f.srv.URL+ingress.PathOrgCallback+"?"+q.Encode())
			if status != http.StatusBadRequest || !strings.Contains(page, "Login link expired") || !strings.Contains(page, "Run /orgbridge connect") {
				t.Fatalf("callback: %d %s", status, page)
			}
			if f.published(t) != before {
				t.Fatal("a refused callback published the login")
			}
		})
	}
}

func TestOrgCallbackPublishesAndShowsOutcome(t *testing.T) {
	tests := []struct {
		name       string
		username   string
		wantError  string // the org's error on the redirect, carried on the stream
		wantStatus int
		wantPage   string
	}{
		{name: "login", username: "alice@acme.example", wantStatus: http.StatusOK, wantPage: "This workspace is connected to Acme"},
		{name: "org blocks the app (OAUTH_APP_BLOCKED)", username: "peter@initech.example", wantError: "OAUTH_APP_BLOCKED",
			wantStatus: http.StatusConflict, wantPage: "Your org does not permit this app"},
		{name: "user not approved (OAUTH_APP_ACCESS_DENIED)", username: "dave@acme.example", wantError: "OAUTH_APP_ACCESS_DENIED",
			wantStatus: http.StatusConflict, wantPage: "Your org user is not permitted to use this app"},
		{name: "inactive user (access_denied)", username: "erin@acme.example", wantError: "access_denied",
			wantStatus: http.StatusConflict, wantPage: "The org refused the login (user is inactive)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOAuthFixture(t, 20*time.Second)
			back := f.orgLogin(t, tt.username)
			if got := back.Query().Get("error"); got != tt.wantError {
				t.Fatalf("org redirect error = %q, want %q", got, tt.wantError)
			}
			done := callback(t, back.String())
			m := f.nextMsg(t, events.StreamOrg, 1)
			if m.Subject != events.OrgConnectSubject("T0TEST") {
				t.Fatalf("subject = %s", m.Subject)
			}
			var c events.OrgConnect
			if err := events.Decode(m.Header, m.Data, &c); err != nil {
				t.Fatal(err)
			}
			if c.Scope != "T0TEST" || c.SlackUserID != "U0TEST" || c.Error != tt.wantError {
				t.Fatalf("connect message = %+v", c)
			}
			if code := back.Query().Get("code"); code != "" {
				if strings.Contains(string(m.Data), code) {
					t.Fatalf("the org code is in plain text on the stream: %s", m.Data)
				}
				if opened, err := f.keys.Open(store.Sealed{KeyID: c.Code.KeyID, Ciphertext: c.Code.Ciphertext}, binding.AADOrgCode(c.FlowID)); err != nil || opened.Reveal() != code {
					t.Fatalf("sealed code does not open to the org's code: %v", err)
				}
			} else if c.Code.Ciphertext != "" {
				t.Fatal("an error redirect published a code")
			}
			if err := f.worker.HandleOrgConnect(f.ctx, m); err != nil {
				t.Fatal(err)
			}
			got := <-done
			if got.status != tt.wantStatus || !strings.Contains(got.page, tt.wantPage) {
				t.Fatalf("callback page: %d %s", got.status, got.page)
			}
			// Reused: refused, nothing more published.
			if status, _, page := get(t, back.String()); status != http.StatusBadRequest || !strings.Contains(page, "already used") {
				t.Fatalf("reused state: %d %s", status, page)
			}
			if n := f.published(t); n != 1 {
				t.Fatalf("%d messages on the streams, want 1", n)
			}
		})
	}
}

// TestOrgCallbackNeedsTheStartingBrowser: login CSRF. The org redirect of a
// login someone else started (their connect button, sent to a victim logged
// into the org) is refused in a browser without that login's cookie, or with
// a wrong one, and nothing is published.
func TestOrgCallbackNeedsTheStartingBrowser(t *testing.T) {
	f := newOAuthFixture(t, 20*time.Second)
	tests := []struct {
		name   string
		cookie func(back *url.URL) *http.Cookie
	}{
		{name: "no cookie", cookie: func(*url.URL) *http.Cookie { return nil }},
		{name: "wrong cookie", cookie: func(back *url.URL) *http.Cookie {
			return &http.Cookie{Name: "ob_org_" + store.StateNonce(back.Query().Get("state")), Value: "attacker-guess"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			back := f.orgLogin(t, "alice@acme.example") // the attacker's browser
			victim := &http.Client{Timeout: 30 * time.Second, Jar: mustJar(),
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			if c := tt.cookie(back); c != nil {
				victim.Jar.SetCookies(back, []*http.Cookie{c})
			}
			before := f.published(t)
			resp, err := victim.Get(back.String())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "another browser") {
				t.Fatalf("victim's callback: %d %s", resp.StatusCode, b)
			}
			if f.published(t) != before {
				t.Fatal("a callback from another browser published the login")
			}
		})
	}
	t.Run("the starting browser", func(t *testing.T) {
		back := f.orgLogin(t, "alice@acme.example")
		done := callback(t, back.String())
		m := f.nextMsg(t, events.StreamOrg, 1)
		if got := m.Header.Get(events.HeaderTeam); got != "T0TEST" {
			t.Errorf("org.connect tenant header = %q, want T0TEST", got)
		}
		if err := f.worker.HandleOrgConnect(f.ctx, m); err != nil {
			t.Fatal(err)
		}
		if got := <-done; got.status != http.StatusOK {
			t.Fatalf("callback: %d %s", got.status, got.page)
		}
	})
}

// TestConnectTicketSingleUse: a connect button works once.
func TestConnectTicketSingleUse(t *testing.T) {
	f := newOAuthFixture(t, 20*time.Second)
	ticket, err := f.states.IssueTicket(f.ctx, binding.Ticket{AppID: "A1", TeamID: "T1", Scope: "T1", SlackUserID: "U1"})
	if err != nil {
		t.Fatal(err)
	}
	u := f.srv.URL + ingress.PathOrgConnect + "?ticket=" + url.QueryEscape(ticket)
	if status, _, page := get(t, u); status != http.StatusFound {
		t.Fatalf("first use: %d %s", status, page)
	}
	if status, _, page := get(t, u); status != http.StatusBadRequest || !strings.Contains(page, "Connect link expired") {
		t.Fatalf("second use: %d %s", status, page)
	}
}

// TestCallbackOutlastsWriteTimeout: behind the real server settings
// (ingress.NewHTTPServer: WriteTimeout 10s) a callback still waiting after
// the write timeout answers "Still working" instead of a dropped connection.
func TestCallbackOutlastsWriteTimeout(t *testing.T) {
	f := newOAuthFixture(t, 11*time.Second)
	hs := ingress.NewHTTPServer("127.0.0.1:0", f.srv.Config.Handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	back := f.slackConsent(t, "?channel=%23general")
	// The browser comes back to the real server (same routes, same cookie path).
	u := *back
	u.Host = ln.Addr().String()
	noFollow.Jar.SetCookies(&u, noFollow.Jar.Cookies(back))
	got := <-callback(t, u.String()) // nobody handles the install
	if got.status != http.StatusAccepted || !strings.Contains(got.page, "Still working") {
		t.Fatalf("callback after the write timeout: %d %s", got.status, got.page)
	}
}
