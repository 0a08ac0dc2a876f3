package orgapi

import "time"

// SCIM schema and message URNs (RFC 7643 §8.7, RFC 7644 §3).
const (
	SchemaUser    = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup   = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaList    = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaError   = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// User is a SCIM core User (RFC 7643 §4.1).
type User struct {
	Schemas     []string `json:"schemas,omitempty"`
	ID          string   `json:"id,omitempty"`
	ExternalID  string   `json:"externalId,omitempty"`
	UserName    string   `json:"userName"`
	Name        *Name    `json:"name,omitempty"`
	DisplayName string   `json:"displayName,omitempty"`
	NickName    string   `json:"nickName,omitempty"`
	Title       string   `json:"title,omitempty"`
	UserType    string   `json:"userType,omitempty"`
	Locale      string   `json:"locale,omitempty"`
	Timezone    string   `json:"timezone,omitempty"`
	// Active is a pointer so that "not sent" differs from false; nil on create
	// means active.
	Active       *bool        `json:"active,omitempty"`
	Emails       []MultiValue `json:"emails,omitempty"`
	PhoneNumbers []MultiValue `json:"phoneNumbers,omitempty"`
	Photos       []MultiValue `json:"photos,omitempty"`
	Meta         *Meta        `json:"meta,omitempty"`
}

// IsActive reports Active, true when unset.
func (u *User) IsActive() bool { return u.Active == nil || *u.Active }

// PrimaryEmail is the primary email, or the first.
func (u *User) PrimaryEmail() string {
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

// Name is a user's name (RFC 7643 §4.1.1).
type Name struct {
	Formatted  string `json:"formatted,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
	MiddleName string `json:"middleName,omitempty"`
}

// MultiValue is an entry of a multi-valued attribute (emails, photos, phone numbers).
type MultiValue struct {
	Value   string `json:"value"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// Meta is a resource's metadata (RFC 7643 §3.1). Version is its ETag.
type Meta struct {
	ResourceType string    `json:"resourceType,omitempty"`
	Created      time.Time `json:"created,omitzero"`
	LastModified time.Time `json:"lastModified,omitzero"`
	Version      string    `json:"version,omitempty"`
	Location     string    `json:"location,omitempty"`
}

// Group is a SCIM core Group (RFC 7643 §4.2).
type Group struct {
	Schemas     []string `json:"schemas,omitempty"`
	ID          string   `json:"id,omitempty"`
	ExternalID  string   `json:"externalId,omitempty"`
	DisplayName string   `json:"displayName"`
	Members     []Member `json:"members,omitempty"`
	Meta        *Meta    `json:"meta,omitempty"`
}

// Member is a group member; Value is the member's id.
type Member struct {
	Value   string `json:"value"`
	Ref     string `json:"$ref,omitempty"`
	Type    string `json:"type,omitempty"`
	Display string `json:"display,omitempty"`
}

// PatchOperation is one operation of a PatchOp request (RFC 7644 §3.5.2).
// Value is marshalled as JSON.
type PatchOperation struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

// Page is one page of a list (RFC 7644 §3.4.2): StartIndex is 1-based.
type Page[T any] struct {
	TotalResults int `json:"totalResults"`
	StartIndex   int `json:"startIndex"`
	ItemsPerPage int `json:"itemsPerPage"`
	Resources    []T `json:"Resources"`
}

// Next is the startIndex of the following page, or 0 after the last.
func (p *Page[T]) Next() int {
	next := p.StartIndex + len(p.Resources)
	if len(p.Resources) == 0 || next > p.TotalResults {
		return 0
	}
	return next
}

// ListOptions select a page. Zero StartIndex means 1; zero Count leaves the
// server's default page size and a negative Count asks for count=0 (the total
// only, no resources).
type ListOptions struct {
	Filter     string
	StartIndex int
	Count      int
	// ExcludedAttributes are not returned (e.g. "members" when listing groups).
	ExcludedAttributes []string
}

// ServiceProviderConfig is the part of RFC 7643 §5 a client acts on.
type ServiceProviderConfig struct {
	Patch  struct{ Supported bool } `json:"patch"`
	Bulk   struct{ Supported bool } `json:"bulk"`
	Filter struct {
		Supported  bool `json:"supported"`
		MaxResults int  `json:"maxResults"`
	} `json:"filter"`
	ETag struct{ Supported bool } `json:"etag"`
}
