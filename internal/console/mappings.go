package console

import (
	"context"
	"errors"
	"net/http"

	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// Mappings is what the mapping pages need (a *mapping.Store).
type Mappings interface {
	List(ctx context.Context, f mapping.Filter) ([]*mapping.Mapping, error)
	GetByID(ctx context.Context, id string) (*mapping.Mapping, error)
	DeleteByID(ctx context.Context, id string) (*mapping.Mapping, error)
	// for the admin pages (mappings_admin.go)
	Page(ctx context.Context, f mapping.Filter, offset, limit int) ([]*mapping.Mapping, int, error)
	Count(ctx context.Context, f mapping.Filter) (int, error)
	Scan(ctx context.Context, f mapping.Filter, fn func(*mapping.Mapping) error) error
	DeleteMatching(ctx context.Context, f mapping.Filter) (int, error)
	OrgWorkspaces(ctx context.Context, org string) ([]string, error)
}

// Bindings lists the workspaces bound to orgs (a *binding.Store).
type Bindings interface {
	List(ctx context.Context) ([]*binding.Binding, error)
}

func (c *Console) mappingRoutes(m *http.ServeMux) {
	c.adminRoutes(m)
	if c.cfg.Mappings == nil {
		return
	}
	m.HandleFunc("GET "+Prefix+"mappings/mine", c.handle(roleUser, c.myMappings))
	m.HandleFunc("POST "+Prefix+"mappings/mine/{id}/delete", c.handle(roleUser, c.deleteMyMapping))
}

// myMappings is "Slack User Mappings" in the user's personal settings: every
// Slack user mapped to their org account.
func (c *Console) myMappings(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	ms, err := c.cfg.Mappings.List(ctx, mapping.Filter{OrgID: s.OrgID, OrgUserID: s.OrgUserID})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "mappings_mine", s, map[string]any{"Title": "My Slack mappings", "Mappings": ms,
		"Deleted": r.URL.Query().Get("deleted")})
}

// deleteMyMapping deletes one of the user's own mappings; the org
// association stays, so a reconnect must use the same org user.
func (c *Console) deleteMyMapping(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	m, err := c.cfg.Mappings.GetByID(ctx, r.PathValue("id"))
	if err != nil || m == nil || !sameOrg(m.OrgID, s.OrgID) || m.OrgUserID != s.OrgUserID {
		if err != nil && !errors.Is(err, mapping.ErrNotFound) {
			c.internal(w, r, err)
			return
		}
		c.fail(w, r, http.StatusNotFound, "No such mapping", "That mapping does not exist or is not yours.")
		return
	}
	if _, err := c.cfg.Mappings.DeleteByID(ctx, m.ID); err != nil {
		c.internal(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"mappings/mine?deleted="+urlQueryEscape(m.SlackUserID), http.StatusSeeOther)
}
