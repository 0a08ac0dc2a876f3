// Package console is orgbridge's web console, served by the ingress under
// /console/: server-rendered pages (html/template, embedded) with htmx
// (vendored, embedded) for the type-ahead, live progress and in-place
// actions. It composes the workers' own APIs and holds no domain logic.
//
// Three kinds of people sign in:
//   - an org user (through the org's OAuth): their Slack mappings;
//   - an org admin (the same login; the org marks them admin): their org's
//     workspaces, mappings and provisioning, never another org's;
//   - an operator (the admin token exchanged once for a session, or an org
//     admin listed in Config.Operators): every tenant, disconnects, dead
//     letters and streams.
//
// Sessions are random ids in HttpOnly, SameSite=Lax cookies (Secure on
// https) that expire; the session itself lives in Redis. Every
// state-changing request passes Go's http.CrossOriginProtection.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// Config configures the console.
type Config struct {
	// PublicURL is the ingress's public base URL (the org login's redirect URL is built from it).
	PublicURL string
	// Org signs people in; its RedirectURL must be PublicURL + "/console/auth/callback".
	Org *orgapi.Client
	// AdminToken is the operator's token, exchanged once for a session.
	AdminToken string
	// Operators are org usernames that are operators when they sign in.
	Operators []string
	Redis     redis.UniversalClient
	// SessionTTL is how long a session lasts (default 8h).
	SessionTTL time.Duration
	// Provisioning is the provisioning worker, for its pages; ConnectURL
	// starts its connect flow.
	Provisioning *provisioning.Worker
	ConnectURL   func(org string, replace, wholeGrid bool) (string, error)
	// Mappings, Bindings, Operator: the other pages' sources (nil hides them).
	Mappings Mappings
	Bindings Bindings
	Operator OperatorAPI
	// MappingImport imports mapping CSVs (a *mapping.Worker); nil hides import.
	MappingImport MappingImporter
	// Installations tells which apps are installed in a workspace (a
	// *store.Installations), for the workspaces' status; nil: not shown.
	Installations Installed
	Logger        *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Console serves the pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	log   *slog.Logger
	mux   *http.ServeMux
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.PublicURL == "" || cfg.Org == nil || cfg.Redis == nil:
		return nil, errors.New("console: New needs PublicURL, Org and Redis")
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, pages: pages, log: cfg.Logger}
	c.mux = c.routes()
	return c, nil
}

// Handler serves everything under [Prefix]. State-changing requests from
// another origin are refused (403).
func (c *Console) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusForbidden, "Refused", "This request came from another site. Use the console's own forms.")
	}))
	return securityHeaders(cop.Handler(c.mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// role is what a session may see.
type role int

const (
	roleUser role = iota + 1
	roleAdmin
	roleOperator
)

// handle wraps a page that needs a session of at least role need.
func (c *Console) handle(need role, h func(w http.ResponseWriter, r *http.Request, s *Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if err != nil {
			c.log.Warn("console: reading the session", slog.Any("error", err))
		}
		if s == nil {
			if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" {
				http.Redirect(w, r, Prefix+"login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, http.StatusUnauthorized, "Sign in first", "Your session has ended. Sign in again.")
			return
		}
		if s.role() < need {
			c.fail(w, r, http.StatusForbidden, "Not allowed", "This page is for "+need.String()+"s. You are signed in as "+s.Name+" ("+s.role().String()+").")
			return
		}
		h(w, r, s)
	}
}

func (r role) String() string {
	switch r {
	case roleOperator:
		return "operator"
	case roleAdmin:
		return "org admin"
	}
	return "org user"
}

// orgOf returns the org a session may act on for request org (a path
// value): an org admin only their own; an operator any valid org.
func (c *Console) orgAllowed(s *Session, org string) bool {
	if s.Operator {
		return true
	}
	return s.Admin && sameOrg(s.OrgID, org)
}

func sameOrg(a, b string) bool { return len(a) >= 15 && len(b) >= 15 && a[:15] == b[:15] }

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", cacheFor(http.FileServerFS(static))))
	m.HandleFunc("GET "+Prefix+"login", c.loginPage)
	m.HandleFunc("POST "+Prefix+"login/org", c.loginOrg)
	m.HandleFunc("GET "+Prefix+"auth/callback", c.authCallback)
	m.HandleFunc("POST "+Prefix+"login/operator", c.loginOperator)
	m.HandleFunc("POST "+Prefix+"logout", c.logout)
	m.HandleFunc("GET "+Prefix+"{$}", c.handle(roleUser, c.home))
	c.provisioningRoutes(m)
	c.mappingRoutes(m)
	c.operatorRoutes(m)
	m.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	})
	return m
}

func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, s *Session) {
	c.render(w, r, http.StatusOK, "home", s, map[string]any{"Title": "orgbridge"})
}

// fail renders an error page (or a fragment for htmx) that says what to do.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s, _ := c.session(r)
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = c.pages["error"].ExecuteTemplate(w, "flash", map[string]any{"Error": title + ": " + msg})
		return
	}
	c.render(w, r, status, "error", s, map[string]any{"Title": title, "Message": msg})
}

// internal answers an unexpected error without leaking it.
func (c *Console) internal(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console: page failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	c.fail(w, r, http.StatusInternalServerError, "Something went wrong", fmt.Sprintf("The page could not be shown (%v). Try again; if it keeps failing, tell the team running orgbridge.", err))
}

func withTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
