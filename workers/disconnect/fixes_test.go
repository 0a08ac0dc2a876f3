package disconnect_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// TestManyPagesOfExternalTeams: an enterprise with more than one page (1000)
// of external teams, and a MaxBlock shorter than the Tier 2 interval, so
// every page after the first waits for its slot in a later delivery. Dry
// runs and confirmations must still finish: the scan goes on from the page
// it reached.
func TestManyPagesOfExternalTeams(t *testing.T) {
	const lscale = 600 // Tier 2: 5 ms real; Tier 1: 100 ms
	e := newEnv(t, slackemu.Config{TimeScale: lscale, ExternalTeams: 1100})
	w := e.worker(disconnect.Config{TimeScale: lscale, MaxBlock: time.Millisecond})
	e.run(w, 5*time.Second)

	// Slack's order: team name (case-insensitive), then id.
	teams := slices.Clone(e.emu.World().Enterprises[0].ExternalTeams)
	slices.SortStableFunc(teams, func(a, b slackemu.ExternalInfo) int {
		if r := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); r != 0 {
			return r
		}
		return strings.Compare(a.ID, b.ID)
	})
	var onPage2 []string
	for _, x := range teams[1000:] {
		if x.ConnectionStatus == "CONNECTED" {
			onPage2 = append(onPage2, x.ID)
		}
	}
	if len(onPage2) < 2 {
		t.Fatalf("only %d connected teams on page 2", len(onPage2))
	}

	e.request("pages-dry", onPage2[0], func(r *events.DisconnectRequest) { r.DryRun = true })
	if res := e.final(t, "pages-dry", 20*time.Second); res.State != events.DisconnectCompleted || !strings.Contains(res.Message, "would disconnect "+onPage2[0]) {
		t.Fatalf("dry run = %+v", res)
	}
	e.request("pages-absent", "T0NOTLISTED", func(r *events.DisconnectRequest) { r.DryRun = true })
	if res := e.final(t, "pages-absent", 20*time.Second); res.State != events.DisconnectCompleted || !strings.Contains(res.Message, "nothing to do") {
		t.Fatalf("dry run of an unlisted team = %+v", res)
	}
	e.request("pages-real", onPage2[1])
	if res := e.final(t, "pages-real", 20*time.Second); res.State != events.DisconnectCompleted {
		t.Fatalf("request = %+v", res)
	}
	if n := len(e.disconnectCalls(onPage2[1])); n != 1 {
		t.Fatalf("disconnect calls = %d, want 1", n)
	}
	// No scan progress is left behind.
	keys, err := e.redis.Client.Keys(context.Background(), "*disconnect:scan*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("scan progress left: %v, %v", keys, err)
	}
}

// TestConfirmDeadlineWhileListingWaits: a confirmation whose list never gets
// its Tier 2 slot within the deadline ends unconfirmed instead of waiting
// forever.
func TestConfirmDeadlineWhileListingWaits(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{ConfirmFirst: 30 * time.Second, ConfirmMax: time.Minute, ConfirmDeadline: 5 * time.Minute})
	e.run(w, 5*time.Second)
	target := e.connected()[0]
	// Slack keeps answering the list with 503: the list never finishes.
	if err := e.emu.InjectFault(slackemu.Fault{Method: "team.externalTeams.list", HTTPStatus: 503}); err != nil {
		t.Fatal(err)
	}
	e.request("deadline-1", target)
	res := e.final(t, "deadline-1", 20*time.Second)
	if res.State != events.DisconnectUnconfirmed || !strings.Contains(res.Message, "could not be read within") {
		t.Fatalf("final = %+v", res)
	}
}

// TestNotBeforeLimit: a not_before later than the stream can keep the
// waiting message is rejected at once, naming the limit.
func TestNotBeforeLimit(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{MaxNotBefore: 2 * time.Hour})
	e.run(w, 5*time.Second)
	target := e.connected()[0]

	far := time.Now().Add(3 * time.Hour)
	e.request("nb-far", target, func(r *events.DisconnectRequest) { r.NotBefore = &far })
	res := e.final(t, "nb-far", 10*time.Second)
	if res.State != events.DisconnectRejected || res.Error != events.DisconnectErrInvalidRequest || !strings.Contains(res.Message, "more than 2h0m0s ahead") {
		t.Fatalf("result = %+v", res)
	}
	// Within the limit it is accepted and waits (not final).
	near := time.Now().Add(90 * time.Minute)
	e.request("nb-near", target, func(r *events.DisconnectRequest) { r.NotBefore = &near })
	testenv.Eventually(t, 10*time.Second, func() bool {
		return joinStates(e.results.states("nb-near")) == "accepted"
	}, "nb-near not accepted: %v", e.results.states("nb-near"))
	if n := len(e.disconnectCalls("")); n != 0 {
		t.Fatalf("disconnect calls = %d", n)
	}
	// The default allows a little under the stream's 7 days.
	if d := disconnect.DefaultMaxNotBefore; d != 6*24*time.Hour+23*time.Hour {
		t.Fatalf("DefaultMaxNotBefore = %s", d)
	}
}

// TestScheduledRequestDoesNotHoldTheTarget: a request for later neither
// claims its target nor is joined by a request for now; the one for now
// goes ahead, and the later one joins it if it is still active when due.
func TestScheduledRequestDoesNotHoldTheTarget(t *testing.T) {
	e := newEnv(t, slackemu.Config{DisconnectDelay: time.Hour})
	w := e.worker(disconnect.Config{ConfirmFirst: time.Minute, ConfirmMax: 2 * time.Minute, ConfirmDeadline: 3 * time.Hour})
	e.run(w, 5*time.Second)
	target := e.connected()[0]

	due := time.Now().Add(time.Second)
	e.request("sched-later", target, func(r *events.DisconnectRequest) { r.NotBefore = &due })
	testenv.Eventually(t, 10*time.Second, func() bool { return len(e.results.of("sched-later")) > 0 }, "sched-later not accepted")
	e.request("sched-now", target)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(e.disconnectCalls(target)) == 1 }, "the request for now never called Slack")
	if time.Now().After(due) {
		t.Fatal("too slow: the request for now was only called after the scheduled one came due")
	}
	if r := e.results.of("sched-now"); len(r) == 0 || r[0].JoinedRequestID != "" {
		t.Fatalf("the request for now joined the scheduled one: %+v", r)
	}
	later := e.final(t, "sched-later", 20*time.Second)
	now := e.final(t, "sched-now", 20*time.Second)
	if now.State != events.DisconnectCompleted || later.State != events.DisconnectCompleted || later.JoinedRequestID != "sched-now" {
		t.Fatalf("now = %+v, later = %+v", now, later)
	}
	if n := len(e.disconnectCalls(target)); n != 1 {
		t.Fatalf("disconnect calls = %d, want 1", n)
	}
}

// TestBodyNeverSteersRejection: a body naming another enterprise (or an
// invalid one) is rejected on the subject's enterprise — record, audit and
// result — and never touches the other enterprise's request of that id.
func TestBodyNeverSteersRejection(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{})
	e.run(w, 5*time.Second)
	ctx := context.Background()
	target := e.connected()[0]
	due := time.Now().Add(time.Hour)
	e.request("victim", target, func(r *events.DisconnectRequest) { r.NotBefore = &due })
	testenv.Eventually(t, 10*time.Second, func() bool { return len(e.results.of("victim")) == 1 }, "victim not accepted")

	const attacker = "E0ATTACK"
	body := func(id, ent string) events.DisconnectRequest {
		return events.DisconnectRequest{SchemaVersion: 1, RequestID: id, EnterpriseID: ent, TargetTeam: target, Reason: "x", RequestedBy: "x"}
	}
	e.publishRaw(events.DisconnectRequestSubject(attacker), "attack-1", body("victim", e.ent.ID))
	e.publishRaw(events.DisconnectRequestSubject(attacker), "attack-2", body("bad-ent", "nope"))
	e.publishRaw("disconnect.requests.garbage", "attack-3", "not an object")

	rejectedOn := func(id, ent string) bool {
		for _, r := range e.results.of(id) {
			if r.State == events.DisconnectRejected && r.EnterpriseID == ent {
				return true
			}
		}
		return false
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		return rejectedOn("victim", attacker) && rejectedOn("bad-ent", attacker) && rejectedOn("attack-3", "garbage")
	}, "rejections not on the subject's enterprise: victim %+v, bad-ent %+v", e.results.of("victim"), e.results.of("bad-ent"))

	st := w.Store()
	if rec, found, err := st.Get(ctx, e.ent.ID, "victim"); err != nil || !found || rec.State != events.DisconnectAccepted {
		t.Fatalf("the victim's request changed: %+v %v %v", rec, found, err)
	}
	if rec, err := st.Find(ctx, "victim"); err != nil || rec.EnterpriseID != e.ent.ID {
		t.Fatalf("Find(victim) = %+v, %v: the id must stay the victim's", rec, err)
	}
	for _, id := range []string{"victim", "bad-ent"} {
		if rec, found, err := st.Get(ctx, attacker, id); err != nil || !found || rec.State != events.DisconnectRejected {
			t.Fatalf("%s on the subject's enterprise: %+v %v %v", id, rec, found, err)
		}
	}
	if _, found, _ := st.Get(ctx, "nope", "bad-ent"); found {
		t.Fatal("a record was stored under the body's invalid enterprise")
	}
	trail, err := st.Audit(ctx, disconnect.AuditFilter{EnterpriseID: e.ent.ID, RequestID: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range trail {
		if a.Event == "rejected" {
			t.Fatalf("the rejection was audited on the victim's enterprise: %+v", a)
		}
	}
	ents, err := st.Enterprises(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ents, "garbage") || slices.Contains(ents, "nope") {
		t.Fatalf("invalid enterprise ids indexed: %v", ents)
	}
	if n, _ := e.redis.Client.Exists(ctx, disconnect.AuditKey("garbage")).Result(); n != 0 {
		t.Fatal("a garbage subject token got an audit trail")
	}
}

// TestStoreStaysBounded: the request index drops entries past the record
// TTL, ids map to enterprises through keys that expire with the records,
// only valid enterprise ids are indexed, and List reads a page at a time.
func TestStoreStaysBounded(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	const ent = "E0BOUND"
	st := disconnect.NewStore(r.Client, 24*time.Hour, 0)
	now := time.Now().UTC()
	save := func(id, e string, created time.Time, state events.DisconnectState) {
		t.Helper()
		if err := st.Save(ctx, disconnect.Record{RequestID: id, EnterpriseID: e, TargetTeam: "T0X", State: state, CreatedAt: created, UpdatedAt: created}); err != nil {
			t.Fatal(err)
		}
	}
	save("ancient", ent, now.AddDate(0, 0, -60), events.DisconnectCompleted)
	save("failed-1", ent, now.Add(-5*time.Minute), events.DisconnectFailed)
	for i := range 5 {
		save("new-"+string(rune('a'+i)), ent, now.Add(time.Duration(i)*time.Second), events.DisconnectCompleted)
	}
	if n, _ := r.Client.ZCard(ctx, disconnect.IndexKey(ent)).Result(); n != 6 {
		t.Fatalf("index holds %d entries, want 6 (the 60-day-old one trimmed)", n)
	}
	if ttl, _ := r.Client.PTTL(ctx, disconnect.IndexKey(ent)).Result(); ttl <= 0 {
		t.Fatalf("index TTL = %s", ttl)
	}
	if n, _ := r.Client.Exists(ctx, disconnect.LegacyIDsKey()).Result(); n != 0 {
		t.Fatal("the global id hash is still written")
	}
	if ttl, _ := r.Client.PTTL(ctx, disconnect.IDKey("new-a")).Result(); ttl <= 0 || ttl > 24*time.Hour {
		t.Fatalf("id key TTL = %s", ttl)
	}
	if rec, err := st.Find(ctx, "new-a"); err != nil || rec.EnterpriseID != ent {
		t.Fatalf("Find = %+v, %v", rec, err)
	}
	// Another enterprise reusing a live id does not take it over.
	save("new-a", "E0OTHER", now, events.DisconnectRejected)
	if rec, err := st.Find(ctx, "new-a"); err != nil || rec.EnterpriseID != ent {
		t.Fatalf("Find after reuse = %+v, %v", rec, err)
	}
	// Records saved before the per-request keys are still found.
	r.Client.Del(ctx, disconnect.IDKey("new-b"))
	r.Client.HSet(ctx, disconnect.LegacyIDsKey(), "new-b", ent)
	if rec, err := st.Find(ctx, "new-b"); err != nil || rec.EnterpriseID != ent {
		t.Fatalf("legacy Find = %+v, %v", rec, err)
	}
	// Only valid enterprise ids are indexed.
	save("junk-1", "not-an-enterprise", now, events.DisconnectRejected)
	if err := st.Append(ctx, disconnect.AuditEntry{EnterpriseID: "junk{x}", Event: "rejected"}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := st.Enterprises(ctx); !slices.Equal(ents, []string{"E0BOUND", "E0OTHER"}) {
		t.Fatalf("enterprises = %v", ents)
	}
	// List pages: the newest two, and a filter that has to read past the first page.
	got, err := st.List(ctx, disconnect.ListFilter{EnterpriseID: ent, Limit: 2})
	if err != nil || len(got) != 2 || got[0].RequestID != "new-e" || got[1].RequestID != "new-d" {
		t.Fatalf("List = %+v, %v", got, err)
	}
	got, err = st.List(ctx, disconnect.ListFilter{EnterpriseID: ent, State: events.DisconnectFailed, Limit: 2})
	if err != nil || len(got) != 1 || got[0].RequestID != "failed-1" {
		t.Fatalf("List failed = %+v, %v", got, err)
	}
}

// TestPaceReleasedWhenNoCallIsMade: a delivery granted the Tier 1 slot that
// then finds another delivery began the call (or cannot save) releases the
// pace at once instead of holding it for CallTimeout.
func TestPaceReleasedWhenNoCallIsMade(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{AckWait: 20 * time.Second, CallTimeout: 15 * time.Second})
	var fired atomic.Bool
	hooked := make(chan struct{}, 1)
	disconnect.SetBeforeBeginHook(w, func(ctx context.Context, id string) error {
		if fired.Swap(true) {
			return nil
		}
		// Another delivery begins the call first.
		_, err := store.NewIdempotency(e.redis.Client).Begin(ctx, disconnect.CallKey(e.ent.ID, id), time.Hour)
		hooked <- struct{}{}
		return err
	})
	e.run(w, 5*time.Second)
	e.request("pace-rel", e.connected()[0])
	select {
	case <-hooked:
	case <-time.After(10 * time.Second):
		t.Fatal("the call was never granted")
	}
	bucket := store.Key(e.ent.ID, "slackapi", "pace", slackapi.MethodExternalTeamsDisconnect)
	testenv.Eventually(t, 2*time.Second, func() bool {
		busy, err := e.redis.Client.HGet(context.Background(), bucket, "busy").Result()
		return errors.Is(err, redis.Nil) || (err == nil && busy == "")
	}, "the pace is still held by a delivery that made no call")
	if n := len(e.disconnectCalls("")); n != 0 {
		t.Fatalf("disconnect calls = %d", n)
	}
}
