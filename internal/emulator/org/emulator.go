// Package orgemu emulates the parts of a Salesforce-style org that orgbridge talks
// to: the OAuth 2.0 web-server flow (authorize, token, userinfo, identity URL), a
// SCIM 2.0 directory per org (RFC 7643/7644) and a control API under /_emulator/
// that tests and dev mode use to expire orgs, deactivate users and change the
// app's permissions. It keeps everything in memory and starts no goroutines, so
// it is cheap to run in every test, in benchmarks and behind `orgbridge dev`.
package orgemu

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Defaults for [Config].
const (
	DefaultCodeTTL        = 15 * time.Minute
	DefaultAccessTokenTTL = 2 * time.Hour
	DefaultScratchTTL     = 24 * time.Hour
	DefaultUsersPerOrg    = 3
	DefaultOrgs           = 2
)

// Config configures an [Emulator]. The zero value gives the documented default
// world (docs/EMULATORS.md), accepts any client id and secret, and does not
// rate-limit SCIM writes.
type Config struct {
	// Seed drives the generated world when Orgs or UsersPerOrg is set; the same
	// seed always gives the same orgs, users and ids.
	Seed int64
	// Orgs and UsersPerOrg, when either is non-zero, replace the default world by
	// a generated one (Orgs defaults to 2, UsersPerOrg to 3).
	Orgs, UsersPerOrg int
	// ClientID and ClientSecret, when set, are the only credentials the token
	// endpoint accepts (invalid_client otherwise) and ClientID the only one
	// authorize accepts. Empty accepts any.
	ClientID, ClientSecret string
	// SCIMWritesPerSecond limits SCIM writes (POST, PUT, PATCH, DELETE) across
	// the emulator; over the limit the answer is 429 with Retry-After. 0 means
	// unlimited.
	SCIMWritesPerSecond float64
	// SCIMWriteBurst is how many writes may go back to back before the rate
	// applies; 0 means one second's worth (at least 1).
	SCIMWriteBurst int
	// SCIMToken is a static bearer token the SCIM API accepts as an admin of
	// SCIMOrgID (the first org when empty), besides tokens minted by OAuth.
	SCIMToken string
	SCIMOrgID string
	// CodeTTL and AccessTokenTTL bound authorization codes and access tokens.
	CodeTTL, AccessTokenTTL time.Duration
	// Now is the clock; time.Now when nil. Tests move it to expire codes,
	// tokens and scratch orgs.
	Now func() time.Time
	// Logger receives one line per rejected request; discarded when nil.
	Logger *slog.Logger
}

// Validate reports a configuration the emulator cannot run with.
func (c Config) Validate() error {
	switch {
	case c.Orgs < 0 || c.UsersPerOrg < 0:
		return errors.New("orgemu: Orgs and UsersPerOrg must not be negative")
	case c.SCIMWritesPerSecond < 0:
		return errors.New("orgemu: SCIMWritesPerSecond must not be negative")
	case c.SCIMWriteBurst < 0:
		return errors.New("orgemu: SCIMWriteBurst must not be negative")
	case c.CodeTTL < 0 || c.AccessTokenTTL < 0:
		return errors.New("orgemu: TTLs must not be negative")
	case c.ClientSecret != "" && c.ClientID == "":
		return errors.New("orgemu: ClientSecret needs ClientID")
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.CodeTTL == 0 {
		c.CodeTTL = DefaultCodeTTL
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Emulator is an in-memory org service. Its methods are safe for concurrent use.
type Emulator struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	limiter *limiter
	mux     *http.ServeMux

	base atomic.Pointer[string]

	mu      sync.RWMutex
	orgs    map[string]*org // by 15-char id
	orgList []*org          // creation order
	codes   map[string]*authCode
	access  map[string]*grant
	refresh map[string]*grant
	nextID  map[string]int64 // per key prefix: 005, 00G, 00D

	stats stats

	closeOnce sync.Once
	srv       *httptest.Server
}

type stats struct {
	scimReads, scimWrites, scimRefused, scimThrottled, tokens atomic.Int64
}

// New builds an emulator holding the configured world. It starts nothing: serve
// [Emulator.Handler] yourself (and call [Emulator.SetBaseURL]) or use [StartTest].
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	e := &Emulator{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		orgs:    make(map[string]*org),
		codes:   make(map[string]*authCode),
		access:  make(map[string]*grant),
		refresh: make(map[string]*grant),
		nextID:  make(map[string]int64),
	}
	if cfg.SCIMWritesPerSecond > 0 {
		burst := cfg.SCIMWriteBurst
		if burst == 0 {
			burst = max(1, int(cfg.SCIMWritesPerSecond))
		}
		e.limiter = newLimiter(cfg.SCIMWritesPerSecond, burst, cfg.Now)
	}
	base := "http://org.emulator.invalid"
	e.base.Store(&base)
	if err := e.seed(); err != nil {
		return nil, err
	}
	if cfg.SCIMToken != "" && cfg.SCIMOrgID != "" {
		if _, ok := e.orgs[normID(cfg.SCIMOrgID)]; !ok {
			return nil, errors.New("orgemu: SCIMOrgID names no org in the world")
		}
	}
	e.mux = e.routes()
	return e, nil
}

// Handler serves the OAuth, identity, SCIM and control endpoints.
func (e *Emulator) Handler() http.Handler { return e.mux }

// SetBaseURL tells the emulator the URL it is reachable at, which it puts in
// identity URLs, instance_url and SCIM locations.
func (e *Emulator) SetBaseURL(u string) {
	u = strings.TrimRight(u, "/")
	e.base.Store(&u)
}

// URL is the base URL set by [Emulator.SetBaseURL] or [StartTest].
func (e *Emulator) URL() string { return *e.base.Load() }

// Close stops the test server [StartTest] started, if any. It is safe to call
// more than once; an emulator served elsewhere needs no Close.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() {
		if e.srv != nil {
			e.srv.Close()
		}
	})
}

// StartTest builds an emulator from cfg, serves it on a loopback httptest server
// and closes it when the test ends.
func StartTest(t testing.TB, cfg Config) *Emulator {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("orgemu: %v", err)
	}
	e.srv = httptest.NewServer(e.Handler())
	e.SetBaseURL(e.srv.URL)
	t.Cleanup(e.Close)
	return e
}

// Stats counts what the emulator served, so tests and benchmarks can assert on
// the number of calls (a no-change sync writes nothing). SCIM calls are
// counted once authenticated: SCIMWrites are the writes (POST, PUT, PATCH,
// DELETE) the directory accepted (2xx), SCIMRefused those it answered with
// a 4xx other than 429 (409 conflict, 412 changed, 400, 404, 405 …), and
// SCIMThrottled those refused with 429 by the write rate limit.
type Stats struct {
	SCIMReads     int64 `json:"scim_reads"`
	SCIMWrites    int64 `json:"scim_writes"`
	SCIMRefused   int64 `json:"scim_refused"`
	SCIMThrottled int64 `json:"scim_throttled"`
	TokensIssued  int64 `json:"tokens_issued"`
}

// Stats returns the counters since the emulator was built.
func (e *Emulator) Stats() Stats {
	return Stats{
		SCIMReads:     e.stats.scimReads.Load(),
		SCIMWrites:    e.stats.scimWrites.Load(),
		SCIMRefused:   e.stats.scimRefused.Load(),
		SCIMThrottled: e.stats.scimThrottled.Load(),
		TokensIssued:  e.stats.tokens.Load(),
	}
}

func (e *Emulator) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /services/oauth2/authorize", e.handleAuthorize)
	m.HandleFunc("POST /services/oauth2/token", e.handleToken)
	m.HandleFunc("GET /services/oauth2/userinfo", e.handleUserInfo)
	m.HandleFunc("POST /services/oauth2/userinfo", e.handleUserInfo)
	m.HandleFunc("GET /id/{org}/{user}", e.handleIdentity)
	m.HandleFunc("GET /services/data/{version}/query", e.handleQuery)
	m.HandleFunc("GET /services/data/{version}/query/", e.handleQuery)

	const scim = "/services/scim/v2"
	m.HandleFunc("GET "+scim+"/ServiceProviderConfig", e.scimAuth(false, e.handleSPConfig))
	m.HandleFunc("POST "+scim+"/Users", e.scimAuth(true, e.handleCreateUser))
	m.HandleFunc("GET "+scim+"/Users", e.scimAuth(false, e.handleListUsers))
	m.HandleFunc("GET "+scim+"/Users/{id}", e.scimAuth(false, e.handleGetUser))
	m.HandleFunc("PUT "+scim+"/Users/{id}", e.scimAuth(true, e.handleReplaceUser))
	m.HandleFunc("PATCH "+scim+"/Users/{id}", e.scimAuth(true, e.handlePatchUser))
	m.HandleFunc("DELETE "+scim+"/Users/{id}", e.scimAuth(true, e.handleDeleteUser))
	m.HandleFunc("POST "+scim+"/Groups", e.scimAuth(true, e.handleCreateGroup))
	m.HandleFunc("GET "+scim+"/Groups", e.scimAuth(false, e.handleListGroups))
	m.HandleFunc("GET "+scim+"/Groups/{id}", e.scimAuth(false, e.handleGetGroup))
	m.HandleFunc("PUT "+scim+"/Groups/{id}", e.scimAuth(true, e.handleReplaceGroup))
	m.HandleFunc("PATCH "+scim+"/Groups/{id}", e.scimAuth(true, e.handlePatchGroup))
	m.HandleFunc("DELETE "+scim+"/Groups/{id}", e.scimAuth(true, e.handleDeleteGroup))
	m.HandleFunc(scim+"/", e.scimAuth(false, func(w http.ResponseWriter, r *http.Request, _ *org) {
		writeSCIMError(w, http.StatusNotFound, "", "no SCIM endpoint "+r.Method+" "+r.URL.Path)
	}))

	m.HandleFunc("GET /_emulator/world", e.handleWorld)
	m.HandleFunc("GET /_emulator/stats", e.handleStats)
	m.HandleFunc("POST /_emulator/orgs", e.handleCreateOrg)
	m.HandleFunc("POST /_emulator/orgs/{org}/expire", e.handleExpire)
	m.HandleFunc("PUT /_emulator/orgs/{org}/permissions", e.handlePermissions)
	m.HandleFunc("POST /_emulator/orgs/{org}/users", e.handleAddUser)
	m.HandleFunc("POST /_emulator/orgs/{org}/users/{username}/admin", e.handleSetAdmin)
	m.HandleFunc("POST /_emulator/orgs/{org}/users/{username}/deactivate", e.handleUserActive(false))
	m.HandleFunc("POST /_emulator/orgs/{org}/users/{username}/activate", e.handleUserActive(true))
	m.HandleFunc("POST /_emulator/orgs/{org}/users/{username}/revoke-tokens", e.handleRevokeTokens)
	m.HandleFunc("GET /_emulator/scim", e.handleSnapshot)
	return m
}
