package binding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"github.com/orgbridge/orgbridge/internal/httpx"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// Errors of [Admin].
var (
	// ErrNotBound: the workspace is not bound to an org.
	ErrNotBound = errors.New("binding: the workspace is not connected to an org")
	// ErrNothingToUnbind: no app is installed in the workspace and nothing
	// of an org connection is left there.
	ErrNothingToUnbind = errors.New("binding: no app is installed there and nothing is connected")
	// ErrAppNotInstalled: the app named is not installed in the workspace.
	ErrAppNotInstalled = errors.New("binding: that app is not installed there")
	// ErrNoFilter: a bulk delete names neither a workspace nor an org.
	ErrNoFilter = errors.New("binding: name a workspace or an org")
)

// Admin is an operator's clean-up of org connections, without a support
// case: unbind a workspace (apps.uninstall), mark a binding invalid, delete
// mappings in bulk by org or by workspace. The admin API and `orgbridge org`
// both use it; each change is logged and kept in the workspace's audit trail.
type Admin struct {
	Installations *store.Installations
	Bindings      *Store
	Mappings      *mapping.Store
	Locker        *store.Locker
	// Tokens uninstalls with a fresh bot token (needed by Unbind only).
	Tokens *Tokens
	Log    *slog.Logger
}

func (a *Admin) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Admin returns the worker's [Admin].
func (w *Worker) Admin() *Admin {
	return &Admin{Installations: w.cfg.Installations, Bindings: w.cfg.Bindings, Mappings: w.cfg.Mappings,
		Locker: w.cfg.Locker, Tokens: w.tokens(), Log: w.log}
}

// UnbindResult says what [Admin.Unbind] did.
type UnbindResult struct {
	Workspace string `json:"workspace"`
	// Uninstalled lists the apps apps.uninstall was sent for: Slack then sends
	// app_uninstalled and tokens_revoked, and the binding worker clears the
	// install, the binding and the mappings.
	Uninstalled []string `json:"uninstalled,omitempty"`
	// Cleared: no app was installed any more, so what was left (binding,
	// mappings, associations) was removed at once.
	Cleared bool `json:"cleared,omitempty"`
	// Mappings is how many Slack users lost a mapping or an association when
	// Cleared.
	Mappings int `json:"mappings,omitempty"`
}

// Unbind disconnects workspace ws (a team, or the enterprise of an org-wide
// install) from its org: it uninstalls app (every app installed there when
// app is empty) with apps.uninstall, as an uninstall from Slack would. When
// no app is installed any more, it clears what is left of the connection at
// once, under the workspace's lock.
func (a *Admin) Unbind(ctx context.Context, ws, app string) (UnbindResult, error) {
	res := UnbindResult{Workspace: ws}
	apps, err := a.Installations.AppsAt(ctx, ws)
	if err != nil {
		return res, err
	}
	slices.Sort(apps)
	if app != "" {
		if !slices.Contains(apps, app) {
			return res, fmt.Errorf("%w: app %s in %s", ErrAppNotInstalled, app, ws)
		}
		apps = []string{app}
	}
	for _, id := range apps {
		in, err := a.Installations.Get(ctx, id, "", ws)
		if errors.Is(err, store.ErrNoInstallation) {
			continue // uninstalled meanwhile
		}
		if err != nil {
			return res, err
		}
		if a.Tokens == nil {
			return res, errors.New("binding: Admin has no Tokens to uninstall with")
		}
		if err := a.Tokens.Uninstall(ctx, in); err != nil {
			return res, fmt.Errorf("uninstalling app %s from %s: %w", id, ws, err)
		}
		res.Uninstalled = append(res.Uninstalled, id)
	}
	if len(res.Uninstalled) > 0 {
		auditAndLog(ctx, a.Bindings, a.log(), ws, AuditEntry{Action: AuditUnbind, Actor: "admin",
			Detail: fmt.Sprintf("apps.uninstall sent for %v; Slack's events clear the install, binding and mappings", res.Uninstalled)})
		return res, nil
	}
	lock, err := a.Locker.ObtainWait(ctx, LockKey(ws), DefaultConnectLockTTL)
	if err != nil {
		return res, err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	b, err := a.Bindings.Get(ctx, ws)
	if err != nil {
		return res, err
	}
	n, err := a.Mappings.RevokeOrgIn(ctx, ws, "", lock)
	if err != nil {
		return res, err
	}
	if b != nil {
		if err := a.Bindings.Clear(ctx, ws, lock); err != nil {
			return res, err
		}
	}
	if b == nil && n == 0 {
		return res, fmt.Errorf("%w: %s", ErrNothingToUnbind, ws)
	}
	res.Cleared, res.Mappings = true, n
	e := AuditEntry{Action: AuditCleared, Actor: "admin", Mappings: n,
		Detail: "no app installed: binding, mappings and associations removed"}
	if b != nil {
		e.OrgID = b.OrgID
	}
	auditAndLog(ctx, a.Bindings, a.log(), ws, e)
	return res, nil
}

// Invalidate marks ws's binding invalid, as an expired org would: the next
// interaction prompts to log into a new org, and the next connect may bind
// another org (the old org's mappings are removed then). It returns the
// binding as it is now, and whether it changed.
func (a *Admin) Invalidate(ctx context.Context, ws, reason string) (*Binding, bool, error) {
	b, err := a.Bindings.Get(ctx, ws)
	if err != nil {
		return nil, false, err
	}
	if b == nil {
		return nil, false, fmt.Errorf("%w: %s", ErrNotBound, ws)
	}
	why := reasonAdmin
	if reason != "" {
		why += ": " + reason
	}
	changed, err := a.Bindings.Invalidate(ctx, ws, b.OrgID, why)
	if err != nil {
		return nil, false, err
	}
	_ = a.Bindings.ForgetProbe(ctx, ws)
	if changed {
		auditAndLog(ctx, a.Bindings, a.log(), ws, AuditEntry{Action: AuditInvalidated, OrgID: b.OrgID, Actor: "admin", Detail: why})
	}
	b, err = a.Bindings.Get(ctx, ws)
	return b, changed, err
}

// DeleteMappings fully removes mappings and associations (so their users
// may connect to any org user again): those of workspace ws (with org only
// when org is set), or, with ws empty, those of org in every workspace. It
// returns how many Slack users each workspace freed.
func (a *Admin) DeleteMappings(ctx context.Context, ws, org string) (map[string]int, error) {
	var out map[string]int
	switch {
	case ws != "":
		lock, err := a.Locker.ObtainWait(ctx, LockKey(ws), DefaultConnectLockTTL)
		if err != nil {
			return nil, err
		}
		defer lock.Release(context.WithoutCancel(ctx))
		n, err := a.Mappings.RevokeOrgIn(ctx, ws, org, lock)
		if err != nil {
			return nil, err
		}
		out = map[string]int{}
		if n > 0 {
			out[ws] = n
		}
	case org != "":
		var err error
		if out, err = a.Mappings.RevokeOrg(ctx, org); err != nil {
			return out, err
		}
	default:
		return nil, ErrNoFilter
	}
	for w, n := range out {
		what := "every org"
		if org != "" {
			what = "org " + org
		}
		auditAndLog(ctx, a.Bindings, a.log(), w, AuditEntry{Action: AuditMappingsDelete, OrgID: org, Actor: "admin", Mappings: n,
			Detail: "mappings and associations with " + what + " deleted in bulk"})
	}
	return out, nil
}

// AdminHandler serves the binding admin API (mount it behind an admin guard):
//
//	GET    /admin/api/installations                         every install, without tokens
//	GET    /admin/api/bindings/{team_or_enterprise_id}      the binding, its history, audit trail and the apps installed
//	POST   /admin/api/bindings/{id}/uninstall[?app=A]       unbind: apps.uninstall (every app there by default)
//	POST   /admin/api/bindings/{id}/invalidate              mark the binding invalid; body {"reason": "…"} (optional)
//	DELETE /admin/api/bindings/{id}/mappings[?org=O]        delete the workspace's mappings and associations
//	DELETE /admin/api/orgs/{org}/mappings                   delete an org's mappings and associations in every workspace
func (w *Worker) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	adm := w.Admin()
	mux.HandleFunc("GET /admin/api/installations", func(rw http.ResponseWriter, r *http.Request) {
		list, err := w.cfg.Installations.List(r.Context())
		if err != nil {
			httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"installations": list})
	})
	mux.HandleFunc("GET /admin/api/bindings/{id}", func(rw http.ResponseWriter, r *http.Request) {
		ws := r.PathValue("id")
		b, err := w.cfg.Bindings.Get(r.Context(), ws)
		if err != nil {
			httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
			return
		}
		apps, err := w.cfg.Installations.AppsAt(r.Context(), ws)
		if err != nil {
			httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
			return
		}
		trail, err := w.cfg.Bindings.AuditLog(r.Context(), ws)
		if err != nil {
			httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
			return
		}
		if b == nil {
			httpx.WriteJSON(rw, http.StatusNotFound, map[string]any{"error": "not_bound",
				"message": ws + " is not connected to an org (apps installed: " + itoa(len(apps)) + "); a user connects it by running " + w.cfg.PlatformCommand + " connect",
				"audit":   trail})
			return
		}
		var history []any
		if p, err := w.cfg.Bindings.History(r.Context(), ws, b.OrgID); err == nil && p != nil {
			history = append(history, map[string]any{"org_id": b.OrgID, "first_connected_by": p})
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"binding": b, "history": history, "apps": apps, "audit": trail})
	})
	mux.HandleFunc("POST /admin/api/bindings/{id}/uninstall", func(rw http.ResponseWriter, r *http.Request) {
		res, err := adm.Unbind(r.Context(), r.PathValue("id"), r.URL.Query().Get("app"))
		if err != nil {
			writeAdminError(rw, err)
			return
		}
		status := http.StatusOK
		if len(res.Uninstalled) > 0 {
			status = http.StatusAccepted // Slack's events finish it
		}
		httpx.WriteJSON(rw, status, res)
	})
	mux.HandleFunc("POST /admin/api/bindings/{id}/invalidate", func(rw http.ResponseWriter, r *http.Request) {
		var body struct {
			Reason string `json:"reason"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			httpx.WriteJSONError(rw, http.StatusBadRequest, "bad_request", "the body must be JSON like {\"reason\": \"…\"} (or empty): "+err.Error())
			return
		}
		b, changed, err := adm.Invalidate(r.Context(), r.PathValue("id"), body.Reason)
		if err != nil {
			writeAdminError(rw, err)
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"binding": b, "changed": changed})
	})
	mux.HandleFunc("DELETE /admin/api/bindings/{id}/mappings", func(rw http.ResponseWriter, r *http.Request) {
		deleted, err := adm.DeleteMappings(r.Context(), r.PathValue("id"), r.URL.Query().Get("org"))
		if err != nil {
			writeAdminError(rw, err)
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"deleted": deleted})
	})
	mux.HandleFunc("DELETE /admin/api/orgs/{org}/mappings", func(rw http.ResponseWriter, r *http.Request) {
		deleted, err := adm.DeleteMappings(r.Context(), "", r.PathValue("org"))
		if err != nil {
			writeAdminError(rw, err)
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"deleted": deleted})
	})
	return mux
}

// writeAdminError answers err as the admin API's JSON error.
func writeAdminError(rw http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotBound), errors.Is(err, ErrNothingToUnbind), errors.Is(err, ErrAppNotInstalled):
		httpx.WriteJSONError(rw, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrNoFilter):
		httpx.WriteJSONError(rw, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, store.ErrNotObtained):
		httpx.WriteJSONError(rw, http.StatusConflict, "busy", "the workspace is being changed right now; try again in a few seconds")
	default:
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "failed", err.Error())
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
