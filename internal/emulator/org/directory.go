package orgemu

import (
	"strconv"
	"strings"
	"time"
)

// SCIM schema and message URNs (RFC 7643 §8.7, RFC 7644 §3.12, §3.4.2, §3.5.2).
const (
	schemaUser     = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup    = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaList     = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaError    = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaPatchOp  = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaSPConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// SCIMName is a user's name sub-attributes (RFC 7643 §4.1.1).
type SCIMName struct {
	Formatted  string `json:"formatted,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
	MiddleName string `json:"middleName,omitempty"`
}

// SCIMMultiValue is one entry of emails, phoneNumbers or photos.
type SCIMMultiValue struct {
	Value   string `json:"value"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// SCIMMeta is a resource's meta (RFC 7643 §3.1); Version is the weak ETag.
type SCIMMeta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Version      string `json:"version"`
	Location     string `json:"location,omitempty"`
}

// SCIMUser is a user as stored and served (the org's users are its SCIM users).
// Stored values are never changed in place: an update stores a new value.
type SCIMUser struct {
	Schemas           []string         `json:"schemas"`
	ID                string           `json:"id"`
	ExternalID        string           `json:"externalId,omitempty"`
	UserName          string           `json:"userName"`
	Name              *SCIMName        `json:"name,omitempty"`
	DisplayName       string           `json:"displayName,omitempty"`
	NickName          string           `json:"nickName,omitempty"`
	Title             string           `json:"title,omitempty"`
	UserType          string           `json:"userType,omitempty"`
	PreferredLanguage string           `json:"preferredLanguage,omitempty"`
	Locale            string           `json:"locale,omitempty"`
	Timezone          string           `json:"timezone,omitempty"`
	Active            bool             `json:"active"`
	Emails            []SCIMMultiValue `json:"emails,omitempty"`
	PhoneNumbers      []SCIMMultiValue `json:"phoneNumbers,omitempty"`
	Photos            []SCIMMultiValue `json:"photos,omitempty"`
	Meta              SCIMMeta         `json:"meta"`

	permitted bool // the user's permission to use the app
	admin     bool // an org admin (may connect integrations)
	version   int64
}

type scimGroup struct {
	id, externalID, displayName string
	members                     []string       // user ids, in insertion order (swap-removed)
	memberIdx                   map[string]int // user id → index in members
	created, modified           time.Time
	version                     int64
}

// directory holds one org's users and groups with the indexes SCIM lookups use,
// so that filters on userName, externalId, emails.value and id are O(1).
type directory struct {
	users        []*SCIMUser // creation order; users are never deleted
	userPos      map[string]int
	byUserName   map[string]string // lower-cased userName → id
	byExternalID map[string]string
	byEmail      map[string]map[string]struct{} // lower-cased email → ids

	groups       []*scimGroup // creation order; DELETE removes
	groupByID    map[string]*scimGroup
	groupByName  map[string]string // lower-cased displayName → id
	groupByExtID map[string]string
}

func newDirectory() *directory {
	return &directory{
		userPos:      make(map[string]int),
		byUserName:   make(map[string]string),
		byExternalID: make(map[string]string),
		byEmail:      make(map[string]map[string]struct{}),
		groupByID:    make(map[string]*scimGroup),
		groupByName:  make(map[string]string),
		groupByExtID: make(map[string]string),
	}
}

func (d *directory) user(id string) *SCIMUser {
	if i, ok := d.userPos[normID(id)]; ok {
		return d.users[i]
	}
	return nil
}

func (d *directory) userByName(name string) *SCIMUser {
	if id, ok := d.byUserName[strings.ToLower(name)]; ok {
		return d.user(id)
	}
	return nil
}

// checkUnique reports a uniqueness conflict of u with another user than u.ID.
func (d *directory) checkUnique(u *SCIMUser) *scimError {
	if id, ok := d.byUserName[strings.ToLower(u.UserName)]; ok && id != u.ID {
		return &scimError{status: 409, scimType: "uniqueness", detail: "userName " + strconv.Quote(u.UserName) + " is already taken"}
	}
	if u.ExternalID != "" {
		if id, ok := d.byExternalID[u.ExternalID]; ok && id != u.ID {
			return &scimError{status: 409, scimType: "uniqueness", detail: "externalId " + strconv.Quote(u.ExternalID) + " is already taken"}
		}
	}
	return nil
}

// addUser stores a new user, assigning id and meta; the caller holds e.mu.
func (d *directory) addUser(e *Emulator, u *SCIMUser, now time.Time) (*SCIMUser, *scimError) {
	if err := validateUser(u); err != nil {
		return nil, err
	}
	if err := d.checkUnique(u); err != nil {
		return nil, err
	}
	u.ID = e.newID("005")
	u.Schemas = []string{schemaUser}
	u.version = 1
	ts := now.UTC().Format(time.RFC3339Nano)
	u.Meta = SCIMMeta{ResourceType: "User", Created: ts, LastModified: ts, Version: etag(1)}
	d.userPos[u.ID] = len(d.users)
	d.users = append(d.users, u)
	d.index(u)
	return u, nil
}

// replaceUser stores next in place of the user with next.ID; the caller holds
// e.mu and has checked uniqueness.
func (d *directory) replaceUser(prev, next *SCIMUser, now time.Time) *SCIMUser {
	d.unindex(prev)
	next.ID = prev.ID
	next.Schemas = []string{schemaUser}
	next.permitted = prev.permitted
	next.admin = prev.admin
	next.version = prev.version + 1
	next.Meta = prev.Meta
	next.Meta.LastModified = now.UTC().Format(time.RFC3339Nano)
	next.Meta.Version = etag(next.version)
	d.users[d.userPos[prev.ID]] = next
	d.index(next)
	return next
}

func (d *directory) index(u *SCIMUser) {
	d.byUserName[strings.ToLower(u.UserName)] = u.ID
	if u.ExternalID != "" {
		d.byExternalID[u.ExternalID] = u.ID
	}
	for _, m := range u.Emails {
		k := strings.ToLower(m.Value)
		set := d.byEmail[k]
		if set == nil {
			set = make(map[string]struct{}, 1)
			d.byEmail[k] = set
		}
		set[u.ID] = struct{}{}
	}
}

func (d *directory) unindex(u *SCIMUser) {
	delete(d.byUserName, strings.ToLower(u.UserName))
	if u.ExternalID != "" && d.byExternalID[u.ExternalID] == u.ID {
		delete(d.byExternalID, u.ExternalID)
	}
	for _, m := range u.Emails {
		k := strings.ToLower(m.Value)
		if set := d.byEmail[k]; set != nil {
			delete(set, u.ID)
			if len(set) == 0 {
				delete(d.byEmail, k)
			}
		}
	}
}

func validateUser(u *SCIMUser) *scimError {
	if strings.TrimSpace(u.UserName) == "" {
		return &scimError{status: 400, scimType: "invalidValue", detail: "userName is required"}
	}
	return nil
}

func etag(v int64) string { return `W/"` + strconv.FormatInt(v, 10) + `"` }

func (g *scimGroup) addMember(id string) bool {
	if _, ok := g.memberIdx[id]; ok {
		return false
	}
	g.memberIdx[id] = len(g.members)
	g.members = append(g.members, id)
	return true
}

func (g *scimGroup) removeMember(id string) bool {
	i, ok := g.memberIdx[id]
	if !ok {
		return false
	}
	last := len(g.members) - 1
	g.members[i] = g.members[last]
	g.memberIdx[g.members[i]] = i
	g.members = g.members[:last]
	delete(g.memberIdx, id)
	return true
}

func (d *directory) removeGroup(g *scimGroup) {
	delete(d.groupByID, g.id)
	delete(d.groupByName, strings.ToLower(g.displayName))
	if g.externalID != "" {
		delete(d.groupByExtID, g.externalID)
	}
	for i, x := range d.groups {
		if x == g {
			d.groups = append(d.groups[:i], d.groups[i+1:]...)
			break
		}
	}
}

func (d *directory) checkGroupUnique(id, name, ext string) *scimError {
	if other, ok := d.groupByName[strings.ToLower(name)]; ok && other != id {
		return &scimError{status: 409, scimType: "uniqueness", detail: "displayName " + strconv.Quote(name) + " is already taken"}
	}
	if ext != "" {
		if other, ok := d.groupByExtID[ext]; ok && other != id {
			return &scimError{status: 409, scimType: "uniqueness", detail: "externalId " + strconv.Quote(ext) + " is already taken"}
		}
	}
	return nil
}

func (d *directory) renameGroup(g *scimGroup, name, ext string) {
	delete(d.groupByName, strings.ToLower(g.displayName))
	if g.externalID != "" {
		delete(d.groupByExtID, g.externalID)
	}
	g.displayName, g.externalID = name, ext
	d.groupByName[strings.ToLower(name)] = g.id
	if ext != "" {
		d.groupByExtID[ext] = g.id
	}
}
