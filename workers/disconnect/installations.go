package disconnect

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/orgbridge/orgbridge/internal/secret"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Token is a Slack access token ([secret.Secret]): it never prints, logs or
// encodes its value; [secret.Secret.Reveal] gives it where it is sent.
type Token = secret.Secret

// Install is what the worker needs of an enterprise's installation.
type Install struct {
	EnterpriseID string
	// Token is the org-level (Grid) bot token.
	Token Token
	// Scopes are the token's scopes; team.externalTeams.disconnect needs
	// conversations.connect:manage.
	Scopes []string
	// TeamIDs are the enterprise's own workspaces, which can never be a
	// disconnect target; owns, when set, answers the same question for
	// installations too many to list.
	TeamIDs []string
	owns    func(ctx context.Context, teamID string) (bool, error)
}

// Owns reports whether teamID is one of the enterprise's own workspaces.
func (in Install) Owns(ctx context.Context, teamID string) (bool, error) {
	if teamID == in.EnterpriseID || slices.Contains(in.TeamIDs, teamID) {
		return true, nil
	}
	if in.owns != nil {
		return in.owns(ctx, teamID)
	}
	return false, nil
}

// HasScope reports whether the install's token has scope.
func (in Install) HasScope(scope string) bool { return slices.Contains(in.Scopes, scope) }

// Installations finds an enterprise's org-wide installation. It returns
// [ErrUnknownEnterprise] when orgbridge never saw the enterprise and
// [ErrNoGridInstall] when the app is not installed org-wide there.
// [StoreInstallations] implements it over the binding worker's installation store.
type Installations interface {
	EnterpriseInstall(ctx context.Context, enterpriseID string) (Install, error)
}

// StoreInstallations is [Installations] over the installation store the
// binding worker fills from Slack OAuth installs (tokens sealed at rest): the
// org-wide install of AppID gives the token, and a workspace is the
// enterprise's own when the app is installed there under the enterprise.
type StoreInstallations struct {
	Store *store.Installations
	AppID string
}

// EnterpriseInstall implements [Installations].
func (s StoreInstallations) EnterpriseInstall(ctx context.Context, enterpriseID string) (Install, error) {
	in, err := s.Store.Get(ctx, s.AppID, enterpriseID, "")
	if errors.Is(err, store.ErrNoInstallation) {
		// Rare path: tell "never seen" from "installed only per workspace".
		all, lerr := s.Store.List(ctx)
		if lerr != nil {
			return Install{}, fmt.Errorf("disconnect: reading installations of %s: %w", enterpriseID, lerr)
		}
		for _, other := range all {
			if other.EnterpriseID == enterpriseID && other.AppID == s.AppID {
				return Install{}, fmt.Errorf("%w: %s", ErrNoGridInstall, enterpriseID)
			}
		}
		return Install{}, fmt.Errorf("%w: %s", ErrUnknownEnterprise, enterpriseID)
	}
	if err != nil {
		return Install{}, fmt.Errorf("disconnect: reading the installation of %s: %w", enterpriseID, err)
	}
	return Install{
		EnterpriseID: enterpriseID,
		Token:        Token(in.BotToken.Reveal()),
		Scopes:       in.Scopes,
		owns: func(ctx context.Context, teamID string) (bool, error) {
			ws, err := s.Store.Get(ctx, s.AppID, enterpriseID, teamID)
			if errors.Is(err, store.ErrNoInstallation) {
				return false, nil
			}
			return err == nil && ws.EnterpriseID == enterpriseID, err
		},
	}, nil
}
