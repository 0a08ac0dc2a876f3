package ingress_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// flakyPublisher plays what a NATS cluster electing a stream leader does to
// publishes, one step per attempt, in front of a real JetStream; attempts
// past the plan go through.
type flakyPublisher struct {
	js   jetstream.JetStream
	plan []string

	mu       sync.Mutex
	attempts int
}

// failedFuture is a publish JetStream answered with err, or never answers (nil err).
type failedFuture struct {
	msg *nats.Msg
	err chan error
}

func (f *failedFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f *failedFuture) Err() <-chan error            { return f.err }
func (f *failedFuture) Msg() *nats.Msg               { return f.msg }

// lateFuture is a stored publish whose acknowledgement arrives after delay.
type lateFuture struct {
	jetstream.PubAckFuture
	ok chan *jetstream.PubAck
}

func (f *lateFuture) Ok() <-chan *jetstream.PubAck { return f.ok }

func (p *flakyPublisher) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	p.mu.Lock()
	step := "ok"
	if p.attempts < len(p.plan) {
		step = p.plan[p.attempts]
	}
	p.attempts++
	p.mu.Unlock()
	switch step {
	case "no leader":
		f := &failedFuture{msg: m, err: make(chan error, 1)}
		f.err <- jetstream.ErrNoStreamResponse
		return f, nil
	case "reconnecting":
		return nil, nats.ErrReconnectBufExceeded
	case "closed":
		return nil, nats.ErrConnectionClosed
	case "unanswered":
		return &failedFuture{msg: m, err: make(chan error)}, nil
	case "late":
		fut, err := p.js.PublishMsgAsync(m, opts...)
		if err != nil {
			return nil, err
		}
		lf := &lateFuture{PubAckFuture: fut, ok: make(chan *jetstream.PubAck, 1)}
		go func() {
			ack := <-fut.Ok()
			// The old leader's ack, delayed past the attempt timeout.
			time.AfterFunc(400*time.Millisecond, func() { lf.ok <- ack })
		}()
		return lf, nil
	}
	return p.js.PublishMsgAsync(m, opts...)
}

func (p *flakyPublisher) tries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts
}

// TestPublishRidesLeaderElections: an event whose publish meets an election
// (no responders, a reconnecting connection, an attempt nobody answers, an
// ack that comes late) is published again within the publish timeout and
// answered 200, stored once; what retrying cannot fix, or what outlasts the
// timeout, is answered 503 so Slack retries.
func TestPublishRidesLeaderElections(t *testing.T) {
	const timeout = time.Second
	tests := []struct {
		name         string
		plan         []string
		wantCode     int
		wantStored   uint64
		wantAttempts int // 0: at least 2, as many as the timeout allows
		wantUnder    time.Duration
	}{
		{name: "no stream leader twice, then stored", plan: []string{"no leader", "no leader"}, wantCode: http.StatusOK, wantStored: 1, wantAttempts: 3},
		{name: "connection moving to another node", plan: []string{"reconnecting", "reconnecting"}, wantCode: http.StatusOK, wantStored: 1, wantAttempts: 3},
		{name: "an attempt nobody answers", plan: []string{"unanswered"}, wantCode: http.StatusOK, wantStored: 1, wantAttempts: 2},
		{name: "the first copy stored, its ack late", plan: []string{"late"}, wantCode: http.StatusOK, wantStored: 1, wantAttempts: 2},
		{name: "no leader for longer than the timeout", plan: []string{"no leader", "no leader", "no leader", "no leader", "no leader", "no leader",
			"no leader", "no leader", "no leader", "no leader", "no leader", "no leader", "no leader", "no leader", "no leader"}, wantCode: http.StatusServiceUnavailable, wantStored: 0, wantUnder: timeout + 500*time.Millisecond},
		{name: "connection closed for good: no retry", plan: []string{"closed"}, wantCode: http.StatusServiceUnavailable, wantStored: 0, wantAttempts: 1, wantUnder: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testenv.StartStreams(t)
			js, err := jetstream.New(n.Conn, jetstream.WithPublishAsyncTimeout(timeout))
			if err != nil {
				t.Fatal(err)
			}
			pub := &flakyPublisher{js: js, plan: tt.plan}
			s, err := ingress.New(ingress.Config{SigningSecret: secret, PublishTimeout: timeout, PublishAttemptTimeout: 250 * time.Millisecond},
				pub, nil, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			f := &fixture{nats: n, js: js, srv: srv}
			start := time.Now()
			code, body := f.post(t, "/slack/events", "application/json", eventBody("Ev1", "T1", "message"), nil)
			took := time.Since(start)
			if code != tt.wantCode {
				t.Fatalf("answered %d %s, want %d", code, body, tt.wantCode)
			}
			if got := f.streamMsgs(t, events.StreamSlack); got != tt.wantStored {
				t.Fatalf("SLACK holds %d messages, want %d", got, tt.wantStored)
			}
			if tt.wantAttempts > 0 && pub.tries() != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d", pub.tries(), tt.wantAttempts)
			}
			if tt.wantAttempts == 0 && pub.tries() < 2 {
				t.Fatalf("%d attempts, want retries until the timeout", pub.tries())
			}
			if tt.wantUnder > 0 && took > tt.wantUnder {
				t.Fatalf("answered after %s, want under %s", took, tt.wantUnder)
			}
		})
	}
}
