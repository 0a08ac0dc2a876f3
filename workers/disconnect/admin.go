package disconnect

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/httpx"
)

// adminHandler serves, under /admin/api/disconnects:
//
//	POST /admin/api/disconnects            body: a DisconnectRequest (schema_version and request_id optional) → 202
//	GET  /admin/api/disconnects            ?enterprise=&state=&limit= → {"requests": [...]}
//	GET  /admin/api/disconnects/{id}       → {"request": {...}, "audit": [...]}
//	GET  /admin/api/disconnects/audit      ?since=&enterprise=&request_id=&format=jsonl|csv
//
// Mount it behind httpx.AdminOnly.
func (w *Worker) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/api/disconnects", w.adminCreate)
	mux.HandleFunc("GET /admin/api/disconnects", w.adminList)
	mux.HandleFunc("GET /admin/api/disconnects/audit", w.adminAudit)
	mux.HandleFunc("GET /admin/api/disconnects/{id}", w.adminGet)
	return mux
}

func (w *Worker) adminCreate(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 64<<10))
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusRequestEntityTooLarge, "too_large", "the request body is over 64 KiB")
		return
	}
	var req events.DisconnectRequest
	if err := json.Unmarshal(body, &req); err != nil {
		httpx.WriteJSONError(rw, http.StatusBadRequest, events.DisconnectErrInvalidRequest, "the body is not a JSON disconnect request: "+err.Error())
		return
	}
	req, err = PublishRequest(r.Context(), w.js, req)
	var re *events.DisconnectRequestError
	switch {
	case errors.As(err, &re):
		httpx.WriteJSONError(rw, http.StatusBadRequest, re.Code, re.Error())
		return
	case err != nil:
		httpx.WriteJSONError(rw, http.StatusServiceUnavailable, "not_queued", "could not queue the request ("+err.Error()+"); try again")
		return
	}
	httpx.WriteJSON(rw, http.StatusAccepted, map[string]any{"request_id": req.RequestID, "enterprise_id": req.EnterpriseID,
		"status_url": "/admin/api/disconnects/" + req.RequestID})
}

func (w *Worker) adminList(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_limit", "limit must be a number from 1 to 10000")
			return
		}
		limit = n
	}
	recs, err := w.store.List(r.Context(), ListFilter{EnterpriseID: q.Get("enterprise"), State: events.DisconnectState(q.Get("state")), Limit: limit})
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	if recs == nil {
		recs = []Record{}
	}
	httpx.WriteJSON(rw, http.StatusOK, map[string]any{"requests": recs})
}

func (w *Worker) adminGet(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := w.store.Find(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		httpx.WriteJSONError(rw, http.StatusNotFound, "not_found", "no disconnect request "+id)
		return
	}
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	trail, err := w.store.Audit(r.Context(), AuditFilter{EnterpriseID: rec.EnterpriseID, RequestID: id})
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	httpx.WriteJSON(rw, http.StatusOK, map[string]any{"request": rec, "audit": trail})
}

func (w *Worker) adminAudit(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := ParseSince(q.Get("since"), time.Now())
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_since", err.Error())
		return
	}
	format := q.Get("format")
	if format == "" {
		format = FormatJSONL
	}
	if format != FormatJSONL && format != FormatCSV {
		httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_format", "format must be jsonl or csv")
		return
	}
	entries, err := w.store.Audit(r.Context(), AuditFilter{Since: since, EnterpriseID: q.Get("enterprise"), RequestID: q.Get("request_id")})
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	if format == FormatCSV {
		rw.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		rw.Header().Set("Content-Type", "application/x-ndjson")
	}
	_ = WriteAudit(rw, format, entries)
}
