package console_test

import (
	"context"
	"encoding/csv"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/console"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/ops"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

const operatorToken = "operator-token-0123456789"

// operatorWorld is what the operator pages act on: an Enterprise Grid org
// (its own emulated Slack) with the app installed org-wide and the
// disconnect worker, and a consumer that dead-letters what it is sent
// until an operator re-drives it.
type operatorWorld struct {
	grid *slackemu.Emulator
	ent  slackemu.EnterpriseInfo

	mu       sync.Mutex
	redriven []string // bodies the test consumer took after a re-drive
}

// testSubject is where the test consumer reads; it fails every message the
// first time (a permanent error: the runner dead-letters it).
var testSubject = events.AppCommandSubject("consoletest")

const testConsumer = "console-test"

func (o *operatorWorld) option(e *env, cfg *console.Config) {
	t := e.t
	o.grid = slackemu.StartTest(t, slackemu.Config{Workspaces: -1, Groups: -1, Users: 3, ExternalTeams: 6, TimeScale: 1200})
	o.ent = o.grid.World().Enterprises[0]
	tok, err := o.grid.MintToken(slackemu.TokenRequest{EnterpriseID: o.ent.ID})
	if err != nil {
		t.Fatal(err)
	}
	installs := disconnect.StoreInstallations{Store: store.NewInstallations(e.redis.Client, e.keys), AppID: o.grid.AppID()}
	if err := installs.Store.Save(context.Background(), &store.Installation{AppID: o.grid.AppID(), EnterpriseID: o.ent.ID,
		IsEnterpriseInstall: true, BotToken: store.Secret(tok.Token), Scopes: tok.Scopes}); err != nil {
		t.Fatal(err)
	}
	sc, err := slackapi.New(o.grid.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	dw, err := disconnect.New(disconnect.Deps{JS: e.nats.JS, Redis: e.redis.Client, Slack: sc, Installations: installs},
		disconnect.Config{TimeScale: 1200, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.register = append(e.register, dw.Register, func(r *bus.Runner) error {
		return r.Register(bus.ConsumerConfig{Stream: events.StreamApp, Durable: testConsumer, FilterSubjects: []string{testSubject},
			AckWait: 5 * time.Second}, o.handle)
	})
	cfg.Operator = console.OperatorAPI{Disconnects: dw, JS: e.nats.JS}
}

func (o *operatorWorld) handle(_ context.Context, m *bus.Message) error {
	if m.Header.Get(events.HeaderReplayFor) == "" {
		return bus.Permanent(errors.New("the test consumer cannot handle <b>this</b> yet"))
	}
	o.mu.Lock()
	o.redriven = append(o.redriven, string(m.Data))
	o.mu.Unlock()
	return nil
}

func (o *operatorWorld) took(body string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, b := range o.redriven {
		if b == body {
			return true
		}
	}
	return false
}

// status is the emulated Slack's connection status of external team id.
func (o *operatorWorld) status(id string) string {
	for _, x := range o.grid.World().Enterprises[0].ExternalTeams {
		if x.ID == id {
			return x.ConnectionStatus
		}
	}
	return ""
}

// deadLetter publishes body to the test consumer and waits until it is dead-lettered.
func (e *env) deadLetter(body string) uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := nats.NewMsg(testSubject)
	msg.Data = []byte(body)
	msg.Header.Set(events.HeaderSchema, "1")
	if _, err := e.nats.JS.PublishMsg(ctx, msg); err != nil {
		e.t.Fatal(err)
	}
	var id uint64
	testenv.Eventually(e.t, 10*time.Second, func() bool {
		list, err := ops.ListDeadLetters(ctx, e.nats.JS, ops.DLQFilter{Consumer: testConsumer})
		for _, d := range list {
			if string(d.Data) == body {
				id = d.ID
			}
		}
		return err == nil && id != 0
	}, "no dead letter for %q", body)
	return id
}

// signInAsOperator exchanges the admin token for a session on the login page.
func (e *env) signInAsOperator(ctx context.Context) {
	e.t.Helper()
	e.run(ctx, "sign in as operator",
		chromedp.Navigate(e.srv.URL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("token"), operatorToken),
		chromedp.Click(chromedp.ID("login-operator")),
		chromedp.WaitVisible(chromedp.CSS(".signout")),
	)
}

// TestConsoleOperatorDisconnectsAndDeadLetters: the operator files a disconnect
// as a dry run, then for real through the confirmation; finds both in the
// list and the audit CSV; sets and dry-runs a policy; inspects a dead
// letter (its body shown as text), re-drives it to its consumer and purges
// another after confirming; and reads the streams' pending counts.
func TestConsoleOperatorDisconnectsAndDeadLetters(t *testing.T) {
	ow := &operatorWorld{}
	e := newEnv(t, withAdminPages, ow.option)
	op := e.browser
	e.signInAsOperator(op)
	var connected []string
	for _, x := range ow.ent.ExternalTeams {
		if x.ConnectionStatus == "CONNECTED" {
			connected = append(connected, x.ID)
		}
	}
	if len(connected) < 2 {
		t.Fatalf("the emulated Grid org has %d connected external teams, the test needs 2", len(connected))
	}
	target := connected[0]

	// a dry run first
	fill := func(what string, dry bool) {
		t.Helper()
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(e.srv.URL + "/console/operator/disconnects"),
			chromedp.Click(chromedp.ID("new-disconnect")),
			chromedp.WaitVisible(chromedp.ID("disconnect-form")),
			chromedp.SendKeys(chromedp.ID("enterprise"), ow.ent.ID),
			chromedp.SendKeys(chromedp.ID("target"), target),
			chromedp.SendKeys(chromedp.ID("reason"), "contract ended"),
		}
		if !dry {
			steps = append(steps, chromedp.Click(chromedp.ID("dry_run"))) // untick
		}
		e.run(op, what, append(steps, chromedp.Click(chromedp.ID("file-disconnect")))...)
	}
	fill("disconnect dry run", true)
	e.waitURL(op, "/console/operator/disconnects/dr-")
	e.until(op, `document.getElementById("request-state")?.textContent === "completed"`, "the dry run completes")
	dryID := value(e, op, "dry run id", chromedp.Evaluate[string](`location.pathname.split("/").pop()`))
	contains(t, e.text(op, "#request"), "would disconnect "+target, "the dry run's message")
	contains(t, e.text(op, "#audit"), "completed", "the dry run's audit trail")
	if s := ow.status(target); s != "CONNECTED" {
		t.Fatalf("the dry run changed %s to %s", target, s)
	}

	// for real: the confirmation comes first
	fill("disconnect for real", false)
	e.run(op, "the confirmation", chromedp.WaitVisible(chromedp.ID("confirm")))
	contains(t, e.text(op, "#confirm"), "Disconnect external organization "+target, "the confirmation")
	if s := ow.status(target); s != "CONNECTED" {
		t.Fatal("the confirmation page disconnected")
	}
	e.run(op, "confirm the disconnect", chromedp.Click(chromedp.ID("confirm-disconnect")))
	e.waitURL(op, "/console/operator/disconnects/dr-")
	e.until(op, `document.getElementById("request-state")?.textContent === "completed"`, "the disconnect completes")
	realID := value(e, op, "request id", chromedp.Evaluate[string](`location.pathname.split("/").pop()`))
	e.run(op, "disconnect status", chromedp.WaitVisible(chromedp.ID("audit")))
	if s := ow.status(target); s != "DISCONNECTED" {
		t.Fatalf("after the disconnect %s is %s", target, s)
	}

	// the list, filtered by state
	e.run(op, "disconnect list",
		chromedp.Click(chromedp.CSS(`nav a[href$="/console/operator/disconnects"]`)),
		chromedp.WaitVisible(chromedp.ID("requests")),
		chromedp.SetValue(chromedp.ID("f-state"), "completed"),
		chromedp.Click(chromedp.ID("apply-filter")),
	)
	e.waitURL(op, "state=completed")
	list := e.text(op, "#requests")
	contains(t, list, dryID, "the list")
	contains(t, list, realID, "the list")

	// the audit trail as CSV
	e.run(op, "audit", chromedp.Click(chromedp.ID("audit")), chromedp.WaitVisible(chromedp.ID("audit-csv")))
	body := value(e, op, "audit CSV", chromedp.Evaluate[string](`fetch(document.getElementById("audit-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) < 4 {
		t.Fatalf("audit CSV: %v %q", err, body)
	}
	for _, id := range []string{dryID, realID} {
		if !strings.Contains(body, id) {
			t.Fatalf("the audit CSV lacks %s:\n%s", id, body)
		}
	}

	// a policy that allows only one team, run dry
	allowed := connected[1]
	e.run(op, "policies",
		chromedp.Navigate(e.srv.URL+"/console/operator/disconnects/policies"),
		chromedp.SendKeys(chromedp.ID("p-enterprise"), ow.ent.ID),
		chromedp.SendKeys(chromedp.ID("p-name"), "partners"),
		chromedp.SendKeys(chromedp.ID("p-allowlist"), allowed),
		chromedp.Click(chromedp.ID("save-policy")),
		chromedp.WaitVisible(chromedp.ID("saved")),
		chromedp.Click(chromedp.ID("dry-run-partners")),
		chromedp.WaitVisible(chromedp.ID("policy-report")),
	)
	// every team still connected (or in review) but the allowed one breaks it
	var violators []string
	for _, x := range ow.grid.World().Enterprises[0].ExternalTeams {
		if x.ConnectionStatus != "DISCONNECTED" && x.ID != allowed {
			violators = append(violators, x.ID)
		}
	}
	report := e.text(op, "#policy-report")
	contains(t, report, strconv.Itoa(len(violators))+" of "+strconv.Itoa(len(ow.ent.ExternalTeams))+" external organizations break the policy", "the policy's dry run")
	for _, id := range violators {
		contains(t, e.text(op, "#violations"), id, "the policy's violators")
	}
	if strings.Contains(e.text(op, "#violations"), allowed) {
		t.Fatal("the allowed team is reported")
	}

	// a dead letter: inspect, re-drive
	first := `{"text":"<script>window.pwned=1</script>"}`
	id := e.deadLetter(first)
	e.run(op, "dead letters",
		chromedp.Click(chromedp.CSS(`nav a[href$="/console/operator/dlq"]`)),
		chromedp.WaitVisible(chromedp.ID("dead-letters")),
	)
	contains(t, e.text(op, "#dl-"+strconv.FormatUint(id, 10)), "cannot handle <b>this</b> yet", "the dead letter's error, as text")
	e.run(op, "dead letter", chromedp.Click(chromedp.ID("show-"+strconv.FormatUint(id, 10))), chromedp.WaitVisible(chromedp.ID("body")))
	contains(t, e.text(op, "#body"), "<script>window.pwned=1</script>", "the body, as text")
	contains(t, e.text(op, "#headers"), events.HeaderDLQConsumer, "the headers")
	if safe := value(e, op, "no script ran", chromedp.Evaluate[bool](`window.pwned === undefined && document.querySelector("#body script") === null`)); !safe {
		t.Fatal("the dead letter's body became markup")
	}
	e.run(op, "re-drive", chromedp.Click(chromedp.ID("redrive")))
	e.waitURL(op, "redriven=")
	contains(t, e.text(op, "#notice"), "re-driven", "after the re-drive")
	testenv.Eventually(t, 10*time.Second, func() bool { return ow.took(first) }, "the consumer never got the re-driven message")
	e.present(op, "#no-dead-letters")

	// another: purge it, after confirming
	e.deadLetter(`{"text":"second"}`)
	e.run(op, "purge",
		chromedp.Navigate(e.srv.URL+"/console/operator/dlq"),
		chromedp.Click(chromedp.ID("purge")),
		chromedp.WaitVisible(chromedp.ID("confirm")),
	)
	contains(t, e.text(op, "#purge-count"), "Purge 1 dead letter", "the purge confirmation")
	e.run(op, "confirm the purge", chromedp.Click(chromedp.ID("confirm-purge")))
	e.waitURL(op, "purged=1")
	e.present(op, "#no-dead-letters")
	if list, err := ops.ListDeadLetters(context.Background(), e.nats.JS, ops.DLQFilter{}); err != nil || len(list) != 0 {
		t.Fatalf("after the purge: %d dead letters, %v", len(list), err)
	}

	// more than a page of them (50 a page): read a page at a time
	for i := range 52 {
		msg := nats.NewMsg(testSubject)
		msg.Data = []byte(`{"n":` + strconv.Itoa(i) + `}`)
		msg.Header.Set(events.HeaderSchema, "1")
		if _, err := e.nats.JS.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		page, err := ops.ListDeadLetterPage(context.Background(), e.nats.JS, ops.DLQFilter{}, 0, 1)
		return err == nil && page.Total == 52
	}, "the dead letters were not parked")
	e.run(op, "a full DLQ", chromedp.Navigate(e.srv.URL+"/console/operator/dlq"), chromedp.WaitVisible(chromedp.ID("dead-letters")))
	contains(t, e.text(op, "#dlq-count"), "52 dead letters, showing 1–50", "the first page")
	e.absent(op, "#first-page")
	e.run(op, "the next page", chromedp.Click(chromedp.ID("next-page")))
	e.waitURL(op, "after=")
	contains(t, e.text(op, "#dlq-count"), "52 dead letters, showing 51–52", "the second page")
	if rows := value(e, op, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#dead-letters tbody tr").length`)); rows != 2 {
		t.Fatalf("the second page shows %d rows, want 2", rows)
	}
	e.absent(op, "#next-page")
	e.run(op, "back to the first page", chromedp.Click(chromedp.ID("first-page")), chromedp.WaitVisible(chromedp.ID("next-page")))
	contains(t, e.text(op, "#dlq-count"), "showing 1–50", "the first page again")
	if _, err := ops.PurgeDeadLetters(context.Background(), e.nats.JS, ops.DLQFilter{}); err != nil {
		t.Fatal(err)
	}

	// streams and consumers
	e.run(op, "streams",
		chromedp.Click(chromedp.CSS(`nav a[href$="/console/operator/streams"]`)),
		chromedp.WaitVisible(chromedp.ID("stream-"+events.StreamApp)),
	)
	contains(t, e.text(op, "#consumer-"+testConsumer), testSubject, "the test consumer's row")
	contains(t, e.text(op, "#stream-"+events.StreamDisconnect), "disconnect", "the disconnect worker's consumer")

	// every org's workspaces, then one org's
	e.adminWorld()
	e.run(op, "every org's workspaces",
		chromedp.Click(chromedp.CSS(`nav a[href$="/console/workspaces"]`)),
		chromedp.WaitVisible(chromedp.ID("workspaces")),
	)
	all := e.text(op, "#workspaces")
	contains(t, all, "T0CONSOLE1", "every org's workspaces")
	contains(t, all, "T0GLOBEX01", "every org's workspaces")
	e.run(op, "one org's workspaces",
		chromedp.SendKeys(chromedp.ID("org"), globex),
		chromedp.Click(chromedp.ID("apply-org")),
	)
	e.waitURL(op, "/console/orgs/"+globex+"/workspaces")
	if one := e.text(op, "#workspaces"); strings.Contains(one, "T0CONSOLE1") || !strings.Contains(one, "T0GLOBEX01") {
		t.Fatalf("Globex's workspaces: %s", one)
	}
}
