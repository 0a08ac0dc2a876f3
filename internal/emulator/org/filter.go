package orgemu

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// filter is a parsed SCIM filter (RFC 7644 §3.4.2.2) of the subset the emulator
// supports: one or more `attrPath eq value` comparisons joined by `and`.
type filter []cond

// cond is one `attr eq value` comparison. attr is the lower-cased attribute path
// without a schema URN prefix ("username", "emails.value"); value holds the
// literal: a string, or "true"/"false"/"null"/a number when !quoted.
type cond struct {
	attr   string
	value  string
	quoted bool
}

// String renders f back in SCIM filter syntax.
func (f filter) String() string {
	var b strings.Builder
	for i, c := range f {
		if i > 0 {
			b.WriteString(" and ")
		}
		b.WriteString(c.attr)
		b.WriteString(" eq ")
		if c.quoted {
			q, _ := json.Marshal(c.value)
			b.Write(q)
		} else {
			b.WriteString(c.value)
		}
	}
	return b.String()
}

// errFilter is an invalid or unsupported filter; the SCIM answer is 400 invalidFilter.
type errFilter struct{ msg string }

func (e *errFilter) Error() string { return e.msg }

func filterErr(format string, args ...any) error {
	return &errFilter{msg: fmt.Sprintf(format, args...)}
}

// parseFilter parses s. The empty string is the empty filter.
func parseFilter(s string) (filter, error) {
	p := &lexer{s: s}
	var f filter
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for {
		attr, err := p.attrPath()
		if err != nil {
			return nil, err
		}
		op := p.word()
		switch strings.ToLower(op) {
		case "eq":
		case "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr":
			return nil, filterErr("operator %q is not supported: only eq (joined by and) is", op)
		case "":
			return nil, filterErr("expected an operator after %q at offset %d", attr, p.pos)
		default:
			return nil, filterErr("unknown operator %q at offset %d", op, p.pos)
		}
		c, err := p.value()
		if err != nil {
			return nil, err
		}
		c.attr = attr
		f = append(f, c)
		p.space()
		if p.pos == len(p.s) {
			return f, nil
		}
		switch w := p.word(); strings.ToLower(w) {
		case "and":
		case "or":
			return nil, filterErr("operator or is not supported: only and is")
		default:
			return nil, filterErr("expected and at offset %d, found %q", p.pos, w)
		}
	}
}

type lexer struct {
	s   string
	pos int
}

func (p *lexer) space() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':' || c == '$'
}

// word reads a run of attribute characters.
func (p *lexer) word() string {
	p.space()
	start := p.pos
	for p.pos < len(p.s) && isAttrChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *lexer) attrPath() (string, error) {
	w := p.word()
	if w == "" {
		if p.pos < len(p.s) {
			return "", filterErr("unexpected %q at offset %d", p.s[p.pos], p.pos)
		}
		return "", filterErr("expected an attribute at offset %d", p.pos)
	}
	if p.pos < len(p.s) && (p.s[p.pos] == '[' || p.s[p.pos] == '(') {
		return "", filterErr("complex filters (%q at offset %d) are not supported", p.s[p.pos], p.pos)
	}
	return canonicalAttr(w)
}

// canonicalAttr strips a schema URN prefix and lower-cases the path.
func canonicalAttr(w string) (string, error) {
	if i := strings.LastIndexByte(w, ':'); i >= 0 {
		w = w[i+1:]
	}
	w = strings.ToLower(w)
	if w == "" || strings.HasPrefix(w, ".") || strings.HasSuffix(w, ".") || strings.Contains(w, "..") {
		return "", filterErr("invalid attribute path %q", w)
	}
	return w, nil
}

func (p *lexer) value() (cond, error) {
	p.space()
	if p.pos >= len(p.s) {
		return cond{}, filterErr("expected a value at offset %d", p.pos)
	}
	if p.s[p.pos] == '"' {
		end := p.pos + 1
		for end < len(p.s) && p.s[end] != '"' {
			if p.s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(p.s) {
			return cond{}, filterErr("unterminated string at offset %d", p.pos)
		}
		var v string
		if err := json.Unmarshal([]byte(p.s[p.pos:end+1]), &v); err != nil {
			return cond{}, filterErr("invalid string at offset %d", p.pos)
		}
		p.pos = end + 1
		return cond{value: v, quoted: true}, nil
	}
	w := p.word()
	switch lw := strings.ToLower(w); lw {
	case "true", "false", "null":
		return cond{value: lw}, nil
	}
	if _, err := strconv.ParseFloat(w, 64); err == nil {
		return cond{value: w}, nil
	}
	return cond{}, filterErr("invalid value %q at offset %d: strings must be quoted", w, p.pos)
}
