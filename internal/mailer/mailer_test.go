package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/config"
	smtpemu "github.com/orgbridge/orgbridge/internal/emulator/smtp"
	"github.com/orgbridge/orgbridge/internal/mailer"
)

// sinkConfig points a mailer at s, as dev does.
func sinkConfig(t *testing.T, s *smtpemu.Sink) mailer.Config {
	t.Helper()
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return mailer.Config{Host: host, Port: p, TLS: config.SMTPTLSNone, From: "orgbridge <noreply@orgbridge.example>", Timeout: 10 * time.Second}
}

func TestSendReachesTheSink(t *testing.T) {
	s := smtpemu.StartTest(t)
	m, err := mailer.New(sinkConfig(t, s))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, to, subject, body string
	}{
		{"ascii", "ada@example.com", "You're invited", "Hello Ada,\n\nyour account is ready: https://org.example/login\n"},
		{"accents and a long line", "zoé@example.com", "Bienvenue à bord, Zoé",
			"Bonjour Zoé,\n" + strings.Repeat("une très longue ligne ", 12) + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Clear()
			if err := m.Send(context.Background(), tc.to, tc.subject, tc.body); err != nil {
				t.Fatal(err)
			}
			msgs := s.Messages()
			if len(msgs) != 1 {
				t.Fatalf("the sink caught %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.From != "noreply@orgbridge.example" || len(got.To) != 1 || got.To[0] != tc.to || got.Subject != tc.subject {
				t.Errorf("caught from %q to %v subject %q", got.From, got.To, got.Subject)
			}
			if strings.TrimRight(got.Body, "\n") != strings.TrimRight(tc.body, "\n") {
				t.Errorf("body = %q, want %q", got.Body, tc.body)
			}
			if from := got.Header["From"]; len(from) != 1 || !strings.Contains(from[0], "orgbridge") {
				t.Errorf("From header = %v", from)
			}
		})
	}
}

func TestSendWithLogin(t *testing.T) {
	s := smtpemu.StartTest(t, smtpemu.WithAuth("mailer", "right-password"))
	tests := []struct {
		name      string
		password  string
		wantErr   bool
		retryable bool
	}{
		{name: "right password", password: "right-password"},
		{name: "wrong password", password: "wrong-password-xyz", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sinkConfig(t, s)
			cfg.Username, cfg.Password = "mailer", config.Secret(tc.password)
			m, err := mailer.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.Clear()
			err = m.Send(context.Background(), "ada@example.com", "hi", "body")
			var me *mailer.Error
			switch {
			case !tc.wantErr && err != nil:
				t.Fatal(err)
			case tc.wantErr && (!errors.As(err, &me) || me.Retryable() != tc.retryable):
				t.Fatalf("err = %v, want a mailer.Error, retryable %v", err, tc.retryable)
			case tc.wantErr && strings.Contains(err.Error(), tc.password):
				t.Errorf("the error shows the password: %v", err)
			}
			if n := len(s.Messages()); n != map[bool]int{false: 1, true: 0}[tc.wantErr] {
				t.Errorf("%d messages caught", n)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	s := smtpemu.StartTest(t)
	live := sinkConfig(t, s)

	// A server that accepts connections and never says a word.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	stop := make(chan struct{})
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := mute.Accept()
			if err != nil {
				<-stop
				return
			}
			conns = append(conns, c)
		}
	})
	t.Cleanup(func() { mute.Close(); close(stop); held.Wait() })
	_, mutePort, _ := net.SplitHostPort(mute.Addr().String())

	// An address nothing listens on.
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, gonePort, _ := net.SplitHostPort(gone.Addr().String())
	gone.Close()

	port := func(p string) int { n, _ := strconv.Atoi(p); return n }
	tests := []struct {
		name      string
		cfg       mailer.Config
		to        string
		ctx       func() (context.Context, context.CancelFunc)
		retryable bool
		is        error
	}{
		{name: "not an address", cfg: live, to: "ada at example", is: mailer.ErrBadAddress},
		{name: "server down", cfg: mailer.Config{Host: "127.0.0.1", Port: port(gonePort), TLS: "none", From: "a@b.example"}, to: "ada@example.com", retryable: true},
		{name: "server mute past the caller's deadline", cfg: mailer.Config{Host: "127.0.0.1", Port: port(mutePort), TLS: "none", From: "a@b.example", Timeout: time.Minute},
			to: "ada@example.com", retryable: true,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			}},
		{name: "server mute past the configured timeout", cfg: mailer.Config{Host: "127.0.0.1", Port: port(mutePort), TLS: "none", From: "a@b.example", Timeout: 300 * time.Millisecond},
			to: "ada@example.com", retryable: true},
		{name: "STARTTLS required, not offered", cfg: func() mailer.Config { c := live; c.TLS = config.SMTPTLSStartTLS; return c }(), to: "ada@example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mailer.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			s.Clear()
			err = m.Send(ctx, tc.to, "hi", "body")
			var me *mailer.Error
			if !errors.As(err, &me) || me.To != tc.to {
				t.Fatalf("err = %v, want a *mailer.Error for %s", err, tc.to)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if tc.retryable && !me.Retryable() {
				t.Errorf("err = %v, want retryable", err)
			}
			if tc.is == mailer.ErrBadAddress && me.Retryable() {
				t.Errorf("a bad address is retryable: %v", err)
			}
			if len(s.Messages()) != 0 {
				t.Errorf("the sink caught %d messages", len(s.Messages()))
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     mailer.Config
		wantVar string
	}{
		{"no host", mailer.Config{From: "a@b.example"}, "SMTP_HOST"},
		{"no sender", mailer.Config{Host: "h"}, "SMTP_FROM"},
		{"bad TLS", mailer.Config{Host: "h", From: "a@b.example", TLS: "ssl"}, "SMTP_TLS"},
		{"half a login", mailer.Config{Host: "h", From: "a@b.example", Username: "u"}, "SMTP_PASSWORD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mailer.New(tc.cfg)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tc.wantVar {
				t.Errorf("New = %v, want an error naming %s", err, tc.wantVar)
			}
		})
	}
}

// TestConcurrentSends: one Mailer, many goroutines (run with -race).
func TestConcurrentSends(t *testing.T) {
	s := smtpemu.StartTest(t)
	m, err := mailer.New(sinkConfig(t, s))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Go(func() { errs <- m.Send(context.Background(), fmt.Sprintf("u%d@example.com", i), "hi", "body") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(s.Messages()); n != 10 {
		t.Errorf("%d messages caught, want 10", n)
	}
}
