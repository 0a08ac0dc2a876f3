package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/ops"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestStreamsCommand(t *testing.T) {
	n := testenv.StartStreams(t)
	pubN(t, n.JS, "slack.events.T1.message", "Ev", 5)
	cons, err := n.JS.CreateOrUpdateConsumer(tctx(t), events.StreamSlack, jetstream.ConsumerConfig{
		Durable: "binding", FilterSubject: "slack.events.>", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for range batch.Messages() { // delivered, never acknowledged
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		info, err := cons.Info(tctx(t))
		return err == nil && info.NumAckPending == 2
	}, "consumer binding never had 2 messages awaiting ack")

	t.Run("table", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, n.URL, "streams")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		lines := fields(stdout)
		want := []string{
			"STREAM REPLICAS LEADER LAGGING MESSAGES BYTES FIRST SEQ FIRST TIME LAST SEQ LAST TIME CONSUMERS",
			"STREAM CONSUMER LEADER LAGGING FILTER PENDING ACK PENDING REDELIVERED LAST ACTIVE",
		}
		for _, w := range want {
			if !hasLine(stdout, w) {
				t.Errorf("stdout lacks %q:\n%s", w, stdout)
			}
		}
		var slackRow, consumerRow bool
		for _, l := range lines {
			slackRow = slackRow || strings.HasPrefix(l, "SLACK 1 - - 5 ") && strings.HasSuffix(l, " 1")
			consumerRow = consumerRow || strings.HasPrefix(l, "SLACK binding - - slack.events.> 3 2 0 20")
		}
		if !slackRow || !consumerRow {
			t.Errorf("stdout lacks the SLACK stream row (%v) or binding's pending counts (%v):\n%s", slackRow, consumerRow, stdout)
		}
		for _, s := range events.StreamSpecs() {
			if !strings.Contains(stdout, "\n"+s.Name+" ") {
				t.Errorf("stdout lacks stream %s", s.Name)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, n.URL, "streams", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got []struct {
			Name      string
			Messages  uint64
			Consumers []struct {
				Name        string
				Pending     uint64
				AckPending  int `json:"ack_pending"`
				Redelivered int
			}
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		found := ""
		for _, s := range got {
			if s.Name == events.StreamSlack && s.Messages == 5 && len(s.Consumers) == 1 {
				found = fmt.Sprintf("%+v", s.Consumers[0])
			}
		}
		if want := "{Name:binding Pending:3 AckPending:2 Redelivered:0}"; found != want {
			t.Errorf("SLACK consumer = %q, want %q:\n%s", found, want, stdout)
		}
	})
}

// TestStreamsCommandOnACluster: on a three-node cluster the operator sees that
// streams and consumers keep three replicas, which node leads each, and which
// replica is behind once a node is lost.
func TestStreamsCommandOnACluster(t *testing.T) {
	c := testenv.StartNATSCluster(t)
	ctx := tctx(t)
	if err := bus.EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JS.CreateOrUpdateConsumer(ctx, events.StreamSlack, jetstream.ConsumerConfig{Durable: "binding", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamLeader(t, events.StreamSlack, 20*time.Second)
	lost := (leader + 1) % 3
	lostName := "n" + strconv.Itoa(lost)
	c.Kill(lost)

	var stdout string
	testenv.Eventually(t, 30*time.Second, func() bool {
		var code int
		code, stdout, _ = runCLI(t, "", "streams", "--nats-url", c.URLs())
		return code == 0 && strings.Contains(stdout, lostName+" offline")
	}, "streams never showed %s offline:\n%s", lostName, stdout)
	leaderName := "n" + strconv.Itoa(leader)
	tests := []struct {
		name, want string
	}{
		{name: "stream row: three replicas, the leader, the lost replica", want: "SLACK 3 " + leaderName + " " + lostName + " offline "},
		{name: "consumer row", want: "SLACK binding "},
		{name: "a note names the lost node and what it holds", want: "! " + lostName + " offline: its replicas of APP, DISCONNECT, DLQ, ORG, PROVISIONING, SLACK, SLACK/binding are not current"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !hasLinePrefix(stdout, tt.want) {
				t.Errorf("no line starts with %q:\n%s", tt.want, stdout)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		code, out, stderr := runCLI(t, "", "streams", "--json", "--nats-url", c.URLs())
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got []ops.StreamStatus
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.Replicas != 3 || s.Cluster.Leader == "" || len(s.Cluster.Replicas) != 2 {
				t.Errorf("stream %s: %d replicas, cluster %+v; want 3 with a leader and two followers", s.Name, s.Replicas, s.Cluster)
			}
		}
	})
}

// hasLinePrefix reports whether a line of out, with runs of spaces made one,
// starts with prefix.
func hasLinePrefix(out, prefix string) bool {
	for _, l := range fields(out) {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestUnreachableNATSReplayDLQStreams checks that every ops command fails fast with
// exit code 1 and says where it looked and what to start.
func TestUnreachableNATSReplayDLQStreams(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	tests := []struct {
		name   string
		env    string
		args   []string
		wantAt string
	}{
		{name: "replay via flag", args: []string{"replay", "--nats-url", url, "--stream", "SLACK", "--since", "1h"}, wantAt: url},
		{name: "replay via NATS_URL", env: url, args: []string{"replay", "--stream", "SLACK", "--from-seq", "1"}, wantAt: url},
		{name: "dlq list", env: url, args: []string{"dlq", "list"}, wantAt: url},
		{name: "dlq show", env: url, args: []string{"dlq", "show", "1"}, wantAt: url},
		{name: "dlq redrive", env: url, args: []string{"dlq", "redrive", "--all"}, wantAt: url},
		{name: "dlq purge", env: url, args: []string{"dlq", "purge", "--yes"}, wantAt: url},
		{name: "streams", args: []string{"streams", "--nats-url", url}, wantAt: url},
		{name: "password hidden", args: []string{"streams", "--nats-url", fmt.Sprintf("nats://ops:s3cret@127.0.0.1:%d", port)}, wantAt: fmt.Sprintf("nats://ops:xxxxx@127.0.0.1:%d", port)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.env, tt.args...)
			want := "cannot reach NATS at " + tt.wantAt + ": "
			if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "is `orgbridge dev` or a NATS server running?") || stdout != "" {
				t.Errorf("exit %d stdout %q stderr %q, want 1 and %q", code, stdout, stderr, want)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("stderr shows the password: %s", stderr)
			}
		})
	}
}

func TestHelpReplayDLQStreams(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{args: []string{"replay", "--help"}, want: []string{"-since", "-from-seq", "-to-seq", "-subject", "-consumer", "-dry-run", "-nats-url", "NATS_URL"}},
		{args: []string{"streams", "--help"}, want: []string{"-json", "-nats-url", "NATS_URL"}},
		{args: []string{"dlq", "list", "--help"}, want: []string{"-consumer", "-stream", "-json", "NATS_URL"}},
		{args: []string{"dlq", "purge", "-h"}, want: []string{"-yes", "NATS_URL"}},
		{args: []string{"dlq", "--help"}, want: []string{"list", "show ID", "redrive ID | --all", "purge --yes"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout+stderr, w) {
					t.Errorf("help lacks %q:\n%s%s", w, stdout, stderr)
				}
			}
		})
	}
}

// TestStreamsCommandWithAStreamNotAnswering: the only node of a one-replica
// stream is lost right before the listing. The command waits for the cluster
// to answer, lists every other stream in full, names the one that did not
// answer, and exits 1; --json marks it with its error.
func TestStreamsCommandWithAStreamNotAnswering(t *testing.T) {
	c := testenv.StartNATSCluster(t)
	ctx := tctx(t)
	if err := bus.EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "SOLO", Subjects: []string{"solo.>"}, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	lost := c.WaitStreamLeader(t, "SOLO", 20*time.Second)
	c.Kill(lost)
	// The replicated streams the node led elect a leader among the other two;
	// SOLO, whose only replica it held, cannot.
	for _, spec := range events.StreamSpecs() {
		c.WaitStreamLeader(t, spec.Name, 20*time.Second)
	}

	code, stdout, stderr := runCLI(t, "", "streams", "--nats-url", c.URLs())
	if code != 1 || !strings.Contains(stderr, "1 streams or consumers did not answer") {
		t.Fatalf("exit %d, stderr %q; want 1 and why", code, stderr)
	}
	for _, want := range []string{"SOLO - - -", "SLACK 3 ", "! not read: SOLO: no answer"} {
		if !hasLinePrefix(stdout, want) {
			t.Errorf("no line starts with %q:\n%s", want, stdout)
		}
	}
	code, out, _ := runCLI(t, "", "streams", "--json", "--nats-url", c.URLs())
	var got []ops.StreamStatus
	if err := json.Unmarshal([]byte(out), &got); code != 1 || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	for _, s := range got {
		if (s.Name == "SOLO") != (s.Error != "") || (s.Name != "SOLO" && s.Replicas != 3) {
			t.Errorf("stream %s: replicas %d, error %q", s.Name, s.Replicas, s.Error)
		}
	}
}

// TestStreamsCommandWithoutJetStream: a NATS server without JetStream is
// named as such at once, not waited for.
func TestStreamsCommandWithoutJetStream(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	start := time.Now()
	code, _, stderr := runCLI(t, "", "streams", "--nats-url", s.ClientURL())
	if code != 1 || !strings.Contains(stderr, "has no JetStream") || !strings.Contains(stderr, "(-js)") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s: a server that says JetStream is off was waited for", took)
	}
}
