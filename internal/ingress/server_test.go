package ingress_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

type fixture struct {
	nats *testenv.NATS
	js   jetstream.JetStream
	srv  *httptest.Server
	reg  *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, ingress.Config{SigningSecret: secret, PublishTimeout: time.Second})
}

// newFixtureWith is newFixture with the ingress configured by cfg.
func newFixtureWith(t *testing.T, cfg ingress.Config) *fixture {
	t.Helper()
	n := testenv.StartStreams(t)
	js, err := jetstream.New(n.Conn, jetstream.WithPublishAsyncTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := ingress.New(cfg, js, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &fixture{nats: n, js: js, srv: srv, reg: reg}
}

func sign(body []byte, ts time.Time, key string) (sig, stamp string) {
	stamp = strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(mac, "v0:%s:", stamp)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil)), stamp
}

func (f *fixture) post(t *testing.T, path, contentType string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	sig, ts := sign(body, time.Now(), secret)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Signature", sig)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) streamMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (f *fixture) lastMsg(t *testing.T, stream string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := f.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(context.Background())
	m, err := s.GetMsg(context.Background(), info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func eventBody(eventID, team, typ string) []byte {
	return []byte(fmt.Sprintf(`{"token":"x","team_id":%q,"api_app_id":"A1","event":{"type":%q,"user":"U1","ts":"1.2"},"type":"event_callback","event_id":%q,"event_time":1700000000}`, team, typ, eventID))
}

func TestSignatures(t *testing.T) {
	f := newFixture(t)
	body := eventBody("Ev1", "T1", "app_mention")
	goodSig, goodTS := sign(body, time.Now(), secret)
	wrongSig, _ := sign(body, time.Now(), "another-secret")
	staleSig, staleTS := sign(body, time.Now().Add(-6*time.Minute), secret)
	futureSig, futureTS := sign(body, time.Now().Add(6*time.Minute), secret)
	tests := []struct {
		name     string
		sig, ts  string
		wantCode int
		wantText string
	}{
		{"good", goodSig, goodTS, 200, ""},
		{"wrong secret", wrongSig, goodTS, 401, "invalid Slack signature"},
		{"tampered timestamp", goodSig, strconv.FormatInt(time.Now().Unix()+1, 10), 401, "invalid Slack signature"},
		{"missing signature", "", goodTS, 401, "missing X-Slack-Signature"},
		{"missing timestamp", goodSig, "", 401, "missing X-Slack-Signature"},
		{"not v0", "v1=" + goodSig[3:], goodTS, 401, "invalid Slack signature"},
		{"not hex", "v0=zz", goodTS, 401, "invalid Slack signature"},
		{"stale", staleSig, staleTS, 401, "more than 5 minutes"},
		{"future", futureSig, futureTS, 401, "more than 5 minutes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.streamMsgs(t, events.StreamSlack)
			code, text := f.post(t, "/slack/events", "application/json", body, map[string]string{
				"X-Slack-Signature": tt.sig, "X-Slack-Request-Timestamp": tt.ts,
			})
			if code != tt.wantCode || !strings.Contains(text, tt.wantText) {
				t.Fatalf("got %d %q, want %d containing %q", code, text, tt.wantCode, tt.wantText)
			}
			after := f.streamMsgs(t, events.StreamSlack)
			if tt.wantCode != 200 && after != before {
				t.Fatalf("rejected request was published: %d -> %d messages", before, after)
			}
		})
	}
	if got := f.streamMsgs(t, events.StreamSlack); got != 1 {
		t.Fatalf("stream holds %d messages, want exactly the one good event", got)
	}
}

func TestBodyCap(t *testing.T) {
	f := newFixture(t)
	big := []byte(`{"type":"event_callback","event_id":"Ev1","team_id":"T1","event":{"type":"message","text":"` +
		strings.Repeat("a", ingress.DefaultMaxBodyBytes) + `"}}`)
	code, text := f.post(t, "/slack/events", "application/json", big, nil)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(text, "larger than") {
		t.Fatalf("got %d %q, want 413", code, text)
	}
	// Chunked bodies have no Content-Length; the cap must hold for them too.
	sig, ts := sign(big, time.Now(), secret)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/slack/events", io.MultiReader(strings.NewReader(string(big))))
	req.ContentLength = -1
	req.Header.Set("X-Slack-Signature", sig)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize body: got %d, want 413", resp.StatusCode)
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != 0 {
		t.Fatalf("oversize bodies were published: %d messages", n)
	}
}

func TestURLVerification(t *testing.T) {
	f := newFixture(t)
	code, text := f.post(t, "/slack/events", "application/json",
		[]byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`), nil)
	var got struct{ Challenge string }
	if err := json.Unmarshal([]byte(text), &got); err != nil || code != 200 {
		t.Fatalf("got %d %q", code, text)
	}
	if got.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("challenge %q not echoed", got.Challenge)
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != 0 {
		t.Fatalf("url_verification was published: %d messages", n)
	}
}

func TestEventPublishedWithHeaders(t *testing.T) {
	f := newFixture(t)
	body := eventBody("Ev42", "T42", "app_mention")
	code, _ := f.post(t, "/slack/events", "application/json", body, nil)
	if code != 200 {
		t.Fatalf("got %d", code)
	}
	m := f.lastMsg(t, events.StreamSlack)
	if m.Subject != "slack.events.T42.app_mention" {
		t.Fatalf("subject %q", m.Subject)
	}
	if string(m.Data) != string(body) {
		t.Fatalf("body changed on the way: %q", m.Data)
	}
	want := map[string]string{
		events.HeaderMsgID: "Ev42", events.HeaderTeam: "T42", events.HeaderType: "app_mention",
		events.HeaderSchema: "1", events.HeaderContentType: "application/json",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, m.Header.Get(events.HeaderReceivedAt)); err != nil {
		t.Errorf("received-at header %q: %v", m.Header.Get(events.HeaderReceivedAt), err)
	}
	if m.Header.Get(events.HeaderRequestID) == "" {
		t.Error("no request id header")
	}
}

func TestRetriedEventStoredOnce(t *testing.T) {
	f := newFixture(t)
	body := eventBody("EvRetry", "T1", "message")
	for i, hdr := range []map[string]string{
		nil,
		{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
		{"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"},
	} {
		if code, text := f.post(t, "/slack/events", "application/json", body, hdr); code != 200 {
			t.Fatalf("attempt %d: %d %q", i, code, text)
		}
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != 1 {
		t.Fatalf("stream holds %d copies of one event, want 1", n)
	}
	if got := metricSum(t, f.reg, "orgbridge_ingress_duplicate_events_total"); got != 2 {
		t.Fatalf("duplicate counter = %v, want 2", got)
	}
}

func TestRetryHeadersKept(t *testing.T) {
	f := newFixture(t)
	// The first attempt never reached us; the retry is the first copy stored.
	f.post(t, "/slack/events", "application/json", eventBody("EvR", "T1", "message"),
		map[string]string{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
	m := f.lastMsg(t, events.StreamSlack)
	if m.Header.Get("X-Slack-Retry-Num") != "1" || m.Header.Get("X-Slack-Retry-Reason") != "http_error" {
		t.Fatalf("retry headers lost: %v", m.Header)
	}
}

// metricSum adds up every series of the counter called name in reg.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestUnknownEventTypePublishedAndCounted(t *testing.T) {
	f := newFixture(t)
	if code, _ := f.post(t, "/slack/events", "application/json", eventBody("EvU", "T1", "brand_new_event_type"), nil); code != 200 {
		t.Fatalf("unknown type refused: %d", code)
	}
	if m := f.lastMsg(t, events.StreamSlack); m.Subject != "slack.events.T1.brand_new_event_type" {
		t.Fatalf("subject %q", m.Subject)
	}
	if got := metricSum(t, f.reg, "orgbridge_ingress_unknown_event_types_total"); got != 1 {
		t.Fatalf("unknown-type counter = %v, want 1", got)
	}
	f.post(t, "/slack/events", "application/json", eventBody("EvK", "T1", "app_mention"), nil)
	if got := metricSum(t, f.reg, "orgbridge_ingress_unknown_event_types_total"); got != 1 {
		t.Fatalf("a known type was counted as unknown: %v", got)
	}
}

func TestSubjects(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body, want string
	}{
		{"enterprise without team", `{"type":"event_callback","event_id":"Ev1","enterprise_id":"E1","event":{"type":"user_change"}}`, "slack.events.E1.user_change"},
		{"uninstall", `{"type":"event_callback","event_id":"Ev2","team_id":"T9","event":{"type":"app_uninstalled"}}`, "slack.uninstall.T9"},
		{"tokens revoked", `{"type":"event_callback","event_id":"Ev3","team_id":"T9","event":{"type":"tokens_revoked","tokens":{"oauth":["U1"]}}}`, "slack.uninstall.T9"},
		{"rate limited", `{"type":"app_rate_limited","team_id":"T9","minute_rate_limited":1518467820,"api_app_id":"A1"}`, "slack.events.T9.app_rate_limited"},
		{"dots in type", `{"type":"event_callback","event_id":"Ev4","team_id":"T9","event":{"type":"a.b"}}`, "slack.events.T9.a_b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, text := f.post(t, "/slack/events", "application/json", []byte(tt.body), nil); code != 200 {
				t.Fatalf("%d %q", code, text)
			}
			if m := f.lastMsg(t, events.StreamSlack); m.Subject != tt.want {
				t.Fatalf("subject %q, want %q", m.Subject, tt.want)
			}
		})
	}
}

func TestMalformedRequests(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path, body, want string
	}{
		{"not json", "/slack/events", `{"type":`, "not a JSON"},
		{"no type", "/slack/events", `{"event_id":"Ev1"}`, "no \"type\""},
		{"no event id", "/slack/events", `{"type":"event_callback","team_id":"T1","event":{"type":"message"}}`, "no event_id"},
		{"no event type", "/slack/events", `{"type":"event_callback","event_id":"E","team_id":"T1","event":{}}`, "no event.type"},
		{"no tenant", "/slack/events", `{"type":"event_callback","event_id":"E","event":{"type":"message"}}`, "neither team_id"},
		{"command without command", "/slack/commands", "team_id=T1&user_id=U1", "no \"command\""},
		{"command without team", "/slack/commands", "command=%2Fob&user_id=U1", "neither team_id"},
		{"command without user", "/slack/commands", "command=%2Fob&team_id=T1", "no \"user_id\""},
		{"command bad form", "/slack/commands", "command=%zz", "not a form-encoded"},
		{"interaction without payload", "/slack/interactivity", "x=1", "\"payload\""},
		{"interaction bad json", "/slack/interactivity", "payload=%7B", "not JSON"},
		{"interaction without type", "/slack/interactivity", "payload=" + url.QueryEscape(`{"team":{"id":"T1"}}`), "no \"type\""},
		{"interaction without team", "/slack/interactivity", "payload=" + url.QueryEscape(`{"type":"block_actions"}`), "neither team.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, text := f.post(t, tt.path, "application/x-www-form-urlencoded", []byte(tt.body), nil)
			if code != http.StatusBadRequest || !strings.Contains(text, tt.want) {
				t.Fatalf("got %d %q, want 400 containing %q", code, text, tt.want)
			}
		})
	}
	if n := f.streamMsgs(t, events.StreamSlack); n != 0 {
		t.Fatalf("malformed requests were published: %d", n)
	}
}

func TestCommandsAndInteractions(t *testing.T) {
	f := newFixture(t)
	cmd := url.Values{"command": {"/orgbridge"}, "text": {"status"}, "team_id": {"T1"}, "user_id": {"U1"},
		"response_url": {"https://hooks.slack.com/commands/1/2/3"}, "trigger_id": {"13345224609.738474920.8088930838d88f008e0"}}
	if code, body := f.post(t, "/slack/commands", "application/x-www-form-urlencoded", []byte(cmd.Encode()), nil); code != 200 || body != "" {
		t.Fatalf("command: %d %q", code, body)
	}
	m := f.lastMsg(t, events.StreamSlack)
	if m.Subject != "slack.commands.T1" || m.Header.Get(events.HeaderType) != "/orgbridge" ||
		m.Header.Get(events.HeaderMsgID) != "trigger:13345224609.738474920.8088930838d88f008e0" || string(m.Data) != cmd.Encode() {
		t.Fatalf("command message: %s %v %q", m.Subject, m.Header, m.Data)
	}
	payload := `{"type":"block_actions","trigger_id":"t-1","team":{"id":"T1","domain":"x"},"enterprise":null,"user":{"id":"U1","team_id":"T1"},"actions":[{"action_id":"connect"}]}`
	form := url.Values{"payload": {payload}}.Encode()
	if code, _ := f.post(t, "/slack/interactivity", "application/x-www-form-urlencoded", []byte(form), nil); code != 200 {
		t.Fatalf("interaction: %d", code)
	}
	m = f.lastMsg(t, events.StreamSlack)
	if m.Subject != "slack.interactions.T1" || m.Header.Get(events.HeaderType) != "block_actions" {
		t.Fatalf("interaction message: %s %v", m.Subject, m.Header)
	}
}

func TestNATSDown(t *testing.T) {
	f := newFixture(t)
	f.nats.Server.Shutdown()
	f.nats.Server.WaitForShutdown()
	testenv.Eventually(t, 5*time.Second, func() bool { return f.nats.Conn.Status() != nats.CONNECTED }, "client still connected")

	code, text := f.post(t, "/slack/events", "application/json", eventBody("EvDown", "T1", "message"), nil)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("event with NATS down: got %d %q, want 503 so Slack retries", code, text)
	}
	cmd := url.Values{"command": {"/orgbridge"}, "team_id": {"T1"}, "user_id": {"U1"}}.Encode()
	for _, path := range []string{"/slack/commands", "/slack/interactivity"} {
		body := cmd
		if path == "/slack/interactivity" {
			body = url.Values{"payload": {`{"type":"block_actions","team":{"id":"T1"}}`}}.Encode()
		}
		code, text := f.post(t, path, "application/x-www-form-urlencoded", []byte(body), nil)
		var got struct{ ResponseType, Text string }
		_ = json.Unmarshal([]byte(strings.ReplaceAll(text, "response_type", "responsetype")), &got)
		if code != 200 || got.ResponseType != "ephemeral" || !strings.Contains(got.Text, "try again") {
			t.Fatalf("%s with NATS down: got %d %q, want 200 with an ephemeral try-again", path, code, text)
		}
	}
}

func TestReadyz(t *testing.T) {
	n := testenv.StartNATS(t)
	failing := fmt.Errorf("redis: connection refused")
	s, err := ingress.New(ingress.Config{SigningSecret: secret, Checks: map[string]func(context.Context) error{
		"nats":  func(context.Context) error { return nil },
		"redis": func(context.Context) error { return failing },
	}}, n.JS, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "connection refused") {
		t.Fatalf("readyz with redis down: %d %s", rec.Code, rec.Body)
	}
	failing = nil
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 200 {
		t.Fatalf("readyz with all up: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("healthz: %d", rec.Code)
	}
}
