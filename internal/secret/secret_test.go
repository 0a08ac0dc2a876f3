package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/secret"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/disconnect"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// The four secret types orgbridge had are one: these assignments only
// compile while each is an alias of secret.Secret.
var (
	_ secret.Secret = config.Secret("")
	_ secret.Secret = store.Secret("")
	_ secret.Secret = orgapi.Secret("")
	_ secret.Secret = disconnect.Token("")
)

const plain = "xoxb-4242-very-secret"

// TestSecretNeverShows: every former secret type, alone and inside the
// structs that carry it, prints as [redacted] under every fmt verb, in JSON,
// as text and through slog's text and JSON handlers.
func TestSecretNeverShows(t *testing.T) {
	tests := []struct {
		name string
		// value is the secret alone; holder a struct that carries it.
		value, holder any
		// jsonOmits: the holder's JSON leaves its secrets out (`json:"-"`).
		jsonOmits bool
	}{
		{"config.Secret", config.Secret(plain), struct{ S config.Secret }{config.Secret(plain)}, false},
		{"store.Secret", store.Secret(plain), struct{ S store.Secret }{store.Secret(plain)}, false},
		{"orgapi.Secret", orgapi.Secret(plain), struct{ S orgapi.Secret }{orgapi.Secret(plain)}, false},
		{"disconnect.Token", disconnect.Token(plain), struct{ S disconnect.Token }{disconnect.Token(plain)}, false},
		{"config.Config", config.Secret(plain), config.Config{AdminToken: config.Secret(plain),
			SMTP: config.SMTP{Host: "mail", Password: config.Secret(plain)}, Org: config.OrgApp{ClientSecret: config.Secret(plain)}}, false},
		{"orgapi.Config", orgapi.Secret(plain), orgapi.Config{BaseURL: "https://login.example", ClientSecret: orgapi.Secret(plain)}, false},
		{"disconnect.Install", disconnect.Token(plain), disconnect.Install{EnterpriseID: "E1", Token: disconnect.Token(plain)}, false},
		{"store.Installation", store.Secret(plain), store.Installation{AppID: "A1", BotToken: store.Secret(plain)}, true},
		{"provisioning.ConnectRequest", store.Secret(plain), provisioning.ConnectRequest{OrgID: "00D1", SlackToken: store.Secret(plain)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outputs := map[string]string{}
			for _, verb := range []string{"%v", "%s", "%#v", "%+v", "%q", "%x", "%d", "%10.3s"} {
				outputs["secret "+verb] = fmt.Sprintf(verb, tt.value)
				outputs["holder "+verb] = fmt.Sprintf(verb, tt.holder)
			}
			for what, v := range map[string]any{"secret": tt.value, "holder": tt.holder} {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatalf("json.Marshal(%s): %v", what, err)
				}
				outputs["json "+what] = string(b)
				var jsonLog, textLog bytes.Buffer
				slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("m", "v", v, slog.Group("g", "v", v))
				slog.New(slog.NewTextHandler(&textLog, nil)).Info("m", "v", v)
				outputs["slog json "+what] = jsonLog.String()
				outputs["slog text "+what] = textLog.String()
			}
			text, err := tt.value.(interface{ MarshalText() ([]byte, error) }).MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			outputs["MarshalText"] = string(text)
			for how, out := range outputs {
				if strings.Contains(out, plain) || strings.Contains(out, fmt.Sprintf("%x", plain)) {
					t.Errorf("%s shows the secret: %s", how, out)
				}
				if tt.jsonOmits && (how == "json holder" || how == "slog json holder") {
					continue
				}
				if !strings.Contains(out, secret.Redacted) && !strings.Contains(out, fmt.Sprintf("%x", secret.Redacted)) {
					t.Errorf("%s does not say [redacted]: %s", how, out)
				}
			}
		})
	}
}

// TestSecretEmptyAndReveal: an empty secret encodes as empty (a dumped
// configuration shows which secrets are set), JSON decoding still fills a
// secret, and Reveal is the way out.
func TestSecretEmptyAndReveal(t *testing.T) {
	tests := []struct {
		name string
		s    secret.Secret
		json string
		text string
	}{
		{"empty", "", `""`, ""},
		{"set", plain, `"[redacted]"`, "[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.s)
			text, _ := tt.s.MarshalText()
			if string(b) != tt.json || string(text) != tt.text {
				t.Fatalf("json %s, text %q; want %s, %q", b, text, tt.json, tt.text)
			}
			var in struct{ S secret.Secret }
			if err := json.Unmarshal([]byte(`{"S":"`+tt.s.Reveal()+`"}`), &in); err != nil || in.S.Reveal() != tt.s.Reveal() {
				t.Fatalf("decoded %q, %v; want %q", in.S.Reveal(), err, tt.s.Reveal())
			}
		})
	}
}
