// Package httpx holds the small HTTP helpers the admin APIs share: the
// bearer-token guard and the JSON answers. Workers import it instead of the
// ingress, so each can serve its admin API without the ingress package.
package httpx

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// AdminOnly guards h with `Authorization: Bearer <token>`: 401 without it or with
// a wrong one. An empty token turns the admin API off (every request 401s), so a
// deployment that forgot to set one is closed, not open.
func AdminOnly(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orgbridge admin"`)
			WriteJSONError(w, http.StatusUnauthorized, "unauthorized",
				"send Authorization: Bearer <ORGBRIDGE_ADMIN_TOKEN>")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSONError answers with the admin API's error shape:
// {"error": code, "message": what happened and what to do}.
func WriteJSONError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, map[string]string{"error": code, "message": strings.TrimSpace(message)})
}
