package ingress

import (
	"encoding/json"
	"strings"
	"testing"
)

// reference extracts the routing fields the slow, obviously correct way.
func reference(body []byte) (eventEnvelope, bool) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return eventEnvelope{}, false
	}
	var env eventEnvelope
	ok := true
	str := func(v any, dst *string) {
		switch v := v.(type) {
		case nil:
		case string:
			*dst = v
		default:
			ok = false
		}
	}
	str(doc["type"], &env.Type)
	str(doc["challenge"], &env.Challenge)
	str(doc["team_id"], &env.TeamID)
	str(doc["enterprise_id"], &env.EnterpriseID)
	str(doc["event_id"], &env.EventID)
	switch ev := doc["event"].(type) {
	case nil:
	case map[string]any:
		str(ev["type"], &env.EventType)
	default:
		ok = false
	}
	return env, ok
}

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    eventEnvelope
		wantErr string
	}{
		{"event", `{"type":"event_callback","team_id":"T1","event":{"type":"message","text":"hi"},"event_id":"Ev1"}`,
			eventEnvelope{Type: "event_callback", TeamID: "T1", EventType: "message", EventID: "Ev1"}, ""},
		{"escapes decoded", `{"type":"event_callback","team_id":"T\u0031","event":{"type":"m\"x"}}`,
			eventEnvelope{Type: "event_callback", TeamID: "T1", EventType: `m"x`}, ""},
		{"escaped key", `{"\u0074ype":"url_verification","challenge":"c"}`, eventEnvelope{Type: "url_verification", Challenge: "c"}, ""},
		{"last duplicate wins", `{"type":"a","type":"b"}`, eventEnvelope{Type: "b"}, ""},
		{"nulls are absent", `{"type":null,"event":null,"enterprise_id":null}`, eventEnvelope{}, ""},
		{"nested type ignored", `{"x":{"type":"no"},"event":{"item":{"type":"no"},"type":"yes"}}`, eventEnvelope{EventType: "yes"}, ""},
		{"keys are exact", `{"TYPE":"x","Type":"y"}`, eventEnvelope{}, ""},
		{"top-level null", `null`, eventEnvelope{}, ""},
		{"number type", `{"type":5}`, eventEnvelope{}, `"type" is not a string`},
		{"event not object", `{"event":[]}`, eventEnvelope{}, `"event" is not an object`},
		{"array", `[]`, eventEnvelope{}, "not a JSON object"},
		{"trailing", `{} {}`, eventEnvelope{}, "after the JSON object"},
		{"unterminated", `{"type":"abc`, eventEnvelope{}, "unterminated"},
		{"bad number", `{"n":01}`, eventEnvelope{}, "expected ','"},
		{"control char", "{\"type\":\"a\x01\"}", eventEnvelope{}, "control character"},
		{"bad escape", `{"type":"\x"}`, eventEnvelope{}, "malformed escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnvelope([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzParseEnvelope checks the fast parser agrees with encoding/json on every
// input: the same verdict on validity, and the same fields when valid.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"event_callback","team_id":"T1","event":{"type":"message","blocks":[{"a":[1,2.5e3,-0.1,true,false,null]}]},"event_id":"Ev1"}`,
		`{"type":"url_verification","challenge":"abc"}`,
		`{"type":"\u00e9\ud83d\ude00","team_id":"\xff"}`,
		`{"a":"\\\/\b\f\n\r\t"}`, `null`, `{}`, `[]`, `1`, `"s"`, `{"event":{}}`, `{"event":1}`,
		` { "type" : "x" } `, `{"n":-0.0e+1}`, `{"n":1.}`, `{"n":.5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseEnvelope(body)
		want, ok := reference(body)
		if ok != (err == nil) {
			t.Fatalf("validity differs for %q: parseEnvelope err=%v, encoding/json ok=%v", body, err, ok)
		}
		if ok && got != want {
			t.Fatalf("fields differ for %q:\n got %+v\nwant %+v", body, got, want)
		}
	})
}

func BenchmarkParseEnvelope(b *testing.B) {
	body := []byte(`{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"app_mention","user":"U123ABC456","text":"<@U0LAN0Z89> is it everything a river should be?","ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522000016,"authorizations":[{"enterprise_id":"E123ABC456","team_id":"T123ABC456","user_id":"U123ABC456","is_bot":false,"is_enterprise_install":false}],"event_context":"EC123ABC456"}`)
	b.Run("parseEnvelope", func(b *testing.B) {
		for b.Loop() {
			if _, err := parseEnvelope(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		var v struct {
			Type, TeamID, EnterpriseID, EventID, Challenge string
			Event                                          struct{ Type string }
		}
		for b.Loop() {
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
