package disconnect

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/orgbridge/orgbridge/internal/csvx"
)

// Audit export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// auditColumns are the CSV columns, in order.
var auditColumns = []string{"time", "enterprise_id", "request_id", "target_team", "event", "state", "requested_by",
	"reason", "error", "message", "slack_method", "slack_status", "slack_response", "worker"}

// WriteAudit writes entries as JSON lines or CSV (with a header row).
func WriteAudit(w io.Writer, format string, entries []AuditEntry) error {
	switch format {
	case FormatJSONL, "":
		enc := json.NewEncoder(w)
		for _, a := range entries {
			if err := enc.Encode(a); err != nil {
				return err
			}
		}
		return nil
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(auditColumns); err != nil {
			return err
		}
		for _, a := range entries {
			status := ""
			if a.SlackStatus != 0 {
				status = strconv.Itoa(a.SlackStatus)
			}
			row := []string{a.Time.UTC().Format(time.RFC3339Nano), a.EnterpriseID, a.RequestID, a.TargetTeam, a.Event, a.State,
				a.RequestedBy, a.Reason, a.Error, a.Message, a.SlackMethod, status, string(a.SlackResponse), a.Worker}
			for i := range row {
				row[i] = csvx.Safe(row[i])
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("audit format %q: choose jsonl or csv", format)
}

// ParseSince reads a --since / ?since= value: an RFC 3339 time, or a
// duration back from now ("24h", "7d").
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, ok := cutDays(s); ok {
		return now.AddDate(0, 0, -n), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since %q: give an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (90m, 24h, 7d)", s)
}

func cutDays(s string) (int, bool) {
	if len(s) < 2 || s[len(s)-1] != 'd' {
		return 0, false
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	return n, err == nil && n >= 0
}
