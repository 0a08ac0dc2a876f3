package orgemu

import (
	"net/http"
	"strings"
)

// REST API error codes the query resource answers with, as Salesforce does:
// a JSON list [{"message": …, "errorCode": …}].
const (
	ErrCodeMalformedQuery   = "MALFORMED_QUERY"
	ErrCodeInvalidSessionID = "INVALID_SESSION_ID"
)

// orgNameQuery is the one SOQL query the emulator answers (compared without
// regard to case or runs of spaces).
const orgNameQuery = "select name from organization"

func writeRESTError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, "application/json;charset=UTF-8", []map[string]string{{"message": msg, "errorCode": code}})
}

// handleQuery is GET /services/data/{version}/query?q=SELECT+Name+FROM+Organization:
// the org's name, for an access token of that org. Any other query is
// MALFORMED_QUERY (400); a bad token is INVALID_SESSION_ID (401).
func (e *Emulator) handleQuery(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		writeRESTError(w, http.StatusUnauthorized, ErrCodeInvalidSessionID, "Session expired or invalid")
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	g, err := e.accessGrantLocked(tok, e.now())
	if err != nil {
		writeRESTError(w, http.StatusUnauthorized, ErrCodeInvalidSessionID, "Session expired or invalid")
		return
	}
	q := strings.Join(strings.Fields(r.URL.Query().Get("q")), " ")
	if strings.ToLower(q) != orgNameQuery {
		writeRESTError(w, http.StatusBadRequest, ErrCodeMalformedQuery,
			"the org emulator answers only SELECT Name FROM Organization, not: "+q)
		return
	}
	o := e.orgs[g.orgID]
	version := r.PathValue("version")
	writeJSON(w, http.StatusOK, "application/json;charset=UTF-8", map[string]any{
		"totalSize": 1,
		"done":      true,
		"records": []map[string]any{{
			"attributes": map[string]string{"type": "Organization", "url": "/services/data/" + version + "/sobjects/Organization/" + id18(o.id)},
			"Name":       o.name,
		}},
	})
}
