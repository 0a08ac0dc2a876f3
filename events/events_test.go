package events

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestToken(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain id", "T0123ABC", "T0123ABC"},
		{"empty", "", NoTenant},
		{"dots and wildcards", "a.b*c>d", "a_b_c_d"},
		{"white space", "a b\tc", "a_b_c"},
		{"non-ascii", "é", "__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Token(tt.in); got != tt.want {
				t.Fatalf("Token(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSubjectsMatchTheirStreams(t *testing.T) {
	subjects := map[string]string{
		SlackEventSubject("T1", "message"):         StreamSlack,
		SlackEventSubject("", "user_change"):       StreamSlack,
		SlackCommandSubject("T1"):                  StreamSlack,
		SlackInteractionSubject("E1"):              StreamSlack,
		SlackInstallSubject("T1"):                  StreamSlack,
		SlackUninstallSubject("T1"):                StreamSlack,
		OrgConnectSubject("T1"):                    StreamOrg,
		OrgUserDeactivatedSubject("00D1"):          StreamOrg,
		DisconnectRequestSubject("E1"):             StreamDisconnect,
		DisconnectResultSubject("E1"):              StreamDisconnect,
		ProvisioningSyncSubject("T1"):              StreamProvisioning,
		AppCommandSubject("/orgbridge"):            StreamApp,
		AppInteractionSubject("A1"):                StreamApp,
		DLQSubject(StreamSlack, "binding"):         StreamDLQ,
		MaxDeliveriesAdvisoryPrefix + "SLACK.bind": StreamDLQ,
	}
	for subject, want := range subjects {
		var got []string
		for _, spec := range StreamSpecs() {
			for _, filter := range spec.Subjects {
				if subjectMatches(filter, subject) {
					got = append(got, spec.Name)
				}
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s is captured by %v, want exactly %s", subject, got, want)
		}
	}
}

// subjectMatches reports whether NATS would deliver subject to filter.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func TestStreamOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    StreamOptions
		wantErr string
	}{
		{"defaults", StreamOptions{}, ""},
		{"cluster", StreamOptions{Replicas: 3, MaxAge: 30 * 24 * time.Hour}, ""},
		{"window too short for Slack retries", StreamOptions{DuplicateWindow: 5 * time.Minute}, "retry schedule"},
		{"window longer than retention", StreamOptions{MaxAge: 10 * time.Minute}, "longer than the stream max age"},
		{"replicas", StreamOptions{Replicas: 7}, "replicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
	cfg := StreamConfig(StreamSpecs()[0], StreamOptions{})
	if cfg.MaxAge != DefaultMaxAge || cfg.Duplicates != DefaultDuplicateWindow || cfg.Replicas != 1 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestMessageIdentity(t *testing.T) {
	tests := []struct {
		name   string
		header nats.Header
		want   string
	}{
		{"msg id", nats.Header{HeaderMsgID: {"Ev1"}}, "Ev1"},
		{"copy keeps its origin", nats.Header{HeaderMsgID: {"replay:Ev1:all"}, HeaderOriginID: {"Ev1"}}, "Ev1"},
		{"neither", nats.Header{}, "SLACK:42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MessageIdentity(tt.header, "SLACK", 42); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeRefusesNewerSchema(t *testing.T) {
	var v struct{ A int }
	if err := Decode(nats.Header{HeaderSchema: {"99"}}, []byte(`{"A":1}`), &v); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("newer schema accepted: %v", err)
	}
	if err := Decode(nats.Header{HeaderSchema: {"1"}}, []byte(`{"A":1}`), &v); err != nil || v.A != 1 {
		t.Fatalf("current schema: %v %+v", err, v)
	}
}
