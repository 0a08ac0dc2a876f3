package orgapi

import "github.com/orgbridge/orgbridge/internal/secret"

// Secret is a credential (access token, refresh token, client secret) that must
// never reach a log ([secret.Secret]). Use [Secret.Reveal] where the value
// itself is needed, on the wire or when encrypting it at rest.
type Secret = secret.Secret
