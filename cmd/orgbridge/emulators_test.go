package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

const tinySeed = `{"workspaces": [{"id": "T0DEV", "name": "Dev Co"}],
  "users": [{"id": "U0ADA", "team_id": "T0DEV", "name": "ada", "email": "ada@dev.example", "is_admin": true}]}`

func writeTinySeed(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "world.json")
	if err := os.WriteFile(p, []byte(tinySeed), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// getJSON GETs url into out and returns the status.
func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// checkSeededSlack: the Slack emulator at addr runs the tiny seeded world.
func checkSeededSlack(t *testing.T, addr string) {
	t.Helper()
	var world struct{ Workspaces []struct{ ID string } }
	if getJSON(t, "http://"+addr+"/_emulator/world", &world); len(world.Workspaces) != 1 || world.Workspaces[0].ID != "T0DEV" {
		t.Errorf("Slack emulator world = %+v, want the seed file's T0DEV", world)
	}
}

// checkMailSink: mail sent to the sink at smtpAddr shows on the org
// emulator's /_emulator/mail.
func checkMailSink(t *testing.T, smtpAddr, orgAddr string) {
	t.Helper()
	msg := "From: orgbridge <noreply@orgbridge.invalid>\r\nTo: ada@dev.example\r\nSubject: You're invited\r\n\r\nWelcome.\r\n"
	if err := smtp.SendMail(smtpAddr, nil, "noreply@orgbridge.invalid", []string{"ada@dev.example"}, []byte(msg)); err != nil {
		t.Fatalf("sending to the SMTP sink: %v", err)
	}
	var mail struct {
		Messages []struct {
			To      []string `json:"to"`
			Subject string   `json:"subject"`
		} `json:"messages"`
	}
	if st := getJSON(t, "http://"+orgAddr+"/_emulator/mail", &mail); st != http.StatusOK || len(mail.Messages) != 1 ||
		mail.Messages[0].Subject != "You're invited" {
		t.Errorf("GET /_emulator/mail = %d %+v", st, mail)
	}
}

// TestDevSeedFileAndMailSink: dev runs the Slack emulator on the seed file
// and, without SMTP_HOST, an SMTP sink whose mail the org emulator serves.
func TestDevSeedFileAndMailSink(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantSink bool
	}{
		{name: "no mail server: the sink", env: map[string]string{}, wantSink: true},
		{name: "a mail server: no sink", env: map[string]string{"SMTP_HOST": "smtp.example.com", "SMTP_FROM": "orgbridge <noreply@example.com>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"ORGBRIDGE_DATA_DIR":            t.TempDir(),
				"ORGBRIDGE_HTTP_ADDR":           freeAddr(t),
				"ORGBRIDGE_NATS_ADDR":           freeAddr(t),
				"ORGBRIDGE_LOG_LEVEL":           "warn",
				"ORGBRIDGE_SLACK_EMULATOR_ADDR": freeAddr(t),
				"ORGBRIDGE_ORG_EMULATOR_ADDR":   freeAddr(t),
				"ORGBRIDGE_SMTP_EMULATOR_ADDR":  freeAddr(t),
				"ORGBRIDGE_SLACK_SEED_FILE":     writeTinySeed(t),
			}
			for k, v := range tc.env {
				env[k] = v
			}
			d := startDev(t, env)
			checkSeededSlack(t, env["ORGBRIDGE_SLACK_EMULATOR_ADDR"])
			out := d.inv.stdout.String()
			if strings.Contains(out, "SMTP sink") != tc.wantSink {
				t.Errorf("stdout mentions the SMTP sink: %v, want %v:\n%s", !tc.wantSink, tc.wantSink, out)
			}
			if tc.wantSink {
				checkMailSink(t, env["ORGBRIDGE_SMTP_EMULATOR_ADDR"], env["ORGBRIDGE_ORG_EMULATOR_ADDR"])
			} else if st := getJSON(t, "http://"+env["ORGBRIDGE_ORG_EMULATOR_ADDR"]+"/_emulator/mail", nil); st != http.StatusNotFound {
				t.Errorf("GET /_emulator/mail without a sink = %d, want 404", st)
			}
		})
	}
}

// TestEmulateSeedFileAndMailSink: emulate takes --slack-seed-file and
// --smtp-addr, and stops cleanly.
func TestEmulateSeedFileAndMailSink(t *testing.T) {
	slackAddr, orgAddr, smtpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := invoke(ctx, map[string]string{"ORGBRIDGE_LOG_LEVEL": "warn"}, "emulate", "--slack-addr", slackAddr, "--org-addr", orgAddr,
		"--smtp-addr", smtpAddr, "--slack-seed-file", writeTinySeed(t))
	testenv.Eventually(t, 10*time.Second, func() bool {
		select {
		case code := <-inv.code:
			t.Fatalf("orgbridge emulate exited with %d:\n%s%s", code, inv.stdout, inv.stderr)
		default:
		}
		resp, err := http.Get("http://" + orgAddr + "/_emulator/mail")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "emulate never served the mail API:\n%s", inv.stderr)
	checkSeededSlack(t, slackAddr)
	checkMailSink(t, smtpAddr, orgAddr)
	if out := inv.stdout.String(); !strings.Contains(out, "smtp://"+smtpAddr) {
		t.Errorf("stdout does not show the SMTP sink:\n%s", out)
	}
	cancel()
	select {
	case code := <-inv.code:
		if code != 0 {
			t.Errorf("emulate exited with %d:\n%s", code, inv.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("emulate did not stop")
	}
}
