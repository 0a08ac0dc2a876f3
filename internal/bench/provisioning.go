package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/devstack"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// ProvisioningOptions configure [Provisioning]. The emulators run elsewhere
// (another process), so this process's CPU and memory are the worker's.
type ProvisioningOptions struct {
	// SlackURL and OrgURL are the running emulators' base URLs; the Slack
	// emulator holds one workspace whose first user is its admin, the org
	// emulator its documented world (Acme, admin alice@acme.example).
	SlackURL, OrgURL string
	// Scale is the Slack emulator's time scale (its Tier 2 minute lasts 60s/Scale).
	Scale float64
	// Users is how many users the workspace holds (for the floor).
	Users int
	// PageSize is users.list's limit.
	PageSize int
	// Teams directory teams are created and the workspace's groups mapped onto them, round robin.
	Teams int
	// DirectoryWritesPerSecond paces the worker's writes (0: unpaced).
	DirectoryWritesPerSecond float64
	Concurrency              int
	Progress                 io.Writer
	// CPUProfile and NoChangeCPUProfile, when set, are where the first and the
	// no-change sync's CPU profiles are written.
	CPUProfile, NoChangeCPUProfile string
}

// SyncResult is one measured run.
type SyncResult struct {
	Name       string
	Wall       time.Duration
	Floor      time.Duration // Slack's Tier 2 floor for the users.list pages read
	Pages      int
	CPU        time.Duration // user + system CPU of this process during the run
	SlackCalls int
	Slack429   int
	DirWrites  int64 // writes the directory accepted
	DirReads   int64
	Dir429     int64
	Counts     map[string]int
	Status     events.RunStatus
}

// Ratio is the wall time over the floor.
func (r SyncResult) Ratio() float64 {
	if r.Floor <= 0 {
		return 0
	}
	return float64(r.Wall) / float64(r.Floor)
}

// ProvisioningReport is a first sync and a no-change sync, and the process's
// peak RSS.
type ProvisioningReport struct {
	Runs    []SyncResult
	PeakRSS int64 // bytes (VmHWM)
}

// Provisioning connects the emulated Slack to the emulated org's directory
// and measures a first sync and a sync with nothing new, on real NATS
// JetStream and Redis.
func Provisioning(ctx context.Context, o ProvisioningOptions) (ProvisioningReport, error) {
	var rep ProvisioningReport
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "orgbridge-bench-provisioning-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	ns, err := devstack.StartNATS("127.0.0.1:0", dir+"/jetstream")
	if err != nil {
		return rep, err
	}
	defer ns.Shutdown()
	rs, err := devstack.StartRedis(ctx, dir+"/redis", slog.New(slog.DiscardHandler))
	if err != nil {
		return rep, err
	}
	defer rs.Stop()
	ropts, _ := redis.ParseURL(rs.URL())
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	nc, err := nats.Connect("", nats.InProcessServer(ns.Server()))
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, err
	}
	if err := bus.EnsureStreams(ctx, js, events.StreamOptions{}); err != nil {
		return rep, err
	}
	keys, err := store.ParseKeyring(store.GenerateKeySpec("bench"))
	if err != nil {
		return rep, err
	}
	sc, err := slackapi.New(o.SlackURL + "/api/")
	if err != nil {
		return rep, err
	}
	oc, err := orgapi.New(orgapi.Config{BaseURL: o.OrgURL, ClientID: "bench", ClientSecret: "bench", RedirectURL: "http://127.0.0.1:1/cb"})
	if err != nil {
		return rep, err
	}
	world, err := slackWorld(ctx, o.SlackURL)
	if err != nil {
		return rep, err
	}
	oauth := &slackapi.OAuthApp{APIURL: o.SlackURL + "/api/", ClientID: world.clientID, ClientSecret: "emulator-client-secret"}
	reg := prometheus.NewRegistry()
	w, err := provisioning.New(provisioning.Deps{JS: js, Redis: rdb, Keys: keys, Slack: sc, Org: oc, SlackOAuth: oauth, Registerer: reg},
		provisioning.Config{TimeScale: o.Scale, PageSize: o.PageSize, DirectoryConcurrency: o.Concurrency,
			DirectoryWritesPerSecond: o.DirectoryWritesPerSecond, ScheduleTick: time.Hour})
	if err != nil {
		return rep, err
	}
	runner, err := bus.NewRunner(js, slog.New(slog.DiscardHandler), nil, bus.RunnerConfig{DisableMaxDeliveriesCapture: true})
	if err != nil {
		return rep, err
	}
	if err := w.Register(runner); err != nil {
		return rep, err
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	defer func() { stop(); <-done }()

	const org = "00D000000000001"
	req, err := connectRequest(ctx, o, oc, oauth, world.teamID)
	if err != nil {
		return rep, err
	}
	if _, err := w.Connect(ctx, req); err != nil {
		return rep, fmt.Errorf("connecting: %w", err)
	}
	if o.Teams > 0 {
		if err := mapTeams(ctx, w, org, req, o.Teams); err != nil {
			return rep, err
		}
	}
	pace := slackapi.PaceEvery(slackapi.Tier2, o.Scale, 0, 0)
	for _, name := range []string{"first sync", "no-change sync"} {
		fmt.Fprintf(progress, "%s of %d users …\n", name, o.Users)
		calls0, err := slackCalls(ctx, o.SlackURL)
		if err != nil {
			return rep, err
		}
		st0, err := orgStats(ctx, o.OrgURL)
		if err != nil {
			return rep, err
		}
		profile := o.CPUProfile
		if name == "no-change sync" {
			profile = o.NoChangeCPUProfile
		}
		stopProfile, err := startProfile(profile)
		if err != nil {
			return rep, err
		}
		cpu0 := cpuTime()
		start := time.Now()
		run, err := w.StartRun(ctx, org, events.TriggerAPI, "bench", false)
		if err != nil {
			return rep, err
		}
		for !run.Status.Final() && run.Status != events.RunAwaitingApproval {
			select {
			case <-ctx.Done():
				return rep, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if run, err = w.Store().Run(ctx, org, run.ID); err != nil {
				return rep, err
			}
		}
		stopProfile()
		r := SyncResult{Name: name, Wall: time.Since(start), CPU: cpuTime() - cpu0, Pages: run.Pages, Counts: run.Counts, Status: run.Status}
		r.Floor = time.Duration(max(run.Pages-1, 0)) * pace
		calls1, err := slackCalls(ctx, o.SlackURL)
		if err != nil {
			return rep, err
		}
		r.SlackCalls, r.Slack429 = calls1.total-calls0.total, calls1.limited-calls0.limited
		st1, err := orgStats(ctx, o.OrgURL)
		if err != nil {
			return rep, err
		}
		r.DirWrites, r.DirReads, r.Dir429 = st1.SCIMWrites-st0.SCIMWrites, st1.SCIMReads-st0.SCIMReads, st1.SCIMThrottled-st0.SCIMThrottled
		fmt.Fprintf(progress, "  %s in %s (floor %s, ×%.3f), %d directory writes\n", run.Status, r.Wall.Round(time.Millisecond), r.Floor.Round(time.Millisecond), r.Ratio(), r.DirWrites)
		rep.Runs = append(rep.Runs, r)
	}
	rep.PeakRSS = peakRSS()
	return rep, nil
}

type benchWorld struct{ teamID, clientID string }

func slackWorld(ctx context.Context, slackURL string) (benchWorld, error) {
	var w struct {
		Workspaces []struct{ ID string } `json:"workspaces"`
	}
	if err := getJSON(ctx, slackURL+"/_emulator/world", &w); err != nil {
		return benchWorld{}, err
	}
	if len(w.Workspaces) != 1 {
		return benchWorld{}, fmt.Errorf("the Slack emulator must hold one workspace, it has %d", len(w.Workspaces))
	}
	return benchWorld{teamID: w.Workspaces[0].ID, clientID: "1111.2222"}, nil
}

// connectRequest logs the Slack workspace's admin (its first user) and the
// org's admin in, as the connect pages do.
func connectRequest(ctx context.Context, o ProvisioningOptions, oc *orgapi.Client, oauth *slackapi.OAuthApp, team string) (provisioning.ConnectRequest, error) {
	var req provisioning.ConnectRequest
	q := url.Values{"client_id": {oauth.ClientID}, "user_scope": {strings.Join(provisioning.SlackUserScopes, ",")},
		"redirect_uri": {"http://127.0.0.1:1/cb"}, "team": {team}}
	loc, err := redirectOf(ctx, o.SlackURL+"/oauth/v2/authorize?"+q.Encode())
	if err != nil {
		return req, err
	}
	r, err := oauth.Exchange(ctx, loc.Query().Get("code"), "http://127.0.0.1:1/cb")
	if err != nil {
		return req, err
	}
	loc, err = redirectOf(ctx, oc.AuthorizeURL("bench", "alice@acme.example"))
	if err != nil {
		return req, err
	}
	code, _, err := orgapi.ParseCallback(loc.Query())
	if err != nil {
		return req, err
	}
	tok, err := oc.Exchange(ctx, code)
	if err != nil {
		return req, err
	}
	return provisioning.ConnectRequest{OrgID: "00D000000000001", DirectoryURL: strings.TrimRight(tok.InstanceURL, "/") + "/services/scim/v2",
		DirectoryToken: store.Secret(tok.AccessToken.Reveal()), DirectoryRefresh: store.Secret(tok.RefreshToken.Reveal()),
		SlackToken: store.Secret(r.AuthedUser.AccessToken), SlackRefresh: store.Secret(r.AuthedUser.RefreshToken),
		SlackExpires: time.Now().Add(time.Duration(float64(time.Duration(r.AuthedUser.ExpiresIn)*time.Second) / o.Scale))}, nil
}

// mapTeams creates n directory teams and maps the workspace's groups onto them.
func mapTeams(ctx context.Context, w *provisioning.Worker, org string, req provisioning.ConnectRequest, n int) error {
	scim := orgapi.NewSCIM(req.DirectoryURL, orgapi.Secret(req.DirectoryToken.Reveal()), nil)
	groups, err := w.SearchGroups(ctx, org, "", 10000)
	if err != nil {
		return err
	}
	set := provisioning.DefaultSettings()
	set.MapTeams = true
	for i := range n {
		g, err := scim.CreateGroup(ctx, &orgapi.Group{DisplayName: fmt.Sprintf("Bench team %d", i+1)})
		if err != nil {
			return err
		}
		set.Teams = append(set.Teams, provisioning.TeamMapping{TeamID: g.ID})
	}
	for i, g := range groups {
		set.Teams[i%n].SlackGroups = append(set.Teams[i%n].SlackGroups, g.ID)
	}
	_, err = w.SaveSettings(ctx, org, set)
	return err
}

func redirectOf(ctx context.Context, u string) (*url.URL, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("GET %s: %s, not a redirect", u, resp.Status)
	}
	return url.Parse(resp.Header.Get("Location"))
}

type callCount struct{ total, limited int }

// slackCalls counts users.list calls and their 429s in the emulator's call log.
func slackCalls(ctx context.Context, slackURL string) (callCount, error) {
	var out struct {
		Calls []struct {
			Status int    `json:"status"`
			Error  string `json:"error"`
		} `json:"calls"`
	}
	if err := getJSON(ctx, slackURL+"/_emulator/calls?method=users.list", &out); err != nil {
		return callCount{}, err
	}
	c := callCount{total: len(out.Calls)}
	for _, call := range out.Calls {
		if call.Status == http.StatusTooManyRequests || call.Error == "ratelimited" {
			c.limited++
		}
	}
	return c, nil
}

type orgCounters struct {
	SCIMReads     int64 `json:"scim_reads"`
	SCIMWrites    int64 `json:"scim_writes"`
	SCIMThrottled int64 `json:"scim_throttled"`
}

func orgStats(ctx context.Context, orgURL string) (orgCounters, error) {
	var s orgCounters
	return s, getJSON(ctx, orgURL+"/_emulator/stats", &s)
}

func getJSON(ctx context.Context, u string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads VmHWM, the process's peak resident set, from /proc.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
