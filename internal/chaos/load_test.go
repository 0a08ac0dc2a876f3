package chaos

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// TestSender plays Slack against a server that fails every event's first
// attempt: the load is bounded to rate × duration, every event is signed,
// retried with Slack's headers and counted acknowledged once it gets a 200.
func TestSender(t *testing.T) {
	const secret = "chaos-test-secret"
	var mu sync.Mutex
	attempts := map[string][]string{} // event id → X-Slack-Retry-Num of each attempt
	var badSignatures int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v, err := slack.NewSecretsVerifier(r.Header, secret)
		if err == nil {
			_, _ = v.Write(body)
			err = v.Ensure()
		}
		var ev struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			badSignatures++
		}
		attempts[ev.EventID] = append(attempts[ev.EventID], r.Header.Get("X-Slack-Retry-Num"))
		if len(attempts[ev.EventID]) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	s := newSender(srv.URL, secret, 1e6) // retries at once
	ids := s.load(context.Background(), "TCHAOS1", 1, 200, 250*time.Millisecond)
	s.wait()
	if len(ids) != 50 {
		t.Fatalf("sent %d events, want 200/s × 0.25 s = 50", len(ids))
	}
	mu.Lock()
	defer mu.Unlock()
	if badSignatures > 0 {
		t.Fatalf("%d requests with a bad signature", badSignatures)
	}
	for _, id := range ids {
		if got := strings.Join(attempts[id], ","); got != ",1" {
			t.Fatalf("event %s: attempts with X-Slack-Retry-Num %q, want a first attempt then retry 1", id, got)
		}
		if !s.isAcked(id) || !s.wasRetried(id) {
			t.Fatalf("event %s: acknowledged %v, retried %v; want both", id, s.isAcked(id), s.wasRetried(id))
		}
	}
	if len(attempts) != len(ids) {
		t.Fatalf("%d distinct event ids for %d events", len(attempts), len(ids))
	}
	if got := Faults(); len(got) != 8 || got[0] != "none" {
		t.Fatalf("Faults() = %q", got)
	}
}
