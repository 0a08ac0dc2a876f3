package disconnect_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

func TestPolicyRun(t *testing.T) {
	e := newEnv(t, slackemu.Config{ExternalTeams: 10})
	now := time.Now()
	clock := func() time.Time { return now }
	w := e.worker(disconnect.Config{Now: func() time.Time { return clock() }, PolicyTick: 20 * time.Millisecond})
	e.run(w, 5*time.Second)
	ctx := context.Background()

	teams := e.emu.World().Enterprises[0].ExternalTeams
	allow := []string{teams[0].ID, teams[1].ID}
	var want []string
	for _, x := range teams[2:] {
		if x.ConnectionStatus != "DISCONNECTED" {
			want = append(want, x.ID)
		}
	}
	slices.Sort(want)
	if len(want) == 0 {
		t.Fatal("the seeded world has no violators; pick another seed")
	}
	tests := []struct {
		name      string
		policyDry bool
		runDry    bool
	}{
		{"policy dry run", true, false},
		{"dry run asked at run time", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := disconnect.Policy{Name: "allow", EnterpriseID: e.ent.ID, Allowlist: allow, DryRun: tt.policyDry, UpdatedAt: now}
			if err := w.Store().SavePolicy(ctx, p); err != nil {
				t.Fatal(err)
			}
			rep, err := w.RunPolicy(ctx, e.ent.ID, "allow", tt.runDry, "")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range rep.Violations {
				got = append(got, v.TeamID)
				if v.RequestID != "" {
					t.Fatalf("dry run published a request: %+v", v)
				}
			}
			slices.Sort(got)
			if !rep.DryRun || !slices.Equal(got, want) || rep.Checked != len(teams) {
				t.Fatalf("report = %+v, want violators %v", rep, want)
			}
			if n := len(e.disconnectCalls("")); n != 0 {
				t.Fatalf("dry run disconnected %d teams", n)
			}
		})
	}

	t.Run("scheduled run disconnects the violators", func(t *testing.T) {
		p := disconnect.Policy{Name: "allow", EnterpriseID: e.ent.ID, Allowlist: allow, Schedule: "0 3 * * *", UpdatedAt: now}
		if err := w.Store().SavePolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
		later := now.Add(48 * time.Hour)
		clock = func() time.Time { return later } // the Run loop now finds the policy due
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		testenv.Eventually(t, 30*time.Second, func() bool {
			recs, _ := w.Store().List(ctx, disconnect.ListFilter{EnterpriseID: e.ent.ID, State: events.DisconnectCompleted})
			return len(recs) == len(want)
		}, "the scheduled policy did not disconnect %v", want)
		recs, _ := w.Store().List(ctx, disconnect.ListFilter{EnterpriseID: e.ent.ID})
		for _, r := range recs {
			if r.RequestedBy != "policy:allow" || slices.Contains(allow, r.TargetTeam) {
				t.Fatalf("unexpected request %+v", r)
			}
		}
		for _, id := range want {
			if s := e.status(id); s != "DISCONNECTED" {
				t.Fatalf("%s is %s", id, s)
			}
		}
		for _, id := range allow {
			if len(e.disconnectCalls(id)) != 0 {
				t.Fatalf("allowlisted %s was disconnected", id)
			}
		}
	})
}

func TestPolicyEvaluateInactivity(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	p := disconnect.Policy{Name: "idle", EnterpriseID: "E01", InactiveDays: 30}
	teams := []struct {
		id, status string
		last       time.Time
		violates   bool
	}{
		{"T1", "CONNECTED", now.AddDate(0, 0, -31), true},
		{"T2", "CONNECTED", now.AddDate(0, 0, -29), false},
		{"T3", "DISCONNECTED", now.AddDate(0, -6, 0), false},
		{"T4", "IN_REVIEW", now.AddDate(-1, 0, 0), true},
	}
	var list []slackapi.ExternalTeam
	for _, x := range teams {
		list = append(list, slackapi.ExternalTeam{TeamID: x.id, ConnectionStatus: x.status, LastActiveTimestamp: x.last.Unix()})
	}
	got := map[string]bool{}
	for _, v := range p.Evaluate(list, now) {
		got[v.TeamID] = true
	}
	for _, x := range teams {
		if got[x.id] != x.violates {
			t.Errorf("%s violates = %v, want %v", x.id, got[x.id], x.violates)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    disconnect.Policy
		ok   bool
	}{
		{"allowlist", disconnect.Policy{Name: "a", EnterpriseID: "E01", Allowlist: []string{"T01"}}, true},
		{"inactivity with schedule", disconnect.Policy{Name: "b", EnterpriseID: "E01", InactiveDays: 90, Schedule: "0 3 * * MON"}, true},
		{"no rule", disconnect.Policy{Name: "c", EnterpriseID: "E01"}, false},
		{"bad schedule", disconnect.Policy{Name: "d", EnterpriseID: "E01", InactiveDays: 1, Schedule: "61 * * * *"}, false},
		{"bad allowlist id", disconnect.Policy{Name: "e", EnterpriseID: "E01", Allowlist: []string{"U01"}}, false},
		{"bad name", disconnect.Policy{Name: "Has Space", EnterpriseID: "E01", InactiveDays: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
