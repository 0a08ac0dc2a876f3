// Package config reads orgbridge's settings from environment variables (flags in
// cmd/orgbridge override the common ones) and checks them before anything starts,
// so a mistake is one clear line naming the variable instead of a failure later.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/secret"
)

// Defaults.
const (
	DefaultNATSURL           = "nats://127.0.0.1:4222"
	DefaultNATSAddr          = "127.0.0.1:4222"
	DefaultHTTPAddr          = "127.0.0.1:8080"
	DefaultMetricsAddr       = "127.0.0.1:9090"
	DefaultSlackEmulatorAddr = "127.0.0.1:8081"
	DefaultOrgEmulatorAddr   = "127.0.0.1:8082"
	DefaultDataDir           = "./data"
	DefaultPublishTimeout    = 2 * time.Second
	DefaultShutdownTimeout   = 25 * time.Second
	DefaultShutdownDrain     = 5 * time.Second
	DefaultSlackAPIURL       = "https://slack.com/api/"
	DefaultSlackOAuthURL     = "https://slack.com/oauth/v2/authorize"
	DefaultSlackScopes       = "commands,chat:write,incoming-webhook,users:read,users:read.email,usergroups:read,team:read,im:write"
	DefaultOrgLoginURL       = "https://login.salesforce.com"
)

// maxWorkerIDLen bounds ORGBRIDGE_WORKER_ID, which every audit entry carries.
const maxWorkerIDLen = 128

// MinAdminTokenLength is the shortest ORGBRIDGE_ADMIN_TOKEN accepted: the token
// guards every admin API call, so it must not be guessable.
const MinAdminTokenLength = 24

// Var documents one environment variable; [Vars] lists them all for --help and the README.
type Var struct {
	Name    string
	Default string
	Help    string
}

// Vars lists every environment variable orgbridge reads.
func Vars() []Var {
	return []Var{
		{"NATS_URL", DefaultNATSURL, "NATS server the ingress, workers and CLI connect to (not used by dev)"},
		{"NATS_USER", "", "NATS user of this part (deploy/nats/nats.conf: ingress, worker or ops); with NATS_PASSWORD (not used by dev)"},
		{"NATS_PASSWORD", "", "password of NATS_USER"},
		{"NATS_CREDS", "", "NATS .creds file (JWT and nkey seed) instead of NATS_USER, for an operator-mode server"},
		{"NATS_NKEY_SEED", "", "file holding a NATS user nkey seed (SU…) instead of NATS_USER"},
		{"NATS_TLS_CA", "", "CA file the NATS server's certificate is checked against (default: the system roots; NATS_URL tls://…)"},
		{"NATS_TLS_CERT", "", "client certificate for a NATS server that verifies clients; with NATS_TLS_KEY"},
		{"NATS_TLS_KEY", "", "key of NATS_TLS_CERT"},
		{"NATS_ADMIN_USER", "", "ingress: NATS user of the admin API and console (the ops user; they publish disconnect requests and manage dead letters); with NATS_ADMIN_PASSWORD"},
		{"NATS_ADMIN_PASSWORD", "", "password of NATS_ADMIN_USER"},
		{"NATS_ADMIN_CREDS", "", "ingress: NATS .creds file of the admin API and console, instead of NATS_ADMIN_USER"},
		{"NATS_ADMIN_NKEY_SEED", "", "ingress: file holding the nkey seed of the admin API and console, instead of NATS_ADMIN_USER"},
		{"REDIS_URL", "", "Redis URL with the ACL user and password (redis://orgbridge:<password>@host:6379/0; rediss:// for TLS); dev starts a redis-server child when unset"},
		{"REDIS_SENTINEL_ADDRS", "", "Redis behind Sentinel, instead of REDIS_URL: comma-separated host:port of the Sentinels; with REDIS_SENTINEL_MASTER"},
		{"REDIS_SENTINEL_MASTER", "", "name the Sentinels monitor the primary under (`sentinel monitor <name> …`)"},
		{"REDIS_SENTINEL_USERNAME", "", "ACL user of the Sentinels themselves, when they require one"},
		{"REDIS_SENTINEL_PASSWORD", "", "password of the Sentinels themselves (sentinel.conf `requirepass`), when they require one"},
		{"REDIS_CLUSTER_ADDRS", "", "Redis Cluster, instead of REDIS_URL: comma-separated host:port of some of its nodes (the others are discovered)"},
		{"REDIS_USERNAME", "", "ACL user of the Redis servers with REDIS_SENTINEL_ADDRS or REDIS_CLUSTER_ADDRS (with REDIS_URL it may be in the URL)"},
		{"REDIS_PASSWORD", "", "password of REDIS_USERNAME (or of the default user)"},
		{"REDIS_TLS", "false", "true: TLS to Redis and the Sentinels (a rediss:// REDIS_URL turns it on as well)"},
		{"REDIS_TLS_CA", "", "CA file the Redis servers' certificates are checked against (default: the system roots)"},
		{"SLACK_SIGNING_SECRET", "", "Slack app signing secret; required outside dev (dev generates one)"},
		{"ORGBRIDGE_HTTP_ADDR", DefaultHTTPAddr, "address the ingress listens on"},
		{"ORGBRIDGE_NATS_ADDR", DefaultNATSAddr, "dev: address the embedded NATS server listens on"},
		{"ORGBRIDGE_METRICS_ADDR", DefaultMetricsAddr, "worker: address serving /metrics, /healthz and /readyz"},
		{"ORGBRIDGE_DATA_DIR", DefaultDataDir, "dev: JetStream store and Redis AOF live here"},
		{"ORGBRIDGE_LOG_LEVEL", "info", "debug, info, warn or error"},
		{"ORGBRIDGE_LOG_FORMAT", "json", "json or text (dev: text)"},
		{"ORGBRIDGE_STREAM_MAX_AGE", "7d", "how long streams keep messages (and how far back replay reaches)"},
		{"ORGBRIDGE_STREAM_DUPLICATE_WINDOW", "20m", "how long a Nats-Msg-Id is remembered (at least 15m)"},
		{"ORGBRIDGE_STREAM_REPLICAS", "1", "stream replicas: 1 on one server, 3 on a NATS cluster"},
		{"ORGBRIDGE_PUBLISH_TIMEOUT", DefaultPublishTimeout.String(), "ingress: how long to wait for JetStream's ack (below Slack's 3s)"},
		{"ORGBRIDGE_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout.String(), "one deadline from SIGTERM for the whole shutdown: drain period, HTTP, consumers, NATS"},
		{"ORGBRIDGE_SHUTDOWN_DRAIN", DefaultShutdownDrain.String(), "ingress: after SIGTERM, /readyz fails while requests are still served this long (part of ORGBRIDGE_SHUTDOWN_TIMEOUT; unset: at most a fifth of it)"},
		{"ORGBRIDGE_PUBLIC_URL", "http://<ORGBRIDGE_HTTP_ADDR>", "public base URL of the ingress, for OAuth redirect URLs"},
		{"ORGBRIDGE_ENCRYPTION_KEYS", "", "AES-256 keys as id:base64key[,id:base64key…]; the first encrypts, all decrypt (dev generates one)"},
		{"ORGBRIDGE_CONSOLE_OPERATORS", "", "console: comma-separated org usernames (org admins) who are operators when they sign in"},
		{"ORGBRIDGE_ADMIN_TOKEN", "", "bearer token for /admin/api, at least 24 characters (admin API off when unset; dev generates one)"},
		{"ORGBRIDGE_ADMIN_ADDR", "", "ingress: when set, /admin/api, /metrics and the detailed /readyz are served only here, not on ORGBRIDGE_HTTP_ADDR"},
		{"SLACK_API_URL", DefaultSlackAPIURL, "Slack Web API base (dev points it at the Slack emulator)"},
		{"SLACK_OAUTH_URL", DefaultSlackOAuthURL, "Slack's OAuth authorize URL (dev points it at the Slack emulator)"},
		{"SLACK_CLIENT_ID", "", "Slack app client id"},
		{"SLACK_CLIENT_SECRET", "", "Slack app client secret"},
		{"SLACK_APP_ID", "", "Slack app id (A…)"},
		{"SLACK_SCOPES", DefaultSlackScopes, "bot scopes requested at install"},
		{"ORG_LOGIN_URL", DefaultOrgLoginURL, "org OAuth base URL (dev points it at the org emulator)"},
		{"ORG_CLIENT_ID", "", "org connected-app client id"},
		{"ORG_CLIENT_SECRET", "", "org connected-app client secret"},
		{"ORGBRIDGE_SLACK_EMULATOR_ADDR", DefaultSlackEmulatorAddr, "dev and emulate: where the Slack emulator listens"},
		{"ORGBRIDGE_ORG_EMULATOR_ADDR", DefaultOrgEmulatorAddr, "dev and emulate: where the org emulator listens"},
		{"ORGBRIDGE_SMTP_EMULATOR_ADDR", DefaultSMTPEmulatorAddr, "dev and emulate: where the SMTP sink listens (dev: only when SMTP_HOST is unset)"},
		{"ORGBRIDGE_SLACK_SEED_FILE", "", "dev and emulate: JSON world for the Slack emulator (docs/EMULATORS.md)"},
		{"SMTP_HOST", "", "mail server for invitations (mail is off when unset; dev points it at the SMTP sink)"},
		{"SMTP_PORT", "", "mail server port (default by SMTP_TLS: 587 starttls, 465 tls, 25 none)"},
		{"SMTP_USERNAME", "", "mail server login (no authentication when unset)"},
		{"SMTP_PASSWORD", "", "mail server password"},
		{"SMTP_FROM", "", "sender of invitations, e.g. orgbridge <noreply@example.com>; required with SMTP_HOST"},
		{"SMTP_TLS", SMTPTLSStartTLS, "none, starttls or tls (implicit TLS)"},
		{"ORGBRIDGE_AUDIT_RETENTION", "400d", "how long the disconnect audit trail is kept (at least 1d)"},
		{"ORGBRIDGE_WORKER_ID", "", "worker: names this replica in the disconnect audit trail (default: the host name); set it when several workers share a host"},
		{"ORGBRIDGE_TIME_SCALE", "1", "dev and tests only: emulated time runs this many times faster (rate limits, delays)"},
	}
}

// Config holds every setting; commands use the parts they need.
type Config struct {
	NATSURL            string
	NATS               NATSAuth // how the ingress, the workers and the CLI authenticate to NATS
	NATSAdmin          NATSAuth // the ingress's admin API and console, when they have their own NATS user
	Redis              Redis    // one server, a primary behind Sentinel or a Redis Cluster
	SlackSigningSecret Secret
	HTTPAddr           string
	NATSAddr           string
	MetricsAddr        string
	SlackEmulatorAddr  string
	OrgEmulatorAddr    string
	SMTPEmulatorAddr   string
	// SlackSeedFile is a JSON world for the Slack emulator (dev, emulate).
	SlackSeedFile  string
	DataDir        string
	LogLevel       slog.Level
	LogFormat      string
	Streams        events.StreamOptions
	PublishTimeout time.Duration
	// ShutdownTimeout is the one deadline, counted from SIGTERM, every stage of
	// a shutdown shares.
	ShutdownTimeout time.Duration
	// ShutdownDrain is how long the ingress keeps serving after SIGTERM with
	// /readyz failing, within ShutdownTimeout.
	ShutdownDrain time.Duration
	// AdminAddr, when set, is the ingress's separate listener for the admin
	// API, /metrics and the detailed /readyz.
	AdminAddr string

	PublicURL      string // base URL Slack and browsers reach the ingress at
	EncryptionKeys Secret // id:base64key[,id:base64key…]
	AdminToken     Secret
	// ConsoleOperators are org admins (usernames) who are console operators.
	ConsoleOperators []string
	Slack            SlackApp
	Org              OrgApp
	// SMTP is the mail server (off when SMTP.Host is empty); internal/mailer
	// sends through it.
	SMTP SMTP
	// AuditRetention bounds the disconnect audit trail; zero means the worker's default.
	AuditRetention time.Duration
	// WorkerID names a worker replica in the disconnect audit trail; empty
	// means the host name, which replicas on one host share.
	WorkerID string
	// TimeScale speeds emulated time up (dev and tests against the emulators); 1 in production.
	TimeScale float64
}

// SlackApp is the Slack app orgbridge serves.
type SlackApp struct {
	APIURL       string
	OAuthURL     string
	ClientID     string
	ClientSecret Secret
	AppID        string
	Scopes       []string
}

// OrgApp is the org's connected app orgbridge authenticates users through.
type OrgApp struct {
	LoginURL     string
	ClientID     string
	ClientSecret Secret
}

// HasSlackCredentials reports whether a real Slack app is configured (dev starts
// the Slack emulator when it is not).
func (c Config) HasSlackCredentials() bool {
	return c.Slack.ClientID != "" && c.Slack.ClientSecret != ""
}

// HasOrgCredentials reports whether a real org connected app is configured.
func (c Config) HasOrgCredentials() bool { return c.Org.ClientID != "" && c.Org.ClientSecret != "" }

// Error names the variable (or flag) that is wrong and what is wrong with it.
type Error struct {
	Var     string
	Problem string
}

func (e *Error) Error() string { return e.Var + ": " + e.Problem }

// Load reads the environment through getenv (os.Getenv in production) and returns
// the configuration with defaults applied, or an [*Error] for the first bad value.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		NATSURL:            or(getenv("NATS_URL"), DefaultNATSURL),
		SlackSigningSecret: Secret(getenv("SLACK_SIGNING_SECRET")),
		HTTPAddr:           or(getenv("ORGBRIDGE_HTTP_ADDR"), DefaultHTTPAddr),
		NATSAddr:           or(getenv("ORGBRIDGE_NATS_ADDR"), DefaultNATSAddr),
		MetricsAddr:        or(getenv("ORGBRIDGE_METRICS_ADDR"), DefaultMetricsAddr),
		SlackEmulatorAddr:  or(getenv("ORGBRIDGE_SLACK_EMULATOR_ADDR"), DefaultSlackEmulatorAddr),
		OrgEmulatorAddr:    or(getenv("ORGBRIDGE_ORG_EMULATOR_ADDR"), DefaultOrgEmulatorAddr),
		SMTPEmulatorAddr:   or(getenv("ORGBRIDGE_SMTP_EMULATOR_ADDR"), DefaultSMTPEmulatorAddr),
		SlackSeedFile:      getenv("ORGBRIDGE_SLACK_SEED_FILE"),
		DataDir:            or(getenv("ORGBRIDGE_DATA_DIR"), DefaultDataDir),
		LogFormat:          or(getenv("ORGBRIDGE_LOG_FORMAT"), "json"),
		PublicURL:          getenv("ORGBRIDGE_PUBLIC_URL"),
		EncryptionKeys:     Secret(getenv("ORGBRIDGE_ENCRYPTION_KEYS")),
		AdminToken:         Secret(getenv("ORGBRIDGE_ADMIN_TOKEN")),
		AdminAddr:          getenv("ORGBRIDGE_ADMIN_ADDR"),
		ConsoleOperators:   splitNonEmpty(getenv("ORGBRIDGE_CONSOLE_OPERATORS")),
		WorkerID:           getenv("ORGBRIDGE_WORKER_ID"),
		Slack: SlackApp{
			APIURL:       or(getenv("SLACK_API_URL"), DefaultSlackAPIURL),
			OAuthURL:     or(getenv("SLACK_OAUTH_URL"), DefaultSlackOAuthURL),
			ClientID:     getenv("SLACK_CLIENT_ID"),
			ClientSecret: Secret(getenv("SLACK_CLIENT_SECRET")),
			AppID:        getenv("SLACK_APP_ID"),
			Scopes:       strings.Split(or(getenv("SLACK_SCOPES"), DefaultSlackScopes), ","),
		},
		Org: OrgApp{
			LoginURL:     or(getenv("ORG_LOGIN_URL"), DefaultOrgLoginURL),
			ClientID:     getenv("ORG_CLIENT_ID"),
			ClientSecret: Secret(getenv("ORG_CLIENT_SECRET")),
		},
		TimeScale: 1,
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	}
	if v := getenv("ORGBRIDGE_TIME_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 1 {
			return c, &Error{"ORGBRIDGE_TIME_SCALE", fmt.Sprintf("%q is not a number ≥ 1", v)}
		}
		c.TimeScale = f
	}
	var err error
	if c.SMTP, err = loadSMTP(getenv); err != nil {
		return c, err
	}
	if c.Redis, err = LoadRedis(getenv); err != nil {
		return c, err
	}
	if c.NATS, err = LoadNATSAuth(getenv); err != nil {
		return c, err
	}
	if c.NATSAdmin, err = LoadNATSAdminAuth(getenv); err != nil {
		return c, err
	}
	if c.LogLevel, err = parseLevel(getenv("ORGBRIDGE_LOG_LEVEL")); err != nil {
		return c, &Error{"ORGBRIDGE_LOG_LEVEL", err.Error()}
	}
	durations := []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{
		{"ORGBRIDGE_STREAM_MAX_AGE", &c.Streams.MaxAge, events.DefaultMaxAge},
		{"ORGBRIDGE_STREAM_DUPLICATE_WINDOW", &c.Streams.DuplicateWindow, events.DefaultDuplicateWindow},
		{"ORGBRIDGE_PUBLISH_TIMEOUT", &c.PublishTimeout, DefaultPublishTimeout},
		{"ORGBRIDGE_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, DefaultShutdownTimeout},
		{"ORGBRIDGE_SHUTDOWN_DRAIN", &c.ShutdownDrain, DefaultShutdownDrain},
	}
	for _, d := range durations {
		*d.dst = d.def
		if v := getenv(d.name); v != "" {
			if *d.dst, err = ParseDuration(v); err != nil {
				return c, &Error{d.name, err.Error()}
			}
		}
	}
	if getenv("ORGBRIDGE_SHUTDOWN_DRAIN") == "" {
		// Unset: the default, but never most of a short shutdown timeout.
		c.ShutdownDrain = min(DefaultShutdownDrain, c.ShutdownTimeout/5)
	}
	if v := getenv("ORGBRIDGE_AUDIT_RETENTION"); v != "" {
		if c.AuditRetention, err = ParseDuration(v); err != nil || c.AuditRetention < 24*time.Hour {
			return c, &Error{"ORGBRIDGE_AUDIT_RETENTION", fmt.Sprintf("%q is not a duration of at least 1d", v)}
		}
	}
	c.Streams.Replicas = 1
	if v := getenv("ORGBRIDGE_STREAM_REPLICAS"); v != "" {
		if c.Streams.Replicas, err = strconv.Atoi(v); err != nil {
			return c, &Error{"ORGBRIDGE_STREAM_REPLICAS", fmt.Sprintf("%q is not a whole number", v)}
		}
	}
	return c, c.validateCommon()
}

func (c Config) validateCommon() error {
	switch {
	case c.LogFormat != "json" && c.LogFormat != "text":
		return &Error{"ORGBRIDGE_LOG_FORMAT", fmt.Sprintf("%q is neither json nor text", c.LogFormat)}
	case c.PublishTimeout <= 0 || c.PublishTimeout >= 3*time.Second:
		return &Error{"ORGBRIDGE_PUBLISH_TIMEOUT", fmt.Sprintf("%s must be above 0 and below Slack's 3s deadline", c.PublishTimeout)}
	case c.ShutdownTimeout <= 0:
		return &Error{"ORGBRIDGE_SHUTDOWN_TIMEOUT", "must be above 0"}
	case c.ShutdownDrain < 0 || c.ShutdownDrain >= c.ShutdownTimeout:
		return &Error{"ORGBRIDGE_SHUTDOWN_DRAIN", fmt.Sprintf("%s must be at least 0 and below ORGBRIDGE_SHUTDOWN_TIMEOUT (%s), which it is part of", c.ShutdownDrain, c.ShutdownTimeout)}
	case len(c.WorkerID) > maxWorkerIDLen || strings.ContainsFunc(c.WorkerID, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return &Error{"ORGBRIDGE_WORKER_ID", fmt.Sprintf("%q must be at most %d characters without spaces or control characters", c.WorkerID, maxWorkerIDLen)}
	case c.AdminToken != "" && len(c.AdminToken.Reveal()) < MinAdminTokenLength:
		return &Error{"ORGBRIDGE_ADMIN_TOKEN", fmt.Sprintf("is %d characters; use at least %d random ones (e.g. $(head -c24 /dev/urandom | base64)), or leave it unset to turn the admin API off",
			len(c.AdminToken.Reveal()), MinAdminTokenLength)}
	}
	if err := c.Streams.Validate(); err != nil {
		return &Error{"ORGBRIDGE_STREAM_*", err.Error()}
	}
	if err := checkURL(c.NATSURL, "nats", "tls", "ws", "wss"); err != nil {
		return &Error{"NATS_URL", err.Error()}
	}
	for _, u := range []struct{ name, url string }{
		{"ORGBRIDGE_PUBLIC_URL", c.PublicURL}, {"SLACK_API_URL", c.Slack.APIURL},
		{"SLACK_OAUTH_URL", c.Slack.OAuthURL}, {"ORG_LOGIN_URL", c.Org.LoginURL},
	} {
		if err := checkURL(u.url, "http", "https"); err != nil {
			return &Error{u.name, err.Error()}
		}
	}
	for _, a := range []struct{ name, addr string }{{"ORGBRIDGE_HTTP_ADDR", c.HTTPAddr}, {"ORGBRIDGE_NATS_ADDR", c.NATSAddr}, {"ORGBRIDGE_METRICS_ADDR", c.MetricsAddr},
		{"ORGBRIDGE_SLACK_EMULATOR_ADDR", c.SlackEmulatorAddr}, {"ORGBRIDGE_ORG_EMULATOR_ADDR", c.OrgEmulatorAddr},
		{"ORGBRIDGE_SMTP_EMULATOR_ADDR", c.SMTPEmulatorAddr}} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			return &Error{a.name, fmt.Sprintf("%q is not host:port", a.addr)}
		}
	}
	if c.AdminAddr != "" {
		if _, port, err := net.SplitHostPort(c.AdminAddr); err != nil || port == "" {
			return &Error{"ORGBRIDGE_ADMIN_ADDR", fmt.Sprintf("%q is not host:port", c.AdminAddr)}
		}
		if c.AdminAddr == c.HTTPAddr {
			return &Error{"ORGBRIDGE_ADMIN_ADDR", fmt.Sprintf("%q is ORGBRIDGE_HTTP_ADDR too; give the admin listener its own port, or leave it unset", c.AdminAddr)}
		}
	}
	return nil
}

// RequireProduction checks what the standalone ingress and workers need that dev
// mode can provide for itself.
func (c Config) RequireProduction(needSigningSecret bool) error {
	if needSigningSecret && c.SlackSigningSecret == "" {
		return &Error{"SLACK_SIGNING_SECRET", "is required (the signing secret from your Slack app's Basic Information page)"}
	}
	if !c.Redis.Configured() {
		return &Error{"REDIS_URL", "is required outside dev mode (for example redis://orgbridge:<password>@127.0.0.1:6379/0); or REDIS_SENTINEL_ADDRS with REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_ADDRS"}
	}
	if c.EncryptionKeys == "" {
		return &Error{"ORGBRIDGE_ENCRYPTION_KEYS", "is required outside dev mode: id:base64 of 32 random bytes, e.g. k1:$(head -c32 /dev/urandom | base64)"}
	}
	if !c.HasSlackCredentials() {
		return &Error{"SLACK_CLIENT_ID", "and SLACK_CLIENT_SECRET are required outside dev mode (your Slack app's Basic Information page)"}
	}
	if !c.HasOrgCredentials() {
		return &Error{"ORG_CLIENT_ID", "and ORG_CLIENT_SECRET are required outside dev mode (the org's connected app)"}
	}
	return nil
}

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("%q: scheme must be one of %s", raw, strings.Join(schemes, ", "))
}

// ParseDuration is time.ParseDuration that also accepts whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a duration (examples: 90s, 15m, 12h, 7d)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (examples: 90s, 15m, 12h, 7d)", s)
	}
	return d, nil
}

func parseLevel(s string) (slog.Level, error) {
	if s == "" {
		return slog.LevelInfo, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// splitNonEmpty splits a comma-separated list, dropping empty items.
func splitNonEmpty(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Secret is a setting that never shows in logs, %v output or a JSON dump
// ([secret.Secret]; an empty one encodes as "", so a dump shows which are set).
type Secret = secret.Secret
