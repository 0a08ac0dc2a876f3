package bus

import (
	"errors"
	"time"

	"github.com/slack-go/slack"
)

var (
	// ErrShutdownTimeout is returned by [Runner.Run] when handlers were still
	// running when the shutdown timeout ran out. Their contexts were cancelled and
	// their messages left unacknowledged, so JetStream redelivers them.
	ErrShutdownTimeout = errors.New("bus: handlers still running when the shutdown timeout ran out; their messages will be redelivered")

	// ErrAlreadyRunning is returned by [Runner.Run] called twice and by
	// [Runner.Register] after Run started.
	ErrAlreadyRunning = errors.New("bus: runner already started")

	// ErrNoConsumers is returned by [Runner.Run] when nothing was registered and
	// max-deliveries capture is disabled.
	ErrNoConsumers = errors.New("bus: no consumers registered")

	// ErrHandlerPanicked wraps the value of a handler panic caught by [Recover].
	// The message is dead-lettered: the same input would panic again.
	ErrHandlerPanicked = errors.New("bus: handler panicked")

	// ErrInFlight is returned (with a retry-after) by [IdempotentExternal] when
	// another delivery of the same message is still in flight.
	ErrInFlight = errors.New("bus: another delivery of this message is in flight")
)

// retryable is the behaviour an error may carry to say whether trying again can help.
type retryable interface{ Retryable() bool }

// retryAfterer is the behaviour an error may carry to say when to try again.
type retryAfterer interface{ RetryAfter() time.Duration }

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Retryable() bool { return false }

// Permanent marks err as one that trying again cannot fix (malformed input, a
// rule the message breaks): the runner dead-letters the message at once.
// Permanent(nil) is nil. errors.Is and errors.As see through it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) Retryable() bool           { return true }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }

// RetryAfter marks err as retryable no sooner than d from now (a rate limit's
// Retry-After, a lock held by someone else). The runner redelivers after d
// instead of its exponential backoff. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

// IsPermanent reports whether err says retrying cannot help: the first error in
// its chain with a Retryable() bool method returns false. The outermost marking
// wins, so RetryAfter(Permanent(e), d) is retryable and Permanent(RetryAfter(e,
// d)) is not. Errors without the method are retryable.
func IsPermanent(err error) bool {
	var r retryable
	return errors.As(err, &r) && !r.Retryable()
}

// retryAfterOf finds a retry-after in err's chain: a RetryAfter() method, or
// slack-go's *slack.RateLimitedError, whose RetryAfter is a field.
func retryAfterOf(err error) (time.Duration, bool) {
	var ra retryAfterer
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	return 0, false
}
