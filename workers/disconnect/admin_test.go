package disconnect_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, slackemu.Config{})
	w := e.worker(disconnect.Config{})
	e.run(w, 5*time.Second)
	srv := httptest.NewServer(w.AdminHandler())
	t.Cleanup(srv.Close)
	target := e.connected()[0]

	post := func(body string) (*http.Response, map[string]any) {
		resp, err := http.Post(srv.URL+"/admin/api/disconnects", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"valid", `{"request_id":"adm-1","enterprise_id":"` + e.ent.ID + `","target_team":"` + target + `","reason":"offboarding","requested_by":"hr"}`, 202, ""},
		{"not json", `{`, 400, events.DisconnectErrInvalidRequest},
		{"target not a team", `{"enterprise_id":"` + e.ent.ID + `","target_team":"C123","reason":"r","requested_by":"hr"}`, 400, events.DisconnectErrInvalidTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := post(tt.body)
			if resp.StatusCode != tt.status || (tt.code != "" && out["error"] != tt.code) {
				t.Fatalf("POST = %d %v, want %d %s", resp.StatusCode, out, tt.status, tt.code)
			}
		})
	}
	e.final(t, "adm-1", 10*time.Second)

	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	status, body := get("/admin/api/disconnects/adm-1")
	var one struct {
		Request disconnect.Record       `json:"request"`
		Audit   []disconnect.AuditEntry `json:"audit"`
	}
	if err := json.Unmarshal(body, &one); status != 200 || err != nil || one.Request.State != events.DisconnectCompleted || len(one.Audit) < 5 {
		t.Fatalf("GET one = %d %s", status, body)
	}
	if status, _ := get("/admin/api/disconnects/nope"); status != 404 {
		t.Fatalf("GET unknown = %d", status)
	}
	status, body = get("/admin/api/disconnects?enterprise=" + e.ent.ID)
	if status != 200 || !strings.Contains(string(body), `"adm-1"`) {
		t.Fatalf("list = %d %s", status, body)
	}
	status, body = get("/admin/api/disconnects/audit?since=1h&format=jsonl")
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	var first disconnect.AuditEntry
	if status != 200 || len(lines) < 5 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.RequestedBy != "hr" {
		t.Fatalf("audit jsonl = %d %s", status, body)
	}
	status, body = get("/admin/api/disconnects/audit?since=1h&format=csv")
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if status != 200 || err != nil || len(rows) != len(lines)+1 || rows[0][0] != "time" {
		t.Fatalf("audit csv = %d %v %s", status, err, body)
	}
	if status, _ := get("/admin/api/disconnects/audit?since=yesterday"); status != 400 {
		t.Fatalf("bad since = %d", status)
	}
	status, body = get("/admin/api/disconnects/audit?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if status != 200 || len(bytes.TrimSpace(body)) != 0 {
		t.Fatalf("audit from the future = %d %s", status, body)
	}
}

func TestTokenNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	in := disconnect.Install{EnterpriseID: "E01", Token: "xoxb-secret-value"}
	log.Info("install", "install", in, "token", in.Token)
	if s := buf.String(); strings.Contains(s, "xoxb-secret-value") {
		t.Fatalf("token leaked: %s", s)
	}
	if s := strings.Join([]string{in.Token.String(), (&struct{ disconnect.Token }{in.Token}).Token.GoString()}, " "); strings.Contains(s, "secret") {
		t.Fatalf("token leaked through fmt: %s", s)
	}
	e := newEnv(t, slackemu.Config{})
	got, err := e.installs.EnterpriseInstall(context.Background(), e.ent.ID)
	if err != nil || got.Token.Reveal() != e.token {
		t.Fatalf("EnterpriseInstall = %+v, %v", got, err)
	}
}
