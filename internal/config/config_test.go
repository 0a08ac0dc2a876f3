package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.NATSURL != DefaultNATSURL || c.HTTPAddr != DefaultHTTPAddr || c.PublishTimeout != DefaultPublishTimeout ||
		c.Streams.MaxAge != 7*24*time.Hour || c.PublicURL != "http://"+DefaultHTTPAddr || c.TimeScale != 1 {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"ORGBRIDGE_STREAM_MAX_AGE", "forever", "is not a duration"},
		{"ORGBRIDGE_STREAM_REPLICAS", "three", "not a whole number"},
		{"ORGBRIDGE_STREAM_REPLICAS", "9", "outside 1..5"},
		{"ORGBRIDGE_LOG_FORMAT", "xml", "neither json nor text"},
		{"REDIS_URL", "http://x", "scheme must be one of redis"},
		{"ORGBRIDGE_HTTP_ADDR", "8080", "not host:port"},
		{"ORGBRIDGE_PUBLIC_URL", "ftp://x", "scheme must be one of http"},
		{"ORGBRIDGE_TIME_SCALE", "0.5", "not a number ≥ 1"},
		{"ORGBRIDGE_ADMIN_TOKEN", "a", "is 1 characters; use at least 24"},
		{"ORGBRIDGE_ADMIN_TOKEN", strings.Repeat("x", MinAdminTokenLength-1), "use at least 24"},
		{"ORGBRIDGE_ADMIN_ADDR", "9091", "not host:port"},
		{"ORGBRIDGE_ADMIN_ADDR", DefaultHTTPAddr, "is ORGBRIDGE_HTTP_ADDR too"},
		{"ORGBRIDGE_SHUTDOWN_DRAIN", "25s", "below ORGBRIDGE_SHUTDOWN_TIMEOUT (25s)"},
		{"ORGBRIDGE_SHUTDOWN_DRAIN", "-1s", "at least 0"},
		{"ORGBRIDGE_WORKER_ID", "worker 2", "without spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Load(func(k string) string {
				if k == tt.name {
					return tt.value
				}
				return ""
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) || (!strings.HasPrefix(err.Error(), tt.name) && !strings.HasPrefix(err.Error(), "ORGBRIDGE_STREAM_*")) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, tt.name, tt.want)
			}
		})
	}
}

func TestShutdownSettings(t *testing.T) {
	tests := []struct {
		name               string
		env                map[string]string
		wantTimeout, drain time.Duration
	}{
		{"defaults", nil, DefaultShutdownTimeout, DefaultShutdownDrain},
		{"a short timeout takes a fifth as drain", map[string]string{"ORGBRIDGE_SHUTDOWN_TIMEOUT": "10s"}, 10 * time.Second, 2 * time.Second},
		{"drain set", map[string]string{"ORGBRIDGE_SHUTDOWN_TIMEOUT": "10s", "ORGBRIDGE_SHUTDOWN_DRAIN": "8s"}, 10 * time.Second, 8 * time.Second},
		{"drain off", map[string]string{"ORGBRIDGE_SHUTDOWN_DRAIN": "0s"}, DefaultShutdownTimeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tt.env[k] })
			if err != nil || c.ShutdownTimeout != tt.wantTimeout || c.ShutdownDrain != tt.drain {
				t.Fatalf("Load = timeout %s drain %s (%v), want %s and %s", c.ShutdownTimeout, c.ShutdownDrain, err, tt.wantTimeout, tt.drain)
			}
		})
	}
}

func TestAdminTokenLongEnough(t *testing.T) {
	token := strings.Repeat("k", MinAdminTokenLength)
	c, err := Load(func(k string) string {
		if k == "ORGBRIDGE_ADMIN_TOKEN" {
			return token
		}
		return ""
	})
	if err != nil || c.AdminToken.Reveal() != token {
		t.Fatalf("a %d-character token: %v", MinAdminTokenLength, err)
	}
}

func TestParseDurationDays(t *testing.T) {
	if d, err := ParseDuration("7d"); err != nil || d != 7*24*time.Hour {
		t.Fatalf("7d = %v, %v", d, err)
	}
	if d, err := ParseDuration("90s"); err != nil || d != 90*time.Second {
		t.Fatalf("90s = %v, %v", d, err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("xoxb-very-secret")
	if s.String() != "[redacted]" || s.LogValue().String() != "[redacted]" || s.Reveal() != "xoxb-very-secret" {
		t.Fatalf("secret leaks: %v %v", s, s.LogValue())
	}
}

var updateReadme = flag.Bool("update-readme", false, "rewrite README.md's configuration table from Vars")

// TestReadmeListsEveryVariable keeps README's configuration table in step with
// Vars; `go test ./internal/config -update-readme` rewrites it.
func TestReadmeListsEveryVariable(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if *updateReadme {
		readme = []byte(withConfigTable(t, string(readme)))
		if err := os.WriteFile(path, readme, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range Vars() {
		row := "| `" + v.Name + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md's configuration table has no row for %s", v.Name)
		}
		if v.Default != "" && !strings.Contains(string(readme), row+" `"+v.Default+"` |") {
			t.Errorf("README.md's row for %s does not show its default %q", v.Name, v.Default)
		}
	}
}

func withConfigTable(t *testing.T, readme string) string {
	const begin, end = "<!-- config:begin -->\n", "<!-- config:end -->"
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q block", begin, end)
	}
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n| --- | --- | --- |\n")
	for _, v := range Vars() {
		def := ""
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Help)
	}
	return readme[:i+len(begin)] + b.String() + readme[j:]
}
