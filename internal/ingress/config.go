package ingress

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxBodyBytes caps every Slack request body (Slack's own payloads are far smaller).
const DefaultMaxBodyBytes = 1 << 20

// DefaultMaxBodyBytesInFlight bounds the body bytes all requests hold at once:
// far below a 512 MiB container limit, far above what Slack's traffic needs
// (10,000 requests/s of 4 KiB bodies acknowledged within 25 ms hold about 1 MiB).
const DefaultMaxBodyBytesInFlight = 64 << 20

// Config configures a [Server].
type Config struct {
	// SigningSecret is the Slack app's signing secret.
	SigningSecret string
	// PublishTimeout bounds the wait for JetStream's acknowledgement. It must stay
	// below Slack's 3 s deadline. The JetStream instance handed to [New] should be
	// built with jetstream.WithPublishAsyncTimeout(PublishTimeout) so abandoned
	// acks are released; the server also enforces it on its own.
	PublishTimeout time.Duration
	// PublishAttemptTimeout bounds one publish attempt within PublishTimeout
	// (default a quarter of it, at least 100ms): an attempt unanswered by then
	// (a stream electing its leader) is sent again with the same Msg-Id.
	PublishAttemptTimeout time.Duration
	// MaxBodyBytes caps request bodies; zero means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// MaxBodyBytesInFlight bounds the body bytes held by all requests at once;
	// zero means [DefaultMaxBodyBytesInFlight]. A request that finds it spent is
	// answered at once, unread: events 503 with Retry-After (Slack retries),
	// commands and interactions an ephemeral "try again". It must be at least
	// MaxBodyBytes.
	MaxBodyBytesInFlight int64
	// Checks are run by GET /readyz; any error makes it answer 503.
	Checks map[string]func(context.Context) error
	// Live are run by GET /healthz (see [Liveness]); any error makes it answer
	// 503, telling the orchestrator to restart a process that cannot recover
	// by itself, such as one whose NATS connection nats.go closed for good.
	Live map[string]func(context.Context) error
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBodyBytesInFlight == 0 {
		c.MaxBodyBytesInFlight = max(DefaultMaxBodyBytesInFlight, c.MaxBodyBytes)
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 2 * time.Second
	}
	if c.PublishAttemptTimeout == 0 {
		c.PublishAttemptTimeout = max(c.PublishTimeout/4, 100*time.Millisecond)
	}
}

// Validate reports a configuration the server cannot run with.
func (c Config) Validate() error {
	switch {
	case c.SigningSecret == "":
		return errors.New("ingress: a Slack signing secret is required")
	case c.PublishTimeout < 0 || c.PublishTimeout >= 3*time.Second:
		return errors.New("ingress: the publish timeout must be below Slack's 3s deadline")
	case c.PublishAttemptTimeout <= 0 || c.PublishAttemptTimeout > c.PublishTimeout:
		return errors.New("ingress: the publish attempt timeout must be above 0 and at most the publish timeout")
	case c.MaxBodyBytes < 0:
		return errors.New("ingress: the body cap must not be negative")
	case c.MaxBodyBytesInFlight < c.MaxBodyBytes:
		return errors.New("ingress: the bytes in flight budget must hold at least one body of the largest size allowed")
	}
	return nil
}

// NewHTTPServer returns the http.Server the ingress runs in: timeouts that bound
// slow or stuck clients without touching Slack's normal requests. Slack gives
// up on a request after 3 s, so a request still arriving after 5 s has no one
// waiting for its answer: ReadTimeout ends it and frees its body buffer.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Pool spreads publishes over several JetStream connections: the server reads
// each connection with one goroutine, so a busy ingress pipelines better over a few.
type Pool struct {
	pubs []Publisher
	next atomic.Uint64
}

// NewPool returns a Pool over pubs (at least one).
func NewPool(pubs ...Publisher) *Pool { return &Pool{pubs: pubs} }

// PublishMsgAsync publishes on the next connection in turn.
func (p *Pool) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	n := p.next.Add(1)
	return p.pubs[n%uint64(len(p.pubs))].PublishMsgAsync(msg, opts...)
}
