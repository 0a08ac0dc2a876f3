package orgapi

import "log/slog"

// Secret is a credential (access token, refresh token, client secret) that must
// never reach a log: String, GoString and LogValue print "[redacted]". Use
// [Secret.Reveal] where the value itself is needed, on the wire or when
// encrypting it at rest.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String redacts the value, so fmt's %v and %s cannot leak it.
func (s Secret) String() string { return redacted }

// GoString redacts the value for %#v.
func (s Secret) GoString() string { return `"` + redacted + `"` }

// LogValue redacts the value in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
