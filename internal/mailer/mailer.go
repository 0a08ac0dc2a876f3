// Package mailer sends plain-text mail over SMTP (github.com/wneessen/go-mail):
// the provisioning worker's invitations. In dev and tests it points at the
// SMTP sink (internal/emulator/smtp).
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/orgbridge/orgbridge/internal/config"
)

// Config is the mail server and sender: config.SMTP, read from the SMTP_*
// variables (cfg.SMTP), so a worker builds its Mailer with New(cfg.SMTP).
// The password is a config.Secret: it never prints, logs or marshals.
type Config = config.SMTP

// Mailer sends mail through one SMTP server. It is safe for concurrent use:
// each Send is its own SMTP session.
type Mailer struct {
	cfg  Config
	from string
}

// New checks cfg and returns a Mailer; it does not connect.
func New(cfg Config) (*Mailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	cfg = cfg.WithDefaults()
	return &Mailer{cfg: cfg, from: cfg.From}, nil
}

// Addr is the server's host:port.
func (m *Mailer) Addr() string { return m.cfg.Addr() }

// Send delivers one plain-text message to one address. Without a deadline
// on ctx it gives up after the configured timeout. A failure is an [*Error]:
// Retryable tells a temporary one (server down or busy, 4xx) from a
// permanent one (bad address, 5xx).
func (m *Mailer) Send(ctx context.Context, to, subject, textBody string) error {
	if _, err := mail.ParseAddress(to); err != nil {
		return &Error{To: to, Err: fmt.Errorf("%w: %q: %v", ErrBadAddress, to, err)}
	}
	if strings.ContainsAny(subject, "\r\n") {
		return &Error{To: to, Err: errors.New("the subject must be one line")}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.cfg.Timeout)
		defer cancel()
	}
	msg := gomail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return &Error{To: to, Err: fmt.Errorf("sender %q: %w", m.from, err)}
	}
	if err := msg.To(to); err != nil {
		return &Error{To: to, Err: fmt.Errorf("%w: %q: %v", ErrBadAddress, to, err)}
	}
	msg.Subject(subject)
	msg.SetBodyString(gomail.TypeTextPlain, textBody)
	timeout := m.cfg.Timeout
	if d, ok := ctx.Deadline(); ok {
		// go-mail applies the context to dialing only; its I/O timeout
		// must end by the caller's deadline too.
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	c, err := m.client(timeout)
	if err != nil {
		return &Error{To: to, Err: err}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return &Error{To: to, Addr: m.Addr(), Err: err, temporary: temporary(err)}
	}
	return nil
}

// client is a go-mail client for one send.
func (m *Mailer) client(timeout time.Duration) (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTimeout(timeout)}
	switch m.cfg.TLS {
	case config.SMTPTLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case config.SMTPTLSImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(&tls.Config{ServerName: m.cfg.Host, MinVersion: tls.VersionTLS12}))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory),
			gomail.WithTLSConfig(&tls.Config{ServerName: m.cfg.Host, MinVersion: tls.VersionTLS12}))
	}
	if m.cfg.Username != "" {
		// Over TLS the strongest mechanism the server offers; without TLS
		// only PLAIN, which go-mail sends in the clear to a loopback server
		// (the sink, a local relay) and refuses to send anywhere else.
		auth := gomail.SMTPAuthAutoDiscover
		if m.cfg.TLS == config.SMTPTLSNone {
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password.Reveal()))
	}
	c, err := gomail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("setting up the SMTP client for %s: %w", m.Addr(), err)
	}
	return c, nil
}

// temporary tells whether err is worth retrying later: a 4xx answer, or
// no answer at all (the server unreachable or too slow). A 5xx answer
// (bad recipient, authentication refused, relay denied) is not.
func temporary(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		return se.IsTemp() || (code >= 400 && code < 500)
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 400 && te.Code < 500
	}
	return !errors.Is(err, gomail.ErrPlainAuthNotSupported) && !errors.Is(err, gomail.ErrLoginAuthNotSupported)
}
