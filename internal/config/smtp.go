package config

import (
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"time"
)

// SMTP TLS modes for [SMTP].TLS.
const (
	SMTPTLSNone     = "none"     // plain text: local relays, the dev SMTP sink
	SMTPTLSStartTLS = "starttls" // STARTTLS required (port 587)
	SMTPTLSImplicit = "tls"      // TLS from the first byte (port 465)

	DefaultSMTPTimeout      = 30 * time.Second
	DefaultSMTPEmulatorAddr = "127.0.0.1:8025"
)

// SMTP is the mail server orgbridge sends mail through (the provisioning
// worker's invitations); internal/mailer sends with it. It is off while Host
// is empty. Password never prints ([Secret]).
type SMTP struct {
	Host     string
	Port     int // 0: by TLS: 25 none, 587 starttls, 465 tls
	Username string
	Password Secret
	// From is the sender, "name <address>" or an address.
	From string
	// TLS is none, starttls or tls; empty means starttls.
	TLS string
	// Timeout bounds connecting and one send when the caller's context has
	// no deadline; 0 means 30s.
	Timeout time.Duration
}

// Enabled reports whether a mail server is configured.
func (s SMTP) Enabled() bool { return s.Host != "" }

// WithDefaults fills in the port, TLS mode and timeout.
func (s SMTP) WithDefaults() SMTP {
	if s.TLS == "" {
		s.TLS = SMTPTLSStartTLS
	}
	if s.Port == 0 {
		s.Port = map[string]int{SMTPTLSNone: 25, SMTPTLSStartTLS: 587, SMTPTLSImplicit: 465}[s.TLS]
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultSMTPTimeout
	}
	return s
}

// Addr is host:port (defaults applied).
func (s SMTP) Addr() string {
	d := s.WithDefaults()
	return net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
}

// Validate reports the first setting a mailer cannot work with, naming the
// environment variable that sets it.
func (s SMTP) Validate() error {
	switch s.TLS {
	case "", SMTPTLSNone, SMTPTLSStartTLS, SMTPTLSImplicit:
	default:
		return &Error{"SMTP_TLS", fmt.Sprintf("%q is not one of none, starttls, tls", s.TLS)}
	}
	switch {
	case s.Host == "":
		return &Error{"SMTP_HOST", "is required to send mail (the SMTP server's host name)"}
	case s.Port < 0 || s.Port > 65535:
		return &Error{"SMTP_PORT", fmt.Sprintf("%d is not a port (1-65535)", s.Port)}
	case s.Username == "" && s.Password != "":
		return &Error{"SMTP_USERNAME", "is required when SMTP_PASSWORD is set"}
	case s.Username != "" && s.Password == "":
		return &Error{"SMTP_PASSWORD", "is required when SMTP_USERNAME is set"}
	case s.From == "":
		return &Error{"SMTP_FROM", "is required: the sender address, e.g. orgbridge <noreply@example.com>"}
	case s.Timeout < 0:
		return &Error{"SMTP timeout", "must not be negative"}
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return &Error{"SMTP_FROM", fmt.Sprintf("%q is not an address (%v)", s.From, err)}
	}
	return nil
}

// loadSMTP reads the SMTP_* variables; an unset SMTP_HOST leaves mail off
// and the rest unchecked except their syntax.
func loadSMTP(getenv func(string) string) (SMTP, error) {
	s := SMTP{Host: getenv("SMTP_HOST"), Username: getenv("SMTP_USERNAME"), Password: Secret(getenv("SMTP_PASSWORD")),
		From: getenv("SMTP_FROM"), TLS: getenv("SMTP_TLS")}
	if v := getenv("SMTP_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return s, &Error{"SMTP_PORT", fmt.Sprintf("%q is not a port (1-65535)", v)}
		}
		s.Port = p
	}
	if !s.Enabled() {
		if err := (SMTP{Host: "-", TLS: s.TLS, From: "x@y"}).Validate(); err != nil {
			return s, err
		}
		return s, nil
	}
	return s, s.Validate()
}
