package ingress_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// FuzzRequestPath sends correctly signed bodies of any shape to every Slack route.
// Whatever the bytes, the ingress answers 200, 400 or 413 — never a 5xx while
// NATS is up, never a panic — a 4xx always says why, a 200 never hides a
// message that could not be stored, and the NATS connection is never closed.
func FuzzRequestPath(f *testing.F) {
	seeds := []struct {
		route uint8
		body  string
	}{
		{0, `{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"app_mention","user":"U123ABC456","text":"<@U0LAN0Z89> is it everything a river should be?","ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522000016,"authorizations":[{"enterprise_id":"E123ABC456","team_id":"T123ABC456","user_id":"U123ABC456","is_bot":false,"is_enterprise_install":false}],"event_context":"EC123ABC456"}`},
		{0, `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`},
		{0, `{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"app_uninstalled"},"type":"event_callback","event_id":"Ev0A1B2C3D","event_time":1700000000}`},
		{0, `{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"tokens_revoked","tokens":{"oauth":["UXXXXXXXX"],"bot":[]}},"type":"event_callback","event_id":"Ev0A1B2C3E","event_time":1700000000}`},
		{0, `{"token":"XXYYZZ","enterprise_id":"E123ABC456","api_app_id":"A123ABC456","event":{"type":"user_change","user":{"id":"W123","deleted":true}},"type":"event_callback","event_id":"Ev0A1B2C3F","event_time":1700000000,"is_ext_shared_channel":false}`},
		{0, `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","team_id":"T123ABC456","minute_rate_limited":1518467820,"api_app_id":"A123ABC456","type":"app_rate_limited"}`},
		{0, `{"type":"event_callback","event":null}`},
		{0, `[]`},
		{1, "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc&channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fweather&text=94070&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123456"},
		{1, "command=%2Forgbridge&team_id=&user_id=U1"},
		{2, "payload=" + url.QueryEscape(`{"type":"block_actions","user":{"id":"U123","username":"x","team_id":"T123"},"api_app_id":"A123","token":"x","container":{"type":"message"},"trigger_id":"12466734323.1395872398","team":{"id":"T123","domain":"x"},"enterprise":null,"is_enterprise_install":false,"response_url":"https://hooks.slack.com/actions/1/2/3","actions":[{"action_id":"connect","block_id":"b","value":"v","type":"button","action_ts":"1548426417.840180"}]}`)},
		{2, "payload=" + url.QueryEscape(`{"type":"view_submission","team":{"id":"T1"},"user":{"id":"U1"},"view":{"id":"V1","callback_id":"cb","state":{"values":{}}}}`)},
		{2, "payload=%ZZ"},
		// Values that become subject tokens or a Nats-Msg-Id, far too long:
		// they once closed the NATS connection for good.
		{0, `{"type":"event_callback","team_id":"` + strings.Repeat("T", 5000) + `","event_id":"Ev1","event":{"type":"message"}}`},
		{0, `{"type":"event_callback","enterprise_id":"E1","event_id":"Ev1","event":{"type":"` + strings.Repeat("m", 5000) + `"}}`},
		{0, `{"type":"event_callback","team_id":"T1","event_id":"` + strings.Repeat("E", 5000) + `","event":{"type":"message"}}`},
		{1, "command=%2F" + strings.Repeat("x", 5000) + "&team_id=T1&user_id=U1"},
		{2, "payload=" + url.QueryEscape(`{"type":"block_actions","team":{"id":"`+strings.Repeat("T", 5000)+`"}}`)},
	}
	for _, s := range seeds {
		f.Add(s.route, []byte(s.body))
	}
	n := testenv.StartNATS(f)
	n.EnsureStreams(f)
	js, err := jetstream.New(n.Conn, jetstream.WithPublishAsyncTimeout(time.Second))
	if err != nil {
		f.Fatal(err)
	}
	srv, err := ingress.New(ingress.Config{SigningSecret: secret, MaxBodyBytes: 64 << 10}, js, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	routes := []string{"/slack/events", "/slack/commands", "/slack/interactivity"}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := routes[int(route)%len(routes)]
		sig, ts := sign(body, time.Now(), secret)
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
		req.Header.Set("X-Slack-Signature", sig)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%s answered %d %q for %q", path, rec.Code, rec.Body, body)
		}
		if rec.Code != http.StatusOK && rec.Code != http.StatusRequestEntityTooLarge && rec.Body.Len() == 0 {
			t.Fatalf("%s answered %d with no explanation", path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "temporarily unavailable") {
			t.Fatalf("%s could not store a message while NATS is up: %q", path, body)
		}
		if n.Conn.IsClosed() {
			t.Fatalf("%s closed the NATS connection for good with %.300q: %v", path, body, n.Conn.LastError())
		}
	})
}
