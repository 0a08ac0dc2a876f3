package orgemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

func decodePatch(r *http.Request) (*patchRequest, *scimError) {
	var p patchRequest
	if err := readBody(r, &p); err != nil {
		return nil, err
	}
	if !slices.Contains(p.Schemas, schemaPatchOp) {
		return nil, &scimError{status: 400, scimType: "invalidSyntax", detail: "schemas must contain " + schemaPatchOp}
	}
	if len(p.Operations) == 0 {
		return nil, &scimError{status: 400, scimType: "invalidSyntax", detail: "Operations is empty"}
	}
	for i := range p.Operations {
		op := strings.ToLower(p.Operations[i].Op)
		if op != "add" && op != "replace" && op != "remove" {
			return nil, &scimError{status: 400, scimType: "invalidSyntax", detail: "op must be add, replace or remove, not " + strconv.Quote(p.Operations[i].Op)}
		}
		p.Operations[i].Op = op
	}
	return &p, nil
}

// patchPath is a parsed PATCH path: attr, attr.sub, attr[filter] or attr[filter].sub.
type patchPath struct {
	attr  string // lower-cased, no URN prefix
	sub   string // lower-cased
	valFn filter
}

func parsePatchPath(s string) (patchPath, *scimError) {
	bad := func(msg string) (patchPath, *scimError) {
		return patchPath{}, &scimError{status: 400, scimType: "invalidPath", detail: "path " + strconv.Quote(s) + ": " + msg}
	}
	var p patchPath
	head, rest := s, ""
	if i := strings.IndexByte(s, '['); i >= 0 {
		j := strings.LastIndexByte(s, ']')
		if j < i {
			return bad("unbalanced [")
		}
		f, err := parseFilter(s[i+1 : j])
		if err != nil || len(f) == 0 {
			return bad("invalid value filter")
		}
		p.valFn = f
		head, rest = s[:i], s[j+1:]
		if rest != "" {
			if rest[0] != '.' || len(rest) < 2 {
				return bad("expected .subAttribute after ]")
			}
			p.sub = strings.ToLower(rest[1:])
		}
	}
	attr, err := canonicalAttr(head)
	if err != nil {
		return bad(err.Error())
	}
	if p.valFn == nil {
		attr, p.sub, _ = strings.Cut(attr, ".")
	} else if strings.Contains(attr, ".") {
		return bad("a value filter must follow a top-level attribute")
	}
	p.attr = attr
	return p, nil
}

// userKeys maps lower-cased user attribute names to their JSON names.
var userKeys = map[string]string{
	"externalid": "externalId", "username": "userName", "name": "name", "displayname": "displayName",
	"nickname": "nickName", "title": "title", "usertype": "userType", "preferredlanguage": "preferredLanguage",
	"locale": "locale", "timezone": "timezone", "active": "active", "emails": "emails",
	"phonenumbers": "phoneNumbers", "photos": "photos",
	"id": "id", "meta": "meta", "schemas": "schemas",
}

var subKeys = map[string]string{
	"formatted": "formatted", "familyname": "familyName", "givenname": "givenName", "middlename": "middleName",
	"value": "value", "display": "display", "type": "type", "primary": "primary",
}

// patchUser applies ops to a copy of prev and returns the result.
func patchUser(prev *SCIMUser, ops []patchOp) (*SCIMUser, *scimError) {
	raw, _ := json.Marshal(prev)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	for _, op := range ops {
		var v any
		if len(op.Value) > 0 {
			if err := json.Unmarshal(op.Value, &v); err != nil {
				return nil, &scimError{status: 400, scimType: "invalidValue", detail: "op value is not JSON"}
			}
		}
		if err := applyUserOp(m, op.Op, op.Path, v); err != nil {
			return nil, err
		}
	}
	if s, ok := m["active"].(string); ok { // some clients send "False"
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			return nil, &scimError{status: 400, scimType: "invalidValue", detail: "active must be a boolean"}
		}
		m["active"] = b
	}
	raw, _ = json.Marshal(m)
	next := &SCIMUser{Active: true}
	if err := json.Unmarshal(raw, next); err != nil {
		return nil, &scimError{status: 400, scimType: "invalidValue", detail: "the patched user is not valid: " + err.Error()}
	}
	return next, nil
}

func applyUserOp(m map[string]any, op, path string, v any) *scimError {
	if path == "" {
		if op == "remove" {
			return &scimError{status: 400, scimType: "noTarget", detail: "remove needs a path"}
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return &scimError{status: 400, scimType: "invalidValue", detail: "an operation without path needs an object value"}
		}
		for k, x := range obj {
			if strings.HasPrefix(k, "urn:") && !strings.HasPrefix(strings.ToLower(k), strings.ToLower(schemaUser)) {
				continue // extension schemas are not stored
			}
			if err := applyUserOp(m, op, k, x); err != nil {
				return err
			}
		}
		return nil
	}
	p, serr := parsePatchPath(path)
	if serr != nil {
		return serr
	}
	key, ok := userKeys[p.attr]
	if !ok {
		return &scimError{status: 400, scimType: "invalidPath", detail: "unknown attribute " + strconv.Quote(p.attr)}
	}
	if key == "id" || key == "meta" || key == "schemas" {
		return &scimError{status: 400, scimType: "mutability", detail: key + " is read-only"}
	}
	sub := ""
	if p.sub != "" {
		if sub, ok = subKeys[p.sub]; !ok {
			return &scimError{status: 400, scimType: "invalidPath", detail: "unknown sub-attribute " + strconv.Quote(p.sub)}
		}
	}
	if p.valFn != nil {
		return applyFiltered(m, key, sub, op, p.valFn, v)
	}
	if sub != "" {
		obj, _ := m[key].(map[string]any)
		if obj == nil {
			if _, isList := m[key].([]any); isList {
				return &scimError{status: 400, scimType: "invalidPath", detail: key + " is multi-valued: use a value filter"}
			}
			if op == "remove" {
				return nil
			}
			obj = map[string]any{}
			m[key] = obj
		}
		if op == "remove" {
			delete(obj, sub)
		} else {
			obj[sub] = v
		}
		return nil
	}
	switch op {
	case "remove":
		delete(m, key)
	case "add":
		switch cur := m[key].(type) {
		case []any:
			add, ok := v.([]any)
			if !ok {
				add = []any{v}
			}
			for _, x := range add {
				if !containsJSON(cur, x) {
					cur = append(cur, x)
				}
			}
			m[key] = cur
		case map[string]any:
			if obj, ok := v.(map[string]any); ok {
				for k, x := range obj {
					cur[k] = x
				}
				return nil
			}
			m[key] = v
		default:
			m[key] = v
		}
	case "replace":
		if cur, ok := m[key].(map[string]any); ok {
			if obj, ok := v.(map[string]any); ok {
				for k, x := range obj {
					cur[k] = x
				}
				return nil
			}
		}
		m[key] = v
	}
	return nil
}

func containsJSON(list []any, x any) bool {
	xb, _ := json.Marshal(x)
	for _, y := range list {
		yb, _ := json.Marshal(y)
		if string(xb) == string(yb) {
			return true
		}
	}
	return false
}

func applyFiltered(m map[string]any, key, sub, op string, f filter, v any) *scimError {
	list, _ := m[key].([]any)
	var hits []int
	for i, it := range list {
		if obj, ok := it.(map[string]any); ok && itemMatches(obj, f) {
			hits = append(hits, i)
		}
	}
	if len(hits) == 0 {
		if op == "remove" {
			return nil
		}
		return &scimError{status: 400, scimType: "noTarget", detail: "no " + key + " value matches the path filter"}
	}
	if op == "remove" && sub == "" {
		kept := list[:0:0]
		for i, it := range list {
			if !slices.Contains(hits, i) {
				kept = append(kept, it)
			}
		}
		if len(kept) == 0 {
			delete(m, key)
		} else {
			m[key] = kept
		}
		return nil
	}
	for _, i := range hits {
		obj := list[i].(map[string]any)
		switch {
		case op == "remove":
			delete(obj, sub)
		case sub != "":
			obj[sub] = v
		default:
			nv, ok := v.(map[string]any)
			if !ok {
				return &scimError{status: 400, scimType: "invalidValue", detail: "value must be an object"}
			}
			for k, x := range nv {
				obj[k] = x
			}
		}
	}
	return nil
}

func itemMatches(obj map[string]any, f filter) bool {
	for _, c := range f {
		var got any
		for k, x := range obj {
			if strings.EqualFold(k, c.attr) {
				got = x
			}
		}
		switch x := got.(type) {
		case string:
			if !c.quoted || !strings.EqualFold(x, c.value) {
				return false
			}
		case bool:
			if c.quoted || strconv.FormatBool(x) != c.value {
				return false
			}
		case nil:
			if c.value != "null" || c.quoted {
				return false
			}
		default:
			b, _ := json.Marshal(x)
			if string(b) != c.value {
				return false
			}
		}
	}
	return true
}

func (e *Emulator) handlePatchUser(w http.ResponseWriter, r *http.Request, o *org) {
	p, serr := decodePatch(r)
	if serr != nil {
		serr.write(w)
		return
	}
	e.updateUser(w, r, o, func(prev *SCIMUser) (*SCIMUser, *scimError) {
		return patchUser(prev, p.Operations)
	})
}
