package httpx_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/httpx"
)

func TestAdminOnly(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tests := []struct {
		name, token, header string
		want                int
	}{
		{"right token", "s3cret", "Bearer s3cret", http.StatusNoContent},
		{"no header", "s3cret", "", http.StatusUnauthorized},
		{"wrong token", "s3cret", "Bearer nope", http.StatusUnauthorized},
		{"not bearer", "s3cret", "Basic s3cret", http.StatusUnauthorized},
		{"admin API off", "", "Bearer ", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/admin/api/installations", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			httpx.AdminOnly(tt.token, ok).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("got %d, want %d", rec.Code, tt.want)
			}
			if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("a 401 without WWW-Authenticate")
			}
		})
	}
}

// A client that keeps sending wrong tokens is answered 429 (even with the
// right one) until its window ends; other clients are not; a success forgets
// earlier mistakes; the table of clients stays bounded.
func TestAdminGuardLimitsFailures(t *testing.T) {
	const token = "0123456789abcdef01234567"
	type step struct {
		client  string // remote IP
		token   string
		advance time.Duration // clock moves before the request
		want    int
		times   int // repeat; 0 means once
	}
	tests := []struct {
		name       string
		maxClients int
		steps      []step
	}{
		{name: "blocked after the limit, right token or not", steps: []step{
			{client: "192.0.2.1", token: "wrong", want: http.StatusUnauthorized, times: 3},
			{client: "192.0.2.1", token: "wrong", want: http.StatusTooManyRequests},
			{client: "192.0.2.1", token: token, want: http.StatusTooManyRequests},
			{client: "192.0.2.2", token: token, want: http.StatusNoContent},
			{client: "192.0.2.1", token: token, advance: 59 * time.Second, want: http.StatusTooManyRequests},
			{client: "192.0.2.1", token: token, advance: time.Second, want: http.StatusNoContent},
		}},
		{name: "a success forgets earlier failures", steps: []step{
			{client: "192.0.2.1", token: "wrong", want: http.StatusUnauthorized, times: 2},
			{client: "192.0.2.1", token: token, want: http.StatusNoContent},
			{client: "192.0.2.1", token: "wrong", want: http.StatusUnauthorized, times: 3},
			{client: "192.0.2.1", token: "wrong", want: http.StatusTooManyRequests},
		}},
		{name: "failures of a past window do not count", steps: []step{
			{client: "192.0.2.1", token: "wrong", want: http.StatusUnauthorized, times: 2},
			{client: "192.0.2.1", token: "wrong", advance: time.Minute, want: http.StatusUnauthorized, times: 3},
			{client: "192.0.2.1", token: "wrong", want: http.StatusTooManyRequests},
		}},
		{name: "beyond the table's size new clients share one count", maxClients: 2, steps: []step{
			{client: "192.0.2.1", token: "wrong", want: http.StatusUnauthorized},
			{client: "192.0.2.2", token: "wrong", want: http.StatusUnauthorized},
			{client: "192.0.2.3", token: "wrong", want: http.StatusUnauthorized},
			{client: "192.0.2.4", token: "wrong", want: http.StatusUnauthorized},
			{client: "192.0.2.5", token: "wrong", want: http.StatusUnauthorized},
			{client: "192.0.2.6", token: token, want: http.StatusTooManyRequests},
			{client: "192.0.2.7", token: token, advance: time.Minute, want: http.StatusNoContent},
		}},
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			g := httpx.NewAdminGuard(httpx.AdminGuardConfig{Token: token, MaxFailures: 3, Window: time.Minute,
				MaxClients: tt.maxClients, Now: func() time.Time { return now }})
			h := g.Wrap(ok)
			for i, st := range tt.steps {
				now = now.Add(st.advance)
				for range max(st.times, 1) {
					req := httptest.NewRequest(http.MethodGet, "/admin/api/installations", nil)
					req.RemoteAddr = st.client + ":40000"
					req.Header.Set("Authorization", "Bearer "+st.token)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != st.want {
						t.Fatalf("step %d (%s): got %d, want %d: %s", i, st.client, rec.Code, st.want, rec.Body)
					}
					if rec.Code == http.StatusTooManyRequests {
						if secs, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
							t.Fatalf("429 with Retry-After %q", rec.Header().Get("Retry-After"))
						}
					}
				}
			}
		})
	}
}

func TestWriteJSONError(t *testing.T) {
	rec := httptest.NewRecorder()
	httpx.WriteJSONError(rec, http.StatusNotFound, "not_found", "  no such thing; list them first \n")
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/json" ||
		body["error"] != "not_found" || body["message"] != "no such thing; list them first" {
		t.Fatalf("got %d %q %v", rec.Code, rec.Header().Get("Content-Type"), body)
	}
}
