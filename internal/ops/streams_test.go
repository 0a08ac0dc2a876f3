package ops

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestListStreams(t *testing.T) {
	n := testenv.StartStreams(t)
	publishEvents(t, n.JS, subjMsg, "Ev", 5)
	publishEvents(t, n.JS, subjInstall, "Inst", 2)
	binding := createDurable(t, n.JS, events.StreamSlack, "binding", "slack.events.>")
	createDurable(t, n.JS, events.StreamSlack, "mapping", "slack.install.>")
	batch, err := binding.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	got := 0
	for range batch.Messages() {
		got++ // delivered and left unacknowledged
	}
	if got != 2 {
		t.Fatalf("fetched %d messages, want 2", got)
	}

	streams, err := ListStreams(testCtx(t), n.JS)
	if err != nil {
		t.Fatalf("ListStreams: %v", err)
	}
	if len(streams) != len(events.StreamSpecs()) {
		t.Fatalf("got %d streams, want %d", len(streams), len(events.StreamSpecs()))
	}
	var slack *StreamStatus
	for i := range streams {
		if streams[i].Name == events.StreamSlack {
			slack = &streams[i]
		}
	}
	if slack == nil || slack.Messages != 7 || slack.FirstSeq != 1 || slack.LastSeq != 7 || slack.Bytes == 0 || slack.LastTime.IsZero() {
		t.Fatalf("SLACK = %+v, want 7 messages, seq 1..7", slack)
	}
	tests := []struct {
		name           string
		consumer       ConsumerStatus
		wantName       string
		wantFilter     string
		wantPending    uint64
		wantAckPending int
		wantLastActive bool
	}{
		{name: "with unacknowledged messages", consumer: slack.Consumers[0], wantName: "binding", wantFilter: "slack.events.>", wantPending: 3, wantAckPending: 2, wantLastActive: true},
		{name: "idle", consumer: slack.Consumers[1], wantName: "mapping", wantFilter: "slack.install.>", wantPending: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.consumer
			if c.Name != tt.wantName || len(c.Filter) != 1 || c.Filter[0] != tt.wantFilter || c.Pending != tt.wantPending ||
				c.AckPending != tt.wantAckPending || (c.LastActive != nil) != tt.wantLastActive || !c.Durable {
				t.Errorf("consumer = %+v, want %s on %s pending %d ack pending %d", c, tt.wantName, tt.wantFilter, tt.wantPending, tt.wantAckPending)
			}
		})
	}
}

func TestClusterStatusLagging(t *testing.T) {
	tests := []struct {
		name string
		cs   ClusterStatus
		want string
	}{
		{name: "single server", cs: ClusterStatus{Leader: "NABC"}, want: ""},
		{name: "all current", cs: ClusterStatus{Name: "c", Leader: "n0", Replicas: []ReplicaStatus{{Name: "n1", Current: true}, {Name: "n2", Current: true}}}, want: ""},
		{name: "one offline, one behind", cs: ClusterStatus{Name: "c", Leader: "n0",
			Replicas: []ReplicaStatus{{Name: "n1", Offline: true}, {Name: "n2", Lag: 12}}}, want: "n1 offline,n2 12 behind"},
		{name: "catching up without a count", cs: ClusterStatus{Name: "c", Replicas: []ReplicaStatus{{Name: "n2"}}}, want: "n2 catching up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(tt.cs.Lagging(), ","); got != tt.want {
				t.Fatalf("Lagging = %q, want %q", got, tt.want)
			}
		})
	}
}
