package orgapi

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"milliseconds win", http.Header{"X-Retry-After-Ms": {"250"}, "Retry-After": {"1"}}, 250 * time.Millisecond},
		{"seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{"http date", http.Header{"Retry-After": {now.Add(5 * time.Second).Format(http.TimeFormat)}}, 5 * time.Second},
		{"date in the past", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{"missing", http.Header{}, time.Second},
		{"garbage", http.Header{"Retry-After": {"soon"}}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Fatalf("retryAfter = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAPIErrorMatching(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		is        []error
		isNot     []error
		retryable bool
	}{
		{"invalid grant", &APIError{Status: 400, Code: CodeInvalidGrant}, []error{ErrInvalidGrant}, []error{ErrInvalidClient, ErrOrgNotPermitted}, false},
		{"org blocked", &APIError{Status: 400, Code: CodeOrgNotPermitted}, []error{ErrOrgNotPermitted}, []error{ErrUserNotPermitted, ErrInvalidGrant}, false},
		{"user not approved", &APIError{Code: CodeUserNotPermitted}, []error{ErrUserNotPermitted}, []error{ErrOrgNotPermitted}, false},
		{"client id", &APIError{Status: 400, Code: CodeInvalidClientID}, []error{ErrInvalidClient}, []error{ErrInvalidGrant}, false},
		{"bad oauth token", &APIError{Status: 403, Code: "Bad_OAuth_Token"}, []error{ErrInvalidToken}, []error{ErrNotFound}, false},
		{"server error", &APIError{Status: 503}, nil, []error{ErrInvalidToken, ErrRateLimited}, true},
		{"rate limited", &RateLimitedError{Retry: time.Second, Err: &APIError{Status: 429}}, []error{ErrRateLimited}, []error{ErrConflict}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.is {
				if !errors.Is(tt.err, s) {
					t.Errorf("%v is not %v", tt.err, s)
				}
			}
			for _, s := range tt.isNot {
				if errors.Is(tt.err, s) {
					t.Errorf("%v is %v", tt.err, s)
				}
			}
			var r interface{ Retryable() bool }
			if !errors.As(tt.err, &r) || r.Retryable() != tt.retryable {
				t.Errorf("Retryable() = %v, want %v", r != nil && r.Retryable(), tt.retryable)
			}
			if tt.err.Error() == "" {
				t.Errorf("empty message")
			}
		})
	}
}
