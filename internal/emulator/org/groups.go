package orgemu

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SCIMMember is a group member as served; Value is the user id.
type SCIMMember struct {
	Value string `json:"value"`
	Ref   string `json:"$ref,omitempty"`
	Type  string `json:"type,omitempty"`
}

// SCIMGroup is a group as served. Members is nil when excluded
// (excludedAttributes=members).
type SCIMGroup struct {
	Schemas     []string      `json:"schemas"`
	ID          string        `json:"id,omitempty"`
	ExternalID  string        `json:"externalId,omitempty"`
	DisplayName string        `json:"displayName"`
	Members     *[]SCIMMember `json:"members,omitempty"`
	Meta        *SCIMMeta     `json:"meta,omitempty"`
}

// renderGroup builds the wire form; the caller holds e.mu.
func (e *Emulator) renderGroup(g *scimGroup, withMembers bool) SCIMGroup {
	out := SCIMGroup{
		Schemas: []string{schemaGroup}, ID: g.id, ExternalID: g.externalID, DisplayName: g.displayName,
		Meta: &SCIMMeta{
			ResourceType: "Group",
			Created:      g.created.UTC().Format(time.RFC3339Nano),
			LastModified: g.modified.UTC().Format(time.RFC3339Nano),
			Version:      etag(g.version),
			Location:     e.location("Groups", g.id),
		},
	}
	if withMembers {
		ms := make([]SCIMMember, len(g.members))
		base := e.URL() + "/services/scim/v2/Users/"
		for i, id := range g.members {
			ms[i] = SCIMMember{Value: id, Ref: base + id, Type: "User"}
		}
		out.Members = &ms
	}
	return out
}

func wantMembers(r *http.Request) bool {
	for _, a := range strings.Split(r.URL.Query().Get("excludedAttributes"), ",") {
		if strings.EqualFold(strings.TrimSpace(a), "members") {
			return false
		}
	}
	return true
}

func decodeGroup(r *http.Request) (*SCIMGroup, []string, *scimError) {
	var in SCIMGroup
	if err := readBody(r, &in); err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		return nil, nil, &scimError{status: 400, scimType: "invalidValue", detail: "displayName is required"}
	}
	var ids []string
	if in.Members != nil {
		for _, m := range *in.Members {
			ids = append(ids, m.Value)
		}
	}
	return &in, ids, nil
}

// checkMembers reports the first id that is not a user of d; the caller holds e.mu.
func (d *directory) checkMembers(ids []string) *scimError {
	for _, id := range ids {
		if d.user(id) == nil {
			return &scimError{status: 400, scimType: "invalidValue", detail: "member " + strconv.Quote(id) + " is not a user of this org"}
		}
	}
	return nil
}

func (e *Emulator) handleCreateGroup(w http.ResponseWriter, r *http.Request, o *org) {
	in, ids, serr := decodeGroup(r)
	if serr != nil {
		serr.write(w)
		return
	}
	e.mu.Lock()
	out, serr := func() (SCIMGroup, *scimError) {
		d := o.dir
		if err := d.checkGroupUnique("", in.DisplayName, in.ExternalID); err != nil {
			return SCIMGroup{}, err
		}
		if err := d.checkMembers(ids); err != nil {
			return SCIMGroup{}, err
		}
		now := e.now()
		g := &scimGroup{id: e.newID("00G"), memberIdx: make(map[string]int, len(ids)), created: now, modified: now, version: 1}
		for _, id := range ids {
			g.addMember(normID(id))
		}
		d.renameGroup(g, in.DisplayName, in.ExternalID)
		d.groups = append(d.groups, g)
		d.groupByID[g.id] = g
		return e.renderGroup(g, true), nil
	}()
	e.mu.Unlock()
	if serr != nil {
		serr.write(w)
		return
	}
	w.Header().Set("Location", out.Meta.Location)
	w.Header().Set("ETag", out.Meta.Version)
	writeJSON(w, http.StatusCreated, scimContentType, out)
}

func (e *Emulator) handleGetGroup(w http.ResponseWriter, r *http.Request, o *org) {
	e.mu.RLock()
	g := o.dir.groupByID[r.PathValue("id")]
	var out SCIMGroup
	if g != nil {
		out = e.renderGroup(g, wantMembers(r))
	}
	e.mu.RUnlock()
	if g == nil {
		writeSCIMError(w, http.StatusNotFound, "", "no group "+r.PathValue("id"))
		return
	}
	w.Header().Set("ETag", out.Meta.Version)
	writeJSON(w, http.StatusOK, scimContentType, out)
}

var groupAttrs = map[string]bool{"id": true, "displayname": true, "externalid": true, "members": true, "members.value": true}

func (e *Emulator) handleListGroups(w http.ResponseWriter, r *http.Request, o *org) {
	start, count, f, ok := listQuery(w, r, "groups", groupAttrs)
	if !ok {
		return
	}
	members := wantMembers(r)
	resp := listResponse{Schemas: []string{schemaList}, StartIndex: start, Resources: []any{}}
	e.mu.RLock()
	d := o.dir
	matches := d.groups
	if len(f) > 0 {
		matches = nil
		for _, g := range d.groups {
			if groupMatches(g, f) {
				matches = append(matches, g)
			}
		}
	}
	resp.TotalResults = len(matches)
	if lo := start - 1; lo < len(matches) {
		for _, g := range matches[lo:min(lo+count, len(matches))] {
			resp.Resources = append(resp.Resources, e.renderGroup(g, members))
		}
	}
	e.mu.RUnlock()
	resp.ItemsPerPage = len(resp.Resources)
	writeJSON(w, http.StatusOK, scimContentType, resp)
}

func groupMatches(g *scimGroup, f filter) bool {
	for _, c := range f {
		if !c.quoted {
			return false
		}
		switch c.attr {
		case "id":
			if g.id != c.value {
				return false
			}
		case "displayname":
			if !strings.EqualFold(g.displayName, c.value) {
				return false
			}
		case "externalid":
			if g.externalID != c.value {
				return false
			}
		case "members", "members.value":
			if _, ok := g.memberIdx[normID(c.value)]; !ok {
				return false
			}
		}
	}
	return true
}

func (e *Emulator) handleReplaceGroup(w http.ResponseWriter, r *http.Request, o *org) {
	in, ids, serr := decodeGroup(r)
	if serr != nil {
		serr.write(w)
		return
	}
	e.mu.Lock()
	out, serr := func() (SCIMGroup, *scimError) {
		d := o.dir
		g := d.groupByID[r.PathValue("id")]
		if g == nil {
			return SCIMGroup{}, &scimError{status: 404, detail: "no group " + r.PathValue("id")}
		}
		if err := checkVersion(r, etag(g.version)); err != nil {
			return SCIMGroup{}, err
		}
		if err := d.checkGroupUnique(g.id, in.DisplayName, in.ExternalID); err != nil {
			return SCIMGroup{}, err
		}
		if err := d.checkMembers(ids); err != nil {
			return SCIMGroup{}, err
		}
		d.renameGroup(g, in.DisplayName, in.ExternalID)
		g.members, g.memberIdx = nil, make(map[string]int, len(ids))
		for _, id := range ids {
			g.addMember(normID(id))
		}
		g.modified, g.version = e.now(), g.version+1
		return e.renderGroup(g, true), nil
	}()
	e.mu.Unlock()
	if serr != nil {
		serr.write(w)
		return
	}
	w.Header().Set("ETag", out.Meta.Version)
	writeJSON(w, http.StatusOK, scimContentType, out)
}

func (e *Emulator) handleDeleteGroup(w http.ResponseWriter, r *http.Request, o *org) {
	e.mu.Lock()
	serr := func() *scimError {
		g := o.dir.groupByID[r.PathValue("id")]
		if g == nil {
			return &scimError{status: http.StatusNotFound, detail: "no group " + r.PathValue("id")}
		}
		if err := checkVersion(r, etag(g.version)); err != nil {
			return err
		}
		o.dir.removeGroup(g)
		return nil
	}()
	e.mu.Unlock()
	if serr != nil {
		serr.write(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handlePatchGroup applies a PatchOp to a group. Member changes are O(changed
// members), not O(group size), so syncing large groups stays cheap. It answers
// 204 No Content with the new version in the ETag header: a group of 10,000
// members is not echoed back.
func (e *Emulator) handlePatchGroup(w http.ResponseWriter, r *http.Request, o *org) {
	p, serr := decodePatch(r)
	if serr != nil {
		serr.write(w)
		return
	}
	var version string
	e.mu.Lock()
	serr = func() *scimError {
		d := o.dir
		g := d.groupByID[r.PathValue("id")]
		if g == nil {
			return &scimError{status: 404, detail: "no group " + r.PathValue("id")}
		}
		if err := checkVersion(r, etag(g.version)); err != nil {
			return err
		}
		// Validate every operation before applying any, so a bad one changes nothing.
		var steps []func()
		name, ext := g.displayName, g.externalID
		for _, op := range p.Operations {
			s, err := groupOpSteps(d, g, op, &name, &ext)
			if err != nil {
				return err
			}
			steps = append(steps, s...)
		}
		if name != g.displayName || ext != g.externalID {
			if err := d.checkGroupUnique(g.id, name, ext); err != nil {
				return err
			}
			steps = append(steps, func() { d.renameGroup(g, name, ext) })
		}
		for _, s := range steps {
			s()
		}
		g.modified, g.version = e.now(), g.version+1
		version = etag(g.version)
		return nil
	}()
	e.mu.Unlock()
	if serr != nil {
		serr.write(w)
		return
	}
	w.Header().Set("ETag", version)
	w.WriteHeader(http.StatusNoContent)
}

func groupOpSteps(d *directory, g *scimGroup, op patchOp, name, ext *string) ([]func(), *scimError) {
	var v any
	if len(op.Value) > 0 {
		if err := json.Unmarshal(op.Value, &v); err != nil {
			return nil, &scimError{status: 400, scimType: "invalidValue", detail: "op value is not JSON"}
		}
	}
	if op.Path == "" {
		obj, ok := v.(map[string]any)
		if op.Op == "remove" || !ok {
			return nil, &scimError{status: 400, scimType: "invalidValue", detail: "an operation without path needs an object value"}
		}
		var steps []func()
		for k, x := range obj {
			raw, _ := json.Marshal(x)
			s, err := groupOpSteps(d, g, patchOp{Op: op.Op, Path: k, Value: raw}, name, ext)
			if err != nil {
				return nil, err
			}
			steps = append(steps, s...)
		}
		return steps, nil
	}
	p, serr := parsePatchPath(op.Path)
	if serr != nil {
		return nil, serr
	}
	switch {
	case p.attr == "displayname" && p.sub == "" && p.valFn == nil:
		s, ok := v.(string)
		if op.Op == "remove" || !ok || strings.TrimSpace(s) == "" {
			return nil, &scimError{status: 400, scimType: "invalidValue", detail: "displayName must be a non-empty string"}
		}
		*name = s
		return nil, nil
	case p.attr == "externalid" && p.sub == "" && p.valFn == nil:
		if op.Op == "remove" {
			*ext = ""
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, &scimError{status: 400, scimType: "invalidValue", detail: "externalId must be a string"}
		}
		*ext = s
		return nil, nil
	case p.attr == "members" && p.sub == "":
	default:
		return nil, &scimError{status: 400, scimType: "invalidPath", detail: "unsupported group path " + strconv.Quote(op.Path)}
	}
	if p.valFn != nil { // members[value eq "005…"]
		if op.Op != "remove" || len(p.valFn) != 1 || p.valFn[0].attr != "value" || !p.valFn[0].quoted {
			return nil, &scimError{status: 400, scimType: "invalidPath", detail: `only remove supports members[value eq "…"]`}
		}
		id := normID(p.valFn[0].value)
		return []func(){func() { g.removeMember(id) }}, nil
	}
	var ids []string
	if v != nil {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		for _, x := range list {
			m, ok := x.(map[string]any)
			id, _ := m["value"].(string)
			if !ok || id == "" {
				return nil, &scimError{status: 400, scimType: "invalidValue", detail: `members must be objects with a "value"`}
			}
			ids = append(ids, normID(id))
		}
	}
	switch op.Op {
	case "add", "replace":
		if err := d.checkMembers(ids); err != nil {
			return nil, err
		}
		steps := []func(){}
		if op.Op == "replace" {
			steps = append(steps, func() { g.members, g.memberIdx = nil, make(map[string]int, len(ids)) })
		}
		return append(steps, func() {
			for _, id := range ids {
				g.addMember(id)
			}
		}), nil
	default: // remove: the listed members, or all of them without a value
		if v == nil {
			return []func(){func() { g.members, g.memberIdx = nil, make(map[string]int) }}, nil
		}
		return []func(){func() {
			for _, id := range ids {
				g.removeMember(id)
			}
		}}, nil
	}
}
