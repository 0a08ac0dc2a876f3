package slackemu

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestFaultAfterEffect: an after_effect fault lets the method act (the
// disconnect starts) and then answers with the injected error or status; a
// plain fault answers before anything happens.
func TestFaultAfterEffect(t *testing.T) {
	e := StartTest(t, Config{SeedFile: seedFile(t), TimeScale: 1000, DisconnectDelay: time.Second, DisableRateLimits: true})
	grid := mint(t, e, TokenRequest{EnterpriseID: "E0GRID"}).Token
	pending := func(id string) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return !e.world.externals[id].DisconnectAt.IsZero()
	}
	tests := []struct {
		name   string
		fault  Fault
		status int
		code   string
		acted  bool
	}{
		{"error before the effect", Fault{Error: "internal_error"}, http.StatusOK, "internal_error", false},
		{"error after the effect", Fault{Error: "fatal_error", AfterEffect: true}, http.StatusOK, "fatal_error", true},
		{"502 after the effect", Fault{HTTPStatus: 502, AfterEffect: true}, 502, "", true},
		{"504 before the effect", Fault{HTTPStatus: 504}, 504, "", false},
	}
	targets := []string{"T1A", "T1B", "T1A", "T1B"}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.ClearFaults()
			e.mu.Lock()
			for _, x := range e.world.externals {
				x.DisconnectAt = time.Time{}
			}
			e.mu.Unlock()
			tc.fault.Method, tc.fault.Count = "team.externalTeams.disconnect", 1
			if code := control(t, e, http.MethodPost, "/_emulator/faults", tc.fault, nil); code != http.StatusOK {
				t.Fatalf("POST /_emulator/faults = %d", code)
			}
			status, body := callAPI(t, e, "team.externalTeams.disconnect", grid, url.Values{"target_team": {targets[i]}})
			if status != tc.status || (tc.code != "" && body["error"] != tc.code) {
				t.Fatalf("answer = %d %v, want %d %q", status, body, tc.status, tc.code)
			}
			if got := pending(targets[i]); got != tc.acted {
				t.Fatalf("disconnect started = %v, want %v", got, tc.acted)
			}
			calls := e.Calls("team.externalTeams.disconnect")
			if last := calls[len(calls)-1]; last.OK || last.Status != tc.status {
				t.Fatalf("call log = %+v", last)
			}
		})
	}
	t.Run("a refused call keeps its own error", func(t *testing.T) {
		if err := e.InjectFault(Fault{Method: "team.externalTeams.disconnect", Error: "internal_error", AfterEffect: true, Count: 1}); err != nil {
			t.Fatal(err)
		}
		if _, body := callAPI(t, e, "team.externalTeams.disconnect", grid, url.Values{"target_team": {"T9NOPE"}}); body["error"] != "invalid_target_team" {
			t.Fatalf("answer = %v", body)
		}
	})
	t.Run("after_effect needs an answer", func(t *testing.T) {
		if err := e.InjectFault(Fault{Method: "*", DelayMS: 5, AfterEffect: true}); err == nil {
			t.Fatal("a delay-only after_effect fault was accepted")
		}
	})
}
