package mailer

import (
	"errors"
	"fmt"
)

// ErrBadAddress means a recipient is not an email address; sending to it
// again cannot work.
var ErrBadAddress = errors.New("mailer: not an email address")

// Error is a failed send. It never holds the SMTP password.
type Error struct {
	To   string // the recipient
	Addr string // the server, when it was reached for
	Err  error

	temporary bool
}

func (e *Error) Error() string {
	if e.Addr != "" {
		return fmt.Sprintf("mailer: sending to %s through %s: %v", e.To, e.Addr, e.Err)
	}
	return fmt.Sprintf("mailer: sending to %s: %v", e.To, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether sending again later may work: the server was
// down, slow or answered with a temporary (4xx) refusal.
func (e *Error) Retryable() bool { return e.temporary }
