// Package secret holds [Secret], orgbridge's one type for a credential in
// memory: bot and user tokens, refresh tokens, OAuth codes, client and
// signing secrets, passwords, encryption keys.
//
// It has no dependencies beyond the standard library so that every package
// (config, store, orgapi, the workers) can use the same type: config.Secret,
// store.Secret, orgapi.Secret and disconnect.Token are aliases of it.
package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what a [Secret] prints, logs and encodes as.
const Redacted = "[redacted]"

// Secret is a credential that never shows: fmt (every verb), slog (as an
// attribute and inside a struct, text or JSON), encoding/json and
// encoding/text print it as [Redacted]. [Secret.Reveal] is the one way out,
// for the places that send it or seal it.
//
// An empty Secret encodes as "" in JSON and text, so a dumped configuration
// shows which secrets are set without showing them.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, for %#v.
func (Secret) GoString() string { return `"` + Redacted + `"` }

// Format implements fmt.Formatter, so no verb — not even a wrong one such as
// %d, which fmt would otherwise answer with the raw value — shows the secret.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler: "[redacted]", or "" when empty.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + Redacted + `"`), nil
}

// MarshalText implements encoding.TextMarshaler: [Redacted], or nothing when empty.
func (s Secret) MarshalText() ([]byte, error) {
	if s == "" {
		return []byte{}, nil
	}
	return []byte(Redacted), nil
}
