package ingress_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// plausibleSignature passes every check that can be made before the body is
// read (anyone can send a fresh timestamp), and fails the HMAC.
var plausibleSignature = "v0=" + strings.Repeat("ab", 32)

// startBody opens a connection and sends the headers of a POST to path that
// announces declared bytes of body, then only the bytes of sent: a slow or
// stalled sender. hdr overrides the signature headers ("" deletes one).
func startBody(t *testing.T, f *fixture, path string, declared int, sent []byte, hdr map[string]string) net.Conn {
	t.Helper()
	u, _ := url.Parse(f.srv.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := map[string]string{
		"X-Slack-Signature":         plausibleSignature,
		"X-Slack-Request-Timestamp": strconv.FormatInt(time.Now().Unix(), 10),
	}
	for k, v := range hdr {
		h[k] = v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, u.Host, declared)
	for k, v := range h {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	b.Write(sent)
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return c
}

// gauge reads the gauge called name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestIdleBodiesHoldLittleMemory: senders that announce 1 MiB and send a few
// bytes cost memory for what they sent, not for what they announced, and
// signed requests are served while they wait.
func TestIdleBodiesHoldLittleMemory(t *testing.T) {
	f := newFixture(t)
	const conns = 200
	const bound = 32 << 20
	before := heapInuse()
	idle := make([]net.Conn, conns)
	for i := range idle {
		idle[i] = startBody(t, f, "/slack/events", ingress.DefaultMaxBodyBytes, []byte(`{"type":"event_`), nil)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		return gauge(t, f.reg, "orgbridge_ingress_body_reads_in_progress") == conns
	}, "the ingress is not reading the %d bodies", conns)
	after := heapInuse()
	if after > before && after-before > bound {
		t.Fatalf("%d idle senders announcing 1 MiB grew the heap in use by %d MiB, want < %d MiB",
			conns, (after-before)>>20, bound>>20)
	}
	t.Logf("%d idle senders: heap in use %d → %d KiB, body bytes in flight %.0f", conns, before>>10, after>>10,
		gauge(t, f.reg, "orgbridge_ingress_body_bytes_in_flight"))

	if code, text := f.post(t, "/slack/events", "application/json", eventBody("EvIdle", "T1", "message"), nil); code != 200 {
		t.Fatalf("signed event while senders idle: %d %q", code, text)
	}
	for _, c := range idle {
		c.Close()
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		return gauge(t, f.reg, "orgbridge_ingress_body_reads_in_progress") == 0 &&
			gauge(t, f.reg, "orgbridge_ingress_body_bytes_in_flight") == 0
	}, "closed senders still hold body bytes")
}

// TestRefusedBeforeTheBody: what the headers alone condemn is answered at once,
// without waiting for a body that never comes, and the connection is closed.
func TestRefusedBeforeTheBody(t *testing.T) {
	f := newFixture(t)
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	tests := []struct {
		name     string
		declared int
		hdr      map[string]string
		wantCode int
	}{
		{"no signature", 1 << 20, map[string]string{"X-Slack-Signature": ""}, http.StatusUnauthorized},
		{"no timestamp", 1 << 20, map[string]string{"X-Slack-Request-Timestamp": ""}, http.StatusUnauthorized},
		{"stale timestamp", 1 << 20, map[string]string{"X-Slack-Request-Timestamp": stale}, http.StatusUnauthorized},
		{"not a v0 signature", 1 << 20, map[string]string{"X-Slack-Signature": "v1=" + strings.Repeat("ab", 32)}, http.StatusUnauthorized},
		{"declared over the cap", 2 << 20, nil, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startBody(t, f, "/slack/events", tt.declared, nil, tt.hdr)
			// A bound on a stuck test, not a wait: the answer comes at once or the body is being awaited.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer before the body was sent: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !resp.Close {
				t.Fatalf("got %d (close %v), want %d and the connection closed", resp.StatusCode, resp.Close, tt.wantCode)
			}
		})
	}
}

// TestBodyBudget: once the bytes in flight are spent, requests are answered at
// once, unread — events 503 with Retry-After so Slack retries, commands and
// interactions an ephemeral "try again" — and served again when bytes free up.
func TestBodyBudget(t *testing.T) {
	const budget = 16 << 10
	f := newFixtureWith(t, ingress.Config{SigningSecret: secret, PublishTimeout: time.Second,
		MaxBodyBytes: budget, MaxBodyBytesInFlight: budget})
	// One sender holds the whole budget: all but the last byte of a full-size body.
	hog := startBody(t, f, "/slack/events", budget, []byte(strings.Repeat(" ", budget-1)), nil)
	testenv.Eventually(t, 10*time.Second, func() bool {
		return gauge(t, f.reg, "orgbridge_ingress_body_bytes_in_flight") == budget
	}, "the slow sender does not hold the budget")

	cmd := url.Values{"command": {"/orgbridge"}, "team_id": {"T1"}, "user_id": {"U1"}}.Encode()
	interaction := url.Values{"payload": {`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"U1","team_id":"T1"}}`}}.Encode()
	tests := []struct {
		name, path, body string
		wantCode         int
		wantText         string
	}{
		{"event", "/slack/events", string(eventBody("EvBusy", "T1", "message")), http.StatusServiceUnavailable, "retry"},
		{"command", "/slack/commands", cmd, http.StatusOK, "try again"},
		{"interaction", "/slack/interactivity", interaction, http.StatusOK, "try again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, text, hdr := postHeaders(t, f, tt.path, []byte(tt.body))
			if code != tt.wantCode || !strings.Contains(text, tt.wantText) {
				t.Fatalf("got %d %q, want %d containing %q", code, text, tt.wantCode, tt.wantText)
			}
			if code == http.StatusServiceUnavailable && hdr.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != 0 {
		t.Fatalf("%d requests stored while the budget was spent", n)
	}
	if got := metricSum(t, f.reg, "orgbridge_ingress_busy_total"); got != float64(len(tests)) {
		t.Fatalf("busy counter = %v, want %d", got, len(tests))
	}

	hog.Close()
	testenv.Eventually(t, 10*time.Second, func() bool {
		return gauge(t, f.reg, "orgbridge_ingress_body_bytes_in_flight") == 0
	}, "the closed sender's bytes were not given back")
	for _, tt := range tests {
		if code, text, _ := postHeaders(t, f, tt.path, []byte(tt.body)); code != 200 || strings.Contains(text, "try again") {
			t.Fatalf("%s after the budget freed up: %d %q", tt.name, code, text)
		}
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != uint64(len(tests)) {
		t.Fatalf("stream holds %d messages, want %d", n, len(tests))
	}
}

// postHeaders is fixture.post that also returns the response headers.
func postHeaders(t *testing.T, f *fixture, path string, body []byte) (int, string, http.Header) {
	t.Helper()
	sig, ts := sign(body, time.Now(), secret)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Signature", sig)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String(), resp.Header
}
