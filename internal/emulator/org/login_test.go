package orgemu_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
)

// TestLoginPage: a person opening the authorize URL without login_hint gets a
// page listing the users; following a user's link logs in as that user.
func TestLoginPage(t *testing.T) {
	e := orgemu.StartTest(t, orgemu.Config{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := e.URL() + "/services/oauth2/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {"app"}, "state": {"s1"},
		"redirect_uri": {"https://orgbridge.example.com/org/oauth/callback"},
	}.Encode()
	resp, err := noRedirect.Get(authorize)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Log in to your org") {
		t.Fatalf("authorize without login_hint: %d %s", resp.StatusCode, body)
	}
	world := e.World()
	alice := world.Orgs[0].Users[0].Username
	link := regexp.MustCompile(`href="\?([^"]*login_hint=` + regexp.QuoteMeta(url.QueryEscape(alice)) + `[^"]*)"`).FindStringSubmatch(string(body))
	if link == nil {
		t.Fatalf("no login link for %s in:\n%s", alice, body)
	}
	resp, err = noRedirect.Get(e.URL() + "/services/oauth2/authorize?" + html.UnescapeString(link[1]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s1" ||
		!strings.HasPrefix(loc.String(), "https://orgbridge.example.com/org/oauth/callback") {
		t.Fatalf("login link: %d %s", resp.StatusCode, loc)
	}
}
