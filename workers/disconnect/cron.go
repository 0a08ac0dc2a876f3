package disconnect

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed 5-field cron expression: minute hour day-of-month
// month day-of-week. Each field takes *, a number, a range a-b, a step */n or
// a-b/n, and comma-separated lists of those; months and weekdays also take
// three-letter names (JAN, MON), and 7 is Sunday like 0. As in Vixie cron,
// when both day fields are restricted a day matches if either does.
type Schedule struct {
	expr                     string
	min, hour, dom, mon      uint64 // bit i set: value i allowed
	dow                      uint64
	domRestrict, dowRestrict bool
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames   = map[string]int{"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
)

// ParseSchedule parses a cron expression, or says what is wrong with it.
func ParseSchedule(expr string) (*Schedule, error) {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, fmt.Errorf("cron %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", expr, len(fields))
	}
	s := &Schedule{expr: strings.Join(fields, " ")}
	var err error
	if s.min, err = parseField(fields[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("cron %q: minute: %w", expr, err)
	}
	if s.hour, err = parseField(fields[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("cron %q: hour: %w", expr, err)
	}
	if s.dom, err = parseField(fields[2], 1, 31, nil); err != nil {
		return nil, fmt.Errorf("cron %q: day of month: %w", expr, err)
	}
	if s.mon, err = parseField(fields[3], 1, 12, monthNames); err != nil {
		return nil, fmt.Errorf("cron %q: month: %w", expr, err)
	}
	if s.dow, err = parseField(fields[4], 0, 7, dayNames); err != nil {
		return nil, fmt.Errorf("cron %q: day of week: %w", expr, err)
	}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1
	}
	s.domRestrict = fields[2] != "*" && !strings.HasPrefix(fields[2], "*/")
	s.dowRestrict = fields[4] != "*" && !strings.HasPrefix(fields[4], "*/")
	return s, nil
}

func parseField(f string, lo, hi int, names map[string]int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(f, ",") {
		if part == "" {
			return 0, fmt.Errorf("empty list item in %q", f)
		}
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > hi-lo+1 {
				return 0, fmt.Errorf("step %q must be a number from 1 to %d", stepStr, hi-lo+1)
			}
			step = n
		}
		var a, b int
		switch {
		case rng == "*":
			a, b = lo, hi
		default:
			from, to, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = fieldValue(from, lo, hi, names); err != nil {
				return 0, err
			}
			b = a
			if isRange {
				if b, err = fieldValue(to, lo, hi, names); err != nil {
					return 0, err
				}
				if b < a {
					return 0, fmt.Errorf("range %q runs backwards", rng)
				}
			} else if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func fieldValue(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
	}
	return n, nil
}

// String is the expression.
func (s *Schedule) String() string { return s.expr }

func (s *Schedule) dayMatches(t time.Time) bool {
	domOK := s.dom&(1<<uint(t.Day())) != 0
	dowOK := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domRestrict && s.dowRestrict {
		return domOK || dowOK
	}
	return domOK && dowOK
}

// Next is the first time strictly after t (to the minute, in t's location)
// the schedule fires, or the zero time if it never does within 5 years
// (31 February, say).
func (s *Schedule) Next(t time.Time) time.Time {
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		switch {
		case s.mon&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
		case s.hour&(1<<uint(t.Hour())) == 0:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, t.Location())
		case s.min&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}
