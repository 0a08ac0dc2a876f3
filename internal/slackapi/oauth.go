// Package slackapi holds orgbridge's Slack Web API helpers built on slack-go.
package slackapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// OAuthApp is the Slack app's OAuth identity: it exchanges install codes,
// refreshes rotating tokens and uninstalls the app.
type OAuthApp struct {
	// APIURL is the Web API base ending in /api/ (the emulator's in tests).
	APIURL       string
	ClientID     string
	ClientSecret string
	// HTTP is the client for every call; a 15 s timeout client when nil.
	HTTP *http.Client
}

func (a *OAuthApp) hc() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 15 * time.Second}
}

func (a *OAuthApp) apiURL() string {
	if a.APIURL == "" {
		return slack.APIURL
	}
	if !strings.HasSuffix(a.APIURL, "/") {
		return a.APIURL + "/"
	}
	return a.APIURL
}

// Exchange trades an install code for the install's tokens (oauth.v2.access).
func (a *OAuthApp) Exchange(ctx context.Context, code, redirectURI string) (*slack.OAuthV2Response, error) {
	r, err := slack.GetOAuthV2ResponseContext(ctx, a.hc(), a.ClientID, a.ClientSecret, code, redirectURI, slack.OAuthOptionAPIURL(a.apiURL()))
	if err != nil {
		return nil, fmt.Errorf("slackapi: oauth.v2.access: %w", err)
	}
	return r, nil
}

// Refresh trades a rotating refresh token for a new access token and a new
// refresh token; the old refresh token stops working, so callers refresh under
// a per-install lock.
func (a *OAuthApp) Refresh(ctx context.Context, refreshToken string) (*slack.OAuthV2Response, error) {
	r, err := slack.RefreshOAuthV2TokenContext(ctx, a.hc(), a.ClientID, a.ClientSecret, refreshToken, slack.OAuthOptionAPIURL(a.apiURL()))
	if err != nil {
		return nil, fmt.Errorf("slackapi: oauth.v2.access refresh: %w", err)
	}
	return r, nil
}

// Client returns a Web API client for token.
func (a *OAuthApp) Client(token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(a.apiURL()), slack.OptionHTTPClient(a.hc()))
}

// Uninstall calls apps.uninstall with the install's bot token; Slack then
// sends app_uninstalled and tokens_revoked.
func (a *OAuthApp) Uninstall(ctx context.Context, botToken string) error {
	if err := a.Client(botToken).UninstallAppContext(ctx, a.ClientID, a.ClientSecret); err != nil {
		return fmt.Errorf("slackapi: apps.uninstall: %w", err)
	}
	return nil
}
