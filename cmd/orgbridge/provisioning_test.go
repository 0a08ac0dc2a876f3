package main

import (
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestProvisioningWalkthrough is the README's provisioning walkthrough on
// `orgbridge dev`: get a connect link from the CLI, connect as the org's and
// Slack's admin in a browser, sync with progress, then read the history and
// the report as a table and as CSV.
func TestProvisioningWalkthrough(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"ORGBRIDGE_DATA_DIR":            dir,
		"ORGBRIDGE_HTTP_ADDR":           freeAddr(t),
		"ORGBRIDGE_NATS_ADDR":           freeAddr(t),
		"ORGBRIDGE_LOG_LEVEL":           "warn",
		"ORGBRIDGE_SLACK_EMULATOR_ADDR": freeAddr(t),
		"ORGBRIDGE_ORG_EMULATOR_ADDR":   freeAddr(t),
		"ORGBRIDGE_SMTP_EMULATOR_ADDR":  freeAddr(t),
	}
	dev := startDev(t, env)
	if !strings.Contains(dev.inv.stdout.String(), "/console/") {
		t.Fatalf("dev prints no console URL:\n%s", dev.inv.stdout.String())
	}
	if resp, err := http.Get("http://" + env["ORGBRIDGE_HTTP_ADDR"] + "/console/login"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the console's sign-in page: %v %v", resp, err)
	}
	cliEnv := map[string]string{"ORGBRIDGE_HTTP_ADDR": env["ORGBRIDGE_HTTP_ADDR"]}
	token := "--token-file=" + filepath.Join(dir, "dev-admin-token")
	const org = "00D000000000001"

	code, out, errOut := invokeWait(t, cliEnv, "provisioning", "connect", "--org", org, token)
	link := regexp.MustCompile(`https?://\S+/provisioning/connect\?ticket=\S+`).FindString(out)
	if code != 0 || link == "" {
		t.Fatalf("connect: %d\n%s%s", code, out, errOut)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/services/oauth2/authorize") && req.URL.Query().Get("login_hint") == "" {
			q := req.URL.Query()
			q.Set("login_hint", "alice@acme.example") // the org admin picks herself on the login page
			req.URL.RawQuery = q.Encode()
		}
		return nil
	}}
	resp, err := browser.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "connected to Slack") {
		t.Fatalf("connect pages ended with %d:\n%s", resp.StatusCode, page)
	}

	code, out, errOut = invokeWait(t, cliEnv, "provisioning", "status", "--org", org, token)
	if code != 0 || !strings.Contains(out, "active") || !strings.Contains(out, "your sync is pending") {
		t.Fatalf("status: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = invokeWait(t, cliEnv, "provisioning", "sync", "--org", org, token)
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(errOut, "Slack users read") {
		t.Fatalf("sync: %d\n%s%s", code, out, errOut)
	}
	runID := regexp.MustCompile(`run (r-\S+) queued`).FindStringSubmatch(out)[1]
	code, out, _ = invokeWait(t, cliEnv, "provisioning", "runs", "--org", org, token)
	if code != 0 || !strings.Contains(out, runID) || !strings.Contains(out, "sync_now") {
		t.Fatalf("runs: %d\n%s", code, out)
	}
	code, out, _ = invokeWait(t, cliEnv, "provisioning", "report", runID, "--org", org, "--action", "create", token)
	if code != 0 || !strings.Contains(out, "create") || !strings.Contains(out, "succeeded") {
		t.Fatalf("report: %d\n%s", code, out)
	}
	code, out, _ = invokeWait(t, cliEnv, "provisioning", "report", runID, "--org", org, "--csv", token)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) < 2 || recs[0][1] != "action" {
		t.Fatalf("report --csv: %d %v\n%s", code, err, out)
	}
	// bad input is a usage error, named
	code, _, errOut = invokeWait(t, cliEnv, "provisioning", "config", "set", "--org", org, "--tz", "Mars/Base", token)
	if code != 2 || !strings.Contains(errOut, "time_zone") {
		t.Fatalf("config set with a bad zone: %d %s", code, errOut)
	}
	code, _, errOut = invokeWait(t, cliEnv, "provisioning", "disconnect", "--org", org, token)
	if code != 2 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("disconnect without --yes: %d %s", code, errOut)
	}
}
