package disconnect_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// BenchmarkDisconnect500 queues 500 requests for one enterprise against the
// emulator's Tier 1 limit with two worker replicas, and reports completion
// time against the rate-limit floor (500 calls at one a minute) and the
// number of 429s, at time scale 300 (one emulated minute = 200 ms) and 1200
// (50 ms, where a few milliseconds of call latency is a visible share).
//
//	go test -run '^$' -bench BenchmarkDisconnect500 -benchtime 1x ./workers/disconnect/
func BenchmarkDisconnect500(b *testing.B) {
	for _, benchScale := range []float64{300, 1200} {
		b.Run(fmt.Sprintf("scale=%v", benchScale), func(b *testing.B) { benchDisconnect(b, 500, benchScale) })
	}
}

func benchDisconnect(b *testing.B, n int, benchScale float64) {
	for range b.N {
		b.StopTimer()
		e := benchEnv(b, benchScale, n)
		w1 := e.benchWorker(b, "w1", benchScale)
		w2 := e.benchWorker(b, "w2", benchScale)
		e.benchRun(b, w1)
		e.benchRun(b, w2)
		teams := e.emu.World().Enterprises[0].ExternalTeams
		b.StartTimer()
		start := time.Now()
		for i := range n {
			req := events.DisconnectRequest{SchemaVersion: 1, RequestID: fmt.Sprintf("bench-%d", i), EnterpriseID: e.ent.ID,
				TargetTeam: teams[i].ID, Reason: "benchmark", RequestedBy: "bench"}
			if _, err := disconnect.PublishRequest(context.Background(), e.nats.JS, req); err != nil {
				b.Fatal(err)
			}
		}
		testenv.Eventually(b, 10*time.Minute, func() bool {
			done := 0
			for i := range n {
				for _, r := range e.results.of(fmt.Sprintf("bench-%d", i)) {
					if r.State.Final() {
						done++
						break
					}
				}
			}
			return done == n
		}, "not all %d requests finished", n)
		wall := time.Since(start)
		b.StopTimer()
		floor := time.Duration(float64(n) * float64(time.Minute) / benchScale)
		var r429, ok int
		for _, c := range e.emu.Calls("") {
			if c.Status == 429 {
				r429++
				b.Logf("429: %s at %s", c.Method, c.Time.Format("15:04:05.000"))
			}
			if c.Method == slackapi.MethodExternalTeamsDisconnect && c.OK {
				ok++
			}
		}
		completed := 0
		for i := range n {
			for _, r := range e.results.of(fmt.Sprintf("bench-%d", i)) {
				if r.State == events.DisconnectCompleted {
					completed++
				}
			}
		}
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(floor.Seconds(), "floor-s")
		b.ReportMetric(wall.Seconds()/floor.Seconds(), "x-floor")
		b.ReportMetric(float64(r429), "429s")
		b.ReportMetric(float64(ok), "disconnect-calls")
		b.ReportMetric(float64(completed), "completed")
		if r429 != 0 || ok != n || completed != n {
			b.Fatalf("429s = %d, successful calls = %d, completed = %d (want 0, %d, %d)", r429, ok, completed, n, n)
		}
	}
}

type benchEnvT struct{ *env }

func benchEnv(b *testing.B, scale float64, teams int) benchEnvT {
	b.Helper()
	e := &env{nats: testenv.StartNATS(b), redis: testenv.StartRedis(b),
		emu: slackemu.StartTest(b, slackemu.Config{TimeScale: scale, ExternalTeams: teams, Users: 1, Workspaces: -1, Groups: -1, MaxCalls: 100000})}
	e.nats.EnsureStreams(b)
	var err error
	if e.slack, err = slackapi.New(e.emu.APIURL()); err != nil {
		b.Fatal(err)
	}
	e.ent = e.emu.World().Enterprises[0]
	tok, err := e.emu.MintToken(slackemu.TokenRequest{EnterpriseID: e.ent.ID})
	if err != nil {
		b.Fatal(err)
	}
	e.installs = installStore(b, e.redis, e.emu.AppID())
	org := store.Installation{AppID: e.installs.AppID, EnterpriseID: e.ent.ID, IsEnterpriseInstall: true, BotToken: store.Secret(tok.Token), Scopes: tok.Scopes}
	if err := e.installs.Store.Save(context.Background(), &org); err != nil {
		b.Fatal(err)
	}
	e.results = watchResults(b, e.nats.JS)
	return benchEnvT{e}
}

func (e benchEnvT) benchWorker(b *testing.B, id string, scale float64) *disconnect.Worker {
	w, err := disconnect.New(disconnect.Deps{JS: e.nats.JS, Redis: e.redis.Client, Slack: e.slack, Installations: e.installs},
		disconnect.Config{TimeScale: scale, WorkerID: id})
	if err != nil {
		b.Fatal(err)
	}
	return w
}
