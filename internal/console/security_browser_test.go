package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/workers/mapping"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// TestConsoleOrgUserDeletesAMapping: bob, an org user, sees the Slack users
// mapped to his account and deletes one; he cannot reach the admin pages.
func TestConsoleOrgUserDeletesAMapping(t *testing.T) {
	e := newEnv(t)
	bobID := e.orgUserID("bob@acme.example")
	for _, ws := range []string{"T0CONSOLE1", "T0OTHER001"} {
		if _, err := e.mappings.Connect(context.Background(), &mapping.Mapping{Workspace: ws, SlackUserID: "U0BOB00001", OrgID: acme,
			OrgUserID: bobID, Username: "bob@acme.example", Source: "import", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	bob := e.browser
	e.signInWithOrg(bob, "bob@acme.example")
	e.run(bob, "my mappings",
		chromedp.Click(chromedp.CSS(`a[href$="/console/mappings/mine"]`)),
		chromedp.WaitVisible(chromedp.ID("my-mappings")),
	)
	list := e.text(bob, "#my-mappings")
	contains(t, list, "T0CONSOLE1", "bob's mappings")
	contains(t, list, "T0OTHER001", "bob's mappings")
	e.run(bob, "delete one", chromedp.Click(chromedp.CSS(`button[aria-label*="in T0OTHER001"]`)))
	e.waitURL(bob, "deleted=")
	if list := e.text(bob, "main"); strings.Contains(list, "T0OTHER001\tU0BOB") || !strings.Contains(list, "T0CONSOLE1") {
		t.Fatalf("after deleting the mapping in T0OTHER001: %s", list)
	}
	if m, _ := e.mappings.Get(context.Background(), "T0OTHER001", "U0BOB00001"); m != nil {
		t.Fatal("the mapping is still stored")
	}
	// an org user is not an org admin
	for _, path := range []string{"/console/provisioning", "/console/orgs/" + acme + "/provisioning"} {
		if code := e.status(bob, "GET", path); code != http.StatusForbidden {
			t.Errorf("org user GET %s: %d, want 403", path, code)
		}
	}
}

// TestConsoleTenantIsolation: Globex's admin is refused every page and
// action of Acme's provisioning; without a session pages send to sign-in
// (401 for htmx and forms).
func TestConsoleTenantIsolation(t *testing.T) {
	e := newEnv(t)
	// Acme has an integration and a run
	e.connectAcme()
	run, err := e.prov.StartRun(context.Background(), acme, events.TriggerSyncNow, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	hank := e.browser
	e.signInWithOrg(hank, "hank@globex.example")
	base := "/console/orgs/" + acme + "/provisioning"
	for _, tc := range []struct{ method, path string }{
		{"GET", base}, {"GET", base + "/runs"}, {"GET", base + "/runs/" + run.ID}, {"GET", base + "/runs/" + run.ID + "/report.csv"},
		{"GET", base + "/groups?q=eng"}, {"GET", base + "/slack"}, {"POST", base + "/sync"}, {"POST", base + "/config"},
		{"POST", base + "/disconnect"}, {"POST", base + "/runs/" + run.ID + "/approve"},
	} {
		if code := e.status(hank, tc.method, tc.path); code != http.StatusForbidden {
			t.Errorf("Globex admin %s %s: %d, want 403", tc.method, tc.path, code)
		}
	}
	if in, _ := e.prov.Store().Integration(context.Background(), acme); in.Status != provisioning.StatusActive {
		t.Fatal("another tenant's request changed Acme's integration")
	}
	// his own org's page works
	if code := e.status(hank, "GET", "/console/orgs/"+globex+"/provisioning"); code != http.StatusOK {
		t.Fatalf("Globex admin on Globex's page: %d", code)
	}
	// no session at all
	anon := e.newPerson()
	e.run(anon, "open a page without a session", chromedp.Navigate(e.srv.URL+base))
	e.waitURL(anon, "/console/login?next=")
	if code := e.status(anon, "POST", base+"/sync"); code != http.StatusUnauthorized {
		t.Fatalf("POST without a session: %d, want 401", code)
	}
}

// TestConsoleRefusesCrossSitePosts: a page on another site that posts a
// form to the console (with the admin's session in the browser) is refused
// and changes nothing.
func TestConsoleRefusesCrossSitePosts(t *testing.T) {
	e := newEnv(t)
	e.connectAcme()
	alice := e.browser
	e.signInWithOrg(alice, "alice@acme.example")
	target := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1) + "/console/orgs/" + acme + "/provisioning/disconnect"
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"><input name="confirm" value="yes"></form><button id="go" onclick="document.getElementById('f').submit()">win a prize</button>`, target)
	}))
	defer evil.Close()
	// the admin is signed in on localhost too (the same console under another name)
	e.run(alice, "sign in on localhost", chromedp.Navigate(strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)+"/console/login"))
	e.signInAt(alice, strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1), "alice@acme.example")
	e.run(alice, "the other site's form", chromedp.Navigate(evil.URL), chromedp.Click(chromedp.ID("go")))
	e.until(alice, `document.body && document.body.innerText.includes("Refused")`, "the console refuses the cross-site post")
	if in, _ := e.prov.Store().Integration(context.Background(), acme); in.Status != provisioning.StatusActive {
		t.Fatal("a cross-site post disconnected the integration")
	}
}
