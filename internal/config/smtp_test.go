package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoadSMTP(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    SMTP // after WithDefaults, when no error
		wantVar string
		wantMsg string
	}{
		{name: "unset: mail off", env: map[string]string{}, want: SMTP{TLS: "starttls", Port: 587, Timeout: DefaultSMTPTimeout}},
		{name: "starttls relay with login", env: map[string]string{"SMTP_HOST": "smtp.example.com", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p",
			"SMTP_FROM": "orgbridge <noreply@example.com>"},
			want: SMTP{Host: "smtp.example.com", Port: 587, Username: "u", Password: "p", From: "orgbridge <noreply@example.com>", TLS: "starttls", Timeout: DefaultSMTPTimeout}},
		{name: "implicit TLS picks 465", env: map[string]string{"SMTP_HOST": "h", "SMTP_FROM": "a@b.example", "SMTP_TLS": "tls"},
			want: SMTP{Host: "h", Port: 465, From: "a@b.example", TLS: "tls", Timeout: DefaultSMTPTimeout}},
		{name: "plain relay on a given port", env: map[string]string{"SMTP_HOST": "h", "SMTP_FROM": "a@b.example", "SMTP_TLS": "none", "SMTP_PORT": "2525"},
			want: SMTP{Host: "h", Port: 2525, From: "a@b.example", TLS: "none", Timeout: DefaultSMTPTimeout}},
		{name: "bad port", env: map[string]string{"SMTP_PORT": "smtp"}, wantVar: "SMTP_PORT", wantMsg: "not a port"},
		{name: "port out of range", env: map[string]string{"SMTP_HOST": "h", "SMTP_PORT": "70000"}, wantVar: "SMTP_PORT", wantMsg: "not a port"},
		{name: "bad TLS mode even without a host", env: map[string]string{"SMTP_TLS": "ssl"}, wantVar: "SMTP_TLS", wantMsg: "none, starttls, tls"},
		{name: "host without sender", env: map[string]string{"SMTP_HOST": "h"}, wantVar: "SMTP_FROM", wantMsg: "required"},
		{name: "sender not an address", env: map[string]string{"SMTP_HOST": "h", "SMTP_FROM": "orgbridge"}, wantVar: "SMTP_FROM", wantMsg: "not an address"},
		{name: "user without password", env: map[string]string{"SMTP_HOST": "h", "SMTP_FROM": "a@b.example", "SMTP_USERNAME": "u"}, wantVar: "SMTP_PASSWORD", wantMsg: "required"},
		{name: "password without user", env: map[string]string{"SMTP_HOST": "h", "SMTP_FROM": "a@b.example", "SMTP_PASSWORD": "p"}, wantVar: "SMTP_USERNAME", wantMsg: "required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tc.env[k] })
			if tc.wantVar != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Var != tc.wantVar || !strings.Contains(ce.Problem, tc.wantMsg) {
					t.Fatalf("Load = %v, want an error naming %s saying %q", err, tc.wantVar, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SMTP.WithDefaults(); got != tc.want {
				t.Errorf("SMTP = %#v, want %#v", got, tc.want)
			}
			if c.SMTP.Enabled() != (tc.want.Host != "") {
				t.Errorf("Enabled = %v", c.SMTP.Enabled())
			}
		})
	}
}

func TestSMTPValidate(t *testing.T) {
	ok := SMTP{Host: "h", From: "a@b.example"}
	tests := []struct {
		name    string
		s       SMTP
		wantVar string
	}{
		{"ok", ok, ""},
		{"no host", SMTP{From: "a@b.example"}, "SMTP_HOST"},
		{"negative port", SMTP{Host: "h", From: "a@b.example", Port: -1}, "SMTP_PORT"},
		{"negative timeout", SMTP{Host: "h", From: "a@b.example", Timeout: -time.Second}, "SMTP timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			var ce *Error
			if (tc.wantVar == "") != (err == nil) || (err != nil && (!errors.As(err, &ce) || ce.Var != tc.wantVar)) {
				t.Errorf("Validate = %v, want %q", err, tc.wantVar)
			}
		})
	}
	if a := (SMTP{Host: "mail.example", TLS: "tls"}).Addr(); a != "mail.example:465" {
		t.Errorf("Addr = %s", a)
	}
}

// TestSMTPPasswordNeverPrints: however the settings are printed, logged or
// dumped, the password stays hidden.
func TestSMTPPasswordNeverPrints(t *testing.T) {
	const pw = "hunter2-smtp-password"
	s := SMTP{Host: "h", Username: "u", Password: pw, From: "a@b.example"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("smtp", "cfg", s, "password", s.Password)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("smtp", "cfg", s, "password", s.Password)
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s), "%s": fmt.Sprintf("%s", s.Password),
		"json": string(js), "slog": logged.String(),
	} {
		if strings.Contains(out, pw) || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s shows the password or no redaction: %s", name, out)
		}
	}
	if empty, _ := json.Marshal(Secret("")); string(empty) != `""` {
		t.Errorf("an empty secret marshals as %s", empty)
	}
}
