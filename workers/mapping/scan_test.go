package mapping

import (
	"fmt"
	"slices"
	"testing"
)

// TestStorePagesAndBulkDeletes: a listing of one org reads only its
// workspaces, pages in List's order, and a bulk delete removes exactly the
// matching mappings while the associations stay.
func TestStorePagesAndBulkDeletes(t *testing.T) {
	w, _, _ := newTestWorker(t)
	s, ctx := w.Store(), ctxT(t)
	add := func(ws, u, org, ou, name string) {
		t.Helper()
		if _, err := s.Connect(ctx, &Mapping{Workspace: ws, SlackUserID: u, OrgID: org, OrgUserID: ou, Username: name, Source: "import"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		add("T1", fmt.Sprintf("U1%02d", i), org1, fmt.Sprintf("00500000000010%d", i), fmt.Sprintf("u%d@one.example", i))
	}
	add("T2", "U200", org1, alice, "Alice@One.example")
	add("T9", "U900", org2, bob, "bob@two.example")
	add("T3", "U300", org1+"EAA", "005000000000300", "carol@one.example") // the 18-character form of org1

	ids := func(ms []*Mapping) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Workspace+"/"+m.SlackUserID)
		}
		return out
	}
	tests := []struct {
		name          string
		f             Filter
		offset, limit int
		want          []string
		total         int
	}{
		{"first page of an org", Filter{OrgID: org1}, 0, 3, []string{"T1/U100", "T1/U101", "T1/U102"}, 9},
		{"last page of an org", Filter{OrgID: org1}, 6, 3, []string{"T1/U106", "T2/U200", "T3/U300"}, 9},
		{"past the end", Filter{OrgID: org1}, 20, 3, nil, 9},
		{"the org's 18-character id", Filter{OrgID: org1 + "EAA", Workspace: "T2"}, 0, 50, []string{"T2/U200"}, 1},
		{"a workspace", Filter{OrgID: org1, Workspace: "T2"}, 0, 50, []string{"T2/U200"}, 1},
		{"another org's workspace is not the org's", Filter{OrgID: org1, Workspace: "T9"}, 0, 50, nil, 0},
		{"a Slack user", Filter{OrgID: org1, SlackUserID: "U103"}, 0, 50, []string{"T1/U103"}, 1},
		{"a username ignoring case", Filter{OrgID: org1, Username: "alice@one.example"}, 0, 50, []string{"T2/U200"}, 1},
		{"an org user id", Filter{OrgUserID: bob}, 0, 50, []string{"T9/U900"}, 1},
		{"every org", Filter{}, 7, 5, []string{"T2/U200", "T3/U300", "T9/U900"}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, total, err := s.Page(ctx, tt.f, tt.offset, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page); !slices.Equal(got, tt.want) || total != tt.total {
				t.Fatalf("got %v of %d, want %v of %d", got, total, tt.want, tt.total)
			}
			for _, m := range page {
				if m.RefreshToken != "" {
					t.Fatal("a listing carries a refresh token")
				}
			}
		})
	}
	ws, err := s.OrgWorkspaces(ctx, org1)
	if err != nil || !slices.Equal(ws, []string{"T1", "T2", "T3"}) {
		t.Fatalf("org workspaces = %v, %v", ws, err)
	}

	n, err := s.DeleteMatching(ctx, Filter{OrgID: org1, Workspace: "T1"})
	if err != nil || n != 7 {
		t.Fatalf("deleted %d, %v; want 7", n, err)
	}
	if left, _ := s.Count(ctx, Filter{}); left != 3 {
		t.Fatalf("%d mappings left, want T2's, T3's and org2's", left)
	}
	if a, err := s.Association(ctx, "T1", org1, "U103"); err != nil || a.OrgUserID != "005000000000103" {
		t.Fatalf("the association went with the mapping: %+v %v", a, err)
	}
	// the workspace stays in the org's index: the console shows it as one that had mappings
	if ws, _ := s.OrgWorkspaces(ctx, org1); !slices.Contains(ws, "T1") {
		t.Fatalf("org workspaces after the delete = %v", ws)
	}
}
