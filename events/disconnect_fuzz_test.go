package events

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzDisconnectRequest feeds other systems' bytes through the decoding and
// validation the disconnect worker does. Whatever arrives: no panic; a refusal
// names the field that is wrong; an accepted request survives a round trip
// unchanged and is still valid, so what the worker stores is what was asked.
func FuzzDisconnectRequest(f *testing.F) {
	for _, s := range []string{
		`{"schema_version":1,"request_id":"hr-7731","enterprise_id":"E0123ABC","target_team":"T0EXT123","reason":"vendor offboarded","requested_by":"hr-system"}`,
		`{"schema_version":1,"request_id":"a","enterprise_id":"E1","target_team":"T1","reason":"r","requested_by":"b","not_before":"2030-01-01T00:00:00Z","dry_run":true}`,
		`{"schema_version":2,"request_id":"a"}`, `{"request_id":"../../etc"}`, `{}`, `null`, `[]`, `{"target_team":"E0123"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req DisconnectRequest
		if err := Decode(nats.Header{HeaderSchema: {"1"}}, body, &req); err != nil {
			return // not JSON of this shape: the worker answers with an invalid_request result
		}
		err := req.Validate()
		if err != nil {
			var re *DisconnectRequestError
			if !errors.As(err, &re) || re.Field == "" || re.Code == "" {
				t.Fatalf("refusal %v does not name the field and code", err)
			}
			return
		}
		again, _ := json.Marshal(req)
		var back DisconnectRequest
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("valid request does not round-trip: %v", err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("valid request invalid after a round trip: %v", err)
		}
		if back.RequestID != req.RequestID || back.EnterpriseID != req.EnterpriseID || back.TargetTeam != req.TargetTeam {
			t.Fatalf("round trip changed the request: %+v → %+v", req, back)
		}
	})
}
