package provisioning

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/httpx"
)

// IntegrationView is an integration as the admin API shows it: no secrets.
type IntegrationView struct {
	ID              string      `json:"id"`
	OrgID           string      `json:"org_id"`
	Status          Status      `json:"status"`
	Source          Source      `json:"source"`
	OrgAdmin        string      `json:"org_admin"`
	Settings        Settings    `json:"settings"`
	Pending         bool        `json:"pending"`
	SettingsVersion int         `json:"settings_version"`
	AppliedVersion  int         `json:"applied_version"`
	Quarantine      *Quarantine `json:"quarantine,omitempty"`
	CurrentRunID    string      `json:"current_run_id,omitempty"`
	LastRunID       string      `json:"last_run_id,omitempty"`
	NextRun         time.Time   `json:"next_run,omitzero"`
	Created         time.Time   `json:"created"`
	Updated         time.Time   `json:"updated"`
	Disconnected    time.Time   `json:"disconnected,omitzero"`
	// Connecting is set while a connect flow is under way (it can take a
	// while on a big org).
	Connecting *Connecting `json:"connecting,omitempty"`
}

// View is in without its secrets.
func (in *Integration) View() IntegrationView {
	v := IntegrationView{ID: in.ID, OrgID: in.OrgID, Status: in.Status, Source: in.Source, OrgAdmin: in.OrgAdmin,
		Settings: in.Settings, Pending: in.Pending(), SettingsVersion: in.SettingsVersion, AppliedVersion: in.AppliedVersion,
		Quarantine: in.Quarantine, CurrentRunID: in.CurrentRunID, LastRunID: in.LastRunID, Created: in.Created,
		Updated: in.Updated, Disconnected: in.Disconnected}
	if in.Status == StatusActive {
		base := in.LastScheduled
		if base.IsZero() {
			base = in.Created
		}
		v.NextRun = in.Settings.NextRun(base)
		if in.Quarantine != nil {
			v.NextRun = in.Quarantine.NextRetry
		}
	}
	return v
}

// AdminHandler serves, under /admin/api/provisioning/{org}:
//
//	GET  /admin/api/provisioning/{org}                         the integration (status, settings, pending, quarantine)
//	POST /admin/api/provisioning/{org}/connect                 {"replace":bool,"whole_grid":bool} → {"url": the connect page to open in a browser}
//	GET  /admin/api/provisioning/{org}/config                  the settings
//	PUT  /admin/api/provisioning/{org}/config                  new settings (applied at the next run) → the integration
//	POST /admin/api/provisioning/{org}/disconnect              stop syncing, forget the credentials (directory data stays)
//	GET  /admin/api/provisioning/{org}/groups?q=&limit=        the source's Slack groups matching q
//	POST /admin/api/provisioning/{org}/scope-count             {"groups":[…]} → who that scope provisions
//	POST /admin/api/provisioning/{org}/sync                    sync now → 202 {"run": …}
//	POST /admin/api/provisioning/{org}/preview                 a dry run → 202 {"run": …}
//	POST /admin/api/provisioning/{org}/resume                  lift a quarantine and sync now
//	GET  /admin/api/provisioning/{org}/runs?limit=             history, newest first
//	GET  /admin/api/provisioning/{org}/runs/{run}              one run with live progress
//	GET  /admin/api/provisioning/{org}/runs/{run}/report       ?outcome=&action=&field=&q=&offset=&limit=&format=json|csv
//	POST /admin/api/provisioning/{org}/runs/{run}/approve      apply held deactivations
//	POST /admin/api/provisioning/{org}/runs/{run}/reject       drop held deactivations
//
// Mount it behind httpx.AdminOnly.
func (w *Worker) AdminHandler(connectURL func(org string, replace, wholeGrid bool) (string, error)) http.Handler {
	mux := http.NewServeMux()
	p := "/admin/api/provisioning/{org}"
	mux.HandleFunc("GET "+p, w.orgOnly(w.adminGet))
	mux.HandleFunc("POST "+p+"/connect", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		var body struct {
			Replace   bool `json:"replace"`
			WholeGrid bool `json:"whole_grid"`
		}
		if !readJSON(rw, r, &body, true) {
			return
		}
		if connectURL == nil {
			httpx.WriteJSONError(rw, http.StatusServiceUnavailable, "connect_unavailable", "this process does not serve the connect pages")
			return
		}
		u, err := connectURL(org, body.Replace, body.WholeGrid)
		if err != nil {
			httpx.WriteJSONError(rw, http.StatusInternalServerError, "connect_failed", err.Error())
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]string{"url": u})
	}))
	mux.HandleFunc("GET "+p+"/config", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		in, err := w.store.Integration(r.Context(), org)
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, in.Settings)
	}))
	mux.HandleFunc("PUT "+p+"/config", w.orgOnly(w.adminPutConfig))
	mux.HandleFunc("POST "+p+"/disconnect", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		in, err := w.Disconnect(r.Context(), org)
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, in.View())
	}))
	mux.HandleFunc("GET "+p+"/groups", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		limit, ok := intParam(rw, r, "limit", 20, 1, 1000)
		if !ok {
			return
		}
		gs, err := w.SearchGroups(r.Context(), org, r.URL.Query().Get("q"), limit)
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"groups": gs})
	}))
	mux.HandleFunc("POST "+p+"/scope-count", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		var body struct {
			Groups []string `json:"groups"`
		}
		if !readJSON(rw, r, &body, true) {
			return
		}
		n, err := w.CountScope(r.Context(), org, body.Groups)
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, n)
	}))
	mux.HandleFunc("POST "+p+"/sync", w.orgOnly(w.adminStart(events.TriggerSyncNow, false)))
	mux.HandleFunc("POST "+p+"/preview", w.orgOnly(w.adminStart(events.TriggerPreview, true)))
	mux.HandleFunc("POST "+p+"/resume", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		run, err := w.Resume(r.Context(), org, "admin API")
		if errors.Is(err, ErrRunInProgress) {
			httpx.WriteJSON(rw, http.StatusOK, map[string]any{"run": run, "message": "quarantine lifted; a sync is already pending or running"})
			return
		}
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusAccepted, map[string]any{"run": run})
	}))
	mux.HandleFunc("GET "+p+"/runs", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		limit, ok := intParam(rw, r, "limit", 50, 1, 1000)
		if !ok {
			return
		}
		runs, err := w.store.Runs(r.Context(), org, limit)
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"runs": runs})
	}))
	mux.HandleFunc("GET "+p+"/runs/{run}", w.orgOnly(func(rw http.ResponseWriter, r *http.Request, org string) {
		run, err := w.store.Run(r.Context(), org, r.PathValue("run"))
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"run": run, "report_available": run.Status != events.RunPending && run.Status != events.RunRunning})
	}))
	mux.HandleFunc("GET "+p+"/runs/{run}/report", w.orgOnly(w.adminReport))
	mux.HandleFunc("POST "+p+"/runs/{run}/approve", w.orgOnly(w.adminDecide(true)))
	mux.HandleFunc("POST "+p+"/runs/{run}/reject", w.orgOnly(w.adminDecide(false)))
	return mux
}

// orgOnly checks the {org} path value before anything uses it as a key.
func (w *Worker) orgOnly(h func(rw http.ResponseWriter, r *http.Request, org string)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		org := r.PathValue("org")
		if !events.ValidOrgID(org) {
			httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_org", "the org id must be 15 or 18 letters and digits starting 00D")
			return
		}
		if run := r.PathValue("run"); run != "" && !events.ValidRunID(run) {
			httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_run", "a run id is 1-64 letters, digits, '-' or '_'")
			return
		}
		h(rw, r, org)
	}
}

// writeErr answers err (when not nil) with the status it deserves.
func writeErr(rw http.ResponseWriter, err error) bool {
	var se *SettingsError
	switch {
	case err == nil:
		return false
	case errors.As(err, &se):
		httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_settings", se.Error())
	case errors.Is(err, ErrNoIntegration), errors.Is(err, ErrNoRun):
		httpx.WriteJSONError(rw, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrNotActive), errors.Is(err, ErrAlreadyActive), errors.Is(err, ErrNothingHeld):
		httpx.WriteJSONError(rw, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, ErrRunNotFinished):
		httpx.WriteJSONError(rw, http.StatusConflict, "run_not_finished", err.Error())
	default:
		var sl *slackError
		if errors.As(err, &sl) {
			httpx.WriteJSONError(rw, http.StatusBadGateway, "slack_error", err.Error()+": "+sl.advice())
			return true
		}
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "internal", err.Error())
	}
	return true
}

func readJSON(rw http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	b, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 256<<10))
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusRequestEntityTooLarge, "too_large", "the request body is over 256 KiB")
		return false
	}
	if optional && len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_json", "the body is not the expected JSON: "+err.Error())
		return false
	}
	return true
}

func intParam(rw http.ResponseWriter, r *http.Request, name string, def, lo, hi int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_"+name, name+" must be a number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
		return 0, false
	}
	return n, true
}

func (w *Worker) adminGet(rw http.ResponseWriter, r *http.Request, org string) {
	conn, _ := w.ConnectingState(r.Context(), org)
	in, err := w.store.Integration(r.Context(), org)
	if errors.Is(err, ErrNoIntegration) && conn != nil {
		httpx.WriteJSON(rw, http.StatusOK, IntegrationView{OrgID: org, Status: StatusConnecting, Connecting: conn})
		return
	}
	if writeErr(rw, err) {
		return
	}
	v := in.View()
	v.Connecting = conn
	httpx.WriteJSON(rw, http.StatusOK, v)
}

func (w *Worker) adminPutConfig(rw http.ResponseWriter, r *http.Request, org string) {
	set := DefaultSettings()
	if !readJSON(rw, r, &set, false) {
		return
	}
	in, err := w.SaveSettings(r.Context(), org, set)
	if writeErr(rw, err) {
		return
	}
	httpx.WriteJSON(rw, http.StatusOK, in.View())
}

func (w *Worker) adminStart(trigger events.SyncTrigger, dry bool) func(rw http.ResponseWriter, r *http.Request, org string) {
	return func(rw http.ResponseWriter, r *http.Request, org string) {
		run, err := w.StartRun(r.Context(), org, trigger, "admin API", dry)
		if errors.Is(err, ErrRunInProgress) {
			httpx.WriteJSON(rw, http.StatusOK, map[string]any{"run": run, "message": "a sync is already pending or running"})
			return
		}
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusAccepted, map[string]any{"run": run})
	}
}

func (w *Worker) adminDecide(approve bool) func(rw http.ResponseWriter, r *http.Request, org string) {
	return func(rw http.ResponseWriter, r *http.Request, org string) {
		run, err := w.Decide(r.Context(), org, r.PathValue("run"), approve, "admin API")
		if writeErr(rw, err) {
			return
		}
		httpx.WriteJSON(rw, http.StatusAccepted, map[string]any{"run": run})
	}
}

func splitParam(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.URL.Query()[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (w *Worker) adminReport(rw http.ResponseWriter, r *http.Request, org string) {
	f := RowFilter{Outcomes: splitParam(r, "outcome"), Actions: splitParam(r, "action"), Fields: splitParam(r, "field"), Query: r.URL.Query().Get("q")}
	for _, o := range f.Outcomes {
		if !contains(Outcomes, o) {
			httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_outcome", "outcome must be one of "+strings.Join(Outcomes, ", "))
			return
		}
	}
	for _, a := range f.Actions {
		if !contains(Actions, a) {
			httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_action", "action must be one of "+strings.Join(Actions, ", "))
			return
		}
	}
	offset, ok := intParam(rw, r, "offset", 0, 0, 10_000_000)
	if !ok {
		return
	}
	limit, ok := intParam(rw, r, "limit", 500, 1, 10_000_000)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		httpx.WriteJSONError(rw, http.StatusBadRequest, "invalid_format", "format must be json or csv")
		return
	}
	run, rows, err := w.Report(r.Context(), org, r.PathValue("run"), f)
	if errors.Is(err, ErrRunNotFinished) {
		httpx.WriteJSON(rw, http.StatusConflict, map[string]any{"error": "run_not_finished", "message": err.Error(), "run": run})
		return
	}
	if writeErr(rw, err) {
		return
	}
	if format == "csv" {
		rw.Header().Set("Content-Type", "text/csv; charset=utf-8")
		rw.Header().Set("Content-Disposition", `attachment; filename="sync-report-`+run.ID+`.csv"`)
		_ = WriteCSV(rw, rows)
		return
	}
	total := len(rows)
	rows = rows[min(offset, total):min(offset+limit, total)]
	httpx.WriteJSON(rw, http.StatusOK, map[string]any{"run": run, "total": total, "offset": offset, "rows": rows})
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
