package provisioning

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/store"
)

// ConnectRequest links an org's directory to a Slack source. Both tokens
// come from OAuth: the org admin's (the directory) and the Slack admin's
// user token (the source).
type ConnectRequest struct {
	OrgID string
	// OrgAdmin names the org user who connects (for the record).
	OrgAdmin string
	// DirectoryURL is the org's SCIM base URL; DirectoryToken (and
	// DirectoryRefresh, when the org issues one) authenticate there.
	DirectoryURL     string
	DirectoryToken   store.Secret
	DirectoryRefresh store.Secret
	// SlackToken is a user token of a Slack admin or owner with users:read,
	// users:read.email and usergroups:read.
	SlackToken store.Secret
	// SlackRefresh and SlackExpires come with a rotating Slack token.
	SlackRefresh store.Secret
	SlackExpires time.Time
	// WholeGrid makes the source the token's whole Enterprise Grid org rather
	// than its workspace.
	WholeGrid bool
	// Replace swaps the source of the active integration instead of
	// creating one ("Replace with another Slack account").
	Replace bool
}

// Connect checks that the person is an administrator on both sides and
// creates the org's integration — or, with Replace, swaps the active one's
// Slack source in one step. A second connect while one is active is refused
// with [ErrAlreadyActive] naming the active one.
func (w *Worker) Connect(ctx context.Context, req ConnectRequest) (*Integration, error) {
	if !events.ValidOrgID(req.OrgID) {
		return nil, fmt.Errorf("provisioning: %q is not an org id", req.OrgID)
	}
	if req.DirectoryURL == "" || req.DirectoryToken == "" || req.SlackToken == "" {
		return nil, errors.New("provisioning: connecting needs the directory URL, the directory token and a Slack token")
	}
	if w.org != nil {
		info, err := w.org.UserInfo(ctx, orgapi.Secret(req.DirectoryToken.Reveal()))
		if err != nil {
			return nil, fmt.Errorf("provisioning: reading the org user who connects: %w", err)
		}
		if !info.IsOrgAdmin() {
			return nil, fmt.Errorf("%w (%s is not an org administrator)", ErrNotOrgAdmin, info.PreferredUsername)
		}
		if info.OrganizationID != "" && !sameOrg(info.OrganizationID, req.OrgID) {
			return nil, fmt.Errorf("provisioning: the org login belongs to org %s, not %s", info.OrganizationID, req.OrgID)
		}
		if req.OrgAdmin == "" {
			req.OrgAdmin = info.PreferredUsername
		}
	}
	src, err := w.slackSource(ctx, req.SlackToken, req.WholeGrid)
	if err != nil {
		return nil, err
	}
	now := w.cfg.Now().UTC()
	sealedSlack, err := w.store.seal(req.OrgID, "slack", req.SlackToken)
	if err != nil {
		return nil, err
	}
	sealedDir, err := w.store.seal(req.OrgID, "directory", req.DirectoryToken)
	if err != nil {
		return nil, err
	}
	sealedRefresh, err := w.store.seal(req.OrgID, "directory_refresh", req.DirectoryRefresh)
	if err != nil {
		return nil, err
	}
	sealedSlackRefresh, err := w.store.seal(req.OrgID, "slack_refresh", req.SlackRefresh)
	if err != nil {
		return nil, err
	}
	if req.Replace {
		var old Source
		in, err := w.store.Update(ctx, req.OrgID, w.cfg.Now, func(in *Integration) error {
			if in.Status != StatusActive {
				return ErrNotActive
			}
			old = in.Source
			in.PreviousSource = append(in.PreviousSource, in.Source)
			in.Source, in.SlackToken, in.SlackRefresh, in.SlackExpires = src, sealedSlack, sealedSlackRefresh, req.SlackExpires
			in.DirectoryURL, in.DirectoryToken, in.DirectoryRefresh = req.DirectoryURL, sealedDir, sealedRefresh
			in.OrgAdmin = req.OrgAdmin
			in.SettingsVersion++ // pending until the next sync
			if in.Settings.Scope == ScopeGroups || len(in.Settings.Teams) > 0 {
				// groups are ids of the old source: start again from everyone, no teams
				in.Settings.Scope, in.Settings.Groups, in.Settings.MapTeams, in.Settings.Teams = ScopeEveryone, nil, false, nil
			}
			return nil
		})
		if err != nil {
			return in, err
		}
		if old.ID() != src.ID() {
			_ = w.rdb.Del(ctx, kSource(old.ID())).Err()
		}
		return in, w.rdb.Set(ctx, kSource(src.ID()), req.OrgID, 0).Err()
	}
	in := &Integration{ID: "pi-" + randomHex(6), OrgID: req.OrgID, Status: StatusActive, Source: src, OrgAdmin: req.OrgAdmin,
		DirectoryURL: req.DirectoryURL, SlackToken: sealedSlack, SlackRefresh: sealedSlackRefresh, SlackExpires: req.SlackExpires, DirectoryToken: sealedDir, DirectoryRefresh: sealedRefresh,
		Settings: DefaultSettings(), SettingsVersion: 1, Created: now, Updated: now,
		LastScheduled: now} // the first scheduled run is the next slot after connecting
	if prev, err := w.store.Integration(ctx, req.OrgID); err == nil && prev.Status != StatusActive {
		in.Rev = prev.Rev + 1
		in.PreviousSource = append(prev.PreviousSource, prev.Source)
	}
	cur, err := w.store.create(ctx, in)
	if errors.Is(err, ErrAlreadyActive) {
		return cur, fmt.Errorf("%w: integration %s with Slack %s (%s), connected by %s; disconnect it or replace its Slack account",
			ErrAlreadyActive, cur.ID, cur.Source.Name, cur.Source.ID(), cur.OrgAdmin)
	}
	if err != nil {
		return nil, err
	}
	return cur, w.rdb.Set(ctx, kSource(src.ID()), req.OrgID, 0).Err()
}

func sameOrg(a, b string) bool { return len(a) >= 15 && len(b) >= 15 && a[:15] == b[:15] }

// slackSource checks that the token belongs to a Slack admin or owner and
// describes the source it reads.
func (w *Worker) slackSource(ctx context.Context, token store.Secret, wholeGrid bool) (Source, error) {
	c := w.slack.Slack(token.Reveal())
	who, err := c.AuthTestContext(ctx)
	if err != nil {
		return Source{}, fmt.Errorf("provisioning: the Slack token does not work: %w", err)
	}
	u, err := c.GetUserInfoContext(ctx, who.UserID)
	if err != nil {
		return Source{}, fmt.Errorf("provisioning: reading the Slack user who connects: %w", err)
	}
	if !(u.IsAdmin || u.IsOwner || u.IsPrimaryOwner) {
		return Source{}, fmt.Errorf("%w (%s is a member, not an admin or owner)", ErrNotSlackAdmin, u.Name)
	}
	src := Source{TeamID: who.TeamID, Name: who.Team, ConnectedBy: who.UserID}
	if wholeGrid {
		if who.EnterpriseID == "" {
			return Source{}, errors.New("provisioning: this Slack workspace is not part of an Enterprise Grid org; connect it as a workspace")
		}
		src = Source{EnterpriseID: who.EnterpriseID, Name: who.Team, ConnectedBy: who.UserID}
	}
	return src, nil
}

// Disconnect stops syncing and removes the stored Slack and directory
// credentials. Directory data and history stay.
func (w *Worker) Disconnect(ctx context.Context, org string) (*Integration, error) {
	in, err := w.store.Update(ctx, org, w.cfg.Now, func(in *Integration) error {
		if in.Status != StatusActive {
			return ErrNotActive
		}
		in.Status = StatusDisconnected
		in.SlackToken, in.SlackRefresh, in.DirectoryToken, in.DirectoryRefresh = store.Sealed{}, store.Sealed{}, store.Sealed{}, store.Sealed{}
		in.Disconnected = w.cfg.Now().UTC()
		in.Quarantine = nil
		return nil
	})
	if err != nil {
		return in, err
	}
	return in, w.rdb.Del(ctx, kSource(in.Source.ID())).Err()
}

// SaveSettings validates set against Slack and the directory and saves it
// for the next run; nothing changes when it is refused.
func (w *Worker) SaveSettings(ctx context.Context, org string, set Settings) (*Integration, error) {
	if err := set.Validate(); err != nil {
		return nil, err
	}
	in, err := w.active(ctx, org)
	if err != nil {
		return nil, err
	}
	if set.AutoInvite && w.mailer == nil {
		return nil, &SettingsError{Field: "auto_invite", Msg: "no mail server is configured (SMTP_HOST); invitations cannot be sent"}
	}
	if groups := set.allGroups(); len(groups) > 0 {
		known, err := w.sourceGroups(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			if _, ok := known[g]; !ok {
				return nil, &SettingsError{Field: "groups", Msg: fmt.Sprintf("Slack group %s does not exist in %s", g, in.Source.Name)}
			}
		}
	}
	if len(set.Teams) > 0 {
		dir, err := w.directoryFor(ctx, in)
		if err != nil {
			return nil, err
		}
		for i, t := range set.Teams {
			g, err := dir.group(ctx, t.TeamID)
			if errors.Is(err, orgapi.ErrNotFound) {
				return nil, &SettingsError{Field: fmt.Sprintf("teams[%d].team_id", i), Msg: fmt.Sprintf("the directory has no team %s", t.TeamID)}
			}
			if err != nil {
				return nil, fmt.Errorf("provisioning: reading directory team %s: %w", t.TeamID, err)
			}
			set.Teams[i].TeamName = g.DisplayName
		}
	}
	return w.store.Update(ctx, org, w.cfg.Now, func(in *Integration) error {
		if in.Status != StatusActive {
			return ErrNotActive
		}
		in.Settings = set
		in.SettingsVersion++
		return nil
	})
}

func (w *Worker) active(ctx context.Context, org string) (*Integration, error) {
	in, err := w.store.Integration(ctx, org)
	if err != nil {
		return nil, err
	}
	if in.Status != StatusActive {
		return nil, ErrNotActive
	}
	return in, nil
}

func (w *Worker) sourceFor(ctx context.Context, in *Integration, holder string) (*source, error) {
	tok, err := w.slackToken(ctx, in)
	if err != nil {
		return nil, err
	}
	return w.newSource(in, tok.Reveal(), holder), nil
}

// newSource reads in's Slack source with token; holder names the reader in the pacer.
func (w *Worker) newSource(in *Integration, token, holder string) *source {
	return &source{src: in.Source, c: w.slack.Slack(token), api: w.slack, token: token, pacer: w.pacer, scale: w.cfg.TimeScale, holder: holder}
}

func (w *Worker) directoryFor(ctx context.Context, in *Integration) (*directory, error) {
	tok, err := w.directoryToken(ctx, in)
	if err != nil {
		return nil, err
	}
	return newDirectory(w.newDir(in.DirectoryURL, tok), w.cfg.DirectoryWritesPerSecond), nil
}

func (w *Worker) sourceGroups(ctx context.Context, in *Integration) (map[string]*slackGroup, error) {
	src, err := w.sourceFor(ctx, in, "admin-"+randomHex(4))
	if err != nil {
		return nil, err
	}
	teams, err := src.workspaces(ctx)
	if err != nil {
		return nil, err
	}
	return src.groups(ctx, teams)
}

// GroupMatch is one Slack group found by [Worker.SearchGroups].
type GroupMatch struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Handle   string `json:"handle"`
	Members  int    `json:"members"`
	Disabled bool   `json:"disabled"`
}

// SearchGroups finds the source's user groups whose name or handle contains
// q (case-insensitive), for the type-ahead group picker.
func (w *Worker) SearchGroups(ctx context.Context, org, q string, limit int) ([]GroupMatch, error) {
	in, err := w.active(ctx, org)
	if err != nil {
		return nil, err
	}
	groups, err := w.sourceGroups(ctx, in)
	if err != nil {
		return nil, err
	}
	q = strings.ToLower(strings.TrimSpace(q))
	out := []GroupMatch{}
	for _, g := range groups {
		if q == "" || strings.Contains(strings.ToLower(g.Name), q) || strings.Contains(strings.ToLower(g.Handle), q) {
			out = append(out, GroupMatch{ID: g.ID, Name: g.Name, Handle: g.Handle, Members: len(g.Members), Disabled: g.Disabled})
		}
	}
	slices.SortFunc(out, func(a, b GroupMatch) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ScopeCount is who a scope would provision, counted before saving.
type ScopeCount struct {
	// InScope are the people provisioned (active, not bots).
	InScope int `json:"in_scope"`
	Guests  int `json:"guests"`
	// Excluded counts bots, app users and deactivated accounts.
	Excluded int `json:"excluded"`
}

// CountScope counts the people a scope would provision (everyone when
// groups is empty). It reads users.list, so it takes as long as a run's reading.
func (w *Worker) CountScope(ctx context.Context, org string, groups []string) (ScopeCount, error) {
	in, err := w.active(ctx, org)
	if err != nil {
		return ScopeCount{}, err
	}
	src, err := w.sourceFor(ctx, in, "count-"+randomHex(4))
	if err != nil {
		return ScopeCount{}, err
	}
	teams, err := src.workspaces(ctx)
	if err != nil {
		return ScopeCount{}, err
	}
	var scope map[string]bool
	if len(groups) > 0 {
		all, err := src.groups(ctx, teams)
		if err != nil {
			return ScopeCount{}, err
		}
		scope = map[string]bool{}
		for _, g := range groups {
			sg := all[g]
			if sg == nil {
				return ScopeCount{}, &SettingsError{Field: "groups", Msg: "Slack group " + g + " does not exist"}
			}
			if !sg.Disabled {
				for _, m := range sg.Members {
					scope[m] = true
				}
			}
		}
	}
	var out ScopeCount
	seen := map[string]bool{}
	for _, team := range teams {
		cursor := ""
		for {
			users, next, err := src.usersPage(ctx, team, cursor, w.cfg.PageSize)
			if err != nil {
				return ScopeCount{}, err
			}
			for i := range users {
				u := &users[i]
				id := userID(u)
				if seen[id] {
					continue
				}
				seen[id] = true
				switch {
				case !provisionable(u) || u.Deleted:
					out.Excluded++
				case scope == nil || scope[id]:
					out.InScope++
					if u.IsRestricted {
						out.Guests++
					}
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return out, nil
}

// ErrRunInProgress is returned with the run already pending or running when
// a sync is asked for while one is.
var ErrRunInProgress = errors.New("provisioning: a sync of this integration is already pending or running")

// StartRun queues a run (a preview when dryRun) and returns it.
func (w *Worker) StartRun(ctx context.Context, org string, trigger events.SyncTrigger, by string, dryRun bool) (*Run, error) {
	in, err := w.active(ctx, org)
	if err != nil {
		return nil, err
	}
	if !dryRun && in.CurrentRunID != "" {
		if cur, err := w.store.Run(ctx, org, in.CurrentRunID); err == nil && !cur.Status.Final() {
			if cur.Status == events.RunPending {
				// its trigger may never have been stored (NATS was down): send it
				// again; the run id as Msg-Id keeps it to one
				if err := w.publishTrigger(ctx, cur, events.ActionRun, cur.By); err != nil {
					return cur, err
				}
			}
			return cur, ErrRunInProgress
		}
	}
	run := &Run{ID: NewRunID(), OrgID: org, IntegrationID: in.ID, Trigger: trigger, DryRun: dryRun, By: by,
		Status: events.RunPending, SettingsVersion: in.SettingsVersion, Created: w.cfg.Now().UTC(), Counts: map[string]int{}}
	return run, w.queue(ctx, in, run)
}

// queue records a new run and publishes its trigger.
func (w *Worker) queue(ctx context.Context, in *Integration, run *Run) error {
	if _, err := w.store.CreateRun(ctx, run, w.cfg.HistoryLimit); err != nil {
		return err
	}
	if !run.DryRun && len(run.UserIDs) == 0 {
		if _, err := w.store.Update(ctx, in.OrgID, w.cfg.Now, func(in *Integration) error {
			in.CurrentRunID = run.ID
			return nil
		}); err != nil {
			return err
		}
	}
	return w.publishTrigger(ctx, run, events.ActionRun, run.By)
}

func (w *Worker) publishTrigger(ctx context.Context, run *Run, action events.SyncAction, by string) error {
	msg := events.ProvisioningSync{SchemaVersion: events.SchemaVersion, OrgID: run.OrgID, RunID: run.ID, Action: action,
		Trigger: run.Trigger, DryRun: run.DryRun, UserIDs: run.UserIDs, By: by, RequestedAt: w.cfg.Now().UTC()}
	_, err := w.pub.Publish(ctx, events.ProvisioningSyncSubject(run.OrgID), run.ID+":"+string(action), msg)
	return err
}

// Decide approves or rejects the deactivations run holds.
func (w *Worker) Decide(ctx context.Context, org, runID string, approve bool, by string) (*Run, error) {
	run, err := w.store.Run(ctx, org, runID)
	if err != nil {
		return nil, err
	}
	if run.Status != events.RunAwaitingApproval {
		return run, ErrNothingHeld
	}
	action := events.ActionReject
	if approve {
		action = events.ActionApprove
	}
	return run, w.publishTrigger(ctx, run, action, by)
}

// Resume lifts an integration's quarantine and queues a run.
func (w *Worker) Resume(ctx context.Context, org, by string) (*Run, error) {
	if _, err := w.store.Update(ctx, org, w.cfg.Now, func(in *Integration) error {
		if in.Status != StatusActive {
			return ErrNotActive
		}
		in.Quarantine, in.ConsecutiveFailures = nil, 0
		return nil
	}); err != nil {
		return nil, err
	}
	return w.StartRun(ctx, org, events.TriggerAPI, by, false)
}

// Report reads a finished run's rows matching f; [ErrRunNotFinished] while
// it is pending or running.
func (w *Worker) Report(ctx context.Context, org, runID string, f RowFilter) (*Run, []Row, error) {
	run, err := w.store.Run(ctx, org, runID)
	if err != nil {
		return nil, nil, err
	}
	if run.Status == events.RunPending || run.Status == events.RunRunning {
		return run, nil, ErrRunNotFinished
	}
	rows, err := w.store.Rows(ctx, org, runID)
	if err != nil {
		return run, nil, err
	}
	if run.Status == events.RunAwaitingApproval {
		held, err := w.store.Held(ctx, org, runID)
		if err != nil {
			return run, nil, err
		}
		rows = append(rows, held...)
	}
	return run, f.apply(rows), nil
}

// ReportPage is [Worker.Report] a page at a time: a finished run's report
// without a filter reads only the rows it shows (a report can hold a row per
// user of a large source); a filter, or held rows to append, scan it whole.
func (w *Worker) ReportPage(ctx context.Context, org, runID string, f RowFilter, offset, limit int) (*Run, []Row, int, error) {
	run, err := w.store.Run(ctx, org, runID)
	if err != nil {
		return nil, nil, 0, err
	}
	offset = max(offset, 0)
	if f.empty() && run.Status.Final() {
		rows, total, err := w.store.RowsPage(ctx, org, runID, offset, limit)
		return run, rows, total, err
	}
	run, rows, err := w.Report(ctx, org, runID, f)
	if err != nil {
		return run, nil, 0, err
	}
	offset = min(offset, len(rows))
	return run, rows[offset:min(offset+limit, len(rows))], len(rows), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// slotRunID is the run id of a schedule slot: the same on every replica.
func slotRunID(in *Integration, slot time.Time) string {
	return "s-" + slot.UTC().Format("20060102T1504") + "-" + strings.TrimPrefix(in.ID, "pi-")
}

// Team is a directory team (SCIM Group) a Slack group can be mapped to.
type Team struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// DirectoryTeams lists the directory's teams, for the team mapping picker.
func (w *Worker) DirectoryTeams(ctx context.Context, org string) ([]Team, error) {
	in, err := w.active(ctx, org)
	if err != nil {
		return nil, err
	}
	dir, err := w.directoryFor(ctx, in)
	if err != nil {
		return nil, err
	}
	out := []Team{}
	for g, err := range dir.c.AllGroups(ctx, "", 0, false) {
		if err != nil {
			return nil, fmt.Errorf("provisioning: listing the directory's teams: %w", err)
		}
		out = append(out, Team{ID: g.ID, Name: g.DisplayName})
	}
	slices.SortFunc(out, func(a, b Team) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, nil
}
