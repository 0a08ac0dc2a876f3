package mapping

import (
	"slices"
	"testing"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestStoreOnRedisCluster: mappings connected, listed by org (under either
// form of its id) and deleted on a six-node Redis Cluster, where a script or
// command spanning two hash tags is refused (CROSSSLOT).
func TestStoreOnRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	keys, _ := store.ParseKeyring(store.GenerateKeySpec("k"))
	s, ctx := NewStore(c.Client, keys), ctxT(t)
	for _, m := range []*Mapping{
		{Workspace: "T1", SlackUserID: "U100", OrgID: org1, OrgUserID: "005000000000100", Username: "a@one.example", Source: "import"},
		{Workspace: "T2", SlackUserID: "U200", OrgID: org1, OrgUserID: "005000000000200", Username: "b@one.example", Source: "import"},
		{Workspace: "T3", SlackUserID: "U300", OrgID: org1 + "EAA", OrgUserID: "005000000000300", Username: "c@one.example", Source: "import"},
	} {
		if _, err := s.Connect(ctx, m); err != nil {
			t.Fatalf("Connect %s/%s: %v", m.Workspace, m.SlackUserID, err)
		}
	}
	tests := []struct {
		name string
		run  func() ([]string, error)
		want []string
	}{
		{name: "an org's workspaces, both forms of its id", want: []string{"T1", "T2", "T3"}, run: func() ([]string, error) {
			return s.OrgWorkspaces(ctx, org1)
		}},
		{name: "a page of the org's mappings", want: []string{"T1/U100", "T2/U200", "T3/U300"}, run: func() ([]string, error) {
			page, _, err := s.Page(ctx, Filter{OrgID: org1}, 0, 10)
			var out []string
			for _, m := range page {
				out = append(out, m.Workspace+"/"+m.SlackUserID)
			}
			return out, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run()
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if n, err := s.DeleteMatching(ctx, Filter{OrgID: org1, Workspace: "T1"}); err != nil || n != 1 {
		t.Fatalf("DeleteMatching = %d, %v; want 1", n, err)
	}
}
