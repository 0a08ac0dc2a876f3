// Package chaos runs orgbridge's reliability suite (`make chaos`): the
// production shape on loopback — nats-server and redis-server from deploy/
// with their users, `orgbridge emulate`, `orgbridge ingress` and two
// `orgbridge worker`s, each its own process — under a bounded, signed Slack
// load with Slack's retries, while one fault after another hits it: kill -9
// of each part, NATS stopped for 5 s, Redis stopped for 30 s, and requests
// whose values would make subjects too long. For every fault it counts what
// was sent, acknowledged, stored, processed, dead-lettered and stored twice,
// and fails on any loss, stuck consumer or dead letter an outage caused.
//
// Traffic goes to 127.0.0.1 only. It is not part of `make test`.
package chaos

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// Config bounds a run.
type Config struct {
	OrgbridgeBin  string // the orgbridge binary (make build: bin/orgbridge)
	NATSServerBin string // nats-server (make chaos builds bin/nats-server from the module)
	DeployDir     string // the repository's deploy/: nats.conf, redis.conf, start.sh
	Dir           string // data and logs of the run

	Rate     int           // events per second (default 300)
	Duration time.Duration // load per fault (default 20s), longer when the fault outlasts it
	FaultAt  time.Duration // when in the load the fault starts (default 5s)
	// TimeScale compresses Slack's retry schedule (≈0 s, 1 min, 5 min):
	// default 12, so retries come ≈0 s, 5 s and 25 s after a failure.
	TimeScale float64
	// Settle bounds how long the consumers may take to catch up after the
	// load and its retries (default 90s); longer means stuck.
	Settle time.Duration
	// Faults names the faults to run, in order; empty runs them all.
	Faults []string

	Progress io.Writer // a line as each fault starts and ends
}

func (c *Config) setDefaults() {
	if c.Rate == 0 {
		c.Rate = 300
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.FaultAt == 0 {
		c.FaultAt = 5 * time.Second
	}
	if c.TimeScale == 0 {
		c.TimeScale = 12
	}
	if c.Settle == 0 {
		c.Settle = 90 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// fault is one thing that goes wrong while the load runs.
type fault struct {
	name string
	// down is how long the part stays away, so the load outlasts it.
	down time.Duration
	// inject breaks something and, by the time it returns, has repaired it.
	inject func(ctx context.Context, s *shape, r *faultRun) error
}

// faultRun is what a fault needs to know about the run it is part of.
type faultRun struct {
	team   string
	sender *sender
	expect Expect
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// killAndRestart is kill -9 of p, then p started again after gap.
func killAndRestart(p func(*shape) *proc, gap time.Duration) func(ctx context.Context, s *shape, _ *faultRun) error {
	return func(ctx context.Context, s *shape, _ *faultRun) error {
		p(s).kill9()
		if err := pause(ctx, gap); err != nil {
			return err
		}
		return p(s).start(ctx)
	}
}

// stopFor is a graceful stop of p, down for d, then a start.
func stopFor(p func(*shape) *proc, d time.Duration) func(ctx context.Context, s *shape, _ *faultRun) error {
	return func(ctx context.Context, s *shape, _ *faultRun) error {
		p(s).stop()
		if err := pause(ctx, d); err != nil {
			return err
		}
		return p(s).start(ctx)
	}
}

// Faults lists the suite's faults, in the order they run.
func Faults() []string {
	var names []string
	for _, f := range faults() {
		names = append(names, f.name)
	}
	return names
}

func faults() []fault {
	natsP := func(s *shape) *proc { return s.nats }
	redisP := func(s *shape) *proc { return s.redis }
	return []fault{
		{name: "none", inject: func(context.Context, *shape, *faultRun) error { return nil }},
		{name: "kill -9 worker", down: 2 * time.Second, inject: killAndRestart(func(s *shape) *proc { return s.workers[0] }, 2*time.Second)},
		{name: "kill -9 ingress", down: time.Second, inject: killAndRestart(func(s *shape) *proc { return s.ingress }, time.Second)},
		{name: "kill -9 nats-server", down: time.Second, inject: killAndRestart(natsP, time.Second)},
		{name: "kill -9 redis-server", down: time.Second, inject: killAndRestart(redisP, time.Second)},
		{name: "NATS stopped 5 s", down: 5 * time.Second, inject: stopFor(natsP, 5*time.Second)},
		{name: "Redis stopped 30 s", down: 30 * time.Second, inject: stopFor(redisP, 30*time.Second)},
		{name: "long subjects", inject: longSubjects},
	}
}

// longSubjects sends requests whose values would make subjects longer than
// NATS's control line (each must get a 400, and the ingress must stay up),
// and publishes by hand a stored slash command whose name is too long to
// forward: the binding worker must dead-letter it and keep its connection.
func longSubjects(ctx context.Context, s *shape, r *faultRun) error {
	long := strings.Repeat("A", 5000)
	hostile := []struct {
		name, path, contentType string
		body                    []byte
	}{
		{"team_id", "/slack/events", "application/json", userChange("T"+long, "EvLONGTEAM", "U1")},
		{"event type", "/slack/events", "application/json", []byte(strings.Replace(string(userChange(r.team, "EvLONGTYPE", "U1")),
			`"type":"user_change"`, `"type":"user_change`+strings.Repeat("x", 5000)+`"`, 1))},
		{"event_id", "/slack/events", "application/json", userChange(r.team, "Ev"+strings.Repeat("9", 900_000), "U1")},
		{"enterprise_id", "/slack/events", "application/json", []byte(strings.Replace(string(userChange(r.team, "EvLONGENT", "U1")),
			`"api_app_id"`, `"enterprise_id":"E`+long+`","api_app_id"`, 1))},
		{"command", "/slack/commands", "application/x-www-form-urlencoded",
			[]byte("token=chaos&team_id=" + r.team + "&user_id=U1&api_app_id=A0EMULATOR&trigger_id=1.2.abc&command=/" + strings.Repeat("x", 5000))},
	}
	for _, h := range hostile {
		r.sender.hostile(ctx, h.name, h.path, h.contentType, h.body)
	}
	r.expect.Rejected = len(hostile)

	msg := nats.NewMsg(events.SlackCommandSubject(r.team))
	msg.Header.Set(events.HeaderSchema, "1")
	msg.Header.Set(events.HeaderContentType, "application/x-www-form-urlencoded")
	msg.Header.Set(events.HeaderTeam, r.team)
	msg.Data = []byte("team_id=" + r.team + "&user_id=U1&api_app_id=A0EMULATOR&command=/" + strings.Repeat("x", 5000))
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID("chaos-long-command-"+r.team)); err != nil {
		return fmt.Errorf("publishing the long command: %w", err)
	}
	r.expect.DeadLetters = 1
	return nil
}

// Run starts the production shape, runs every fault in turn and returns a
// row per fault. The error is for a run that could not be carried out; a
// fault that lost something is a row that is not OK.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	cfg.setDefaults()
	todo := faults()
	if len(cfg.Faults) > 0 {
		todo = todo[:0:0]
		for _, name := range cfg.Faults {
			i := slices.IndexFunc(faults(), func(f fault) bool { return f.name == name })
			if i < 0 {
				return nil, fmt.Errorf("unknown fault %q (choose from %s)", name, strings.Join(Faults(), ", "))
			}
			todo = append(todo, faults()[i])
		}
	}
	s, err := newShape(cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	fmt.Fprintf(cfg.Progress, "starting nats-server, redis-server, the emulators, the ingress and two workers (logs in %s)\n", cfg.Dir)
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	var rows []Row
	for i, f := range todo {
		row, err := runFault(ctx, s, i+1, f)
		if err != nil {
			return rows, fmt.Errorf("fault %q: %w", f.name, err)
		}
		rows = append(rows, row)
		result := "ok"
		if !row.OK() {
			result = "FAIL: " + strings.Join(row.Problems, "; ")
		}
		fmt.Fprintf(cfg.Progress, "  %-22s sent %d (%d retried), acked %d, stored %d, processed %d, dead-lettered %d, duplicates %d: %s\n",
			f.name, row.Sent, row.Retried, row.Acked, row.Stored, row.Processed, row.DeadLettered, row.Duplicates, result)
	}
	return rows, nil
}

// runFault loads team TCHAOS<n> for the configured time with the fault in the
// middle, waits for Slack's retries and the consumers, and counts.
func runFault(ctx context.Context, s *shape, n int, f fault) (Row, error) {
	cfg := s.cfg
	team := fmt.Sprintf("TCHAOS%d", n)
	fmt.Fprintf(cfg.Progress, "fault %d: %s (team %s)\n", n, f.name, team)
	dlqBefore, err := deadLetters(ctx, s.js)
	if err != nil {
		return Row{}, err
	}
	r := &faultRun{team: team, sender: newSender("http://"+s.ingressAddr, s.signingSecret, cfg.TimeScale)}
	loadFor := max(cfg.Duration, cfg.FaultAt+f.down+5*time.Second)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sent := make(chan []string, 1)
	go func() { sent <- r.sender.load(lctx, team, n, cfg.Rate, loadFor) }()
	if err := pause(ctx, cfg.FaultAt); err != nil {
		return Row{}, err
	}
	if err := f.inject(ctx, s, r); err != nil {
		return Row{}, err
	}
	ids := <-sent
	r.sender.wait()

	stuck, err := settle(ctx, s.js, cfg.Settle)
	if err != nil {
		return Row{}, err
	}
	o := Observed{Sent: ids, Acked: map[string]bool{}, Stuck: stuck, Down: s.down(ctx)}
	for _, id := range ids {
		if r.sender.isAcked(id) {
			o.Acked[id] = true
		}
		if r.sender.wasRetried(id) {
			o.Retried++
		}
	}
	for _, status := range r.sender.refused {
		if status >= 400 && status < 500 {
			o.Rejected++
		}
	}
	if o.Stored, err = storedIDs(ctx, s.js, events.SlackEventSubject(team, "user_change")); err != nil {
		return Row{}, err
	}
	stored := make([]string, 0, len(o.Stored))
	for id := range o.Stored {
		stored = append(stored, id)
	}
	if o.Processed, err = processedIDs(ctx, s.rdb, team, stored); err != nil {
		return Row{}, err
	}
	dlqAfter, err := deadLetters(ctx, s.js)
	if err != nil {
		return Row{}, err
	}
	o.DeadLetters = int(dlqAfter - dlqBefore)
	return Tally(f.name, o, r.expect), nil
}
