package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSecretParseKeyring(t *testing.T) {
	good := GenerateKeySpec("k1")
	tests := []struct {
		name    string
		spec    string
		wantErr bool
		primary string
	}{
		{name: "one key", spec: good, primary: "k1"},
		{name: "two keys, first encrypts", spec: GenerateKeySpec("new") + "," + good, primary: "new"},
		{name: "empty", spec: "", wantErr: true},
		{name: "no id", spec: ":abc", wantErr: true},
		{name: "short key", spec: "k:YWJj", wantErr: true},
		{name: "duplicate id", spec: good + "," + good, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeyring(tt.spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseKeyring err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && k.PrimaryID() != tt.primary {
				t.Fatalf("primary = %s, want %s", k.PrimaryID(), tt.primary)
			}
		})
	}
}

func TestSecretSealOpenRotate(t *testing.T) {
	oldSpec := GenerateKeySpec("old")
	oldKeys, _ := ParseKeyring(oldSpec)
	sealed, err := oldKeys.Seal("xoxb-secret-token", "install:A|E|T:bot")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed.Ciphertext, "xoxb") || sealed.KeyID != "old" {
		t.Fatalf("sealed value leaks or lacks key id: %+v", sealed)
	}
	both, _ := ParseKeyring(GenerateKeySpec("new") + "," + oldSpec)
	newOnly, _ := ParseKeyring(GenerateKeySpec("new"))

	tests := []struct {
		name    string
		keys    *Keyring
		aad     string
		wantErr error
	}{
		{name: "same keyring opens", keys: oldKeys, aad: "install:A|E|T:bot"},
		{name: "rotated keyring still opens old values", keys: both, aad: "install:A|E|T:bot"},
		{name: "another purpose does not open", keys: oldKeys, aad: "install:A|E|T:refresh", wantErr: ErrOpen},
		{name: "removed key is reported", keys: newOnly, aad: "install:A|E|T:bot", wantErr: ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keys.Open(sealed, tt.aad)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Open err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Reveal() != "xoxb-secret-token" {
				t.Fatalf("Open = %q, %v", got.Reveal(), err)
			}
		})
	}
	resealed, changed, err := both.Reseal(sealed, "install:A|E|T:bot")
	if err != nil || !changed || resealed.KeyID != "new" {
		t.Fatalf("Reseal = %+v, %v, %v; want re-sealed under new", resealed, changed, err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("xoxb-123")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "token", s)
	out := buf.String() + fmt.Sprintf("%v %s %#v", s, s, s)
	if strings.Contains(out, "xoxb") {
		t.Fatalf("secret printed: %s", out)
	}
}

func TestSecretOAuthState(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		keys, _ := ParseKeyring(GenerateKeySpec("k"))
		st := NewOAuthStates(r.Client, keys)
		ctx := testCtx(t)
		type data struct{ Team string }

		state, err := st.Issue(ctx, "slack", data{Team: "T1"})
		if err != nil {
			t.Fatal(err)
		}
		nonce := StateNonce(state)
		// Issuing writes nothing: an unauthenticated GET cannot fill Redis.
		if n := r.Client.DBSize(ctx).Val(); n != 0 {
			t.Fatalf("issuing a state wrote %d keys", n)
		}
		enc, _, _ := strings.Cut(state, ".")
		forged := enc + "." + keys.Sign("org."+enc)
		// Expired: issued 11 minutes ago.
		old := NewOAuthStates(r.Client, keys)
		old.SetClock(func() time.Time { return time.Now().Add(-StateTTL - time.Minute) })
		expired, err := old.Issue(ctx, "slack", data{Team: "T1"})
		if err != nil {
			t.Fatal(err)
		}
		// Another key's signature over the same payload.
		otherKeys, _ := ParseKeyring(GenerateKeySpec("k"))
		foreign := enc + "." + otherKeys.Sign("slack."+enc)
		tests := []struct {
			name  string
			kind  string
			state string
			ok    bool
		}{
			{name: "unsigned", kind: "slack", state: nonce + ".k.00"},
			{name: "signed for another kind", kind: "slack", state: forged},
			{name: "signed by another key", kind: "slack", state: foreign},
			{name: "expired", kind: "slack", state: expired},
			{name: "valid", kind: "slack", state: state, ok: true},
			{name: "second use", kind: "slack", state: state},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var d data
				_, err := st.Consume(ctx, tt.kind, tt.state, &d)
				if tt.ok {
					if err != nil || d.Team != "T1" {
						t.Fatalf("Consume = %+v, %v", d, err)
					}
					return
				}
				if !errors.Is(err, ErrBadState) {
					t.Fatalf("Consume err = %v, want ErrBadState", err)
				}
			})
		}

		// Spent: its single-use record lives no longer than the state would have.
		if ttl := r.Client.TTL(ctx, stateKey(nonce)).Val(); ttl <= 0 || ttl > StateTTL {
			t.Fatalf("used-state record TTL = %s, want within %s", ttl, StateTTL)
		}

		if err := st.PutOutcome(ctx, nonce, Outcome{OK: true, Message: "first"}); err != nil {
			t.Fatal(err)
		}
		_ = st.PutOutcome(ctx, nonce, Outcome{OK: false, Message: "replayed"})
		out, err := st.WaitOutcome(ctx, nonce)
		if err != nil || !out.OK || out.Message != "first" {
			t.Fatalf("WaitOutcome = %+v, %v; the first outcome must win", out, err)
		}
	})
}
