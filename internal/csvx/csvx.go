// Package csvx holds what orgbridge's CSV exports share.
package csvx

import "strings"

// Safe keeps a spreadsheet from running a cell as a formula: a cell that
// starts with = + - @, a tab or a carriage return gets a leading '. Exports
// whose cells come from outside (other systems, Slack profiles) pass every
// cell through it (CSV/formula injection).
func Safe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
