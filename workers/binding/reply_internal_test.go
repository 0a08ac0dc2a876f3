package binding

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/slackapi"
)

// replyWorker is a Worker with just what reply needs: posts allowed to origins.
func replyWorker(t *testing.T, reg prometheus.Registerer, origins ...string) *Worker {
	t.Helper()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &Worker{cfg: Config{HTTP: noRedirects(&http.Client{Timeout: 5 * time.Second}),
		ResponseURLs: slackapi.ResponseURLPolicy{Origins: origins}}, log: slog.New(slog.DiscardHandler), metrics: m}
}

// TestReplyErrorHidesResponseURL: a response_url is a capability; a failed
// post names only its host, never its path.
func TestReplyErrorHidesResponseURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens any more: the post fails
	w := replyWorker(t, nil, base)
	const secret = "/commands/T0001/1234567890/s3cretCapabilityPath"
	err := w.reply(context.Background(), base+secret, "hello", nil)
	if err == nil {
		t.Fatal("posting to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "s3cretCapabilityPath") || strings.Contains(err.Error(), "/commands/") {
		t.Fatalf("error leaks the response_url: %v", err)
	}
	if !strings.Contains(err.Error(), strings.TrimPrefix(base, "http://")) {
		t.Fatalf("error does not name the host: %v", err)
	}
}

// countingServer counts the requests it gets.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestReplyOnlyToAllowedOrigins: a response_url outside the policy is never
// called, counts as refused and fails the message for good; a redirect from
// an allowed one is not followed.
func TestReplyOnlyToAllowedOrigins(t *testing.T) {
	internal, internalHits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	slack, slackHits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/redirect") {
			http.Redirect(w, r, internal.URL+"/admin", http.StatusTemporaryRedirect)
		}
	})
	reg := prometheus.NewRegistry()
	w := replyWorker(t, reg, slack.URL)
	tests := []struct {
		name          string
		url           string
		wantRefused   bool
		wantSlackHits int64
	}{
		{"allowed", slack.URL + "/commands/T1/1/x", false, 1},
		{"internal address", internal.URL + "/admin", true, 0},
		{"internal, slack in the user info", strings.Replace(internal.URL, "http://", "http://"+strings.TrimPrefix(slack.URL, "http://")+"@", 1), true, 0},
		{"redirect from an allowed origin", slack.URL + "/redirect", false, 1},
	}
	refused := 0.0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slackHits.Load()
			err := w.reply(context.Background(), tt.url, "hello", nil)
			if tt.wantRefused {
				refused++
				if !errors.Is(err, slackapi.ErrResponseURLRefused) || !bus.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent refusal", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := slackHits.Load() - before; got != tt.wantSlackHits {
				t.Fatalf("the allowed server got %d posts, want %d", got, tt.wantSlackHits)
			}
			if n := internalHits.Load(); n != 0 {
				t.Fatalf("the internal address was called %d times", n)
			}
			if got := counterValue(t, reg, "orgbridge_binding_response_urls_refused_total"); got != refused {
				t.Fatalf("refused counter = %v, want %v", got, refused)
			}
		})
	}
}

// counterValue reads the counter called name in reg (0 when it has no value yet).
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
