package binding

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

// TestOrgName: the binding records the org's own name; when the org does not
// answer the query, it falls back to "<instance host> <org id>".
func TestOrgName(t *testing.T) {
	emu := orgemu.StartTest(t, orgemu.Config{})
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]`))
	}))
	t.Cleanup(broken.Close)
	client, err := orgapi.New(orgapi.Config{BaseURL: emu.URL(), ClientID: "orgbridge", ClientSecret: "s", RedirectURL: "https://orgbridge.test/cb"})
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{cfg: Config{Org: client}, log: slog.New(slog.DiscardHandler)}
	login := func(username string) *orgapi.Token {
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Get(client.AuthorizeURL("s", username))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		code, _, err := orgapi.ParseCallback(loc.Query())
		if err != nil {
			t.Fatal(err)
		}
		tok, err := client.Exchange(context.Background(), code)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	brokenHost, _ := url.Parse(broken.URL)
	tests := []struct {
		name string
		tok  func() *orgapi.Token
		want string
	}{
		{name: "the org's name", tok: func() *orgapi.Token { return login("hank@globex.example") }, want: "Globex"},
		{name: "query refused: instance host and org id", tok: func() *orgapi.Token {
			tok := login("alice@acme.example")
			tok.InstanceURL = broken.URL
			return tok
		}, want: brokenHost.Host + " 00D000000000001"},
		{name: "token refused: instance host and org id", tok: func() *orgapi.Token {
			tok := login("alice@acme.example")
			tok.AccessToken = "00D000000000001!revoked"
			return tok
		}, want: mustHost(t, emu.URL()) + " 00D000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.orgName(context.Background(), tt.tok()); got != tt.want {
				t.Fatalf("orgName = %q, want %q", got, tt.want)
			}
		})
	}
}

func mustHost(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}
