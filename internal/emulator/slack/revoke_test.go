package slackemu

import (
	"net/url"
	"testing"
)

func TestAuthRevoke(t *testing.T) {
	tests := []struct {
		name        string
		args        url.Values
		wantRevoked bool
		wantAfter   string // auth.test's error afterwards; "" means the token still works
	}{
		{name: "revokes the calling token", args: url.Values{}, wantRevoked: true, wantAfter: "token_revoked"},
		{name: "test=1 only checks", args: url.Values{"test": {"1"}}, wantRevoked: false},
		{name: "test=true only checks", args: url.Values{"test": {"true"}}, wantRevoked: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := StartTest(t, smallWorld())
			tok := mint(t, e, TokenRequest{}).Token
			other := mint(t, e, TokenRequest{}).Token // same install, another token
			status, body := callAPI(t, e, "auth.revoke", tok, tt.args)
			if status != 200 || body["ok"] != true || body["revoked"] != tt.wantRevoked {
				t.Fatalf("auth.revoke = %d %v, want ok and revoked=%v", status, body, tt.wantRevoked)
			}
			_, after := callAPI(t, e, "auth.test", tok, nil)
			if got, _ := after["error"].(string); got != tt.wantAfter {
				t.Fatalf("auth.test after revoke: %v, want error %q", after, tt.wantAfter)
			}
			if _, o := callAPI(t, e, "auth.test", other, nil); o["ok"] != true {
				t.Fatalf("another token of the install stopped working: %v", o)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		e := StartTest(t, smallWorld())
		for _, c := range []struct{ tok, want string }{{"", "not_authed"}, {"xoxb-never-issued", "invalid_auth"}} {
			if _, body := callAPI(t, e, "auth.revoke", c.tok, nil); body["error"] != c.want {
				t.Errorf("auth.revoke with %q = %v, want %s", c.tok, body, c.want)
			}
		}
	})
}
