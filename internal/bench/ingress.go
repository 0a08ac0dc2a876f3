package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/devstack"
	"github.com/orgbridge/orgbridge/internal/ingress"
)

// IngressOptions configures [Ingress].
type IngressOptions struct {
	Concurrency int           // concurrent senders (Slack's own fan-in is wide)
	Duration    time.Duration // measured time per phase
	Warmup      time.Duration // unmeasured time before each phase
	// Rounds repeats the three phases in turn, so a disturbance from outside
	// (another process on the machine) hits every phase alike; the report is
	// the round with the median ingress/HTTP ratio.
	Rounds       int
	PayloadBytes int // size of each signed event
	// Target, when set, is the URL of a running ingress's /slack/events to load
	// instead of an in-process one; Secret must then be its signing secret.
	Target string
	Secret string
	// NewConnEach opens a new TCP connection for every request, as webhook senders
	// that do not keep connections alive do; by default connections are reused.
	NewConnEach bool
	// CPUProfile, when set, is a file to write a CPU profile of the first
	// round's ingress phase to.
	CPUProfile string
	// Progress receives a line as each phase starts and ends.
	Progress io.Writer
}

func (o *IngressOptions) setDefaults() {
	if o.Concurrency == 0 {
		o.Concurrency = 64
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if o.PayloadBytes == 0 {
		o.PayloadBytes = 600
	}
	if o.Secret == "" {
		o.Secret = "bench-signing-secret"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// IngressReport holds the three phases of one round.
type IngressReport struct {
	Options     IngressOptions
	HTTPFloor   Result // a do-nothing HTTP server: reads the body, answers 200
	Ingress     Result // verify + publish + wait for JetStream's ack
	BarePublish Result // synchronous JetStream publishes of the same payloads, no HTTP
	// Rounds are every round of the run; the fields above are the median one's.
	Rounds []IngressReport
}

// RatioToHTTP is the ingress's throughput as a fraction of the HTTP floor.
func (r IngressReport) RatioToHTTP() float64 { return ratio(r.Ingress, r.HTTPFloor) }

// RatioToPublish is the ingress's throughput as a fraction of bare publishing.
func (r IngressReport) RatioToPublish() float64 { return ratio(r.Ingress, r.BarePublish) }

func ratio(a, b Result) float64 {
	if b.PerSecond() == 0 {
		return 0
	}
	return a.PerSecond() / b.PerSecond()
}

// Ingress loads a do-nothing HTTP server, the ingress and bare JetStream
// publishing in turn with the same generator and payloads, on this machine.
func Ingress(ctx context.Context, opts IngressOptions) (IngressReport, error) {
	opts.setDefaults()
	rep := IngressReport{Options: opts}
	dir, err := os.MkdirTemp("", "orgbridge-bench-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	ns, err := devstack.StartNATS("127.0.0.1:0", dir)
	if err != nil {
		return rep, err
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns.Server()))
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		return rep, err
	}
	for _, spec := range events.StreamSpecs() {
		if _, err := js.CreateOrUpdateStream(ctx, events.StreamConfig(spec, events.StreamOptions{})); err != nil {
			return rep, fmt.Errorf("creating stream %s: %w", spec.Name, err)
		}
	}

	factory := newEventFactory(opts.Secret, opts.PayloadBytes)
	stopClock := tickEvery(ctx, time.Second, factory.tick)
	defer stopClock()
	client := newClient(opts.Concurrency, opts.NewConnEach)
	defer client.CloseIdleConnections()

	phase := func(name string, do op) Result {
		r := drive(ctx, name, opts.Concurrency, opts.Warmup, opts.Duration, do)
		fmt.Fprintf(opts.Progress, "  %s\n", r)
		return r
	}

	// The HTTP floor: what any ingress pays on this machine.
	floorURL, stopFloor, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	if err != nil {
		return rep, err
	}
	defer stopFloor()

	target := opts.Target
	if target == "" {
		// The ingress as `orgbridge dev` runs it: its own connections to the server.
		var pubs []ingress.Publisher
		for i := 0; i < 2; i++ {
			c, err := nats.Connect("", nats.InProcessServer(ns.Server()))
			if err != nil {
				return rep, err
			}
			defer c.Close()
			j, _ := jetstream.New(c, jetstream.WithPublishAsyncTimeout(2*time.Second))
			pubs = append(pubs, j)
		}
		srv, err := ingress.New(ingress.Config{SigningSecret: opts.Secret, PublishTimeout: 2 * time.Second}, ingress.NewPool(pubs...), nil, nil)
		if err != nil {
			return rep, err
		}
		url, stop, err := serve(srv.Handler())
		if err != nil {
			return rep, err
		}
		defer stop()
		target = url
	}

	for round := 1; round <= opts.Rounds && ctx.Err() == nil; round++ {
		fmt.Fprintf(opts.Progress, "round %d/%d: each phase %s warm-up, %s measured, %d senders\n",
			round, opts.Rounds, opts.Warmup, opts.Duration, opts.Concurrency)
		r := IngressReport{Options: opts}
		r.HTTPFloor = phase("do-nothing HTTP server", httpOp(client, floorURL, factory))
		client.CloseIdleConnections()
		stopProfile := func() {}
		if round == 1 {
			// The profile covers the first round's ingress phase only.
			if stopProfile, err = startProfile(opts.CPUProfile); err != nil {
				return rep, err
			}
		}
		r.Ingress = phase("ingress (verify+publish)", httpOp(client, target, factory))
		stopProfile()
		client.CloseIdleConnections()
		// Bare JetStream publishing of the same payloads, no HTTP.
		r.BarePublish = phase("bare JetStream publish", func(ctx context.Context, _ int, n uint64) error {
			body, _, _ := factory.body(n)
			msg := nats.NewMsg(events.SlackEventSubject("T0BENCH01", "message"))
			msg.Data = body
			_, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("bare-"+strconv.FormatUint(n, 10)))
			return err
		})
		rep.Rounds = append(rep.Rounds, r)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	sorted := slices.Clone(rep.Rounds)
	slices.SortFunc(sorted, func(a, b IngressReport) int { return cmp.Compare(a.RatioToHTTP(), b.RatioToHTTP()) })
	median := sorted[len(sorted)/2]
	rep.HTTPFloor, rep.Ingress, rep.BarePublish = median.HTTPFloor, median.Ingress, median.BarePublish
	if rep.Ingress.Requests == 0 {
		return rep, errors.New("the ingress answered no request with 200")
	}
	return rep, nil
}

// serve runs h on a free loopback port and returns its /slack/events URL.
func serve(h http.Handler) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := ingress.NewHTTPServer(l.Addr().String(), h)
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	return "http://" + l.Addr().String() + "/slack/events", stop, nil
}

func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
