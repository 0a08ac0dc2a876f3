package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// readyTimeout bounds the checks of one GET /readyz.
const readyTimeout = 2 * time.Second

// mountHealth adds GET /healthz and GET /readyz: detailed where operators
// look (one listener, or the admin one), status only on a public listener.
func (s *Server) mountHealth() {
	live, ready := Liveness(s.cfg.Live), s.readiness(true)
	for _, mux := range []*http.ServeMux{s.routes.all, s.routes.admin} {
		mux.Handle("GET /healthz", live)
		mux.Handle("GET /readyz", ready)
	}
	s.routes.public.Handle("GET /healthz", liveness(s.cfg.Live, false))
	s.routes.public.Handle("GET /readyz", s.readiness(false))
}

// readiness is the server's GET /readyz: [Readiness] over its checks, and 503
// from the moment [Server.Drain] is called.
func (s *Server) readiness(detail bool) http.Handler {
	checks := readiness(s.cfg.Checks, detail)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.draining.Load() {
			checks.ServeHTTP(w, r)
			return
		}
		if !detail {
			writeStatus(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"shutdown": "shutting down: serving the requests that still arrive, not taking new ones"})
	})
}

// Readiness is a GET /readyz handler: it runs every check (2 s at most) and
// answers 200 when all pass, else 503, with a JSON object of "ok" or the
// error per check. Checks are reachability (NATS connected, Redis answers):
// what a load balancer or an operator should know before sending work.
func Readiness(checks map[string]func(context.Context) error) http.Handler {
	return readiness(checks, true)
}

func readiness(checks map[string]func(context.Context) error, detail bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		status := http.StatusOK
		results := make(map[string]string, len(checks))
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status = http.StatusServiceUnavailable
				results[name] = err.Error()
			} else {
				results[name] = "ok"
			}
		}
		if !detail {
			text := "ok\n"
			if status != http.StatusOK {
				text = "not ready\n"
			}
			writeStatus(w, status, text)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(results)
	})
}

// Liveness is a GET /healthz handler: 200 "ok" while every check passes, else
// 503 with one line per failing check. Checks should be cheap and local (is a
// connection closed for good?), not reachability: a restart does not bring
// back a dependency that is down, and /readyz reports those.
func Liveness(checks map[string]func(context.Context) error) http.Handler {
	return liveness(checks, true)
}

func liveness(checks map[string]func(context.Context) error, detail bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var failed []string
		for name, check := range checks {
			if err := check(r.Context()); err != nil {
				failed = append(failed, name+": "+err.Error())
			}
		}
		switch {
		case len(failed) == 0:
			io.WriteString(w, "ok\n")
		case !detail:
			writeStatus(w, http.StatusServiceUnavailable, "unhealthy\n")
		default:
			slices.Sort(failed)
			writeStatus(w, http.StatusServiceUnavailable, strings.Join(failed, "\n")+"\n")
		}
	})
}

func writeStatus(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, text)
}

// NATSAlive is a [Liveness] check that fails once one of conns is closed.
// nats.go closes a connection for good after a fatal protocol error (the
// server's "maximum control line exceeded", an authorization violation) and
// never reconnects it: only a restart helps. A connection that is merely
// disconnected and reconnecting is alive; /readyz reports it.
func NATSAlive(conns ...*nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		for _, nc := range conns {
			if !nc.IsClosed() {
				continue
			}
			if err := nc.LastError(); err != nil {
				return fmt.Errorf("NATS connection %q is closed for good (%v); restart the process", nc.Opts.Name, err)
			}
			return fmt.Errorf("NATS connection %q is closed for good; restart the process", nc.Opts.Name)
		}
		return nil
	}
}
