package disconnect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Policy is a per-enterprise rule for which external organizations may stay
// connected, checked on a schedule. A team violates it when it is connected
// and either missing from a non-empty Allowlist, or inactive (by
// last_active_timestamp) for InactiveDays or more.
type Policy struct {
	Name         string   `json:"name"`
	EnterpriseID string   `json:"enterprise_id"`
	Allowlist    []string `json:"allowlist,omitempty"`
	InactiveDays int      `json:"inactive_days,omitempty"`
	// Schedule is a 5-field cron expression (UTC); empty runs only on demand.
	Schedule string `json:"schedule,omitempty"`
	// DryRun reports violators without requesting disconnects.
	DryRun    bool      `json:"dry_run,omitempty"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	LastRunAt time.Time `json:"last_run_at,omitzero"`
}

var policyNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate reports what is wrong with p.
func (p Policy) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
	}
	switch {
	case !policyNamePattern.MatchString(p.Name):
		return bad("name %q must be 1–64 lower-case letters, digits, '-' or '_'", p.Name)
	case (events.DisconnectRequest{SchemaVersion: 1, RequestID: "x", EnterpriseID: p.EnterpriseID, TargetTeam: "T00", Reason: "x", RequestedBy: "x"}).Validate() != nil:
		return bad("enterprise %q is not an Enterprise Grid id (E…)", p.EnterpriseID)
	case len(p.Allowlist) == 0 && p.InactiveDays <= 0:
		return bad("give an allowlist of external team ids, inactive days above 0, or both")
	case p.InactiveDays < 0:
		return bad("inactive days %d must not be negative", p.InactiveDays)
	}
	for _, t := range p.Allowlist {
		if (events.DisconnectRequest{SchemaVersion: 1, RequestID: "x", EnterpriseID: "E00", TargetTeam: t, Reason: "x", RequestedBy: "x"}).Validate() != nil {
			return bad("allowlist entry %q is not a Slack team id (T…)", t)
		}
	}
	if p.Schedule != "" {
		if _, err := ParseSchedule(p.Schedule); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// Violation is one external team a policy run found.
type Violation struct {
	TeamID           string    `json:"team_id"`
	TeamName         string    `json:"team_name"`
	ConnectionStatus string    `json:"connection_status"`
	LastActive       time.Time `json:"last_active,omitzero"`
	// Rules are not_in_allowlist and/or inactive.
	Rules []string `json:"rules"`
	// RequestID is the disconnect request published for it (empty in a dry run).
	RequestID string `json:"request_id,omitempty"`
}

// PolicyReport is the outcome of one policy run.
type PolicyReport struct {
	Policy       string      `json:"policy"`
	EnterpriseID string      `json:"enterprise_id"`
	RunID        string      `json:"run_id"`
	At           time.Time   `json:"at"`
	DryRun       bool        `json:"dry_run"`
	Checked      int         `json:"checked"`
	Violations   []Violation `json:"violations"`
}

// SavePolicy creates or replaces a policy.
func (s *Store) SavePolicy(ctx context.Context, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	// The index first: it lives in another slot, so no transaction can hold
	// both on Redis Cluster. A crash between leaves an enterprise without
	// policies in the index (listed as none), never a policy no listing finds.
	if err := s.rdb.SAdd(ctx, policyEnterprisesKey, p.EnterpriseID).Err(); err != nil {
		return fmt.Errorf("disconnect: indexing the policies of %s: %w", p.EnterpriseID, err)
	}
	if err := s.rdb.HSet(ctx, policiesKey(p.EnterpriseID), p.Name, b).Err(); err != nil {
		return fmt.Errorf("disconnect: saving policy %s of %s: %w", p.Name, p.EnterpriseID, err)
	}
	return nil
}

// Policy reads one policy, or returns [ErrNotFound].
func (s *Store) Policy(ctx context.Context, e, name string) (Policy, error) {
	b, err := s.rdb.HGet(ctx, policiesKey(e), name).Bytes()
	if errors.Is(err, redis.Nil) {
		return Policy{}, fmt.Errorf("%w: policy %s of %s", ErrNotFound, name, e)
	}
	if err != nil {
		return Policy{}, err
	}
	var p Policy
	return p, json.Unmarshal(b, &p)
}

// Policies lists the policies of e, or of every enterprise when e is empty.
func (s *Store) Policies(ctx context.Context, e string) ([]Policy, error) {
	ents := []string{e}
	if e == "" {
		var err error
		if ents, err = s.rdb.SMembers(ctx, policyEnterprisesKey).Result(); err != nil {
			return nil, err
		}
		slices.Sort(ents)
	}
	var out []Policy
	for _, ent := range ents {
		m, err := s.rdb.HGetAll(ctx, policiesKey(ent)).Result()
		if err != nil {
			return nil, err
		}
		for _, b := range m {
			var p Policy
			if json.Unmarshal([]byte(b), &p) == nil {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b Policy) int {
		if a.EnterpriseID != b.EnterpriseID {
			return compare(a.EnterpriseID, b.EnterpriseID)
		}
		return compare(a.Name, b.Name)
	})
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Evaluate returns the teams of list that violate p at now.
func (p Policy) Evaluate(teams []slackapi.ExternalTeam, now time.Time) []Violation {
	var out []Violation
	cut := now.AddDate(0, 0, -p.InactiveDays)
	for _, t := range teams {
		if t.ConnectionStatus == slackapi.StatusDisconnected {
			continue
		}
		var rules []string
		if len(p.Allowlist) > 0 && !slices.Contains(p.Allowlist, t.TeamID) {
			rules = append(rules, "not_in_allowlist")
		}
		last := time.Time{}
		if t.LastActiveTimestamp > 0 {
			last = time.Unix(t.LastActiveTimestamp, 0).UTC()
		}
		if p.InactiveDays > 0 && last.Before(cut) {
			rules = append(rules, "inactive")
		}
		if len(rules) > 0 {
			out = append(out, Violation{TeamID: t.TeamID, TeamName: t.TeamName, ConnectionStatus: t.ConnectionStatus, LastActive: last, Rules: rules})
		}
	}
	return out
}

// RunPolicy lists the enterprise's external teams and, for each violator,
// publishes a disconnect request (requested_by "policy:<name>"), or only
// reports them when the policy or dryRun says so. runID names the run; the
// scheduler uses the scheduled minute, so two replicas firing the same slot
// publish the same request ids, which JetStream stores once.
func (w *Worker) RunPolicy(ctx context.Context, e, name string, dryRun bool, runID string) (PolicyReport, error) {
	p, err := w.store.Policy(ctx, e, name)
	if err != nil {
		return PolicyReport{}, err
	}
	now := w.cfg.Now().UTC()
	if runID == "" {
		runID = now.Format("20060102T150405Z")
	}
	rep := PolicyReport{Policy: p.Name, EnterpriseID: e, RunID: runID, At: now, DryRun: p.DryRun || dryRun}
	teams, err := w.externalTeams(ctx, e, "policy:"+p.Name, time.Minute)
	if err != nil {
		return rep, err
	}
	rep.Checked = len(teams)
	rep.Violations = p.Evaluate(teams, now)
	for i, v := range rep.Violations {
		if rep.DryRun {
			continue
		}
		req := events.DisconnectRequest{SchemaVersion: events.SchemaVersion,
			RequestID:    fmt.Sprintf("policy-%s-%s-%s", p.Name, runID, v.TeamID),
			EnterpriseID: e, TargetTeam: v.TeamID, RequestedBy: "policy:" + p.Name,
			Reason: fmt.Sprintf("policy %s: %v", p.Name, v.Rules)}
		if _, err := PublishRequest(ctx, w.js, req); err != nil {
			return rep, err
		}
		rep.Violations[i].RequestID = req.RequestID
	}
	// The entry before the run is recorded: a run whose entry could not be
	// written is not marked done, so the scheduler runs it again (its
	// request ids are the same, so JetStream stores them once).
	detail, _ := json.Marshal(rep)
	a := AuditEntry{Time: now, EnterpriseID: e, Event: "policy_run", RequestedBy: "policy:" + p.Name,
		Message:     fmt.Sprintf("%d of %d external teams violate policy %s (dry run %v)", len(rep.Violations), rep.Checked, p.Name, rep.DryRun),
		SlackMethod: slackapi.MethodExternalTeamsList, SlackResponse: detail, Worker: w.cfg.WorkerID}
	if err := w.store.Append(ctx, a); err != nil {
		w.auditFailed(e, "", []AuditEntry{a}, err, false)
		return rep, err
	}
	p.LastRunAt = now
	if err := w.store.SavePolicy(ctx, p); err != nil {
		return rep, err
	}
	return rep, nil
}

// RunDuePolicies runs every scheduled policy whose next firing time (after
// its last run, or its last update) has come. Only the replica holding the
// scheduler lock does it.
func (w *Worker) RunDuePolicies(ctx context.Context) error {
	lock, err := w.locker.Obtain(ctx, schedulerLockKey, max(2*w.cfg.PolicyTick, time.Minute))
	if errors.Is(err, store.ErrNotObtained) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	policies, err := w.store.Policies(ctx, "")
	if err != nil {
		return err
	}
	now := w.cfg.Now().UTC()
	var errs []error
	for _, p := range policies {
		if p.Schedule == "" {
			continue
		}
		sched, err := ParseSchedule(p.Schedule)
		if err != nil {
			continue
		}
		from := p.LastRunAt
		if from.IsZero() {
			from = p.UpdatedAt
		}
		next := sched.Next(from.UTC())
		if next.IsZero() || next.After(now) {
			continue
		}
		rep, err := w.RunPolicy(ctx, p.EnterpriseID, p.Name, false, next.Format("20060102T1504Z"))
		if err != nil {
			errs = append(errs, fmt.Errorf("policy %s of %s: %w", p.Name, p.EnterpriseID, err))
			continue
		}
		w.log.Info("disconnect: policy ran", slog.String("enterprise", p.EnterpriseID), slog.String("policy", p.Name),
			slog.Int("violations", len(rep.Violations)), slog.Bool("dry_run", rep.DryRun))
	}
	return errors.Join(errs...)
}
