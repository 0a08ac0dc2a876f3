package orgemu

import (
	"errors"
	"slices"
	"testing"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want filter
		ok   bool
	}{
		{"empty", "", nil, true},
		{"eq string", `userName eq "a@b.example"`, filter{{"username", "a@b.example", true}}, true},
		{"operator case", `userName EQ "x"`, filter{{"username", "x", true}}, true},
		{"sub-attribute", `emails.value eq "x"`, filter{{"emails.value", "x", true}}, true},
		{"urn prefix", `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, filter{{"username", "x", true}}, true},
		{"escapes", `displayName eq "say \"hi\" \u00e9"`, filter{{"displayname", `say "hi" é`, true}}, true},
		{"and", `userName eq "a" and active eq true`, filter{{"username", "a", true}, {"active", "true", false}}, true},
		{"number and null", `x eq 12.5 and y eq null`, filter{{"x", "12.5", false}, {"y", "null", false}}, true},
		{"or", `a eq "1" or b eq "2"`, nil, false},
		{"other operator", `userName sw "a"`, nil, false},
		{"presence", `title pr`, nil, false},
		{"unquoted", `userName eq alice`, nil, false},
		{"unterminated", `userName eq "alice`, nil, false},
		{"missing value", `userName eq`, nil, false},
		{"trailing and", `userName eq "a" and`, nil, false},
		{"complex filter", `emails[type eq "work"]`, nil, false},
		{"garbage", `!!!`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFilter(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("parseFilter(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			var fe *errFilter
			if err != nil && !errors.As(err, &fe) {
				t.Fatalf("err %T is not *errFilter", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("parseFilter(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseFilter checks the parser never panics and that what it accepts
// prints back to a filter that parses to the same conditions.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `emails.value eq "x@y" and active eq true`, `a eq "\""`, `x eq 1e5`, `userName co "a"`, `"`, `a eq "\u00`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFilter(s)
		if err != nil {
			return
		}
		again, err := parseFilter(got.String())
		if err != nil {
			t.Fatalf("String() of %q = %q does not parse: %v", s, got.String(), err)
		}
		if !slices.Equal(got, again) {
			t.Fatalf("round trip of %q: %#v != %#v", s, got, again)
		}
	})
}

func TestParsePatchPath(t *testing.T) {
	tests := []struct {
		in   string
		want patchPath
		ok   bool
	}{
		{"active", patchPath{attr: "active"}, true},
		{"name.givenName", patchPath{attr: "name", sub: "givenname"}, true},
		{`members[value eq "005"]`, patchPath{attr: "members", valFn: filter{{"value", "005", true}}}, true},
		{`emails[type eq "work"].value`, patchPath{attr: "emails", sub: "value", valFn: filter{{"type", "work", true}}}, true},
		{`emails[type eq "work"`, patchPath{}, false},
		{`emails[]`, patchPath{}, false},
		{`emails[type eq "work"]value`, patchPath{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePatchPath(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && (got.attr != tt.want.attr || got.sub != tt.want.sub || !slices.Equal(got.valFn, tt.want.valFn)) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestID18(t *testing.T) {
	tests := []struct{ in, want string }{
		{"001A0000006Vm9r", "001A0000006Vm9rIAC"},
		{"00D000000000001", "00D000000000001EAA"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := id18(tt.in); got != tt.want {
				t.Fatalf("id18 = %s, want %s", got, tt.want)
			}
			if got := normID(tt.want); got != tt.in {
				t.Fatalf("normID = %s, want %s", got, tt.in)
			}
		})
	}
}
