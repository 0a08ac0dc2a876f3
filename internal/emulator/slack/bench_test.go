package slackemu

import (
	"context"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/slack-go/slack"
)

// BenchmarkUsersList100k pages through a 100,000-user workspace with
// users.list at limit 999 via slack-go (101 calls per op). Rate limits are
// off: this measures the emulator, not Tier 2 pacing.
func BenchmarkUsersList100k(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, err := New(Config{Seed: 1, Workspaces: 1, Enterprises: -1, Users: 100_000, Groups: -1, DisableRateLimits: true})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	defer e.Close()
	e.SetBaseURL(srv.URL)
	tok, err := e.MintToken(TokenRequest{Scopes: []string{"users:read", "users:read.email"}})
	if err != nil {
		b.Fatal(err)
	}
	api := slack.New(tok.Token, slack.OptionAPIURL(e.APIURL()))
	b.ResetTimer()
	for b.Loop() {
		users, err := api.GetUsersContext(context.Background(), slack.GetUsersOptionLimit(999))
		if err != nil || len(users) != 100_000 {
			b.Fatalf("%d users, %v", len(users), err)
		}
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "world-MB")
}

// BenchmarkSeed100k builds a 100,000-user world.
func BenchmarkSeed100k(b *testing.B) {
	for b.Loop() {
		if _, err := New(Config{Seed: 1, Workspaces: 1, Enterprises: -1, Users: 100_000, Groups: 500}); err != nil {
			b.Fatal(err)
		}
	}
}
