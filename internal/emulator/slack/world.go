package slackemu

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// world is everything the emulated Slack knows. It is guarded by Emulator.mu.
type world struct {
	workspaces  []*workspace
	enterprises []*enterprise
	teams       map[string]*workspace  // by T id
	ents        map[string]*enterprise // by E id
	users       map[string]userRef     // by U/W id
	groups      map[string]*group      // by S id
	externals   map[string]*externalTeam
}

type enterprise struct {
	ID, Name, Domain string
	Workspaces       []*workspace
	External         []*externalTeam
	BotUserID, BotID string
}

type workspace struct {
	ID, Name, Domain string
	Enterprise       *enterprise
	Users            []user // users whose home workspace this is
	// Shared are members whose home is another workspace of the same Grid
	// org: one user, one W… id, several workspaces. They follow Users in
	// users.list. sharedPos finds one by id.
	Shared           []userRef
	sharedPos        map[string]int32
	Groups           []*group
	BotUserID, BotID string
	Created          int64
}

type userRef struct {
	ws  *workspace
	pos int32
}

func (r userRef) user() *user { return &r.ws.Users[r.pos] }

// members is how many users the workspace lists: its own and shared ones.
func (ws *workspace) members() int { return len(ws.Users) + len(ws.Shared) }

// member is the i-th user the workspace lists (0 ≤ i < members()) and its
// home workspace.
func (ws *workspace) member(i int) (*workspace, *user) {
	if i < len(ws.Users) {
		return ws, &ws.Users[i]
	}
	r := ws.Shared[i-len(ws.Users)]
	return r.ws, r.user()
}

// memberIndex is the position of user ref in the workspace's listing, or -1
// when the user is not a member.
func (ws *workspace) memberIndex(ref userRef) int {
	if ref.ws == ws {
		return int(ref.pos)
	}
	if i, ok := ws.sharedPos[ref.user().ID]; ok {
		return len(ws.Users) + int(i)
	}
	return -1
}

// share makes the user at ref (homed in another workspace of the same Grid
// org) a member of ws too; false when it already is.
func (ws *workspace) share(ref userRef) bool {
	u := ref.user()
	if ref.ws == ws {
		return false
	}
	if _, dup := ws.sharedPos[u.ID]; dup {
		return false
	}
	if ws.sharedPos == nil {
		ws.sharedPos = map[string]int32{}
	}
	ws.sharedPos[u.ID] = int32(len(ws.Shared))
	ws.Shared = append(ws.Shared, ref)
	if u.x == nil {
		u.x = &userExtra{}
	}
	u.x.Teams = append(u.x.Teams, ws)
	return true
}

// groupMember encodes a member of ws for group.Members: a position in
// ws.Users, or -(k+1) for ws.Shared[k]; ok is false for a non-member.
func (ws *workspace) groupMember(ref userRef) (int32, bool) {
	if ref.ws == ws {
		return ref.pos, true
	}
	if k, ok := ws.sharedPos[ref.user().ID]; ok {
		return -(k + 1), true
	}
	return 0, false
}

// user flags
const (
	flagAdmin uint16 = 1 << iota
	flagOwner
	flagPrimaryOwner
	flagBot
	flagRestricted
	flagUltraRestricted
	flagDeleted
	flagAppUser
	flagInvited
)

// user is kept small: the benchmark world holds 100,000 of them. Fields few
// users have live in x.
type user struct {
	ID, Name, First, Last, Email, Title, BotID string
	Flags                                      uint16
	Updated                                    int64
	x                                          *userExtra
}

// userExtra holds what only some users have: a display name of their own, an
// uploaded picture, and (Grid) the other workspaces they are members of.
type userExtra struct {
	DisplayName   string
	ImageOriginal string
	Teams         []*workspace // besides the home workspace
}

func (u *user) has(f uint16) bool { return u.Flags&f != 0 }

func (u *user) set(f uint16, on bool) {
	if on {
		u.Flags |= f
	} else {
		u.Flags &^= f
	}
}

func (u *user) extra() *userExtra {
	if u.x == nil {
		u.x = &userExtra{}
	}
	return u.x
}

type group struct {
	ID, Name, Handle, Description string
	ws                            *workspace
	Members                       []int32 // positions in ws.Users; -(k+1) for ws.Shared[k]
	Disabled                      bool
	Created, Updated, Deleted     int64
	CreatedBy                     string
}

// memberRef resolves an entry of Members.
func (g *group) memberRef(m int32) userRef {
	if m >= 0 {
		return userRef{ws: g.ws, pos: m}
	}
	return g.ws.Shared[-m-1]
}

type externalTeam struct {
	ID, Name, Domain string
	Status           string
	LastActive       int64
	Prefs            []string
	Public, Private  int
	IMs, MPIMs       int
	Sponsored        bool
	Workspaces       []*workspace
	DisconnectAt     time.Time // zero: not disconnecting
}

// status is the connection status at emulated time now; a requested
// disconnect completes in the background once its delay has passed.
func (x *externalTeam) status(now time.Time) string {
	if !x.DisconnectAt.IsZero() && !now.Before(x.DisconnectAt) {
		return "DISCONNECTED"
	}
	return x.Status
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Edsger",
		"Frances", "Donald", "Hedy", "John", "Katherine", "Tim", "Shafi", "Niklaus", "Sophie", "Guido",
		"Anita", "Bjarne", "Carol", "Whitfield", "Joan", "Vint", "Lynn", "Ivan", "Mary", "Leslie",
		"Adele", "Robert", "Evelyn", "Butler", "Jean", "Rob", "Sister", "Fernando", "Annie", "Yukihiro"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Perlman", "Dijkstra",
		"Allen", "Knuth", "Lamarr", "Backus", "Johnson", "Berners-Lee", "Goldwasser", "Wirth", "Wilson", "van Rossum",
		"Borg", "Stroustrup", "Shaw", "Diffie", "Clarke", "Cerf", "Conway", "Sutherland", "Keller", "Lamport",
		"Goldberg", "Kahn", "Boyd", "Lampson", "Sammet", "Pike", "Keller", "Corbato", "Easley", "Matsumoto"}
	companyNames = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne",
		"Soylent", "Vandelay", "Pied Piper", "Aperture", "Black Mesa", "Massive Dynamic", "Oscorp", "Gringotts", "Dunder Mifflin", "Monsters Inc"}
	groupNames = []string{"Engineering", "Sales", "Support", "Marketing", "Design", "Finance", "Operations", "Legal", "People", "Product"}
	titles     = []string{"Engineer", "Account Executive", "Support Specialist", "Designer", "Analyst", "Manager", ""}
	prefNames  = []string{"approved_orgs_only", "allow_sc_file_uploads", "profile_visibility", "away_team_sc_invite_permissions",
		"accept_sc_invites", "sc_mpdm_to_private", "require_sc_channel_for_sc_dm", "external_awareness_context_bar"}
	statuses = []string{"CONNECTED", "CONNECTED", "DISCONNECTED", "CONNECTED", "IN_REVIEW", "CONNECTED", "BLOCKED", "CONNECTED", "CONNECTED", "CONNECTED"}
)

const idAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"

type idGen struct {
	rng  *rand.Rand
	seen map[string]struct{}
}

func (g *idGen) next(prefix string) string {
	for {
		b := make([]byte, 0, 11)
		b = append(b, prefix...)
		for range 10 {
			b = append(b, idAlphabet[g.rng.IntN(len(idAlphabet))])
		}
		id := string(b)
		if _, dup := g.seen[id]; !dup {
			g.seen[id] = struct{}{}
			return id
		}
	}
}

func slug(s string) string {
	return strings.ToLower(strings.NewReplacer(" ", "-", "'", "").Replace(s))
}

func newWorld() *world {
	return &world{
		teams:     map[string]*workspace{},
		ents:      map[string]*enterprise{},
		users:     map[string]userRef{},
		groups:    map[string]*group{},
		externals: map[string]*externalTeam{},
	}
}

// generateWorld builds the default world from the config's counts and seed.
func generateWorld(cfg Config, now time.Time) (*world, error) {
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x1d5))
	ids := &idGen{rng: rng, seen: map[string]struct{}{}}
	w := newWorld()
	company := 0
	nextCompany := func() string {
		n := companyNames[company%len(companyNames)]
		if company >= len(companyNames) {
			n += " " + strconv.Itoa(company/len(companyNames)+1)
		}
		company++
		return n
	}
	addWorkspace := func(name string, ent *enterprise) *workspace {
		ws := &workspace{ID: ids.next("T"), Name: name, Domain: slug(name), Enterprise: ent,
			BotUserID: ids.next("U"), BotID: ids.next("B"), Created: now.Add(-400 * 24 * time.Hour).Unix()}
		w.workspaces = append(w.workspaces, ws)
		w.teams[ws.ID] = ws
		return ws
	}
	for range cfg.Workspaces {
		addWorkspace(nextCompany(), nil)
	}
	for range cfg.Enterprises {
		name := nextCompany()
		ent := &enterprise{ID: ids.next("E"), Name: name + " Grid", Domain: slug(name) + "-grid",
			BotUserID: ids.next("U"), BotID: ids.next("B")}
		w.enterprises = append(w.enterprises, ent)
		w.ents[ent.ID] = ent
		for j := range cfg.GridWorkspaces {
			ws := addWorkspace(fmt.Sprintf("%s %s", name, []string{"HQ", "EMEA", "APAC", "Labs"}[j%4])+suffix(j/4), ent)
			ent.Workspaces = append(ent.Workspaces, ws)
		}
	}
	// Slack keeps emails (and so the emulator's names) unique across a Grid org.
	names := map[*enterprise]map[string]struct{}{}
	for _, ws := range w.workspaces {
		taken := map[string]struct{}{}
		if ws.Enterprise != nil {
			if names[ws.Enterprise] == nil {
				names[ws.Enterprise] = map[string]struct{}{}
			}
			taken = names[ws.Enterprise]
		}
		genUsers(ws, cfg.Users, rng, ids, now, taken)
		for pos := range ws.Users {
			w.users[ws.Users[pos].ID] = userRef{ws: ws, pos: int32(pos)}
		}
		genGroups(w, ws, cfg.Groups, rng, ids, now)
	}
	for _, ent := range w.enterprises {
		shareGridUsers(ent)
	}
	for _, ent := range w.enterprises {
		for k := range cfg.ExternalTeams {
			name := nextCompany()
			x := &externalTeam{
				ID: ids.next("T"), Name: name, Domain: slug(name),
				Status:     statuses[k%len(statuses)],
				LastActive: now.Add(-time.Duration(rng.IntN(90*24)) * time.Hour).Unix(),
				Public:     rng.IntN(20), Private: rng.IntN(10), IMs: rng.IntN(40), MPIMs: rng.IntN(5),
				Sponsored:  k%4 == 3,
				Workspaces: ent.Workspaces[:1+k%max(1, len(ent.Workspaces))],
			}
			for p, pref := range prefNames {
				if (k+p)%3 == 0 {
					x.Prefs = append(x.Prefs, pref)
				}
			}
			ent.External = append(ent.External, x)
			w.externals[x.ID] = x
		}
	}
	return w, nil
}

func suffix(n int) string {
	if n == 0 {
		return ""
	}
	return " " + strconv.Itoa(n+1)
}

// sharedGridUsers is how many members of a Grid org's first workspace the
// generated world also makes members of its second one.
const sharedGridUsers = 2

// shareGridUsers makes the first plain members (past the six fixed users) of
// the org's first workspace members of its second workspace too, under the
// same W… id, as Grid does. It draws nothing from the seed, so ids and names
// are the same with or without it.
func shareGridUsers(ent *enterprise) {
	if len(ent.Workspaces) < 2 {
		return
	}
	from, to := ent.Workspaces[0], ent.Workspaces[1]
	shared := 0
	for pos := 6; pos < len(from.Users) && shared < sharedGridUsers; pos++ {
		if from.Users[pos].Flags == 0 {
			to.share(userRef{ws: from, pos: int32(pos)})
			shared++
		}
	}
}

// genUsers fills a workspace. The first six users are always, in order: the
// primary owner, an admin, a bot, a multi-channel guest, a single-channel
// guest and a deleted member; the rest are mostly members with a seeded mix.
// names holds the names already taken (in the workspace, or its Grid org).
func genUsers(ws *workspace, n int, rng *rand.Rand, ids *idGen, now time.Time, names map[string]struct{}) {
	prefix := "U"
	domain := ws.Domain + ".example.com"
	if ws.Enterprise != nil {
		prefix = "W"
		domain = ws.Enterprise.Domain + ".example.com"
	}
	ws.Users = make([]user, 0, n)
	for i := range n {
		var flags uint16
		switch i {
		case 0:
			flags = flagAdmin | flagOwner | flagPrimaryOwner
		case 1:
			flags = flagAdmin
		case 2:
			flags = flagBot
		case 3:
			flags = flagRestricted
		case 4:
			flags = flagRestricted | flagUltraRestricted
		case 5:
			flags = flagDeleted
		default:
			switch r := rng.IntN(100); {
			case r < 3:
				flags = flagBot
			case r < 8:
				flags = flagRestricted
			case r < 10:
				flags = flagRestricted | flagUltraRestricted
			case r < 14:
				flags = flagDeleted
			case r < 15:
				flags = flagAdmin
			}
		}
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		u := user{ID: ids.next(prefix), First: first, Last: last, Flags: flags,
			Updated: now.Add(-time.Duration(rng.IntN(365*24)) * time.Hour).Unix()}
		base := strings.ToLower(first + "." + strings.ReplaceAll(last, " ", ""))
		if flags&flagBot != 0 {
			base = strings.ToLower(last) + "-bot"
			u.First, u.Last = last, "Bot"
			u.BotID = ids.next("B")
		}
		name := base
		for k := 2; ; k++ {
			if _, dup := names[name]; !dup {
				break
			}
			name = base + strconv.Itoa(k)
		}
		names[name] = struct{}{}
		u.Name = name
		if flags&flagBot == 0 {
			u.Email = name + "@" + domain
			u.Title = titles[rng.IntN(len(titles))]
		}
		ws.Users = append(ws.Users, u)
	}
}

func genGroups(w *world, ws *workspace, n int, rng *rand.Rand, ids *idGen, now time.Time) {
	var eligible []int32
	for i := range ws.Users {
		if ws.Users[i].Flags&(flagBot|flagDeleted) == 0 {
			eligible = append(eligible, int32(i))
		}
	}
	for g := range n {
		name := groupNames[g%len(groupNames)] + suffix(g/len(groupNames))
		created := now.Add(-time.Duration(100+g) * 24 * time.Hour).Unix()
		gr := &group{ID: ids.next("S"), Name: name, Handle: slug(name), Description: "The " + name + " team", ws: ws,
			Created: created, Updated: created}
		if len(eligible) > 0 {
			gr.CreatedBy = ws.Users[eligible[0]].ID
			size := 1 + rng.IntN(min(len(eligible), 100))
			start := rng.IntN(len(eligible))
			for k := range size {
				gr.Members = append(gr.Members, eligible[(start+k)%len(eligible)])
			}
		}
		ws.Groups = append(ws.Groups, gr)
		w.groups[gr.ID] = gr
	}
}

// SeedWorld is the JSON seed file format; see docs/EMULATORS.md.
type SeedWorld struct {
	Enterprises []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain string `json:"domain"`
	} `json:"enterprises"`
	Workspaces []struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		Domain       string `json:"domain"`
		EnterpriseID string `json:"enterprise_id"`
	} `json:"workspaces"`
	Users []struct {
		ID                string `json:"id"`
		TeamID            string `json:"team_id"`
		Name              string `json:"name"`
		FirstName         string `json:"first_name"`
		LastName          string `json:"last_name"`
		DisplayName       string `json:"display_name"`
		Email             string `json:"email"`
		Title             string `json:"title"`
		ImageOriginal     string `json:"image_original"`
		IsAdmin           bool   `json:"is_admin"`
		IsOwner           bool   `json:"is_owner"`
		IsPrimaryOwner    bool   `json:"is_primary_owner"`
		IsBot             bool   `json:"is_bot"`
		IsAppUser         bool   `json:"is_app_user"`
		IsRestricted      bool   `json:"is_restricted"`
		IsUltraRestricted bool   `json:"is_ultra_restricted"`
		IsInvitedUser     bool   `json:"is_invited_user"`
		Deleted           bool   `json:"deleted"`
		// TeamIDs are the Grid workspaces the user is a member of besides
		// TeamID, its home (all of the same enterprise).
		TeamIDs []string `json:"team_ids"`
	} `json:"users"`
	Groups []struct {
		ID       string   `json:"id"`
		TeamID   string   `json:"team_id"`
		Name     string   `json:"name"`
		Handle   string   `json:"handle"`
		Users    []string `json:"users"`
		Disabled bool     `json:"disabled"`
	} `json:"groups"`
	ExternalTeams []struct {
		ID                  string   `json:"id"`
		EnterpriseID        string   `json:"enterprise_id"`
		Name                string   `json:"name"`
		Domain              string   `json:"domain"`
		ConnectionStatus    string   `json:"connection_status"`
		LastActiveTimestamp int64    `json:"last_active_timestamp"`
		SlackConnectPrefs   []string `json:"slack_connect_prefs"`
	} `json:"external_teams"`
}

// loadWorld reads a JSON seed file.
func loadWorld(path string, now time.Time) (*world, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("slackemu: reading seed file: %w", err)
	}
	var s SeedWorld
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("slackemu: seed file %s is not valid JSON: %w", path, err)
	}
	return buildSeedWorld(&s, now)
}

func buildSeedWorld(s *SeedWorld, now time.Time) (*world, error) {
	w := newWorld()
	ids := &idGen{rng: rand.New(rand.NewPCG(7, 7)), seen: map[string]struct{}{}}
	orDefault := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	for _, e := range s.Enterprises {
		if !strings.HasPrefix(e.ID, "E") {
			return nil, fmt.Errorf("slackemu: seed enterprise id %q must start with E", e.ID)
		}
		ent := &enterprise{ID: e.ID, Name: orDefault(e.Name, e.ID), Domain: orDefault(e.Domain, slug(orDefault(e.Name, e.ID))),
			BotUserID: ids.next("U"), BotID: ids.next("B")}
		w.enterprises = append(w.enterprises, ent)
		w.ents[ent.ID] = ent
	}
	for _, t := range s.Workspaces {
		if !strings.HasPrefix(t.ID, "T") {
			return nil, fmt.Errorf("slackemu: seed workspace id %q must start with T", t.ID)
		}
		ws := &workspace{ID: t.ID, Name: orDefault(t.Name, t.ID), Domain: orDefault(t.Domain, slug(orDefault(t.Name, t.ID))),
			BotUserID: ids.next("U"), BotID: ids.next("B"), Created: now.Unix()}
		if t.EnterpriseID != "" {
			ent := w.ents[t.EnterpriseID]
			if ent == nil {
				return nil, fmt.Errorf("slackemu: seed workspace %s names unknown enterprise %s", t.ID, t.EnterpriseID)
			}
			ws.Enterprise = ent
			ent.Workspaces = append(ent.Workspaces, ws)
		}
		w.workspaces = append(w.workspaces, ws)
		w.teams[ws.ID] = ws
	}
	if len(w.workspaces) == 0 {
		return nil, fmt.Errorf("slackemu: seed file has no workspaces")
	}
	for _, su := range s.Users {
		ws := w.teams[su.TeamID]
		if ws == nil {
			return nil, fmt.Errorf("slackemu: seed user %s names unknown team %q", su.ID, su.TeamID)
		}
		if _, dup := w.users[su.ID]; dup || su.ID == "" {
			return nil, fmt.Errorf("slackemu: seed user id %q is empty or duplicated", su.ID)
		}
		u := user{ID: su.ID, Name: orDefault(su.Name, strings.ToLower(su.ID)), First: su.FirstName, Last: su.LastName,
			Email: su.Email, Title: su.Title, Updated: now.Unix()}
		for _, f := range []struct {
			on   bool
			flag uint16
		}{{su.IsAdmin, flagAdmin}, {su.IsOwner, flagOwner}, {su.IsPrimaryOwner, flagPrimaryOwner}, {su.IsBot, flagBot},
			{su.IsAppUser, flagAppUser}, {su.IsRestricted, flagRestricted}, {su.IsUltraRestricted, flagUltraRestricted | flagRestricted},
			{su.IsInvitedUser, flagInvited}, {su.Deleted, flagDeleted}} {
			if f.on {
				u.Flags |= f.flag
			}
		}
		if su.IsBot {
			u.BotID = ids.next("B")
		}
		if su.DisplayName != "" || su.ImageOriginal != "" {
			u.x = &userExtra{DisplayName: su.DisplayName, ImageOriginal: su.ImageOriginal}
		}
		ws.Users = append(ws.Users, u)
		ref := userRef{ws: ws, pos: int32(len(ws.Users) - 1)}
		w.users[u.ID] = ref
		for _, tid := range su.TeamIDs {
			other := w.teams[tid]
			switch {
			case other == nil:
				return nil, fmt.Errorf("slackemu: seed user %s lists unknown team %q in team_ids", su.ID, tid)
			case other == ws:
				continue
			case ws.Enterprise == nil || other.Enterprise != ws.Enterprise:
				return nil, fmt.Errorf("slackemu: seed user %s: team_ids may only name workspaces of the Grid org of its team %s, not %s", su.ID, ws.ID, tid)
			}
			other.share(ref)
		}
	}
	for _, sg := range s.Groups {
		ws := w.teams[sg.TeamID]
		if ws == nil {
			return nil, fmt.Errorf("slackemu: seed group %s names unknown team %q", sg.ID, sg.TeamID)
		}
		g := &group{ID: sg.ID, Name: sg.Name, Handle: orDefault(sg.Handle, slug(sg.Name)), ws: ws, Disabled: sg.Disabled,
			Created: now.Unix(), Updated: now.Unix()}
		if g.Disabled {
			g.Deleted = now.Unix()
		}
		for _, uid := range sg.Users {
			ref, ok := w.users[uid]
			var m int32
			if ok {
				m, ok = ws.groupMember(ref)
			}
			if !ok {
				return nil, fmt.Errorf("slackemu: seed group %s lists user %s who is not in team %s", sg.ID, uid, sg.TeamID)
			}
			g.Members = append(g.Members, m)
		}
		ws.Groups = append(ws.Groups, g)
		w.groups[g.ID] = g
	}
	for _, sx := range s.ExternalTeams {
		ent := w.ents[sx.EnterpriseID]
		if ent == nil {
			return nil, fmt.Errorf("slackemu: seed external team %s names unknown enterprise %q", sx.ID, sx.EnterpriseID)
		}
		x := &externalTeam{ID: sx.ID, Name: orDefault(sx.Name, sx.ID), Domain: orDefault(sx.Domain, slug(orDefault(sx.Name, sx.ID))),
			Status: orDefault(sx.ConnectionStatus, "CONNECTED"), LastActive: sx.LastActiveTimestamp, Prefs: sx.SlackConnectPrefs,
			Workspaces: ent.Workspaces}
		ent.External = append(ent.External, x)
		w.externals[x.ID] = x
	}
	return w, nil
}
