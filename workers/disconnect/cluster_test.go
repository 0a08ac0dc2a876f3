package disconnect_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// TestStoreOnRedisCluster writes and reads requests, policies and audit
// trails of several enterprises on a six-node Redis Cluster: a script or
// transaction that touches an enterprise's keys and a global index together
// would be refused there (CROSSSLOT).
func TestStoreOnRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	st := disconnect.NewStore(c.Client, time.Hour, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ents := []string{"E0CLUSTER1", "E0CLUSTER2", "E0CLUSTER3"}
	now := time.Now().UTC()
	for i, e := range ents {
		rec := disconnect.Record{RequestID: fmt.Sprintf("dr-%d", i), EnterpriseID: e, TargetTeam: "T0EXT", State: events.DisconnectAccepted,
			RequestedBy: "ops", CreatedAt: now, UpdatedAt: now}
		audit := disconnect.AuditEntry{Time: now, EnterpriseID: e, RequestID: rec.RequestID, TargetTeam: "T0EXT", Event: "accepted", State: "accepted"}
		if err := st.Save(ctx, rec, audit); err != nil {
			t.Fatalf("Save %s: %v", e, err)
		}
		if err := st.SavePolicy(ctx, disconnect.Policy{Name: "allow", EnterpriseID: e, Allowlist: []string{"T0OK"}, UpdatedAt: now}); err != nil {
			t.Fatalf("SavePolicy %s: %v", e, err)
		}
	}
	tests := []struct {
		name string
		got  func() (int, error)
		want int
	}{
		{name: "requests found by id", want: 3, got: func() (int, error) {
			n := 0
			for i := range ents {
				if _, err := st.Find(ctx, fmt.Sprintf("dr-%d", i)); err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}},
		{name: "requests of every enterprise", want: 3, got: func() (int, error) {
			l, err := st.List(ctx, disconnect.ListFilter{})
			return len(l), err
		}},
		{name: "policies of every enterprise", want: 3, got: func() (int, error) {
			p, err := st.Policies(ctx, "")
			return len(p), err
		}},
		{name: "audit trails of every enterprise", want: 3, got: func() (int, error) {
			a, err := st.Audit(ctx, disconnect.AuditFilter{})
			return len(a), err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := tt.got(); err != nil || n != tt.want {
				t.Fatalf("got %d, %v; want %d", n, err, tt.want)
			}
		})
	}
}
