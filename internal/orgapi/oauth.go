// Package orgapi talks to a Salesforce-style org: the OAuth 2.0 web-server flow
// (authorize URL, code exchange, refresh, userinfo, identity URL) with typed
// errors the binding and mapping workers act on, and a SCIM 2.0 client
// (RFC 7643/7644) for provisioning.
package orgapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config configures a [Client].
type Config struct {
	// BaseURL is the login URL (https://login.salesforce.com, a My Domain URL,
	// or the emulator's URL).
	BaseURL      string
	ClientID     string
	ClientSecret Secret
	// RedirectURL is the callback registered for the connected app.
	RedirectURL string
	// Scope is sent to authorize; the org's default scopes when empty.
	Scope string
	// HTTPClient is http.DefaultClient when nil.
	HTTPClient *http.Client
}

// Validate reports a missing or malformed setting.
func (c Config) Validate() error {
	var missing []string
	if c.BaseURL == "" {
		missing = append(missing, "BaseURL")
	}
	if c.ClientID == "" {
		missing = append(missing, "ClientID")
	}
	if c.ClientSecret == "" {
		missing = append(missing, "ClientSecret")
	}
	if c.RedirectURL == "" {
		missing = append(missing, "RedirectURL")
	}
	if len(missing) > 0 {
		return fmt.Errorf("orgapi: config is missing %s", strings.Join(missing, ", "))
	}
	if u, err := url.Parse(c.BaseURL); err != nil || !u.IsAbs() {
		return fmt.Errorf("orgapi: BaseURL %q is not an absolute URL", c.BaseURL)
	}
	if u, err := url.Parse(c.RedirectURL); err != nil || !u.IsAbs() {
		return fmt.Errorf("orgapi: RedirectURL %q is not an absolute URL", c.RedirectURL)
	}
	return nil
}

// Client runs the OAuth 2.0 web-server flow against one login URL. It is safe
// for concurrent use.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), hc: hc}, nil
}

// Token is the org's answer to a code exchange or a refresh.
type Token struct {
	AccessToken Secret
	// RefreshToken is set by the code exchange; a refresh does not return a new
	// one: keep using the one you have.
	RefreshToken Secret
	// InstanceURL is where this org's APIs live.
	InstanceURL string
	// ID is the identity URL, <login>/id/<orgId>/<userId>.
	ID        string
	IssuedAt  time.Time
	TokenType string
	Scope     string
	Signature string
}

// OrgID is the org id from the identity URL.
func (t *Token) OrgID() string {
	org, _ := t.ids()
	return org
}

// UserID is the user id from the identity URL.
func (t *Token) UserID() string {
	_, user := t.ids()
	return user
}

func (t *Token) ids() (org, user string) {
	u, err := url.Parse(t.ID)
	if err != nil {
		return "", ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 3 || parts[len(parts)-3] != "id" {
		return "", ""
	}
	return parts[len(parts)-2], parts[len(parts)-1]
}

// LogValue logs the token without its secrets.
func (t *Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("org", t.OrgID()), slog.String("user", t.UserID()),
		slog.String("instance_url", t.InstanceURL), slog.Time("issued_at", t.IssuedAt),
		slog.Any("access_token", t.AccessToken), slog.Any("refresh_token", t.RefreshToken),
	)
}

// UserInfo is the OpenID Connect userinfo answer.
type UserInfo struct {
	Sub               string `json:"sub"`
	UserID            string `json:"user_id"`
	OrganizationID    string `json:"organization_id"`
	PreferredUsername string `json:"preferred_username"`
	Nickname          string `json:"nickname"`
	Name              string `json:"name"`
	GivenName         string `json:"given_name"`
	FamilyName        string `json:"family_name"`
	Email             string `json:"email"`
	EmailVerified     bool   `json:"email_verified"`
	Active            bool   `json:"active"`
	UserType          string `json:"user_type"`
	// CustomAttributes are the connected app's custom attributes; orgbridge
	// reads "org_admin" ("true" for an org administrator).
	CustomAttributes map[string]string `json:"custom_attributes,omitempty"`
}

// IsOrgAdmin reports whether the org marks the user an administrator
// (custom attribute org_admin = "true").
func (u *UserInfo) IsOrgAdmin() bool {
	return strings.EqualFold(u.CustomAttributes["org_admin"], "true")
}

// Identity is the identity URL's answer.
type Identity struct {
	ID             string `json:"id"`
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
	Username       string `json:"username"`
	NickName       string `json:"nick_name"`
	DisplayName    string `json:"display_name"`
	Email          string `json:"email"`
	FirstName      string `json:"first_name"`
	LastName       string `json:"last_name"`
	Active         bool   `json:"active"`
	UserType       string `json:"user_type"`
}

// AuthorizeURL is where to send the user's browser. state must be unguessable
// and checked on the callback; loginHint (a username) may be empty.
func (c *Client) AuthorizeURL(state, loginHint string) string {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {c.cfg.ClientID},
		"redirect_uri":  {c.cfg.RedirectURL},
		"state":         {state},
	}
	if loginHint != "" {
		q.Set("login_hint", loginHint)
	}
	if c.cfg.Scope != "" {
		q.Set("scope", c.cfg.Scope)
	}
	return c.base + "/services/oauth2/authorize?" + q.Encode()
}

// ParseCallback reads the query of the redirect back from authorize: the code
// and state, or the refusal as an *APIError (Status 0) matching
// [ErrAccessDenied], [ErrOrgNotPermitted], [ErrUserNotPermitted] or
// [ErrInvalidClient]. The caller still has to check state.
func ParseCallback(q url.Values) (code, state string, err error) {
	state = q.Get("state")
	if e := q.Get("error"); e != "" {
		return "", state, &APIError{Code: e, Description: q.Get("error_description")}
	}
	code = q.Get("code")
	if code == "" {
		return "", state, errors.New("orgapi: callback has neither code nor error")
	}
	return code, state, nil
}

// Exchange trades an authorization code for tokens. A reused or expired code,
// an expired org or an inactive user give [ErrInvalidGrant].
func (c *Client) Exchange(ctx context.Context, code string) (*Token, error) {
	tok, err := c.token(ctx, url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {c.cfg.RedirectURL},
	})
	if err != nil {
		return nil, fmt.Errorf("exchanging code: %w", err)
	}
	return tok, nil
}

// Refresh gets a new access token. [ErrInvalidGrant] means the org expired, the
// user was deactivated or the refresh token was revoked: the user must connect
// again.
func (c *Client) Refresh(ctx context.Context, refreshToken Secret) (*Token, error) {
	tok, err := c.token(ctx, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken.Reveal()},
	})
	if err != nil {
		return nil, fmt.Errorf("refreshing token: %w", err)
	}
	return tok, nil
}

func (c *Client) token(ctx context.Context, form url.Values) (*Token, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	form.Set("client_id", c.cfg.ClientID)
	form.Set("client_secret", c.cfg.ClientSecret.Reveal())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("orgapi: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := do(c.hc, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorFrom(resp, body)
	}
	var raw struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		InstanceURL  string `json:"instance_url"`
		ID           string `json:"id"`
		IssuedAt     string `json:"issued_at"`
		TokenType    string `json:"token_type"`
		Scope        string `json:"scope"`
		Signature    string `json:"signature"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.AccessToken == "" {
		return nil, fmt.Errorf("orgapi: token response is not a token (status %d)", resp.StatusCode)
	}
	if raw.Signature != "" {
		mac := hmac.New(sha256.New, []byte(c.cfg.ClientSecret.Reveal()))
		mac.Write([]byte(raw.ID + raw.IssuedAt))
		got, err := base64.StdEncoding.DecodeString(raw.Signature)
		if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
			return nil, ErrBadSignature
		}
	}
	t := &Token{
		AccessToken: Secret(raw.AccessToken), RefreshToken: Secret(raw.RefreshToken),
		InstanceURL: raw.InstanceURL, ID: raw.ID, TokenType: raw.TokenType, Scope: raw.Scope, Signature: raw.Signature,
	}
	if ms, err := strconv.ParseInt(raw.IssuedAt, 10, 64); err == nil {
		t.IssuedAt = time.UnixMilli(ms)
	}
	return t, nil
}

// UserInfo asks who the access token belongs to. A refused token (expired,
// user deactivated, org expired) gives [ErrInvalidToken].
func (c *Client) UserInfo(ctx context.Context, accessToken Secret) (*UserInfo, error) {
	var ui UserInfo
	if err := c.getJSON(ctx, c.base+"/services/oauth2/userinfo", accessToken, &ui); err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	return &ui, nil
}

// Identity reads the token's identity URL (Token.ID).
func (c *Client) Identity(ctx context.Context, tok *Token) (*Identity, error) {
	var id Identity
	if err := c.getJSON(ctx, tok.ID, tok.AccessToken, &id); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return &id, nil
}

func (c *Client) getJSON(ctx context.Context, u string, tok Secret, v any) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("orgapi: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, body, err := do(c.hc, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errorFrom(resp, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("orgapi: decoding %s: %w", req.URL.Path, err)
	}
	return nil
}
