package binding_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"
)

// tokenTap records the access tokens Slack hands the worker in oauth.v2.access
// answers, so a test can check what became of them.
type tokenTap struct {
	mu     sync.Mutex
	tokens []string
}

func (tp *tokenTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/oauth.v2.access") {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &body) == nil && body.AccessToken != "" {
		tp.mu.Lock()
		tp.tokens = append(tp.tokens, body.AccessToken)
		tp.mu.Unlock()
	}
	return resp, nil
}

func (tp *tokenTap) issued() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.tokens...)
}

// TestRefusedInstallTokenRevoked: an install with chat:write but no channel
// is refused, and the bot token Slack issued for it is given back (auth.revoke).
func TestRefusedInstallTokenRevoked(t *testing.T) {
	tests := []struct {
		name        string
		scopes      []string
		query       string
		wantPage    string
		wantRevoked bool
	}{
		{name: "chat:write without a channel", scopes: []string{"commands", "chat:write"}, wantPage: "must carry a channel to post to", wantRevoked: true},
		{name: "with a channel", scopes: []string{"commands", "chat:write", "incoming-webhook"}, query: "&channel=%23general", wantPage: "Installed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tap := &tokenTap{}
			e := startEnv(t, envOpts{scopes: tt.scopes, slackHTTP: &http.Client{Transport: tap}})
			team := e.teams()[0]
			if _, page := e.browse(e.ingress.URL + "/slack/install?team=" + team + tt.query); !strings.Contains(page, tt.wantPage) {
				t.Fatalf("install page: %s", page)
			}
			toks := tap.issued()
			if len(toks) != 1 {
				t.Fatalf("Slack issued %d tokens, want 1", len(toks))
			}
			_, err := slack.New(toks[0], slack.OptionAPIURL(e.slack.APIURL())).AuthTestContext(context.Background())
			var se slack.SlackErrorResponse
			revoked := errors.As(err, &se) && (se.Err == "token_revoked" || se.Err == "invalid_auth")
			if revoked != tt.wantRevoked {
				t.Fatalf("auth.test with the install's token: %v, want revoked=%v", err, tt.wantRevoked)
			}
			calls := e.slack.Calls("auth.revoke")
			if tt.wantRevoked && (len(calls) != 1 || !calls[0].OK) {
				t.Fatalf("auth.revoke calls = %+v, want one that succeeded", calls)
			}
		})
	}
}
