package provisioning

import (
	"encoding/csv"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/internal/csvx"
)

// RowFilter selects report rows; empty fields match everything.
type RowFilter struct {
	// Outcomes, Actions and Fields (a changed attribute: "email", "title",
	// "active", "team", …) match any of their values.
	Outcomes []string
	Actions  []string
	Fields   []string
	// Query matches the Slack id, name or email (case-insensitive).
	Query string
}

func (f RowFilter) match(r Row) bool {
	if len(f.Outcomes) > 0 && !slices.Contains(f.Outcomes, r.Outcome) {
		return false
	}
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, r.Action) {
		return false
	}
	if len(f.Fields) > 0 && !slices.ContainsFunc(r.Changes, func(c Change) bool { return slices.Contains(f.Fields, c.Field) }) {
		return false
	}
	if q := strings.ToLower(strings.TrimSpace(f.Query)); q != "" {
		if !strings.Contains(strings.ToLower(r.SlackID+" "+r.Name+" "+r.Email), q) {
			return false
		}
	}
	return true
}

func (f RowFilter) empty() bool {
	return len(f.Outcomes) == 0 && len(f.Actions) == 0 && len(f.Fields) == 0 && strings.TrimSpace(f.Query) == ""
}

func (f RowFilter) apply(rows []Row) []Row {
	out := rows[:0:0]
	for _, r := range rows {
		if f.match(r) {
			out = append(out, r)
		}
	}
	return out
}

// Valid report vocabularies, for checking filters.
var (
	Actions  = []string{ActCreate, ActUpdate, ActDeactivate, ActReactivate, ActAddTeam, ActRemoveTeam, ActHeld, ActSkip}
	Outcomes = []string{OutSucceeded, OutFailed, OutSkipped, OutPlanned}
)

// WriteCSV writes rows as a CSV report with a header line. Cells that a
// spreadsheet would run as a formula are made inert.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"time", "action", "outcome", "slack_id", "name", "email", "directory_id", "team", "changes", "details"}); err != nil {
		return err
	}
	for _, r := range rows {
		changes := make([]string, 0, len(r.Changes))
		for _, c := range r.Changes {
			changes = append(changes, c.Field+": "+c.Old+" → "+c.New)
		}
		rec := []string{r.At.UTC().Format(time.RFC3339), r.Action, r.Outcome, r.SlackID, r.Name, r.Email, r.DirectoryID, r.Team,
			strings.Join(changes, "; "), r.Details}
		for i := range rec {
			rec[i] = csvx.Safe(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
