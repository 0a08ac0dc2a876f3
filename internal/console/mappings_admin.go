package console

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// mappingPage is how many mappings one page shows.
const mappingPage = 50

// maxImportBytes caps an uploaded mappings CSV (as the admin API does).
const maxImportBytes = 8 << 20

// MappingImporter imports mapping rows, checking each against Slack and the
// workspace's binding (a *mapping.Worker).
type MappingImporter interface {
	Import(ctx context.Context, rows []mapping.ImportRow) []mapping.RowResult
}

// Installed tells which apps are installed in a workspace (a *store.Installations).
type Installed interface {
	AppsAt(ctx context.Context, tenant string) ([]string, error)
}

// adminRoutes are the org admin's pages beside provisioning: the org's
// workspaces and mappings. Each exists once per org (/orgs/{org}/…); the
// short paths send an org admin to their org and show an operator every org.
func (c *Console) adminRoutes(m *http.ServeMux) {
	if c.cfg.Bindings != nil {
		m.HandleFunc("GET "+Prefix+"workspaces", c.handle(roleAdmin, c.workspacesIndex))
		m.HandleFunc("GET "+Prefix+"orgs/{org}/workspaces", c.org(c.workspacesPage))
	}
	if c.cfg.Mappings == nil {
		return
	}
	p := Prefix + "orgs/{org}/mappings"
	m.HandleFunc("GET "+Prefix+"mappings", c.handle(roleAdmin, c.mappingsIndex))
	m.HandleFunc("GET "+p, c.org(c.mappingsPage))
	m.HandleFunc("GET "+p+"/export.csv", c.org(c.mappingsExport))
	m.HandleFunc("GET "+p+"/delete", c.org(c.mappingsDeleteConfirm))
	m.HandleFunc("POST "+p+"/delete", c.org(c.mappingsDelete))
	m.HandleFunc("POST "+p+"/{id}/delete", c.org(c.mappingDeleteOne))
	if c.cfg.MappingImport != nil {
		m.HandleFunc("GET "+p+"/import", c.org(c.mappingsImportPage))
		m.HandleFunc("POST "+p+"/import", c.org(c.mappingsImport))
	}
}

// workspaceRow is one workspace of an org, as the workspaces page shows it.
type workspaceRow struct {
	Scope, OrgID, OrgName string
	// Status is bound, expired (the org refused its tokens), uninstalled
	// (no app of orgbridge is installed any more) or disconnected (mappings
	// were made there once; it is bound to no org now).
	Status, Reason                string
	ConnectedBy, ConnectedBySlack string
	ConnectedAt, InvalidAt        time.Time
	Apps                          []string
	AppsKnown                     bool
}

// workspacesIndex: an org admin goes to their org's page; an operator sees
// every org's workspaces, or one org's with ?org=.
func (c *Console) workspacesIndex(w http.ResponseWriter, r *http.Request, s *Session) {
	if !s.Operator {
		http.Redirect(w, r, Prefix+"orgs/"+s.org15()+"/workspaces", http.StatusSeeOther)
		return
	}
	if org := strings.TrimSpace(r.URL.Query().Get("org")); org != "" {
		if !events.ValidOrgID(org) {
			c.fail(w, r, http.StatusBadRequest, "No such org", "The org id must be 15 or 18 letters and digits starting 00D.")
			return
		}
		http.Redirect(w, r, Prefix+"orgs/"+org+"/workspaces", http.StatusSeeOther)
		return
	}
	c.renderWorkspaces(w, r, s, "")
}

func (c *Console) workspacesPage(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	c.renderWorkspaces(w, r, s, org)
}

// renderWorkspaces shows the workspaces of org (every org when empty).
func (c *Console) renderWorkspaces(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	bs, err := c.cfg.Bindings.List(ctx)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	var rows []workspaceRow
	seen := map[string]bool{}
	for _, b := range bs {
		if org != "" && !sameOrg(b.OrgID, org) {
			continue
		}
		seen[b.Scope] = true
		rows = append(rows, bindingRow(b))
	}
	if org != "" && c.cfg.Mappings != nil {
		// workspaces the org had mappings in and is no longer bound to
		ws, err := c.cfg.Mappings.OrgWorkspaces(ctx, org)
		if err != nil {
			c.internal(w, r, err)
			return
		}
		for _, id := range ws {
			if !seen[id] {
				rows = append(rows, workspaceRow{Scope: id, OrgID: org, Status: "disconnected",
					Reason: "It is bound to no org now (uninstalled, or connected to another org); its old mappings may remain."})
			}
		}
	}
	if c.cfg.Installations != nil {
		for i := range rows {
			apps, err := c.cfg.Installations.AppsAt(ctx, rows[i].Scope)
			if err != nil {
				c.internal(w, r, err)
				return
			}
			slices.Sort(apps)
			rows[i].Apps, rows[i].AppsKnown = apps, true
			if len(apps) == 0 {
				rows[i].Status = "uninstalled"
				if rows[i].Reason == "" {
					rows[i].Reason = "No app of orgbridge is installed in this workspace any more."
				}
			}
		}
	}
	slices.SortStableFunc(rows, func(a, b workspaceRow) int {
		if n := strings.Compare(a.OrgID, b.OrgID); org == "" && n != 0 {
			return n
		}
		return strings.Compare(a.Scope, b.Scope)
	})
	c.render(w, r, http.StatusOK, "workspaces", s, map[string]any{"Title": "Workspaces", "Org": org, "Rows": rows,
		"HasMappings": c.cfg.Mappings != nil})
}

func bindingRow(b *binding.Binding) workspaceRow {
	row := workspaceRow{Scope: b.Scope, OrgID: b.OrgID, OrgName: b.OrgName, Status: "bound", ConnectedBy: b.ConnectedByUsername,
		ConnectedBySlack: b.ConnectedBySlack, ConnectedAt: b.ConnectedAt, InvalidAt: b.InvalidAt}
	if !b.Valid {
		row.Status, row.Reason = "expired", b.InvalidReason
		if row.Reason == "" {
			row.Reason = "The org no longer accepts this workspace's connection."
		}
	}
	return row
}

// mappingFilter reads the mapping filters of the query (or form): team,
// slack_user and org_user (an org user id 005…, or a username).
func mappingFilter(r *http.Request, org string) (mapping.Filter, map[string]string) {
	get := func(k string) string { return strings.TrimSpace(r.FormValue(k)) }
	f := mapping.Filter{OrgID: org, Workspace: get("team"), SlackUserID: get("slack_user")}
	if ou := get("org_user"); ou != "" {
		if strings.HasPrefix(ou, "005") && !strings.Contains(ou, "@") {
			f.OrgUserID = ou
		} else {
			f.Username = ou
		}
	}
	return f, map[string]string{"team": get("team"), "slack_user": get("slack_user"), "org_user": get("org_user")}
}

func filtered(f mapping.Filter) bool {
	return f.Workspace != "" || f.SlackUserID != "" || f.OrgUserID != "" || f.Username != ""
}

// mappingsIndex: an org admin goes to their org's mappings; an operator
// sees every org's, or one org's with ?org=.
func (c *Console) mappingsIndex(w http.ResponseWriter, r *http.Request, s *Session) {
	q := r.URL.Query()
	if !s.Operator {
		http.Redirect(w, r, Prefix+"orgs/"+s.org15()+"/mappings"+keepQuery(q, "team", "slack_user", "org_user"), http.StatusSeeOther)
		return
	}
	if org := strings.TrimSpace(q.Get("org")); org != "" {
		if !events.ValidOrgID(org) {
			c.fail(w, r, http.StatusBadRequest, "No such org", "The org id must be 15 or 18 letters and digits starting 00D.")
			return
		}
		http.Redirect(w, r, Prefix+"orgs/"+org+"/mappings"+keepQuery(q, "team", "slack_user", "org_user"), http.StatusSeeOther)
		return
	}
	c.renderMappings(w, r, s, "")
}

// keepQuery is the query of the keys given that q has, or "".
func keepQuery(q map[string][]string, keys ...string) string {
	var parts []string
	for _, k := range keys {
		if v := strings.TrimSpace(firstOf(q[k])); v != "" {
			parts = append(parts, urlQueryEscape(k)+"="+urlQueryEscape(v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "?" + strings.Join(parts, "&")
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (c *Console) mappingsPage(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	c.renderMappings(w, r, s, org)
}

// renderMappings shows one page of org's mappings (every org's when empty).
func (c *Console) renderMappings(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f, form := mappingFilter(r, org)
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(0, offset)
	rows, total, err := c.cfg.Mappings.Page(ctx, f, offset, mappingPage)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	data := map[string]any{"Title": "Mappings", "Org": org, "Rows": rows, "Total": total, "Offset": offset, "Form": form,
		"Filtered": filtered(f), "CanImport": c.cfg.MappingImport != nil}
	data["Base"] = Prefix + "mappings"
	if org != "" {
		data["Base"] = Prefix + "orgs/" + org + "/mappings"
	}
	data["HasNext"], data["Next"] = offset+mappingPage < total, offset+mappingPage
	data["HasPrev"], data["Prev"] = offset > 0, max(0, offset-mappingPage)
	q := r.URL.Query()
	if n := q.Get("deleted"); n != "" {
		data["Deleted"], _ = strconv.Atoi(n)
		data["DeletedNotice"] = true
	}
	c.render(w, r, http.StatusOK, "mappings", s, data)
}

// mappingsExport writes the org's mappings that match the filters as the
// admin API's CSV (which import reads back).
func (c *Console) mappingsExport(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	f, _ := mappingFilter(r, org)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="mappings-%s.csv"`, org))
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write(mapping.CSVHeader())
	err := c.cfg.Mappings.Scan(ctx, f, func(m *mapping.Mapping) error {
		_ = cw.Write(mapping.CSVRecord(m))
		return cw.Error()
	})
	cw.Flush()
	if err != nil {
		// the header is sent: the download ends short, the log says why
		c.log.Error("console: exporting mappings", "org", org, "error", err)
	}
}

// mappingsDeleteConfirm is the confirmation step of a bulk delete: what
// matches the filters, how many.
func (c *Console) mappingsDeleteConfirm(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f, form := mappingFilter(r, org)
	n, err := c.cfg.Mappings.Count(ctx, f)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "mappings_delete", s, map[string]any{"Title": "Delete mappings", "Org": org, "Count": n, "Form": form,
		"Filtered": filtered(f)})
}

// mappingsDelete deletes every mapping of the org matching the filters once
// confirmed; if the number changed since the confirmation page, it asks again.
func (c *Console) mappingsDelete(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	f, form := mappingFilter(r, org)
	n, err := c.cfg.Mappings.Count(ctx, f)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	if r.FormValue("confirm") != "yes" || r.FormValue("count") != strconv.Itoa(n) {
		data := map[string]any{"Title": "Delete mappings", "Org": org, "Count": n, "Form": form, "Filtered": filtered(f)}
		if r.FormValue("confirm") == "yes" {
			data["Changed"] = r.FormValue("count")
		}
		c.render(w, r, http.StatusConflict, "mappings_delete", s, data)
		return
	}
	deleted, err := c.cfg.Mappings.DeleteMatching(ctx, f)
	if err != nil {
		c.internal(w, r, fmt.Errorf("deleted %d mappings, then: %w", deleted, err))
		return
	}
	c.log.Info("console: mappings deleted", "org", org, "by", s.Name, "count", deleted, "team", f.Workspace, "slack_user", f.SlackUserID,
		"org_user", f.OrgUserID+f.Username)
	q := keepQuery(map[string][]string{"team": {form["team"]}, "slack_user": {form["slack_user"]}, "org_user": {form["org_user"]}}, "team", "slack_user", "org_user")
	sep := "?"
	if q != "" {
		sep = "&"
	}
	http.Redirect(w, r, Prefix+"orgs/"+org+"/mappings"+q+sep+"deleted="+strconv.Itoa(deleted), http.StatusSeeOther)
}

// mappingDeleteOne deletes one mapping of the org (its association stays).
func (c *Console) mappingDeleteOne(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	m, err := c.cfg.Mappings.GetByID(ctx, r.PathValue("id"))
	if err != nil || m == nil || !sameOrg(m.OrgID, org) {
		if err != nil && !errors.Is(err, mapping.ErrNotFound) {
			c.internal(w, r, err)
			return
		}
		c.fail(w, r, http.StatusNotFound, "No such mapping", "That mapping does not exist in this org (deleted already?).")
		return
	}
	if _, err := c.cfg.Mappings.DeleteByID(ctx, m.ID); err != nil && !errors.Is(err, mapping.ErrNotFound) {
		c.internal(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"orgs/"+org+"/mappings?deleted=1", http.StatusSeeOther)
}

func (c *Console) mappingsImportPage(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	c.render(w, r, http.StatusOK, "mappings_import", s, map[string]any{"Title": "Import mappings", "Org": org, "Header": strings.Join(mapping.CSVHeader(), ",")})
}

// importShown bounds the result rows an import page lists.
const importShown = 500

// mappingsImport imports an uploaded CSV into the org: rows of another org
// are refused before anything is checked; an empty org_id is this org.
func (c *Console) mappingsImport(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(5 * time.Minute))
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	data := map[string]any{"Title": "Import mappings", "Org": org, "Header": strings.Join(mapping.CSVHeader(), ",")}
	r.Body = http.MaxBytesReader(w, r.Body, maxImportBytes+64<<10)
	var body io.Reader
	if file, _, err := r.FormFile("file"); err == nil {
		defer file.Close()
		body = file
	} else if text := r.FormValue("csv"); strings.TrimSpace(text) != "" {
		body = strings.NewReader(text)
	}
	if body == nil {
		data["Problem"] = "Choose a CSV file (or paste its rows) to import."
		c.render(w, r, http.StatusBadRequest, "mappings_import", s, data)
		return
	}
	rows, err := mapping.ParseCSV(io.LimitReader(body, maxImportBytes))
	if err != nil {
		data["Problem"] = err.Error()
		c.render(w, r, http.StatusBadRequest, "mappings_import", s, data)
		return
	}
	results := make([]mapping.RowResult, len(rows))
	var mine []mapping.ImportRow
	var at []int
	for i, row := range rows {
		if row.OrgID == "" {
			row.OrgID = org
		}
		if !sameOrg(row.OrgID, org) {
			results[i] = mapping.RowResult{Row: i + 1, ImportRow: row, Result: mapping.ResultInvalidRow,
				Message: "org_id " + row.OrgID + " is not this org (" + org + "); import it from that org's page"}
			continue
		}
		mine, at = append(mine, row), append(at, i)
	}
	for j, res := range c.cfg.MappingImport.Import(ctx, mine) {
		res.Row = at[j] + 1
		results[at[j]] = res
	}
	counts := map[string]int{}
	var problems []mapping.RowResult
	for _, res := range results {
		counts[res.Result]++
		if res.Result != mapping.ResultOK && len(problems) < importShown {
			problems = append(problems, res)
		}
	}
	c.log.Info("console: mappings imported", "org", org, "by", s.Name, "rows", len(rows), "ok", counts[mapping.ResultOK])
	data["Done"], data["Rows"], data["Counts"], data["Problems"] = true, len(rows), counts, problems
	data["More"] = len(rows) - counts[mapping.ResultOK] - len(problems)
	c.render(w, r, http.StatusOK, "mappings_import", s, data)
}
