package ingress

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// OAuthConfig configures the OAuth redirect routes ([Server.MountOAuth]).
type OAuthConfig struct {
	// PublicURL is the ingress's public base URL; redirect URIs are built from it.
	PublicURL string
	// SlackAuthorizeURL is Slack's /oauth/v2/authorize (the emulator's in tests).
	SlackAuthorizeURL string
	SlackClientID     string
	SlackAppID        string
	SlackScopes       []string
	// Org builds the org's authorize URL; its RedirectURL must be
	// PublicURL + "/org/oauth/callback".
	Org       *orgapi.Client
	States    *store.OAuthStates
	Keys      *store.Keyring
	Publisher *events.Publisher
	// Wait bounds how long a callback waits for the worker's outcome before it
	// shows "still working" (default and at most 15s; the callback's write
	// deadline is extended past the server's WriteTimeout to Wait + 5s).
	Wait time.Duration
}

func (c OAuthConfig) validate() error {
	switch {
	case c.PublicURL == "" || c.SlackAuthorizeURL == "" || c.SlackClientID == "":
		return errors.New("ingress: OAuth needs PublicURL, SlackAuthorizeURL and SlackClientID")
	case c.Org == nil || c.States == nil || c.Keys == nil || c.Publisher == nil:
		return errors.New("ingress: OAuth needs Org, States, Keys and Publisher")
	}
	return nil
}

// Paths of the OAuth routes.
const (
	PathSlackInstall  = "/slack/install"
	PathSlackCallback = "/slack/oauth/callback"
	PathOrgConnect    = "/org/connect"
	PathOrgCallback   = "/org/oauth/callback"
)

// MaxOAuthWait is the longest a callback waits for the worker's outcome.
const MaxOAuthWait = 15 * time.Second

// Cookies that bind an OAuth flow to the browser that started it (login
// CSRF): a random value set when the flow starts, its hash in the signed
// state, required at the callback. One cookie per flow (named by its nonce),
// scoped to the callback's path.
const (
	cookieOrgFlow   = "ob_org_"
	cookieSlackFlow = "ob_install_"
)

// MountOAuth adds the OAuth redirect routes:
//
//	GET /slack/install          starts Slack's OAuth v2 install with a signed, single-use, 10-minute state
//	GET /slack/oauth/callback   checks the state, publishes the install for the binding worker, waits for its outcome
//	GET /org/connect?ticket=    a "connect" button (single use): starts the org's OAuth flow for the Slack user the ticket names
//	GET /org/oauth/callback     checks the state, publishes the org login for the binding worker, waits for its outcome
//
// States are self-contained (nothing is stored when a flow starts) and bound
// to the starting browser by a cookie. Codes are sealed with the keyring
// before they are published.
func (s *Server) MountOAuth(cfg OAuthConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Wait <= 0 || cfg.Wait > MaxOAuthWait {
		cfg.Wait = MaxOAuthWait
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	o := &oauthRoutes{cfg: cfg, s: s}
	s.Mount("GET "+PathSlackInstall, http.HandlerFunc(o.slackInstall))
	s.Mount("GET "+PathSlackCallback, http.HandlerFunc(o.slackCallback))
	s.Mount("GET "+PathOrgConnect, http.HandlerFunc(o.orgConnect))
	s.Mount("GET "+PathOrgCallback, http.HandlerFunc(o.orgCallback))
	return nil
}

type oauthRoutes struct {
	cfg OAuthConfig
	s   *Server
}

// connectTicket mirrors the binding worker's ticket (same JSON).
type connectTicket struct {
	AppID        string `json:"app_id"`
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id,omitempty"`
	Scope        string `json:"scope"`
	SlackUserID  string `json:"slack_user_id"`
	ChannelID    string `json:"channel_id,omitempty"`
}

// orgState is what an org login's state carries: the ticket, and the hash of
// the browser cookie set when the login started.
type orgState struct {
	connectTicket
	Browser string `json:"browser"`
}

// installState is what a Slack install's state carries.
type installState struct {
	Browser string `json:"browser"`
}

// newBrowserSecret returns a random cookie value and the hash the state keeps.
func newBrowserSecret() (value, hash string, err error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	value = base64.RawURLEncoding.EncodeToString(b[:])
	return value, hashBrowser(value), nil
}

func hashBrowser(v string) string {
	h := sha256.Sum256([]byte("orgbridge oauth browser\n" + v))
	return hex.EncodeToString(h[:])
}

// setFlowCookie binds the flow of state to this browser.
func (o *oauthRoutes) setFlowCookie(w http.ResponseWriter, prefix, path, state, value string) {
	http.SetCookie(w, &http.Cookie{Name: prefix + store.StateNonce(state), Value: value, Path: path,
		MaxAge: int(store.StateTTL / time.Second), HttpOnly: true, Secure: strings.HasPrefix(o.cfg.PublicURL, "https://"),
		SameSite: http.SameSiteLaxMode})
}

// checkFlowCookie reports whether the browser carries the cookie of flow
// whose hash the state holds, and clears it.
func (o *oauthRoutes) checkFlowCookie(w http.ResponseWriter, r *http.Request, prefix, path, flow, want string) bool {
	c, err := r.Cookie(prefix + flow)
	if err != nil || want == "" {
		return false
	}
	http.SetCookie(w, &http.Cookie{Name: prefix + flow, Value: "", Path: path, MaxAge: -1, HttpOnly: true,
		Secure: strings.HasPrefix(o.cfg.PublicURL, "https://"), SameSite: http.SameSiteLaxMode})
	return subtle.ConstantTimeCompare([]byte(hashBrowser(c.Value)), []byte(want)) == 1
}

func (o *oauthRoutes) slackInstall(w http.ResponseWriter, r *http.Request) {
	value, hash, err := newBrowserSecret()
	var state string
	if err == nil {
		state, err = o.cfg.States.Issue(r.Context(), "slack", installState{Browser: hash})
	}
	if err != nil {
		o.page(w, http.StatusServiceUnavailable, store.Outcome{Title: "Try again", Message: "orgbridge could not start the install. Try again in a minute."})
		return
	}
	o.setFlowCookie(w, cookieSlackFlow, PathSlackCallback, state, value)
	q := url.Values{
		"client_id":    {o.cfg.SlackClientID},
		"scope":        {strings.Join(o.cfg.SlackScopes, ",")},
		"redirect_uri": {o.cfg.PublicURL + PathSlackCallback},
		"state":        {state},
	}
	for _, k := range []string{"team", "enterprise", "channel", "user"} { // pass-through hints
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	sep := "?"
	if strings.Contains(o.cfg.SlackAuthorizeURL, "?") {
		sep = "&"
	}
	http.Redirect(w, r, o.cfg.SlackAuthorizeURL+sep+q.Encode(), http.StatusFound)
}

func (o *oauthRoutes) slackCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var st installState
	flow, err := o.cfg.States.Verify("slack", q.Get("state"), &st)
	if err == nil && !o.checkFlowCookie(w, r, cookieSlackFlow, PathSlackCallback, flow, st.Browser) {
		err = store.ErrBadState
	}
	if err == nil {
		err = o.cfg.States.Spend(r.Context(), "slack", q.Get("state"))
	}
	if err != nil {
		o.page(w, http.StatusBadRequest, store.Outcome{Title: "Install link expired",
			Message: "This install link expired, was already used, was opened in another browser than the one that started the install, or did not come from orgbridge. Start again from " + o.cfg.PublicURL + PathSlackInstall + "."})
		return
	}
	msg := events.SlackInstall{SchemaVersion: events.SchemaVersion, FlowID: flow, AppID: o.cfg.SlackAppID,
		RedirectURI: o.cfg.PublicURL + PathSlackCallback, Error: q.Get("error")}
	if msg.Error == "" {
		code := q.Get("code")
		if code == "" {
			o.page(w, http.StatusBadRequest, store.Outcome{Title: "No code", Message: "Slack sent neither a code nor an error. Start again from " + o.cfg.PublicURL + PathSlackInstall + "."})
			return
		}
		sealed, err := o.cfg.Keys.Seal(store.Secret(code), "slack-install-code:"+flow)
		if err != nil {
			o.page(w, http.StatusInternalServerError, store.Outcome{Title: "Try again", Message: "orgbridge could not protect the install code. Try again."})
			return
		}
		msg.Code = events.Encrypted{KeyID: sealed.KeyID, Ciphertext: sealed.Ciphertext}
	}
	o.publishAndWait(w, r, events.SlackInstallSubject(events.NoTenant), "install:"+flow, flow, msg)
}

func (o *oauthRoutes) orgConnect(w http.ResponseWriter, r *http.Request) {
	var t connectTicket
	if err := o.cfg.States.Ticket(r.Context(), r.URL.Query().Get("ticket"), &t); err != nil {
		o.page(w, http.StatusBadRequest, store.Outcome{Title: "Connect link expired",
			Message: "This connect link expired. Run /orgbridge connect in Slack for a new one."})
		return
	}
	value, hash, err := newBrowserSecret()
	var state string
	if err == nil {
		state, err = o.cfg.States.Issue(r.Context(), "org", orgState{connectTicket: t, Browser: hash})
	}
	if err != nil {
		o.page(w, http.StatusServiceUnavailable, store.Outcome{Title: "Try again", Message: "orgbridge could not start the login. Try again in a minute."})
		return
	}
	o.setFlowCookie(w, cookieOrgFlow, PathOrgCallback, state, value)
	http.Redirect(w, r, o.cfg.Org.AuthorizeURL(state, r.URL.Query().Get("login_hint")), http.StatusFound)
}

func (o *oauthRoutes) orgCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var st orgState
	flow, err := o.cfg.States.Verify("org", q.Get("state"), &st)
	// The browser finishing the login must be the one that started it: else
	// anyone could have a victim's org login mapped to their own Slack user.
	if err == nil && !o.checkFlowCookie(w, r, cookieOrgFlow, PathOrgCallback, flow, st.Browser) {
		err = store.ErrBadState
	}
	if err == nil {
		err = o.cfg.States.Spend(r.Context(), "org", q.Get("state"))
	}
	if err != nil {
		o.page(w, http.StatusBadRequest, store.Outcome{Title: "Login link expired",
			Message: "This login link expired, was already used, was opened in another browser than the one that started the login, or did not come from orgbridge. Run /orgbridge connect in Slack to start again."})
		return
	}
	t := st.connectTicket
	msg := events.OrgConnect{SchemaVersion: events.SchemaVersion, FlowID: flow, AppID: t.AppID, TeamID: t.TeamID,
		EnterpriseID: t.EnterpriseID, Scope: t.Scope, SlackUserID: t.SlackUserID, ChannelID: t.ChannelID}
	code, _, cerr := orgapi.ParseCallback(q)
	var ae *orgapi.APIError
	switch {
	case errors.As(cerr, &ae):
		msg.Error, msg.ErrorDescription = ae.Code, ae.Description
	case cerr != nil:
		o.page(w, http.StatusBadRequest, store.Outcome{Title: "No code", Message: "The org sent neither a code nor an error. Run /orgbridge connect in Slack to start again."})
		return
	default:
		sealed, err := o.cfg.Keys.Seal(store.Secret(code), "org-connect-code:"+flow)
		if err != nil {
			o.page(w, http.StatusInternalServerError, store.Outcome{Title: "Try again", Message: "orgbridge could not protect the login code. Try again."})
			return
		}
		msg.Code = events.Encrypted{KeyID: sealed.KeyID, Ciphertext: sealed.Ciphertext}
	}
	team, ent := t.TeamID, t.EnterpriseID
	if t.Scope != "" && t.Scope == t.EnterpriseID {
		team = "" // an org-wide install: the enterprise is the tenant
	}
	o.publishAndWait(w, r, events.OrgConnectSubject(t.Scope), "connect:"+flow, flow, msg, events.WithTenant(team, ent))
}

// publishAndWait stores msg on its stream, then waits (bounded) for the
// worker's outcome and renders it.
func (o *oauthRoutes) publishAndWait(w http.ResponseWriter, r *http.Request, subject, msgID, flow string, msg any, opts ...events.PublishOption) {
	// The wait outlasts the server's WriteTimeout: extend this response's
	// deadline, or the browser gets a closed connection instead of a page.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(o.cfg.Wait + 5*time.Second)); err != nil {
		o.s.log.Debug("could not extend the callback's write deadline", "err", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), o.cfg.Wait)
	defer cancel()
	if _, err := o.cfg.Publisher.Publish(ctx, subject, msgID, msg, opts...); err != nil {
		o.s.log.Warn("OAuth result not stored", "subject", subject, "err", err)
		o.page(w, http.StatusServiceUnavailable, store.Outcome{Title: "Try again",
			Message: "orgbridge is temporarily unavailable and did not receive this. Start again in a minute."})
		return
	}
	out, err := o.cfg.States.WaitOutcome(ctx, flow)
	if err != nil {
		o.page(w, http.StatusAccepted, store.Outcome{Title: "Still working",
			Message: "orgbridge received this and is still finishing. Go back to Slack; it will be ready in a moment."})
		return
	}
	status := http.StatusOK
	if !out.OK {
		status = http.StatusConflict
	}
	o.page(w, status, out)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · orgbridge</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1d1c1d}
h1{font-size:1.4rem}.ok{color:#007a5a}.err{color:#e01e5a}</style></head>
<body><h1 class="{{if .OK}}ok{{else}}err{{end}}">{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

func (o *oauthRoutes) page(w http.ResponseWriter, status int, out store.Outcome) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, out)
}
