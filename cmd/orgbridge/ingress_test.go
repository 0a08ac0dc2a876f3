package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

const testAdminToken = "test-admin-token-0123456789abcdef"

// ingressEnv is the environment of an `orgbridge ingress` against n and r.
func ingressEnv(t *testing.T, natsURL, redisURL string, extra map[string]string) map[string]string {
	env := map[string]string{
		"NATS_URL": natsURL, "REDIS_URL": redisURL, "ORGBRIDGE_HTTP_ADDR": freeAddr(t),
		"SLACK_SIGNING_SECRET": "ingress-test-secret", "ORGBRIDGE_ENCRYPTION_KEYS": store.GenerateKeySpec("k1"),
		"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "slack-secret", "ORG_CLIENT_ID": "org", "ORG_CLIENT_SECRET": "org-secret",
		"ORGBRIDGE_ADMIN_TOKEN": testAdminToken, "ORGBRIDGE_LOG_LEVEL": "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// startIngress runs `orgbridge ingress` in-process until its /readyz answers 200.
func startIngress(t *testing.T, env map[string]string) (inv *invocation, cancel context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	inv = invoke(ctx, env, "ingress")
	t.Cleanup(func() {
		cancel()
		select {
		case <-inv.code:
		case <-time.After(30 * time.Second):
			t.Error("the ingress did not stop within 30s")
		}
	})
	testenv.Eventually(t, 20*time.Second, func() bool {
		select {
		case code := <-inv.code:
			inv.code <- code
			t.Fatalf("orgbridge ingress exited with %d:\n%s", code, inv.stderr)
		default:
		}
		code, _ := httpGet(http.DefaultClient, "http://"+env["ORGBRIDGE_HTTP_ADDR"]+"/readyz", "")
		return code == http.StatusOK
	}, "orgbridge ingress never became ready:\n%s", inv.stderr)
	return inv, cancel
}

func httpGet(c *http.Client, url, token string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signBody signs body the way Slack does.
func signBody(secret, body string) (sig, ts string) {
	ts = strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil)), ts
}

// signedEvent is a signed Events API request for the ingress at addr.
func signedEvent(addr, secret, eventID string) *http.Request {
	body := fmt.Sprintf(`{"type":"event_callback","team_id":"T1","event":{"type":"app_mention"},"event_id":%q}`, eventID)
	sig, ts := signBody(secret, body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/events", strings.NewReader(body))
	req.Header.Set("X-Slack-Signature", sig)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	return req
}

// SIGTERM (ctx cancelled) starts one shutdown deadline: /readyz fails at
// once, requests on keep-alive connections are still answered during the
// drain period, and the process is gone by ORGBRIDGE_SHUTDOWN_TIMEOUT even
// when a client holds a request open past it.
func TestIngressShutdown(t *testing.T) {
	n := testenv.StartStreams(t)
	r := testenv.StartRedis(t)
	const timeout, drainFor = 3 * time.Second, 2 * time.Second
	tests := []struct {
		name     string
		admin    bool // separate admin listener
		stuck    bool // a client holds a request open past the deadline
		wantCode int
	}{
		{name: "one listener", wantCode: 0},
		{name: "admin listener", admin: true, wantCode: 0},
		{name: "a request held open past the deadline", stuck: true, wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]string{"ORGBRIDGE_SHUTDOWN_TIMEOUT": timeout.String(), "ORGBRIDGE_SHUTDOWN_DRAIN": drainFor.String()}
			if tt.admin {
				extra["ORGBRIDGE_ADMIN_ADDR"] = freeAddr(t)
			}
			env := ingressEnv(t, n.URL, r.URL(), extra)
			addr, secret := env["ORGBRIDGE_HTTP_ADDR"], env["SLACK_SIGNING_SECRET"]
			inv, cancel := startIngress(t, env)

			var dials atomic.Int32
			tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				dials.Add(1)
				return (&net.Dialer{}).DialContext(ctx, network, a)
			}}
			defer tr.CloseIdleConnections()
			keepAlive := &http.Client{Transport: tr}
			post := func(eventID string) *http.Response {
				t.Helper()
				resp, err := keepAlive.Do(signedEvent(addr, secret, eventID))
				if err != nil {
					t.Fatalf("event %s: %v", eventID, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			if resp := post("Ev-before"); resp.StatusCode != http.StatusOK || resp.Close {
				t.Fatalf("before the signal: %d, close %v", resp.StatusCode, resp.Close)
			}
			if tt.stuck {
				// Headers and half the body: the request stays in progress until
				// the server's 5 s read timeout, past the 3 s deadline.
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				req := signedEvent(addr, secret, "Ev-stuck")
				fmt.Fprintf(conn, "POST /slack/events HTTP/1.1\r\nHost: %s\r\nContent-Length: 400\r\nX-Slack-Signature: %s\r\nX-Slack-Request-Timestamp: %s\r\n\r\n{\"type\":",
					addr, req.Header.Get("X-Slack-Signature"), req.Header.Get("X-Slack-Request-Timestamp"))
			}

			cancel()
			signalled := time.Now()
			testenv.Eventually(t, time.Second, func() bool {
				code, _ := httpGet(&http.Client{}, "http://"+addr+"/readyz", "")
				return code == http.StatusServiceUnavailable
			}, "/readyz did not fail after the signal")
			// The keep-alive connection made before the signal is still served,
			// and told to close; the next request gets a new one, also served.
			if resp := post("Ev-draining-1"); resp.StatusCode != http.StatusOK || !resp.Close || dials.Load() != 1 {
				t.Fatalf("on the kept-alive connection while draining: %d, close %v, %d dials", resp.StatusCode, resp.Close, dials.Load())
			}
			if resp := post("Ev-draining-2"); resp.StatusCode != http.StatusOK || dials.Load() != 2 {
				t.Fatalf("on a new connection while draining: %d, %d dials", resp.StatusCode, dials.Load())
			}
			if tt.admin {
				if code, body := httpGet(&http.Client{}, "http://"+env["ORGBRIDGE_ADMIN_ADDR"]+"/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
					t.Fatalf("admin /readyz while draining: %d %q", code, body)
				}
			}
			select {
			case code := <-inv.code:
				inv.code <- code
				if took := time.Since(signalled); code != tt.wantCode || took < drainFor {
					t.Fatalf("exit %d after %s, want %d after the %s drain period:\n%s", code, took, tt.wantCode, drainFor, inv.stderr)
				}
				if tt.stuck && !strings.Contains(inv.stderr.String(), "cut off") {
					t.Fatalf("the cut-off request is not reported:\n%s", inv.stderr)
				}
			case <-time.After(timeout + time.Second):
				t.Fatalf("the ingress still ran %s after the signal (ORGBRIDGE_SHUTDOWN_TIMEOUT %s):\n%s", timeout+time.Second, timeout, inv.stderr)
			}
		})
	}
}

// With ORGBRIDGE_ADMIN_ADDR the public listener serves Slack and browsers
// only, with health that names no failure; the admin API, /metrics and the
// detailed /readyz are on the admin listener, whose token guard limits
// failed attempts.
func TestIngressAdminListener(t *testing.T) {
	n := testenv.StartStreams(t)
	r := testenv.StartRedis(t)
	env := ingressEnv(t, n.URL, r.URL(), map[string]string{"ORGBRIDGE_ADMIN_ADDR": freeAddr(t)})
	startIngress(t, env)
	public, admin := "http://"+env["ORGBRIDGE_HTTP_ADDR"], "http://"+env["ORGBRIDGE_ADMIN_ADDR"]
	tests := []struct {
		name, url, token string
		wantCode         int
		wantBody         string
	}{
		{"public readyz", public + "/readyz", "", 200, "ok"},
		{"public healthz", public + "/healthz", "", 200, "ok"},
		{"public has no metrics", public + "/metrics", "", 404, ""},
		{"public has no admin API", public + "/admin/api/installations", testAdminToken, 404, ""},
		{"public serves the install redirect", public + "/slack/install", "", http.StatusFound, ""},
		{"admin readyz names the checks", admin + "/readyz", "", 200, `"redis":"ok"`},
		{"admin metrics", admin + "/metrics", "", 200, "orgbridge_ingress_requests_total"},
		{"admin API", admin + "/admin/api/installations", testAdminToken, 200, ""},
		{"admin API without the token", admin + "/admin/api/installations", "", 401, "unauthorized"},
		{"admin has no Slack routes", admin + "/slack/install", "", 404, ""},
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := httpGet(noRedirect, tt.url, tt.token)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("GET %s: %d %q, want %d with %q", tt.url, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	t.Run("failed admin logins are limited", func(t *testing.T) {
		var code int
		for range 20 {
			if code, _ = httpGet(http.DefaultClient, admin+"/admin/api/mappings", "wrong-token"); code == http.StatusTooManyRequests {
				break
			}
		}
		if code != http.StatusTooManyRequests {
			t.Fatalf("20 wrong tokens: last answer %d, want 429", code)
		}
		if code, _ := httpGet(http.DefaultClient, admin+"/admin/api/disconnects", testAdminToken); code != http.StatusTooManyRequests {
			t.Fatalf("right token from the same client on another admin route: %d, want 429 until the window ends", code)
		}
	})
}
