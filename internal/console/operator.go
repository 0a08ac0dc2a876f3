package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/ops"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// OperatorAPI is what the operator pages need; a nil field hides its pages.
type OperatorAPI struct {
	// Disconnects files disconnect requests and reads their records, audit
	// trail and policies (a *disconnect.Worker).
	Disconnects Disconnects
	// JS reads and re-drives dead letters and reports streams (internal/ops).
	JS jetstream.JetStream
}

// Disconnects is the disconnect worker as the pages use it.
type Disconnects interface {
	Publish(ctx context.Context, req events.DisconnectRequest) (events.DisconnectRequest, error)
	RunPolicy(ctx context.Context, enterprise, name string, dryRun bool, runID string) (disconnect.PolicyReport, error)
	Store() *disconnect.Store
}

// operatorPage is how many requests, audit entries or dead letters one page shows.
const operatorPage = 50

func (c *Console) operatorRoutes(m *http.ServeMux) {
	op := c.cfg.Operator
	if op.Disconnects != nil {
		p := Prefix + "operator/disconnects"
		m.HandleFunc("GET "+p, c.handle(roleOperator, c.disconnectList))
		m.HandleFunc("GET "+p+"/new", c.handle(roleOperator, c.disconnectNew))
		m.HandleFunc("POST "+p+"/new", c.handle(roleOperator, c.disconnectFile))
		m.HandleFunc("GET "+p+"/audit", c.handle(roleOperator, c.disconnectAudit))
		m.HandleFunc("GET "+p+"/audit.csv", c.handle(roleOperator, c.disconnectAuditCSV))
		m.HandleFunc("GET "+p+"/policies", c.handle(roleOperator, c.policies))
		m.HandleFunc("POST "+p+"/policies", c.handle(roleOperator, c.policySave))
		m.HandleFunc("POST "+p+"/policies/run", c.handle(roleOperator, c.policyRun))
		m.HandleFunc("GET "+p+"/{id}", c.handle(roleOperator, c.disconnectStatus))
	}
	if op.JS != nil {
		p := Prefix + "operator/dlq"
		m.HandleFunc("GET "+p, c.handle(roleOperator, c.dlqList))
		m.HandleFunc("GET "+p+"/purge", c.handle(roleOperator, c.dlqPurgeConfirm))
		m.HandleFunc("POST "+p+"/purge", c.handle(roleOperator, c.dlqPurge))
		m.HandleFunc("POST "+p+"/redrive", c.handle(roleOperator, c.dlqRedriveAll))
		m.HandleFunc("GET "+p+"/{id}", c.handle(roleOperator, c.dlqShow))
		m.HandleFunc("POST "+p+"/{id}/redrive", c.handle(roleOperator, c.dlqRedrive))
		m.HandleFunc("GET "+Prefix+"operator/streams", c.handle(roleOperator, c.streams))
	}
}

// ---- disconnects

var disconnectStates = []events.DisconnectState{events.DisconnectAccepted, events.DisconnectRejected, events.DisconnectSubmitted,
	events.DisconnectCompleted, events.DisconnectFailed, events.DisconnectUnconfirmed}

// requestIDPattern is the request ids a status page accepts (events' rule).
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

func (c *Console) disconnectList(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	q := r.URL.Query()
	state := events.DisconnectState(q.Get("state"))
	if state != "" && !slices.Contains(disconnectStates, state) {
		state = ""
	}
	ent := strings.TrimSpace(q.Get("enterprise"))
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = max(0, min(offset, 10000))
	recs, err := c.cfg.Operator.Disconnects.Store().List(ctx, disconnect.ListFilter{EnterpriseID: ent, State: state, Limit: offset + operatorPage + 1})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	more := len(recs) > offset+operatorPage
	recs = recs[min(offset, len(recs)):min(offset+operatorPage, len(recs))]
	c.render(w, r, http.StatusOK, "operator_disconnects", s, map[string]any{"Title": "Disconnect requests", "Requests": recs,
		"States": disconnectStates, "State": string(state), "Enterprise": ent, "Offset": offset,
		"HasPrev": offset > 0, "Prev": max(0, offset-operatorPage), "HasNext": more, "Next": offset + operatorPage})
}

// disconnectForm is the new-request form's fields.
type disconnectForm struct {
	RequestID, Enterprise, Target, Reason, RequestedBy string
	DryRun                                             bool
}

func (f disconnectForm) request() events.DisconnectRequest {
	return events.DisconnectRequest{SchemaVersion: events.SchemaVersion, RequestID: f.RequestID, EnterpriseID: f.Enterprise,
		TargetTeam: f.Target, Reason: f.Reason, RequestedBy: f.RequestedBy, DryRun: f.DryRun}
}

// disconnectNew is the new-request form. The request id is chosen here, so
// a form sent twice files one request (JetStream keeps the first).
func (c *Console) disconnectNew(w http.ResponseWriter, r *http.Request, s *Session) {
	q := r.URL.Query()
	f := disconnectForm{RequestID: disconnect.NewRequestID(), Enterprise: q.Get("enterprise"), Target: q.Get("target"),
		RequestedBy: s.Name + " (console)", DryRun: true}
	c.render(w, r, http.StatusOK, "operator_disconnect_new", s, map[string]any{"Title": "New disconnect request", "F": f})
}

// disconnectFile files the request: a dry run at once; a real one after the
// confirmation page (confirm=yes).
func (c *Console) disconnectFile(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f := disconnectForm{RequestID: strings.TrimSpace(r.FormValue("request_id")), Enterprise: strings.TrimSpace(r.FormValue("enterprise")),
		Target: strings.TrimSpace(r.FormValue("target")), Reason: strings.TrimSpace(r.FormValue("reason")),
		RequestedBy: strings.TrimSpace(r.FormValue("requested_by")), DryRun: r.FormValue("dry_run") != ""}
	if f.RequestID == "" {
		f.RequestID = disconnect.NewRequestID()
	}
	data := map[string]any{"Title": "New disconnect request", "F": f}
	req := f.request()
	if err := req.Validate(); err != nil {
		data["Problem"] = err.Error()
		c.render(w, r, http.StatusBadRequest, "operator_disconnect_new", s, data)
		return
	}
	if !f.DryRun && r.FormValue("confirm") != "yes" {
		data["Title"], data["Confirm"] = "Confirm the disconnect", true
		c.render(w, r, http.StatusOK, "operator_disconnect_new", s, data)
		return
	}
	req, err := c.cfg.Operator.Disconnects.Publish(ctx, req)
	var re *events.DisconnectRequestError
	switch {
	case errors.As(err, &re):
		data["Problem"] = re.Error()
		c.render(w, r, http.StatusBadRequest, "operator_disconnect_new", s, data)
		return
	case err != nil:
		c.fail(w, r, http.StatusServiceUnavailable, "Not filed", "The request could not be queued ("+err.Error()+"). Try again: the same form files it once.")
		return
	}
	c.log.Info("console: disconnect requested", "request_id", req.RequestID, "enterprise", req.EnterpriseID, "target", req.TargetTeam,
		"dry_run", req.DryRun, "by", s.Name)
	http.Redirect(w, r, Prefix+"operator/disconnects/"+urlPathEscape(req.RequestID)+"?queued=1", http.StatusSeeOther)
}

// disconnectStatus is a request's state and audit trail; until the state is
// final the section updates itself (htmx) every second.
func (c *Console) disconnectStatus(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	id := r.PathValue("id")
	if !requestIDPattern.MatchString(id) {
		c.fail(w, r, http.StatusNotFound, "No such request", "A request id is 1–128 letters, digits, '-', '_', ':' or '.'.")
		return
	}
	st := c.cfg.Operator.Disconnects.Store()
	queued := r.URL.Query().Get("queued") != ""
	data := map[string]any{"Title": "Disconnect request " + id, "ID": id, "Fragment": "request", "Queued": queued}
	rec, err := st.Find(ctx, id)
	switch {
	case errors.Is(err, disconnect.ErrNotFound):
		if !queued {
			c.fail(w, r, http.StatusNotFound, "No such request", "There is no disconnect request "+id+" (records are kept 90 days).")
			return
		}
		// filed a moment ago: the worker has not taken it up yet
		c.render(w, r, http.StatusOK, "operator_disconnect", s, data)
		return
	case err != nil:
		c.internal(w, r, err)
		return
	}
	trail, err := st.Audit(ctx, disconnect.AuditFilter{EnterpriseID: rec.EnterpriseID, RequestID: id})
	if err != nil {
		c.internal(w, r, err)
		return
	}
	data["Rec"], data["Audit"], data["Final"] = rec, auditRows(trail), rec.State.Final()
	c.render(w, r, http.StatusOK, "operator_disconnect", s, data)
}

// auditRow is an audit entry with its Slack answer indented for reading.
type auditRow struct {
	disconnect.AuditEntry
	Slack string
}

func auditRows(entries []disconnect.AuditEntry) []auditRow {
	out := make([]auditRow, len(entries))
	for i, a := range entries {
		out[i] = auditRow{AuditEntry: a}
		if len(a.SlackResponse) > 0 {
			var buf bytes.Buffer
			if json.Indent(&buf, a.SlackResponse, "", "  ") == nil {
				out[i].Slack = buf.String()
			} else {
				out[i].Slack = string(a.SlackResponse)
			}
		}
	}
	return out
}

// auditFilter reads the audit filters; since is "30d", "24h" or a time.
func (c *Console) auditFilter(r *http.Request) (disconnect.AuditFilter, map[string]string, error) {
	q := r.URL.Query()
	form := map[string]string{"enterprise": strings.TrimSpace(q.Get("enterprise")), "request_id": strings.TrimSpace(q.Get("request_id")),
		"since": strings.TrimSpace(q.Get("since"))}
	since, err := disconnect.ParseSince(form["since"], c.cfg.Now())
	return disconnect.AuditFilter{Since: since, EnterpriseID: form["enterprise"], RequestID: form["request_id"]}, form, err
}

// disconnectAudit pages the audit trail, newest first.
func (c *Console) disconnectAudit(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f, form, err := c.auditFilter(r)
	data := map[string]any{"Title": "Disconnect audit", "Form": form}
	if err != nil {
		data["Problem"] = err.Error()
		c.render(w, r, http.StatusBadRequest, "operator_audit", s, data)
		return
	}
	entries, err := c.cfg.Operator.Disconnects.Store().Audit(ctx, f)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	slices.Reverse(entries)
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(0, min(offset, len(entries)))
	data["Total"], data["Offset"] = len(entries), offset
	data["Entries"] = auditRows(entries[offset:min(offset+operatorPage, len(entries))])
	data["HasPrev"], data["Prev"] = offset > 0, max(0, offset-operatorPage)
	data["HasNext"], data["Next"] = offset+operatorPage < len(entries), offset+operatorPage
	c.render(w, r, http.StatusOK, "operator_audit", s, data)
}

// disconnectAuditCSV exports the audit trail (the filters of the page) as
// `orgbridge disconnect audit --format csv` does.
func (c *Console) disconnectAuditCSV(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f, _, err := c.auditFilter(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Bad filter", err.Error())
		return
	}
	entries, err := c.cfg.Operator.Disconnects.Store().Audit(ctx, f)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="disconnect-audit.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := disconnect.WriteAudit(w, disconnect.FormatCSV, entries); err != nil {
		c.log.Error("console: exporting the disconnect audit", "error", err)
	}
}

// ---- policies

// policyForm is the set-policy form's fields.
type policyForm struct {
	Enterprise, Name, Allowlist, InactiveDays, Schedule string
	DryRun                                              bool
}

func (c *Console) policies(w http.ResponseWriter, r *http.Request, s *Session) {
	c.renderPolicies(w, r, s, http.StatusOK, policyForm{Enterprise: r.URL.Query().Get("enterprise"), DryRun: true}, "")
}

func (c *Console) renderPolicies(w http.ResponseWriter, r *http.Request, s *Session, status int, f policyForm, problem string) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	ps, err := c.cfg.Operator.Disconnects.Store().Policies(ctx, "")
	if err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, r, status, "operator_policies", s, map[string]any{"Title": "Disconnect policies", "Policies": ps, "F": f,
		"Problem": problem, "Saved": r.URL.Query().Get("saved")})
}

// policySave creates or replaces a policy.
func (c *Console) policySave(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f := policyForm{Enterprise: strings.TrimSpace(r.FormValue("enterprise")), Name: strings.TrimSpace(r.FormValue("name")),
		Allowlist: r.FormValue("allowlist"), InactiveDays: strings.TrimSpace(r.FormValue("inactive_days")),
		Schedule: strings.TrimSpace(r.FormValue("schedule")), DryRun: r.FormValue("dry_run") != ""}
	p := disconnect.Policy{Name: f.Name, EnterpriseID: f.Enterprise, Allowlist: strings.FieldsFunc(f.Allowlist, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	}), Schedule: f.Schedule, DryRun: f.DryRun, UpdatedBy: s.Name + " (console)", UpdatedAt: c.cfg.Now().UTC()}
	if f.InactiveDays != "" {
		n, err := strconv.Atoi(f.InactiveDays)
		if err != nil {
			c.renderPolicies(w, r, s, http.StatusBadRequest, f, "Inactive days must be a whole number.")
			return
		}
		p.InactiveDays = n
	}
	st := c.cfg.Operator.Disconnects.Store()
	if old, err := st.Policy(ctx, p.EnterpriseID, p.Name); err == nil {
		p.LastRunAt = old.LastRunAt
	}
	err := st.SavePolicy(ctx, p)
	switch {
	case errors.Is(err, disconnect.ErrInvalidPolicy):
		c.renderPolicies(w, r, s, http.StatusBadRequest, f, strings.TrimPrefix(err.Error(), disconnect.ErrInvalidPolicy.Error()+": "))
		return
	case err != nil:
		c.internal(w, r, err)
		return
	}
	c.log.Info("console: disconnect policy saved", "enterprise", p.EnterpriseID, "policy", p.Name, "by", s.Name)
	http.Redirect(w, r, Prefix+"operator/disconnects/policies?saved="+urlQueryEscape(p.Name), http.StatusSeeOther)
}

// policyRun runs a policy now: a dry run at once, a real run (which files
// disconnect requests) after the confirmation page.
func (c *Console) policyRun(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	ent, name, dry := r.FormValue("enterprise"), r.FormValue("name"), r.FormValue("dry_run") != ""
	p, err := c.cfg.Operator.Disconnects.Store().Policy(ctx, ent, name)
	if errors.Is(err, disconnect.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "No such policy", "There is no policy "+name+" of "+ent+".")
		return
	}
	if err != nil {
		c.internal(w, r, err)
		return
	}
	data := map[string]any{"Title": "Run policy " + name, "Policy": p, "DryRun": dry || p.DryRun}
	if !dry && !p.DryRun && r.FormValue("confirm") != "yes" {
		data["Confirm"] = true
		c.render(w, r, http.StatusOK, "operator_policy_run", s, data)
		return
	}
	rep, err := c.cfg.Operator.Disconnects.RunPolicy(ctx, ent, name, dry, "")
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The policy did not run", err.Error())
		return
	}
	c.log.Info("console: disconnect policy run", "enterprise", ent, "policy", name, "dry_run", rep.DryRun, "violations", len(rep.Violations), "by", s.Name)
	data["Report"] = rep
	c.render(w, r, http.StatusOK, "operator_policy_run", s, data)
}

// ---- dead letters

func dlqFilter(r *http.Request) ops.DLQFilter {
	return ops.DLQFilter{Stream: strings.TrimSpace(r.FormValue("stream")), Consumer: strings.TrimSpace(r.FormValue("consumer"))}
}

func (c *Console) dlqList(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f := dlqFilter(r)
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	// One page read from the stream, whatever the DLQ holds.
	page, err := ops.ListDeadLetterPage(ctx, c.cfg.Operator.JS, f, after, operatorPage)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	var streams, consumers []string
	for _, p := range page.Parked {
		if !slices.Contains(streams, p.Stream) {
			streams = append(streams, p.Stream)
		}
		if !slices.Contains(consumers, p.Consumer) {
			consumers = append(consumers, p.Consumer)
		}
	}
	slices.Sort(consumers)
	c.render(w, r, http.StatusOK, "operator_dlq", s, map[string]any{"Title": "Dead letters", "Letters": page.Letters,
		"Total": int(page.Total), "Before": int(page.Before), "Filter": f, "Streams": streams, "Consumers": consumers,
		"HasFirst": after > 0, "Next": page.Next,
		"Redriven": q.Get("redriven"), "RedrivenAll": q.Get("redriven_all"), "Duplicates": q.Get("duplicates"), "Failed": q.Get("failed"),
		"Purged": q.Get("purged")})
}

// maxShownBody bounds the body a dead letter's page shows.
const maxShownBody = 64 << 10

func (c *Console) dlqShow(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, http.StatusNotFound, "No such dead letter", "A dead letter's id is its number in the DLQ stream.")
		return
	}
	d, err := ops.GetDeadLetter(ctx, c.cfg.Operator.JS, id)
	switch {
	case errors.Is(err, ops.ErrDeadLetterNotFound), errors.Is(err, ops.ErrNotDeadLetter):
		c.fail(w, r, http.StatusNotFound, "No such dead letter", fmt.Sprintf("There is no dead letter %d (re-driven or purged already?).", id))
		return
	case err != nil:
		c.internal(w, r, err)
		return
	}
	type header struct{ Key, Value string }
	var hs []header
	for k, vs := range d.Header {
		for _, v := range vs {
			hs = append(hs, header{k, v})
		}
	}
	slices.SortFunc(hs, func(a, b header) int { return strings.Compare(a.Key+"\x00"+a.Value, b.Key+"\x00"+b.Value) })
	body, truncated := d.Data, false
	if len(body) > maxShownBody {
		body, truncated = body[:maxShownBody], true
	}
	shown := string(body)
	var buf bytes.Buffer
	if !truncated && json.Indent(&buf, body, "", "  ") == nil {
		shown = buf.String()
	}
	c.render(w, r, http.StatusOK, "operator_dlq_letter", s, map[string]any{"Title": fmt.Sprintf("Dead letter %d", id), "D": d,
		"Headers": hs, "Body": shown, "Truncated": truncated, "Size": len(d.Data)})
}

func (c *Console) dlqRedrive(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, http.StatusNotFound, "No such dead letter", "A dead letter's id is its number in the DLQ stream.")
		return
	}
	res, err := ops.Redrive(ctx, c.cfg.Operator.JS, id)
	switch {
	case errors.Is(err, ops.ErrDeadLetterNotFound):
		c.fail(w, r, http.StatusNotFound, "No such dead letter", fmt.Sprintf("There is no dead letter %d (re-driven or purged already?).", id))
		return
	case err != nil:
		c.fail(w, r, http.StatusBadGateway, "Not re-driven", err.Error())
		return
	}
	c.log.Info("console: dead letter re-driven", "id", id, "subject", res.Subject, "duplicate", res.Duplicate, "by", s.Name)
	dup := ""
	if res.Duplicate {
		dup = "&duplicates=1"
	}
	http.Redirect(w, r, Prefix+"operator/dlq?redriven="+strconv.FormatUint(id, 10)+dup, http.StatusSeeOther)
}

func (c *Console) dlqRedriveAll(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	f := dlqFilter(r)
	sum, err := ops.RedriveAll(ctx, c.cfg.Operator.JS, f, nil)
	if err != nil && sum == nil {
		c.fail(w, r, http.StatusBadGateway, "Not re-driven", err.Error())
		return
	}
	c.log.Info("console: dead letters re-driven", "stream", f.Stream, "consumer", f.Consumer, "redriven", sum.Redriven,
		"duplicates", sum.Duplicates, "failed", sum.Failed, "by", s.Name)
	http.Redirect(w, r, fmt.Sprintf("%soperator/dlq?redriven_all=%d&duplicates=%d&failed=%d", Prefix, sum.Redriven, sum.Duplicates, sum.Failed), http.StatusSeeOther)
}

// dlqPurgeConfirm is the confirmation step of a purge: how many dead letters
// the filter selects.
func (c *Console) dlqPurgeConfirm(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f := dlqFilter(r)
	page, err := ops.ListDeadLetterPage(ctx, c.cfg.Operator.JS, f, 0, 1) // the count, not the letters
	if err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "operator_dlq_purge", s, map[string]any{"Title": "Purge dead letters", "Filter": f, "Count": int(page.Total)})
}

func (c *Console) dlqPurge(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	f := dlqFilter(r)
	if r.FormValue("confirm") != "yes" {
		c.fail(w, r, http.StatusBadRequest, "Not purged", "Confirm the purge on its confirmation page.")
		return
	}
	n, err := ops.PurgeDeadLetters(ctx, c.cfg.Operator.JS, f)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "Not purged", err.Error())
		return
	}
	c.log.Info("console: dead letters purged", "stream", f.Stream, "consumer", f.Consumer, "count", n, "by", s.Name)
	http.Redirect(w, r, Prefix+"operator/dlq?purged="+strconv.FormatUint(n, 10), http.StatusSeeOther)
}

// ---- streams

func (c *Console) streams(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	list, err := ops.ListStreams(ctx, c.cfg.Operator.JS)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "operator_streams", s, map[string]any{"Title": "Streams", "Streams": list, "Now": c.cfg.Now()})
}

func urlPathEscape(s string) string { return strings.ReplaceAll(urlQueryEscape(s), "+", "%20") }
