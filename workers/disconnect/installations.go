package disconnect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
)

// Token is a Slack access token. It prints as [redacted] in logs and %v/%#v
// output; [Token.Reveal] gives the value where it is sent.
type Token string

// Reveal returns the token itself.
func (t Token) Reveal() string { return string(t) }

// String redacts the token.
func (Token) String() string { return "[redacted]" }

// GoString redacts the token for %#v.
func (Token) GoString() string { return `"[redacted]"` }

// LogValue redacts the token in slog output.
func (Token) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Install is what the worker needs of an enterprise's installation.
type Install struct {
	EnterpriseID string
	// Token is the org-level (Grid) bot token.
	Token Token
	// Scopes are the token's scopes; team.externalTeams.disconnect needs
	// conversations.connect:manage.
	Scopes []string
	// TeamIDs are the enterprise's own workspaces, which can never be a
	// disconnect target.
	TeamIDs []string
}

// HasScope reports whether the install's token has scope.
func (in Install) HasScope(scope string) bool { return slices.Contains(in.Scopes, scope) }

// Installations finds an enterprise's org-wide installation. It returns
// [ErrUnknownEnterprise] when orgbridge never saw the enterprise and
// [ErrNoGridInstall] when the app is not installed org-wide there. Issue 4's
// installation store (Slack OAuth installs, encrypted tokens) implements it;
// until then [RedisInstallations] does.
type Installations interface {
	EnterpriseInstall(ctx context.Context, enterpriseID string) (Install, error)
}

// RedisInstallations is a small Redis-backed [Installations] for tests and dev
// until issue 4's installation store replaces it. It is real (not a mock) but
// keeps tokens as given, not encrypted at rest: do not use it in production.
// Key: ob:{E…}:disconnect:install.
type RedisInstallations struct {
	rdb redis.Cmdable
}

// NewRedisInstallations returns RedisInstallations over rdb.
func NewRedisInstallations(rdb redis.Cmdable) *RedisInstallations {
	return &RedisInstallations{rdb: rdb}
}

type installJSON struct {
	Token   string   `json:"token,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	TeamIDs []string `json:"team_ids,omitempty"`
}

func installKey(enterpriseID string) string { return store.Key(enterpriseID, "disconnect", "install") }

// RegisterEnterprise records the enterprise's installation. An empty Token
// records a known enterprise without an org-wide install (only workspace
// installs), for which requests are rejected with no_grid_installation.
func (s *RedisInstallations) RegisterEnterprise(ctx context.Context, in Install) error {
	if in.EnterpriseID == "" {
		return errors.New("disconnect: RegisterEnterprise needs an enterprise id")
	}
	b, err := json.Marshal(installJSON{Token: in.Token.Reveal(), Scopes: in.Scopes, TeamIDs: in.TeamIDs})
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, installKey(in.EnterpriseID), b, 0).Err(); err != nil {
		return fmt.Errorf("disconnect: registering enterprise %s: %w", in.EnterpriseID, err)
	}
	return nil
}

// EnterpriseInstall implements [Installations].
func (s *RedisInstallations) EnterpriseInstall(ctx context.Context, enterpriseID string) (Install, error) {
	b, err := s.rdb.Get(ctx, installKey(enterpriseID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Install{}, fmt.Errorf("%w: %s", ErrUnknownEnterprise, enterpriseID)
	}
	if err != nil {
		return Install{}, fmt.Errorf("disconnect: reading installation of %s: %w", enterpriseID, err)
	}
	var j installJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Install{}, fmt.Errorf("disconnect: installation of %s is corrupt: %w", enterpriseID, err)
	}
	if j.Token == "" {
		return Install{}, fmt.Errorf("%w: %s", ErrNoGridInstall, enterpriseID)
	}
	return Install{EnterpriseID: enterpriseID, Token: Token(j.Token), Scopes: j.Scopes, TeamIDs: j.TeamIDs}, nil
}

// MarshalJSON redacts the token wherever an Install is encoded (log
// handlers, debug dumps); the store encodes the revealed value itself.
func (Token) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }
