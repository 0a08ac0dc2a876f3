package ops_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/ops"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// effects records what a handler did, by message identity.
type effects struct {
	mu   sync.Mutex
	seen map[string]int
}

func (e *effects) add(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen[id]++
}

func (e *effects) count(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[id]
}

func (e *effects) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.seen {
		n += c
	}
	return n
}

// runWorker runs one consumer on SLACK events with the idempotency middleware,
// as a worker does, until the test ends.
func runWorker(t *testing.T, js jetstream.JetStream, idem *store.Idempotency, durable string, h bus.Handler) {
	t.Helper()
	r, err := bus.NewRunner(js, nil, nil, bus.RunnerConfig{ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Register(bus.ConsumerConfig{
		Stream: events.StreamSlack, Durable: durable, FilterSubjects: []string{"slack.events.>"},
		MaxDeliver: 2, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, AckWait: 2 * time.Second,
	}, h, bus.Idempotent(idem, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})
}

func publishEvent(t *testing.T, js jetstream.JetStream, eventID string) {
	t.Helper()
	msg := nats.NewMsg(events.SlackEventSubject("T1", "app_mention"))
	msg.Header.Set(events.HeaderTeam, "T1")
	msg.Data = []byte(`{"type":"event_callback","event_id":"` + eventID + `"}`)
	if _, err := js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(eventID)); err != nil {
		t.Fatal(err)
	}
}

// TestReplayTwiceHasNoExtraEffect plays the whole path: events handled once,
// a replay of the range re-delivered to the workers, and the same replay again.
func TestReplayTwiceHasNoExtraEffect(t *testing.T) {
	n := testenv.StartStreams(t)
	rdb := testenv.StartRedis(t)
	idem := store.NewIdempotency(rdb.Client)
	var fx effects
	fx.seen = map[string]int{}
	var deliveries atomic.Int64
	runWorker(t, n.JS, idem, "mapping", func(_ context.Context, m *bus.Message) error {
		deliveries.Add(1)
		fx.add(m.Identity)
		return nil
	})
	for _, id := range []string{"Ev1", "Ev2", "Ev3"} {
		publishEvent(t, n.JS, id)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return fx.total() == 3 }, "events not handled")

	// Lose the idempotency records (a Redis restore, say) for one event, so the
	// replay has something to redo, then replay the range twice.
	if err := idem.Forget(context.Background(), bus.ProcessedKey(&bus.Message{Consumer: "mapping", Identity: "Ev2", Tenant: "T1"})); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		sum, err := ops.Replay(context.Background(), n.JS, ops.ReplayConfig{Stream: events.StreamSlack, FromSeq: 1, Consumer: "mapping"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if round == 1 && sum.Published != 3 {
			t.Fatalf("first replay published %d copies, want 3: %+v", sum.Published, sum)
		}
		if round == 2 && (sum.Published != 0 || sum.Duplicates != sum.Read) {
			t.Fatalf("second replay stored new copies: %+v", sum)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return fx.count("Ev2") == 2 }, "the replay did not redo the forgotten event")
	// The handler ran once more, for the forgotten event only: the other copies
	// were recognised as done before it.
	testenv.Eventually(t, 10*time.Second, func() bool { return deliveries.Load() == 4 }, "copies not consumed")
	if fx.count("Ev1") != 1 || fx.count("Ev3") != 1 {
		t.Fatalf("a replayed copy had an effect twice: %v", fx.seen)
	}
}

// TestDeadLetterThenRedrive: a handler that keeps failing sends the message to the
// DLQ after MaxDeliver; once fixed, a redrive brings it back to that worker only.
func TestDeadLetterThenRedrive(t *testing.T) {
	n := testenv.StartStreams(t)
	rdb := testenv.StartRedis(t)
	idem := store.NewIdempotency(rdb.Client)
	var broken atomic.Bool
	broken.Store(true)
	var failing, other effects
	failing.seen, other.seen = map[string]int{}, map[string]int{}
	runWorker(t, n.JS, idem, "binding", func(_ context.Context, m *bus.Message) error {
		if broken.Load() {
			return errors.New("org API unreachable")
		}
		failing.add(m.Identity)
		return nil
	})
	runWorker(t, n.JS, idem, "mapping", func(_ context.Context, m *bus.Message) error {
		other.add(m.Identity)
		return nil
	})
	publishEvent(t, n.JS, "EvStuck")
	var dead []ops.DeadLetter
	testenv.Eventually(t, 10*time.Second, func() bool {
		var err error
		dead, err = ops.ListDeadLetters(context.Background(), n.JS, ops.DLQFilter{})
		return err == nil && len(dead) == 1
	}, "no dead letter after MaxDeliver")
	if dead[0].Consumer != "binding" || dead[0].Deliveries != 2 || dead[0].Error != "org API unreachable" {
		t.Fatalf("dead letter: %+v", dead[0])
	}

	broken.Store(false)
	if _, err := ops.Redrive(context.Background(), n.JS, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return failing.count("EvStuck") == 1 }, "redriven message not handled")
	if left, _ := ops.ListDeadLetters(context.Background(), n.JS, ops.DLQFilter{}); len(left) != 0 {
		t.Fatalf("dead letter still listed after redrive: %+v", left)
	}
	if other.count("EvStuck") != 1 {
		t.Fatalf("the healthy worker handled the redriven copy too: %v", other.seen)
	}
}
