package ingress

import (
	"net/http"

	"github.com/orgbridge/orgbridge/internal/httpx"
)

// AdminOnly is [httpx.AdminOnly].
//
// Deprecated: use [httpx.AdminOnly]; workers must not import the ingress.
func AdminOnly(token string, h http.Handler) http.Handler { return httpx.AdminOnly(token, h) }

// WriteJSON is [httpx.WriteJSON].
//
// Deprecated: use [httpx.WriteJSON].
func WriteJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

// WriteJSONError is [httpx.WriteJSONError].
//
// Deprecated: use [httpx.WriteJSONError].
func WriteJSONError(w http.ResponseWriter, status int, code, message string) {
	httpx.WriteJSONError(w, status, code, message)
}
