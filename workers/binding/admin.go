package binding

import (
	"net/http"

	"github.com/orgbridge/orgbridge/internal/httpx"
)

// AdminHandler serves the binding admin API (mount it behind httpx.AdminOnly):
//
//	GET /admin/api/installations                       every install, without tokens
//	GET /admin/api/bindings/{team_or_enterprise_id}    the binding, its history and the apps installed
func (w *Worker) AdminHandler() http.Handler {
	mux := http.NewServeMux()
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
		if b == nil {
			httpx.WriteJSONError(rw, http.StatusNotFound, "not_bound",
				ws+" is not connected to an org (apps installed: "+itoa(len(apps))+"); a user connects it by running "+w.cfg.PlatformCommand+" connect")
			return
		}
		var history []any
		if p, err := w.cfg.Bindings.History(r.Context(), ws, b.OrgID); err == nil && p != nil {
			history = append(history, map[string]any{"org_id": b.OrgID, "first_connected_by": p})
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"binding": b, "history": history, "apps": apps})
	})
	return mux
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
