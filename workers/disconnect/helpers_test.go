package disconnect_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// scale makes one emulated Tier 1 minute pass in 50 ms.
const scale = 1200

type env struct {
	t        *testing.T
	nats     *testenv.NATS
	redis    *testenv.Redis
	emu      *slackemu.Emulator
	slack    *slackapi.Client
	installs disconnect.StoreInstallations
	ent      slackemu.EnterpriseInfo
	token    string
	results  *results
}

func newEnv(t *testing.T, emuCfg slackemu.Config) *env {
	t.Helper()
	if emuCfg.TimeScale == 0 {
		emuCfg.TimeScale = scale
	}
	if emuCfg.Users == 0 {
		emuCfg.Users = 3
	}
	if emuCfg.ExternalTeams == 0 {
		emuCfg.ExternalTeams = 8
	}
	emuCfg.Workspaces = -1
	emuCfg.Groups = -1
	e := &env{t: t, nats: testenv.StartStreams(t), redis: testenv.StartRedis(t), emu: slackemu.StartTest(t, emuCfg)}
	var err error
	if e.slack, err = slackapi.New(e.emu.APIURL()); err != nil {
		t.Fatal(err)
	}
	e.ent = e.emu.World().Enterprises[0]
	tok, err := e.emu.MintToken(slackemu.TokenRequest{EnterpriseID: e.ent.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.token = tok.Token
	e.installs = installStore(t, e.redis, e.emu.AppID())
	e.install(store.Installation{EnterpriseID: e.ent.ID, IsEnterpriseInstall: true, BotToken: store.Secret(tok.Token), Scopes: tok.Scopes})
	for _, ws := range e.ent.Workspaces {
		e.install(store.Installation{EnterpriseID: e.ent.ID, TeamID: ws, BotToken: "xoxb-workspace", Scopes: []string{"commands"}})
	}
	e.results = watchResults(t, e.nats.JS)
	return e
}

func (e *env) config(c disconnect.Config) disconnect.Config {
	if c.TimeScale == 0 {
		c.TimeScale = scale
	}
	if c.AckWait == 0 {
		c.AckWait = 5 * time.Second
	}
	return c
}

func (e *env) worker(c disconnect.Config) *disconnect.Worker {
	e.t.Helper()
	w, err := disconnect.New(disconnect.Deps{JS: e.nats.JS, Redis: e.redis.Client, Slack: e.slack, Installations: e.installs}, e.config(c))
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// run starts a runner for w; the returned stop ends it and returns Run's error.
func (e *env) run(w *disconnect.Worker, shutdown time.Duration) (stop func() error) {
	e.t.Helper()
	return startRunner(e.t, e.nats.JS, w, shutdown)
}

func (e benchEnvT) benchRun(b *testing.B, w *disconnect.Worker) {
	startRunner(b, e.nats.JS, w, 5*time.Second)
}

func startRunner(tb testing.TB, js jetstream.JetStream, w *disconnect.Worker, shutdown time.Duration) (stop func() error) {
	r, err := bus.NewRunner(js, testLogger(tb), nil, bus.RunnerConfig{ShutdownTimeout: shutdown, DisableMaxDeliveriesCapture: true})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Register(r); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := r.Run(ctx)
		if err != nil && ctx.Err() == nil {
			tb.Logf("runner stopped: %v", err)
		}
		done <- err
	}()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	tb.Cleanup(func() { _ = stop() })
	return stop
}

func (e *env) request(id, target string, mut ...func(*events.DisconnectRequest)) events.DisconnectRequest {
	e.t.Helper()
	req := events.DisconnectRequest{SchemaVersion: 1, RequestID: id, EnterpriseID: e.ent.ID, TargetTeam: target,
		Reason: "test " + id, RequestedBy: "tester"}
	for _, m := range mut {
		m(&req)
	}
	e.publishRaw(events.DisconnectRequestSubject(req.EnterpriseID), id, req)
	return req
}

func (e *env) publishRaw(subject, msgID string, v any) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := events.NewPublisher(e.nats.JS).Publish(ctx, subject, msgID, v); err != nil {
		e.t.Fatal(err)
	}
}

// connected returns the ids of external teams currently CONNECTED.
func (e *env) connected() []string {
	var out []string
	for _, x := range e.emu.World().Enterprises[0].ExternalTeams {
		if x.ConnectionStatus == "CONNECTED" {
			out = append(out, x.ID)
		}
	}
	return out
}

func (e *env) status(team string) string {
	for _, x := range e.emu.World().Enterprises[0].ExternalTeams {
		if x.ID == team {
			return x.ConnectionStatus
		}
	}
	return ""
}

func (e *env) disconnectCalls(target string) []slackemu.Call {
	var out []slackemu.Call
	for _, c := range e.emu.Calls(slackapi.MethodExternalTeamsDisconnect) {
		if target == "" || c.Args["target_team"] == target {
			out = append(out, c)
		}
	}
	return out
}

// final waits for the request's final result.
func (e *env) final(t *testing.T, id string, within time.Duration) events.DisconnectResult {
	t.Helper()
	var res events.DisconnectResult
	testenv.Eventually(t, within, func() bool {
		for _, r := range e.results.of(id) {
			if r.State.Final() {
				res = r
				return true
			}
		}
		return false
	}, "no final result for %s; got %v", id, func() []events.DisconnectState { return e.results.states(id) }())
	return res
}

// results collects every result message.
type results struct {
	mu   sync.Mutex
	byID map[string][]events.DisconnectResult
}

func watchResults(t testing.TB, js jetstream.JetStream) *results {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, events.StreamDisconnect, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"disconnect.results.>"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &results{byID: map[string][]events.DisconnectResult{}}
	cc, err := c.Consume(func(m jetstream.Msg) {
		var res events.DisconnectResult
		if err := json.Unmarshal(m.Data(), &res); err != nil {
			return
		}
		r.mu.Lock()
		r.byID[res.RequestID] = append(r.byID[res.RequestID], res)
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return r
}

func (r *results) of(id string) []events.DisconnectResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.DisconnectResult(nil), r.byID[id]...)
}

func (r *results) states(id string) []events.DisconnectState {
	var out []events.DisconnectState
	for _, x := range r.of(id) {
		out = append(out, x.State)
	}
	return out
}

func joinStates(s []events.DisconnectState) string {
	var parts []string
	for _, x := range s {
		parts = append(parts, string(x))
	}
	return strings.Join(parts, ",")
}

var errKilled = errors.New("worker killed")

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DISCONNECT_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// installStore is the binding worker's installation store (tokens sealed) on r,
// seen by the disconnect worker for app appID.
func installStore(t testing.TB, r *testenv.Redis, appID string) disconnect.StoreInstallations {
	t.Helper()
	keys, err := store.ParseKeyring(store.GenerateKeySpec("k1"))
	if err != nil {
		t.Fatal(err)
	}
	return disconnect.StoreInstallations{Store: store.NewInstallations(r.Client, keys), AppID: appID}
}

// install saves an installation of the emulator's app, as the binding worker does after OAuth.
func (e *env) install(in store.Installation) {
	e.t.Helper()
	in.AppID = e.installs.AppID
	if err := e.installs.Store.Save(context.Background(), &in); err != nil {
		e.t.Fatal(err)
	}
}
