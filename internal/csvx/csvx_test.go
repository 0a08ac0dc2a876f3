package csvx

import "testing"

func TestSafe(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"formula", "=SUM(A1)", "'=SUM(A1)"},
		{"plus", "+1", "'+1"},
		{"minus", "-1", "'-1"},
		{"at", "@cmd", "'@cmd"},
		{"tab", "\tx", "'\tx"},
		{"carriage return", "\rx", "'\rx"},
		{"plain", "alice", "alice"},
		{"empty", "", ""},
		{"formula later", "a=b", "a=b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Safe(tc.in); got != tc.want {
				t.Fatalf("Safe(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
