package orgapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Calls return an [*APIError] (or a [*RateLimitedError]) that
// matches them with errors.Is; never compare error strings.
var (
	// ErrInvalidGrant: the code or refresh token is no longer good — the org
	// expired, the user was deactivated, the code was already used or expired.
	// The user has to connect again.
	ErrInvalidGrant = errors.New("orgapi: grant no longer valid (org expired, user inactive, or code/token used or expired)")
	// ErrOrgNotPermitted: the org's admin has not allowed the app.
	ErrOrgNotPermitted = errors.New("orgapi: the org does not permit this app")
	// ErrUserNotPermitted: the org allows the app but not for this user.
	ErrUserNotPermitted = errors.New("orgapi: the user is not permitted to use this app")
	// ErrInvalidClient: the client id or secret is wrong: a configuration error.
	ErrInvalidClient = errors.New("orgapi: invalid client credentials")
	// ErrAccessDenied: the login was refused at authorize (unknown or inactive
	// user, expired org, or the user declined).
	ErrAccessDenied = errors.New("orgapi: access denied at authorization")
	// ErrInvalidToken: the access token (or SCIM token) was refused: expired,
	// revoked, its user deactivated or its org expired.
	ErrInvalidToken = errors.New("orgapi: access token invalid or expired")
	// ErrNotFound: the SCIM resource does not exist.
	ErrNotFound = errors.New("orgapi: resource not found")
	// ErrConflict: a SCIM uniqueness conflict (userName, externalId, displayName).
	ErrConflict = errors.New("orgapi: resource already exists")
	// ErrPreconditionFailed: the resource changed since the version sent in If-Match.
	ErrPreconditionFailed = errors.New("orgapi: resource version changed")
	// ErrInvalidFilter: the SCIM server refused the filter.
	ErrInvalidFilter = errors.New("orgapi: invalid SCIM filter")
	// ErrRateLimited: the server answered 429; see [RateLimitedError].
	ErrRateLimited = errors.New("orgapi: rate limited")
	// ErrBadSignature: the token response's signature does not match the
	// client secret: the response was not made for this client.
	ErrBadSignature = errors.New("orgapi: token response signature mismatch")
)

// OAuth error codes the org returns (Salesforce's).
const (
	CodeInvalidGrant     = "invalid_grant"
	CodeInvalidClient    = "invalid_client"
	CodeInvalidClientID  = "invalid_client_id"
	CodeAccessDenied     = "access_denied"
	CodeOrgNotPermitted  = "OAUTH_APP_BLOCKED"
	CodeUserNotPermitted = "OAUTH_APP_ACCESS_DENIED"
)

// APIError is an error answer from the org: an OAuth error (Code is the
// "error" field, Description "error_description"), a SCIM error (Code is
// scimType, Description detail) or a userinfo refusal (Code is the body, e.g.
// Bad_OAuth_Token). Status is the HTTP status, or 0 for an error that came back
// on the authorize redirect.
type APIError struct {
	Status      int
	Code        string
	Description string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("orgapi: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(" ")
	}
	if e.Code != "" {
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		if e.Code != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Description)
	}
	return b.String()
}

// Is matches the sentinel the code or status stands for.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalidGrant:
		return e.Code == CodeInvalidGrant
	case ErrOrgNotPermitted:
		return e.Code == CodeOrgNotPermitted
	case ErrUserNotPermitted:
		return e.Code == CodeUserNotPermitted
	case ErrInvalidClient:
		return e.Code == CodeInvalidClient || e.Code == CodeInvalidClientID
	case ErrAccessDenied:
		return e.Code == CodeAccessDenied
	case ErrInvalidToken:
		return e.Status == http.StatusUnauthorized || (e.Status == http.StatusForbidden && strings.Contains(e.Code, "OAuth_Token"))
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict || e.Code == "uniqueness"
	case ErrPreconditionFailed:
		return e.Status == http.StatusPreconditionFailed
	case ErrInvalidFilter:
		return e.Code == "invalidFilter"
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}

// Retryable reports whether the same call may succeed later: 429 and 5xx.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// RateLimitedError is a 429 answer. Wait RetryAfter before the next write.
type RateLimitedError struct {
	Retry time.Duration
	Err   *APIError
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("orgapi: rate limited, retry after %s", e.Retry)
}

// Unwrap exposes the underlying [*APIError].
func (e *RateLimitedError) Unwrap() error { return e.Err }

// Is matches [ErrRateLimited].
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// RetryAfter is how long the server asked to wait.
func (e *RateLimitedError) RetryAfter() time.Duration { return e.Retry }

// Retryable is always true: the call may be repeated after [RateLimitedError.RetryAfter].
func (e *RateLimitedError) Retryable() bool { return true }

// retryAfter reads X-Retry-After-Ms (the emulator's precise value) or Retry-After
// (seconds or an HTTP date); 1 s when neither parses.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseInt(h.Get("X-Retry-After-Ms"), 10, 64); err == nil && ms >= 0 {
		return time.Duration(ms) * time.Millisecond
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return time.Second
}
