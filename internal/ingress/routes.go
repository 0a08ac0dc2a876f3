package ingress

import (
	"net/http"

	"github.com/orgbridge/orgbridge/internal/httpx"
)

// routes holds the server's handlers three ways: all of them for one
// listener, or split between the public listener (what Slack and browsers
// reach) and an admin one (admin API, metrics, detailed health).
type routes struct {
	all, public, admin *http.ServeMux
}

func newRoutes() routes {
	r := routes{all: http.NewServeMux(), public: http.NewServeMux(), admin: http.NewServeMux()}
	r.public.HandleFunc("/admin/api/", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSONError(w, http.StatusNotFound, "not_found",
			"the admin API is served on the ingress's admin listener (ORGBRIDGE_ADMIN_ADDR), not on this one")
	})
	return r
}

// Handler returns every route for a single listener: the Slack routes, what
// was added with [Server.Mount] and [Server.MountAdmin], GET /healthz and the
// detailed GET /readyz.
func (s *Server) Handler() http.Handler { return s.drainAware(s.routes.all) }

// PublicHandler returns the routes of a public listener when the admin routes
// have their own ([Server.AdminHandler]): the Slack routes, what was added with
// [Server.Mount], and GET /healthz and GET /readyz that answer with their status
// only, never with what failed.
func (s *Server) PublicHandler() http.Handler { return s.drainAware(s.routes.public) }

// AdminHandler returns the routes of a separate admin listener: what was added
// with [Server.MountAdmin], and the detailed GET /healthz and GET /readyz.
func (s *Server) AdminHandler() http.Handler { return s.drainAware(s.routes.admin) }

// Mount adds a public handler for pattern (net/http ServeMux syntax), for the
// parts that live beside the Slack routes and must be reachable by Slack or
// browsers: OAuth redirects, connect pages, the console.
func (s *Server) Mount(pattern string, h http.Handler) {
	s.routes.all.Handle(pattern, h)
	s.routes.public.Handle(pattern, h)
}

// MountAdmin adds a handler that only operators need (the admin API,
// /metrics): on the admin listener when there is one, else beside the rest.
func (s *Server) MountAdmin(pattern string, h http.Handler) {
	s.routes.all.Handle(pattern, h)
	s.routes.admin.Handle(pattern, h)
}

// Drain marks the start of a shutdown: from now on GET /readyz answers 503, so
// load balancers stop sending new requests, while requests are still served;
// each answer carries Connection: close, so a client on a keep-alive
// connection opens its next one elsewhere instead of finding this one closed
// under it when the server stops. Call it when the shutdown signal arrives and
// keep serving for a drain period before http.Server.Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) drainAware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
