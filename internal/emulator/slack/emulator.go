// Package slackemu is a faithful, in-process emulator of the parts of Slack
// orgbridge talks to: the Web API methods it calls, Slack's side of OAuth, and
// Slack's deliveries of events, slash commands and interactions to the ingress.
//
// It exists because no test, benchmark or newcomer can reach the real Slack.
// slack-go pointed at it with slack.OptionAPIURL(url+"/api/") works unchanged.
// A control API under /_emulator/ lets tests and people drive deliveries, read
// what the app sent back, inject faults and mint tokens. Time can run faster
// than the wall clock (Config.TimeScale) so rate limits, retries and expiries
// can be exercised in milliseconds.
package slackemu

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config describes the world the emulator builds and how it behaves. The zero
// value of every field means "the default" (see the field docs).
type Config struct {
	// Seed makes the world, ids, codes and fault rates deterministic.
	Seed int64
	// Workspaces is the number of standalone (non-Grid) workspaces; default 2,
	// negative for none.
	Workspaces int
	// Enterprises is the number of Enterprise Grid orgs; default 1, negative for none.
	Enterprises int
	// GridWorkspaces is the number of member workspaces per Grid org; default 2.
	GridWorkspaces int
	// Users is the number of users in each workspace (members, guests, bots,
	// deleted users); default 20.
	Users int
	// Groups is the number of user groups in each workspace; default 3,
	// negative for none.
	Groups int
	// ExternalTeams is the number of Slack Connect teams each Grid org is
	// connected to; default 5, negative for none.
	ExternalTeams int
	// SeedFile is a JSON world (see docs/EMULATORS.md); when set it replaces
	// the generated world.
	SeedFile string

	// SigningSecret signs deliveries to the ingress; default "emulator-signing-secret".
	SigningSecret string
	// VerificationToken is the legacy token field of deliveries; default "emulator-verification-token".
	VerificationToken string
	// ClientID, ClientSecret and AppID identify the one app installed in the
	// emulated Slack; defaults "1111.2222", "emulator-client-secret", "A0EMULATOR".
	ClientID, ClientSecret, AppID string

	// IngressURL is where deliveries go (+ /slack/events, /slack/commands,
	// /slack/interactivity); deliveries fail with ErrNoIngress while it is empty.
	IngressURL string
	// IngressTimeout is how long (real time) a delivery waits for the ingress
	// before Slack counts it as http_timeout; default 3s.
	IngressTimeout time.Duration

	// TimeScale is how much faster emulated time runs than real time: 1000
	// means one emulated minute passes in 60 ms. Default 1.
	TimeScale float64
	// DisconnectDelay is how long (emulated) team.externalTeams.disconnect
	// takes in the background before the team shows DISCONNECTED; default 30s.
	DisconnectDelay time.Duration
	// DisableRateLimits turns rate limiting off (benchmarks, dev mode).
	DisableRateLimits bool
	// MaxCalls caps the call log (oldest entries dropped); default 10000.
	MaxCalls int

	// Logger receives the emulator's logs; default: discarded.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			*v = 0
		}
	}
	def(&c.Workspaces, 2)
	def(&c.Enterprises, 1)
	def(&c.GridWorkspaces, 2)
	def(&c.Users, 20)
	def(&c.Groups, 3)
	def(&c.ExternalTeams, 5)
	def(&c.MaxCalls, 10000)
	if c.SigningSecret == "" {
		c.SigningSecret = "emulator-signing-secret"
	}
	if c.VerificationToken == "" {
		c.VerificationToken = "emulator-verification-token"
	}
	if c.ClientID == "" {
		c.ClientID = "1111.2222"
	}
	if c.ClientSecret == "" {
		c.ClientSecret = "emulator-client-secret"
	}
	if c.AppID == "" {
		c.AppID = "A0EMULATOR"
	}
	if c.IngressTimeout == 0 {
		c.IngressTimeout = 3 * time.Second
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.DisconnectDelay == 0 {
		c.DisconnectDelay = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first setting that cannot work, in words a person can act on.
func (c Config) Validate() error {
	var errs []error
	if c.TimeScale < 0 {
		errs = append(errs, fmt.Errorf("TimeScale %v: must be positive (1 = real time, 1000 = a minute every 60 ms)", c.TimeScale))
	}
	if c.DisconnectDelay < 0 {
		errs = append(errs, fmt.Errorf("DisconnectDelay %s: must not be negative", c.DisconnectDelay))
	}
	if c.IngressTimeout < 0 {
		errs = append(errs, fmt.Errorf("IngressTimeout %s: must not be negative", c.IngressTimeout))
	}
	if c.Users > 5_000_000 {
		errs = append(errs, fmt.Errorf("Users %d: at most 5,000,000 per workspace", c.Users))
	}
	if c.Workspaces < 0 && c.Enterprises < 0 && c.SeedFile == "" {
		errs = append(errs, errors.New("Workspaces and Enterprises are both negative: the world would have no workspace"))
	}
	if c.IngressURL != "" && !strings.HasPrefix(c.IngressURL, "http://") && !strings.HasPrefix(c.IngressURL, "https://") {
		errs = append(errs, fmt.Errorf("IngressURL %q: must start with http:// or https://", c.IngressURL))
	}
	if len(errs) > 0 {
		return fmt.Errorf("slackemu: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// Emulator is one emulated Slack. All methods are safe for concurrent use.
type Emulator struct {
	cfg   Config
	log   *slog.Logger
	clock *clock

	mu       sync.Mutex
	world    *world
	rng      *rand.Rand
	seq      uint64
	baseURL  string
	ingress  string
	tokens   map[string]*token
	refresh  map[string]*refreshGrant
	installs map[string]*install // by team or enterprise id
	codes    map[string]*authCode
	triggers map[string]*trigger
	respURLs map[string]*responseURL
	hooks    map[string]*webhook
	dms      map[string]dm // D… channel -> team/user
	messages []Message
	calls    []Call
	faults   []*fault
	limiter  *limiter

	client *http.Client
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// New builds the world described by cfg. It starts no goroutine; background
// work (delivery retries) starts on demand and ends with [Emulator.Close].
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &Emulator{
		cfg:      cfg,
		log:      cfg.Logger,
		clock:    newClock(cfg.TimeScale),
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		ingress:  strings.TrimRight(cfg.IngressURL, "/"),
		baseURL:  "http://slack.emulator.invalid",
		tokens:   map[string]*token{},
		refresh:  map[string]*refreshGrant{},
		installs: map[string]*install{},
		codes:    map[string]*authCode{},
		triggers: map[string]*trigger{},
		respURLs: map[string]*responseURL{},
		hooks:    map[string]*webhook{},
		dms:      map[string]dm{},
		limiter:  newLimiter(),
		client:   &http.Client{Timeout: cfg.IngressTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		done:     make(chan struct{}),
	}
	var err error
	if cfg.SeedFile != "" {
		e.world, err = loadWorld(cfg.SeedFile, e.clock.Now())
	} else {
		e.world, err = generateWorld(cfg, e.clock.Now())
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Handler serves everything: the Web API under /api/, OAuth under /oauth/,
// and the control API under /_emulator/.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", e.serveAPI)
	mux.HandleFunc("GET /oauth/v2/authorize", e.serveAuthorize)
	e.controlRoutes(mux)
	return mux
}

// SetBaseURL sets the URL the emulator is reachable at; response_url and
// incoming webhook URLs are built from it.
func (e *Emulator) SetBaseURL(u string) {
	e.mu.Lock()
	e.baseURL = strings.TrimRight(u, "/")
	e.mu.Unlock()
}

// URL returns the base URL set by [Emulator.SetBaseURL] (or [StartTest]).
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.baseURL
}

// APIURL is the value for slack.OptionAPIURL and slack.OAuthOptionAPIURL.
func (e *Emulator) APIURL() string { return e.URL() + "/api/" }

// SetIngressURL sets where deliveries go (the app's ingress base URL).
func (e *Emulator) SetIngressURL(u string) {
	e.mu.Lock()
	e.ingress = strings.TrimRight(u, "/")
	e.mu.Unlock()
}

// SigningSecret is the secret deliveries are signed with.
func (e *Emulator) SigningSecret() string { return e.cfg.SigningSecret }

// ClientID, ClientSecret and AppID identify the emulated app.
func (e *Emulator) ClientID() string     { return e.cfg.ClientID }
func (e *Emulator) ClientSecret() string { return e.cfg.ClientSecret }
func (e *Emulator) AppID() string        { return e.cfg.AppID }

// Scale is the time scale: emulated durations are real durations × Scale.
func (e *Emulator) Scale() float64 { return e.cfg.TimeScale }

// Now is the emulated time.
func (e *Emulator) Now() time.Time { return e.clock.Now() }

// RealDuration converts an emulated duration (such as a Retry-After) to the
// real time it takes.
func (e *Emulator) RealDuration(emulated time.Duration) time.Duration { return e.clock.Real(emulated) }

// Close stops background work (delivery retries) and waits for it to end.
// It is safe to call more than once.
func (e *Emulator) Close() {
	e.once.Do(func() { close(e.done) })
	e.wg.Wait()
}

// StartTest starts the emulator on an httptest server and closes both when
// the test ends. The server's URL is [Emulator.URL].
func StartTest(t testing.TB, cfg Config) *Emulator {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("slackemu: %v", err)
	}
	srv := httptest.NewServer(e.Handler())
	e.SetBaseURL(srv.URL)
	t.Cleanup(func() {
		e.Close()
		srv.Close()
	})
	return e
}

// goBackground runs f on a goroutine Close waits for.
func (e *Emulator) goBackground(f func()) {
	select {
	case <-e.done:
		return
	default:
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// sleep waits d of real time; false when the emulator closed first.
func (e *Emulator) sleep(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-e.done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-e.done:
		return false
	}
}

// clock is emulated time: it starts at the real time of creation and runs
// scale times faster.
type clock struct {
	start  time.Time // real, with monotonic reading
	origin time.Time // emulated time at start
	scale  float64
}

func newClock(scale float64) *clock {
	now := time.Now()
	return &clock{start: now, origin: now.Round(0).Truncate(time.Second), scale: scale}
}

// Now is the current emulated time.
func (c *clock) Now() time.Time {
	return c.origin.Add(time.Duration(float64(time.Since(c.start)) * c.scale))
}

// Real converts an emulated duration into real time.
func (c *clock) Real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.scale)
}
