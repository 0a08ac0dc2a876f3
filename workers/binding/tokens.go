package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Tokens keeps installs' rotating bot tokens fresh. The worker uses it for
// every Web API call and `orgbridge org disconnect` uses it for apps.uninstall,
// so neither calls Slack with a token that has expired.
type Tokens struct {
	Installations *store.Installations
	Locker        *store.Locker
	Slack         *slackapi.OAuthApp
	// RefreshAhead: a token expiring within it is refreshed (default 1h).
	RefreshAhead time.Duration
	Log          *slog.Logger
	// OnUnreplicated, when set, is called for rotated tokens saved on the
	// Redis primary that no replica acknowledged (a metric).
	OnUnreplicated func()
}

func (t *Tokens) ahead() time.Duration {
	if t.RefreshAhead == 0 {
		return DefaultRefreshAhead
	}
	return t.RefreshAhead
}

func (t *Tokens) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

// refreshLockTTL is the install lock's TTL during a refresh; KeepAlive
// extends it while the refresh and the save run.
const refreshLockTTL = 30 * time.Second

// Refresh refreshes one install's bot token if it is due, under the
// install's lock: a refresh revokes the old refresh token, so two workers
// refreshing the same install at once would break it. A caller that finds the
// lock taken leaves the refresh to its holder and gets false.
//
// Once Slack answered, the old refresh token is dead and the new tokens exist
// only in memory: they are saved even if ctx ends (shutdown), retried on a
// Redis error, and the lock is kept alive meanwhile so the fenced save is
// still allowed.
func (t *Tokens) Refresh(ctx context.Context, app, ent, team string) (bool, error) {
	lock, err := t.Locker.Obtain(ctx, store.InstallLockKey(app, ent, team), refreshLockTTL)
	if errors.Is(err, store.ErrNotObtained) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	refreshed := false
	err = lock.KeepAlive(context.WithoutCancel(ctx), refreshLockTTL, func(kctx context.Context) error {
		in, err := t.Installations.Get(ctx, app, ent, team)
		if err != nil {
			return err
		}
		// Re-read under the lock: another worker may just have refreshed it.
		if in.BotRefreshToken == "" || time.Until(in.TokenExpiresAt) > t.ahead() {
			return nil
		}
		resp, err := t.Slack.Refresh(ctx, in.BotRefreshToken.Reveal())
		if err != nil {
			return fmt.Errorf("refreshing install %s/%s: %w", app, in.Tenant(), err)
		}
		in.BotToken, in.BotRefreshToken = store.Secret(resp.AccessToken), store.Secret(resp.RefreshToken)
		in.TokenExpiresAt = time.Now().Add(time.Duration(resp.ExpiresIn) * time.Second).UTC()
		if err := t.saveRotated(kctx, in, lock); err != nil {
			t.log().Error("rotated bot token NOT saved: the install must be reinstalled", "app", app, "tenant", in.Tenant(), "err", err)
			return err
		}
		refreshed = true
		t.log().Info("bot token refreshed", "app", app, "tenant", in.Tenant(), "expires_at", in.TokenExpiresAt)
		return nil
	})
	return refreshed, err
}

// saveRotated saves freshly rotated tokens, trying five times about 200 ms,
// 400 ms, 800 ms, 1 s apart, until the save succeeds and a Redis replica has
// it ([store.Installations.SaveFenced]); ctx is not cancelled by the caller's
// shutdown (only by losing the lock). It returns the last save's error; a
// token the primary has but no replica acknowledged counts as saved (logged).
func (t *Tokens) saveRotated(ctx context.Context, in *store.Installation, lock *store.Lock) error {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(time.Second),
		backoff.WithMaxElapsedTime(0),
	)
	var last error
	err := backoff.Retry(func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last = t.Installations.SaveFenced(sctx, in, lock)
		if errors.Is(last, store.ErrLockNotHeld) {
			return backoff.Permanent(last)
		}
		return last
	}, backoff.WithContext(backoff.WithMaxRetries(b, 4), ctx))
	if errors.Is(last, store.ErrNotReplicated) {
		// Saved on the primary five times over; only a failover before a
		// replica catches up loses it.
		t.log().Warn("rotated bot token saved, but no Redis replica acknowledged it", "app", in.AppID, "tenant", in.Tenant(), "err", last)
		if t.OnUnreplicated != nil {
			t.OnUnreplicated()
		}
		return nil
	}
	if err != nil && last != nil {
		return last
	}
	return err
}

// Client returns a Web API client with a fresh bot token of the install
// serving (ent, team) ([store.Installations.Find]: a member workspace of a
// Grid org falls back to the org-wide install), refreshing the token first
// when it expires within five minutes.
func (t *Tokens) Client(ctx context.Context, app, ent, team string) (*slack.Client, *store.Installation, error) {
	in, err := t.Installations.Find(ctx, app, ent, team)
	if err != nil {
		return nil, nil, err
	}
	if in.BotRefreshToken != "" && time.Until(in.TokenExpiresAt) < 5*time.Minute {
		if _, err := t.Refresh(ctx, in.AppID, in.EnterpriseID, in.TeamID); err != nil {
			return nil, nil, err
		}
		if in, err = t.Installations.Get(ctx, in.AppID, in.EnterpriseID, in.TeamID); err != nil {
			return nil, nil, err
		}
	}
	return t.Slack.Client(in.BotToken.Reveal()), in, nil
}

// Uninstall uninstalls the app from in's workspace (apps.uninstall) with a
// fresh bot token: Slack then sends app_uninstalled and tokens_revoked, and
// [Worker.HandleUninstall] clears the install, the binding and the mappings.
func (t *Tokens) Uninstall(ctx context.Context, in *store.Installation) error {
	_, fresh, err := t.Client(ctx, in.AppID, in.EnterpriseID, in.TeamID)
	if err != nil {
		return err
	}
	return t.Slack.Uninstall(ctx, fresh.BotToken.Reveal())
}
