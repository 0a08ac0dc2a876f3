package binding

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestReplyErrorHidesResponseURL: a response_url is a capability; a failed
// post names only its host, never its path.
func TestReplyErrorHidesResponseURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens any more: the post fails
	w := &Worker{cfg: Config{HTTP: &http.Client{Timeout: 5 * time.Second}}, log: slog.New(slog.DiscardHandler)}
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
