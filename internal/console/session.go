package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
)

// Session is who is signed in.
type Session struct {
	Name      string    `json:"name"`
	Username  string    `json:"username,omitempty"`
	OrgID     string    `json:"org_id,omitempty"`
	OrgUserID string    `json:"org_user_id,omitempty"`
	Admin     bool      `json:"admin,omitempty"`
	Operator  bool      `json:"operator,omitempty"`
	Expires   time.Time `json:"expires"`
}

func (s *Session) role() role {
	switch {
	case s.Operator:
		return roleOperator
	case s.Admin:
		return roleAdmin
	}
	return roleUser
}

// org15 is the session's org id in its 15-character form (the form
// orgbridge keys orgs by).
func (s *Session) org15() string {
	if len(s.OrgID) >= 15 {
		return s.OrgID[:15]
	}
	return s.OrgID
}

// Role names the session's role for pages.
func (s *Session) Role() string { return s.role().String() }

const sessionCookie = "ob_console"

func (c *Console) secure() bool { return strings.HasPrefix(c.cfg.PublicURL, "https://") }

// sessionKey keeps only a hash of the cookie's value in Redis.
func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return store.Key(store.GlobalTenant, "console", "session", hex.EncodeToString(h[:]))
}

func randomID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startSession stores s and sets its cookie.
func (c *Console) startSession(ctx context.Context, w http.ResponseWriter, s *Session) error {
	id := randomID()
	s.Expires = c.cfg.Now().Add(c.cfg.SessionTTL).UTC()
	b, _ := json.Marshal(s)
	if err := c.cfg.Redis.Set(ctx, sessionKey(id), b, c.cfg.SessionTTL).Err(); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: Prefix, MaxAge: int(c.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: c.secure(), SameSite: http.SameSiteLaxMode})
	return nil
}

// session reads the request's session; nil without one.
func (c *Console) session(r *http.Request) (*Session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || len(ck.Value) != 48 {
		return nil, nil
	}
	b, err := c.cfg.Redis.Get(r.Context(), sessionKey(ck.Value)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil || !c.cfg.Now().Before(s.Expires) {
		return nil, nil
	}
	return &s, nil
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		_ = c.cfg.Redis.Del(r.Context(), sessionKey(ck.Value)).Err()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: c.secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, Prefix+"login?signed_out=1", http.StatusSeeOther)
}

// loginState is what an org login in progress remembers.
type loginState struct {
	Next    string `json:"next"`
	Browser string `json:"browser"`
}

const loginCookie = "ob_console_login"

func loginKey(state string) string { return store.Key(store.GlobalTenant, "console", "login", state) }

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	s, _ := c.session(r)
	c.render(w, r, http.StatusOK, "login", s, map[string]any{"Title": "Sign in", "Next": safeNext(r.URL.Query().Get("next")),
		"SignedOut": r.URL.Query().Get("signed_out") != ""})
}

// safeNext keeps a post-login redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return Prefix
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// loginOrg starts the org's OAuth flow, bound to this browser.
func (c *Console) loginOrg(w http.ResponseWriter, r *http.Request) {
	state, secret := randomID(), randomID()
	h := sha256.Sum256([]byte(secret))
	b, _ := json.Marshal(loginState{Next: safeNext(r.FormValue("next")), Browser: hex.EncodeToString(h[:])})
	if err := c.cfg.Redis.Set(r.Context(), loginKey(state), b, 10*time.Minute).Err(); err != nil {
		c.internal(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: secret, Path: Prefix, MaxAge: 600, HttpOnly: true, Secure: c.secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, c.cfg.Org.AuthorizeURL(state, r.FormValue("login_hint")), http.StatusSeeOther)
}

// authCallback finishes the org login and starts a session.
func (c *Console) authCallback(w http.ResponseWriter, r *http.Request) {
	code, state, cerr := orgCallback(r.URL.Query())
	raw, err := c.cfg.Redis.GetDel(r.Context(), loginKey(state)).Bytes()
	if state == "" || err != nil {
		c.fail(w, r, http.StatusBadRequest, "This sign-in has expired", "Start again from the sign-in page.")
		return
	}
	var ls loginState
	_ = json.Unmarshal(raw, &ls)
	ck, err := r.Cookie(loginCookie)
	h := sha256.Sum256([]byte(func() string {
		if err != nil {
			return ""
		}
		return ck.Value
	}()))
	if err != nil || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(h[:])), []byte(ls.Browser)) != 1 {
		c.fail(w, r, http.StatusForbidden, "This sign-in was started elsewhere", "Sign in from this browser's sign-in page.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: c.secure(), SameSite: http.SameSiteLaxMode})
	if cerr != nil {
		c.fail(w, r, http.StatusForbidden, "The org refused the sign-in", cerr.Error())
		return
	}
	tok, err := c.cfg.Org.Exchange(r.Context(), code)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The org refused the sign-in", err.Error())
		return
	}
	info, err := c.cfg.Org.UserInfo(r.Context(), tok.AccessToken)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The org did not say who you are", err.Error())
		return
	}
	s := &Session{Name: info.Name, Username: info.PreferredUsername, OrgID: tok.OrgID(), OrgUserID: tok.UserID(), Admin: info.IsOrgAdmin()}
	if s.Name == "" {
		s.Name = s.Username
	}
	for _, op := range c.cfg.Operators {
		if strings.EqualFold(op, s.Username) && s.Admin {
			s.Operator = true
		}
	}
	if err := c.startSession(r.Context(), w, s); err != nil {
		c.internal(w, r, err)
		return
	}
	http.Redirect(w, r, safeNext(ls.Next), http.StatusSeeOther)
}

// maxOperatorFailures bounds wrong admin tokens per client address per 10 minutes.
const maxOperatorFailures = 10

func (c *Console) loginOperator(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	key := store.Key(store.GlobalTenant, "console", "failures", ip)
	if n, _ := c.cfg.Redis.Get(r.Context(), key).Int(); n >= maxOperatorFailures {
		c.fail(w, r, http.StatusTooManyRequests, "Too many attempts", "Wait ten minutes before trying the admin token again.")
		return
	}
	tok := r.FormValue("token")
	if c.cfg.AdminToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(c.cfg.AdminToken)) != 1 {
		pipe := c.cfg.Redis.TxPipeline()
		pipe.Incr(r.Context(), key)
		pipe.Expire(r.Context(), key, 10*time.Minute)
		_, _ = pipe.Exec(r.Context())
		c.render(w, r, http.StatusUnauthorized, "login", nil, map[string]any{"Title": "Sign in", "Next": safeNext(r.FormValue("next")),
			"Error": "That is not the admin token (ORGBRIDGE_ADMIN_TOKEN)."})
		return
	}
	if err := c.startSession(r.Context(), w, &Session{Name: "Operator", Operator: true}); err != nil {
		c.internal(w, r, err)
		return
	}
	http.Redirect(w, r, safeNext(r.FormValue("next")), http.StatusSeeOther)
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
