package disconnect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// TestAuditRetention writes two years of audit history, then one entry as
// the worker would (or trims as Run does hourly): entries older than the
// retention must go from Redis and from every read, newer ones must stay.
func TestAuditRetention(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name      string
		retention time.Duration // 0: the default
		keep      time.Duration // what the test expects to be kept
		// sweep trims with the hourly TrimAudit instead of writing an entry.
		sweep bool
	}{
		{name: "default 400 days, trimmed on write", keep: 400 * day},
		{name: "30 days, trimmed on write", retention: 30 * day, keep: 30 * day},
		{name: "default, a quiet trail trimmed by the hourly sweep", keep: 400 * day, sweep: true},
	}
	rdb := testenv.StartRedis(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := fmt.Sprintf("E0RETAIN%d", i)
			st := disconnect.NewStore(rdb.Client, 0, tt.retention)
			now := time.Now()
			cut := now.Add(-tt.keep)
			// 600 entries, one every 1.2 days back from now: 2 years of history.
			var older, newer int
			for k := 599; k >= 0; k-- {
				at := now.Add(-time.Duration(k)*(day+day/5) - time.Minute)
				a := disconnect.AuditEntry{Time: at.UTC(), EnterpriseID: e, RequestID: fmt.Sprintf("dr-%03d", k), TargetTeam: "T0EXT",
					Event: "completed", State: "completed", RequestedBy: "auditor", Reason: "history", Message: "team.externalTeams.list no longer lists T0EXT"}
				b, _ := json.Marshal(a)
				if err := rdb.Client.XAdd(ctx, &redis.XAddArgs{Stream: disconnect.AuditKey(e), ID: strconv.FormatInt(at.UnixMilli(), 10) + "-0",
					Values: []any{"e", b}}).Err(); err != nil {
					t.Fatal(err)
				}
				if at.Before(cut) {
					older++
				} else {
					newer++
				}
			}
			if tt.sweep {
				// The enterprise is known from its requests; its trail gets no writes.
				if err := st.Save(ctx, disconnect.Record{RequestID: "dr-quiet", EnterpriseID: e, TargetTeam: "T0EXT",
					State: events.DisconnectCompleted, CreatedAt: now}); err != nil {
					t.Fatal(err)
				}
				if n, err := st.TrimAudit(ctx); err != nil || n == 0 {
					t.Fatalf("TrimAudit = %d, %v; want entries removed", n, err)
				}
			} else {
				if err := st.Append(ctx, disconnect.AuditEntry{Time: now.UTC(), EnterpriseID: e, Event: "policy_run", Message: "now"}); err != nil {
					t.Fatal(err)
				}
				newer++
			}

			// In Redis: approximate trimming frees whole stream nodes, so at
			// most one node's worth (≤ 100 entries) of old ones may linger.
			left, err := rdb.Client.XRange(ctx, disconnect.AuditKey(e), "-", strconv.FormatInt(cut.UnixMilli()-1, 10)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 100 {
				t.Errorf("%d of %d entries older than %s still in Redis", len(left), older, tt.keep)
			}
			// In reads: none of them, all of the newer ones.
			for _, f := range []disconnect.AuditFilter{{EnterpriseID: e}, {}, {EnterpriseID: e, Since: now.Add(-3 * 365 * day)}} {
				got, err := st.Audit(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, a := range got {
					if a.EnterpriseID != e {
						continue
					}
					n++
					if a.Time.Before(cut) {
						t.Fatalf("Audit(%+v) returned an entry of %s, older than the retention %s", f, a.Time.Format(time.DateOnly), tt.keep)
					}
				}
				if n != newer {
					t.Fatalf("Audit(%+v) returned %d entries, want the %d newer than the retention", f, n, newer)
				}
			}
		})
	}

	t.Run("a retention under a day is refused", func(t *testing.T) {
		if err := (disconnect.Config{AuditRetention: time.Hour}).Validate(); err == nil {
			t.Fatal("Validate accepted an audit retention of 1h")
		}
	})
}
