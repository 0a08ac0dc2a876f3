package ingress

import (
	"encoding/json"
	"errors"
	"fmt"
)

// eventEnvelope holds the few fields of an Events API request the ingress routes by.
type eventEnvelope struct {
	Type         string
	Challenge    string
	TeamID       string
	EnterpriseID string
	EventID      string
	EventType    string // event.type
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

// parseEnvelope validates body as JSON and extracts the routing fields in one
// pass without building the document: on the request path this is several times
// cheaper than encoding/json, which the fuzz test checks it agrees with. Fields
// match exactly (Slack's keys are lower case); the last of duplicate keys wins; a
// null field is absent; a field of another type is an error.
func parseEnvelope(body []byte) (eventEnvelope, error) {
	var env eventEnvelope
	p := parser{b: body}
	p.ws()
	if p.peek() == 'n' {
		if err := p.literal("null"); err != nil {
			return env, err
		}
	} else if p.peek() != '{' {
		return env, errors.New("the body is not a JSON object")
	} else if err := p.object(1, func(key []byte) error {
		switch string(key) {
		case "type":
			return p.stringField(&env.Type, "type")
		case "challenge":
			return p.stringField(&env.Challenge, "challenge")
		case "team_id":
			return p.stringField(&env.TeamID, "team_id")
		case "enterprise_id":
			return p.stringField(&env.EnterpriseID, "enterprise_id")
		case "event_id":
			return p.stringField(&env.EventID, "event_id")
		case "event":
			return p.eventField(&env.EventType)
		}
		return p.value(1)
	}); err != nil {
		return env, err
	}
	p.ws()
	if p.i != len(p.b) {
		return env, p.errorf("unexpected data after the JSON object")
	}
	return env, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object parses an object at p.i, calling field with each key (unescaped) with
// p.i at the start of its value; field must consume the value.
func (p *parser) object(depth int, field func(key []byte) error) error {
	if depth > maxDepth {
		return p.errorf("nested too deeply")
	}
	p.i++ // '{'
	p.ws()
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		if p.peek() != '"' {
			return p.errorf("expected a string key")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		p.ws()
		if p.peek() != ':' {
			return p.errorf("expected ':' after a key")
		}
		p.i++
		p.ws()
		if err := field(key); err != nil {
			return err
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return nil
		default:
			return p.errorf("expected ',' or '}' in an object")
		}
	}
}

func (p *parser) stringField(dst *string, name string) error {
	switch p.peek() {
	case '"':
		s, err := p.str()
		*dst = string(s)
		return err
	case 'n':
		*dst = ""
		return p.literal("null")
	}
	return fmt.Errorf("field %q is not a string", name)
}

func (p *parser) eventField(dst *string) error {
	switch p.peek() {
	case '{':
		*dst = ""
		return p.object(2, func(key []byte) error {
			if string(key) == "type" {
				return p.stringField(dst, "event.type")
			}
			return p.value(2)
		})
	case 'n':
		return p.literal("null")
	}
	return errors.New(`field "event" is not an object`)
}

// value skips one JSON value, validating it.
func (p *parser) value(depth int) error {
	switch c := p.peek(); {
	case c == '{':
		return p.object(depth+1, func([]byte) error { return p.value(depth + 1) })
	case c == '[':
		if depth+1 > maxDepth {
			return p.errorf("nested too deeply")
		}
		p.i++
		p.ws()
		if p.peek() == ']' {
			p.i++
			return nil
		}
		for {
			if err := p.value(depth + 1); err != nil {
				return err
			}
			p.ws()
			switch p.peek() {
			case ',':
				p.i++
				p.ws()
			case ']':
				p.i++
				return nil
			default:
				return p.errorf("expected ',' or ']' in an array")
			}
		}
	case c == '"':
		_, err := p.str()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return p.errorf("expected a value")
}

func (p *parser) literal(lit string) error {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return p.errorf("expected %s", lit)
	}
	p.i += len(lit)
	return nil
}

func (p *parser) number() error {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.peek() == '-' {
		p.i++
	}
	switch {
	case p.peek() == '0':
		p.i++
	case digits() == 0:
		return p.errorf("malformed number")
	}
	if p.peek() == '.' {
		p.i++
		if digits() == 0 {
			return p.errorf("malformed number")
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if digits() == 0 {
			return p.errorf("malformed number")
		}
	}
	return nil
}

// str parses a string at p.i and returns its value. Plain ASCII without escapes
// (everything Slack puts in ids and types) is returned as a sub-slice; anything
// else is decoded by encoding/json so the result is exactly what it would give.
func (p *parser) str() ([]byte, error) {
	start := p.i
	p.i++ // opening quote
	plain := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if plain {
				return p.b[start+1 : p.i-1], nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return nil, p.errorf("malformed string")
			}
			return []byte(s), nil
		case c == '\\':
			plain = false
			p.i++
			switch p.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				for k := 0; k < 4; k++ {
					if !isHex(p.peek()) {
						return nil, p.errorf("malformed \\u escape")
					}
					p.i++
				}
			default:
				return nil, p.errorf("malformed escape")
			}
		case c < 0x20:
			return nil, p.errorf("control character in a string")
		default:
			if c >= 0x80 {
				plain = false
			}
			p.i++
		}
	}
	return nil, p.errorf("unterminated string")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
