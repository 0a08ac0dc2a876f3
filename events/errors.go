package events

import (
	"errors"
	"fmt"
)

// ErrInvalidSubject is matched (errors.Is) by every error [ValidateSubject]
// and [Publisher.Publish] return for a subject that must not be published.
var ErrInvalidSubject = errors.New("events: invalid subject")

// SubjectError says why a subject cannot be published. A subject longer than
// the server's control line (4 KiB by default) is worse than refused: the
// server answers "maximum control line exceeded" and nats.go closes the
// connection for good, stopping everything else on it. So [Publisher.Publish]
// checks first and returns a SubjectError without sending anything.
//
// Trying again cannot help: Retryable reports false, and orgbridge's handler
// runner dead-letters the message at once instead of redelivering it.
type SubjectError struct {
	// Subject is the subject, shortened to its first [maxShownSubject] bytes
	// when longer so that the error stays readable in logs.
	Subject string
	// Len is the subject's full length in bytes.
	Len int
	// Reason says what is wrong, for the person reading the error.
	Reason string
}

// maxShownSubject bounds how much of a bad subject an error repeats.
const maxShownSubject = 64

func newSubjectError(subject, reason string) *SubjectError {
	shown := subject
	if len(shown) > maxShownSubject {
		shown = shown[:maxShownSubject] + "…"
	}
	return &SubjectError{Subject: shown, Len: len(subject), Reason: reason}
}

func (e *SubjectError) Error() string {
	return fmt.Sprintf("events: subject %q (%d bytes) cannot be published: %s", e.Subject, e.Len, e.Reason)
}

// Is makes errors.Is(err, [ErrInvalidSubject]) true.
func (e *SubjectError) Is(target error) bool { return target == ErrInvalidSubject }

// Retryable reports false: the same subject is refused every time.
func (e *SubjectError) Retryable() bool { return false }
