package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/orgbridge/orgbridge/internal/ops"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// client is a person's HTTP client with its own cookies, signed in as
// username ("" for nobody, "operator" with the admin token).
func (e *env) client(username string) *http.Client {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	switch username {
	case "":
	case "operator":
		e.post(c, "/console/login/operator", url.Values{"token": {operatorToken}})
	default:
		// the emulated org logs in login_hint at once and redirects back
		e.post(c, "/console/login/org", url.Values{"login_hint": {username}})
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func (e *env) post(c *http.Client, path string, form url.Values) {
	e.t.Helper()
	resp, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Sign out") {
		e.t.Fatalf("signing in with %s: %d\n%s", path, resp.StatusCode, body)
	}
}

// TestConsolePagesAnswerWhoMaySee: every workspace, mapping and operator
// page answers a person without a session (sign-in for a page, 401 for an
// action), an org user (403), another org's admin (403), the org's admin
// and an operator as their role allows.
func TestConsolePagesAnswerWhoMaySee(t *testing.T) {
	ow := &operatorWorld{}
	e := newEnv(t, withAdminPages, ow.option)
	e.adminWorld()
	dl := e.deadLetter(`{"text":"access"}`)
	people := map[string]*http.Client{
		"nobody": e.client(""), "user": e.client("bob@acme.example"), "other admin": e.client("hank@globex.example"),
		"admin": e.client("alice@acme.example"), "operator": e.client("operator"),
	}
	org := "/console/orgs/" + acme
	op := "/console/operator/"
	dlID := strconv.FormatUint(dl, 10)
	// What a person gets: a page (200), sent to sign in (303 to the login
	// page), sent to their own org's page (303 there), refused (403), asked
	// to sign in (401 for an action), or no such thing (404).
	const (
		page      = "200"
		toLogin   = "login"
		toOwnOrg  = "own org"
		forbidden = "403"
		unauth    = "401"
		notFound  = "404"
	)
	tests := []struct {
		method, path string
		want         map[string]string // by person; absent people are not asked (their request would change something)
	}{
		{"GET", "/console/workspaces", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": toOwnOrg, "admin": toOwnOrg, "operator": page}},
		{"GET", org + "/workspaces", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": forbidden, "admin": page, "operator": page}},
		{"GET", "/console/mappings", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": toOwnOrg, "admin": toOwnOrg, "operator": page}},
		{"GET", org + "/mappings", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": forbidden, "admin": page, "operator": page}},
		{"GET", org + "/mappings/export.csv", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": forbidden, "admin": page, "operator": page}},
		{"GET", org + "/mappings/delete?team=T0CONSOLE1", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": forbidden, "admin": page, "operator": page}},
		{"POST", org + "/mappings/delete?team=T0CONSOLE1&confirm=yes&count=55", map[string]string{"nobody": unauth, "user": forbidden, "other admin": forbidden}},
		{"POST", org + "/mappings/T0CONSOLE1.U0CONSO001.x/delete", map[string]string{"nobody": unauth, "user": forbidden, "other admin": forbidden, "admin": notFound}},
		{"GET", org + "/mappings/import", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": forbidden, "admin": page, "operator": page}},
		{"POST", org + "/mappings/import", map[string]string{"nobody": unauth, "user": forbidden, "other admin": forbidden}},
		{"GET", op + "disconnects", map[string]string{"nobody": toLogin, "user": forbidden, "other admin": forbidden, "admin": forbidden, "operator": page}},
		{"GET", op + "disconnects/new", map[string]string{"nobody": toLogin, "user": forbidden, "admin": forbidden, "operator": page}},
		{"POST", op + "disconnects/new", map[string]string{"nobody": unauth, "user": forbidden, "admin": forbidden}},
		{"GET", op + "disconnects/audit", map[string]string{"nobody": toLogin, "admin": forbidden, "operator": page}},
		{"GET", op + "disconnects/audit.csv", map[string]string{"nobody": toLogin, "admin": forbidden, "operator": page}},
		{"GET", op + "disconnects/policies", map[string]string{"nobody": toLogin, "admin": forbidden, "operator": page}},
		{"POST", op + "disconnects/policies", map[string]string{"nobody": unauth, "admin": forbidden}},
		{"POST", op + "disconnects/policies/run", map[string]string{"nobody": unauth, "admin": forbidden, "operator": notFound}},
		{"GET", op + "disconnects/dr-none", map[string]string{"nobody": toLogin, "admin": forbidden, "operator": notFound}},
		{"GET", op + "dlq", map[string]string{"nobody": toLogin, "user": forbidden, "admin": forbidden, "operator": page}},
		{"GET", op + "dlq/" + dlID, map[string]string{"nobody": toLogin, "admin": forbidden, "operator": page}},
		{"GET", op + "dlq/999999", map[string]string{"operator": notFound}},
		{"GET", op + "dlq/purge", map[string]string{"nobody": toLogin, "admin": forbidden, "operator": page}},
		{"POST", op + "dlq/purge?confirm=yes", map[string]string{"nobody": unauth, "admin": forbidden}},
		{"POST", op + "dlq/redrive", map[string]string{"nobody": unauth, "admin": forbidden}},
		{"POST", op + "dlq/" + dlID + "/redrive", map[string]string{"nobody": unauth, "admin": forbidden}},
		{"GET", op + "streams", map[string]string{"nobody": toLogin, "user": forbidden, "admin": forbidden, "operator": page}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			for who, want := range tt.want {
				req, _ := http.NewRequest(tt.method, e.srv.URL+tt.path, nil)
				resp, err := people[who].Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got, loc := strconv.Itoa(resp.StatusCode), resp.Header.Get("Location")
				if resp.StatusCode == http.StatusSeeOther {
					switch {
					case strings.HasPrefix(loc, "/console/login?next="):
						got = toLogin
					case who == "admin" && strings.HasPrefix(loc, "/console/orgs/"+acme+"/"),
						who == "other admin" && strings.HasPrefix(loc, "/console/orgs/"+globex+"/"):
						got = toOwnOrg
					}
				}
				if got != want {
					t.Errorf("%s: %s (%s), want %s\n%.300s", who, got, loc, want, body)
				}
				if got == page && who != "operator" && strings.Contains(string(body), "T0GLOBEX01") {
					t.Errorf("%s sees Globex's workspace", who)
				}
			}
		})
	}
	// the refused requests changed nothing
	if n := e.countMappings(mapping.Filter{OrgID: acme}); n != 60 {
		t.Errorf("Acme has %d mappings, want 60", n)
	}
	if list, err := ops.ListDeadLetters(t.Context(), e.nats.JS, ops.DLQFilter{}); err != nil || len(list) != 1 {
		t.Errorf("%d dead letters, want the one: %v", len(list), err)
	}
}
