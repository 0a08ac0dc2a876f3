package ingress_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// With a separate admin listener the public one serves what Slack and
// browsers need and health without details; the admin one serves the rest.
func TestPublicAndAdminRoutes(t *testing.T) {
	n := testenv.StartNATS(t)
	s, err := ingress.New(ingress.Config{SigningSecret: secret,
		Checks: map[string]func(context.Context) error{"redis": func(context.Context) error { return errors.New("dial tcp 10.1.2.3:6379: connection refused") }},
		Live: map[string]func(context.Context) error{"nats": func(context.Context) error {
			return errors.New(`NATS connection "orgbridge-ingress-0" is closed for good`)
		}},
	}, n.JS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mark := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(name)) })
	}
	s.Mount("/console/", mark("console"))
	s.MountAdmin("GET /metrics", mark("metrics"))
	s.MountAdmin("/admin/api/installations", mark("admin"))

	handlers := map[string]http.Handler{"all": s.Handler(), "public": s.PublicHandler(), "admin": s.AdminHandler()}
	tests := []struct {
		name, handler, method, path string
		wantCode                    int
		wantBody, notBody           string
	}{
		{"one listener: console", "all", "GET", "/console/", 200, "console", ""},
		{"one listener: metrics", "all", "GET", "/metrics", 200, "metrics", ""},
		{"one listener: admin API", "all", "GET", "/admin/api/installations", 200, "admin", ""},
		{"one listener: readyz has details", "all", "GET", "/readyz", 503, "10.1.2.3", ""},
		{"one listener: healthz has details", "all", "GET", "/healthz", 503, "orgbridge-ingress-0", ""},
		{"public: Slack route", "public", "POST", "/slack/events", 401, "", ""},
		{"public: console", "public", "GET", "/console/", 200, "console", ""},
		{"public: no metrics", "public", "GET", "/metrics", 404, "", "metrics"},
		{"public: no admin API", "public", "GET", "/admin/api/installations", 404, "admin listener (ORGBRIDGE_ADMIN_ADDR)", ""},
		{"public: readyz without details", "public", "GET", "/readyz", 503, "not ready", "10.1.2.3"},
		{"public: healthz without details", "public", "GET", "/healthz", 503, "unhealthy", "orgbridge-ingress-0"},
		{"admin: metrics", "admin", "GET", "/metrics", 200, "metrics", ""},
		{"admin: admin API", "admin", "GET", "/admin/api/installations", 200, "admin", ""},
		{"admin: readyz has details", "admin", "GET", "/readyz", 503, "10.1.2.3", ""},
		{"admin: healthz has details", "admin", "GET", "/healthz", 503, "orgbridge-ingress-0", ""},
		{"admin: no Slack route", "admin", "POST", "/slack/events", 404, "", ""},
		{"admin: no console", "admin", "GET", "/console/", 404, "", "console"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			handlers[tt.handler].ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			body := rec.Body.String()
			if rec.Code != tt.wantCode || !strings.Contains(body, tt.wantBody) || (tt.notBody != "" && strings.Contains(body, tt.notBody)) {
				t.Fatalf("%s %s on %s: %d %q, want %d with %q and without %q", tt.method, tt.path, tt.handler, rec.Code, body, tt.wantCode, tt.wantBody, tt.notBody)
			}
		})
	}
}

// Once draining, /readyz fails at once on every listener while the other
// routes still answer, each asking its client to close the connection.
func TestDrain(t *testing.T) {
	n := testenv.StartNATS(t)
	s, err := ingress.New(ingress.Config{SigningSecret: secret,
		Checks: map[string]func(context.Context) error{"nats": func(context.Context) error { return nil }}}, n.JS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Mount("/console/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("console")) }))
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	handlers := map[string]http.Handler{"all": s.Handler(), "public": s.PublicHandler(), "admin": s.AdminHandler()}
	for name, h := range handlers {
		if rec := get(h, "/readyz"); rec.Code != 200 || rec.Header().Get("Connection") != "" {
			t.Fatalf("%s /readyz before draining: %d %q", name, rec.Code, rec.Header().Get("Connection"))
		}
	}
	s.Drain()
	tests := []struct {
		name, handler, path string
		wantCode            int
		wantBody            string
	}{
		{"readyz", "all", "/readyz", 503, "shutting down"},
		{"public readyz", "public", "/readyz", 503, "not ready"},
		{"admin readyz", "admin", "/readyz", 503, "shutting down"},
		{"healthz", "all", "/healthz", 200, "ok"},
		{"console still served", "public", "/console/", 200, "console"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(handlers[tt.handler], tt.path)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) || rec.Header().Get("Connection") != "close" {
				t.Fatalf("%s while draining: %d %q Connection %q, want %d with %q and Connection: close",
					tt.path, rec.Code, rec.Body, rec.Header().Get("Connection"), tt.wantCode, tt.wantBody)
			}
		})
	}
}
