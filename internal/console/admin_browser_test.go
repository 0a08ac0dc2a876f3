package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orgbridge/orgbridge/internal/console"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// envOption adds to an env before its console is built (newEnv(t, opts…)).
type envOption func(e *env, cfg *console.Config)

// withAdminPages gives the console the workspaces' sources (bindings and
// installations) and mapping import, as the ingress does.
func withAdminPages(e *env, cfg *console.Config) {
	bs := binding.NewStore(e.redis.Client, e.keys)
	mw, err := mapping.New(mapping.Config{Store: e.mappings, Idempotency: store.NewIdempotency(e.redis.Client), Bindings: bs})
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.Bindings, cfg.Installations, cfg.MappingImport = bs, store.NewInstallations(e.redis.Client, e.keys), mw
}

// bind connects workspace ws to org as the binding worker does; a reason
// marks the binding expired.
func (e *env) bind(ws, org, by, reason string) {
	e.t.Helper()
	ctx := context.Background()
	lock, err := store.NewLocker(e.redis.Client).Obtain(ctx, binding.LockKey(ws), time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = lock.Release(ctx) }()
	bs := binding.NewStore(e.redis.Client, e.keys)
	if err := bs.Bind(ctx, &binding.Binding{Scope: ws, OrgID: org, OrgName: "Org " + org[12:], ConnectedByOrgUser: "005000000000001",
		ConnectedByUsername: by, ConnectedBySlack: "U0ALICE001", ConnectedAt: time.Now().UTC(), Valid: true}, lock); err != nil {
		e.t.Fatal(err)
	}
	if reason != "" {
		if _, err := bs.Invalidate(ctx, ws, org, reason); err != nil {
			e.t.Fatal(err)
		}
	}
}

// installApp records an install of the app in workspace ws.
func (e *env) installApp(ws string) {
	e.t.Helper()
	in := &store.Installation{AppID: "A0CONSOLE1", TeamID: ws, BotToken: "xoxb-test", Scopes: []string{"commands"}, InstalledAt: time.Now().UTC()}
	if err := store.NewInstallations(e.redis.Client, e.keys).Save(context.Background(), in); err != nil {
		e.t.Fatal(err)
	}
}

// addMappings maps n Slack users of ws to org users of org (user01@…).
func (e *env) addMappings(ws, org string, n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		if _, err := e.mappings.Connect(context.Background(), &mapping.Mapping{Workspace: ws, SlackUserID: fmt.Sprintf("U%s%03d", ws[1:7], i),
			OrgID: org, OrgUserID: fmt.Sprintf("005%s%05d", ws[3:10], i), Username: fmt.Sprintf("user%02d.%s@acme.example", i, strings.ToLower(ws)),
			Source: "import"}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// adminWorld: Acme is connected to two workspaces (one expired) and had
// mappings in a third, since uninstalled; Globex has its own.
func (e *env) adminWorld() {
	e.t.Helper()
	e.bind("T0CONSOLE1", acme, "alice@acme.example", "")
	e.bind("T0OTHER001", acme, "alice@acme.example", "the org refused its tokens (expired or no longer valid)")
	e.bind("T0GLOBEX01", globex, "hank@globex.example", "")
	for _, ws := range []string{"T0CONSOLE1", "T0OTHER001", "T0GLOBEX01"} {
		e.installApp(ws)
	}
	e.addMappings("T0CONSOLE1", acme, 55)
	e.addMappings("T0OTHER001", acme, 3)
	e.addMappings("T0GONE0001", acme, 2)
	e.addMappings("T0GLOBEX01", globex, 2)
}

func (e *env) countMappings(f mapping.Filter) int {
	e.t.Helper()
	n, err := e.mappings.Count(context.Background(), f)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestConsoleOrgAdminManagesWorkspacesAndMappings: Acme's admin sees the org's
// workspaces with their status, pages and filters its mappings, exports
// them, deletes a workspace's mappings after confirming, and imports a CSV
// whose row of another org is refused. Globex's data never shows.
func TestConsoleOrgAdminManagesWorkspacesAndMappings(t *testing.T) {
	e := newEnv(t, withAdminPages)
	e.adminWorld()
	alice := e.browser
	e.signInWithOrg(alice, "alice@acme.example")

	// Workspaces, with status
	e.run(alice, "workspaces",
		chromedp.Click(chromedp.CSS(`nav a[href$="/console/workspaces"]`)),
		chromedp.WaitVisible(chromedp.ID("workspaces")),
	)
	e.waitURL(alice, "/console/orgs/"+acme+"/workspaces")
	for _, tc := range []struct{ ws, want string }{
		{"T0CONSOLE1", "bound"},
		{"T0OTHER001", "org expired"},
		{"T0OTHER001", "the org refused its tokens"},
		{"T0GONE0001", "uninstalled"},
		{"T0CONSOLE1", "alice@acme.example"},
	} {
		contains(t, e.text(alice, "#ws-"+tc.ws), tc.want, "workspace "+tc.ws)
	}
	if all := e.text(alice, "main"); strings.Contains(all, "T0GLOBEX01") {
		t.Fatal("Acme's admin sees Globex's workspace")
	}

	// Mappings: 60 of Acme's, 50 a page
	e.run(alice, "mappings",
		chromedp.Click(chromedp.CSS(`nav a[href$="/console/mappings"]`)),
		chromedp.WaitVisible(chromedp.ID("mappings")),
	)
	contains(t, e.text(alice, "#mapping-count"), "60 mappings, showing 1–50", "the first page")
	e.run(alice, "next page", chromedp.Click(chromedp.ID("next-page")))
	e.waitURL(alice, "offset=50")
	contains(t, e.text(alice, "#mapping-count"), "showing 51–60", "the second page")
	if all := e.text(alice, "main"); strings.Contains(all, "T0GLOBEX01") {
		t.Fatal("Acme's admin sees Globex's mappings")
	}

	// filter by org user (a username), then by workspace
	e.run(alice, "filter by org user",
		chromedp.SendKeys(chromedp.ID("f-orguser"), "USER07.t0console1@acme.example"),
		chromedp.Click(chromedp.ID("apply-filter")),
	)
	e.waitURL(alice, "org_user=")
	contains(t, e.text(alice, "#mapping-count"), "1 mapping", "one org user")
	contains(t, e.text(alice, "#mappings"), "U0CONSO007", "one org user's mapping")
	e.run(alice, "filter by workspace",
		chromedp.Clear(chromedp.ID("f-orguser")),
		chromedp.SendKeys(chromedp.ID("f-team"), "T0OTHER001"),
		chromedp.Click(chromedp.ID("apply-filter")),
	)
	e.waitURL(alice, "team=T0OTHER001")
	contains(t, e.text(alice, "#mapping-count"), "3 mappings", "the workspace's mappings")

	// export the filtered mappings: the admin API's CSV
	body := value(e, alice, "export", chromedp.Evaluate[string](`fetch(document.getElementById("export-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 4 || !slices.Equal(recs[0], mapping.CSVHeader()) {
		t.Fatalf("exported CSV: %v %q", err, body)
	}
	for _, r := range recs[1:] {
		if r[0] != "T0OTHER001" || r[2] != acme {
			t.Fatalf("exported a row of another workspace or org: %v", r)
		}
	}

	// bulk delete the workspace's mappings, after confirming
	e.run(alice, "delete the workspace's mappings",
		chromedp.Click(chromedp.ID("bulk-delete")),
		chromedp.WaitVisible(chromedp.ID("confirm")),
	)
	contains(t, e.text(alice, "#delete-count"), "Delete 3 mappings", "the confirmation")
	contains(t, e.text(alice, "#confirm"), "in workspace T0OTHER001", "the confirmation")
	if n := e.countMappings(mapping.Filter{Workspace: "T0OTHER001"}); n != 3 {
		t.Fatalf("the confirmation page deleted something: %d left", n)
	}
	e.run(alice, "confirm the delete", chromedp.Click(chromedp.ID("confirm-delete")))
	e.waitURL(alice, "deleted=3")
	contains(t, e.text(alice, "#deleted"), "Deleted 3 mappings", "after the delete")
	for _, tc := range []struct {
		f    mapping.Filter
		want int
	}{
		{mapping.Filter{Workspace: "T0OTHER001"}, 0},
		{mapping.Filter{Workspace: "T0CONSOLE1"}, 55},
		{mapping.Filter{OrgID: globex}, 2},
	} {
		if n := e.countMappings(tc.f); n != tc.want {
			t.Errorf("after the bulk delete %+v has %d mappings, want %d", tc.f, n, tc.want)
		}
	}

	// import: the row of Acme is stored, Globex's row is refused
	acmeUser, globexUser := e.orgUserID("bob@acme.example"), "005000000000999"
	paste := strings.Join(mapping.CSVHeader(), ",") + "\n" +
		"T0CONSOLE1,U0IMPORT01," + acme + "," + acmeUser + ",bob@acme.example\n" +
		"T0GLOBEX01,U0IMPORT02," + globex + "," + globexUser + ",ivy@globex.example\n"
	e.run(alice, "import mappings",
		chromedp.Navigate(e.srv.URL+"/console/orgs/"+acme+"/mappings"),
		chromedp.Click(chromedp.ID("import-csv")),
		chromedp.WaitVisible(chromedp.ID("import-text")),
		chromedp.SetValue(chromedp.ID("import-text"), paste),
		chromedp.Click(chromedp.ID("import")),
		chromedp.WaitVisible(chromedp.ID("import-result")),
	)
	contains(t, e.text(alice, "#import-result"), "1 of 2 rows imported", "the import")
	contains(t, e.text(alice, "#import-problems"), "is not this org", "the refused row")
	if m, err := e.mappings.Get(context.Background(), "T0CONSOLE1", "U0IMPORT01"); err != nil || m.OrgUserID != acmeUser {
		t.Fatalf("the imported mapping: %+v %v", m, err)
	}
	if _, err := e.mappings.Get(context.Background(), "T0GLOBEX01", "U0IMPORT02"); err == nil {
		t.Fatal("Acme's admin imported a mapping into Globex")
	}
}
