package slackemu

import (
	"sort"
	"strings"
	"time"
)

// install is the app installed in one workspace, or org-wide in a Grid org.
// apps.uninstall ends it; installing again makes a new one.
type install struct {
	key       string // workspace or enterprise id; rate limits are per install
	ws        *workspace
	ent       *enterprise
	botUserID string
	botID     string
	tokens    []*token
}

func (in *install) teamID() string {
	if in.ws != nil {
		return in.ws.ID
	}
	return ""
}

func (in *install) enterpriseID() string {
	if in.ent != nil {
		return in.ent.ID
	}
	return ""
}

// token is a bot or user access token.
type token struct {
	value   string
	inst    *install
	isUser  bool
	userID  string
	scopes  map[string]bool
	expires time.Time // zero: never (no token rotation)
	revoked bool
}

func (t *token) scopeList() string {
	out := make([]string, 0, len(t.scopes))
	for s := range t.scopes {
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// refreshGrant is a live refresh token; using it revokes it.
type refreshGrant struct {
	inst   *install
	isUser bool
	userID string
	scopes string
}

// Tier limits in calls per minute, as Slack documents them.
var tierLimits = map[int]int{1: 1, 2: 20, 3: 50, 4: 100}

// methodSpec is what the emulator knows about one Web API method.
type methodSpec struct {
	tier    int
	scopes  []string // any one of them suffices; empty: no scope needed
	noToken bool     // authenticated by client id/secret instead (oauth.v2.access)
	handle  func(e *Emulator, c *apiCall) (map[string]any, error)
}

// AllScopes is every scope the emulated methods check; MintToken grants
// them all when no scopes are given.
var allScopes = []string{"chat:write", "im:write", "users:read", "users:read.email", "usergroups:read",
	"team:read", "conversations.connect:manage", "commands", "incoming-webhook"}

func (e *Emulator) methods() map[string]methodSpec {
	return map[string]methodSpec{
		"oauth.v2.access":               {tier: 4, noToken: true, handle: (*Emulator).apiOAuthAccess},
		"auth.test":                     {tier: 4, handle: (*Emulator).apiAuthTest},
		"auth.revoke":                   {tier: 3, handle: (*Emulator).apiAuthRevoke},
		"auth.teams.list":               {tier: 2, handle: (*Emulator).apiAuthTeamsList},
		"apps.uninstall":                {tier: 1, handle: (*Emulator).apiAppsUninstall},
		"chat.postMessage":              {tier: 4, scopes: []string{"chat:write"}, handle: (*Emulator).apiPostMessage},
		"chat.postEphemeral":            {tier: 4, scopes: []string{"chat:write"}, handle: (*Emulator).apiPostEphemeral},
		"conversations.open":            {tier: 3, scopes: []string{"im:write", "mpim:write", "channels:manage", "groups:write"}, handle: (*Emulator).apiConversationsOpen},
		"views.publish":                 {tier: 4, handle: (*Emulator).apiViewsPublish},
		"views.open":                    {tier: 4, handle: (*Emulator).apiViewsOpen},
		"users.list":                    {tier: 2, scopes: []string{"users:read"}, handle: (*Emulator).apiUsersList},
		"users.info":                    {tier: 4, scopes: []string{"users:read"}, handle: (*Emulator).apiUsersInfo},
		"usergroups.list":               {tier: 2, scopes: []string{"usergroups:read"}, handle: (*Emulator).apiUsergroupsList},
		"usergroups.users.list":         {tier: 2, scopes: []string{"usergroups:read"}, handle: (*Emulator).apiUsergroupsUsersList},
		"team.info":                     {tier: 3, scopes: []string{"team:read"}, handle: (*Emulator).apiTeamInfo},
		"team.externalTeams.list":       {tier: 2, scopes: []string{"team:read", "conversations.connect:manage"}, handle: (*Emulator).apiExternalTeamsList},
		"team.externalTeams.disconnect": {tier: 1, scopes: []string{"conversations.connect:manage"}, handle: (*Emulator).apiExternalTeamsDisconnect},
	}
}

// limiter is a sliding one-minute window per key, in emulated time.
type limiter struct {
	hits map[string][]time.Time
}

func newLimiter() *limiter { return &limiter{hits: map[string][]time.Time{}} }

// allow records a call and reports whether it is within limit per minute;
// when it is not, wait is how long until it would be.
func (l *limiter) allow(key string, limit int, now time.Time) (ok bool, wait time.Duration) {
	h := l.hits[key]
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(h) && !h[i].After(cut) {
		i++
	}
	h = h[i:]
	if len(h) >= limit {
		l.hits[key] = h
		return false, h[0].Add(time.Minute).Sub(now)
	}
	l.hits[key] = append(h, now)
	return true, 0
}

// retryAfterSeconds is the Retry-After header value: whole emulated
// seconds, rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	s := int((wait + time.Second - 1) / time.Second)
	return max(s, 1)
}
