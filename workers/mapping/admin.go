package mapping

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/internal/httpx"
)

// Import results, one per row.
const (
	ResultOK               = "ok"
	ResultInvalidRow       = "invalid_row"
	ResultInvalidOrgUser   = "invalid_org_user"
	ResultInvalidSlackUser = "invalid_slack_user"
	ResultAlreadyMapped    = "already_mapped"
	// ResultRetry: the row could not be checked or stored now (Slack rate
	// limit or outage, Redis unavailable); import it again later.
	ResultRetry = "retry"
)

// ImportRow is one mapping to import.
type ImportRow struct {
	Workspace   string `json:"workspace"`
	SlackUserID string `json:"slack_user_id"`
	OrgID       string `json:"org_id"`
	OrgUserID   string `json:"org_user_id"`
	Username    string `json:"username,omitempty"`
}

// RowResult is the outcome of one imported row.
type RowResult struct {
	Row int `json:"row"`
	ImportRow
	Result    string `json:"result"`
	Message   string `json:"message,omitempty"`
	MappingID string `json:"mapping_id,omitempty"`
}

// csvHeader is the column order of CSV import and export.
var csvHeader = []string{"workspace", "slack_user_id", "org_id", "org_user_id", "username"}

// maxImportBytes caps an import body.
const maxImportBytes = 8 << 20

// ParseCSV reads mapping rows: a header naming at least workspace,
// slack_user_id, org_id and org_user_id (any order; username optional), then
// one row per mapping.
func ParseCSV(r io.Reader) ([]ImportRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: CSV has no header row (%v)", ErrBadRequest, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, need := range csvHeader[:4] {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%w: CSV header lacks column %q (want %s)", ErrBadRequest, need, strings.Join(csvHeader, ","))
		}
	}
	get := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var rows []ImportRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: CSV: %v", ErrBadRequest, err)
		}
		if len(rows) >= 100000 {
			return nil, fmt.Errorf("%w: at most 100000 rows per import", ErrBadRequest)
		}
		rows = append(rows, ImportRow{Workspace: get(rec, "workspace"), SlackUserID: get(rec, "slack_user_id"),
			OrgID: get(rec, "org_id"), OrgUserID: get(rec, "org_user_id"), Username: get(rec, "username")})
	}
}

// validOrgID reports whether s looks like a Salesforce id with prefix.
func validOrgID(s, prefix string) bool {
	if (len(s) != 15 && len(s) != 18) || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func validSlackID(s string) bool {
	if len(s) < 2 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Import imports rows, each on its own, and returns one result per row. Each
// workspace's Slack users are listed once ([SlackDirectory]), not looked up
// row by row.
func (w *Worker) Import(ctx context.Context, rows []ImportRow) []RowResult {
	out := make([]RowResult, len(rows))
	dirs := map[string]*slackDir{}
	for i, r := range rows {
		res := RowResult{Row: i + 1, ImportRow: r}
		res.Result, res.Message, res.MappingID = w.importRow(ctx, r, dirs)
		out[i] = res
	}
	return out
}

// slackDir is one workspace's Slack users for an import, or why they are not known.
type slackDir struct {
	users map[string]bool
	err   error
}

func (w *Worker) slackDir(ctx context.Context, ws string, dirs map[string]*slackDir) *slackDir {
	d, ok := dirs[ws]
	if !ok {
		d = &slackDir{}
		d.users, d.err = w.cfg.SlackUsers.SlackUsers(ctx, ws)
		dirs[ws] = d
	}
	return d
}

func (w *Worker) importRow(ctx context.Context, r ImportRow, dirs map[string]*slackDir) (result, msg, id string) {
	switch {
	case r.Workspace == "" || r.SlackUserID == "" || r.OrgID == "" || r.OrgUserID == "":
		return ResultInvalidRow, "workspace, slack_user_id, org_id and org_user_id are all required", ""
	case !validOrgID(r.OrgID, "00D"):
		return ResultInvalidRow, "org_id is not an org id (00D…, 15 or 18 characters)", ""
	case !validOrgID(r.OrgUserID, "005"):
		return ResultInvalidOrgUser, "org_user_id is not a user id (005…, 15 or 18 characters)", ""
	case !validSlackID(r.SlackUserID):
		return ResultInvalidSlackUser, "slack_user_id is not a Slack user id (U… or W…)", ""
	}
	if w.cfg.Bindings != nil {
		bound, err := w.cfg.Bindings.BoundOrg(ctx, r.Workspace)
		if err != nil {
			return ResultRetry, "could not read the workspace's binding (" + err.Error() + "); import the row again later", ""
		}
		if bound != r.OrgID {
			return ResultInvalidOrgUser, fmt.Sprintf("workspace %s is not connected to org %s, so its users cannot be mapped to it", r.Workspace, r.OrgID), ""
		}
	}
	if w.cfg.SlackUsers != nil {
		d := w.slackDir(ctx, r.Workspace, dirs)
		switch {
		case errors.Is(d.err, ErrNoSlackApp):
			return ResultInvalidSlackUser, d.err.Error(), ""
		case d.err != nil:
			return ResultRetry, "Slack's users could not be listed now (" + d.err.Error() + "); import the row again later", ""
		}
		active, known := d.users[r.SlackUserID]
		switch {
		case !known:
			return ResultInvalidSlackUser, fmt.Sprintf("Slack does not know user %s in %s", r.SlackUserID, r.Workspace), ""
		case !active:
			return ResultInvalidSlackUser, fmt.Sprintf("Slack user %s is deactivated", r.SlackUserID), ""
		}
	}
	m, err := w.cfg.Store.Connect(ctx, &Mapping{Workspace: r.Workspace, SlackUserID: r.SlackUserID, OrgID: r.OrgID,
		OrgUserID: r.OrgUserID, Username: r.Username, Source: "import"})
	var ae *AssociatedError
	var te *TakenError
	switch {
	case err == nil:
		return ResultOK, "", m.ID
	case errors.Is(err, ErrAlreadyMapped):
		return ResultAlreadyMapped, "this Slack user already has a mapping in this workspace", ""
	case errors.As(err, &te):
		return ResultAlreadyMapped, "this org user is already mapped to Slack user " + te.SlackUserID, ""
	case errors.As(err, &ae):
		return ResultAlreadyMapped, "this Slack user is associated with org user " + ae.OrgUserID + " in this org", ""
	case errors.Is(err, ErrBadRequest):
		return ResultInvalidRow, err.Error(), ""
	}
	return ResultRetry, "the mapping could not be stored now (" + err.Error() + "); import the row again later", ""
}

// AdminHandler serves the mappings admin API (mount it behind httpx.AdminOnly):
//
//	GET    /admin/api/mappings?team=&org=&org_user=&slack_user=
//	DELETE /admin/api/mappings/{id}
//	POST   /admin/api/mappings/import     (text/csv or application/json: [ImportRow…])
//	GET    /admin/api/mappings/export?format=csv|json&team=&org=
func (w *Worker) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/api/mappings", w.adminList)
	mux.HandleFunc("DELETE /admin/api/mappings/{id}", w.adminDelete)
	mux.HandleFunc("POST /admin/api/mappings/import", w.adminImport)
	mux.HandleFunc("GET /admin/api/mappings/export", w.adminExport)
	return mux
}

func filterFrom(r *http.Request) Filter {
	q := r.URL.Query()
	return Filter{Workspace: q.Get("team"), OrgID: q.Get("org"), OrgUserID: q.Get("org_user"), SlackUserID: q.Get("slack_user")}
}

func (w *Worker) adminList(rw http.ResponseWriter, r *http.Request) {
	list, err := w.cfg.Store.List(r.Context(), filterFrom(r))
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	httpx.WriteJSON(rw, http.StatusOK, map[string]any{"mappings": list})
}

func (w *Worker) adminDelete(rw http.ResponseWriter, r *http.Request) {
	m, err := w.cfg.Store.DeleteByID(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.WriteJSONError(rw, http.StatusNotFound, "not_found", "no mapping has id "+r.PathValue("id")+"; list them with GET /admin/api/mappings")
	case err != nil:
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
	default:
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"deleted": m})
	}
}

// importWriteTimeout is how long an import may take to answer: longer than
// the HTTP server's WriteTimeout, as it lists each workspace's Slack users.
const importWriteTimeout = 5 * time.Minute

func (w *Worker) adminImport(rw http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(rw).SetWriteDeadline(time.Now().Add(importWriteTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxImportBytes))
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("import bodies are capped at %d bytes; split the file", maxImportBytes))
		return
	}
	var rows []ImportRow
	ct := r.Header.Get("Content-Type")
	if strings.Contains(ct, "json") || (len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '[') {
		if err = json.Unmarshal(body, &rows); err != nil {
			err = fmt.Errorf("%w: JSON body must be an array of {workspace, slack_user_id, org_id, org_user_id}: %v", ErrBadRequest, err)
		}
	} else {
		rows, err = ParseCSV(bytes.NewReader(body))
	}
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusBadRequest, "bad_import", err.Error())
		return
	}
	res := w.Import(r.Context(), rows)
	counts := map[string]int{}
	for _, x := range res {
		counts[x.Result]++
	}
	status := http.StatusOK
	if len(res) > 0 && counts[ResultRetry] == len(res) {
		// Nothing could be checked or stored: Slack or Redis is unavailable.
		status = http.StatusServiceUnavailable
	}
	httpx.WriteJSON(rw, status, map[string]any{"results": res, "counts": counts})
}

func (w *Worker) adminExport(rw http.ResponseWriter, r *http.Request) {
	list, err := w.cfg.Store.List(r.Context(), filterFrom(r))
	if err != nil {
		httpx.WriteJSONError(rw, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	if r.URL.Query().Get("format") == "json" {
		httpx.WriteJSON(rw, http.StatusOK, list)
		return
	}
	rw.Header().Set("Content-Type", "text/csv; charset=utf-8")
	rw.Header().Set("Content-Disposition", `attachment; filename="mappings.csv"`)
	cw := csv.NewWriter(rw)
	_ = cw.Write(CSVHeader())
	for _, m := range list {
		_ = cw.Write(CSVRecord(m))
	}
	cw.Flush()
}

// CSVHeader is the header row of the mappings CSV that export writes and
// [ParseCSV] reads.
func CSVHeader() []string { return slices.Clone(csvHeader) }

// CSVRecord is m as a row of the mappings CSV, in [CSVHeader]'s order.
func CSVRecord(m *Mapping) []string {
	return []string{m.Workspace, m.SlackUserID, m.OrgID, m.OrgUserID, m.Username}
}
