package slackapi_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/orgbridge/orgbridge/internal/slackapi"
)

func TestResponseURLPolicy(t *testing.T) {
	const emulatorAPI = "http://127.0.0.1:8081/api/"
	tests := []struct {
		name   string
		apiURL string // "" is Slack's own API
		url    string
		ok     bool
	}{
		{"slack command", "", "https://hooks.slack.com/commands/T0001/1234/abcd", true},
		{"slack action", "", "https://hooks.slack.com/actions/T0001/1234/abcd", true},
		{"default port, upper case", "", "HTTPS://HOOKS.Slack.COM:443/app/T1/2/3", true},
		{"plain http to slack", "", "http://hooks.slack.com/commands/T0001/1234/abcd", false},
		{"other port on slack", "", "https://hooks.slack.com:8443/commands/1", false},
		{"other slack host", "", "https://slack.com/api/chat.postMessage", false},
		{"lookalike suffix", "", "https://hooks.slack.com.evil.example/commands/1", false},
		{"lookalike prefix", "", "https://evilhooks.slack.com/commands/1", false},
		{"trailing dot", "", "https://hooks.slack.com./commands/1", false},
		{"user info", "", "https://hooks.slack.com@10.0.0.1/commands/1", false},
		{"user info on slack", "", "https://user:pw@hooks.slack.com/commands/1", false},
		{"loopback", "", "http://127.0.0.1:8081/_emulator/response/x", false},
		{"metadata address", "", "http://169.254.169.254/latest/meta-data/", false},
		{"ipv6 loopback", "", "https://[::1]/x", false},
		{"relative", "", "/commands/1", false},
		{"scheme-relative", "", "//hooks.slack.com/commands/1", false},
		{"other scheme", "", "file:///etc/passwd", false},
		{"opaque", "", "https:hooks.slack.com/commands/1", false},
		{"not a URL", "", "https://hooks.slack.com/%zz", false},
		{"empty", "", "", false},
		{"emulator in dev", emulatorAPI, "http://127.0.0.1:8081/_emulator/response/x", true},
		{"slack beside the emulator", emulatorAPI, "https://hooks.slack.com/commands/1", true},
		{"emulator, other port", emulatorAPI, "http://127.0.0.1:8082/_emulator/response/x", false},
		{"emulator, https", emulatorAPI, "https://127.0.0.1:8081/_emulator/response/x", false},
		{"emulator, other host", emulatorAPI, "http://localhost:8081/_emulator/response/x", false},
		{"govslack", "https://slack-gov.com/api/", "https://hooks.slack-gov.com/commands/1", true},
		{"govslack is not slack", "https://slack-gov.com/api/", "https://hooks.slack.com/commands/1", false},
		{"slack api subdomain", "https://api.slack.com/api/", "https://hooks.slack.com/commands/1", true},
		{"slack api subdomain, not itself", "https://api.slack.com/api/", "https://api.slack.com/commands/1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := slackapi.ResponseURLPolicyFor(tt.apiURL)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(tt.url)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				if !errors.Is(err, slackapi.ErrResponseURLRefused) {
					t.Fatalf("allowed (err %v)", err)
				}
				if strings.Contains(err.Error(), "/commands/") || strings.Contains(err.Error(), "_emulator") {
					t.Fatalf("the refusal shows the URL's path: %v", err)
				}
			}
		})
	}
}

func TestResponseURLPolicyFor(t *testing.T) {
	tests := []struct {
		name, apiURL string
		want         []string
		wantErr      bool
	}{
		{"default", "", []string{"https://hooks.slack.com"}, false},
		{"slack", "https://slack.com/api/", []string{"https://hooks.slack.com"}, false},
		{"emulator", "http://127.0.0.1:8081/api/", []string{"https://hooks.slack.com", "http://127.0.0.1:8081"}, false},
		{"not http", "ftp://slack.example/api/", nil, true},
		{"no host", "https:///api/", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := slackapi.ResponseURLPolicyFor(tt.apiURL)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if strings.Join(p.Origins, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("origins %q, want %q", p.Origins, tt.want)
			}
		})
	}
}
