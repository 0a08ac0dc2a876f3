package orgemu_test

import (
	"context"
	"fmt"
	"testing"

	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

// BenchmarkSCIMFindByUserName measures an indexed lookup in a directory of
// 100,000 users, over loopback HTTP through orgapi.
func BenchmarkSCIMFindByUserName(b *testing.B) {
	e := orgemu.StartTest(b, orgemu.Config{SCIMToken: "admin", Orgs: 1, UsersPerOrg: 100_000})
	s := orgapi.NewSCIM(e.URL()+"/services/scim/v2", "admin", nil)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("user%d@org1.example", i%100_000+1)
		users, err := s.FindUsers(ctx, orgapi.FilterEq("userName", name))
		if err != nil || len(users) != 1 {
			b.Fatalf("FindUsers(%s) = %d users, %v", name, len(users), err)
		}
	}
}

// BenchmarkSCIMListPage measures reading a 1,000-user page deep into 100,000 users.
func BenchmarkSCIMListPage(b *testing.B) {
	e := orgemu.StartTest(b, orgemu.Config{SCIMToken: "admin", Orgs: 1, UsersPerOrg: 100_000})
	s := orgapi.NewSCIM(e.URL()+"/services/scim/v2", "admin", nil)
	ctx := context.Background()
	for b.Loop() {
		p, err := s.ListUsers(ctx, orgapi.ListOptions{StartIndex: 90_001, Count: 1000})
		if err != nil || len(p.Resources) != 1000 {
			b.Fatalf("ListUsers: %v", err)
		}
	}
}
