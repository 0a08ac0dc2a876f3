package orgapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

func TestOrgName(t *testing.T) {
	tests := []struct {
		name     string
		username string
		before   func(e *orgemu.Emulator) // runs after login
		want     string
		wantErr  error
	}{
		{name: "Acme", username: "alice@acme.example", want: "Acme"},
		{name: "Globex", username: "hank@globex.example", want: "Globex"},
		{name: "expired org refuses the token", username: "admin@scratch.acme.example",
			before: func(e *orgemu.Emulator) { _ = e.ExpireOrg("00D000000000003") }, wantErr: orgapi.ErrInvalidToken},
		{name: "deactivated user's token refused", username: "bob@acme.example",
			before: func(e *orgemu.Emulator) { _ = e.DeactivateUser("00D000000000001", "bob@acme.example") }, wantErr: orgapi.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := orgemu.StartTest(t, orgemu.Config{})
			c := newClient(t, e, "app", "secret")
			tok := login(t, c, tt.username)
			if tt.before != nil {
				tt.before(e)
			}
			got, err := c.OrgName(context.Background(), tok)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("OrgName err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("OrgName = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestQueryResource: the emulator answers only SELECT Name FROM Organization,
// with Salesforce's shapes for the answer and its errors.
func TestQueryResource(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	tok := login(t, newClient(t, e, "app", "secret"), "alice@acme.example")
	tests := []struct {
		name, token, q string
		wantStatus     int
		wantCode       string // errorCode, or "" for a result
	}{
		{name: "org name", token: tok.AccessToken.Reveal(), q: "SELECT Name FROM Organization", wantStatus: 200},
		{name: "case and spaces do not matter", token: tok.AccessToken.Reveal(), q: "select  name from ORGANIZATION", wantStatus: 200},
		{name: "another object", token: tok.AccessToken.Reveal(), q: "SELECT Name FROM Account", wantStatus: 400, wantCode: "MALFORMED_QUERY"},
		{name: "another field", token: tok.AccessToken.Reveal(), q: "SELECT Id, Name FROM Organization", wantStatus: 400, wantCode: "MALFORMED_QUERY"},
		{name: "no query", token: tok.AccessToken.Reveal(), q: "", wantStatus: 400, wantCode: "MALFORMED_QUERY"},
		{name: "bad token", token: "00D000000000001!nope", q: "SELECT Name FROM Organization", wantStatus: 401, wantCode: "INVALID_SESSION_ID"},
		{name: "no token", q: "SELECT Name FROM Organization", wantStatus: 401, wantCode: "INVALID_SESSION_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tok.InstanceURL+"/services/data/v60.0/query?q="+url.QueryEscape(tt.q), nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantCode != "" {
				var errs []struct{ Message, ErrorCode string }
				if err := json.NewDecoder(resp.Body).Decode(&errs); err != nil || len(errs) != 1 || errs[0].ErrorCode != tt.wantCode || errs[0].Message == "" {
					t.Fatalf("error body = %+v, %v; want [{message, errorCode %s}]", errs, err, tt.wantCode)
				}
				return
			}
			var res struct {
				TotalSize int  `json:"totalSize"`
				Done      bool `json:"done"`
				Records   []struct {
					Attributes struct{ Type, URL string } `json:"attributes"`
					Name       string                     `json:"Name"`
				} `json:"records"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || res.TotalSize != 1 || !res.Done || len(res.Records) != 1 ||
				res.Records[0].Name != "Acme" || res.Records[0].Attributes.Type != "Organization" {
				t.Fatalf("result = %+v, %v", res, err)
			}
		})
	}
	// The client reads the REST error list into an *APIError.
	var ae *orgapi.APIError
	_, err := newClient(t, e, "app", "secret").OrgName(context.Background(), &orgapi.Token{AccessToken: "bad", InstanceURL: tok.InstanceURL})
	if !errors.As(err, &ae) || ae.Code != "INVALID_SESSION_ID" || !errors.Is(err, orgapi.ErrInvalidToken) {
		t.Fatalf("OrgName with a bad token: %v", err)
	}
}
