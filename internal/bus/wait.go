package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStartupWait bounds how long [EnsureStreams] and [Runner.Run] wait
// for JetStream to create streams and consumers. A NATS cluster that is still
// forming, or electing a leader after a node was lost, refuses or ignores
// those requests for a few seconds; a process started then waits instead of
// exiting.
const DefaultStartupWait = 2 * time.Minute

// startupAttempt bounds one request while waiting: JetStream answers in
// milliseconds when it can, and a request no leader heard gets no answer.
// Asking again is harmless: creating or updating is idempotent.
const startupAttempt = 3 * time.Second

// WaitOption tunes how [EnsureStreams] waits for JetStream.
type WaitOption func(*waitOpts)

type waitOpts struct {
	log    *slog.Logger
	within time.Duration
}

// WaitLogger logs every failed try (at warn, with what is being waited for
// and when the next try comes) to l. Without it the wait is silent.
func WaitLogger(l *slog.Logger) WaitOption { return func(o *waitOpts) { o.log = l } }

// WaitWithin bounds the whole wait (default [DefaultStartupWait]); zero or
// less tries once.
func WaitWithin(d time.Duration) WaitOption { return func(o *waitOpts) { o.within = d } }

// untilJetStreamAnswers runs op until it succeeds, fails in a way trying
// again cannot fix, ctx ends or within has passed; it backs off between tries
// (250ms doubling to 5s, with jitter) and logs each failure, saying what it
// waits for. Each try gets at most startupAttempt, and no more than is left.
func untilJetStreamAnswers(ctx context.Context, log *slog.Logger, within time.Duration, what string, op func(context.Context) error) error {
	if log == nil {
		log = discardLogger
	}
	until := time.Now().Add(within)
	try := func() error {
		actx, cancel := context.WithTimeout(ctx, min(startupAttempt, max(time.Until(until), 250*time.Millisecond)))
		defer cancel()
		err := op(actx)
		if err != nil && jetStreamRefusal(err) {
			return backoff.Permanent(err)
		}
		return err
	}
	if within <= 0 {
		return try()
	}
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(250*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(within),
	)
	start := time.Now()
	tries := 0
	err := backoff.RetryNotify(func() error { tries++; return try() }, backoff.WithContext(b, ctx), func(err error, next time.Duration) {
		log.Warn("waiting for NATS JetStream to answer; a cluster may be forming or electing a leader",
			slog.String("waiting_for", what), slog.Any("error", err), slog.Duration("retry_in", next),
			slog.Duration("gives_up_in", max(within-time.Since(start), 0).Round(time.Second)))
	})
	switch {
	case err == nil:
		if tries > 1 {
			log.Info("NATS JetStream answered", slog.String("waited_for", what),
				slog.Duration("after", time.Since(start).Round(time.Millisecond)), slog.Int("tries", tries))
		}
		return nil
	case jetStreamRefusal(err) || ctx.Err() != nil:
		return err
	}
	return fmt.Errorf("no answer from NATS JetStream within %s (%d tries; last: %w): check that the NATS servers are up, "+
		"form a cluster and have JetStream enabled (`orgbridge streams` shows the streams' replicas and leaders), and that "+
		"ORGBRIDGE_STREAM_REPLICAS does not exceed the servers", within, tries, err)
}

// jetStreamRefusal reports whether JetStream answered err to a request that
// asking again cannot change: the configuration is wrong, or JetStream is
// not there at all. Everything else (timeouts, no responders, a cluster
// without a leader or not enough peers yet) may pass.
func jetStreamRefusal(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount,
		jetstream.ErrorCode(10074), // replicas > 1 not supported in non-clustered mode
		jetstream.ErrorCode(10052): // invalid stream configuration
		return true
	case jetstream.ErrorCode(10005), // no suitable peers for placement: peers still joining
		jetstream.JSErrCodeStreamNameInUse: // created meanwhile by another process: the next try updates it
		return false
	}
	return apiErr.Code == 400
}
