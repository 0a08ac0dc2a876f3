package bus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [ConsumerConfig].
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliver    = 5
	DefaultMaxAckPending = 256
	DefaultConcurrency   = 8
	DefaultRetryMin      = time.Second
	DefaultRetryMax      = time.Minute
	// DefaultPullExpiry and DefaultPullHeartbeat keep pull requests short and
	// watched: a request held by a consumer leader that died is noticed after
	// two missed heartbeats and made again, so a worker resumes within seconds
	// of a node loss (nats.go's defaults, 30s and 15s, take half a minute).
	DefaultPullExpiry    = 5 * time.Second
	DefaultPullHeartbeat = time.Second
)

// Defaults for [RunnerConfig].
const (
	DefaultShutdownTimeout = 20 * time.Second
	DefaultPublishTimeout  = 5 * time.Second
	// DefaultCaptureDurable is the durable consumer on the DLQ stream that turns
	// MAX_DELIVERIES advisories into dead letters. Every runner shares it.
	DefaultCaptureDurable = "orgbridge-max-deliveries"
	DefaultProbeInterval  = time.Second
	DefaultProbeTimeout   = 2 * time.Second
)

// ConsumerConfig describes one durable pull consumer and how the runner drives
// it. Zero fields take the defaults shown; [ConsumerConfig.Validate] reports
// settings that cannot work.
type ConsumerConfig struct {
	// Stream and Durable name the stream and the durable consumer; required.
	Stream  string
	Durable string
	// FilterSubjects selects subjects of Stream; empty means all.
	FilterSubjects []string
	// AckWait is how long JetStream waits for an outcome before redelivering
	// (default 30s). The runner heartbeats handlers every AckWait/3.
	AckWait time.Duration
	// MaxDeliver is how many deliveries a message gets (default 5); the last
	// failing one is dead-lettered. -1 means unlimited: only permanent errors
	// dead-letter.
	MaxDeliver int
	// BackOff, when set, replaces AckWait for redeliveries after an ack timeout
	// (a crashed or hung worker), one entry per delivery. Handler retries use
	// RetryMin/RetryMax instead. MaxDeliver must exceed its length.
	BackOff []time.Duration
	// MaxAckPending bounds unacknowledged messages across all replicas (default 256).
	MaxAckPending int
	// Concurrency is the number of handler goroutines, and also how many messages
	// are pulled ahead (default 8).
	Concurrency int
	// HandlerTimeout bounds one handler run through its ctx (default 4/5 of
	// AckWait). Heartbeats keep the message from being redelivered until then,
	// so it may exceed AckWait for long work; a handler that ignores its ctx
	// stops being heartbeated at HandlerTimeout and its message is redelivered.
	HandlerTimeout time.Duration
	// RetryMin and RetryMax bound the exponential NakWithDelay backoff of
	// retryable errors (defaults 1s and 1m; ±20 % jitter; doubling per delivery).
	RetryMin time.Duration
	RetryMax time.Duration
	// DoubleAck waits for the server to confirm each ack (a round trip per
	// message). Off by default; see the package doc.
	DoubleAck bool
	// PullExpiry is how long one pull request waits on the server (default
	// 5s), and PullHeartbeat how often the server confirms it is still held
	// (default 1s, at most half of PullExpiry, at least 500ms). Two missed
	// heartbeats mean the request is gone (its consumer's leader died with it):
	// the runner pulls again.
	PullExpiry    time.Duration
	PullHeartbeat time.Duration
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.HandlerTimeout == 0 && c.AckWait > 0 {
		c.HandlerTimeout = c.AckWait * 4 / 5
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.PullExpiry == 0 {
		c.PullExpiry = DefaultPullExpiry
	}
	if c.PullHeartbeat == 0 {
		c.PullHeartbeat = min(DefaultPullHeartbeat, c.PullExpiry/2)
	}
	return c
}

// Validate reports the first setting that cannot work, after defaults.
func (c ConsumerConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case !validName(c.Stream):
		return fmt.Errorf("consumer stream %q must be a non-empty name without '.', '*', '>', '/', '\\' or white space", c.Stream)
	case !validName(c.Durable):
		return fmt.Errorf("consumer durable %q must be a non-empty name without '.', '*', '>', '/', '\\' or white space", c.Durable)
	case c.AckWait < 0:
		return fmt.Errorf("consumer %s: ack wait %s is negative", c.Durable, c.AckWait)
	case c.MaxDeliver < -1:
		return fmt.Errorf("consumer %s: max deliver %d must be at least 1, or -1 for unlimited", c.Durable, c.MaxDeliver)
	case c.MaxDeliver > 0 && len(c.BackOff) >= c.MaxDeliver:
		return fmt.Errorf("consumer %s: max deliver %d must exceed the %d backoff steps", c.Durable, c.MaxDeliver, len(c.BackOff))
	case c.Concurrency < 1:
		return fmt.Errorf("consumer %s: concurrency %d must be at least 1", c.Durable, c.Concurrency)
	case c.MaxAckPending < c.Concurrency:
		return fmt.Errorf("consumer %s: max ack pending %d is below concurrency %d, so handlers would sit idle", c.Durable, c.MaxAckPending, c.Concurrency)
	case c.HandlerTimeout < 0:
		return fmt.Errorf("consumer %s: handler timeout %s is negative", c.Durable, c.HandlerTimeout)
	case c.RetryMin < 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("consumer %s: retry backoff %s..%s is not a valid range", c.Durable, c.RetryMin, c.RetryMax)
	case c.PullExpiry < time.Second:
		return fmt.Errorf("consumer %s: pull expiry %s is below 1s", c.Durable, c.PullExpiry)
	case c.PullHeartbeat < 500*time.Millisecond || c.PullHeartbeat > c.PullExpiry/2:
		return fmt.Errorf("consumer %s: pull heartbeat %s must be at least 500ms and at most half the pull expiry %s", c.Durable, c.PullHeartbeat, c.PullExpiry)
	}
	for _, f := range c.FilterSubjects {
		if f == "" {
			return fmt.Errorf("consumer %s: empty filter subject", c.Durable)
		}
	}
	for _, b := range c.BackOff {
		if b <= 0 {
			return fmt.Errorf("consumer %s: backoff step %s must be positive", c.Durable, b)
		}
	}
	return nil
}

func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*>/\\ \t\r\n")
}

// jsConfig is the JetStream configuration of c (after defaults).
func (c ConsumerConfig) jsConfig() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "orgbridge worker consumer (internal/bus)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		BackOff:       append([]time.Duration(nil), c.BackOff...),
		MaxAckPending: c.MaxAckPending,
	}
	switch len(c.FilterSubjects) {
	case 0:
	case 1:
		cfg.FilterSubject = c.FilterSubjects[0]
	default:
		cfg.FilterSubjects = append([]string(nil), c.FilterSubjects...)
	}
	return cfg
}

// heartbeatEvery is how often a running handler's message is marked in
// progress: a third of the shortest time JetStream waits for an ack.
func (c ConsumerConfig) heartbeatEvery() time.Duration {
	shortest := c.AckWait
	for _, b := range c.BackOff {
		if b < shortest {
			shortest = b
		}
	}
	if every := shortest / 3; every > 0 {
		return every
	}
	return time.Millisecond
}

// retryDelay is how long to wait before redelivering a message whose handler
// returned the retryable err on delivery number deliveries.
func (c ConsumerConfig) retryDelay(deliveries uint64, err error) time.Duration {
	if d, ok := retryAfterOf(err); ok && d > 0 {
		// Honour the retry-after, plus up to 10 % so replicas told the same thing
		// do not all come back at once.
		return d + rand.N(d/10+1)
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     c.RetryMin,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         c.RetryMax,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	n := min(max(deliveries, 1), 40) // after 40 doublings every range is at RetryMax
	d := c.RetryMin
	for range n {
		d = b.NextBackOff()
	}
	return d
}

// RunnerConfig configures a [Runner]. Zero fields take the defaults shown.
type RunnerConfig struct {
	// ShutdownTimeout bounds Run's return after its ctx ends (default 20s): pulling
	// stops, in-flight handlers get 9/10 of it to finish and settle, then their
	// contexts are cancelled and their messages left for redelivery.
	ShutdownTimeout time.Duration
	// PublishTimeout bounds each DLQ publish (default 5s).
	PublishTimeout time.Duration
	// DisableMaxDeliveriesCapture turns off the consumer that converts
	// MAX_DELIVERIES advisories into dead letters. Leave it on in at least one
	// process; every runner may run it (they share one durable).
	DisableMaxDeliveriesCapture bool
	// CaptureDurable names the capture consumer (default [DefaultCaptureDurable]).
	CaptureDurable string
	// Dependencies are what handlers cannot work without (Redis). They are
	// probed every ProbeInterval and after every retryable handler failure,
	// along with the runner's own NATS connection. While one does not answer,
	// an outage is not a bad message: the runner stops pulling, and a handler
	// failure while a probe fails holds its message (heartbeated, its delivery
	// unspent) until the probes pass, then runs the handler again. Only
	// failures with every dependency answering count toward MaxDeliver.
	Dependencies []Dependency
	// ProbeInterval is how often dependencies are probed (default 1s), also
	// how soon consumption resumes after an outage.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe (default 2s); a slower answer is a failure.
	ProbeTimeout time.Duration
	// StartupWait bounds how long Run waits for JetStream to create its
	// consumers while it does not answer (default [DefaultStartupWait]); a
	// negative value tries once.
	StartupWait time.Duration
}

func (c RunnerConfig) withDefaults() RunnerConfig {
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.CaptureDurable == "" {
		c.CaptureDurable = DefaultCaptureDurable
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.StartupWait == 0 {
		c.StartupWait = DefaultStartupWait
	}
	return c
}

// Validate reports the first setting that cannot work, after defaults.
func (c RunnerConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.ShutdownTimeout < 0:
		return errors.New("runner shutdown timeout is negative")
	case c.PublishTimeout < 0:
		return errors.New("runner publish timeout is negative")
	case !validName(c.CaptureDurable):
		return fmt.Errorf("capture durable %q is not a valid consumer name", c.CaptureDurable)
	case c.ProbeInterval < 0:
		return errors.New("runner probe interval is negative")
	case c.ProbeTimeout < 0:
		return errors.New("runner probe timeout is negative")
	}
	seen := map[string]bool{"nats": true}
	for _, d := range c.Dependencies {
		switch {
		case d.Name == "":
			return errors.New("runner dependency without a name")
		case seen[d.Name]:
			return fmt.Errorf("runner dependency %q listed twice (nats is always probed)", d.Name)
		case d.Probe == nil:
			return fmt.Errorf("runner dependency %q has no probe", d.Name)
		}
		seen[d.Name] = true
	}
	return nil
}
