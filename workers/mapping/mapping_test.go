package mapping

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

const (
	org1  = "00D000000000001"
	org2  = "00D000000000002"
	alice = "005000000000001"
	bob   = "005000000000002"
)

type fixedBindings map[string]string

func (f fixedBindings) BoundOrg(_ context.Context, w string) (string, error) { return f[w], nil }

func newTestWorker(t testing.TB) (*Worker, *testenv.Redis, *testenv.NATS) {
	r := testenv.StartRedis(t)
	n := testenv.StartNATS(t)
	keys, _ := store.ParseKeyring(store.GenerateKeySpec("k"))
	w, err := New(Config{Store: NewStore(r.Client, keys), NC: n.Conn, Idempotency: store.NewIdempotency(r.Client),
		Bindings: fixedBindings{"T1": org1, "T2": org1}})
	if err != nil {
		t.Fatal(err)
	}
	return w, r, n
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStoreRules(t *testing.T) {
	w, _, _ := newTestWorker(t)
	s, ctx := w.Store(), ctxT(t)
	conn := func(ws, u, org, ou string) (*Mapping, error) {
		return s.Connect(ctx, &Mapping{Workspace: ws, SlackUserID: u, OrgID: org, OrgUserID: ou, Username: ou + "@x", Source: "oauth", RefreshToken: "5Aep-secret"})
	}
	first, err := conn("T1", "U1", org1, alice)
	if err != nil {
		t.Fatal(err)
	}
	var ae *AssociatedError
	var te *TakenError
	tests := []struct {
		name  string
		run   func() error
		check func(error) bool
	}{
		{"same user again keeps the mapping id", func() error {
			m, err := conn("T1", "U1", org1, alice)
			if err == nil && m.ID != first.ID {
				return fmt.Errorf("id changed %s → %s", first.ID, m.ID)
			}
			return err
		}, func(err error) bool { return err == nil }},
		{"another org user for the same Slack user", func() error { _, err := conn("T1", "U1", org1, bob); return err },
			func(err error) bool { return errors.As(err, &ae) && ae.OrgUserID == alice }},
		{"the org user for another Slack user", func() error { _, err := conn("T1", "U2", org1, alice); return err },
			func(err error) bool { return errors.As(err, &te) && te.SlackUserID == "U1" }},
		{"another workspace may use another org user", func() error { _, err := conn("T2", "U1", org1, bob); return err },
			func(err error) bool { return err == nil }},
		{"delete keeps the association", func() error {
			if _, err := s.Delete(ctx, "T1", "U1"); err != nil {
				return err
			}
			_, err := conn("T1", "U1", org1, bob)
			return err
		}, func(err error) bool { return errors.As(err, &ae) }},
		{"reconnect after delete is a new record", func() error {
			m, err := conn("T1", "U1", org1, alice)
			if err == nil && m.ID == first.ID {
				return errors.New("same id after delete")
			}
			return err
		}, func(err error) bool { return err == nil }},
		{"full revocation frees both sides", func() error {
			if ok, err := s.Revoke(ctx, "T1", "U1", ""); !ok || err != nil {
				return fmt.Errorf("revoke %v %v", ok, err)
			}
			if _, err := conn("T1", "U2", org1, alice); err != nil {
				return err
			}
			_, err := conn("T1", "U1", org1, bob)
			return err
		}, func(err error) bool { return err == nil }},
		{"org-side revocation in every workspace", func() error {
			freed, err := s.RevokeOrgUser(ctx, org1, bob)
			if err != nil || len(freed) != 2 {
				return fmt.Errorf("freed %v, %v", freed, err)
			}
			return nil
		}, func(err error) bool { return err == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !tt.check(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
	m, err := s.Get(ctx, "T1", "U2")
	if err != nil || m.RefreshToken.Reveal() != "5Aep-secret" {
		t.Fatalf("refresh token round trip: %v", err)
	}
}

func TestLookupService(t *testing.T) {
	w, _, n := newTestWorker(t)
	ctx := ctxT(t)
	if _, err := w.Store().Connect(ctx, &Mapping{Workspace: "T1", SlackUserID: "U1", OrgID: org1, OrgUserID: alice, Username: "alice", Source: "oauth"}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = w.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	ask := func(subj string, req events.MappingLookupRequest) events.MappingLookupReply {
		b, _ := json.Marshal(req)
		var rep events.MappingLookupReply
		testenv.Eventually(t, 5*time.Second, func() bool {
			msg, err := n.Conn.Request(subj, b, time.Second)
			return err == nil && json.Unmarshal(msg.Data, &rep) == nil
		}, "no lookup reply")
		return rep
	}
	tests := []struct {
		name  string
		subj  string
		req   events.MappingLookupRequest
		found bool
		want  string
	}{
		{"org user of a Slack user", events.MappingLookupOrgUserSubject, events.MappingLookupRequest{Workspace: "T1", SlackUserID: "U1"}, true, alice},
		{"Slack user of an org user (bound org)", events.MappingLookupSlackUserSubject, events.MappingLookupRequest{Workspace: "T1", OrgUserID: alice}, true, "U1"},
		{"unknown user", events.MappingLookupOrgUserSubject, events.MappingLookupRequest{Workspace: "T1", SlackUserID: "U9"}, false, ""},
		{"other org", events.MappingLookupOrgUserSubject, events.MappingLookupRequest{Workspace: "T1", SlackUserID: "U1", OrgID: org2}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := ask(tt.subj, tt.req)
			got := rep.OrgUserID
			if tt.subj == events.MappingLookupSlackUserSubject {
				got = rep.SlackUserID
			}
			if rep.Found != tt.found || (tt.found && got != tt.want) {
				t.Fatalf("reply = %+v", rep)
			}
		})
	}
	if rep := ask(events.MappingLookupOrgUserSubject, events.MappingLookupRequest{SlackUserID: "U1"}); rep.Error == "" {
		t.Fatal("a request without workspace must be refused")
	}
}

func TestAdminImportExportDelete(t *testing.T) {
	w, _, _ := newTestWorker(t)
	srv := httptest.NewServer(w.AdminHandler())
	t.Cleanup(srv.Close)
	csvBody := "workspace,slack_user_id,org_id,org_user_id,username\n" +
		"T1,U1," + org1 + "," + alice + ",alice\n" +
		"T1,U2," + org1 + ",notanid,x\n" +
		"T1,nope," + org1 + "," + bob + ",bob\n" +
		"T1,U1," + org1 + "," + bob + ",bob\n" +
		"T1,U3," + org2 + "," + bob + ",bob\n"
	resp, err := http.Post(srv.URL+"/admin/api/mappings/import", "text/csv", strings.NewReader(csvBody))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Results []RowResult }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	want := []string{ResultOK, ResultInvalidOrgUser, ResultInvalidSlackUser, ResultAlreadyMapped, ResultInvalidOrgUser}
	var got []string
	for _, r := range out.Results {
		got = append(got, r.Result)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("results = %v, want %v (%+v)", got, want, out.Results)
	}
	resp, _ = http.Get(srv.URL + "/admin/api/mappings/export")
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(buf.String(), "T1,U1,"+org1+","+alice+",alice") {
		t.Fatalf("export = %s", buf.String())
	}
	resp, _ = http.Get(srv.URL + "/admin/api/mappings?team=T1&org_user=" + alice)
	var list struct{ Mappings []Mapping }
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Mappings) != 1 {
		t.Fatalf("list = %+v", list)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/admin/api/mappings/"+list.Mappings[0].ID, nil)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete = %d", resp.StatusCode)
	}
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete = %d", resp.StatusCode)
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add("workspace,slack_user_id,org_id,org_user_id\nT1,U1,00D000000000001,005000000000001\n")
	f.Add("\ufeffWorkspace, org_user_id ,slack_user_id,org_id,username\n\"T,1\",U1,x,y,\"a\"\"b\"\n")
	f.Add("workspace\n")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := ParseCSV(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error not marked bad request: %v", err)
			}
			return
		}
		for _, r := range rows {
			if r.Workspace != strings.TrimSpace(r.Workspace) {
				t.Fatalf("untrimmed field %q", r.Workspace)
			}
		}
	})
}

// BenchmarkLookup measures the org-user lookup from Redis (the request/reply
// service adds one NATS round trip) and reports p50/p99.
func BenchmarkLookup(b *testing.B) {
	w, r, n := newTestWorker(b)
	ctx := context.Background()
	for i := range 1000 {
		_, _ = w.Store().Connect(ctx, &Mapping{Workspace: "T1", SlackUserID: fmt.Sprintf("U%d", i), OrgID: org1,
			OrgUserID: fmt.Sprintf("005%012d", i), Source: "import"})
	}
	runCtx, stop := context.WithCancel(ctx)
	go func() { _ = w.Run(runCtx) }()
	defer stop()
	// The ceiling on this machine: one Redis round trip, nothing decoded.
	b.Run("redis-get-ceiling", func(b *testing.B) {
		if err := r.Client.Set(ctx, "ceiling-probe", "x", 0).Err(); err != nil {
			b.Fatal(err)
		}
		benchLat(b, func(i int) error { return r.Client.Get(ctx, "ceiling-probe").Err() })
	})
	b.Run("store", func(b *testing.B) {
		benchLat(b, func(i int) error { _, err := w.Store().Get(ctx, "T1", fmt.Sprintf("U%d", i%1000)); return err })
	})
	b.Run("nats", func(b *testing.B) {
		testenv.Eventually(b, 5*time.Second, func() bool {
			_, err := n.Conn.Request(events.MappingLookupOrgUserSubject, []byte(`{"workspace":"T1","slack_user_id":"U1"}`), 100*time.Millisecond)
			return err == nil
		}, "lookup service not answering")
		benchLat(b, func(i int) error {
			body, _ := json.Marshal(events.MappingLookupRequest{Workspace: "T1", SlackUserID: fmt.Sprintf("U%d", i%1000)})
			_, err := n.Conn.Request(events.MappingLookupOrgUserSubject, body, time.Second)
			return err
		})
	})
}

func benchLat(b *testing.B, fn func(int) error) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := fn(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
