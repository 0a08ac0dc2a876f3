package failover_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestStreamsScaleFromOneReplicaToThree is the upgrade of a cluster that ran
// with ORGBRIDGE_STREAM_REPLICAS=1: the parts restarted with 3 scale every
// stream up (EnsureStreams updates them), the durable consumers follow their
// stream, and nothing stored or acknowledged before is lost — the consumer
// goes on from where it was.
func TestStreamsScaleFromOneReplicaToThree(t *testing.T) {
	c := testenv.StartNATSCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := bus.EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	cons, err := c.JS.CreateOrUpdateConsumer(ctx, events.StreamSlack, jetstream.ConsumerConfig{
		Durable: "upgrade", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "slack.events.>"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := c.JS.Publish(ctx, events.SlackEventSubject("T0UPGRADE", "message"), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Four handled before the upgrade.
	batch, err := cons.Fetch(4)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}

	if err := bus.EnsureStreams(ctx, c.JS, events.StreamOptions{Replicas: 3}); err != nil {
		t.Fatalf("restarting with 3 replicas: %v", err)
	}
	for _, spec := range events.StreamSpecs() {
		c.WaitStreamCurrent(t, spec.Name, 30*time.Second)
		s, err := c.JS.Stream(ctx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Replicas; got != 3 {
			t.Fatalf("stream %s keeps %d replicas, want 3", spec.Name, got)
		}
	}
	poll(t, 30*time.Second, "the consumer on three replicas", func(ctx context.Context) error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("consumer cluster %+v", info.Cluster)
		}
		if info.NumPending != 6 || info.AckFloor.Stream != 4 {
			return fmt.Errorf("consumer pending %d, ack floor %d; want 6 and 4", info.NumPending, info.AckFloor.Stream)
		}
		return nil
	})
	s, err := c.JS.Stream(ctx, events.StreamSlack)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 10 {
		t.Fatalf("SLACK holds %d messages after the upgrade, want 10", n)
	}
}
