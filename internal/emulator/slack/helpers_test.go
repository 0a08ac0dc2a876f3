package slackemu

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func clientFor(e *Emulator, token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(e.APIURL()))
}

func mint(t *testing.T, e *Emulator, req TokenRequest) MintedToken {
	t.Helper()
	m, err := e.MintToken(req)
	if err != nil {
		t.Fatalf("MintToken: %v", err)
	}
	return m
}

// callAPI calls a Web API method with a form body and the token in the
// Authorization header, as slack-go's GET/JSON paths do, and returns the
// HTTP status and decoded JSON.
func callAPI(t *testing.T, e *Emulator, method, token string, args url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.APIURL()+method, strings.NewReader(args.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// control sends a JSON request to the control API and decodes the answer into out.
func control(t *testing.T, e *Emulator, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, e.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decoding answer: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// slackErrCode is the Slack error code slack-go returned, or "".
func slackErrCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

func smallWorld() Config {
	return Config{Seed: 42, Workspaces: 1, Enterprises: 1, GridWorkspaces: 2, Users: 20, Groups: 3, ExternalTeams: 5}
}
