package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestLoadNATSAuth(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    NATSAuth
		wantVar string // the variable the error names; "" for none
	}{
		{name: "nothing set: no credentials", want: NATSAuth{}},
		{name: "user and password", env: map[string]string{"NATS_USER": "worker", "NATS_PASSWORD": "pw"},
			want: NATSAuth{User: "worker", Password: "pw"}},
		{name: "creds file", env: map[string]string{"NATS_CREDS": "/run/secrets/worker.creds"}, want: NATSAuth{CredsFile: "/run/secrets/worker.creds"}},
		{name: "nkey seed with TLS", env: map[string]string{"NATS_NKEY_SEED": "/s/u.nk", "NATS_TLS_CA": "/ca.pem", "NATS_TLS_CERT": "/c.pem", "NATS_TLS_KEY": "/k.pem"},
			want: NATSAuth{NKeySeedFile: "/s/u.nk", TLSCAFile: "/ca.pem", TLSCertFile: "/c.pem", TLSKeyFile: "/k.pem"}},
		{name: "user without password", env: map[string]string{"NATS_USER": "worker"}, wantVar: "NATS_PASSWORD"},
		{name: "password without user", env: map[string]string{"NATS_PASSWORD": "pw"}, wantVar: "NATS_USER"},
		{name: "two ways at once", env: map[string]string{"NATS_CREDS": "/c.creds", "NATS_USER": "worker", "NATS_PASSWORD": "pw"}, wantVar: "NATS_CREDS"},
		{name: "certificate without key", env: map[string]string{"NATS_TLS_CERT": "/c.pem"}, wantVar: "NATS_TLS_CERT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadNATSAuth(func(k string) string { return tt.env[k] })
			var ce *Error
			switch {
			case tt.wantVar != "":
				if !errors.As(err, &ce) || ce.Var != tt.wantVar {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			case got != tt.want:
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestNATSPasswordNeverPrinted: the password is a Secret in the config.
func TestNATSPasswordNeverPrinted(t *testing.T) {
	c, err := Load(func(k string) string {
		return map[string]string{"NATS_USER": "worker", "NATS_PASSWORD": "hunter2-nats"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.Password.Reveal() != "hunter2-nats" {
		t.Fatalf("password not loaded")
	}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%#v", c.NATS), fmt.Sprintf("%+v", c.NATS)} {
		if strings.Contains(s, "hunter2-nats") {
			t.Fatalf("password printed: %s", s)
		}
	}
}

func TestLoadNATSAdminAuth(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    NATSAuth
		wantVar string
	}{
		{name: "none: the admin API shares the ingress's connection", env: map[string]string{"NATS_USER": "ingress", "NATS_PASSWORD": "pw", "NATS_TLS_CA": "/ca.pem"}},
		{name: "the ops user, with the ingress's TLS settings", env: map[string]string{"NATS_ADMIN_USER": "ops", "NATS_ADMIN_PASSWORD": "opspw", "NATS_TLS_CA": "/ca.pem"},
			want: NATSAuth{User: "ops", Password: "opspw", TLSCAFile: "/ca.pem"}},
		{name: "password without user", env: map[string]string{"NATS_ADMIN_PASSWORD": "opspw"}, wantVar: "NATS_ADMIN_USER"},
		{name: "creds and user", env: map[string]string{"NATS_ADMIN_CREDS": "/ops.creds", "NATS_ADMIN_USER": "ops", "NATS_ADMIN_PASSWORD": "x"}, wantVar: "NATS_ADMIN_CREDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadNATSAdminAuth(func(k string) string { return tt.env[k] })
			var ce *Error
			switch {
			case tt.wantVar != "":
				if !errors.As(err, &ce) || ce.Var != tt.wantVar {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			case got != tt.want:
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}
