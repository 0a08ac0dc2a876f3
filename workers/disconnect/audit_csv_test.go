package disconnect_test

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// TestAuditCSVNoFormulas: cells that a spreadsheet would run as a formula
// get a leading ' in the CSV export; other cells are as written.
func TestAuditCSVNoFormulas(t *testing.T) {
	a := disconnect.AuditEntry{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), EnterpriseID: "E0CSV", RequestID: "r-1",
		TargetTeam: "\tT0X", Event: "rejected", State: "rejected", RequestedBy: "+1 555", Reason: `=HYPERLINK("http://evil","x")`,
		Error: "\rcode", Message: "-2+3", SlackMethod: "team.externalTeams.list", Worker: "@SUM(A1)"}
	var buf bytes.Buffer
	if err := disconnect.WriteAudit(&buf, disconnect.FormatCSV, []disconnect.AuditEntry{a}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows = %v, %v", rows, err)
	}
	col := map[string]string{}
	for i, name := range rows[0] {
		col[name] = rows[1][i]
	}
	want := map[string]string{
		"time": "2026-01-02T03:04:05Z", "enterprise_id": "E0CSV", "request_id": "r-1", "target_team": "'\tT0X",
		"requested_by": "'+1 555", "reason": `'=HYPERLINK("http://evil","x")`, "error": "'\rcode", "message": "'-2+3",
		"slack_method": "team.externalTeams.list", "worker": "'@SUM(A1)",
	}
	for k, v := range want {
		if col[k] != v {
			t.Errorf("%s = %q, want %q", k, col[k], v)
		}
	}
}
