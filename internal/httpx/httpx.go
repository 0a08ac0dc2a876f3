// Package httpx holds the small HTTP helpers the admin APIs share: the
// bearer-token guard and the JSON answers. Workers import it instead of the
// ingress, so each can serve its admin API without the ingress package.
package httpx

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for [AdminGuardConfig].
const (
	// DefaultMaxAuthFailures is how many failed attempts a client gets per
	// window before it is answered 429, right token or not.
	DefaultMaxAuthFailures = 10
	// DefaultAuthFailureWindow is the window failures are counted in.
	DefaultAuthFailureWindow = time.Minute
	// DefaultMaxTrackedClients bounds the clients whose failures are remembered;
	// beyond it new clients share one count.
	DefaultMaxTrackedClients = 10_000
)

// AdminGuardConfig configures an [AdminGuard]. Zero fields take the defaults.
type AdminGuardConfig struct {
	// Token is the bearer token; empty turns the admin API off (every request 401s).
	Token string
	// MaxFailures is how many failed attempts per client per Window are
	// answered 401; after that, every request of that client is answered 429
	// until the window ends.
	MaxFailures int
	Window      time.Duration
	// MaxClients bounds the memory the failure counts take.
	MaxClients int
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// AdminGuard checks `Authorization: Bearer <token>` and limits failed attempts
// per client IP (the connection's address: behind a proxy, every client shares
// the proxy's count, which errs on the closed side). One guard should front
// every admin handler of a process, so the limit is per client, not per route.
type AdminGuard struct {
	want []byte
	cfg  AdminGuardConfig

	mu        sync.Mutex
	clients   map[string]*authFailures
	lastPrune time.Time
}

// authFailures counts a client's failures in the window that began at since.
type authFailures struct {
	count int
	since time.Time
}

// overflowClient is the key all clients share once MaxClients are tracked.
const overflowClient = "(others)"

// NewAdminGuard returns a guard for cfg.
func NewAdminGuard(cfg AdminGuardConfig) *AdminGuard {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxAuthFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultAuthFailureWindow
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxTrackedClients
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &AdminGuard{want: []byte("Bearer " + cfg.Token), cfg: cfg, clients: make(map[string]*authFailures)}
}

// AdminOnly guards h with its own [AdminGuard] for token: 401 without the
// token or with a wrong one, 429 once a client has failed too often. An empty
// token turns the admin API off (every request 401s), so a deployment that
// forgot to set one is closed, not open.
func AdminOnly(token string, h http.Handler) http.Handler {
	return NewAdminGuard(AdminGuardConfig{Token: token}).Wrap(h)
}

// Wrap guards h.
func (g *AdminGuard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientIP(r)
		if wait := g.blocked(client); wait > 0 {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			WriteJSONError(w, http.StatusTooManyRequests, "too_many_failures",
				fmt.Sprintf("too many requests with a wrong admin token from this address; wait %ds and send Authorization: Bearer <ORGBRIDGE_ADMIN_TOKEN>", secs))
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if g.cfg.Token == "" || subtle.ConstantTimeCompare(got, g.want) != 1 {
			g.fail(client)
			w.Header().Set("WWW-Authenticate", `Bearer realm="orgbridge admin"`)
			WriteJSONError(w, http.StatusUnauthorized, "unauthorized",
				"send Authorization: Bearer <ORGBRIDGE_ADMIN_TOKEN>")
			return
		}
		g.succeed(client)
		h.ServeHTTP(w, r)
	})
}

// blocked returns how long client must wait, or 0 when it may try.
func (g *AdminGuard) blocked(client string) time.Duration {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.clients[client]
	if f == nil {
		if _, tracked := g.clients[overflowClient]; tracked && len(g.clients) >= g.cfg.MaxClients {
			f = g.clients[overflowClient]
		}
	}
	if f == nil || f.count < g.cfg.MaxFailures {
		return 0
	}
	return max(f.since.Add(g.cfg.Window).Sub(now), 0)
}

// fail counts a failed attempt of client.
func (g *AdminGuard) fail(client string) {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.clients[client]
	if f == nil {
		if len(g.clients) >= g.cfg.MaxClients {
			g.prune(now)
		}
		if len(g.clients) >= g.cfg.MaxClients {
			client = overflowClient
		}
		if f = g.clients[client]; f == nil {
			f = &authFailures{since: now}
			g.clients[client] = f
		}
	}
	if now.Sub(f.since) >= g.cfg.Window {
		f.count, f.since = 0, now
	}
	f.count++
}

// succeed forgets client's failures: an operator who mistyped is not held.
func (g *AdminGuard) succeed(client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.clients, client)
}

// prune drops windows that have ended, at most ten times per window so that
// a full table does not cost a scan per request.
func (g *AdminGuard) prune(now time.Time) {
	if now.Sub(g.lastPrune) < g.cfg.Window/10 {
		return
	}
	g.lastPrune = now
	for k, f := range g.clients {
		if now.Sub(f.since) >= g.cfg.Window {
			delete(g.clients, k)
		}
	}
}

// clientIP is the address the request came from, without its port.
func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSONError answers with the admin API's error shape:
// {"error": code, "message": what happened and what to do}.
func WriteJSONError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, map[string]string{"error": code, "message": strings.TrimSpace(message)})
}
