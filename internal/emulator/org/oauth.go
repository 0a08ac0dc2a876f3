package orgemu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// OAuth error codes and descriptions the emulator answers with, as Salesforce
// does. Authorize puts them on the redirect (error, error_description); the
// token endpoint answers 400 {"error": …, "error_description": …}.
const (
	ErrCodeInvalidGrant     = "invalid_grant"
	ErrCodeInvalidClient    = "invalid_client"    // wrong client secret
	ErrCodeInvalidClientID  = "invalid_client_id" // unknown client id
	ErrCodeAccessDenied     = "access_denied"     // unknown or inactive user, expired org
	ErrCodeOrgNotPermitted  = "OAUTH_APP_BLOCKED"
	ErrCodeUserNotPermitted = "OAUTH_APP_ACCESS_DENIED"
	ErrCodeUnsupportedGrant = "unsupported_grant_type"
	ErrCodeUnsupportedResp  = "unsupported_response_type"
	ErrCodeInvalidRequest   = "invalid_request"

	DescExpiredToken     = "expired access/refresh token"
	DescExpiredCode      = "expired authorization code"
	DescOrgNotPermitted  = "this app is blocked by admin"
	DescUserNotPermitted = "user is not admin approved to access this app"
	DescInvalidClient    = "invalid client credentials"
	DescInvalidClientID  = "client identifier invalid"
	DescUnknownUser      = "invalid username: no user has this login_hint"
	DescInactiveUser     = "user is inactive"
	DescOrgExpired       = "the org is expired or no longer valid"
	DescRedirectMismatch = "redirect_uri must match the one sent to authorize"
)

const (
	defaultScope             = "api id refresh_token"
	userInfoBadToken         = "Bad_OAuth_Token"
	userInfoMissingToken     = "Missing_OAuth_Token"
	identityPathPrefix       = "/id/"
	tokenRandomBytes         = 24
	authorizationCodePrefix  = "aPr"
	accessTokenSeparator     = "!"
	refreshTokenPrefix       = "5Aep"
	errAccessTokenInvalidMsg = "the access token is invalid or expired"
	maxPendingCodes          = 10000
)

type authCode struct {
	orgID, userID, clientID, redirectURI, scope string
	expires                                     time.Time
}

type grant struct {
	orgID, userID, clientID, scope string
	expires                        time.Time // access tokens only
}

func randomToken() string {
	b := make([]byte, tokenRandomBytes)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI *url.URL, params url.Values) {
	u := *redirectURI
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// handleAuthorize picks the user named by login_hint and redirects back at once
// with a code, or with error and error_description. Without a login_hint (a
// person clicking through dev mode) it shows a login page listing the users.
func (e *Emulator) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("login_hint") == "" && q.Get("redirect_uri") != "" {
		e.loginPage(w, r)
		return
	}
	ru, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !ru.IsAbs() {
		http.Error(w, "error=invalid_request&error_description=redirect_uri must be an absolute URL", http.StatusBadRequest)
		return
	}
	clientID := q.Get("client_id")
	if clientID == "" || (e.cfg.ClientID != "" && clientID != e.cfg.ClientID) {
		http.Error(w, "error="+ErrCodeInvalidClientID+"&error_description="+DescInvalidClientID, http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		e.log.Info("orgemu: authorize refused", "login_hint", q.Get("login_hint"), "error", code, "description", desc)
		p := url.Values{"error": {code}, "error_description": {desc}}
		if state != "" {
			p.Set("state", state)
		}
		redirectWith(w, r, ru, p)
	}
	if q.Get("response_type") != "code" {
		fail(ErrCodeUnsupportedResp, "response_type must be code")
		return
	}
	scope := q.Get("scope")
	if scope == "" {
		scope = defaultScope
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	o, u := e.findUserLocked(q.Get("login_hint"))
	switch {
	case u == nil:
		fail(ErrCodeAccessDenied, DescUnknownUser)
	case o.isExpired(now):
		fail(ErrCodeAccessDenied, DescOrgExpired)
	case !u.Active:
		fail(ErrCodeAccessDenied, DescInactiveUser)
	case !o.appAllowed:
		fail(ErrCodeOrgNotPermitted, DescOrgNotPermitted)
	case !u.permitted:
		fail(ErrCodeUserNotPermitted, DescUserNotPermitted)
	default:
		if len(e.codes) > maxPendingCodes {
			for k, c := range e.codes {
				if !now.Before(c.expires) {
					delete(e.codes, k)
				}
			}
		}
		code := authorizationCodePrefix + randomToken()
		e.codes[code] = &authCode{orgID: o.id, userID: u.ID, clientID: clientID, redirectURI: ru.String(), scope: scope, expires: now.Add(e.cfg.CodeTTL)}
		p := url.Values{"code": {code}}
		if state != "" {
			p.Set("state", state)
		}
		redirectWith(w, r, ru, p)
	}
}

// findUserLocked finds a user by username across orgs (usernames are unique
// across all orgs, as in Salesforce); the caller holds e.mu.
func (e *Emulator) findUserLocked(username string) (*org, *SCIMUser) {
	if username == "" {
		return nil, nil
	}
	for _, o := range e.orgList {
		if u := o.dir.userByName(username); u != nil {
			return o, u
		}
	}
	return nil, nil
}

type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Emulator) tokenFail(w http.ResponseWriter, code, desc string) {
	e.log.Info("orgemu: token refused", "error", code, "description", desc)
	writeJSON(w, http.StatusBadRequest, "application/json", tokenError{code, desc})
}

// handleToken exchanges an authorization code or a refresh token.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		e.tokenFail(w, ErrCodeInvalidRequest, "body must be application/x-www-form-urlencoded")
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id, s, ok := r.BasicAuth(); ok {
		clientID, secret = id, s
	}
	if clientID == "" || (e.cfg.ClientID != "" && clientID != e.cfg.ClientID) {
		e.tokenFail(w, ErrCodeInvalidClientID, DescInvalidClientID)
		return
	}
	if e.cfg.ClientSecret != "" && !hmac.Equal([]byte(secret), []byte(e.cfg.ClientSecret)) {
		e.tokenFail(w, ErrCodeInvalidClient, DescInvalidClient)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var g grant
	withRefresh := false
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		code := r.PostForm.Get("code")
		c, ok := e.codes[code]
		delete(e.codes, code) // single use, even when the exchange fails
		if !ok || !now.Before(c.expires) || c.clientID != clientID {
			e.tokenFail(w, ErrCodeInvalidGrant, DescExpiredCode)
			return
		}
		if c.redirectURI != r.PostForm.Get("redirect_uri") {
			e.tokenFail(w, ErrCodeInvalidGrant, DescRedirectMismatch)
			return
		}
		g = grant{orgID: c.orgID, userID: c.userID, clientID: clientID, scope: c.scope}
		withRefresh = strings.Contains(" "+c.scope+" ", " refresh_token ") || strings.Contains(" "+c.scope+" ", " full ")
	case "refresh_token":
		rg, ok := e.refresh[r.PostForm.Get("refresh_token")]
		if !ok || rg.clientID != clientID {
			e.tokenFail(w, ErrCodeInvalidGrant, DescExpiredToken)
			return
		}
		g = *rg
	case "":
		e.tokenFail(w, ErrCodeInvalidRequest, "grant type is missing")
		return
	default:
		e.tokenFail(w, ErrCodeUnsupportedGrant, "grant type not supported: "+gt)
		return
	}
	o := e.orgs[g.orgID]
	u := o.dir.user(g.userID)
	switch {
	case o.isExpired(now) || !u.Active:
		e.tokenFail(w, ErrCodeInvalidGrant, DescExpiredToken)
		return
	case !o.appAllowed:
		e.tokenFail(w, ErrCodeOrgNotPermitted, DescOrgNotPermitted)
		return
	case !u.permitted:
		e.tokenFail(w, ErrCodeUserNotPermitted, DescUserNotPermitted)
		return
	}
	access := o.id + accessTokenSeparator + randomToken()
	ag := g
	ag.expires = now.Add(e.cfg.AccessTokenTTL)
	e.access[access] = &ag
	id := e.URL() + identityPathPrefix + o.id + "/" + u.ID
	issued := strconv.FormatInt(now.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(id + issued))
	resp := map[string]string{
		"access_token": access,
		"signature":    base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		"scope":        g.scope,
		"instance_url": e.URL(),
		"id":           id,
		"token_type":   "Bearer",
		"issued_at":    issued,
	}
	if withRefresh {
		rt := refreshTokenPrefix + randomToken()
		rg := g
		e.refresh[rt] = &rg
		resp["refresh_token"] = rt
	}
	e.stats.tokens.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, "application/json", resp)
}

// accessGrantLocked resolves an access token that is still good: not expired,
// its org not expired, its user active. The caller holds e.mu.
func (e *Emulator) accessGrantLocked(tok string, now time.Time) (*grant, error) {
	g, ok := e.access[tok]
	if !ok || !now.Before(g.expires) {
		return nil, errors.New(errAccessTokenInvalidMsg)
	}
	o := e.orgs[g.orgID]
	if o.isExpired(now) {
		return nil, errors.New(DescOrgExpired)
	}
	if u := o.dir.user(g.userID); u == nil || !u.Active {
		return nil, errors.New(errAccessTokenInvalidMsg)
	}
	return g, nil
}

// userFromToken answers 403 Bad_OAuth_Token as Salesforce's userinfo does when
// the token is bad, and returns nil.
func (e *Emulator) userFromToken(w http.ResponseWriter, r *http.Request) (*org, *SCIMUser) {
	tok, ok := bearer(r)
	if !ok {
		if err := r.ParseForm(); err == nil && r.Form.Get("access_token") != "" {
			tok, ok = r.Form.Get("access_token"), true
		}
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="userinfo"`)
		http.Error(w, userInfoMissingToken, http.StatusForbidden)
		return nil, nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	g, err := e.accessGrantLocked(tok, e.now())
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="userinfo", error="invalid_token"`)
		http.Error(w, userInfoBadToken, http.StatusForbidden)
		return nil, nil
	}
	o := e.orgs[g.orgID]
	u := o.dir.user(g.userID)
	return o, u
}

func names(u *SCIMUser) (given, family, full string) {
	if u.Name != nil {
		given, family, full = u.Name.GivenName, u.Name.FamilyName, u.Name.Formatted
	}
	if full == "" {
		full = strings.TrimSpace(given + " " + family)
	}
	if full == "" {
		full = u.DisplayName
	}
	if full == "" {
		full = u.UserName
	}
	return given, family, full
}

func primaryEmail(u *SCIMUser) string {
	for _, m := range u.Emails {
		if m.Primary {
			return m.Value
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Value
	}
	return ""
}

// customAttributes are the connected app's custom attributes for u, as
// Salesforce adds them to userinfo and the identity URL: strings, with
// org_admin "true" for an org admin.
func customAttributes(u *SCIMUser) map[string]string {
	return map[string]string{"org_admin": strconv.FormatBool(u.admin)}
}

func (e *Emulator) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	o, u := e.userFromToken(w, r)
	if u == nil {
		return
	}
	given, family, full := names(u)
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"sub":                e.URL() + identityPathPrefix + o.id + "/" + u.ID,
		"user_id":            u.ID,
		"organization_id":    o.id,
		"preferred_username": u.UserName,
		"nickname":           strings.Split(u.UserName, "@")[0],
		"name":               full,
		"given_name":         given,
		"family_name":        family,
		"email":              primaryEmail(u),
		"email_verified":     true,
		"active":             u.Active,
		"user_type":          "STANDARD",
		"updated_at":         u.Meta.LastModified,
		"is_app_installed":   true,
		"custom_attributes":  customAttributes(u),
	})
}

func (e *Emulator) handleIdentity(w http.ResponseWriter, r *http.Request) {
	o, u := e.userFromToken(w, r)
	if u == nil {
		return
	}
	if normID(r.PathValue("org")) != o.id || normID(r.PathValue("user")) != u.ID {
		http.Error(w, userInfoBadToken, http.StatusForbidden)
		return
	}
	given, family, full := names(u)
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"id":                 e.URL() + identityPathPrefix + o.id + "/" + u.ID,
		"asserted_user":      true,
		"user_id":            u.ID,
		"organization_id":    o.id,
		"username":           u.UserName,
		"nick_name":          strings.Split(u.UserName, "@")[0],
		"display_name":       full,
		"email":              primaryEmail(u),
		"email_verified":     true,
		"first_name":         given,
		"last_name":          family,
		"active":             u.Active,
		"user_type":          "STANDARD",
		"last_modified_date": u.Meta.LastModified,
		"is_app_installed":   true,
		"custom_attributes":  customAttributes(u),
	})
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Log in · org emulator</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}
li{margin:.2rem 0}.off{color:#888}</style></head>
<body><h1>Log in to your org</h1>
<p>This is orgbridge's org emulator: pick the user to log in as (a real org asks for a password).</p>
<form method="get" action="">{{range $k, $v := .Query}}{{range $v}}
<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<label>Username <input name="login_hint" size="32" autofocus></label> <button>Log in</button></form>
{{range .Orgs}}<h2>{{.Name}} <small>{{.ID}}{{if .Expired}} · expired{{end}}{{if not .AppAllowed}} · app not allowed{{end}}</small></h2><ul>
{{range .Users}}<li><a href="{{$.Link .Username}}">{{.Username}}</a> {{.Name}}{{if .Admin}} <span class="off">org admin</span>{{end}}{{if not .Active}} <span class="off">inactive</span>{{end}}{{if not .Permitted}} <span class="off">no app permission</span>{{end}}</li>
{{end}}</ul>{{end}}</body></html>`))

type loginView struct {
	Query url.Values
	Orgs  []OrgInfo
}

// Link is the authorize URL (relative) with login_hint set to username.
func (v loginView) Link(username string) template.URL {
	q := url.Values{}
	for k, vs := range v.Query {
		q[k] = vs
	}
	q.Set("login_hint", username)
	return template.URL("?" + q.Encode())
}

func (e *Emulator) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := loginTmpl.Execute(w, loginView{Query: q, Orgs: e.World().Orgs}); err != nil {
		e.log.Warn("orgemu: rendering the login page", "error", err)
	}
}
