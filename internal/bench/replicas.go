package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/store"
)

// ReplicasOptions configures [Replicas].
type ReplicasOptions struct {
	// NATSURL lists the servers (comma-separated), as NATS_URL does.
	NATSURL string
	// Replicas of every stream and consumer: 1 or 3 (a cluster of three).
	Replicas int
	// Redis is the workers' Redis: the idempotency check before each effect.
	Redis redis.UniversalClient

	Concurrency int           // closed-loop senders of the throughput phase (64)
	Duration    time.Duration // measured time of the throughput phase (5s)
	Warmup      time.Duration // unmeasured time before it (2s)
	Rate        int           // events a second of the latency phase (1000)
	RateFor     time.Duration // how long the latency phase sends (10s)
	Progress    io.Writer
}

func (o *ReplicasOptions) setDefaults() {
	if o.Concurrency == 0 {
		o.Concurrency = 64
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Rate == 0 {
		o.Rate = 1000
	}
	if o.RateFor == 0 {
		o.RateFor = 10 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// ReplicasReport is what one stream shape measured.
type ReplicasReport struct {
	Replicas int
	// Throughput is the ingress loaded flat out by closed-loop senders.
	Throughput Result
	// Acks are the ingress's answers at the fixed rate of the latency phase.
	Acks Result
	// Effects are the times from sending each event of the latency phase to
	// a worker's handler acting on it.
	Effects Result
	// Sent is how many events the latency phase sent; Missing how many of
	// those answered 200 no worker had acted on when the wait ended.
	Sent, Missing int
}

// Replicas measures the ingress and one worker on streams of opts.Replicas
// replicas: the ingress flat out (events/s and ack latency), then a fixed
// rate of events with a worker consuming them (ack latency, and event →
// effect latency: from the moment an event is sent until the worker's handler
// runs for it, past the idempotency check in Redis, as orgbridge's workers
// do). Every stream is deleted and created again with the replicas asked for,
// so run it on a cluster that holds nothing else.
func Replicas(ctx context.Context, opts ReplicasOptions) (ReplicasReport, error) {
	opts.setDefaults()
	rep := ReplicasReport{Replicas: opts.Replicas}
	nc, err := nats.Connect(opts.NATSURL, nats.Name("bench-admin"), nats.MaxReconnects(-1))
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, err
	}
	if err := resetStreams(ctx, js, opts.Replicas); err != nil {
		return rep, err
	}

	secret := "bench-signing-secret"
	var pubs []ingress.Publisher
	for i := range 2 {
		c, err := nats.Connect(opts.NATSURL, nats.Name("bench-ingress-"+strconv.Itoa(i)), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
		if err != nil {
			return rep, err
		}
		defer c.Close()
		j, err := jetstream.New(c, jetstream.WithPublishAsyncTimeout(2*time.Second))
		if err != nil {
			return rep, err
		}
		pubs = append(pubs, j)
	}
	srv, err := ingress.New(ingress.Config{SigningSecret: secret, PublishTimeout: 2 * time.Second}, ingress.NewPool(pubs...), nil, nil)
	if err != nil {
		return rep, err
	}
	url, stopHTTP, err := serve(srv.Handler())
	if err != nil {
		return rep, err
	}
	defer stopHTTP()
	factory := newEventFactory(secret, 600)
	stopClock := tickEvery(ctx, time.Second, factory.tick)
	defer stopClock()
	client := newClient(opts.Concurrency, false)
	defer client.CloseIdleConnections()

	fmt.Fprintf(opts.Progress, "R%d: ingress flat out, %d senders, %s warm-up, %s measured\n", opts.Replicas, opts.Concurrency, opts.Warmup, opts.Duration)
	rep.Throughput = drive(ctx, fmt.Sprintf("ingress R%d flat out", opts.Replicas), opts.Concurrency, opts.Warmup, opts.Duration, httpOp(client, url, factory))
	fmt.Fprintf(opts.Progress, "  %s\n", rep.Throughput)
	if rep.Throughput.Requests == 0 {
		return rep, errors.New("the ingress answered no request with 200")
	}

	// The latency phase is consumed by a worker whose consumer (replicated as
	// its stream is) starts on an emptied stream.
	slackStream, err := js.Stream(ctx, events.StreamSlack)
	if err != nil {
		return rep, err
	}
	if err := slackStream.Purge(ctx); err != nil {
		return rep, fmt.Errorf("purging %s: %w", events.StreamSlack, err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	effects := newEffectClock()
	workerDone, err := startEffectWorker(wctx, opts.NATSURL, opts.Replicas, opts.Redis, effects)
	if err != nil {
		stopWorker()
		return rep, err
	}
	defer func() {
		stopWorker()
		<-workerDone
	}()
	// Event ids no earlier run used: the workers' idempotency records in Redis
	// would skip an id seen before.
	base := uint64(time.Now().UnixMilli()) * 1_000_000
	// Measure a worker that is consuming, not one still creating its consumer:
	// one event first, and its effect awaited.
	warm := base + 999_999
	if err := httpOp(client, url, factory)(ctx, 0, warm); err != nil {
		return rep, fmt.Errorf("warm-up event: %w", err)
	}
	warmID := map[string]time.Time{"Ev" + strconv.FormatUint(warm, 10): time.Now()}
	for deadline := time.Now().Add(30 * time.Second); effects.count(warmID) == 0; {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return rep, errors.New("the worker did not act on the warm-up event within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintf(opts.Progress, "R%d: %d events/s for %s, one worker consuming\n", opts.Replicas, opts.Rate, opts.RateFor)
	sent := paced(ctx, opts.Rate, opts.RateFor, func(n uint64) (time.Time, bool) {
		start := time.Now()
		return start, httpOp(client, url, factory)(ctx, 0, base+n) == nil
	})
	rep.Sent = len(sent)
	var acks []time.Duration
	ok := map[string]time.Time{}
	for _, s := range sent {
		if s.ok {
			acks = append(acks, s.took)
			ok["Ev"+strconv.FormatUint(base+s.n, 10)] = s.at
		}
	}
	rep.Acks = summarize(fmt.Sprintf("ingress R%d at %d/s", opts.Replicas, opts.Rate), acks, opts.RateFor, len(sent)-len(acks))
	// Wait (bounded) for the worker to act on every acknowledged event.
	deadline := time.Now().Add(30 * time.Second)
	for effects.count(ok) < len(ok) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	lat := effects.latencies(ok)
	rep.Missing = len(ok) - len(lat)
	rep.Effects = summarize(fmt.Sprintf("event → effect R%d", opts.Replicas), lat, opts.RateFor, rep.Missing)
	fmt.Fprintf(opts.Progress, "  %s\n  %s\n", rep.Acks, rep.Effects)
	return rep, ctx.Err()
}

// resetStreams deletes orgbridge's streams and creates them again with
// replicas, waiting for the cluster to answer.
func resetStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, spec := range events.StreamSpecs() {
		if err := js.DeleteStream(ctx, spec.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("deleting stream %s: %w", spec.Name, err)
		}
	}
	return bus.EnsureStreams(ctx, js, events.StreamOptions{Replicas: replicas})
}

// effectClock records when a worker first acted on each event id.
type effectClock struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newEffectClock() *effectClock { return &effectClock{at: map[string]time.Time{}} }

func (e *effectClock) record(id string) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.at[id]; !ok {
		e.at[id] = now
	}
}

// count is how many of sent have had their effect.
func (e *effectClock) count(sent map[string]time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for id := range sent {
		if _, ok := e.at[id]; ok {
			n++
		}
	}
	return n
}

// latencies are, for each of sent that had its effect, the time from sending
// to the effect.
func (e *effectClock) latencies(sent map[string]time.Time) []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]time.Duration, 0, len(sent))
	for id, at := range sent {
		if done, ok := e.at[id]; ok {
			out = append(out, done.Sub(at))
		}
	}
	return out
}

// startEffectWorker runs a worker as orgbridge's are built: a bus.Runner on
// its own connection, a durable pull consumer of Slack events (replicated as
// its stream is), the Redis idempotency check, and a handler that records
// the effect.
func startEffectWorker(ctx context.Context, url string, replicas int, rdb redis.UniversalClient, fx *effectClock) (<-chan struct{}, error) {
	nc, err := nats.Connect(url, nats.Name("bench-worker"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := bus.NewRunner(js, log, nil, bus.RunnerConfig{ShutdownTimeout: 5 * time.Second})
	if err != nil {
		nc.Close()
		return nil, err
	}
	durable := "bench-effects-r" + strconv.Itoa(replicas)
	err = r.Register(bus.ConsumerConfig{Stream: events.StreamSlack, Durable: durable, FilterSubjects: []string{"slack.events.>"}},
		func(_ context.Context, m *bus.Message) error { fx.record(m.Identity); return nil },
		bus.Idempotent(store.NewIdempotency(rdb), time.Hour))
	if err != nil {
		nc.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer nc.Close()
		_ = r.Run(ctx)
	}()
	return done, nil
}

type pacedSend struct {
	n    uint64
	at   time.Time
	took time.Duration
	ok   bool
}

// paced calls send rate times a second for d, each call in its own goroutine
// (an open loop, as Slack's deliveries are: a slow answer does not slow the
// next event), and returns every call once all have returned.
func paced(ctx context.Context, rate int, d time.Duration, send func(n uint64) (time.Time, bool)) []pacedSend {
	var (
		mu  sync.Mutex
		out []pacedSend
		wg  sync.WaitGroup
	)
	total := uint64(float64(rate) * d.Seconds())
	start := time.Now()
	for n := uint64(0); n < total && ctx.Err() == nil; n++ {
		// Schedule by the clock, not by a ticker: a late wake-up sends the
		// events that are due at once instead of losing them.
		if wait := time.Until(start.Add(time.Duration(n) * time.Second / time.Duration(rate))); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			at, ok := send(n)
			s := pacedSend{n: n, at: at, took: time.Since(at), ok: ok}
			mu.Lock()
			out = append(out, s)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// tickEvery calls f every d until the returned stop is called or ctx ends.
func tickEvery(ctx context.Context, d time.Duration, f func()) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { cancel(); <-done }
}
