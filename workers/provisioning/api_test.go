package provisioning_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// browser follows a connect flow as a person's browser would, choosing the
// org user and the Slack user where the emulators would ask.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// open follows redirects from u; at the org's login it logs in as orgUser
// and at Slack's consent as slackUser. It returns the final page.
func (b *browser) open(u, orgUser, slackUser string) (int, string) {
	b.t.Helper()
	for range 10 {
		resp, err := b.c.Get(u)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			return resp.StatusCode, string(body)
		}
		next, _ := url.Parse(resp.Header.Get("Location"))
		q := next.Query()
		switch {
		case strings.HasSuffix(next.Path, "/services/oauth2/authorize"):
			q.Set("login_hint", orgUser)
		case strings.HasSuffix(next.Path, "/oauth/v2/authorize"):
			q.Set("user", slackUser)
			q.Set("team", team)
		}
		next.RawQuery = q.Encode()
		u = next.String()
	}
	b.t.Fatal("too many redirects")
	return 0, ""
}

// api calls the admin API.
func (e *env) api(method, path, body string) (int, map[string]any, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ingress.URL+"/admin/api/provisioning/"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

// TestConnectPages: the connect link logs the admin into the org, then into
// Slack, and creates the integration; a non-admin on either side gets a
// page naming which side refused; a second connect names the active one.
func TestConnectPages(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.serve(w)

	link := func() string {
		status, m, raw := e.api("POST", acme+"/connect", `{}`)
		if status != http.StatusOK || m["url"] == nil {
			t.Fatalf("connect link: %d %s", status, raw)
		}
		return m["url"].(string)
	}
	// while an admin is logging in, the integration shows as connecting
	noFollow(t, link())
	if status, m, raw := e.api("GET", acme, ""); status != http.StatusOK || m["status"] != "connecting" {
		t.Fatalf("during a connect flow: %d %s", status, raw)
	}
	cases := []struct {
		name, orgUser, slackUser string
		status                   int
		says                     string
	}{
		{"org user is not an org admin", "bob@acme.example", slackRoot, http.StatusForbidden, "not an org administrator"},
		{"Slack user is not a Slack admin", "alice@acme.example", "U0MEMB0001", http.StatusForbidden, "not a Slack admin"},
		{"both admins", "alice@acme.example", slackRoot, http.StatusOK, "connected to Slack"},
		{"a second connect", "alice@acme.example", slackRoot, http.StatusConflict, "already has an active"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, page := newBrowser(t).open(link(), tc.orgUser, tc.slackUser)
			if status != tc.status || !strings.Contains(page, tc.says) {
				t.Fatalf("page %d, want %d saying %q:\n%s", status, tc.status, tc.says, page)
			}
		})
	}
	// a callback from another browser than the one that opened the link is refused
	other := newBrowser(t)
	resp, err := other.c.Get(link())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	orgLogin, _ := url.Parse(resp.Header.Get("Location"))
	q := orgLogin.Query()
	q.Set("login_hint", "alice@acme.example")
	orgLogin.RawQuery = q.Encode()
	if status, page := newBrowser(t).open(orgLogin.String(), "alice@acme.example", slackRoot); status != http.StatusForbidden || !strings.Contains(page, "started elsewhere") {
		t.Fatalf("a flow finished in another browser: %d %s", status, page)
	}
	// a connect link works once
	u := link()
	newBrowser(t).open(u, "alice@acme.example", slackRoot)
	if status, page := newBrowser(t).open(u, "alice@acme.example", slackRoot); status != http.StatusBadRequest || !strings.Contains(page, "expired") {
		t.Fatalf("a used link: %d %s", status, page)
	}
	status, m, _ := e.api("GET", acme, "")
	if status != http.StatusOK || m["status"] != "active" || m["pending"] != true {
		t.Fatalf("integration after connecting: %d %v", status, m)
	}
	if strings.Contains(strings.ToLower(mustJSON(m)), "xox") {
		t.Fatal("the admin API shows a Slack token")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestAdminAPI drives configuration, group search, scope count, sync now,
// history, the report (refused while running, filtered, CSV) and the
// error answers of the admin API.
func TestAdminAPI(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	release := make(chan struct{})
	var hold bool
	provisioning.SetAfterPage(w, func(ctx context.Context, r *provisioning.Run) error {
		if hold && r.Pages == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	})
	e.serve(w)
	e.start(w)
	e.connect(w)

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"bad org id", "GET", "not-an-org", "", http.StatusBadRequest},
		{"unknown org", "GET", "00D000000000009", "", http.StatusNotFound},
		{"bad settings", "PUT", acme + "/config", `{"scope":"groups","groups":["S0NOPE0001"]}`, http.StatusBadRequest},
		{"unknown field", "PUT", acme + "/config", `{"scope":"everyone","colour":"red"}`, http.StatusBadRequest},
		{"bad run id", "GET", acme + "/runs/r!x", "", http.StatusBadRequest},
		{"no such run", "GET", acme + "/runs/r-nope", "", http.StatusNotFound},
		{"bad outcome filter", "GET", acme + "/runs/r-nope/report?outcome=maybe", "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _, raw := e.api(tc.method, tc.path, tc.body); status != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, status, raw, tc.status)
			}
		})
	}
	req, _ := http.NewRequest("GET", e.ingress.URL+"/admin/api/provisioning/"+acme, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the admin token: %v %v", resp.StatusCode, err)
	}

	status, m, raw := e.api("GET", acme+"/groups?q=ENG", "")
	if groups, _ := m["groups"].([]any); status != http.StatusOK || len(groups) != 1 || !strings.Contains(raw, "S0ENG00001") {
		t.Fatalf("group search: %d %s", status, raw)
	}
	status, m, raw = e.api("POST", acme+"/scope-count", `{"groups":["S0ENG00001","S0SALES001"]}`)
	if status != http.StatusOK || m["in_scope"] != float64(4) {
		t.Fatalf("scope count of Engineering + Sales: %d %s, want 4 in scope", status, raw)
	}
	status, m, raw = e.api("PUT", acme+"/config", `{"scope":"everyone","schedule_time":"06:00","time_zone":"America/New_York","deactivation_limit":100,"deactivation_percent":30}`)
	if status != http.StatusOK || m["pending"] != true {
		t.Fatalf("save config: %d %s", status, raw)
	}

	hold = true
	status, m, raw = e.api("POST", acme+"/sync", "")
	if status != http.StatusAccepted {
		t.Fatalf("sync now: %d %s", status, raw)
	}
	runID := m["run"].(map[string]any)["id"].(string)
	e.wait(w, runID, func(r *provisioning.Run) bool { return r.Status == events.RunRunning && r.Pages == 1 })
	if status, m, _ := e.api("GET", acme+"/runs/"+runID+"/report", ""); status != http.StatusConflict || m["error"] != "run_not_finished" {
		t.Fatalf("report of a running run: %d %v", status, m)
	}
	if status, m, _ := e.api("GET", acme+"/runs/"+runID, ""); status != http.StatusOK || m["report_available"] != false {
		t.Fatalf("a running run shows progress without a report: %d %v", status, m)
	}
	if status, m, _ := e.api("POST", acme+"/sync", ""); status != http.StatusOK || !strings.Contains(mustJSON(m), runID) {
		t.Fatalf("sync now while running answers with the running run: %d %v", status, m)
	}
	close(release)
	e.wait(w, runID, func(r *provisioning.Run) bool { return r.Status.Final() })

	status, m, raw = e.api("GET", acme+"/runs/"+runID+"/report?action=create&outcome=succeeded", "")
	if status != http.StatusOK || m["total"] != float64(5) {
		t.Fatalf("filtered report: %d %s", status, raw)
	}
	req, _ = http.NewRequest("GET", e.ingress.URL+"/admin/api/provisioning/"+acme+"/runs/"+runID+"/report?format=csv", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(recs) < 8 {
		t.Fatalf("CSV export: %v, %s, %d records", err, resp.Header.Get("Content-Type"), len(recs))
	}
	status, m, _ = e.api("GET", acme+"/runs", "")
	if runs, _ := m["runs"].([]any); status != http.StatusOK || len(runs) != 1 {
		t.Fatalf("history: %d %v", status, m)
	}
	if status, _, _ := e.api("POST", acme+"/runs/"+runID+"/approve", ""); status != http.StatusConflict {
		t.Fatalf("approving a run that holds nothing: %d", status)
	}
	if status, m, _ := e.api("POST", acme+"/disconnect", ""); status != http.StatusOK || m["status"] != "disconnected" {
		t.Fatalf("disconnect: %d %v", status, m)
	}
	if status, _, _ := e.api("POST", acme+"/sync", ""); status != http.StatusConflict {
		t.Fatalf("sync after disconnect: %d", status)
	}
}

// TestCSVIsSafeFromFormulas: cells that start like a spreadsheet formula are
// exported as text.
func TestCSVIsSafeFromFormulas(t *testing.T) {
	var b strings.Builder
	err := provisioning.WriteCSV(&b, []provisioning.Row{{Action: "create", Outcome: "failed", Name: "=HYPERLINK(\"http://x\")", Email: "+1@x", Details: "@SUM(A1)"}})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	for _, cell := range recs[1] {
		if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
			t.Fatalf("cell %q would run as a formula", cell)
		}
	}
}

// TestLostTriggerIsSentAgain: a run recorded while its trigger was not
// stored (NATS down) is not stuck: the next Sync now sends it again.
func TestLostTriggerIsSentAgain(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.connect(w)
	ctx := context.Background()
	// a run recorded as current whose trigger never reached the stream
	in, _ := w.Store().Integration(ctx, acme)
	run := &provisioning.Run{ID: provisioning.NewRunID(), OrgID: acme, IntegrationID: in.ID, Trigger: events.TriggerSyncNow,
		Status: events.RunPending, SettingsVersion: in.SettingsVersion, Created: time.Now(), Counts: map[string]int{}}
	if _, err := w.Store().CreateRun(ctx, run, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Store().Update(ctx, acme, time.Now, func(in *provisioning.Integration) error {
		in.CurrentRunID = run.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.start(w)
	again, err := w.StartRun(ctx, acme, events.TriggerSyncNow, "test", false)
	if !errors.Is(err, provisioning.ErrRunInProgress) || again.ID != run.ID {
		t.Fatalf("sync now with a pending run: %v, %+v", err, again)
	}
	if done := e.wait(w, run.ID, func(r *provisioning.Run) bool { return r.Status.Final() }); done.Counts["create:succeeded"] != 5 {
		t.Fatalf("the re-sent run: %+v", done)
	}
}

// TestReportPages: a report reads a page at a time, with and without a
// filter, and the pages are the report's rows in order.
func TestReportPages(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	run := e.sync(w, false)
	ctx := context.Background()
	all := e.report(w, run.ID, provisioning.RowFilter{})
	for _, tc := range []struct {
		name          string
		f             provisioning.RowFilter
		offset, limit int
	}{
		{"first page", provisioning.RowFilter{}, 0, 3},
		{"middle", provisioning.RowFilter{}, 2, 3},
		{"past the end", provisioning.RowFilter{}, len(all) - 1, 5},
		{"filtered", provisioning.RowFilter{Actions: []string{provisioning.ActCreate}}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.f.Apply(all)
			_, rows, total, err := w.ReportPage(ctx, acme, run.ID, tc.f, tc.offset, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			end := min(tc.offset+tc.limit, len(want))
			if total != len(want) || len(rows) != end-tc.offset || rows[0].SlackID != want[tc.offset].SlackID || rows[len(rows)-1].Action != want[end-1].Action {
				t.Fatalf("page %d+%d: %d rows of %d, want %d of %d", tc.offset, tc.limit, len(rows), total, end-tc.offset, len(want))
			}
		})
	}
}
