package ingress

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Bounds on the request values that become subject tokens or message headers.
// They come from outside: a subject token of a few thousand bytes overflows
// the NATS server's control line, and nats.go closes the connection for good
// ("maximum control line exceeded"), so every later request would fail. Each
// is checked before anything is published and answered 400 when out of bounds.
const (
	// maxIDLen bounds Slack ids (team T…, enterprise E…, app A…): upper-case
	// letters and digits, about 9 to 11 of them today.
	maxIDLen = 32
	// maxTypeLen bounds event and interaction types: lower-case words joined
	// by '_' (app_home_opened, view_submission), some with '.' or digits.
	maxTypeLen = 64
	// maxCommandRunes bounds a slash command's name after its '/': Slack
	// allows 32 characters.
	maxCommandRunes = 32
	// maxMsgIDLen bounds the values that become a Nats-Msg-Id: Slack's
	// event_id (Ev…) and trigger_id (digits, dots, hex) are well below it.
	maxMsgIDLen = 128
	// maxShown bounds how much of a bad value an error repeats.
	maxShown = 40
)

// show quotes v for an error message, shortened when long.
func show(v string) string {
	if len(v) > maxShown {
		return fmt.Sprintf("%q… (%d bytes)", v[:maxShown], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// badID says why v, the value of field, is not a Slack id, or "" when it is
// one or empty (callers check presence themselves).
func badID(field, v string) string {
	if len(v) > maxIDLen {
		return fmt.Sprintf("%s %s is not a Slack id: it is longer than %d characters", field, show(v), maxIDLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return fmt.Sprintf("%s %s is not a Slack id: Slack ids are upper-case letters and digits", field, show(v))
		}
	}
	return ""
}

// badType says why v, the value of field, is not an event or interaction
// type, or "" when it is one or empty.
func badType(field, v string) string {
	if len(v) > maxTypeLen {
		return fmt.Sprintf("%s %s is not a Slack type: it is longer than %d characters", field, show(v), maxTypeLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' {
			return fmt.Sprintf("%s %s is not a Slack type: types are lower-case letters, digits, '_' and '.'", field, show(v))
		}
	}
	return ""
}

// badCommand says why v is not a slash command name, or "" when it is one or
// empty. Names may be in any script, so anything printable but white space
// and the bytes that mean something in a subject ('.', '*', '>') is allowed.
func badCommand(v string) string {
	if v == "" {
		return ""
	}
	if v[0] != '/' {
		return fmt.Sprintf("command %s is not a slash command: it does not start with '/'", show(v))
	}
	name := v[1:]
	if n := utf8.RuneCountInString(name); n == 0 || n > maxCommandRunes {
		return fmt.Sprintf("command %s is not a slash command: its name must have 1 to %d characters", show(v), maxCommandRunes)
	}
	for _, r := range name {
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '.' || r == '*' || r == '>' || r == '/' {
			return fmt.Sprintf("command %s is not a slash command: its name has a character Slack does not allow", show(v))
		}
	}
	return ""
}

// badMsgID says why v, the value of field, cannot be a message id, or ""
// when it can or is empty: at most [maxMsgIDLen] printable ASCII bytes.
func badMsgID(field, v string) string {
	if len(v) > maxMsgIDLen {
		return fmt.Sprintf("%s %s is longer than %d characters", field, show(v), maxMsgIDLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return fmt.Sprintf("%s %s has a character Slack never puts in it: only printable ASCII without spaces", field, show(v))
		}
	}
	return ""
}

// firstProblem returns the first non-empty problem.
func firstProblem(problems ...string) string {
	for _, p := range problems {
		if p != "" {
			return p
		}
	}
	return ""
}
