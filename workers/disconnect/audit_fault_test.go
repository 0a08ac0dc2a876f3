package disconnect_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// TestAuditWriteFailures: while the audit trail cannot be written (here
// the trail's key holds a string, so XADD answers WRONGTYPE), no step
// completes silently: each failure is counted, nothing moves on, and once
// the fault is gone the request finishes with every entry in its trail —
// the Slack call's own entry included — and Slack called once.
func TestAuditWriteFailures(t *testing.T) {
	tests := []struct {
		name string
		// breakAfterCall breaks the trail right after the Slack call
		// (otherwise before the request arrives).
		breakAfterCall bool
		// wantNotYet is a result state that must not be published while the trail is broken.
		wantNotYet events.DisconnectState
	}{
		{name: "trail unwritable when the request arrives", wantNotYet: events.DisconnectAccepted},
		{name: "trail unwritable right after the Slack call", breakAfterCall: true, wantNotYet: events.DisconnectSubmitted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, slackemu.Config{})
			ctx := context.Background()
			reg := prometheus.NewRegistry()
			w, err := disconnect.New(disconnect.Deps{JS: e.nats.JS, Redis: e.redis.Client, Slack: e.slack, Installations: e.installs,
				Registerer: reg}, e.config(disconnect.Config{AckWait: 20 * time.Second}))
			if err != nil {
				t.Fatal(err)
			}
			trail := disconnect.AuditKey(e.ent.ID)
			aside := trail + ":aside"
			broken := make(chan struct{})
			breakTrail := func(ctx context.Context) {
				// Keep the entries written so far aside, and put a string where the stream was.
				if _, err := e.redis.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Rename(ctx, trail, aside)
					p.Set(ctx, trail, "not a stream", 0)
					return nil
				}); err != nil {
					t.Error(err)
				}
				close(broken)
			}
			if tt.breakAfterCall {
				disconnect.SetAfterCallHook(w, func(ctx context.Context, _ string) error { breakTrail(ctx); return nil })
			} else {
				if err := e.redis.Client.Set(ctx, trail, "not a stream", 0).Err(); err != nil {
					t.Fatal(err)
				}
				close(broken)
			}
			e.run(w, 5*time.Second)
			id := "audit-fault-" + string(rune('a'+i))
			target := e.connected()[0]
			e.request(id, target)

			<-broken
			testenv.Eventually(t, 10*time.Second, func() bool { return auditFailures(t, reg) >= 2 }, "no audit failure counted")
			if slices.Contains(e.results.states(id), tt.wantNotYet) {
				t.Fatalf("result %s published while its audit entry could not be written: %v", tt.wantNotYet, e.results.states(id))
			}

			// The fault goes; the entries kept aside come back in one step.
			if _, err := e.redis.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, trail)
				if tt.breakAfterCall {
					p.Rename(ctx, aside, trail)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			res := e.final(t, id, 20*time.Second)
			if res.State != events.DisconnectCompleted {
				t.Fatalf("final = %+v", res)
			}
			if n := len(e.disconnectCalls(target)); n != 1 {
				t.Fatalf("disconnect called %d times, want 1", n)
			}
			entries, err := w.Store().Audit(ctx, disconnect.AuditFilter{RequestID: id})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range entries {
				got = append(got, a.Event)
			}
			for _, want := range []string{"received", "accepted", "slack_call", "submitted", "confirm_check", "completed"} {
				if n := count(got, want); n != 1 {
					t.Errorf("trail has %d %q entries, want 1: %v", n, want, got)
				}
			}
		})
	}
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func auditFailures(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "orgbridge_disconnect_audit_failures_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
