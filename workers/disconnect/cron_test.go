package disconnect_test

import (
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/workers/disconnect"
)

func TestScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		expr, from, want string
	}{
		{"* * * * *", "2026-03-01 10:00", "2026-03-01 10:01"},
		{"*/15 * * * *", "2026-03-01 10:07", "2026-03-01 10:15"},
		{"0 3 * * *", "2026-03-01 03:00", "2026-03-02 03:00"},
		{"30 2 1 * *", "2026-03-01 10:00", "2026-04-01 02:30"},
		{"0 9 * * MON-FRI", "2026-03-06 10:00", "2026-03-09 09:00"}, // Friday → Monday
		{"0 0 * * 7", "2026-03-01 10:00", "2026-03-08 00:00"},       // 7 is Sunday
		{"0 0 13 * FRI", "2026-03-01 00:00", "2026-03-06 00:00"},    // either day field matches
		{"0 12 29 FEB *", "2026-03-01 00:00", "2028-02-29 12:00"},
		{"5,10-12 1 * jan,dec *", "2026-03-01 00:00", "2026-12-01 01:05"},
		{"0 0 31 2 *", "2026-03-01 00:00", "0001-01-01 00:00"}, // never
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := disconnect.ParseSchedule(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(at(tt.from)); !got.Equal(at(tt.want)) {
				t.Fatalf("Next(%s) = %s, want %s", tt.from, got, tt.want)
			}
		})
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, expr := range []string{"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
		"* * * * 8", "5-1 * * * *", "*/0 * * * *", "a * * * *", "1,,2 * * * *", "* * * FOO *"} {
		t.Run(expr, func(t *testing.T) {
			if _, err := disconnect.ParseSchedule(expr); err == nil {
				t.Fatalf("ParseSchedule(%q) accepted it", expr)
			}
		})
	}
}
