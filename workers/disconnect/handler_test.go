package disconnect_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/store"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{WorkerID: "w1"})
	e.run(w, 5*time.Second)
	target := e.connected()[0]

	e.request("life-1", target)
	res := e.final(t, "life-1", 20*time.Second)

	if got := joinStates(e.results.states("life-1")); got != "accepted,submitted,completed" {
		t.Fatalf("states = %s, want accepted,submitted,completed", got)
	}
	if res.State != events.DisconnectCompleted || res.Attempts != 1 || res.RequestedBy != "tester" {
		t.Fatalf("final = %+v", res)
	}
	if n := len(e.disconnectCalls(target)); n != 1 {
		t.Fatalf("disconnect calls = %d, want 1", n)
	}
	if s := e.status(target); s != "DISCONNECTED" {
		t.Fatalf("emulator status of %s = %s", target, s)
	}
	rec, err := w.Store().Find(context.Background(), "life-1")
	if err != nil || rec.State != events.DisconnectCompleted || rec.SubmittedAt.IsZero() {
		t.Fatalf("record = %+v, %v", rec, err)
	}
	trail, err := w.Store().Audit(context.Background(), disconnect.AuditFilter{RequestID: "life-1"})
	if err != nil {
		t.Fatal(err)
	}
	var events_ []string
	var raw string
	for _, a := range trail {
		events_ = append(events_, a.Event)
		if a.Event == "slack_call" {
			raw = string(a.SlackResponse)
		}
		if a.RequestedBy != "tester" || a.Reason != "test life-1" {
			t.Fatalf("audit entry without who/why: %+v", a)
		}
	}
	for _, want := range []string{"received", "accepted", "slack_call", "submitted", "confirm_check", "completed"} {
		if !slices.Contains(events_, want) {
			t.Fatalf("audit events %v lack %s", events_, want)
		}
	}
	if !strings.Contains(raw, `"ok":true`) {
		t.Fatalf("audit keeps no raw Slack answer: %q", raw)
	}
}

func TestRejections(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	e.install(store.Installation{EnterpriseID: "E0NOGRID", TeamID: "T0NOGRID1", BotToken: "xoxb-ws", Scopes: []string{"commands"}})
	e.install(store.Installation{EnterpriseID: "E0NOSCOPE", IsEnterpriseInstall: true, BotToken: "xoxb-x", Scopes: []string{"team:read"}})
	w := e.worker(disconnect.Config{})
	e.run(w, 5*time.Second)
	target := e.connected()[0]

	tests := []struct {
		name    string
		subject string
		mut     func(*events.DisconnectRequest)
		code    string
		says    string
	}{
		{"missing reason", "", func(r *events.DisconnectRequest) { r.Reason = " " }, events.DisconnectErrInvalidRequest, "reason"},
		{"missing requested_by", "", func(r *events.DisconnectRequest) { r.RequestedBy = "" }, events.DisconnectErrInvalidRequest, "requested_by"},
		{"bad schema version", "", func(r *events.DisconnectRequest) { r.SchemaVersion = 0 }, events.DisconnectErrInvalidRequest, "schema_version"},
		{"target not a team id", "", func(r *events.DisconnectRequest) { r.TargetTeam = "U0123ABC" }, events.DisconnectErrInvalidTarget, "not a Slack team id"},
		{"unknown enterprise", "", func(r *events.DisconnectRequest) { r.EnterpriseID = "E0UNKNOWN" }, events.DisconnectErrUnknownEnterprise, "E0UNKNOWN"},
		{"no grid installation", "", func(r *events.DisconnectRequest) { r.EnterpriseID = "E0NOGRID" }, events.DisconnectErrNoGridInstall, "org-wide"},
		{"missing scope", "", func(r *events.DisconnectRequest) { r.EnterpriseID = "E0NOSCOPE" }, events.DisconnectErrMissingScope, "conversations.connect:manage"},
		{"own workspace as target", "", func(r *events.DisconnectRequest) { r.TargetTeam = e.ent.Workspaces[0] }, events.DisconnectErrOwnOrg, "external"},
		{"subject of another enterprise", events.DisconnectRequestSubject("E0OTHER"), nil, events.DisconnectErrInvalidRequest, "does not match"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("rej-%d", i)
			req := events.DisconnectRequest{SchemaVersion: 1, RequestID: id, EnterpriseID: e.ent.ID, TargetTeam: target, Reason: "r", RequestedBy: "tester"}
			if tt.mut != nil {
				tt.mut(&req)
			}
			subject := tt.subject
			if subject == "" {
				subject = events.DisconnectRequestSubject(req.EnterpriseID)
			}
			e.publishRaw(subject, id, req)
			res := e.final(t, id, 10*time.Second)
			if res.State != events.DisconnectRejected || res.Error != tt.code || !strings.Contains(res.Message, tt.says) {
				t.Fatalf("result = %+v, want rejected %s mentioning %q", res, tt.code, tt.says)
			}
		})
	}
	t.Run("body that is not JSON", func(t *testing.T) {
		e.publishRaw(events.DisconnectRequestSubject(e.ent.ID), "garbage-1", "not an object")
		res := e.final(t, "garbage-1", 10*time.Second)
		if res.State != events.DisconnectRejected || res.Error != events.DisconnectErrInvalidRequest {
			t.Fatalf("result = %+v", res)
		}
	})
	if n := len(e.disconnectCalls("")); n != 0 {
		t.Fatalf("rejected requests called Slack %d times", n)
	}
}

func TestErrorClasses(t *testing.T) {
	classes := disconnect.ErrorClasses()
	codes := make([]string, 0, len(classes))
	for c := range classes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	e := newEnv(t, slackemu.Config{ExternalTeams: 2*len(codes) + 8})
	// Answers of HTTP 200 that are not JSON, for the targets in garbled.
	garbled := &garbleClient{hc: &http.Client{}, targets: map[string]bool{}}
	sc, err := slackapi.New(e.emu.APIURL(), slackapi.WithHTTPClient(garbled))
	if err != nil {
		t.Fatal(err)
	}
	e.slack = sc
	w := e.worker(disconnect.Config{RetryMin: time.Second, RetryMax: 2 * time.Second, MaxAttempts: 3, MaxUnknownAttempts: 2,
		ConfirmFirst: 30 * time.Second, ConfirmMax: 2 * time.Minute, ConfirmDeadline: 10 * time.Minute})
	e.run(w, 5*time.Second)
	targets := e.emu.World().Enterprises[0].ExternalTeams

	type tc struct {
		code   string
		fault  slackemu.Fault
		class  disconnect.Class
		want   events.DisconnectState
		calls  int
		garble bool
	}
	var tests []tc
	for _, code := range codes {
		f := slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, Error: code, Count: 1}
		if status, ok := strings.CutPrefix(code, "http_"); ok {
			var n int
			fmt.Sscan(status, &n)
			f = slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, HTTPStatus: n, Count: 1}
		}
		if code == "ratelimited" {
			f = slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, HTTPStatus: 429, RetryAfter: 30, Count: 1}
		}
		switch classes[code] {
		case disconnect.Final:
			tests = append(tests, tc{code, f, disconnect.Final, events.DisconnectFailed, 1, false})
		case disconnect.Retryable:
			tests = append(tests, tc{code, f, disconnect.Retryable, events.DisconnectCompleted, 2, false})
		case disconnect.MaybeActed:
			// Slack acted, then answered the error: the list shows it worked; never a second call.
			after := f
			after.AfterEffect = true
			tests = append(tests, tc{code + " after the effect", after, disconnect.MaybeActed, events.DisconnectCompleted, 1, false})
			// Slack did not act: the list shows the team connected past
			// ConfirmDeadline, which proves it; only then is it called again.
			tests = append(tests, tc{code + " before the effect", f, disconnect.MaybeActed, events.DisconnectCompleted, 2, false})
		}
	}
	// A 200 that is not JSON after Slack acted: as good as no answer, so the list decides.
	tests = append(tests, tc{"transport_error (200 not JSON)", slackemu.Fault{}, disconnect.Unknown, events.DisconnectCompleted, 1, true})
	unknown := slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, Error: "brand_new_error", Count: 1}
	tests = append(tests, tc{"brand_new_error once", unknown, disconnect.Unknown, events.DisconnectCompleted, 2, false})
	unknown.Count = 2
	tests = append(tests, tc{"brand_new_error until the bound", unknown, disconnect.Unknown, events.DisconnectFailed, 2, false})
	retry := slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, Error: "service_unavailable", Count: 3}
	tests = append(tests, tc{"service_unavailable until MaxAttempts", retry, disconnect.Retryable, events.DisconnectFailed, 3, false})
	maybe := slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, Error: "internal_error", Count: 3}
	tests = append(tests, tc{"internal_error until MaxAttempts", maybe, disconnect.MaybeActed, events.DisconnectFailed, 3, false})

	for i, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if c := disconnect.Classify(strings.Fields(tt.code)[0]); c != tt.class {
				t.Fatalf("Classify = %s, want %s", c, tt.class)
			}
			e.emu.ClearFaults()
			target := targets[i].ID
			if tt.garble {
				garbled.add(target)
			} else if err := e.emu.InjectFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("cls-%d", i)
			e.request(id, target)
			res := e.final(t, id, 30*time.Second)
			if res.State != tt.want {
				t.Fatalf("final = %+v, want %s", res, tt.want)
			}
			if tt.want == events.DisconnectFailed && res.Error != strings.Fields(tt.code)[0] {
				t.Fatalf("failed with error %q, want %q", res.Error, tt.code)
			}
			if n := len(e.disconnectCalls(target)); n != tt.calls {
				t.Fatalf("disconnect calls = %d, want %d", n, tt.calls)
			}
		})
	}
}

func TestDuplicateRequestsJoin(t *testing.T) {
	e := newEnv(t, slackemu.Config{DisconnectDelay: 20 * time.Minute})
	w := e.worker(disconnect.Config{ConfirmFirst: time.Minute, ConfirmMax: 2 * time.Minute, ConfirmDeadline: 2 * time.Hour})
	e.run(w, 5*time.Second)
	target := e.connected()[0]

	e.request("dup-a", target)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(e.disconnectCalls(target)) == 1 }, "first request never called Slack")
	e.request("dup-b", target)
	e.request("dup-a", target) // the same request again (a retried publish): stored once
	e.publishRaw(events.DisconnectRequestSubject(e.ent.ID), "dup-a-second-msg-id", events.DisconnectRequest{SchemaVersion: 1,
		RequestID: "dup-a", EnterpriseID: e.ent.ID, TargetTeam: target, Reason: "again", RequestedBy: "tester"})

	a := e.final(t, "dup-a", 30*time.Second)
	b := e.final(t, "dup-b", 30*time.Second)
	if a.State != events.DisconnectCompleted || b.State != events.DisconnectCompleted {
		t.Fatalf("a = %+v, b = %+v", a, b)
	}
	if b.JoinedRequestID != "dup-a" || !strings.Contains(b.Message, "dup-a") {
		t.Fatalf("b did not join a: %+v", b)
	}
	if n := len(e.disconnectCalls(target)); n != 1 {
		t.Fatalf("disconnect calls = %d, want 1", n)
	}
	if got := joinStates(e.results.states("dup-a")); got != "accepted,submitted,completed" {
		t.Fatalf("dup-a states %s: a duplicate delivery changed them", got)
	}
	// Once the first is over, a new request for the target is a new request.
	e.request("dup-c", target)
	if c := e.final(t, "dup-c", 30*time.Second); c.JoinedRequestID != "" || c.State != events.DisconnectCompleted {
		t.Fatalf("c = %+v", c)
	}
}

func TestDryRun(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{})
	e.run(w, 5*time.Second)
	target := e.connected()[0]

	e.request("dry-1", target, func(r *events.DisconnectRequest) { r.DryRun = true })
	res := e.final(t, "dry-1", 10*time.Second)
	if res.State != events.DisconnectCompleted || !res.DryRun || !strings.Contains(res.Message, "would disconnect "+target) {
		t.Fatalf("result = %+v", res)
	}
	if n := len(e.disconnectCalls("")); n != 0 {
		t.Fatalf("dry run called disconnect %d times", n)
	}
	if s := e.status(target); s != "CONNECTED" {
		t.Fatalf("dry run changed %s to %s", target, s)
	}
}

func TestNotBefore(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{})
	e.run(w, 5*time.Second)
	target := e.connected()[0]
	at := time.Now().Add(700 * time.Millisecond)
	e.request("nb-1", target, func(r *events.DisconnectRequest) { r.NotBefore = &at })
	e.final(t, "nb-1", 10*time.Second)
	calls := e.disconnectCalls(target)
	if len(calls) != 1 {
		t.Fatalf("calls = %d", len(calls))
	}
	rec, _ := w.Store().Find(context.Background(), "nb-1")
	if rec.CallStartedAt.Before(at) {
		t.Fatalf("called at %s, before not_before %s", rec.CallStartedAt, at)
	}
}

// TestPacingTwoReplicas runs two replicas over one queue at high time
// scales, where a Tier 1 minute is tens of milliseconds of real time, and
// with calls that reach Slack late (a stalled goroutine, a slow connection):
// Slack must never answer 429, and calls must land a full emulated minute
// apart.
func TestPacingTwoReplicas(t *testing.T) {
	tests := []struct {
		name  string
		scale float64
		// late delays the disconnect calls on their way to Slack, in turn.
		late []time.Duration
	}{
		{name: "scale 1200", scale: 1200},
		{name: "scale 1200, calls arriving late", scale: 1200,
			late: []time.Duration{30 * time.Millisecond, 0, 75 * time.Millisecond, 0, 5 * time.Millisecond, 40 * time.Millisecond, 0}},
		{name: "scale 3000, calls arriving late", scale: 3000,
			late: []time.Duration{15 * time.Millisecond, 0, 30 * time.Millisecond, 2 * time.Millisecond, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, slackemu.Config{TimeScale: tt.scale, ExternalTeams: 12})
			if tt.late != nil {
				sc, err := slackapi.New(e.emu.APIURL(), slackapi.WithHTTPClient(&lateClient{
					hc: &http.Client{}, method: slackapi.MethodExternalTeamsDisconnect, delays: tt.late}))
				if err != nil {
					t.Fatal(err)
				}
				e.slack = sc
			}
			w1 := e.worker(disconnect.Config{WorkerID: "w1", Concurrency: 4, TimeScale: tt.scale})
			w2 := e.worker(disconnect.Config{WorkerID: "w2", Concurrency: 4, TimeScale: tt.scale})
			e.run(w1, 5*time.Second)
			e.run(w2, 5*time.Second)
			teams := e.emu.World().Enterprises[0].ExternalTeams
			const n = 10
			for i := range n {
				e.request(fmt.Sprintf("pace-%d", i), teams[i].ID)
			}
			for i := range n {
				if res := e.final(t, fmt.Sprintf("pace-%d", i), 30*time.Second); res.State != events.DisconnectCompleted {
					t.Fatalf("pace-%d = %+v", i, res)
				}
			}
			for _, c := range e.emu.Calls("") {
				if c.Status == http.StatusTooManyRequests {
					t.Errorf("Slack answered 429 to %s at %s", c.Method, c.Time.Format("15:04:05.000"))
				}
			}
			calls := e.disconnectCalls("")
			if len(calls) != n {
				t.Fatalf("disconnect calls = %d, want %d", len(calls), n)
			}
			slices.SortFunc(calls, func(a, b slackemu.Call) int { return a.Time.Compare(b.Time) })
			for i, c := range calls {
				if !c.OK {
					t.Fatalf("call %d was refused: %+v", i, c)
				}
				if i > 0 {
					if gap := c.Time.Sub(calls[i-1].Time); gap < time.Minute {
						t.Fatalf("calls %d and %d only %s apart (emulated); Tier 1 allows one a minute", i-1, i, gap)
					}
				}
			}
			byWorker := map[string]int{}
			trail, _ := w1.Store().Audit(context.Background(), disconnect.AuditFilter{})
			for _, a := range trail {
				if a.Event == "slack_call" {
					byWorker[a.Worker]++
				}
			}
			if byWorker["w1"]+byWorker["w2"] != n {
				t.Fatalf("calls by worker = %v", byWorker)
			}
		})
	}
}

// garbleClient answers the first disconnect call for each of targets with
// an HTTP 200 whose body is not JSON, after Slack answered it.
type garbleClient struct {
	hc      *http.Client
	mu      sync.Mutex
	targets map[string]bool
}

func (c *garbleClient) add(target string) {
	c.mu.Lock()
	c.targets[target] = true
	c.mu.Unlock()
}

func (c *garbleClient) Do(req *http.Request) (*http.Response, error) {
	var target string
	if strings.HasSuffix(req.URL.Path, "/"+slackapi.MethodExternalTeamsDisconnect) && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		v, _ := url.ParseQuery(string(b))
		target = v.Get("target_team")
	}
	resp, err := c.hc.Do(req)
	if err != nil || target == "" {
		return resp, err
	}
	c.mu.Lock()
	garble := c.targets[target]
	delete(c.targets, target)
	c.mu.Unlock()
	if garble {
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader("<html>bad gateway page served as 200</html>"))
		resp.ContentLength = -1
	}
	return resp, nil
}

// lateClient sends calls of method after the next of delays, as a busy
// machine or a slow network would: the pacer let them through on time, but
// Slack sees them late.
type lateClient struct {
	hc     *http.Client
	method string
	delays []time.Duration
	n      atomic.Int64
}

func (c *lateClient) Do(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/"+c.method) {
		d := c.delays[int(c.n.Add(1)-1)%len(c.delays)]
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		}
	}
	return c.hc.Do(req)
}

// TestKilledMidCall stops a worker right after Slack accepted the call but
// before it recorded "done" or acknowledged the message, as kill -9 would.
// A fresh worker must finish the request without calling Slack again.
func TestKilledMidCall(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	cfg := disconnect.Config{AckWait: time.Second}
	victim := e.worker(cfg)
	reached := make(chan struct{}, 1)
	disconnect.SetAfterCallHook(victim, func(ctx context.Context, _ string) error {
		reached <- struct{}{}
		<-ctx.Done() // hangs until the runner abandons it
		return errKilled
	})
	stopVictim := e.run(victim, 200*time.Millisecond)
	target := e.connected()[0]
	e.request("kill-1", target)
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the victim never called Slack")
	}
	if err := stopVictim(); err == nil {
		t.Fatal("the victim's runner stopped gracefully; the test needs it abandoned mid-handler")
	}
	if n := len(e.disconnectCalls(target)); n != 1 {
		t.Fatalf("calls before restart = %d", n)
	}

	fresh := e.worker(cfg)
	e.run(fresh, 5*time.Second)
	res := e.final(t, "kill-1", 20*time.Second)
	if res.State != events.DisconnectCompleted {
		t.Fatalf("final = %+v", res)
	}
	if n := len(e.disconnectCalls(target)); n != 1 {
		t.Fatalf("disconnect called %d times; a restart must never call again after a call that succeeded", n)
	}
	trail, _ := fresh.Store().Audit(context.Background(), disconnect.AuditFilter{RequestID: "kill-1"})
	found := false
	for _, a := range trail {
		found = found || strings.Contains(a.Message, "a worker stopped during the call")
	}
	if !found {
		t.Fatalf("the audit trail does not say the call was interrupted: %+v", trail)
	}
}

// TestKilledBeforeSlackActed covers the other side: the worker died after
// recording "in flight", and Slack never disconnected. Nothing is called
// again; the request ends unconfirmed for a person to check.
func TestKilledBeforeSlackActed(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	cfg := disconnect.Config{AckWait: time.Second, ConfirmFirst: 30 * time.Second, ConfirmMax: time.Minute, ConfirmDeadline: 5 * time.Minute}
	target := e.connected()[0]
	// The call fails at Slack, but the worker dies before it can know it.
	if err := e.emu.InjectFault(slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, Error: "internal_error", Count: 1}); err != nil {
		t.Fatal(err)
	}
	victim := e.worker(cfg)
	reached := make(chan struct{}, 1)
	disconnect.SetAfterCallHook(victim, func(ctx context.Context, _ string) error {
		reached <- struct{}{}
		<-ctx.Done()
		return errKilled
	})
	stopVictim := e.run(victim, 200*time.Millisecond)
	e.request("kill-2", target)
	<-reached
	_ = stopVictim()

	fresh := e.worker(cfg)
	e.run(fresh, 5*time.Second)
	res := e.final(t, "kill-2", 20*time.Second)
	if res.State != events.DisconnectUnconfirmed || !strings.Contains(res.Message, "will not call again") {
		t.Fatalf("final = %+v", res)
	}
	if n := len(e.disconnectCalls(target)); n != 1 {
		t.Fatalf("disconnect called %d times, want 1", n)
	}
}

// TestConfirmWhenListFails covers a confirmation (or a dry run) whose
// team.externalTeams.list keeps failing: an error retrying cannot fix (the
// token was revoked after the call) ends the request for a person to check
// instead of retrying it forever; a transient one is retried.
func TestConfirmWhenListFails(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{RetryMin: time.Second, RetryMax: 2 * time.Second})
	e.run(w, 5*time.Second)
	targets := e.connected()
	tests := []struct {
		name      string
		fault     slackemu.Fault
		dryRun    bool
		want      events.DisconnectState
		wantError string
		wantMsg   string
	}{
		{name: "token revoked after the call", fault: slackemu.Fault{Method: slackapi.MethodExternalTeamsList, Error: "token_revoked", Count: 1000},
			want: events.DisconnectUnconfirmed, wantError: "token_revoked", wantMsg: "Slack accepted the disconnect, but orgbridge cannot check it"},
		{name: "dry run with a token lacking the scope", dryRun: true, fault: slackemu.Fault{Method: slackapi.MethodExternalTeamsList, Error: "missing_scope", Count: 1000},
			want: events.DisconnectFailed, wantError: "missing_scope", wantMsg: "reinstall with that scope"},
		{name: "Slack unavailable for a while", fault: slackemu.Fault{Method: slackapi.MethodExternalTeamsList, HTTPStatus: 503, Count: 2},
			want: events.DisconnectCompleted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.emu.ClearFaults()
			if err := e.emu.InjectFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("list-%d", i)
			e.request(id, targets[i], func(r *events.DisconnectRequest) { r.DryRun = tt.dryRun })
			res := e.final(t, id, 20*time.Second)
			if res.State != tt.want || res.Error != tt.wantError || !strings.Contains(res.Message, tt.wantMsg) {
				t.Fatalf("final = %+v, want %s (%q) saying %q", res, tt.want, tt.wantError, tt.wantMsg)
			}
		})
	}
}
