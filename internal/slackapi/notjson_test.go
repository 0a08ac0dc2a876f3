package slackapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orgbridge/orgbridge/internal/slackapi"
)

// TestNotJSONAnswerMayHaveActed: an HTTP 200 whose body is not JSON (a
// proxy's page) says nothing about whether Slack acted, so it is a
// TransportError with MaybeSent, never a definite failure.
func TestNotJSONAnswerMayHaveActed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>upstream hiccup</html>")
	}))
	t.Cleanup(srv.Close)
	c, err := slackapi.New(srv.URL + "/api/")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.DisconnectExternalTeam(context.Background(), "xoxb-x", "T123")
	var te *slackapi.TransportError
	if !errors.As(err, &te) || !te.MaybeSent {
		t.Fatalf("err = %#v, want *TransportError with MaybeSent", err)
	}
	if resp.Status != http.StatusOK || slackapi.ErrorCode(err) != "" {
		t.Fatalf("resp = %+v, code %q", resp, slackapi.ErrorCode(err))
	}
}
