package slackapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestClientAgainstEmulator(t *testing.T) {
	emu := slackemu.StartTest(t, slackemu.Config{TimeScale: 1000, ExternalTeams: 7, Users: 2, DisconnectDelay: time.Second})
	ent := emu.World().Enterprises[0]
	tok, err := emu.MintToken(slackemu.TokenRequest{EnterpriseID: ent.ID})
	if err != nil {
		t.Fatal(err)
	}
	c, err := slackapi.New(emu.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("list pages through every team", func(t *testing.T) {
		var ids []string
		cursor := ""
		for {
			page, resp, err := c.ListExternalTeams(ctx, tok.Token, slackapi.ListExternalTeamsParams{Limit: 3, Cursor: cursor})
			if err != nil || resp.Status != 200 || len(resp.Body) == 0 {
				t.Fatalf("list: %v (%+v)", err, resp)
			}
			for _, o := range page.Organizations {
				ids = append(ids, o.TeamID)
				if o.TeamName == "" || o.ConnectionStatus == "" || o.LastActiveTimestamp == 0 {
					t.Fatalf("incomplete organization %+v", o)
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(ids) != 7 {
			t.Fatalf("listed %d teams, want 7", len(ids))
		}
	})
	t.Run("disconnect then list shows it", func(t *testing.T) {
		target := ent.ExternalTeams[0].ID
		resp, err := c.DisconnectExternalTeam(ctx, tok.Token, target)
		if err != nil || string(resp.Body) == "" {
			t.Fatalf("disconnect: %v", err)
		}
		testenv.Eventually(t, 5*time.Second, func() bool {
			page, _, err := c.ListExternalTeams(ctx, tok.Token, slackapi.ListExternalTeamsParams{Limit: 100, ConnectionStatusFilter: slackapi.StatusDisconnected})
			if err != nil {
				return false
			}
			for _, o := range page.Organizations {
				if o.TeamID == target {
					return true
				}
			}
			return false
		}, "team never showed DISCONNECTED")
	})

	tests := []struct {
		name  string
		token string
		fault *slackemu.Fault
		check func(t *testing.T, err error)
	}{
		{"ok false is a SlackErrorResponse", "xoxb-nope", nil, func(t *testing.T, err error) {
			var se slack.SlackErrorResponse
			if !errors.As(err, &se) || se.Err != "invalid_auth" || slackapi.ErrorCode(err) != "invalid_auth" {
				t.Fatalf("err = %#v", err)
			}
		}},
		{"429 is a RateLimitedError with RetryAfter", tok.Token, &slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, HTTPStatus: 429, RetryAfter: 42, Count: 1}, func(t *testing.T, err error) {
			var rl *slack.RateLimitedError
			if !errors.As(err, &rl) || rl.RetryAfter != 42*time.Second || slackapi.ErrorCode(err) != "ratelimited" {
				t.Fatalf("err = %#v", err)
			}
		}},
		{"5xx is a StatusCodeError", tok.Token, &slackemu.Fault{Method: slackapi.MethodExternalTeamsDisconnect, HTTPStatus: 503, Count: 1}, func(t *testing.T, err error) {
			var sc slack.StatusCodeError
			if !errors.As(err, &sc) || sc.Code != 503 || !sc.Retryable() {
				t.Fatalf("err = %#v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu.ClearFaults()
			if tt.fault != nil {
				if err := emu.InjectFault(*tt.fault); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.DisconnectExternalTeam(ctx, tt.token, ent.ExternalTeams[1].ID)
			tt.check(t, err)
		})
	}
	t.Run("no server is a TransportError that was not sent", func(t *testing.T) {
		dead, _ := slackapi.New("http://127.0.0.1:1/api/", slackapi.WithHTTPClient(&http.Client{Timeout: time.Second}))
		_, err := dead.DisconnectExternalTeam(ctx, tok.Token, "T1")
		var te *slackapi.TransportError
		if !errors.As(err, &te) || te.MaybeSent {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("slack-go client shares URL and HTTP client", func(t *testing.T) {
		if _, err := c.Slack(tok.Token).AuthTestContext(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPacerSpacesCallsAcrossReplicas(t *testing.T) {
	rdb := testenv.StartRedis(t)
	ctx := context.Background()
	pace := slackapi.Pace{Tenant: "E01", Method: slackapi.MethodExternalTeamsDisconnect, Every: 40 * time.Millisecond}
	replicas := []*slackapi.Pacer{slackapi.NewPacer(rdb.Client), slackapi.NewPacer(rdb.Client)}
	var mu sync.Mutex
	var granted []time.Time
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := replicas[i%2]
			if err := p.Wait(ctx, pace, "holder-"+string(rune('a'+i)), time.Second); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			granted = append(granted, time.Now())
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(granted) != 8 {
		t.Fatalf("granted %d", len(granted))
	}
	sortTimes(granted)
	for i := 1; i < len(granted); i++ {
		if gap := granted[i].Sub(granted[i-1]); gap < 35*time.Millisecond {
			t.Fatalf("grants %d and %d %s apart, want ≥ 40ms (minus timer slack)", i-1, i, gap)
		}
	}

	t.Run("a 429 pushes the next call back", func(t *testing.T) {
		p := replicas[0]
		if err := p.Penalize(ctx, pace, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		wait, err := p.Reserve(ctx, pace, "after-429")
		if err != nil || wait < 250*time.Millisecond {
			t.Fatalf("wait after a 429 = %s, %v", wait, err)
		}
		err = p.Wait(ctx, pace, "after-429-b", 10*time.Millisecond)
		var we *slackapi.WaitError
		if !errors.As(err, &we) || we.RetryAfter() <= 0 || !we.Retryable() {
			t.Fatalf("Wait beyond maxBlock = %v", err)
		}
	})
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

func TestPaceEvery(t *testing.T) {
	tests := []struct {
		tier   slackapi.Tier
		scale  float64
		margin float64
		gap    time.Duration
		want   time.Duration
	}{
		{slackapi.Tier1, 1, 0, 0, time.Minute},
		{slackapi.Tier1, 600, 0, 0, 100 * time.Millisecond},
		{slackapi.Tier2, 1, 0.1, time.Second, 3300*time.Millisecond + time.Second},
	}
	for _, tt := range tests {
		if got := slackapi.PaceEvery(tt.tier, tt.scale, tt.margin, tt.gap); got != tt.want {
			t.Errorf("PaceEvery(%d, %v, %v, %s) = %s, want %s", tt.tier, tt.scale, tt.margin, tt.gap, got, tt.want)
		}
	}
}

// TestPacerHold checks that a call holds its pace from its grant until
// Done, so the next call is spaced from the end of the previous one — what
// keeps calls that reach Slack late from landing too close together.
func TestPacerHold(t *testing.T) {
	rdb := testenv.StartRedis(t)
	ctx := context.Background()
	p := slackapi.NewPacer(rdb.Client)
	const every = 30 * time.Millisecond
	grant := func(t *testing.T, pace slackapi.Pace, holder string, within time.Duration) time.Time {
		t.Helper()
		if err := p.Wait(ctx, pace, holder, within); err != nil {
			t.Fatalf("%s not let through within %s: %v", holder, within, err)
		}
		return time.Now()
	}
	held := func(t *testing.T, pace slackapi.Pace, holder string, block time.Duration) {
		t.Helper()
		var we *slackapi.WaitError
		if err := p.Wait(ctx, pace, holder, block); !errors.As(err, &we) {
			t.Fatalf("%s let through while another call holds the pace (err %v)", holder, err)
		}
	}

	tests := []struct {
		name string
		run  func(t *testing.T, pace slackapi.Pace)
	}{
		{"the next call waits for Done, then Every", func(t *testing.T, pace slackapi.Pace) {
			grant(t, pace, "a", time.Second)
			held(t, pace, "b", 4*every) // a is still "in flight"
			// a's end as Redis records it comes after this instant; Redis counts
			// in whole milliseconds, so allow one
			done := time.Now()
			if err := p.Done(ctx, pace, "a"); err != nil {
				t.Fatal(err)
			}
			if got := grant(t, pace, "b", time.Second); got.Sub(done) < every-time.Millisecond {
				t.Fatalf("b let through %s after a ended, want ≥ %s", got.Sub(done), every)
			}
		}},
		{"a caller that never calls Done holds the pace for Hold only", func(t *testing.T, pace slackapi.Pace) {
			start := time.Now() // a's grant as Redis records it comes after this instant
			grant(t, pace, "a", time.Second)
			if got := grant(t, pace, "b", 2*time.Second); got.Sub(start) < pace.Hold+every-time.Millisecond {
				t.Fatalf("b let through %s after a dead caller's grant, want ≥ Hold + Every = %s", got.Sub(start), pace.Hold+every)
			}
		}},
		{"a late Done does not release another call", func(t *testing.T, pace slackapi.Pace) {
			grant(t, pace, "a", time.Second)
			grant(t, pace, "b", 2*time.Second) // after a's hold ran out
			if err := p.Done(ctx, pace, "a"); err != nil {
				t.Fatal(err)
			}
			held(t, pace, "c", 4*every) // b is still in flight
			if err := p.Done(ctx, pace, "b"); err != nil {
				t.Fatal(err)
			}
			grant(t, pace, "c", time.Second)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, slackapi.Pace{Tenant: fmt.Sprintf("E%02d", i), Method: slackapi.MethodExternalTeamsDisconnect,
				Every: every, Hold: 200 * time.Millisecond})
		})
	}
}
