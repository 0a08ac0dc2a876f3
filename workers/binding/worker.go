// Package binding is the binding worker: Slack installs and uninstalls,
// binding a workspace (or Grid org) to exactly one org for all its users, org
// validity (expired orgs), and the gate every slash command, interaction and
// App Home visit passes: unconnected users get a prompt to connect, connected
// ones have their org identity attached and their command forwarded to app
// handlers on the APP stream. Mappings themselves live in workers/mapping.
package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// Durable consumer names.
const (
	DurableInstalls     = "binding-installs"
	DurableUninstalls   = "binding-uninstalls"
	DurableConnects     = "binding-connects"
	DurableCommands     = "binding-commands"
	DurableInteractions = "binding-interactions"
	DurableHome         = "binding-home"
)

// Defaults for [Config].
const (
	DefaultRefreshAhead  = time.Hour
	DefaultRefreshEvery  = 5 * time.Minute
	DefaultOrgCheckEvery = 5 * time.Minute
	// DefaultOrgProbeEvery is how often, at most, a workspace's bound org is
	// checked on an interaction (one token refresh).
	DefaultOrgProbeEvery  = 10 * time.Second
	DefaultPlatformCmd    = "/orgbridge"
	DefaultConnectLockTTL = 30 * time.Second
	// DefaultConnectLockWait is how long an org login waits for the
	// workspace's lock before it is retried.
	DefaultConnectLockWait = 10 * time.Second
	// InteractionTTL is how long a command or interaction is remembered as
	// processed, and how old one may be and still be handled: past
	// response_url's 30 minutes nothing can answer it any more.
	InteractionTTL = time.Hour
	// InteractionMaxAge: commands and interactions older than it are dropped.
	InteractionMaxAge = 30 * time.Minute
)

// Config builds a [Worker].
type Config struct {
	Installations *store.Installations
	Bindings      *Store
	Mappings      *mapping.Store
	States        *store.OAuthStates
	Locker        *store.Locker
	Idempotency   *store.Idempotency
	Keys          *store.Keyring
	// Slack exchanges install codes, refreshes tokens and builds API clients.
	Slack *slackapi.OAuthApp
	// Org runs the org's OAuth flow (code exchange, refresh, userinfo).
	Org *orgapi.Client
	// Publish puts forwarded commands and interactions on the APP stream.
	Publish *events.Publisher
	// PublicURL is the ingress's public base URL, for "connect" buttons.
	PublicURL string
	// PlatformCommand is the slash command whose subcommands (connect, status,
	// whoami, mappings, help) orgbridge answers itself; default /orgbridge.
	PlatformCommand string
	// RefreshAhead: bot tokens expiring within it are refreshed (default 1h);
	// RefreshEvery: how often Run looks (default 5m).
	RefreshAhead, RefreshEvery time.Duration
	// OrgCheckEvery: how often a user's org session is re-checked (refresh +
	// userinfo) on an interaction (default 5m; negative: every time).
	OrgCheckEvery time.Duration
	// OrgProbeEvery: how often, at most, the org a workspace is bound to is
	// checked on an interaction of any of its users, mapped or not (one
	// refresh of the binding's token; default 10s; negative: every time).
	// An expired org is found on the first interaction after it.
	OrgProbeEvery time.Duration
	// ConnectLockWait: how long an org login waits for the workspace's lock
	// before the message is retried (default 10s).
	ConnectLockWait time.Duration
	// HTTP posts to response_url; a 10 s timeout client when nil. It never
	// follows a redirect.
	HTTP *http.Client
	// ResponseURLs is where answers given as a response_url may be posted;
	// when it lists no origins, [slackapi.ResponseURLPolicyFor] Slack.APIURL:
	// https://hooks.slack.com, and the emulator when Slack.APIURL is one.
	ResponseURLs slackapi.ResponseURLPolicy
	// Registerer takes the worker's metrics (none when nil).
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

func (c *Config) setDefaults() {
	if c.PlatformCommand == "" {
		c.PlatformCommand = DefaultPlatformCmd
	}
	if c.RefreshAhead == 0 {
		c.RefreshAhead = DefaultRefreshAhead
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = DefaultRefreshEvery
	}
	if c.OrgCheckEvery == 0 {
		c.OrgCheckEvery = DefaultOrgCheckEvery
	}
	if c.OrgProbeEvery == 0 {
		c.OrgProbeEvery = DefaultOrgProbeEvery
	}
	if c.ConnectLockWait <= 0 {
		c.ConnectLockWait = DefaultConnectLockWait
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

// Validate reports a missing dependency.
func (c Config) Validate() error {
	var missing []string
	for name, ok := range map[string]bool{
		"Installations": c.Installations != nil, "Bindings": c.Bindings != nil, "Mappings": c.Mappings != nil,
		"States": c.States != nil, "Locker": c.Locker != nil, "Idempotency": c.Idempotency != nil, "Keys": c.Keys != nil,
		"Slack": c.Slack != nil, "Org": c.Org != nil, "Publish": c.Publish != nil, "PublicURL": c.PublicURL != "",
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return errors.New("binding: config is missing " + strings.Join(missing, ", "))
	}
	return nil
}

// Worker is the binding worker.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// New returns the worker.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.ResponseURLs.Origins) == 0 {
		p, err := slackapi.ResponseURLPolicyFor(cfg.Slack.APIURL)
		if err != nil {
			return nil, fmt.Errorf("binding: %w", err)
		}
		cfg.ResponseURLs = p
	}
	cfg.HTTP = noRedirects(cfg.HTTP)
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("binding: metrics: %w", err)
	}
	return &Worker{cfg: cfg, log: cfg.Log, metrics: m}, nil
}

// noRedirects returns a copy of hc that answers a redirect with the redirect
// itself: a response_url answers where it is, and a redirect could lead
// anywhere, past [Config.ResponseURLs].
func noRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Register adds the worker's durable consumers to r. Installs, uninstalls
// and org logins are idempotent on the message identity (kept for the stream's
// age), so replays change nothing. Commands and interactions are remembered for
// [InteractionTTL] only and dropped once older than [InteractionMaxAge] (their
// response_url is dead by then); App Home visits leave no record at all (a
// repeat just publishes the same view again). The dead letters of commands
// and interactions are answered once each ([Worker.HandleDeadLetter]).
func (w *Worker) Register(r *bus.Runner) error {
	idem := bus.Idempotent(w.cfg.Idempotency, 0)
	short := []bus.Middleware{dropOlderThan(InteractionMaxAge), bus.Idempotent(w.cfg.Idempotency, InteractionTTL)}
	regs := []struct {
		cfg bus.ConsumerConfig
		h   bus.Handler
		mws []bus.Middleware
	}{
		{bus.ConsumerConfig{Stream: events.StreamSlack, Durable: DurableInstalls, FilterSubjects: []string{"slack.install.>"}}, w.HandleInstall, []bus.Middleware{idem}},
		{bus.ConsumerConfig{Stream: events.StreamSlack, Durable: DurableUninstalls, FilterSubjects: []string{"slack.uninstall.*"}}, w.HandleUninstall, []bus.Middleware{idem}},
		{bus.ConsumerConfig{Stream: events.StreamOrg, Durable: DurableConnects, FilterSubjects: []string{"org.connect.>"}}, w.HandleOrgConnect, []bus.Middleware{idem}},
		{bus.ConsumerConfig{Stream: events.StreamSlack, Durable: DurableCommands, FilterSubjects: []string{"slack.commands.*"}}, w.HandleCommand, short},
		{bus.ConsumerConfig{Stream: events.StreamSlack, Durable: DurableInteractions, FilterSubjects: []string{"slack.interactions.*"}}, w.HandleInteraction, short},
		{bus.ConsumerConfig{Stream: events.StreamSlack, Durable: DurableHome, FilterSubjects: []string{"slack.events.*.app_home_opened"}}, w.HandleAppHome, nil},
		{bus.ConsumerConfig{Stream: events.StreamDLQ, Durable: DurableDeadLetters, FilterSubjects: deadLetterSubjects()},
			w.HandleDeadLetter, []bus.Middleware{bus.Idempotent(w.cfg.Idempotency, InteractionTTL)}},
	}
	for _, reg := range regs {
		if err := r.Register(reg.cfg, reg.h, reg.mws...); err != nil {
			return err
		}
	}
	return nil
}

// dropOlderThan acks, without handling or recording it, a message the
// stream stored longer than max ago.
func dropOlderThan(max time.Duration) bus.Middleware {
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			if !m.Timestamp.IsZero() && time.Since(m.Timestamp) > max {
				bus.LoggerFrom(ctx).Info("too old to answer; dropped", "age", time.Since(m.Timestamp).Round(time.Second))
				return nil
			}
			return next(ctx, m)
		}
	}
}

// Run refreshes bot tokens ahead of expiry until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.RefreshEvery)
	defer t.Stop()
	for {
		if _, err := w.RefreshDue(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("token refresh round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// BoundOrg implements mapping.BindingReader.
func (w *Worker) BoundOrg(ctx context.Context, ws string) (string, error) {
	return w.cfg.Bindings.BoundOrg(ctx, ws)
}
