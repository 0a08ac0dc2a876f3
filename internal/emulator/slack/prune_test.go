package slackemu

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"testing"
	"time"
)

// advanceClock moves the emulator's emulated time forward by d.
func advanceClock(e *Emulator, d time.Duration) {
	e.mu.Lock()
	e.clock.origin = e.clock.origin.Add(d)
	e.mu.Unlock()
}

// issueIDs hands out n response URLs and trigger ids (one slash command each)
// and n OAuth codes (one consent each), and returns their ids.
func issueIDs(t *testing.T, e *Emulator, n int) (respURLs, triggers, codes []string) {
	t.Helper()
	ws := e.World().Enterprises[0].Workspaces[0]
	nc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range n {
		d, err := e.DeliverCommand(Command{TeamID: ws, Command: "/org"})
		if err != nil || d.Status != http.StatusOK {
			t.Fatalf("DeliverCommand = %+v, %v", d, err)
		}
		respURLs = append(respURLs, path.Base(d.ResponseURL))
		triggers = append(triggers, d.TriggerID)

		q := url.Values{"client_id": {e.ClientID()}, "redirect_uri": {"https://app.example.com/cb"}, "team": {ws}, "scope": {"commands"}}
		resp, err := nc.Get(e.URL() + "/oauth/v2/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
			t.Fatalf("authorize = %d %q (%v)", resp.StatusCode, resp.Header.Get("Location"), err)
		}
		codes = append(codes, loc.Query().Get("code"))
	}
	return respURLs, triggers, codes
}

// TestExpiredIDsArePruned covers a long-running emulator: response URLs (30
// min), trigger ids (3 s) and OAuth codes (10 min) that expired in emulated
// time are deleted as new ones are handed out, not kept forever.
func TestExpiredIDsArePruned(t *testing.T) {
	e := StartTest(t, smallWorld())
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	e.SetIngressURL(srv.URL)

	const n = sweepMinEntries * 3 / 4 // below the sweep size: nothing is swept yet
	oldRU, oldTR, oldCodes := issueIDs(t, e, n)
	advanceClock(e, responseURLTTL+time.Minute) // every kind expires
	newRU, newTR, newCodes := issueIDs(t, e, n)

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, tc := range []struct {
		name     string
		has      func(string) bool
		size     int
		old, new []string
		keepsNew bool
	}{
		{"response URLs", func(k string) bool { _, ok := e.respURLs[k]; return ok }, len(e.respURLs), oldRU, newRU, true},
		{"OAuth codes", func(k string) bool { _, ok := e.codes[k]; return ok }, len(e.codes), oldCodes, newCodes, true},
		// New trigger ids may expire while the test runs (3 s); only the old must be gone.
		{"trigger ids", func(k string) bool { _, ok := e.triggers[k]; return ok }, len(e.triggers), oldTR, newTR, false},
	} {
		for _, k := range tc.old {
			if tc.has(k) {
				t.Errorf("%s: expired %q still kept after %d new ones", tc.name, k, n)
			}
		}
		if tc.size > n {
			t.Errorf("%s: %d kept, want at most the %d new ones", tc.name, tc.size, n)
		}
		if !tc.keepsNew {
			continue
		}
		for _, k := range tc.new {
			if !tc.has(k) {
				t.Errorf("%s: live %q was deleted", tc.name, k)
			}
		}
	}
}

func TestSweepDue(t *testing.T) {
	var due []int
	for n := range 300 {
		if sweepDue(n) {
			due = append(due, n)
		}
	}
	want := []int{64, 80, 96, 112, 128, 160, 192, 224, 256} // then every 64 up to 512
	if len(due) != len(want) {
		t.Fatalf("sweeps at %v, want %v", due, want)
	}
	for i := range want {
		if due[i] != want[i] {
			t.Fatalf("sweeps at %v, want %v", due, want)
		}
	}
}
