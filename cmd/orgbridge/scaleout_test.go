package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/config"
	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/disconnect"
	"github.com/orgbridge/orgbridge/workers/mapping"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// The world of TestScaleOut: a standalone workspace whose people open the App
// Home, run /orgbridge and are deactivated (binding and mapping traffic); the
// workspace an org provisions from; a Grid org with external teams to
// disconnect.
const (
	soScale      = 300 // a Tier 1 minute passes in 200 ms; response URLs live 6 s
	soTeam       = "T0SCALE01"
	soProvTeam   = "T0PROV001"
	soProvAdmin  = "U0PADMIN1"
	soGrid       = "E0SCALE01"
	soOrg        = "00D000000000001" // the org emulator's acme; alice is its admin
	soHomes      = 24                // App Home opens, one per user
	soCommands   = 24                // /orgbridge help, one per user
	soSlackGone  = 16                // Slack users deactivated (user_change)
	soOrgGone    = 16                // org users deactivated (org.user.deactivated)
	soDisconnect = 10                // disconnect requests
	soReplicas   = 3
)

func soUser(i int) string    { return fmt.Sprintf("U0S%06d", i) }
func soOrgUser(i int) string { return fmt.Sprintf("005SCALE%07d", i) }
func soExternal(i int) string {
	return fmt.Sprintf("T1EXT%04d", i)
}

// soWorld writes the Slack emulator's seed file.
func soWorld(t *testing.T) string {
	t.Helper()
	users := []map[string]any{
		{"id": soProvAdmin, "team_id": soProvTeam, "name": "alice", "first_name": "Alice", "last_name": "Archer", "email": "alice@acme.example", "is_admin": true},
		{"id": "U0PMEMB01", "team_id": soProvTeam, "name": "frank", "first_name": "Frank", "last_name": "Fox", "email": "frank@acme.example"},
		{"id": "U0PMEMB02", "team_id": soProvTeam, "name": "grace", "first_name": "Grace", "last_name": "Gale", "email": "grace@acme.example"},
		{"id": "W0GRID001", "team_id": "T0GRID001", "name": "gadmin", "email": "gadmin@grid.example", "is_admin": true},
	}
	for i := 1; i <= soHomes+soSlackGone; i++ {
		users = append(users, map[string]any{"id": soUser(i), "team_id": soTeam, "name": fmt.Sprintf("person%d", i),
			"first_name": "Person", "last_name": fmt.Sprint(i), "email": fmt.Sprintf("person%d@scale.example", i)})
	}
	var external []map[string]any
	for i := 1; i <= soDisconnect; i++ {
		external = append(external, map[string]any{"id": soExternal(i), "enterprise_id": soGrid, "name": fmt.Sprintf("Partner %d", i),
			"connection_status": "CONNECTED", "last_active_timestamp": time.Now().Add(-time.Hour).Unix()})
	}
	world := map[string]any{
		"enterprises": []map[string]any{{"id": soGrid, "name": "Grid Co"}},
		"workspaces": []map[string]any{{"id": soTeam, "name": "Scale"}, {"id": soProvTeam, "name": "Acme Slack"},
			{"id": "T0GRID001", "name": "Grid HQ", "enterprise_id": soGrid}},
		"users":          users,
		"external_teams": external,
	}
	b, err := json.Marshal(world)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "slack.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// soReplica is one `orgbridge worker` process's worth: its own NATS
// connection (to its own node first), Redis client, registry and logger.
type soReplica struct {
	id   string
	reg  *prometheus.Registry
	live *natsWatch
	done chan error
}

// TestScaleOut runs three worker replicas — runWorkers, what `orgbridge
// worker` runs, each with its own NATS connection to a different node of a
// 3-node cluster with R3 streams, its own Redis client and registry — behind
// one ingress, against the Slack and org emulators, and checks what a user
// would notice: every consumer is shared (traffic for each worker takes
// effect once, the busy consumers' messages are spread over replicas, all
// drain); the three replicas, starting together with a provisioning slot
// due, run it once; disconnects from another system are paced at Slack's
// Tier 1 across the replicas, never answered 429, and made by more than one.
func TestScaleOut(t *testing.T) {
	began := time.Now()
	logs := &soLogs{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("ORGBRIDGE_TEST_LOGS") != "" {
			t.Logf("logs (warnings and up; ORGBRIDGE_TEST_LOGS=1 for all):\n%s", logs.String())
		}
	})
	cluster := testenv.StartNATSCluster(t)
	rd := testenv.StartRedis(t)
	sl := slackemu.StartTest(t, slackemu.Config{SeedFile: soWorld(t), TimeScale: soScale})
	og := orgemu.StartTest(t, orgemu.Config{})
	keySpec := store.GenerateKeySpec("k1")
	env := map[string]string{
		"REDIS_URL": rd.URL(), "ORGBRIDGE_ENCRYPTION_KEYS": keySpec, "ORGBRIDGE_STREAM_REPLICAS": "3",
		"ORGBRIDGE_TIME_SCALE": fmt.Sprint(soScale), "ORGBRIDGE_SHUTDOWN_TIMEOUT": "5s", "ORGBRIDGE_HTTP_ADDR": freeAddr(t),
		"SLACK_SIGNING_SECRET": sl.SigningSecret(), "SLACK_API_URL": sl.APIURL(), "SLACK_OAUTH_URL": sl.URL() + "/oauth/v2/authorize",
		"SLACK_CLIENT_ID": sl.ClientID(), "SLACK_CLIENT_SECRET": sl.ClientSecret(), "SLACK_APP_ID": sl.AppID(),
		"ORG_LOGIN_URL": og.URL(), "ORG_CLIENT_ID": "orgbridge-test", "ORG_CLIENT_SECRET": "orgbridge-test",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := bus.EnsureStreams(ctx, cluster.JS, cfg.Streams); err != nil {
		t.Fatal(err)
	}
	keys, err := store.ParseKeyring(keySpec)
	if err != nil {
		t.Fatal(err)
	}

	// State from before: the app installed in the workspace and org-wide in
	// the Grid org, people mapped to org users, an integration connected
	// yesterday whose daily slot passed a minute ago.
	installs := store.NewInstallations(rd.Client, keys)
	soInstall(t, sl, installs, slackemu.TokenRequest{TeamID: soTeam}, store.Installation{TeamID: soTeam})
	soInstall(t, sl, installs, slackemu.TokenRequest{EnterpriseID: soGrid}, store.Installation{EnterpriseID: soGrid, IsEnterpriseInstall: true})
	maps := mapping.NewStore(rd.Client, keys)
	for i := 1; i <= soOrgGone+soSlackGone; i++ {
		u := soUser(i)
		if i > soOrgGone {
			u = soUser(soHomes + i - soOrgGone) // the Slack users deactivated below
		}
		if _, err := maps.Connect(ctx, &mapping.Mapping{Workspace: soTeam, SlackUserID: u, OrgID: soOrg, OrgUserID: soOrgUser(i),
			Username: fmt.Sprintf("user%d@acme.example", i), Source: "import"}); err != nil {
			t.Fatal(err)
		}
	}
	slot, runID := soConnectYesterday(t, ctx, cfg, cluster.JS, rd.Client, keys, sl, og)

	// The ingress, and the three replicas started together.
	reg := prometheus.NewRegistry()
	ingressDone := make(chan error, 1)
	ictx, stopIngress := context.WithCancel(ctx)
	defer stopIngress()
	// A port found free can be taken by another test before the ingress
	// listens: it says so at once, and starts again on another.
	for attempt := 1; ; attempt++ {
		go func(cfg config.Config) {
			ingressDone <- serveIngress(ictx, cfg, cluster.URLs(), rd.Client, reg, logs.logger("ingress"))
		}(cfg)
		var exited error
		testenv.Eventually(t, 30*time.Second, func() bool {
			select {
			case exited = <-ingressDone:
				return true
			default:
			}
			resp, err := http.Get("http://" + cfg.HTTPAddr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, "the ingress never became ready")
		if exited == nil {
			break
		}
		if attempt == 3 || !strings.Contains(exited.Error(), "cannot listen") {
			t.Fatalf("the ingress stopped at start: %v", exited)
		}
		cfg.HTTPAddr = freeAddr(t)
		reg = prometheus.NewRegistry()
	}
	sl.SetIngressURL("http://" + cfg.HTTPAddr)

	// Each replica's scheduler ticks as it starts; the test's barrier in their
	// Redis clients holds each first tick until all three have begun theirs,
	// so all three look at the due slot at the same moment.
	ticks := &soBarrier{key: store.Key(store.GlobalTenant, "prov", "orgs"), want: soReplicas, open: make(chan struct{})}
	nodes := strings.Split(cluster.URLs(), ",")
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	replicas := make([]*soReplica, soReplicas)
	for i := range replicas {
		r := &soReplica{id: fmt.Sprintf("replica-%d", i), reg: prometheus.NewRegistry(), live: &natsWatch{}, done: make(chan error, 1)}
		rcfg := cfg
		rcfg.WorkerID = r.id
		rdb, err := openRedis(ctx, rcfg.Redis)
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		rdb.AddHook(&soTickHook{b: ticks})
		urls := strings.Join(append(slices.Clone(nodes[i:]), nodes[:i]...), ",") // its own node first
		replicas[i] = r
		go func() {
			r.done <- runWorkers(wctx, rcfg, urls, rdb, r.reg, logs.logger(r.id), nil, r.live, nats.DontRandomize())
		}()
	}
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		stopWorkers()
		for _, r := range replicas {
			select {
			case err := <-r.done:
				if err != nil {
					t.Errorf("%s stopped with %v", r.id, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", r.id)
			}
		}
		stopIngress()
		select {
		case err := <-ingressDone:
			if err != nil {
				t.Errorf("the ingress stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the ingress did not stop within 30s")
		}
	}
	defer stopAll()

	// Every replica on its own node, and every durable consumer pulled by all three.
	servers := map[string]string{}
	testenv.Eventually(t, 30*time.Second, func() bool {
		for _, r := range replicas {
			c := r.live.watched()
			if len(c) != 1 || !c[0].IsConnected() {
				return false
			}
			servers[r.id] = c[0].ConnectedServerName()
		}
		return true
	}, "the replicas did not all connect")
	seen := map[string]bool{}
	for _, s := range servers {
		seen[s] = true
	}
	if len(seen) != soReplicas {
		t.Errorf("replicas connected to %v; want each on its own node", servers)
	}
	durables := []string{binding.DurableInstalls, binding.DurableUninstalls, binding.DurableConnects, binding.DurableCommands,
		binding.DurableInteractions, binding.DurableHome, binding.DurableDeadLetters, mapping.DurableSlackUsers, mapping.DurableOrgUsers,
		"disconnect", "provisioning", provisioning.DurableEvents, bus.DefaultCaptureDurable}
	var consumers []*jetstream.ConsumerInfo
	testenv.Eventually(t, 30*time.Second, func() bool {
		consumers = soConsumers(t, ctx, cluster.JS)
		pulled := 0
		for _, ci := range consumers {
			if slices.Contains(durables, ci.Name) && ci.NumWaiting >= soReplicas {
				pulled++
			}
		}
		return pulled == len(durables) && len(consumers) == len(durables)
	}, "not every durable consumer (%s) is pulled by the three replicas: %s", strings.Join(durables, ", "),
		soLazy(func() string { return strings.Join(soWaiting(consumers), " ") }))
	for _, ci := range consumers {
		if ci.Config.Replicas != 0 && ci.Config.Replicas != 3 || len(ci.Cluster.Replicas) != 2 {
			t.Errorf("consumer %s: %d replicas, cluster %+v; want it on all three nodes", ci.Name, ci.Config.Replicas, ci.Cluster)
		}
	}
	t.Logf("replicas on nodes %v; %d durable consumers, each with a pull waiting from every replica (%s); ready after %s",
		servers, len(consumers), strings.Join(soWaiting(consumers), " "), time.Since(began).Round(time.Millisecond))

	// The traffic: people in Slack, the org's system and another system's disconnects.
	results := soWatchResults(t, ctx, cluster.JS)
	load := time.Now()
	var g errgroup.Group
	delivered := func(what string, d slackemu.Delivery, err error) error {
		if err != nil || d.Status != http.StatusOK {
			return fmt.Errorf("%s: answered %d %q (%v)", what, d.Status, d.Error, err)
		}
		return nil
	}
	g.Go(func() error {
		for i := 1; i <= soHomes; i++ {
			d, err := sl.DeliverEvent(soTeam, map[string]any{"type": "app_home_opened", "user": soUser(i), "tab": "home", "channel": "D0" + soUser(i)})
			if err := delivered("app_home_opened of "+soUser(i), d, err); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		for i := 1; i <= soCommands; i++ {
			d, err := sl.DeliverCommand(slackemu.Command{TeamID: soTeam, UserID: soUser(i), Command: binding.DefaultPlatformCmd, Text: "help"})
			if err := delivered("/orgbridge help of "+soUser(i), d, err); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		for i := 1; i <= soSlackGone; i++ {
			d, err := sl.DeactivateUser(soUser(soHomes + i))
			if err := delivered("user_change of "+soUser(soHomes+i), d, err); err != nil {
				return err
			}
		}
		return nil
	})
	pub := events.NewPublisher(cluster.JS)
	g.Go(func() error {
		for i := 1; i <= soOrgGone; i++ {
			ev := events.OrgUserDeactivated{SchemaVersion: events.SchemaVersion, OrgID: soOrg, OrgUserID: soOrgUser(i)}
			if _, err := pub.Publish(ctx, events.OrgUserDeactivatedSubject(soOrg), "gone-"+soOrgUser(i), ev); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		for i := 1; i <= soDisconnect; i++ {
			req := events.DisconnectRequest{SchemaVersion: events.SchemaVersion, RequestID: fmt.Sprintf("scale-%d", i), EnterpriseID: soGrid,
				TargetTeam: soExternal(i), Reason: "contract ended", RequestedBy: "partner-offboarding"}
			if _, err := pub.Publish(ctx, events.DisconnectRequestSubject(soGrid), req.RequestID, req); err != nil {
				return err
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	// Effects, once each.
	testenv.Eventually(t, 30*time.Second, func() bool {
		return len(soMessages(sl, "views.publish")) >= soHomes && len(soMessages(sl, "response_url")) >= soCommands
	}, "App Homes published %s of %d, commands answered %s of %d",
		soLazy(func() string { return fmt.Sprint(len(soMessages(sl, "views.publish"))) }), soHomes,
		soLazy(func() string { return fmt.Sprint(len(soMessages(sl, "response_url"))) }), soCommands)
	testenv.Eventually(t, 30*time.Second, func() bool {
		for i := 1; i <= soOrgGone+soSlackGone; i++ {
			u := soUser(i)
			if i > soOrgGone {
				u = soUser(soHomes + i - soOrgGone)
			}
			if _, err := maps.Get(ctx, soTeam, u); !errors.Is(err, mapping.ErrNotFound) {
				return false
			}
		}
		return true
	}, "the deactivated users' mappings were not all revoked")
	for i := 1; i <= soDisconnect; i++ {
		id := fmt.Sprintf("scale-%d", i)
		testenv.Eventually(t, 30*time.Second, func() bool { return results.final(id) != "" }, "no final result for %s: %s", id,
			soLazy(func() string { return fmt.Sprint(results.states(id)) }))
		if s := results.final(id); s != events.DisconnectCompleted {
			t.Errorf("disconnect %s ended %s, want completed", id, s)
		}
	}
	prov := provisioning.NewStore(rd.Client, keys)
	var runs []*provisioning.Run
	testenv.Eventually(t, 30*time.Second, func() bool {
		runs, err = prov.Runs(ctx, soOrg, 10)
		return err == nil && len(runs) > 0 && runs[0].Status.Final()
	}, "the scheduled run did not finish: %s", soLazy(func() string {
		var out []string
		for _, r := range runs {
			out = append(out, fmt.Sprintf("%s %s %s %s", r.ID, r.Trigger, r.Status, r.Error))
		}
		return fmt.Sprintf("%v (%v)", out, err)
	}))
	took := time.Since(load)

	// Drained: nothing pending or unacknowledged on any consumer, nothing dead-lettered.
	testenv.Eventually(t, 30*time.Second, func() bool {
		consumers = soConsumers(t, ctx, cluster.JS)
		for _, ci := range consumers {
			if ci.NumPending != 0 || ci.NumAckPending != 0 {
				return false
			}
		}
		return true
	}, "consumers not drained: %s", soLazy(func() string { return strings.Join(soBacklog(consumers), ", ") }))
	if s, err := cluster.JS.Stream(ctx, events.StreamDLQ); err != nil {
		t.Error(err)
	} else if n := s.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%d messages were dead-lettered, want none", n)
	}

	// a) every consumer took its traffic once, the busy ones on more than one replica.
	counts := make([]map[string]map[string]float64, len(replicas))
	for i, r := range replicas {
		counts[i] = soBusCounts(t, r.reg)
	}
	want := map[string]int{
		binding.DurableHome: soHomes, binding.DurableCommands: soCommands,
		mapping.DurableSlackUsers: soSlackGone, provisioning.DurableEvents: soSlackGone, mapping.DurableOrgUsers: soOrgGone,
		"disconnect": soDisconnect, "provisioning": 1,
	}
	busy := []string{binding.DurableHome, binding.DurableCommands, mapping.DurableSlackUsers, provisioning.DurableEvents, mapping.DurableOrgUsers, "disconnect"}
	var table []string
	for _, ci := range consumers {
		name := ci.Name
		acked, spread := 0.0, 0
		var per []string
		for i := range replicas {
			n := counts[i][name]["ack"]
			acked += n
			if n > 0 {
				spread++
			}
			per = append(per, fmt.Sprintf("%.0f", n))
			for outcome, v := range counts[i][name] {
				if outcome == "dead_letter" && v > 0 {
					t.Errorf("%s dead-lettered %.0f messages of %s", replicas[i].id, v, name)
				}
			}
		}
		table = append(table, fmt.Sprintf("%s %s", name, strings.Join(per, "/")))
		if n, ok := want[name]; ok && acked != float64(n) {
			t.Errorf("consumer %s: %.0f messages handled to the end across replicas (%s), want %d: each exactly once", name, acked, strings.Join(per, "/"), n)
		}
		if slices.Contains(busy, name) && spread < 2 {
			t.Errorf("consumer %s: all its messages went to one replica (%s); the replicas do not share it", name, strings.Join(per, "/"))
		}
	}
	sort.Strings(table)
	t.Logf("messages acked per consumer (replica-0/1/2): %s", strings.Join(table, ", "))
	soOncePerUser(t, sl, "views.publish", soHomes)
	soOncePerUser(t, sl, "response_url", soCommands)

	// b) the provisioning slot ran once, on one replica, and finished.
	if runs, err = prov.Runs(ctx, soOrg, 10); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ticks.open:
	default:
		t.Errorf("only %d of the replicas' schedulers ticked", ticks.arrivals())
	}
	if len(runs) != 1 || runs[0].ID != runID || runs[0].Trigger != events.TriggerSchedule || runs[0].Status != events.RunSucceeded {
		for _, r := range runs {
			t.Errorf("run %s %s %s %v", r.ID, r.Trigger, r.Status, r.Counts)
		}
		t.Errorf("want one scheduled run %s for the slot %s, succeeded", runID, slot.Format("15:04"))
	}
	ranOn, ran := "", 0.0
	for i, r := range replicas {
		n := soCounter(t, r.reg, "orgbridge_provisioning_runs_total")
		ran += n
		if n > 0 {
			ranOn = replicas[i].id
		}
	}
	if ran != 1 {
		t.Errorf("provisioning runs ended across replicas: %.0f, want 1", ran)
	}
	if len(runs) == 1 {
		t.Logf("scheduled run %s (slot %s UTC) ran once, on %s: %s, %v", runs[0].ID, slot.Format("15:04"), ranOn, runs[0].Status, runs[0].Counts)
	}

	// c) disconnects paced at Tier 1 across the replicas, never refused with 429.
	all := sl.Calls("")
	for _, c := range all {
		if c.Status == http.StatusTooManyRequests {
			t.Errorf("Slack answered 429 to %s at %s", c.Method, c.Time.Format("15:04:05.000"))
		}
	}
	calls := sl.Calls(slackapi.MethodExternalTeamsDisconnect)
	if len(calls) != soDisconnect {
		t.Errorf("team.externalTeams.disconnect called %d times, want %d (once per request)", len(calls), soDisconnect)
	}
	slices.SortFunc(calls, func(a, b slackemu.Call) int { return a.Time.Compare(b.Time) })
	minGap, maxGap := time.Duration(0), time.Duration(0)
	for i, c := range calls {
		if !c.OK {
			t.Errorf("disconnect call %d refused: %+v", i, c)
		}
		if i == 0 {
			continue
		}
		gap := c.Time.Sub(calls[i-1].Time)
		if gap < time.Minute {
			t.Errorf("disconnect calls %d and %d only %s apart (emulated); Tier 1 allows one a minute", i-1, i, gap)
		}
		if minGap == 0 || gap < minGap {
			minGap = gap
		}
		maxGap = max(maxGap, gap)
	}
	dw, err := newDisconnectWorker(workerDeps{cfg: cfg, js: cluster.JS, rdb: rd.Client, log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := dw.Store().Audit(ctx, disconnect.AuditFilter{EnterpriseID: soGrid})
	if err != nil {
		t.Fatal(err)
	}
	byReplica := map[string]int{}
	for _, a := range trail {
		if a.Event == "slack_call" && a.SlackMethod != slackapi.MethodExternalTeamsList {
			byReplica[a.Worker]++
		}
	}
	total := 0
	for id, n := range byReplica {
		total += n
		if !strings.HasPrefix(id, "replica-") {
			t.Errorf("a disconnect call was audited as made by %q, not a replica", id)
		}
	}
	if total != soDisconnect || len(byReplica) < 2 {
		t.Errorf("disconnect calls by replica in the audit trail: %v; want %d in all, made by more than one replica", byReplica, soDisconnect)
	}
	t.Logf("%d disconnects: calls by replica %v, %s to %s apart (emulated; Tier 1 is one a minute); %d Slack calls in all; every effect within %s of the traffic; %s in all",
		len(calls), byReplica, minGap.Round(100*time.Millisecond), maxGap.Round(100*time.Millisecond), len(all), took.Round(time.Millisecond),
		time.Since(began).Round(time.Millisecond))

	stopAll()
}

// soInstall installs the emulator's app as the binding worker would after OAuth.
func soInstall(t *testing.T, sl *slackemu.Emulator, installs *store.Installations, req slackemu.TokenRequest, in store.Installation) {
	t.Helper()
	tok, err := sl.MintToken(req)
	if err != nil {
		t.Fatal(err)
	}
	in.AppID, in.BotToken, in.Scopes, in.BotUserID, in.BotID = sl.AppID(), store.Secret(tok.Token), tok.Scopes, tok.BotUserID, tok.BotID
	in.InstalledAt = time.Now().UTC()
	if err := installs.Save(context.Background(), &in); err != nil {
		t.Fatal(err)
	}
}

// soConnectYesterday connects the org's provisioning integration as its admin
// did yesterday (alice, admin of the org and of the Slack workspace, through
// both OAuth flows), with a daily time a minute ago: the slot is due.
func soConnectYesterday(t *testing.T, ctx context.Context, cfg config.Config, js jetstream.JetStream, rdb redis.UniversalClient,
	keys *store.Keyring, sl *slackemu.Emulator, og *orgemu.Emulator) (slot time.Time, runID string) {
	t.Helper()
	now := time.Now().UTC()
	slot = now.Truncate(time.Minute).Add(-time.Minute)
	yesterday := now.Add(-24 * time.Hour)
	location := func(u string) *url.URL { return testenv.Redirect(t, u) }
	const redirect = "http://127.0.0.1:1/provisioning/slack/callback"
	oauth := &slackapi.OAuthApp{APIURL: sl.APIURL(), ClientID: sl.ClientID(), ClientSecret: sl.ClientSecret()}
	loc := location(sl.URL() + "/oauth/v2/authorize?" + url.Values{"client_id": {sl.ClientID()}, "redirect_uri": {redirect},
		"user_scope": {strings.Join(provisioning.SlackUserScopes, ",")}, "user": {soProvAdmin}, "team": {soProvTeam}}.Encode())
	st, err := oauth.Exchange(ctx, loc.Query().Get("code"), redirect)
	if err != nil {
		t.Fatalf("Slack sign-in of the admin: %v", err)
	}
	oc, err := orgapi.New(orgapi.Config{BaseURL: og.URL(), ClientID: cfg.Org.ClientID, ClientSecret: orgapi.Secret(cfg.Org.ClientSecret.Reveal()),
		RedirectURL: cfg.PublicURL + provisioning.PathOrgCallback})
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := orgapi.ParseCallback(location(oc.AuthorizeURL("s", "alice@acme.example")).Query())
	if err != nil {
		t.Fatal(err)
	}
	ot, err := oc.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := slackapi.New(sl.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	w, err := provisioning.New(provisioning.Deps{JS: js, Redis: rdb, Keys: keys, Slack: sc, Org: oc, SlackOAuth: oauth},
		provisioning.Config{TimeScale: soScale, Now: func() time.Time { return yesterday }})
	if err != nil {
		t.Fatal(err)
	}
	in, err := w.Connect(ctx, provisioning.ConnectRequest{OrgID: soOrg,
		DirectoryURL: strings.TrimRight(ot.InstanceURL, "/") + "/services/scim/v2", DirectoryToken: store.Secret(ot.AccessToken.Reveal()),
		DirectoryRefresh: store.Secret(ot.RefreshToken.Reveal()), SlackToken: store.Secret(st.AuthedUser.AccessToken),
		SlackRefresh: store.Secret(st.AuthedUser.RefreshToken),
		SlackExpires: now.Add(time.Duration(float64(time.Duration(st.AuthedUser.ExpiresIn)*time.Second) / soScale))})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	set := provisioning.DefaultSettings()
	set.ScheduleTime, set.TimeZone = slot.Format("15:04"), "UTC"
	if _, err := w.SaveSettings(ctx, soOrg, set); err != nil {
		t.Fatal(err)
	}
	return slot, "s-" + slot.Format("20060102T1504") + "-" + strings.TrimPrefix(in.ID, "pi-")
}

// soConsumers lists every durable consumer of every stream.
func soConsumers(t *testing.T, ctx context.Context, js jetstream.JetStream) []*jetstream.ConsumerInfo {
	t.Helper()
	var out []*jetstream.ConsumerInfo
	for _, name := range []string{events.StreamSlack, events.StreamOrg, events.StreamDisconnect, events.StreamProvisioning, events.StreamApp, events.StreamDLQ} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		l := s.ListConsumers(ctx)
		for ci := range l.Info() {
			if ci.Config.Durable != "" {
				out = append(out, ci)
			}
		}
		if err := l.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func soWaiting(cs []*jetstream.ConsumerInfo) []string {
	var out []string
	for _, ci := range cs {
		out = append(out, fmt.Sprintf("%s=%d", ci.Name, ci.NumWaiting))
	}
	sort.Strings(out)
	return out
}

func soBacklog(cs []*jetstream.ConsumerInfo) []string {
	var out []string
	for _, ci := range cs {
		if ci.NumPending != 0 || ci.NumAckPending != 0 {
			out = append(out, fmt.Sprintf("%s pending %d unacked %d", ci.Name, ci.NumPending, ci.NumAckPending))
		}
	}
	return out
}

// soBusCounts reads orgbridge_bus_messages_total: consumer → outcome → count.
func soBusCounts(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "orgbridge_bus_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var consumer, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "consumer":
					consumer = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			if out[consumer] == nil {
				out[consumer] = map[string]float64{}
			}
			out[consumer][outcome] += m.GetCounter().GetValue()
		}
	}
	return out
}

// soCounter sums a counter over its labels.
func soCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// soMessages are what the app sent people in the workspace through source.
func soMessages(sl *slackemu.Emulator, source string) []slackemu.Message {
	var out []slackemu.Message
	for _, m := range sl.Messages(soTeam, "") {
		if m.Source == source {
			out = append(out, m)
		}
	}
	return out
}

// soOncePerUser checks that each of the first n users got exactly one
// message through source.
func soOncePerUser(t *testing.T, sl *slackemu.Emulator, source string, n int) {
	t.Helper()
	per := map[string]int{}
	for _, m := range soMessages(sl, source) {
		per[m.UserID]++
	}
	for i := 1; i <= n; i++ {
		if per[soUser(i)] != 1 {
			t.Errorf("%s got %d messages through %s, want exactly one", soUser(i), per[soUser(i)], source)
		}
	}
	if len(per) != n {
		t.Errorf("%s reached %d users, want %d", source, len(per), n)
	}
}

// soLazy is a failure message's argument, formatted when the wait fails.
type soLazy func() string

func (f soLazy) String() string { return f() }

// soBarrier holds the first read of the provisioning orgs index (the first
// thing a scheduler tick does) in each of want Redis clients until all want
// have made it.
type soBarrier struct {
	key  string
	want int
	open chan struct{}

	mu      sync.Mutex
	arrived int
}

func (b *soBarrier) arrive(ctx context.Context) {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.want {
		close(b.open)
	}
	b.mu.Unlock()
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-b.open:
	case <-ctx.Done():
	case <-t.C: // the test reports the barrier never opened
	}
}

func (b *soBarrier) arrivals() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.arrived
}

// soTickHook is a go-redis hook that makes its client's first read of the
// barrier's key wait at the barrier.
type soTickHook struct {
	b    *soBarrier
	once sync.Once
}

func (h *soTickHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *soTickHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *soTickHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) == 2 && strings.EqualFold(cmd.Name(), "smembers") && args[1] == h.b.key {
			h.once.Do(func() { h.b.arrive(ctx) })
		}
		return next(ctx, cmd)
	}
}

// soResults collects the disconnect results other systems read.
type soResults struct {
	mu   sync.Mutex
	byID map[string][]events.DisconnectState
}

func soWatchResults(t *testing.T, ctx context.Context, js jetstream.JetStream) *soResults {
	t.Helper()
	c, err := js.OrderedConsumer(ctx, events.StreamDisconnect, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.DisconnectResultSubject(soGrid)}})
	if err != nil {
		t.Fatal(err)
	}
	r := &soResults{byID: map[string][]events.DisconnectState{}}
	cc, err := c.Consume(func(m jetstream.Msg) {
		var res events.DisconnectResult
		if json.Unmarshal(m.Data(), &res) == nil {
			r.mu.Lock()
			r.byID[res.RequestID] = append(r.byID[res.RequestID], res.State)
			r.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return r
}

func (r *soResults) states(id string) []events.DisconnectState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byID[id])
}

// final is the request's final state, or "" while it has none.
func (r *soResults) final(id string) events.DisconnectState {
	for _, s := range r.states(id) {
		if s.Final() {
			return s
		}
	}
	return ""
}

// soLogs keeps the replicas', the ingress's and the test's logs (warnings
// and up, everything with ORGBRIDGE_TEST_LOGS set) to show when the test fails.
type soLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *soLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 1<<20 {
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *soLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *soLogs) logger(part string) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("ORGBRIDGE_TEST_LOGS") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level})).With("part", part)
}
