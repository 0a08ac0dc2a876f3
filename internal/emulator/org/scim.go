package orgemu

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	scimContentType = "application/scim+json"
	maxSCIMBody     = 8 << 20
	defaultPageSize = 100
	maxPageSize     = 1000
)

type scimError struct {
	status   int
	scimType string
	detail   string
}

func writeSCIMError(w http.ResponseWriter, status int, scimType, detail string) {
	body := struct {
		Schemas  []string `json:"schemas"`
		Status   string   `json:"status"`
		ScimType string   `json:"scimType,omitempty"`
		Detail   string   `json:"detail,omitempty"`
	}{[]string{schemaError}, strconv.Itoa(status), scimType, detail}
	writeJSON(w, status, scimContentType, body)
}

func (e *scimError) write(w http.ResponseWriter) { writeSCIMError(w, e.status, e.scimType, e.detail) }

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type scimHandler func(w http.ResponseWriter, r *http.Request, o *org)

// scimAuth resolves the bearer token to an org, counts the call and, for
// writes, applies the configured write rate.
func (e *Emulator) scimAuth(write bool, h scimHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
			writeSCIMError(w, http.StatusUnauthorized, "", "an Authorization: Bearer token is required")
			return
		}
		o, err := e.scimOrg(tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim", error="invalid_token"`)
			writeSCIMError(w, http.StatusUnauthorized, "", err.Error())
			return
		}
		if write {
			if e.limiter != nil {
				if wait, ok := e.limiter.take(); !ok {
					e.stats.scimThrottled.Add(1)
					w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
					w.Header().Set("X-Retry-After-Ms", strconv.FormatInt(int64(math.Ceil(float64(wait)/float64(time.Millisecond))), 10))
					writeSCIMError(w, http.StatusTooManyRequests, "", "too many writes: the limit is "+
						strconv.FormatFloat(e.cfg.SCIMWritesPerSecond, 'g', -1, 64)+" per second; retry after the Retry-After delay")
					return
				}
			}
			sw := &statusWriter{ResponseWriter: w}
			h(sw, r, o)
			switch {
			case sw.status >= 200 && sw.status < 300:
				e.stats.scimWrites.Add(1)
			case sw.status >= 400 && sw.status < 500:
				e.stats.scimRefused.Add(1)
			}
			return
		}
		e.stats.scimReads.Add(1)
		h(w, r, o)
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (e *Emulator) scimOrg(tok string) (*org, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := e.now()
	var o *org
	if e.cfg.SCIMToken != "" && tok == e.cfg.SCIMToken {
		if e.cfg.SCIMOrgID != "" {
			o = e.orgLocked(e.cfg.SCIMOrgID)
		} else if len(e.orgList) > 0 {
			o = e.orgList[0]
		}
		if o == nil {
			return nil, errors.New("the static SCIM token names no org")
		}
	} else {
		g, err := e.accessGrantLocked(tok, now)
		if err != nil {
			return nil, err
		}
		o = e.orgs[g.orgID]
	}
	if o.isExpired(now) {
		return nil, errors.New("the org is expired or no longer valid")
	}
	return o, nil
}

func (e *Emulator) location(kind, id string) string {
	return e.URL() + "/services/scim/v2/" + kind + "/" + id
}

func (e *Emulator) renderUser(u *SCIMUser) SCIMUser {
	out := *u
	out.Meta.Location = e.location("Users", u.ID)
	return out
}

func readBody(r *http.Request, v any) *scimError {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSCIMBody+1))
	if err != nil {
		return &scimError{status: 400, scimType: "invalidSyntax", detail: "reading body: " + err.Error()}
	}
	if len(b) > maxSCIMBody {
		return &scimError{status: 413, detail: "request body larger than 8 MiB"}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &scimError{status: 400, scimType: "invalidSyntax", detail: "request body is not valid JSON for this resource: " + err.Error()}
	}
	return nil
}

// checkVersion applies If-Match (RFC 7644 §3.14).
func checkVersion(r *http.Request, current string) *scimError {
	m := r.Header.Get("If-Match")
	if m == "" || m == "*" {
		return nil
	}
	for _, v := range strings.Split(m, ",") {
		if strings.TrimSpace(v) == current {
			return nil
		}
	}
	return &scimError{status: http.StatusPreconditionFailed, detail: "resource changed: version is " + current}
}

func decodeUser(r *http.Request) (*SCIMUser, *scimError) {
	u := &SCIMUser{Active: true}
	if err := readBody(r, u); err != nil {
		return nil, err
	}
	u.Meta = SCIMMeta{}
	return u, nil
}

func (e *Emulator) handleCreateUser(w http.ResponseWriter, r *http.Request, o *org) {
	u, serr := decodeUser(r)
	if serr != nil {
		serr.write(w)
		return
	}
	u.permitted = true
	e.mu.Lock()
	stored, serr := o.dir.addUser(e, u, e.now())
	var out SCIMUser
	if serr == nil {
		out = e.renderUser(stored)
	}
	e.mu.Unlock()
	if serr != nil {
		serr.write(w)
		return
	}
	w.Header().Set("Location", out.Meta.Location)
	w.Header().Set("ETag", out.Meta.Version)
	writeJSON(w, http.StatusCreated, scimContentType, out)
}

func (e *Emulator) handleGetUser(w http.ResponseWriter, r *http.Request, o *org) {
	e.mu.RLock()
	u := o.dir.user(r.PathValue("id"))
	var out SCIMUser
	if u != nil {
		out = e.renderUser(u)
	}
	e.mu.RUnlock()
	if u == nil {
		writeSCIMError(w, http.StatusNotFound, "", "no user "+r.PathValue("id"))
		return
	}
	w.Header().Set("ETag", out.Meta.Version)
	writeJSON(w, http.StatusOK, scimContentType, out)
}

func (e *Emulator) handleReplaceUser(w http.ResponseWriter, r *http.Request, o *org) {
	next, serr := decodeUser(r)
	if serr != nil {
		serr.write(w)
		return
	}
	e.updateUser(w, r, o, func(prev *SCIMUser) (*SCIMUser, *scimError) {
		next.ID = prev.ID
		return next, nil
	})
}

// updateUser runs change on the stored user under the lock, validates and
// stores the result and answers with it.
func (e *Emulator) updateUser(w http.ResponseWriter, r *http.Request, o *org, change func(prev *SCIMUser) (*SCIMUser, *scimError)) {
	id := r.PathValue("id")
	e.mu.Lock()
	out, serr := func() (SCIMUser, *scimError) {
		prev := o.dir.user(id)
		if prev == nil {
			return SCIMUser{}, &scimError{status: 404, detail: "no user " + id}
		}
		if err := checkVersion(r, prev.Meta.Version); err != nil {
			return SCIMUser{}, err
		}
		next, err := change(prev)
		if err != nil {
			return SCIMUser{}, err
		}
		next.ID = prev.ID
		if err := validateUser(next); err != nil {
			return SCIMUser{}, err
		}
		if err := o.dir.checkUnique(next); err != nil {
			return SCIMUser{}, err
		}
		return e.renderUser(o.dir.replaceUser(prev, next, e.now())), nil
	}()
	e.mu.Unlock()
	if serr != nil {
		serr.write(w)
		return
	}
	w.Header().Set("ETag", out.Meta.Version)
	writeJSON(w, http.StatusOK, scimContentType, out)
}

// handleDeleteUser refuses: org users are never deleted, only deactivated
// (PATCH active=false), as in Salesforce.
func (e *Emulator) handleDeleteUser(w http.ResponseWriter, r *http.Request, o *org) {
	w.Header().Set("Allow", "GET, PUT, PATCH")
	writeSCIMError(w, http.StatusMethodNotAllowed, "", "users cannot be deleted; deactivate them with PATCH active=false")
}

type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

// paging reads startIndex (1-based; values below 1 mean 1) and count
// (RFC 7644 §3.4.2.4; negative means 0; capped at 1000).
func paging(r *http.Request) (start, count int, serr *scimError) {
	start, count = 1, defaultPageSize
	q := r.URL.Query()
	if s := q.Get("startIndex"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, 0, &scimError{status: 400, scimType: "invalidValue", detail: "startIndex must be an integer"}
		}
		start = max(n, 1)
	}
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, 0, &scimError{status: 400, scimType: "invalidValue", detail: "count must be an integer"}
		}
		count = min(max(n, 0), maxPageSize)
	}
	return start, count, nil
}

// listQuery reads a list request's paging and filter, checking the filter
// only names attributes of the resource; it has answered the request when ok
// is false.
func listQuery(w http.ResponseWriter, r *http.Request, resource string, attrs map[string]bool) (start, count int, f filter, ok bool) {
	start, count, serr := paging(r)
	if serr != nil {
		serr.write(w)
		return 0, 0, nil, false
	}
	f, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		writeSCIMError(w, http.StatusBadRequest, "invalidFilter", err.Error())
		return 0, 0, nil, false
	}
	for _, c := range f {
		if !attrs[c.attr] {
			writeSCIMError(w, http.StatusBadRequest, "invalidFilter", "filtering "+resource+" on "+c.attr+" is not supported")
			return 0, 0, nil, false
		}
	}
	return start, count, f, true
}

func (e *Emulator) handleListUsers(w http.ResponseWriter, r *http.Request, o *org) {
	start, count, f, ok := listQuery(w, r, "users", userAttrs)
	if !ok {
		return
	}
	resp := listResponse{Schemas: []string{schemaList}, StartIndex: start, Resources: []any{}}
	e.mu.RLock()
	d := o.dir
	if len(f) == 0 {
		// Users are never deleted, so a page is a slice of the creation order.
		resp.TotalResults = len(d.users)
		if lo := start - 1; lo < len(d.users) {
			for _, u := range d.users[lo:min(lo+count, len(d.users))] {
				resp.Resources = append(resp.Resources, e.renderUser(u))
			}
		}
	} else {
		matches := d.matchUsers(f)
		resp.TotalResults = len(matches)
		if lo := start - 1; lo < len(matches) {
			for _, u := range matches[lo:min(lo+count, len(matches))] {
				resp.Resources = append(resp.Resources, e.renderUser(u))
			}
		}
	}
	e.mu.RUnlock()
	resp.ItemsPerPage = len(resp.Resources)
	writeJSON(w, http.StatusOK, scimContentType, resp)
}

var userAttrs = map[string]bool{
	"id": true, "username": true, "externalid": true, "emails": true, "emails.value": true,
	"displayname": true, "active": true, "name.givenname": true, "name.familyname": true, "title": true,
}

// matchUsers narrows by an indexed condition when there is one, then checks
// every condition; results are in creation order.
func (d *directory) matchUsers(f filter) []*SCIMUser {
	var cands []*SCIMUser
	indexed := false
	for _, c := range f {
		if !c.quoted {
			continue
		}
		switch c.attr {
		case "id":
			cands, indexed = appendIf(nil, d.user(c.value)), true
		case "username":
			cands, indexed = appendIf(nil, d.userByName(c.value)), true
		case "externalid":
			cands, indexed = nil, true
			if id, ok := d.byExternalID[c.value]; ok {
				cands = appendIf(nil, d.user(id))
			}
		case "emails", "emails.value":
			cands, indexed = nil, true
			for id := range d.byEmail[strings.ToLower(c.value)] {
				cands = append(cands, d.user(id))
			}
			sortByPos(d, cands)
		default:
			continue
		}
		break
	}
	if !indexed {
		cands = d.users
	}
	out := make([]*SCIMUser, 0, min(len(cands), 16))
	for _, u := range cands {
		if userMatches(u, f) {
			out = append(out, u)
		}
	}
	return out
}

func appendIf(s []*SCIMUser, u *SCIMUser) []*SCIMUser {
	if u != nil {
		return append(s, u)
	}
	return s
}

func sortByPos(d *directory, us []*SCIMUser) {
	// Few users share an email: insertion sort is enough.
	for i := 1; i < len(us); i++ {
		for j := i; j > 0 && d.userPos[us[j].ID] < d.userPos[us[j-1].ID]; j-- {
			us[j], us[j-1] = us[j-1], us[j]
		}
	}
}

func userMatches(u *SCIMUser, f filter) bool {
	for _, c := range f {
		if !userCondMatches(u, c) {
			return false
		}
	}
	return true
}

func userCondMatches(u *SCIMUser, c cond) bool {
	str := func(v string, exact bool) bool {
		if !c.quoted {
			return c.value == "null" && v == ""
		}
		if exact {
			return v == c.value
		}
		return strings.EqualFold(v, c.value)
	}
	switch c.attr {
	case "id":
		return str(u.ID, true) || (c.quoted && normID(c.value) == u.ID)
	case "username":
		return str(u.UserName, false)
	case "externalid":
		return str(u.ExternalID, true)
	case "displayname":
		return str(u.DisplayName, false)
	case "title":
		return str(u.Title, false)
	case "name.givenname", "name.familyname":
		var v string
		if u.Name != nil {
			v = u.Name.GivenName
			if c.attr == "name.familyname" {
				v = u.Name.FamilyName
			}
		}
		return str(v, false)
	case "emails", "emails.value":
		for _, m := range u.Emails {
			if str(m.Value, false) {
				return true
			}
		}
		return false
	case "active":
		return !c.quoted && c.value == strconv.FormatBool(u.Active)
	}
	return false
}

func (e *Emulator) handleSPConfig(w http.ResponseWriter, r *http.Request, _ *org) {
	type supported struct {
		Supported bool `json:"supported"`
	}
	writeJSON(w, http.StatusOK, scimContentType, map[string]any{
		"schemas":          []string{schemaSPConfig},
		"documentationUri": "https://github.com/orgbridge/orgbridge/blob/main/docs/EMULATORS.md",
		"patch":            supported{true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxPageSize},
		"changePassword":   supported{false},
		"sort":             supported{false},
		"etag":             supported{true},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token",
			"description": "An access token from the OAuth web-server flow, or the emulator's static SCIM token",
		}},
		"meta": map[string]string{"resourceType": "ServiceProviderConfig", "location": e.URL() + "/services/scim/v2/ServiceProviderConfig"},
	})
}
