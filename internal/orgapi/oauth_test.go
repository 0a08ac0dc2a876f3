package orgapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

const redirectURL = "https://orgbridge.test/oauth/org/callback"

// clock is a settable time source for the emulator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClient(t *testing.T, e *orgemu.Emulator, id string, secret orgapi.Secret) *orgapi.Client {
	t.Helper()
	c, err := orgapi.New(orgapi.Config{BaseURL: e.URL(), ClientID: id, ClientSecret: secret, RedirectURL: redirectURL})
	if err != nil {
		t.Fatalf("orgapi.New: %v", err)
	}
	return c
}

// authorize follows the authorize URL as a browser would and returns the
// parsed callback.
func authorize(t *testing.T, c *orgapi.Client, loginHint string) (code string, err error) {
	t.Helper()
	state := "st-" + loginHint
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, herr := hc.Get(c.AuthorizeURL(state, loginHint))
	if herr != nil {
		t.Fatalf("GET authorize: %v", herr)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize status = %d, want 302", resp.StatusCode)
	}
	loc, perr := url.Parse(resp.Header.Get("Location"))
	if perr != nil {
		t.Fatalf("bad Location: %v", perr)
	}
	if !strings.HasPrefix(loc.String(), redirectURL) {
		t.Fatalf("redirected to %s, want %s", loc, redirectURL)
	}
	code, gotState, err := orgapi.ParseCallback(loc.Query())
	if gotState != state {
		t.Fatalf("state = %q, want %q", gotState, state)
	}
	return code, err
}

func login(t *testing.T, c *orgapi.Client, username string) *orgapi.Token {
	t.Helper()
	code, err := authorize(t, c, username)
	if err != nil {
		t.Fatalf("authorize %s: %v", username, err)
	}
	tok, err := c.Exchange(context.Background(), code)
	if err != nil {
		t.Fatalf("exchange for %s: %v", username, err)
	}
	return tok
}

func TestOAuthFlow(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	c := newClient(t, e, "any-client", "any-secret")
	ctx := context.Background()

	tok := login(t, c, "alice@acme.example")
	if tok.OrgID() != "00D000000000001" || !strings.HasPrefix(tok.UserID(), "005") {
		t.Fatalf("token ids = %s/%s, want org 00D000000000001 and a 005 user", tok.OrgID(), tok.UserID())
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.InstanceURL != e.URL() || tok.TokenType != "Bearer" || tok.IssuedAt.IsZero() || tok.Signature == "" {
		t.Fatalf("token incomplete: %+v", *tok)
	}

	ui, err := c.UserInfo(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	if ui.PreferredUsername != "alice@acme.example" || ui.Email != "alice@acme.example" || ui.OrganizationID != tok.OrgID() ||
		ui.UserID != tok.UserID() || !ui.Active || ui.Name != "Alice Archer" {
		t.Fatalf("userinfo = %+v", ui)
	}
	id, err := c.Identity(ctx, tok)
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	if id.Username != "alice@acme.example" || id.OrganizationID != tok.OrgID() || id.UserID != tok.UserID() || !id.Active || id.ID != tok.ID {
		t.Fatalf("identity = %+v", id)
	}

	refreshed, err := c.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if refreshed.AccessToken == tok.AccessToken || refreshed.ID != tok.ID {
		t.Fatalf("refresh gave %+v", *refreshed)
	}
	if _, err := c.UserInfo(ctx, refreshed.AccessToken); err != nil {
		t.Fatalf("UserInfo with refreshed token: %v", err)
	}
	if _, err := c.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatalf("refresh token should stay usable after a refresh: %v", err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	clk := newClock()
	e := orgemu.StartTest(t, orgemu.Config{Now: clk.Now})
	c := newClient(t, e, "cid", "secret")
	ctx := context.Background()

	tests := []struct {
		name string
		code func(t *testing.T) string
		with *orgapi.Client
	}{
		{"reused code", func(t *testing.T) string {
			code, err := authorize(t, c, "bob@acme.example")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exchange(ctx, code); err != nil {
				t.Fatalf("first exchange: %v", err)
			}
			return code
		}, c},
		{"unknown code", func(*testing.T) string { return "not-a-code" }, c},
		{"expired code", func(t *testing.T) string {
			code, err := authorize(t, c, "bob@acme.example")
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(orgemu.DefaultCodeTTL + time.Second)
			return code
		}, c},
		{"other redirect_uri", func(t *testing.T) string {
			code, err := authorize(t, c, "bob@acme.example")
			if err != nil {
				t.Fatal(err)
			}
			return code
		}, func() *orgapi.Client {
			other, err := orgapi.New(orgapi.Config{BaseURL: e.URL(), ClientID: "cid", ClientSecret: "secret", RedirectURL: "https://elsewhere.test/cb"})
			if err != nil {
				t.Fatal(err)
			}
			return other
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.with.Exchange(ctx, tt.code(t))
			if !errors.Is(err, orgapi.ErrInvalidGrant) {
				t.Fatalf("err = %v, want ErrInvalidGrant", err)
			}
			var apiErr *orgapi.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
				t.Fatalf("err = %#v, want a 400 *APIError", err)
			}
		})
	}
}

func TestOrgExpiry(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		expire func(t *testing.T, e *orgemu.Emulator, clk *clock)
	}{
		{"expired by control API", func(t *testing.T, e *orgemu.Emulator, _ *clock) {
			resp, err := http.Post(e.URL()+"/_emulator/orgs/00D000000000003/expire", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("expire status = %d", resp.StatusCode)
			}
		}},
		{"scratch org past its end", func(t *testing.T, _ *orgemu.Emulator, clk *clock) {
			clk.Advance(orgemu.DefaultScratchTTL)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			e := orgemu.StartTest(t, orgemu.Config{Now: clk.Now, AccessTokenTTL: 100 * time.Hour})
			c := newClient(t, e, "cid", "secret")
			tok := login(t, c, "admin@scratch.acme.example")
			if _, err := c.UserInfo(ctx, tok.AccessToken); err != nil {
				t.Fatalf("UserInfo before expiry: %v", err)
			}

			tt.expire(t, e, clk)

			if _, err := c.Refresh(ctx, tok.RefreshToken); !errors.Is(err, orgapi.ErrInvalidGrant) {
				t.Fatalf("Refresh after expiry: err = %v, want ErrInvalidGrant", err)
			}
			var apiErr *orgapi.APIError
			_, err := c.Refresh(ctx, tok.RefreshToken)
			if !errors.As(err, &apiErr) || apiErr.Description != "expired access/refresh token" {
				t.Fatalf("refresh error = %#v, want Salesforce's description", err)
			}
			if _, err := c.UserInfo(ctx, tok.AccessToken); !errors.Is(err, orgapi.ErrInvalidToken) {
				t.Fatalf("UserInfo after expiry: err = %v, want ErrInvalidToken", err)
			}
			if _, err := authorize(t, c, "admin@scratch.acme.example"); !errors.Is(err, orgapi.ErrAccessDenied) {
				t.Fatalf("authorize after expiry: err = %v, want ErrAccessDenied", err)
			}
			if w := e.World(); !w.Orgs[2].Expired {
				t.Fatalf("world does not show the org expired: %+v", w.Orgs[2])
			}
		})
	}
}

func TestDeactivatedUser(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	c := newClient(t, e, "cid", "secret")
	ctx := context.Background()
	tok := login(t, c, "bob@acme.example")

	resp, err := http.Post(e.URL()+"/_emulator/orgs/00D000000000001/users/bob@acme.example/deactivate", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("deactivate status = %d", resp.StatusCode)
	}

	if _, err := c.Refresh(ctx, tok.RefreshToken); !errors.Is(err, orgapi.ErrInvalidGrant) {
		t.Fatalf("Refresh: err = %v, want ErrInvalidGrant", err)
	}
	if _, err := c.UserInfo(ctx, tok.AccessToken); !errors.Is(err, orgapi.ErrInvalidToken) {
		t.Fatalf("UserInfo: err = %v, want ErrInvalidToken", err)
	}
	if _, err := authorize(t, c, "bob@acme.example"); !errors.Is(err, orgapi.ErrAccessDenied) {
		t.Fatalf("authorize: err = %v, want ErrAccessDenied", err)
	}
	// The seeded inactive user cannot log in either, and an unknown one neither.
	for _, u := range []string{"erin@acme.example", "nobody@acme.example"} {
		if _, err := authorize(t, c, u); !errors.Is(err, orgapi.ErrAccessDenied) {
			t.Fatalf("authorize %s: err = %v, want ErrAccessDenied", u, err)
		}
	}
}

func TestPermissions(t *testing.T) {
	ctx := context.Background()
	yes, no := true, false
	tests := []struct {
		name    string
		user    string
		change  *orgemu.Permissions // applied to Acme after the login; nil: refused at authorize
		want    error
		notWant error
	}{
		{"org without app permission", "peter@initech.example", nil, orgapi.ErrOrgNotPermitted, orgapi.ErrUserNotPermitted},
		{"user without permission", "dave@acme.example", nil, orgapi.ErrUserNotPermitted, orgapi.ErrOrgNotPermitted},
		{"org permission revoked", "alice@acme.example", &orgemu.Permissions{AppAllowed: &no}, orgapi.ErrOrgNotPermitted, orgapi.ErrUserNotPermitted},
		{"user left out of the allow list", "alice@acme.example", &orgemu.Permissions{AppAllowed: &yes, OnlyUsers: []string{"bob@acme.example"}}, orgapi.ErrUserNotPermitted, orgapi.ErrOrgNotPermitted},
		{"user permission turned off", "carol@acme.example", &orgemu.Permissions{Users: map[string]bool{"carol@acme.example": false}}, orgapi.ErrUserNotPermitted, orgapi.ErrOrgNotPermitted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := orgemu.StartTest(t, orgemu.Config{})
			c := newClient(t, e, "cid", "secret")
			if tt.change == nil {
				_, err := authorize(t, c, tt.user)
				if !errors.Is(err, tt.want) || errors.Is(err, tt.notWant) || errors.Is(err, orgapi.ErrInvalidGrant) {
					t.Fatalf("authorize: err = %v, want only %v", err, tt.want)
				}
				return
			}
			tok := login(t, c, tt.user)
			code, err := authorize(t, c, tt.user) // a code issued before the change
			if err != nil {
				t.Fatal(err)
			}
			body, _ := tt.change.MarshalJSON()
			req, _ := http.NewRequest(http.MethodPut, e.URL()+"/_emulator/orgs/00D000000000001/permissions", bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("permissions status = %d", resp.StatusCode)
			}
			for what, err := range map[string]error{
				"refresh":   func() error { _, err := c.Refresh(ctx, tok.RefreshToken); return err }(),
				"exchange":  func() error { _, err := c.Exchange(ctx, code); return err }(),
				"authorize": func() error { _, err := authorize(t, c, tt.user); return err }(),
			} {
				if !errors.Is(err, tt.want) || errors.Is(err, tt.notWant) {
					t.Errorf("%s: err = %v, want only %v", what, err, tt.want)
				}
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{ClientID: "the-id", ClientSecret: "the-secret"})
	ctx := context.Background()
	good := newClient(t, e, "the-id", "the-secret")
	tok := login(t, good, "alice@acme.example")

	tests := []struct {
		name   string
		id     string
		secret orgapi.Secret
	}{
		{"wrong secret", "the-id", "not-the-secret"},
		{"wrong id", "other-id", "the-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newClient(t, e, tt.id, tt.secret)
			if _, err := bad.Refresh(ctx, tok.RefreshToken); !errors.Is(err, orgapi.ErrInvalidClient) {
				t.Fatalf("Refresh: err = %v, want ErrInvalidClient", err)
			}
			code, err := authorize(t, good, "alice@acme.example")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bad.Exchange(ctx, code); !errors.Is(err, orgapi.ErrInvalidClient) || errors.Is(err, orgapi.ErrInvalidGrant) {
				t.Fatalf("Exchange: err = %v, want ErrInvalidClient", err)
			}
		})
	}

	t.Run("unknown client id at authorize", func(t *testing.T) {
		bad := newClient(t, e, "other-id", "the-secret")
		resp, err := http.Get(bad.AuthorizeURL("s", "alice@acme.example"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status = %d, want 400 (no redirect to an unverified client)", resp.StatusCode)
		}
	})
}

func TestSecretsAreRedacted(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	c := newClient(t, e, "cid", "client-secret-value")
	tok := login(t, c, "alice@acme.example")

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("connected", "token", tok, "access", tok.AccessToken, "secret", orgapi.Secret("client-secret-value"))
	fmt.Fprintf(&buf, "%v %s %+v %#v", tok.AccessToken, tok.RefreshToken, *tok, tok.RefreshToken)
	out := buf.String()
	for _, s := range []string{tok.AccessToken.Reveal(), tok.RefreshToken.Reveal(), "client-secret-value"} {
		if strings.Contains(out, s) {
			t.Fatalf("output leaks a secret: %s", out)
		}
	}
	if !strings.Contains(out, "[redacted]") || !strings.Contains(out, tok.OrgID()) {
		t.Fatalf("output = %s, want redacted secrets and the org id", out)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  orgapi.Config
		ok   bool
	}{
		{"complete", orgapi.Config{BaseURL: "https://login.example", ClientID: "a", ClientSecret: "b", RedirectURL: "https://x/cb"}, true},
		{"missing secret", orgapi.Config{BaseURL: "https://login.example", ClientID: "a", RedirectURL: "https://x/cb"}, false},
		{"relative base", orgapi.Config{BaseURL: "login.example", ClientID: "a", ClientSecret: "b", RedirectURL: "https://x/cb"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
