package binding_test

import (
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
)

// TestRotatedTokensWithStalledReplicas: behind Sentinel with both replicas
// stalled, a refresh that Slack answered cannot wait for a replica. The new
// tokens must still count as saved (they are on the primary; Slack already
// revoked the old refresh token, so failing would lose the install), the
// refresh is reported done, and the unreplicated save is counted for an
// alert. Once the replicas resume they have the tokens.
func TestRotatedTokensWithStalledReplicas(t *testing.T) {
	e := startEnv(t, envOpts{})
	team := e.teams()[0]
	e.install(team)
	in, err := e.installs.Find(e.ctx, e.slack.AppID(), "", team)
	if err != nil {
		t.Fatal(err)
	}
	// The same install in a Redis behind Sentinel, due for a refresh.
	s := testenv.StartRedisSentinel(t)
	installs := store.NewInstallations(s.Client, e.keys)
	in.TokenExpiresAt = time.Now().Add(time.Minute)
	if err := installs.Save(e.ctx, in); err != nil {
		t.Fatal(err)
	}
	unreplicated := 0
	tokens := &binding.Tokens{Installations: installs, Locker: store.NewLocker(s.Client),
		Slack:          &slackapi.OAuthApp{APIURL: e.slack.APIURL(), ClientID: e.slack.ClientID(), ClientSecret: e.slack.ClientSecret()},
		OnUnreplicated: func() { unreplicated++ }}

	thaw := s.FreezeReplicas(t)
	ok, err := tokens.Refresh(e.ctx, in.AppID, in.EnterpriseID, in.TeamID)
	if !ok || err != nil {
		t.Fatalf("refresh with the replicas stalled = %v, %v; want the rotated tokens kept", ok, err)
	}
	if unreplicated != 1 {
		t.Fatalf("unreplicated saves counted: %d, want 1", unreplicated)
	}
	after, err := installs.Find(e.ctx, in.AppID, "", team)
	if err != nil || after.BotRefreshToken == in.BotRefreshToken {
		t.Fatalf("the rotated tokens are not on the primary: %v", err)
	}
	if _, err := slack.New(after.BotToken.Reveal(), slack.OptionAPIURL(e.slack.APIURL())).AuthTestContext(e.ctx); err != nil {
		t.Fatalf("the stored bot token: %v", err)
	}
	thaw()
	key := store.InstallKey(in.AppID, "", team)
	saved := s.Client.Get(e.ctx, key).Val() // the rotated record, as the primary has it
	replicas := s.ReplicaClients(t)
	testenv.Eventually(t, 20*time.Second, func() bool {
		for _, c := range replicas {
			if c.Get(e.ctx, key).Val() != saved {
				return false
			}
		}
		return true
	}, "the replicas never caught up with the rotated tokens")
}
