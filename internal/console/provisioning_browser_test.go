package console_test

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestOrgAdminProvisionsFromTheConsole clicks through the seed's pages as
// the org's admin: connect Slack, choose members by typing group names,
// map two groups to one team, save (pending), sync now, watch progress,
// read and filter the report, export it; then narrow the scope so the
// deactivations are held, and approve them.
func TestOrgAdminProvisionsFromTheConsole(t *testing.T) {
	e := newEnv(t)
	product := e.team("Product")
	alice := e.browser
	e.signInWithOrg(alice, "alice@acme.example")

	// Settings → Provisioning → Connect next to Slack → Connect to Slack
	e.run(alice, "provisioning page",
		chromedp.Click(chromedp.CSS(`a[href$="/console/provisioning"]`)),
		chromedp.WaitVisible(chromedp.ID("connect-slack")),
		chromedp.Click(chromedp.ID("connect-slack")),
		chromedp.WaitVisible(chromedp.ID("connect-to-slack")),
		chromedp.Click(chromedp.ID("connect-to-slack")),
		// the org asks who logs in (the connect flow's own org login)
		chromedp.WaitVisible(chromedp.CSS(`input[name="login_hint"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="login_hint"]`), "alice@acme.example"),
		chromedp.Submit(chromedp.CSS(`input[name="login_hint"]`)),
		// the emulated Slack approves as its admin and comes back
		chromedp.WaitVisible(`//h1[contains(., "connected to Slack")]`),
		chromedp.Click(chromedp.ID("back")),
		chromedp.WaitVisible(chromedp.ID("connection")),
	)
	contains(t, e.text(alice, "#pending"), "Your sync is pending", "a new integration")

	// Choose members: everyone in Engineering and Sales, typed and picked
	e.pickGroup(alice, "#group-search", "#sugg-scope", "eng", "S0ENG00001")
	e.pickGroup(alice, "#group-search", "#sugg-scope", "sal", "S0SALES001")
	e.run(alice, "scope by groups", chromedp.Click(chromedp.ID("scope-groups")))
	// Map your teams: Engineering and Sales both feed Product
	e.run(alice, "map teams", chromedp.Click(chromedp.ID("map_teams")))
	e.pickGroup(alice, "#team-search-0", "#sugg-team-0", "engin", "S0ENG00001")
	e.pickGroup(alice, "#team-search-0", "#sugg-team-0", "sales", "S0SALES001")
	e.run(alice, "save",
		chromedp.SetValue(chromedp.ID("team-0"), product),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("saved")),
	)
	contains(t, e.text(alice, "#pending"), "Your sync is pending", "after saving")

	// Start to Sync now → progress → report
	e.run(alice, "sync now",
		chromedp.Click(chromedp.ID("sync-now")),
		chromedp.WaitVisible(chromedp.ID("report")),
	)
	contains(t, e.text(alice, "#run-status"), "succeeded_with_failures", "the run's status")
	report := e.text(alice, "#report")
	for _, want := range []string{"frank@acme.example", "henry@acme.example", "add_to_team", "Product"} {
		contains(t, report, want, "the report")
	}
	if strings.Contains(report, "iris@acme.example") {
		t.Fatal("iris is only in Operations, which is not in scope")
	}
	// Add filter: failed only
	e.run(alice, "filter by failed",
		chromedp.Click(chromedp.ID("add-filter")),
		chromedp.Click(chromedp.ID("o-failed")),
		chromedp.Click(chromedp.ID("apply-filter")),
	)
	e.waitURL(alice, "outcome=failed")
	failed := e.text(alice, "#report")
	contains(t, failed, "Grace@Acme.example", "the failed rows")
	if strings.Contains(failed, "frank@acme.example") {
		t.Fatal("the failed filter shows a succeeded row")
	}
	// Export CSV (the link of the filtered report)
	href := value(e, alice, "export link", chromedp.AttributeValue(chromedp.ID("export-csv"), "href")).Value
	body := value(e, alice, "download", chromedp.Evaluate[string](`fetch(document.getElementById("export-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][2] != "failed" {
		t.Fatalf("exported CSV of the failed rows: %v %q", err, body)
	}
	contains(t, href, "outcome=failed", "the export link keeps the filter")

	// narrow the scope to Sales: 2 of 4 users would be deactivated (50 % > 20 %): held
	e.run(alice, "scope to Sales only",
		chromedp.Navigate(e.srv.URL+"/console/orgs/"+acme+"/provisioning"),
		chromedp.WaitVisible(chromedp.ID("config")),
		chromedp.Click(chromedp.CSS(`#chips-scope li:first-child button`)),
	)
	e.absent(alice, `#chips-scope input[value="S0ENG00001"]`)
	e.run(alice, "save the Sales scope",
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("sync-now")),
		chromedp.Click(chromedp.ID("sync-now")),
		chromedp.WaitVisible(chromedp.ID("held")),
	)
	contains(t, e.text(alice, "#held"), "2 deactivations are held", "held deactivations")
	e.run(alice, "approve", chromedp.Click(chromedp.ID("approve")))
	e.waitURL(alice, "decided=1")
	e.until(alice, `["succeeded", "succeeded_with_failures"].includes(document.getElementById("run-status")?.textContent)`, "the approved run ends")
	users := e.directory()
	frank, henry := users["frank@acme.example"], users["henry@acme.example"]
	if frank.IsActive() || !henry.IsActive() {
		t.Fatalf("after approval frank (Engineering) is deactivated, henry (Sales) is not: %+v %+v", frank, henry)
	}
}

// pickGroup types part of a group's name into a type-ahead and picks the suggestion.
func (e *env) pickGroup(ctx context.Context, input, list, typed, group string) {
	e.t.Helper()
	chips := strings.Replace(list, "#sugg-", "#chips-", 1)
	e.run(ctx, "pick "+group,
		chromedp.SendKeys(chromedp.CSS(input), typed),
	)
	e.settled(ctx, list+` button[data-group="`+group+`"]`)
	e.run(ctx, "click "+group, chromedp.Click(chromedp.CSS(list+` button[data-group="`+group+`"]`)))
	e.present(ctx, chips+` input[value="`+group+`"]`)
	e.settled(ctx, input) // the search box is swapped for an empty one

}

// team creates a directory team and returns its id.
func (e *env) team(name string) string {
	e.t.Helper()
	g, err := e.scim().CreateGroup(context.Background(), &orgapi.Group{DisplayName: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return g.ID
}

func (e *env) scim() *orgapi.SCIM {
	e.t.Helper()
	oc, err := orgapi.New(orgapi.Config{BaseURL: e.org.URL(), ClientID: "t", ClientSecret: "t", RedirectURL: "http://127.0.0.1:1/cb"})
	if err != nil {
		e.t.Fatal(err)
	}
	loc := testenv.Redirect(e.t, oc.AuthorizeURL("s", "alice@acme.example"))
	code, _, err := orgapi.ParseCallback(loc.Query())
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := oc.Exchange(context.Background(), code)
	if err != nil {
		e.t.Fatal(err)
	}
	return orgapi.NewSCIM(strings.TrimRight(tok.InstanceURL, "/")+"/services/scim/v2", tok.AccessToken, nil)
}

func (e *env) directory() map[string]orgapi.User {
	out := map[string]orgapi.User{}
	for u, err := range e.scim().AllUsers(context.Background(), "", 0) {
		if err != nil {
			e.t.Fatal(err)
		}
		out[u.UserName] = u
	}
	return out
}
