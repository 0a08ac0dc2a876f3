package orgemu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// org is one tenant: its settings and its directory (users are SCIM users).
type org struct {
	id         string
	name       string
	appAllowed bool
	expired    bool // expired by the control API
	expiresAt  time.Time
	scratch    bool
	dir        *directory
}

func (o *org) isExpired(now time.Time) bool {
	return o.expired || (!o.expiresAt.IsZero() && !now.Before(o.expiresAt))
}

// UserSpec describes one user of an [OrgSpec] (or [Emulator.AddUser]). Email
// defaults to the username; Active and Permitted (the user's permission to
// use the app) default to true. Admin makes the user an org admin, which the
// OAuth userinfo and identity URL answer as custom_attributes.org_admin.
type UserSpec struct {
	Username  string `json:"username"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
	Active    *bool  `json:"active,omitempty"`
	Permitted *bool  `json:"permitted,omitempty"`
	Admin     bool   `json:"admin,omitempty"`
}

// OrgSpec describes an org for [Emulator.CreateOrg] and POST /_emulator/orgs.
type OrgSpec struct {
	// ID is a 15- or 18-character id starting 00D; one is assigned when empty.
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// AppAllowed defaults to true.
	AppAllowed *bool `json:"app_allowed,omitempty"`
	// Scratch orgs expire ExpiresIn after creation (24h when zero).
	Scratch   bool       `json:"scratch,omitempty"`
	ExpiresIn Duration   `json:"expires_in,omitempty"`
	Users     []UserSpec `json:"users"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration string ("24h").
type Duration time.Duration

// MarshalJSON writes d as "1h30m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

func ptr[T any](v T) *T { return &v }

// defaultWorld is the world documented in docs/EMULATORS.md.
func defaultWorld() []OrgSpec {
	no := ptr(false)
	return []OrgSpec{
		{ID: "00D000000000001", Name: "Acme", Users: []UserSpec{
			{Username: "alice@acme.example", Name: "Alice Archer", Admin: true},
			{Username: "bob@acme.example", Name: "Bob Baker"},
			{Username: "carol@acme.example", Name: "Carol Chen"},
			{Username: "dave@acme.example", Name: "Dave Dunn", Permitted: no},
			{Username: "erin@acme.example", Name: "Erin Evans", Active: no},
		}},
		{ID: "00D000000000002", Name: "Globex", Users: []UserSpec{
			{Username: "hank@globex.example", Name: "Hank Scorpio"},
			{Username: "ivy@globex.example", Name: "Ivy Irwin"},
		}},
		{ID: "00D000000000003", Name: "Acme Scratch", Scratch: true, Users: []UserSpec{
			{Username: "admin@scratch.acme.example", Name: "Scratch Admin"},
		}},
		{ID: "00D000000000004", Name: "Initech", AppAllowed: no, Users: []UserSpec{
			{Username: "peter@initech.example", Name: "Peter Gibbons"},
		}},
	}
}

var (
	firstNames = []string{"Ada", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gus", "Hana", "Ines", "Jon", "Kai", "Lea", "Milo", "Nia", "Otto", "Pia"}
	lastNames  = []string{"Ames", "Brook", "Cruz", "Diaz", "Egan", "Frost", "Gale", "Hart", "Ito", "Jones", "Khan", "Lund", "Moss", "Nash", "Ortiz", "Park"}
)

// generatedWorld is Orgs orgs of UsersPerOrg users, names drawn from Seed.
func generatedWorld(seed int64, orgs, users int) []OrgSpec {
	if orgs == 0 {
		orgs = DefaultOrgs
	}
	if users == 0 {
		users = DefaultUsersPerOrg
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6f7267656d75))
	specs := make([]OrgSpec, orgs)
	for i := range specs {
		domain := fmt.Sprintf("org%d.example", i+1)
		s := OrgSpec{ID: fmt.Sprintf("00D%012d", i+1), Name: fmt.Sprintf("Org %d", i+1), Users: make([]UserSpec, users)}
		for j := range s.Users {
			s.Users[j] = UserSpec{
				Username: fmt.Sprintf("user%d@%s", j+1, domain),
				Name:     firstNames[rng.IntN(len(firstNames))] + " " + lastNames[rng.IntN(len(lastNames))],
				Admin:    j == 0,
			}
		}
		specs[i] = s
	}
	return specs
}

func (e *Emulator) seed() error {
	specs := defaultWorld()
	if e.cfg.Orgs != 0 || e.cfg.UsersPerOrg != 0 {
		specs = generatedWorld(e.cfg.Seed, e.cfg.Orgs, e.cfg.UsersPerOrg)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range specs {
		if _, err := e.createOrgLocked(s); err != nil {
			return err
		}
	}
	return nil
}

func (e *Emulator) newID(prefix string) string {
	e.nextID[prefix]++
	return fmt.Sprintf("%s%012d", prefix, e.nextID[prefix])
}

func (e *Emulator) createOrgLocked(s OrgSpec) (*org, error) {
	now := e.now()
	id := normID(s.ID)
	if id == "" {
		for {
			id = e.newID("00D")
			if _, taken := e.orgs[id]; !taken {
				break
			}
		}
	} else if len(id) != 15 || !strings.HasPrefix(id, "00D") {
		return nil, fmt.Errorf("orgemu: org id %q is not a 15- or 18-character id starting 00D", s.ID)
	}
	if _, taken := e.orgs[id]; taken {
		return nil, fmt.Errorf("orgemu: org %s already exists", id)
	}
	o := &org{id: id, name: s.Name, appAllowed: s.AppAllowed == nil || *s.AppAllowed, scratch: s.Scratch, dir: newDirectory()}
	if s.Scratch {
		ttl := time.Duration(s.ExpiresIn)
		if ttl <= 0 {
			ttl = DefaultScratchTTL
		}
		o.expiresAt = now.Add(ttl)
	}
	for _, us := range s.Users {
		if _, err := e.addUserLocked(o, us, now); err != nil {
			return nil, err
		}
	}
	e.orgs[id] = o
	e.orgList = append(e.orgList, o)
	return o, nil
}

// addUserLocked adds the user us describes to o's directory; the caller
// holds e.mu.
func (e *Emulator) addUserLocked(o *org, us UserSpec, now time.Time) (*SCIMUser, error) {
	if us.Username == "" {
		return nil, fmt.Errorf("orgemu: org %s: a user has no username", o.id)
	}
	u := &SCIMUser{
		UserName:    us.Username,
		DisplayName: us.Name,
		Active:      us.Active == nil || *us.Active,
		permitted:   us.Permitted == nil || *us.Permitted,
		admin:       us.Admin,
	}
	email := us.Email
	if email == "" {
		email = us.Username
	}
	u.Emails = []SCIMMultiValue{{Value: email, Type: "work", Primary: true}}
	if us.Name != "" {
		given, family, _ := strings.Cut(us.Name, " ")
		u.Name = &SCIMName{GivenName: given, FamilyName: family, Formatted: us.Name}
	}
	stored, err := o.dir.addUser(e, u, now)
	if err != nil {
		return nil, fmt.Errorf("orgemu: org %s: %s", o.id, err.detail)
	}
	return stored, nil
}

// normID turns an 18-character Salesforce id into its 15-character form; other
// strings are returned as they are.
func normID(id string) string {
	if len(id) == 18 && id18(id[:15]) == id {
		return id[:15]
	}
	return id
}

// id18 appends Salesforce's three-character case-safe checksum to a 15-character id.
func id18(id string) string {
	if len(id) != 15 {
		return id
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	suffix := make([]byte, 3)
	for chunk := range 3 {
		n := 0
		for i := range 5 {
			c := id[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		suffix[chunk] = alphabet[n]
	}
	return id + string(suffix)
}

// orgLocked finds an org by 15- or 18-character id; the caller holds e.mu.
func (e *Emulator) orgLocked(id string) *org { return e.orgs[normID(id)] }
