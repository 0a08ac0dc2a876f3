package console

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// reportPage is how many report rows one page shows.
const reportPage = 100

func (c *Console) provisioningRoutes(m *http.ServeMux) {
	if c.cfg.Provisioning == nil {
		return
	}
	p := Prefix + "orgs/{org}/provisioning"
	m.HandleFunc("GET "+Prefix+"provisioning", c.handle(roleAdmin, c.provisioningIndex))
	m.HandleFunc("GET "+p, c.org(c.provisioningPage))
	m.HandleFunc("GET "+p+"/slack", c.org(c.provisioningSlack))
	m.HandleFunc("POST "+p+"/connect", c.org(c.provisioningConnect))
	m.HandleFunc("POST "+p+"/config", c.org(c.provisioningSave))
	m.HandleFunc("GET "+p+"/groups", c.org(c.provisioningGroups))
	m.HandleFunc("GET "+p+"/chip", c.org(c.provisioningChip))
	m.HandleFunc("GET "+p+"/teamrow", c.org(c.provisioningTeamRow))
	m.HandleFunc("POST "+p+"/sync", c.org(c.provisioningStart(events.TriggerSyncNow, false)))
	m.HandleFunc("POST "+p+"/preview", c.org(c.provisioningStart(events.TriggerPreview, true)))
	m.HandleFunc("POST "+p+"/resume", c.org(c.provisioningResume))
	m.HandleFunc("GET "+p+"/disconnect", c.org(c.provisioningDisconnectPage))
	m.HandleFunc("POST "+p+"/disconnect", c.org(c.provisioningDisconnect))
	m.HandleFunc("GET "+p+"/runs", c.org(c.provisioningRuns))
	m.HandleFunc("GET "+p+"/runs/{run}", c.org(c.provisioningRun))
	m.HandleFunc("GET "+p+"/runs/{run}/report.csv", c.org(c.provisioningCSV))
	m.HandleFunc("POST "+p+"/runs/{run}/approve", c.org(c.provisioningDecide(true)))
	m.HandleFunc("POST "+p+"/runs/{run}/reject", c.org(c.provisioningDecide(false)))
}

// org wraps a page of one org: an org admin of that org, or an operator.
func (c *Console) org(h func(w http.ResponseWriter, r *http.Request, s *Session, org string)) http.HandlerFunc {
	return c.handle(roleAdmin, func(w http.ResponseWriter, r *http.Request, s *Session) {
		org := r.PathValue("org")
		if !events.ValidOrgID(org) {
			c.fail(w, r, http.StatusBadRequest, "No such org", "The org id must be 15 or 18 letters and digits starting 00D.")
			return
		}
		if run := r.PathValue("run"); run != "" && !events.ValidRunID(run) {
			c.fail(w, r, http.StatusBadRequest, "No such run", "A run id is letters, digits, '-' and '_'.")
			return
		}
		if !c.orgAllowed(s, org) {
			c.fail(w, r, http.StatusForbidden, "Not your org", "You can see and change only your own org ("+s.OrgID+").")
			return
		}
		h(w, r, s, org)
	})
}

func (c *Console) provisioningIndex(w http.ResponseWriter, r *http.Request, s *Session) {
	if !s.Operator {
		http.Redirect(w, r, Prefix+"orgs/"+s.org15()+"/provisioning", http.StatusSeeOther)
		return
	}
	if org := r.URL.Query().Get("org"); events.ValidOrgID(org) {
		http.Redirect(w, r, Prefix+"orgs/"+org+"/provisioning", http.StatusSeeOther)
		return
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	orgs, err := c.cfg.Provisioning.Store().Orgs(ctx)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	slices.Sort(orgs)
	var list []provisioning.IntegrationView
	for _, org := range orgs {
		if in, err := c.cfg.Provisioning.Store().Integration(ctx, org); err == nil {
			list = append(list, in.View())
		}
	}
	c.render(w, r, http.StatusOK, "provisioning_index", s, map[string]any{"Title": "Provisioning", "Integrations": list})
}

// provisioningPage is Settings → Provisioning: connect, or the configuration.
func (c *Console) provisioningPage(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	pw := c.cfg.Provisioning
	conn, _ := pw.ConnectingState(ctx, org)
	in, err := pw.Store().Integration(ctx, org)
	data := map[string]any{"Title": "Provisioning", "Org": org, "Connecting": conn, "Saved": r.URL.Query().Get("saved") != "",
		"Notice": r.URL.Query().Get("notice")}
	switch {
	case errors.Is(err, provisioning.ErrNoIntegration):
		c.render(w, r, http.StatusOK, "provisioning_connect", s, data)
		return
	case err != nil:
		c.internal(w, r, err)
		return
	}
	v := in.View()
	data["In"] = v
	if in.Status != provisioning.StatusActive {
		c.render(w, r, http.StatusOK, "provisioning_connect", s, data)
		return
	}
	c.configPage(w, r, s, org, v, v.Settings, "", http.StatusOK, data)
}

// configPage renders the configuration form with set (the saved settings,
// or what the admin typed when saving failed).
func (c *Console) configPage(w http.ResponseWriter, r *http.Request, s *Session, org string, v provisioning.IntegrationView, set provisioning.Settings, problem string, status int, data map[string]any) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	pw := c.cfg.Provisioning
	if data == nil {
		data = map[string]any{"Title": "Provisioning", "Org": org}
	}
	data["In"], data["Set"], data["Problem"] = v, set, problem
	teams, err := pw.DirectoryTeams(ctx, org)
	if err != nil {
		data["TeamsError"] = err.Error()
	}
	data["Teams"] = teams
	groups, err := pw.SearchGroups(ctx, org, "", 10000)
	if err != nil {
		data["GroupsError"] = err.Error()
	}
	names := map[string]string{}
	for _, g := range groups {
		names[g.ID] = g.Name
	}
	data["GroupNames"] = names
	rows := slices.Clone(set.Teams)
	rows = append(rows, provisioning.TeamMapping{}) // one empty row to map another team
	data["TeamRows"] = rows
	if v.CurrentRunID != "" {
		if run, err := pw.Store().Run(ctx, org, v.CurrentRunID); err == nil && !run.Status.Final() {
			data["Current"] = run
		}
	}
	c.render(w, r, status, "provisioning_config", s, data)
}

func (c *Console) provisioningSlack(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	c.render(w, r, http.StatusOK, "provisioning_slack", s, map[string]any{"Title": "Connect to Slack", "Org": org,
		"Replace": r.URL.Query().Get("replace") != ""})
}

// provisioningConnect sends the admin into the connect flow (org, then Slack login).
func (c *Console) provisioningConnect(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	if c.cfg.ConnectURL == nil {
		c.fail(w, r, http.StatusServiceUnavailable, "Connecting is unavailable", "This console does not serve the connect pages.")
		return
	}
	u, err := c.cfg.ConnectURL(org, r.FormValue("replace") != "", r.FormValue("whole_grid") != "")
	if err != nil {
		c.internal(w, r, err)
		return
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// settingsFrom reads the configuration form.
func settingsFrom(r *http.Request) (provisioning.Settings, error) {
	if err := r.ParseForm(); err != nil {
		return provisioning.Settings{}, err
	}
	f := r.PostForm
	set := provisioning.DefaultSettings()
	set.Scope = provisioning.Scope(f.Get("scope"))
	set.Groups = cleanIDs(append(f["groups"], strings.Split(f.Get("groups_text"), ",")...))
	if set.Scope == provisioning.ScopeEveryone {
		set.Groups = nil
	}
	set.MapTeams = f.Get("map_teams") != ""
	for i := 0; i < 100; i++ {
		team := f.Get("team_" + strconv.Itoa(i))
		groups := cleanIDs(append(f["team_groups_"+strconv.Itoa(i)], strings.Split(f.Get("team_groups_text_"+strconv.Itoa(i)), ",")...))
		if team == "" && len(groups) == 0 {
			continue
		}
		set.Teams = append(set.Teams, provisioning.TeamMapping{TeamID: team, SlackGroups: groups})
	}
	if !set.MapTeams && len(set.Teams) == 0 {
		set.Teams = nil
	}
	set.ScheduleTime = f.Get("schedule_time")
	set.TimeZone = strings.TrimSpace(f.Get("time_zone"))
	set.AutoInvite = f.Get("auto_invite") != ""
	var err error
	if set.DeactivationLimit, err = strconv.Atoi(f.Get("deactivation_limit")); err != nil {
		return set, &provisioning.SettingsError{Field: "deactivation_limit", Msg: "must be a whole number"}
	}
	if set.DeactivationPercent, err = strconv.Atoi(f.Get("deactivation_percent")); err != nil {
		return set, &provisioning.SettingsError{Field: "deactivation_percent", Msg: "must be a whole number"}
	}
	return set, nil
}

func cleanIDs(in []string) []string {
	var out []string
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func (c *Console) provisioningSave(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	pw := c.cfg.Provisioning
	in, err := pw.Store().Integration(ctx, org)
	if err != nil {
		c.fail(w, r, http.StatusConflict, "Connect Slack first", err.Error())
		return
	}
	set, err := settingsFrom(r)
	if err == nil {
		_, err = pw.SaveSettings(ctx, org, set)
	}
	var se *provisioning.SettingsError
	switch {
	case errors.As(err, &se):
		c.configPage(w, r, s, org, in.View(), set, "Not saved — "+se.Field+": "+se.Msg, http.StatusBadRequest, nil)
		return
	case err != nil:
		c.internal(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"orgs/"+org+"/provisioning?saved=1", http.StatusSeeOther)
}

// provisioningGroups is the type-ahead: the source's groups matching q.
func (c *Console) provisioningGroups(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	q := r.URL.Query()
	var matches []provisioning.GroupMatch
	if strings.TrimSpace(q.Get("q")) != "" {
		var err error
		if matches, err = c.cfg.Provisioning.SearchGroups(ctx, org, q.Get("q"), 8); err != nil {
			c.fail(w, r, http.StatusBadGateway, "Slack groups unavailable", err.Error())
			return
		}
	}
	c.render(w, r, http.StatusOK, "provisioning_config", s, map[string]any{"Fragment": "suggestions", "Org": org, "Matches": matches,
		"Field": q.Get("field"), "Chips": q.Get("chips"), "Input": q.Get("input"), "List": q.Get("list")})
}

// provisioningChip is one chosen group (a hidden input and a remove
// button); the search box and its suggestions are emptied (out of band).
func (c *Console) provisioningChip(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	q := r.URL.Query()
	for _, k := range []string{"field", "chips", "input", "list"} {
		if !fieldName.MatchString(q.Get(k)) {
			c.fail(w, r, http.StatusBadRequest, "Bad request", k+" is not a form field name")
			return
		}
	}
	c.render(w, r, http.StatusOK, "provisioning_config", s, map[string]any{"Fragment": "chipadded", "Org": org, "Field": q.Get("field"),
		"Chips": q.Get("chips"), "Input": q.Get("input"), "List": q.Get("list"), "ID": q.Get("id"), "Name": q.Get("name")})
}

// fieldName bounds the form field and element names the fragments echo.
var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,40}$`)

// provisioningTeamRow is one more "Slack groups → team" row.
func (c *Console) provisioningTeamRow(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	i, _ := strconv.Atoi(r.URL.Query().Get("i"))
	teams, err := c.cfg.Provisioning.DirectoryTeams(ctx, org)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "Directory teams unavailable", err.Error())
		return
	}
	c.render(w, r, http.StatusOK, "provisioning_config", s, map[string]any{"Fragment": "teamrow", "Org": org, "I": i,
		"Row": provisioning.TeamMapping{}, "Teams": teams, "GroupNames": map[string]string{}})
}

func (c *Console) provisioningStart(trigger events.SyncTrigger, dry bool) func(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	return func(w http.ResponseWriter, r *http.Request, s *Session, org string) {
		ctx, cancel := withTimeout(r)
		defer cancel()
		run, err := c.cfg.Provisioning.StartRun(ctx, org, trigger, s.Name+" (console)", dry)
		if err != nil && !errors.Is(err, provisioning.ErrRunInProgress) {
			c.fail(w, r, http.StatusConflict, "The sync could not start", err.Error())
			return
		}
		http.Redirect(w, r, Prefix+"orgs/"+org+"/provisioning/runs/"+run.ID, http.StatusSeeOther)
	}
}

func (c *Console) provisioningResume(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	run, err := c.cfg.Provisioning.Resume(ctx, org, s.Name+" (console)")
	if err != nil && !errors.Is(err, provisioning.ErrRunInProgress) {
		c.fail(w, r, http.StatusConflict, "Could not resume", err.Error())
		return
	}
	http.Redirect(w, r, Prefix+"orgs/"+org+"/provisioning/runs/"+run.ID, http.StatusSeeOther)
}

func (c *Console) provisioningDisconnectPage(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	c.render(w, r, http.StatusOK, "provisioning_disconnect", s, map[string]any{"Title": "Disconnect Slack", "Org": org})
}

func (c *Console) provisioningDisconnect(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	if r.FormValue("confirm") != "yes" {
		c.fail(w, r, http.StatusBadRequest, "Not disconnected", "Tick the confirmation box to disconnect.")
		return
	}
	if _, err := c.cfg.Provisioning.Disconnect(ctx, org); err != nil {
		c.fail(w, r, http.StatusConflict, "Not disconnected", err.Error())
		return
	}
	http.Redirect(w, r, Prefix+"orgs/"+org+"/provisioning?notice=disconnected", http.StatusSeeOther)
}

func (c *Console) provisioningRuns(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	runs, err := c.cfg.Provisioning.Store().Runs(ctx, org, 200)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "provisioning_runs", s, map[string]any{"Title": "Sync history", "Org": org, "Runs": runs, "Now": c.cfg.Now()})
}

// reportFilter reads the report's filter from the query.
func reportFilter(r *http.Request) provisioning.RowFilter {
	q := r.URL.Query()
	f := provisioning.RowFilter{Query: q.Get("q")}
	for _, o := range q["outcome"] {
		if slices.Contains(provisioning.Outcomes, o) {
			f.Outcomes = append(f.Outcomes, o)
		}
	}
	for _, a := range q["action"] {
		if slices.Contains(provisioning.Actions, a) {
			f.Actions = append(f.Actions, a)
		}
	}
	for _, fl := range q["field"] {
		if fl != "" {
			f.Fields = append(f.Fields, fl)
		}
	}
	return f
}

// reportFields are the changed attributes the report filters on.
var reportFields = []string{"email", "givenName", "familyName", "displayName", "title", "photo", "userType", "active", "externalId", "userName", "team"}

func (c *Console) provisioningRun(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	pw := c.cfg.Provisioning
	f := reportFilter(r)
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(0, offset)
	run, rows, total, err := pw.ReportPage(ctx, org, r.PathValue("run"), f, offset, reportPage)
	data := map[string]any{"Title": "Sync report", "Org": org, "Run": run, "Filter": f, "Outcomes": provisioning.Outcomes,
		"Actions": provisioning.Actions, "Fields": reportFields, "Now": c.cfg.Now(), "Fragment": "progress"}
	switch {
	case errors.Is(err, provisioning.ErrNoRun):
		c.fail(w, r, http.StatusNotFound, "No such run", "There is no run "+r.PathValue("run")+" in this org.")
		return
	case errors.Is(err, provisioning.ErrRunNotFinished),
		err == nil && run.Status == events.RunAwaitingApproval && r.URL.Query().Get("decided") != "":
		// running, or an admin's decision not taken up by the worker yet: show progress
		data["Running"], data["Decided"] = true, r.URL.Query().Get("decided") != ""
		c.render(w, r, http.StatusOK, "provisioning_run", s, data)
		return
	case err != nil:
		c.internal(w, r, err)
		return
	}
	if r.Header.Get("HX-Request") != "" {
		// the progress poll of a run that has ended: reload the whole page
		w.Header().Set("HX-Refresh", "true")
	}
	data["Total"], data["Offset"], data["Rows"] = total, offset, rows
	if offset+reportPage < total {
		data["Next"] = offset + reportPage
	}
	if offset > 0 {
		data["Prev"] = max(0, offset-reportPage)
	}
	delete(data, "Fragment")
	c.render(w, r, http.StatusOK, "provisioning_run", s, data)
}

func (c *Console) provisioningCSV(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	run, rows, err := c.cfg.Provisioning.Report(ctx, org, r.PathValue("run"), reportFilter(r))
	switch {
	case errors.Is(err, provisioning.ErrRunNotFinished):
		c.fail(w, r, http.StatusConflict, "Not yet", "A report can be exported when its sync has ended.")
		return
	case errors.Is(err, provisioning.ErrNoRun):
		c.fail(w, r, http.StatusNotFound, "No such run", "There is no run "+r.PathValue("run")+".")
		return
	case err != nil:
		c.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sync-report-%s.csv"`, run.ID))
	_ = provisioning.WriteCSV(w, rows)
}

func (c *Console) provisioningDecide(approve bool) func(w http.ResponseWriter, r *http.Request, s *Session, org string) {
	return func(w http.ResponseWriter, r *http.Request, s *Session, org string) {
		ctx, cancel := withTimeout(r)
		defer cancel()
		if _, err := c.cfg.Provisioning.Decide(ctx, org, r.PathValue("run"), approve, s.Name+" (console)"); err != nil {
			c.fail(w, r, http.StatusConflict, "Nothing to decide", err.Error())
			return
		}
		http.Redirect(w, r, Prefix+"orgs/"+org+"/provisioning/runs/"+r.PathValue("run")+"?decided=1", http.StatusSeeOther)
	}
}
