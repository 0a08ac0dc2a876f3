package provisioning

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
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

// Paths of the connect pages.
const (
	PathConnect       = "/provisioning/connect"
	PathOrgCallback   = "/provisioning/org/callback"
	PathSlackCallback = "/provisioning/slack/callback"
)

// SlackUserScopes are what a provisioning source's user token needs: users
// with their emails, and user groups.
var SlackUserScopes = []string{"users:read", "users:read.email", "usergroups:read"}

// ConnectConfig configures the browser flow that connects a Slack source:
// the org admin logs into the org (the directory's token), then into Slack
// as a Slack admin (the source's token).
type ConnectConfig struct {
	PublicURL         string
	SlackAuthorizeURL string
	SlackClientID     string
	// Org is an org OAuth client whose RedirectURL is PublicURL + PathOrgCallback.
	Org    *orgapi.Client
	States *store.OAuthStates
	// ReturnURL, when set, is where the final page links back to (the
	// console's provisioning settings of org).
	ReturnURL func(org string) string
}

// connectFlow is what the states of one connect flow carry.
type connectFlow struct {
	Org       string `json:"org"`
	Replace   bool   `json:"replace,omitempty"`
	WholeGrid bool   `json:"whole_grid,omitempty"`
	// Pending names the Redis record holding the org tokens between the two logins.
	Pending string `json:"pending,omitempty"`
	// Browser is the hash of a cookie set when the flow started: both
	// callbacks must come from the browser that started it (login CSRF).
	Browser string `json:"browser,omitempty"`
}

// cookieFlow binds a connect flow to the browser that opened the link.
const cookieFlow = "ob_provisioning_flow"

func hashBrowser(v string) string {
	h := sha256.Sum256([]byte("orgbridge provisioning browser\n" + v))
	return hex.EncodeToString(h[:])
}

func (c ConnectConfig) setFlowCookie(rw http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(rw, &http.Cookie{Name: cookieFlow, Value: value, Path: "/provisioning/", MaxAge: maxAge, HttpOnly: true,
		Secure: strings.HasPrefix(c.PublicURL, "https://"), SameSite: http.SameSiteLaxMode})
}

// sameBrowser reports whether the request carries the cookie whose hash f holds.
func sameBrowser(r *http.Request, f connectFlow) bool {
	c, err := r.Cookie(cookieFlow)
	return err == nil && f.Browser != "" && subtle.ConstantTimeCompare([]byte(hashBrowser(c.Value)), []byte(f.Browser)) == 1
}

// pending holds the org login's tokens (sealed) until the Slack login.
type pending struct {
	Admin   string       `json:"admin"`
	SCIM    string       `json:"scim"`
	Token   store.Sealed `json:"token"`
	Refresh store.Sealed `json:"refresh,omitzero"`
}

func kPending(org, id string) string    { return store.Key(org, "prov", "connecting", id) }
func kConnecting(org string) string     { return store.Key(org, "prov", "connecting") }
func connectTicketKind() string         { return "prov-ticket" }
func connectOrgKind() string            { return "prov-org" }
func connectSlackKind() string          { return "prov-slack" }
func (c ConnectConfig) base() string    { return strings.TrimRight(c.PublicURL, "/") }
func (c ConnectConfig) orgCB() string   { return c.base() + PathOrgCallback }
func (c ConnectConfig) slackCB() string { return c.base() + PathSlackCallback }

// Connecting is shown while a connect flow is under way.
type Connecting struct {
	Since time.Time `json:"since"`
	Stage string    `json:"stage"`
	By    string    `json:"by,omitempty"`
}

// ConnectHandler serves the connect pages (mount it on the ingress) and
// returns the function the admin API uses to start a flow.
func (w *Worker) ConnectHandler(cfg ConnectConfig) (http.Handler, func(org string, replace, wholeGrid bool) (string, error)) {
	mux := http.NewServeMux()
	start := func(org string, replace, wholeGrid bool) (string, error) {
		t, err := cfg.States.Issue(context.Background(), connectTicketKind(), connectFlow{Org: org, Replace: replace, WholeGrid: wholeGrid})
		if err != nil {
			return "", err
		}
		return cfg.base() + PathConnect + "?ticket=" + url.QueryEscape(t), nil
	}
	mux.HandleFunc("GET "+PathConnect, func(rw http.ResponseWriter, r *http.Request) {
		var f connectFlow
		if _, err := cfg.States.Consume(r.Context(), connectTicketKind(), r.URL.Query().Get("ticket"), &f); err != nil || !events.ValidOrgID(f.Org) {
			page(rw, http.StatusBadRequest, "This link has expired", "Connect links work once, for 10 minutes. Start again from the provisioning settings.")
			return
		}
		secret := randomHex(18)
		f.Browser = hashBrowser(secret)
		state, err := cfg.States.Issue(r.Context(), connectOrgKind(), f)
		if err != nil {
			page(rw, http.StatusInternalServerError, "Something went wrong", "The connection could not start: "+err.Error())
			return
		}
		w.setConnecting(r.Context(), f.Org, "logging into the org")
		cfg.setFlowCookie(rw, secret, int(store.StateTTL/time.Second)*2)
		http.Redirect(rw, r, cfg.Org.AuthorizeURL(state, ""), http.StatusFound)
	})
	mux.HandleFunc("GET "+PathOrgCallback, func(rw http.ResponseWriter, r *http.Request) {
		var f connectFlow
		code, state, cerr := orgapi.ParseCallback(r.URL.Query())
		if _, err := cfg.States.Consume(r.Context(), connectOrgKind(), state, &f); err != nil {
			page(rw, http.StatusBadRequest, "This login has expired", "Start again from the provisioning settings.")
			return
		}
		if !sameBrowser(r, f) {
			page(rw, http.StatusForbidden, "This login was started elsewhere", "Open the connect link in this browser and log in from there.")
			return
		}
		if cerr != nil {
			w.clearConnecting(r.Context(), f.Org)
			page(rw, http.StatusForbidden, "The org login did not complete", cerr.Error())
			return
		}
		tok, err := cfg.Org.Exchange(r.Context(), code)
		if err != nil {
			w.clearConnecting(r.Context(), f.Org)
			page(rw, http.StatusBadGateway, "The org login did not complete", err.Error())
			return
		}
		info, err := cfg.Org.UserInfo(r.Context(), tok.AccessToken)
		if err != nil {
			w.clearConnecting(r.Context(), f.Org)
			page(rw, http.StatusBadGateway, "The org login did not complete", err.Error())
			return
		}
		if !sameOrg(tok.OrgID(), f.Org) {
			w.clearConnecting(r.Context(), f.Org)
			page(rw, http.StatusForbidden, "Wrong org", "You logged into org "+tok.OrgID()+", but this connection is for org "+f.Org+". Log in with a user of that org.")
			return
		}
		if !info.IsOrgAdmin() {
			w.clearConnecting(r.Context(), f.Org)
			page(rw, http.StatusForbidden, "You are not an org administrator", "Only an administrator of the org can connect a provisioning source, and must also be a Slack admin or owner. "+info.PreferredUsername+" is not an org administrator.")
			return
		}
		p := pending{Admin: info.PreferredUsername, SCIM: strings.TrimRight(tok.InstanceURL, "/") + "/services/scim/v2"}
		if p.Token, err = w.store.seal(f.Org, "pending", store.Secret(tok.AccessToken.Reveal())); err == nil {
			p.Refresh, err = w.store.seal(f.Org, "pending_refresh", store.Secret(tok.RefreshToken.Reveal()))
		}
		if err != nil {
			page(rw, http.StatusInternalServerError, "Something went wrong", err.Error())
			return
		}
		f.Pending = randomHex(12)
		b, _ := json.Marshal(p)
		if err := w.rdb.Set(r.Context(), kPending(f.Org, f.Pending), b, 15*time.Minute).Err(); err != nil {
			page(rw, http.StatusServiceUnavailable, "Something went wrong", "Try again in a moment: "+err.Error())
			return
		}
		next, err := cfg.States.Issue(r.Context(), connectSlackKind(), f)
		if err != nil {
			page(rw, http.StatusInternalServerError, "Something went wrong", err.Error())
			return
		}
		w.setConnecting(r.Context(), f.Org, "logging into Slack")
		q := url.Values{"client_id": {cfg.SlackClientID}, "user_scope": {strings.Join(SlackUserScopes, ",")},
			"redirect_uri": {cfg.slackCB()}, "state": {next}}
		http.Redirect(rw, r, cfg.SlackAuthorizeURL+"?"+q.Encode(), http.StatusFound)
	})
	mux.HandleFunc("GET "+PathSlackCallback, func(rw http.ResponseWriter, r *http.Request) {
		var f connectFlow
		q := r.URL.Query()
		if _, err := cfg.States.Consume(r.Context(), connectSlackKind(), q.Get("state"), &f); err != nil {
			page(rw, http.StatusBadRequest, "This login has expired", "Start again from the provisioning settings.")
			return
		}
		if !sameBrowser(r, f) {
			page(rw, http.StatusForbidden, "This login was started elsewhere", "Open the connect link in this browser and log in from there.")
			return
		}
		cfg.setFlowCookie(rw, "", -1)
		defer w.clearConnecting(context.WithoutCancel(r.Context()), f.Org)
		if e := q.Get("error"); e != "" || q.Get("code") == "" {
			page(rw, http.StatusForbidden, "The Slack login did not complete", "Slack answered: "+e)
			return
		}
		raw, err := w.rdb.GetDel(r.Context(), kPending(f.Org, f.Pending)).Bytes()
		if err != nil {
			page(rw, http.StatusBadRequest, "This login has expired", "Start again from the provisioning settings.")
			return
		}
		var p pending
		_ = json.Unmarshal(raw, &p)
		dirTok, err1 := w.store.open(f.Org, "pending", p.Token)
		dirRefresh, err2 := w.store.open(f.Org, "pending_refresh", p.Refresh)
		if err := errors.Join(err1, err2); err != nil {
			page(rw, http.StatusInternalServerError, "Something went wrong", err.Error())
			return
		}
		if w.oauth == nil {
			page(rw, http.StatusServiceUnavailable, "Slack is not configured", "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are needed to connect.")
			return
		}
		resp, err := w.oauth.Exchange(r.Context(), q.Get("code"), cfg.slackCB())
		if err != nil {
			page(rw, http.StatusBadGateway, "The Slack login did not complete", err.Error())
			return
		}
		au := resp.AuthedUser
		req := ConnectRequest{OrgID: f.Org, OrgAdmin: p.Admin, DirectoryURL: p.SCIM, DirectoryToken: dirTok, DirectoryRefresh: dirRefresh,
			SlackToken: store.Secret(au.AccessToken), SlackRefresh: store.Secret(au.RefreshToken), WholeGrid: f.WholeGrid, Replace: f.Replace}
		if au.ExpiresIn > 0 {
			req.SlackExpires = w.cfg.Now().Add(time.Duration(float64(time.Duration(au.ExpiresIn)*time.Second) / w.cfg.TimeScale))
		}
		in, err := w.Connect(r.Context(), req)
		back := ""
		if cfg.ReturnURL != nil {
			back = cfg.ReturnURL(f.Org)
		}
		page := func(rw http.ResponseWriter, status int, title, msg string) { pageBack(rw, status, title, msg, back) }
		switch {
		case errors.Is(err, ErrNotSlackAdmin):
			page(rw, http.StatusForbidden, "You are not a Slack admin", "Only an admin or owner of the Slack workspace can connect it, and must also be an org administrator. "+strings.TrimPrefix(err.Error(), "provisioning: "))
		case errors.Is(err, ErrAlreadyActive):
			page(rw, http.StatusConflict, "Another Slack account is connected", "An org can have one active provisioning integration. "+strings.TrimPrefix(err.Error(), "provisioning: "))
		case errors.Is(err, ErrNotOrgAdmin):
			page(rw, http.StatusForbidden, "You are not an org administrator", strings.TrimPrefix(err.Error(), "provisioning: "))
		case err != nil:
			page(rw, http.StatusBadGateway, "Slack could not be connected", strings.TrimPrefix(err.Error(), "provisioning: "))
		default:
			page(rw, http.StatusOK, "You're connected to Slack", "Slack "+in.Source.Name+" is connected to the org's directory. Choose members and teams in the provisioning settings, then save: your sync is pending until the next daily sync, or start it now.")
		}
	})
	return mux, start
}

func (w *Worker) setConnecting(ctx context.Context, org, stage string) {
	b, _ := json.Marshal(Connecting{Since: w.cfg.Now().UTC(), Stage: stage})
	_ = w.rdb.Set(ctx, kConnecting(org), b, 15*time.Minute).Err()
}

func (w *Worker) clearConnecting(ctx context.Context, org string) {
	_ = w.rdb.Del(ctx, kConnecting(org)).Err()
}

// ConnectingState reports a connect flow under way for org, if any.
func (w *Worker) ConnectingState(ctx context.Context, org string) (*Connecting, error) {
	b, err := w.rdb.Get(ctx, kConnecting(org)).Bytes()
	if err != nil {
		return nil, nil //nolint:nilerr // none, or unreadable: nothing to show
	}
	var c Connecting
	if json.Unmarshal(b, &c) != nil {
		return nil, nil
	}
	return &c, nil
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · orgbridge provisioning</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1d1c1d}h1{font-size:1.4rem}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{with .Back}}<p><a id="back" href="{{.}}">Back to the provisioning settings</a></p>{{end}}</body></html>`))

func page(rw http.ResponseWriter, status int, title, msg string) {
	pageBack(rw, status, title, msg, "")
}

// pageBack is page with a link back to where the flow started.
func pageBack(rw http.ResponseWriter, status int, title, msg, back string) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(status)
	_ = pageTmpl.Execute(rw, struct{ Title, Message, Back string }{title, msg, back})
}
