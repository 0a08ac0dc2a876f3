package failover_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/store"
)

const signingSecret = "failover-signing-secret"

// testLogger logs to the test's output at warn and above, so the runner's
// and ingress's own words about a failover show when a test fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// connect makes a client as the ingress and the workers do: every node's
// URL, reconnecting forever, quickly.
func connect(t testing.TB, urls, name string, extra ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond)}, extra...)...)
	if err != nil {
		t.Fatalf("connecting %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startIngress serves the real ingress over two connections to the cluster,
// as `orgbridge ingress` does: no reconnect buffer, so a publish while
// reconnecting fails at once and is retried within the publish timeout.
func startIngress(t testing.TB, urls string, timeout time.Duration, reg prometheus.Registerer) *httptest.Server {
	t.Helper()
	var pubs []ingress.Publisher
	for i := range 2 {
		nc := connect(t, urls, "ingress-"+strconv.Itoa(i), nats.ReconnectBufSize(-1))
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(timeout))
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, js)
	}
	s, err := ingress.New(ingress.Config{SigningSecret: signingSecret, PublishTimeout: timeout}, ingress.NewPool(pubs...), testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// effects is the outside world a worker acts on (Slack, the directory): it
// counts how many times each event's effect happened, and when each worker
// replica made one.
type effects struct {
	mu    sync.Mutex
	count map[string]int
	by    map[string][]time.Time // worker → when it made each effect
}

func newEffects() *effects { return &effects{count: map[string]int{}, by: map[string][]time.Time{}} }

func (e *effects) do(worker, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count[id]++
	e.by[worker] = append(e.by[worker], time.Now())
}

func (e *effects) of(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.count[id]
}

// firstAfter is when the first effect after t happened (zero: none yet).
func (e *effects) firstAfter(t time.Time) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var first time.Time
	for _, ats := range e.by {
		for _, at := range ats {
			if at.After(t) && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
	}
	return first
}

// allAfter is when every worker had made an effect after t (zero: not all
// have yet): when the last of them resumed.
func (e *effects) allAfter(t time.Time, workers int) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var last time.Time
	if len(e.by) < workers {
		return time.Time{}
	}
	for _, ats := range e.by {
		i := sort.Search(len(ats), func(i int) bool { return ats[i].After(t) })
		if i == len(ats) {
			return time.Time{}
		}
		if ats[i].After(last) {
			last = ats[i]
		}
	}
	return last
}

// startWorker runs a worker replica: a runner on its own connection with one
// durable consumer of Slack events whose handler makes an external effect,
// skipped when Redis records the event done, and Redis as a dependency, as
// orgbridge's workers have.
func startWorker(t testing.TB, js jetstream.JetStream, rdb redis.UniversalClient, durable, name string, fx *effects) {
	t.Helper()
	r, err := bus.NewRunner(js, testLogger(t), nil, bus.RunnerConfig{
		ShutdownTimeout: 5 * time.Second,
		Dependencies:    []bus.Dependency{{Name: "redis", Probe: func(ctx context.Context) error { return store.Ping(ctx, rdb) }}},
	})
	if err != nil {
		t.Fatal(err)
	}
	guard := bus.Idempotent(store.NewIdempotency(rdb), time.Hour)
	err = r.Register(bus.ConsumerConfig{Stream: events.StreamSlack, Durable: durable, FilterSubjects: []string{"slack.events.>"},
		AckWait: 4 * time.Second, MaxDeliver: 5, RetryMin: 100 * time.Millisecond, RetryMax: time.Second},
		func(_ context.Context, m *bus.Message) error { fx.do(name, m.Identity); return nil }, guard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %s: %v", durable, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("worker %s did not stop", durable)
		}
	})
}

// sent is what the ingress answered one event.
type sent struct {
	id   string
	code int
	at   time.Time     // when the request was sent
	took time.Duration // until the answer
}

// slack sends signed events to the ingress, as Slack does.
type slack struct {
	url    string
	client *http.Client
}

func (s *slack) send(id string) sent {
	body := fmt.Sprintf(`{"token":"x","team_id":"T0FAIL","api_app_id":"A1","event":{"type":"message","user":"U1","ts":"1.2"},"type":"event_callback","event_id":%q,"event_time":1700000000}`, id)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(signingSecret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/slack/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := s.client.Do(req)
	out := sent{id: id, at: start, took: time.Since(start)}
	if err != nil {
		return out
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	out.code = resp.StatusCode
	return out
}

// load sends rate events a second until stop is closed (or max are sent),
// each from its own goroutine as Slack's deliveries are concurrent, and
// returns every answer once all are in.
func (s *slack) load(rate, max int, stop <-chan struct{}) []sent {
	var (
		mu  sync.Mutex
		out []sent
		wg  sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; i < max; i++ {
		select {
		case <-stop:
			i = max
			continue
		case <-tick.C:
		}
		id := fmt.Sprintf("Ev%05d", i)
		wg.Go(func() {
			r := s.send(id)
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// storedIDs counts the copies of each Nats-Msg-Id in stream, reading every
// message by sequence (a read that meets an election is tried again).
func storedIDs(t testing.TB, js jetstream.JetStream, stream string) map[string]int {
	t.Helper()
	var s jetstream.Stream
	poll(t, 30*time.Second, "stream "+stream, func(ctx context.Context) (err error) { s, err = js.Stream(ctx, stream); return err })
	out := map[string]int{}
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		poll(t, 30*time.Second, "message "+strconv.FormatUint(seq, 10)+" of "+stream, func(ctx context.Context) error {
			m, err := s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			if err == nil {
				out[m.Header.Get(events.HeaderMsgID)]++
			}
			return err
		})
	}
	return out
}

// poll calls f every 50ms until it returns nil, or fails the test after within.
func poll(t testing.TB, within time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after %s", what, err, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDrained waits until consumer has nothing pending and nothing unacknowledged.
func waitDrained(t testing.TB, js jetstream.JetStream, stream, consumer string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := js.Consumer(ctx, stream, consumer)
		cancel()
		state := fmt.Sprint(err)
		if err == nil {
			ci := c.CachedInfo()
			if ci.NumPending == 0 && ci.NumAckPending == 0 {
				return
			}
			state = fmt.Sprintf("pending %d, ack pending %d", ci.NumPending, ci.NumAckPending)
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s not drained within %s: %s", consumer, within, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counter reads a counter of reg with the given labels (0 when absent).
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}
