package ops

import "errors"

var (
	// ErrStreamNotFound is returned when the stream an operation names does not exist.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrConsumerNotFound is returned when a replay names a durable consumer the
	// stream does not have.
	ErrConsumerNotFound = errors.New("consumer not found")
	// ErrDeadLetterNotFound is returned when no message has the given id in the
	// DLQ stream: it never existed, or was already re-driven or purged.
	ErrDeadLetterNotFound = errors.New("dead letter not found")
	// ErrNotDeadLetter is returned for an id in the DLQ stream that holds
	// something other than a dead letter (a captured MAX_DELIVERIES advisory the
	// worker runtime has not converted yet).
	ErrNotDeadLetter = errors.New("message is not a dead letter")
	// ErrNoOriginalSubject is returned when a dead letter lacks the header naming
	// the subject it failed on, so it cannot be re-driven.
	ErrNoOriginalSubject = errors.New("dead letter has no original subject header")
)
