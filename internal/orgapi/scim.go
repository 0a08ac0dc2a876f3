package orgapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const scimContentType = "application/scim+json"

// DefaultPageSize is the page size the iterators ask for when given 0.
const DefaultPageSize = 1000

// SCIM is a SCIM 2.0 client for one directory. It does not retry: a 429 comes
// back as a [*RateLimitedError] and the caller paces itself. It is safe for
// concurrent use.
type SCIM struct {
	base  string
	token Secret
	hc    *http.Client
}

// NewSCIM returns a client for the SCIM API at baseURL (…/services/scim/v2)
// authenticating with token; http.DefaultClient when httpClient is nil.
func NewSCIM(baseURL string, token Secret, httpClient *http.Client) *SCIM {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &SCIM{base: strings.TrimRight(baseURL, "/"), token: token, hc: httpClient}
}

// FilterEq builds `attr eq "value"` with value quoted as SCIM (JSON) requires.
func FilterEq(attr, value string) string {
	q, _ := json.Marshal(value)
	return attr + " eq " + string(q)
}

// call sends in (when not nil) and decodes the answer into out (when not nil).
func (s *SCIM) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return s.callIfMatch(ctx, method, path, query, "", in, out)
}

// callIfMatch is call with an If-Match header when version is not empty.
func (s *SCIM) callIfMatch(ctx context.Context, method, path string, query url.Values, version string, in, out any) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	u := s.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body *bytes.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("orgapi: encoding %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, u, body)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u, nil)
	}
	if err != nil {
		return fmt.Errorf("orgapi: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token.Reveal())
	req.Header.Set("Accept", scimContentType+", application/json")
	if in != nil {
		req.Header.Set("Content-Type", scimContentType)
	}
	if version != "" {
		req.Header.Set("If-Match", version)
	}
	resp, b, err := do(s.hc, req)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorFrom(resp, b)
	}
	if out != nil && len(b) > 0 && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("orgapi: decoding %s %s: %w", method, path, err)
		}
	}
	return nil
}

func withSchema(schemas []string, s string) []string {
	for _, x := range schemas {
		if x == s {
			return schemas
		}
	}
	return append([]string{s}, schemas...)
}

// CreateUser creates u; [ErrConflict] when its userName or externalId is taken.
func (s *SCIM) CreateUser(ctx context.Context, u *User) (*User, error) {
	in := *u
	in.Schemas, in.ID, in.Meta = withSchema(u.Schemas, SchemaUser), "", nil
	var out User
	if err := s.call(ctx, http.MethodPost, "/Users", nil, &in, &out); err != nil {
		return nil, fmt.Errorf("creating user %s: %w", u.UserName, err)
	}
	return &out, nil
}

// GetUser reads a user; [ErrNotFound] when there is none.
func (s *SCIM) GetUser(ctx context.Context, id string) (*User, error) {
	var out User
	if err := s.call(ctx, http.MethodGet, "/Users/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("getting user %s: %w", id, err)
	}
	return &out, nil
}

// ReplaceUser replaces the user u.ID with u (PUT).
func (s *SCIM) ReplaceUser(ctx context.Context, u *User) (*User, error) {
	if u.ID == "" {
		return nil, fmt.Errorf("orgapi: replacing user %s: no id", u.UserName)
	}
	in := *u
	in.Schemas, in.Meta = withSchema(u.Schemas, SchemaUser), nil
	var out User
	if err := s.call(ctx, http.MethodPut, "/Users/"+url.PathEscape(u.ID), nil, &in, &out); err != nil {
		return nil, fmt.Errorf("replacing user %s: %w", u.ID, err)
	}
	return &out, nil
}

type patchBody struct {
	Schemas    []string         `json:"schemas"`
	Operations []PatchOperation `json:"Operations"`
}

// PatchUser applies ops to a user and returns it as stored.
func (s *SCIM) PatchUser(ctx context.Context, id string, ops ...PatchOperation) (*User, error) {
	var out User
	if err := s.call(ctx, http.MethodPatch, "/Users/"+url.PathEscape(id), nil, patchBody{[]string{SchemaPatchOp}, ops}, &out); err != nil {
		return nil, fmt.Errorf("patching user %s: %w", id, err)
	}
	return &out, nil
}

// PatchUserIfMatch is [SCIM.PatchUser] sent with If-Match: version (the
// user's meta.version as last seen); [ErrPreconditionFailed] when the user
// changed since. An empty version patches unconditionally.
func (s *SCIM) PatchUserIfMatch(ctx context.Context, id, version string, ops ...PatchOperation) (*User, error) {
	var out User
	if err := s.callIfMatch(ctx, http.MethodPatch, "/Users/"+url.PathEscape(id), nil, version, patchBody{[]string{SchemaPatchOp}, ops}, &out); err != nil {
		return nil, fmt.Errorf("patching user %s: %w", id, err)
	}
	return &out, nil
}

// DeactivateUser sets active=false: org users are deactivated, never deleted.
func (s *SCIM) DeactivateUser(ctx context.Context, id string) (*User, error) {
	return s.PatchUser(ctx, id, PatchOperation{Op: "replace", Path: "active", Value: false})
}

func listQuery(o ListOptions) url.Values {
	q := url.Values{}
	if o.Filter != "" {
		q.Set("filter", o.Filter)
	}
	if o.StartIndex != 0 {
		q.Set("startIndex", strconv.Itoa(o.StartIndex))
	}
	if o.Count != 0 {
		q.Set("count", strconv.Itoa(max(o.Count, 0)))
	}
	if len(o.ExcludedAttributes) > 0 {
		q.Set("excludedAttributes", strings.Join(o.ExcludedAttributes, ","))
	}
	return q
}

// ListUsers reads one page of users.
func (s *SCIM) ListUsers(ctx context.Context, o ListOptions) (*Page[User], error) {
	var p Page[User]
	if err := s.call(ctx, http.MethodGet, "/Users", listQuery(o), nil, &p); err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return &p, nil
}

// FindUsers returns every user matching filter (e.g. [FilterEq]("userName", u)).
func (s *SCIM) FindUsers(ctx context.Context, filter string) ([]User, error) {
	var out []User
	for u, err := range s.AllUsers(ctx, filter, 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// AllUsers iterates over every user matching filter (all users when empty),
// pageSize at a time (DefaultPageSize when 0). It stops at the first error,
// which it yields.
func (s *SCIM) AllUsers(ctx context.Context, filter string, pageSize int) iter.Seq2[User, error] {
	return all(ctx, filter, pageSize, nil, s.ListUsers)
}

func all[T any](ctx context.Context, filter string, pageSize int, excluded []string, list func(context.Context, ListOptions) (*Page[T], error)) iter.Seq2[T, error] {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	return func(yield func(T, error) bool) {
		start := 1
		for start > 0 {
			p, err := list(ctx, ListOptions{Filter: filter, StartIndex: start, Count: pageSize, ExcludedAttributes: excluded})
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, r := range p.Resources {
				if !yield(r, nil) {
					return
				}
			}
			start = p.Next()
		}
	}
}

// CreateGroup creates g with its members; [ErrConflict] when displayName or
// externalId is taken.
func (s *SCIM) CreateGroup(ctx context.Context, g *Group) (*Group, error) {
	in := *g
	in.Schemas, in.ID, in.Meta = withSchema(g.Schemas, SchemaGroup), "", nil
	var out Group
	if err := s.call(ctx, http.MethodPost, "/Groups", nil, &in, &out); err != nil {
		return nil, fmt.Errorf("creating group %s: %w", g.DisplayName, err)
	}
	return &out, nil
}

// GetGroup reads a group with its members.
func (s *SCIM) GetGroup(ctx context.Context, id string) (*Group, error) {
	var out Group
	if err := s.call(ctx, http.MethodGet, "/Groups/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("getting group %s: %w", id, err)
	}
	return &out, nil
}

// ReplaceGroup replaces g.ID's name and members with g's (PUT).
func (s *SCIM) ReplaceGroup(ctx context.Context, g *Group) (*Group, error) {
	if g.ID == "" {
		return nil, fmt.Errorf("orgapi: replacing group %s: no id", g.DisplayName)
	}
	in := *g
	in.Schemas, in.Meta = withSchema(g.Schemas, SchemaGroup), nil
	var out Group
	if err := s.call(ctx, http.MethodPut, "/Groups/"+url.PathEscape(g.ID), nil, &in, &out); err != nil {
		return nil, fmt.Errorf("replacing group %s: %w", g.ID, err)
	}
	return &out, nil
}

// DeleteGroup deletes a group.
func (s *SCIM) DeleteGroup(ctx context.Context, id string) error {
	if err := s.call(ctx, http.MethodDelete, "/Groups/"+url.PathEscape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("deleting group %s: %w", id, err)
	}
	return nil
}

// ListGroups reads one page of groups; set ExcludedAttributes to
// []string{"members"} when the members are not needed.
func (s *SCIM) ListGroups(ctx context.Context, o ListOptions) (*Page[Group], error) {
	var p Page[Group]
	if err := s.call(ctx, http.MethodGet, "/Groups", listQuery(o), nil, &p); err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	return &p, nil
}

// AllGroups iterates over every group matching filter, members included
// unless withMembers is false.
func (s *SCIM) AllGroups(ctx context.Context, filter string, pageSize int, withMembers bool) iter.Seq2[Group, error] {
	var excluded []string
	if !withMembers {
		excluded = []string{"members"}
	}
	return all(ctx, filter, pageSize, excluded, s.ListGroups)
}

// PatchGroup applies ops to a group.
func (s *SCIM) PatchGroup(ctx context.Context, id string, ops ...PatchOperation) error {
	if err := s.call(ctx, http.MethodPatch, "/Groups/"+url.PathEscape(id), nil, patchBody{[]string{SchemaPatchOp}, ops}, nil); err != nil {
		return fmt.Errorf("patching group %s: %w", id, err)
	}
	return nil
}

// PatchGroupMembers adds and removes members (user ids) in one request: one add
// operation for all of add, and one `members[value eq "…"]` remove per id.
func (s *SCIM) PatchGroupMembers(ctx context.Context, id string, add, remove []string) error {
	var ops []PatchOperation
	if len(add) > 0 {
		ms := make([]Member, len(add))
		for i, v := range add {
			ms[i] = Member{Value: v}
		}
		ops = append(ops, PatchOperation{Op: "add", Path: "members", Value: ms})
	}
	for _, v := range remove {
		ops = append(ops, PatchOperation{Op: "remove", Path: "members[" + FilterEq("value", v) + "]"})
	}
	if len(ops) == 0 {
		return nil
	}
	return s.PatchGroup(ctx, id, ops...)
}

// ServiceProviderConfig reads what the server supports.
func (s *SCIM) ServiceProviderConfig(ctx context.Context) (*ServiceProviderConfig, error) {
	var out ServiceProviderConfig
	if err := s.call(ctx, http.MethodGet, "/ServiceProviderConfig", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("reading ServiceProviderConfig: %w", err)
	}
	return &out, nil
}
