package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/orgapi"
)

// Run phases, in order; a resumed run starts again at its phase.
const (
	phaseUsers      = "users"
	phaseDeactivate = "deactivate"
	phaseTeams      = "teams"
	phaseDone       = "done"
)

// syncRun is one execution of a run: what it read and what it changed so far.
type syncRun struct {
	w   *Worker
	in  *Integration
	run *Run
	src *source
	dir *directory
	log *slog.Logger
	dry bool

	teams  []string // source workspaces ("" for a workspace token)
	groups map[string]*slackGroup
	scope  map[string]bool // nil: everyone

	mu        sync.Mutex
	links     map[string]Link   // Slack id → link
	dirOwner  map[string]string // directory id → Slack id, for every link
	seen      map[string]bool   // provisioned (kept active) by this run
	emails    map[string]string // lower-case email → Slack id, this run
	rows      []Row             // not yet written
	newLinks  map[string]Link   // not yet written
	dropLinks []string          // not yet written
	seenBuf   []string          // not yet written

	ixOnce sync.Once
	ix     *dirIndex
	ixErr  error
}

func (s *syncRun) count(action, outcome string) {
	s.run.Counts[action+":"+outcome]++
}

// addRow records a report row; the caller holds s.mu.
func (s *syncRun) addRow(r Row) {
	if s.dry && r.Outcome == OutSucceeded {
		r.Outcome = OutPlanned
	}
	r.At = s.w.cfg.Now().UTC()
	s.rows = append(s.rows, r)
	s.count(r.Action, r.Outcome)
	s.w.metrics.actions.WithLabelValues(r.Action, r.Outcome).Inc()
}

// record adds a row, taking the lock.
func (s *syncRun) record(r Row) {
	s.mu.Lock()
	s.addRow(r)
	s.mu.Unlock()
}

// plan records what a preview would do.
func (s *syncRun) plan(r Row) error {
	r.Outcome = OutPlanned
	s.record(r)
	return nil
}

func (s *syncRun) setLink(id string, l Link) {
	l.Source = s.in.Source.ID()
	if prev, ok := s.links[id]; ok && prev.DirID != l.DirID {
		delete(s.dirOwner, prev.DirID)
	}
	s.links[id] = l
	s.dirOwner[l.DirID] = id
	if !s.dry {
		s.newLinks[id] = l
	}
}

func (s *syncRun) dropLink(id string) {
	if l, ok := s.links[id]; ok {
		delete(s.dirOwner, l.DirID)
		delete(s.links, id)
		if !s.dry {
			delete(s.newLinks, id)
			s.dropLinks = append(s.dropLinks, id)
		}
	}
}

// flush writes what the run changed since the last flush and checkpoints it.
func (s *syncRun) flush(ctx context.Context) error {
	s.mu.Lock()
	rows, links, drop, seen := s.rows, s.newLinks, s.dropLinks, s.seenBuf
	s.rows, s.newLinks, s.dropLinks, s.seenBuf = nil, map[string]Link{}, nil, nil
	s.mu.Unlock()
	st := s.w.store
	org := s.in.OrgID
	if err := st.SaveLinks(ctx, org, links, drop); err != nil {
		return err
	}
	if err := st.MarkSeen(ctx, org, s.run.ID, seen); err != nil {
		return err
	}
	if err := st.AppendRows(ctx, org, s.run.ID, rows); err != nil {
		return err
	}
	return st.SaveRun(ctx, s.run)
}

// index reads the directory once, the first time an unlinked user needs it.
func (s *syncRun) index(ctx context.Context) (*dirIndex, error) {
	s.ixOnce.Do(func() { s.ix, s.ixErr = s.dir.index(ctx) })
	return s.ix, s.ixErr
}

// execute runs (or resumes) the whole sync.
func (s *syncRun) execute(ctx context.Context) error {
	if err := s.readGroups(ctx); err != nil {
		return err
	}
	if s.run.Phase == "" {
		s.run.Phase = phaseUsers
	}
	if s.run.Phase == phaseUsers {
		if err := s.syncUsers(ctx); err != nil {
			return err
		}
		s.run.Phase = phaseDeactivate
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	if s.run.Phase == phaseDeactivate {
		held, err := s.deactivateMissing(ctx)
		if err != nil {
			return err
		}
		if held {
			return errHeld
		}
		s.run.Phase = phaseTeams
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	if s.run.Phase == phaseTeams {
		if err := s.syncTeams(ctx); err != nil {
			return err
		}
		s.run.Phase = phaseDone
	}
	return s.flush(ctx)
}

// errHeld stops a run that waits for an admin to approve its deactivations.
var errHeld = errors.New("provisioning: deactivations held for approval")

// readGroups reads the source's workspaces and user groups and works out
// who is in scope.
func (s *syncRun) readGroups(ctx context.Context) error {
	teams, err := s.src.workspaces(ctx)
	if err != nil {
		return err
	}
	s.teams = teams
	set := s.in.Settings
	needGroups := set.Scope == ScopeGroups || set.MapTeams
	s.groups = map[string]*slackGroup{}
	if needGroups {
		if s.groups, err = s.src.groups(ctx, teams); err != nil {
			return err
		}
	}
	if set.Scope == ScopeGroups {
		s.scope = map[string]bool{}
		for _, g := range set.Groups {
			sg := s.groups[g]
			if sg == nil || sg.Disabled {
				continue
			}
			for _, m := range sg.Members {
				s.scope[m] = true
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range set.allGroups() {
		switch sg := s.groups[g]; {
		case !needGroups:
		case sg == nil:
			s.addRow(Row{Action: ActSkip, Outcome: OutSkipped, Details: fmt.Sprintf("Slack group %s no longer exists; it contributes nobody. Remove it from the configuration.", g)})
		case sg.Disabled && s.run.Phase == "":
			s.addRow(Row{Action: ActSkip, Outcome: OutSkipped, Details: fmt.Sprintf("Slack group %s (@%s) is disabled; it contributes nobody.", g, sg.Handle)})
		}
	}
	return nil
}

// inScope reports whether the Slack user id is provisioned under the settings.
func (s *syncRun) inScope(id string) bool { return s.scope == nil || s.scope[id] }

// usersPage is one users.list page and the cursor of the page after it.
type usersPage struct {
	users []slack.User
	next  string
	err   error
}

// syncUsers reads users.list page by page from the checkpoint and makes the
// directory match each page. The next page is read while the current one
// is applied, so a run takes as long as Slack's pacing allows, not that plus
// the directory's time; the checkpoint still moves only once a page is applied.
func (s *syncRun) syncUsers(ctx context.Context) error {
	for ; s.run.Workspace < len(s.teams); s.run.Workspace, s.run.Cursor = s.run.Workspace+1, "" {
		team := s.teams[s.run.Workspace]
		pctx, cancel := context.WithCancel(ctx)
		pages := make(chan usersPage, 1)
		fetched := make(chan struct{})
		go func() {
			defer close(fetched)
			defer close(pages)
			cursor := s.run.Cursor
			for {
				users, next, err := s.src.usersPage(pctx, team, cursor, s.w.cfg.PageSize)
				select {
				case pages <- usersPage{users: users, next: next, err: err}:
				case <-pctx.Done():
					return
				}
				if err != nil || next == "" {
					return
				}
				cursor = next
			}
		}()
		err := s.consumePages(ctx, pages)
		cancel()
		<-fetched
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *syncRun) consumePages(ctx context.Context, pages <-chan usersPage) error {
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		if err := s.applyPage(ctx, p.users); err != nil {
			return err
		}
		s.run.Pages++
		s.run.Cursor = p.next
		if err := s.flush(ctx); err != nil {
			return err
		}
		if s.w.afterPage != nil {
			if err := s.w.afterPage(ctx, s.run); err != nil {
				return err
			}
		}
		if p.next == "" {
			return nil
		}
	}
	return ctx.Err()
}

// applyPage provisions one page of users: a sequential pass decides, then the
// directory writes go out with bounded concurrency.
func (s *syncRun) applyPage(ctx context.Context, users []slack.User) error {
	var todo []*slack.User
	s.mu.Lock()
	for i := range users {
		u := &users[i]
		if !provisionable(u) {
			continue
		}
		id := userID(u)
		if s.seen[id] {
			continue // a Grid user listed in several workspaces, or a resumed page
		}
		s.run.UsersSeen++
		if u.Deleted || !s.inScope(id) {
			continue // deactivated after the last page if orgbridge manages them
		}
		f := fieldsOf(u)
		if f.Email == "" {
			if _, linked := s.links[id]; linked {
				s.markSeen(id) // keep them as they are
			}
			s.addRow(Row{Action: ActSkip, Outcome: OutSkipped, SlackID: id, Name: describeUser(u),
				Details: "Slack gives no email address for this user, so they cannot be provisioned. Check that they have a confirmed email in Slack and that the Slack connection has the users:read.email permission."})
			continue
		}
		lower := strings.ToLower(f.Email)
		if other, dup := s.emails[lower]; dup && other != id {
			if _, linked := s.links[id]; linked {
				s.markSeen(id)
			}
			s.addRow(Row{Action: ActCreate, Outcome: OutFailed, SlackID: id, Name: describeUser(u), Email: f.Email,
				Details: fmt.Sprintf("Slack user %s already has the email %s (letter case aside); two Slack users are never merged into one directory user. Give one of them another email in Slack.", other, s.emailOf(other))})
			continue
		}
		s.emails[lower] = id
		s.markSeen(id)
		todo = append(todo, u)
	}
	s.mu.Unlock()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.w.cfg.DirectoryConcurrency)
	for _, u := range todo {
		g.Go(func() error { return s.provision(gctx, u) })
	}
	return g.Wait()
}

func (s *syncRun) emailOf(id string) string {
	if l, ok := s.links[id]; ok {
		return l.Fields.Email
	}
	for e, other := range s.emails {
		if other == id {
			return e
		}
	}
	return ""
}

// markSeen records that the run keeps id active; the caller holds s.mu.
func (s *syncRun) markSeen(id string) {
	s.seen[id] = true
	s.seenBuf = append(s.seenBuf, id)
}

// provision makes the directory user of one in-scope, active Slack user match.
// Only errors that should stop the run are returned; a refused user is a
// failed row.
func (s *syncRun) provision(ctx context.Context, u *slack.User) error {
	id := userID(u)
	f := fieldsOf(u)
	base := Row{SlackID: id, Name: describeUser(u), Email: f.Email}
	s.mu.Lock()
	link, linked := s.links[id]
	s.mu.Unlock()
	if linked {
		if link.Active && link.Fields == f {
			s.mu.Lock()
			s.run.Counts["unchanged"]++
			s.mu.Unlock()
			s.w.metrics.actions.WithLabelValues("unchanged", OutSucceeded).Inc()
			return nil
		}
		return s.update(ctx, base, id, link, f)
	}
	ix, err := s.index(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	du := ix.byExternal[id]
	if du == nil {
		du = ix.byName[strings.ToLower(f.Email)]
	}
	var owner string
	var ownerLinked bool
	if du != nil {
		owner, ownerLinked = s.dirOwner[du.ID]
	}
	s.mu.Unlock()
	switch {
	case du == nil:
		return s.create(ctx, base, id, f)
	case du.ExternalID == id:
		// orgbridge made it (a run that stopped before it recorded the link) or linked it before
		return s.link(ctx, base, id, du, f, "linked again to the directory user whose externalId is this Slack user")
	case ownerLinked && owner != id && s.linkSource(owner) != s.in.Source.ID():
		// the directory user is orgbridge's under a Slack id of the source this one replaced
		return s.link(ctx, base, id, du, f, fmt.Sprintf("matched by email; the directory user moves from Slack user %s of the replaced source to %s", owner, id))
	case ownerLinked && owner != id:
		base.Action, base.Outcome, base.DirectoryID = ActCreate, OutFailed, du.ID
		base.Details = fmt.Sprintf("directory user %s (%s) belongs to Slack user %s, whose email is the same (letter case aside); two Slack users are never merged. Give one of them another email in Slack.", du.ID, du.UserName, owner)
		s.record(base)
		return nil
	case du.ExternalID != "":
		base.Action, base.Outcome, base.DirectoryID = ActCreate, OutFailed, du.ID
		base.Details = fmt.Sprintf("directory user %s (%s) already has this email but belongs to another source (externalId %s); orgbridge never takes over such a user. Clear its externalId in the directory if orgbridge should manage it.", du.ID, du.UserName, du.ExternalID)
		s.record(base)
		return nil
	default:
		return s.link(ctx, base, id, du, f, "matched an existing directory user by email; orgbridge manages it from now on")
	}
}

// linkSource is the source the link of Slack user id was made under.
func (s *syncRun) linkSource(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.links[id].Source
}

// userOps are the PATCH operations that set f (and active) on a directory user.
func userOps(old, f Fields, externalID string, activate bool) ([]orgapi.PatchOperation, []Change) {
	var ops []orgapi.PatchOperation
	var ch []Change
	set := func(field, path string, o, n string, value any) {
		if o == n {
			return
		}
		ops = append(ops, orgapi.PatchOperation{Op: "replace", Path: path, Value: value})
		ch = append(ch, Change{Field: field, Old: o, New: n})
	}
	if externalID != "" {
		ops = append(ops, orgapi.PatchOperation{Op: "replace", Path: "externalId", Value: externalID})
	}
	set("userName", "userName", old.UserName, f.UserName, f.UserName)
	set("givenName", "name.givenName", old.GivenName, f.GivenName, f.GivenName)
	set("familyName", "name.familyName", old.FamilyName, f.FamilyName, f.FamilyName)
	set("displayName", "displayName", old.DisplayName, f.DisplayName, f.DisplayName)
	set("email", "emails", old.Email, f.Email, []orgapi.MultiValue{{Value: f.Email, Type: "work", Primary: true}})
	set("title", "title", old.Title, f.Title, f.Title)
	set("photo", "photos", old.Photo, f.Photo, photos(f.Photo))
	set("userType", "userType", old.UserType, f.UserType, f.UserType)
	if activate {
		ops = append(ops, orgapi.PatchOperation{Op: "replace", Path: "active", Value: true})
		ch = append(ch, Change{Field: "active", Old: "false", New: "true"})
	}
	return ops, ch
}

func photos(url string) []orgapi.MultiValue {
	if url == "" {
		return []orgapi.MultiValue{}
	}
	return []orgapi.MultiValue{{Value: url, Type: "photo", Primary: true}}
}

// update patches a linked user whose Slack data changed, or reactivates them.
func (s *syncRun) update(ctx context.Context, base Row, id string, link Link, f Fields) error {
	ops, changes := userOps(link.Fields, f, "", !link.Active)
	base.Action, base.DirectoryID, base.Changes = ActUpdate, link.DirID, changes
	if !link.Active {
		base.Action = ActReactivate
		base.Details = "the user is active in Slack again and comes back as the same directory user"
	}
	if s.dry {
		return s.plan(base)
	}
	out, err := s.dir.patch(ctx, link.DirID, link.Version, ops)
	if errors.Is(err, orgapi.ErrNotFound) {
		// deleted in the directory by someone: provision them again
		s.mu.Lock()
		s.dropLink(id)
		s.mu.Unlock()
		base.Details = fmt.Sprintf("directory user %s no longer exists; a new one is created", link.DirID)
		return s.create(ctx, base, id, f)
	}
	if err != nil {
		return s.failed(ctx, base, err)
	}
	link.Fields, link.Active, link.Version = f, true, versionOf(out)
	s.mu.Lock()
	s.setLink(id, link)
	base.Outcome = OutSucceeded
	s.addRow(base)
	s.mu.Unlock()
	return nil
}

// link takes over an existing directory user: externalId, the provisioned
// fields and active are set in one PATCH.
func (s *syncRun) link(ctx context.Context, base Row, id string, du *dirUser, f Fields, why string) error {
	ops, changes := userOps(Fields{}, f, id, !du.Active)
	if du.ExternalID != id {
		changes = append([]Change{{Field: "externalId", Old: du.ExternalID, New: id}}, changes...)
	}
	base.Action, base.DirectoryID, base.Changes, base.Details = ActUpdate, du.ID, changes, why
	if !du.Active {
		base.Action = ActReactivate
	}
	if s.dry {
		return s.plan(base)
	}
	out, err := s.dir.patch(ctx, du.ID, du.Version, ops)
	if err != nil {
		return s.failed(ctx, base, err)
	}
	s.mu.Lock()
	if owner, ok := s.dirOwner[du.ID]; ok && owner != id {
		s.dropLink(owner)
	}
	s.setLink(id, Link{DirID: du.ID, Version: versionOf(out), Active: true, Fields: f, Created: false})
	base.Outcome = OutSucceeded
	s.addRow(base)
	s.mu.Unlock()
	return nil
}

// create creates the directory user of a Slack user seen for the first time.
func (s *syncRun) create(ctx context.Context, base Row, id string, f Fields) error {
	_, changes := userOps(Fields{}, f, "", false)
	base.Action, base.Changes = ActCreate, changes
	if s.dry {
		return s.plan(base)
	}
	active := true
	u := &orgapi.User{ExternalID: id, UserName: f.UserName, DisplayName: f.DisplayName, Title: f.Title, Active: &active,
		Name:   &orgapi.Name{GivenName: f.GivenName, FamilyName: f.FamilyName, Formatted: f.DisplayName},
		Emails: []orgapi.MultiValue{{Value: f.Email, Type: "work", Primary: true}}, Photos: photos(f.Photo)}
	if f.UserType != "" {
		u.UserType = f.UserType
	}
	out, err := s.dir.create(ctx, u)
	if errors.Is(err, orgapi.ErrConflict) {
		return s.conflict(ctx, base, id, f, err)
	}
	if err != nil {
		return s.failed(ctx, base, err)
	}
	s.mu.Lock()
	s.setLink(id, Link{DirID: out.ID, Version: versionOf(out), Active: true, Fields: f, Created: true})
	base.DirectoryID, base.Outcome = out.ID, OutSucceeded
	s.addRow(base)
	s.mu.Unlock()
	if s.in.Settings.AutoInvite {
		s.w.invite(ctx, s.in, id, f)
	}
	return nil
}

// conflict explains a 409 on create: the user may exist under this Slack id
// (then it is linked), or another directory user holds the email.
func (s *syncRun) conflict(ctx context.Context, base Row, id string, f Fields, cerr error) error {
	if found, err := s.dir.find(ctx, orgapi.FilterEq("externalId", id)); err == nil && len(found) == 1 {
		du := found[0]
		return s.link(ctx, base, id, &dirUser{ID: du.ID, ExternalID: du.ExternalID, UserName: du.UserName, Version: versionOf(&du), Active: du.IsActive()}, f,
			"the directory already had this Slack user (externalId); linked")
	}
	holder := ""
	if found, err := s.dir.find(ctx, orgapi.FilterEq("userName", f.UserName)); err == nil && len(found) > 0 {
		holder = found[0].ID
	}
	base.Outcome = OutFailed
	if holder != "" {
		base.Details = fmt.Sprintf("the directory refused to create the user: email %s is already used by directory user %s. Merge or rename that user in the directory; the next run retries.", f.Email, holder)
	} else {
		base.Details = "the directory refused to create the user (" + cerr.Error() + "); the next run retries"
	}
	s.record(base)
	return nil
}

// failed records a refused write as a failed row; only a cancelled run stops.
func (s *syncRun) failed(ctx context.Context, base Row, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	base.Outcome = OutFailed
	base.Details = writeAdvice(err)
	s.record(base)
	return nil
}

// writeAdvice explains a refused directory write and what to do.
func writeAdvice(err error) string {
	var ae *orgapi.APIError
	switch {
	case errors.Is(err, orgapi.ErrRateLimited):
		return "the directory kept answering 429 (too many requests); the next run retries"
	case errors.Is(err, orgapi.ErrInvalidToken):
		return "the directory refused orgbridge's access token: reconnect the integration as an org administrator"
	case errors.Is(err, orgapi.ErrPreconditionFailed):
		return "the directory user changed while orgbridge updated it, twice; the next run retries"
	case errors.As(err, &ae) && ae.Status >= 500:
		return fmt.Sprintf("the directory failed (%d %s); the next run retries", ae.Status, ae.Description)
	case errors.As(err, &ae):
		return fmt.Sprintf("the directory refused the change (%d %s %s); check the user's data in Slack", ae.Status, ae.Code, ae.Description)
	}
	return "the directory could not be reached (" + err.Error() + "); the next run retries"
}

// deactivateMissing deactivates the managed, active users this run did not
// keep (deleted, deactivated or out of scope in Slack), unless there are more
// than the deletion threshold allows: then it holds them for approval.
func (s *syncRun) deactivateMissing(ctx context.Context) (held bool, err error) {
	var ids []string
	active := 0
	for id, l := range s.links {
		if !l.Active {
			continue
		}
		active++
		if !s.seen[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return false, nil
	}
	set := s.in.Settings
	over := len(ids) > set.DeactivationLimit ||
		(set.DeactivationPercent > 0 && active > 0 && len(ids)*100 > set.DeactivationPercent*active)
	if over && s.run.Decision == "" {
		rows := make([]Row, 0, len(ids))
		for _, id := range ids {
			l := s.links[id]
			rows = append(rows, Row{Action: ActHeld, Outcome: OutSkipped, SlackID: id, Name: l.Fields.DisplayName, Email: l.Fields.Email, DirectoryID: l.DirID,
				Details: fmt.Sprintf("held: this run would deactivate %d of %d provisioned users, over the threshold (%d users or %d%%); an admin must approve or reject", len(ids), active, set.DeactivationLimit, set.DeactivationPercent),
				At:      s.w.cfg.Now().UTC()})
		}
		s.run.Held = len(rows)
		if s.dry {
			s.mu.Lock()
			for _, r := range rows {
				s.addRow(r)
			}
			s.mu.Unlock()
			return false, nil
		}
		if err := s.w.store.ResetHeld(ctx, s.in.OrgID, s.run.ID, rows); err != nil {
			return false, err
		}
		return true, nil
	}
	if s.run.Decision == decisionRejected {
		s.mu.Lock()
		for _, id := range ids {
			l := s.links[id]
			s.addRow(Row{Action: ActDeactivate, Outcome: OutSkipped, SlackID: id, Name: l.Fields.DisplayName, Email: l.Fields.Email, DirectoryID: l.DirID,
				Details: "an admin rejected this run's deactivations; the user stays active in the directory"})
		}
		s.mu.Unlock()
		return false, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.w.cfg.DirectoryConcurrency)
	for _, id := range ids {
		g.Go(func() error { return s.deactivate(gctx, id) })
	}
	return false, g.Wait()
}

func (s *syncRun) deactivate(ctx context.Context, id string) error {
	s.mu.Lock()
	l := s.links[id]
	s.mu.Unlock()
	base := Row{Action: ActDeactivate, SlackID: id, Name: l.Fields.DisplayName, Email: l.Fields.Email, DirectoryID: l.DirID,
		Changes: []Change{{Field: "active", Old: "true", New: "false"}},
		Details: "deleted, deactivated or out of scope in Slack; deactivated in the directory (never deleted)"}
	if s.dry {
		return s.plan(base)
	}
	out, err := s.dir.patch(ctx, l.DirID, l.Version, []orgapi.PatchOperation{{Op: "replace", Path: "active", Value: false}})
	if errors.Is(err, orgapi.ErrNotFound) {
		s.mu.Lock()
		s.dropLink(id)
		base.Outcome, base.Details = OutSkipped, "the directory user no longer exists"
		s.addRow(base)
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return s.failed(ctx, base, err)
	}
	l.Active, l.Version = false, versionOf(out)
	s.mu.Lock()
	s.setLink(id, l)
	base.Outcome = OutSucceeded
	s.addRow(base)
	s.mu.Unlock()
	return nil
}

// syncTeams makes each mapped team hold the in-scope, active members of its
// Slack groups, removing only members orgbridge added.
func (s *syncRun) syncTeams(ctx context.Context) error {
	set := s.in.Settings
	if !set.MapTeams {
		return nil
	}
	for _, tm := range set.Teams {
		desired := map[string]string{} // directory id → Slack id
		for _, g := range tm.SlackGroups {
			sg := s.groups[g]
			if sg == nil || sg.Disabled {
				continue
			}
			for _, m := range sg.Members {
				if l, ok := s.links[m]; ok && l.Active && s.inScope(m) {
					desired[l.DirID] = m
				}
			}
		}
		if err := s.syncTeam(ctx, tm, desired); err != nil {
			return err
		}
	}
	return nil
}

func (s *syncRun) syncTeam(ctx context.Context, tm TeamMapping, desired map[string]string) error {
	org := s.in.OrgID
	grp, err := s.dir.group(ctx, tm.TeamID)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.mu.Lock()
		s.addRow(Row{Action: ActAddTeam, Outcome: OutFailed, Team: tm.TeamID, Details: "cannot read the directory team: " + writeAdvice(err)})
		s.mu.Unlock()
		return nil
	}
	name := grp.DisplayName
	current := map[string]bool{}
	for _, m := range grp.Members {
		current[m.Value] = true
	}
	managed, err := s.w.store.TeamMembers(ctx, org, tm.TeamID)
	if err != nil {
		return err
	}
	var add, remove, forget []string
	for dirID := range desired {
		if !current[dirID] {
			add = append(add, dirID)
		}
	}
	for dirID := range managed {
		switch {
		case !current[dirID]:
			forget = append(forget, dirID) // removed by someone else
		case desired[dirID] == "":
			remove = append(remove, dirID)
		}
	}
	slices.Sort(add)
	slices.Sort(remove)
	rowFor := func(action, dirID string) Row {
		slackID := desired[dirID]
		if slackID == "" {
			slackID = s.dirOwner[dirID]
		}
		l := s.links[slackID]
		r := Row{Action: action, SlackID: slackID, Name: l.Fields.DisplayName, Email: l.Fields.Email, DirectoryID: dirID, Team: name}
		if action == ActAddTeam {
			r.Changes = []Change{{Field: "team", Old: "", New: name}}
		} else {
			r.Changes = []Change{{Field: "team", Old: name, New: ""}}
			r.Details = "no longer in a Slack group mapped to this team"
		}
		return r
	}
	outcome := OutSucceeded
	if !s.dry && (len(add) > 0 || len(remove) > 0) {
		if err := s.dir.patchMembers(ctx, tm.TeamID, add, remove); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			outcome = OutFailed
			s.mu.Lock()
			for _, id := range add {
				r := rowFor(ActAddTeam, id)
				r.Outcome, r.Details = OutFailed, writeAdvice(err)
				s.addRow(r)
			}
			for _, id := range remove {
				r := rowFor(ActRemoveTeam, id)
				r.Outcome, r.Details = OutFailed, writeAdvice(err)
				s.addRow(r)
			}
			s.mu.Unlock()
			return nil
		}
		if err := s.w.store.SetTeamMembers(ctx, org, tm.TeamID, add, append(remove, forget...)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range add {
		r := rowFor(ActAddTeam, id)
		r.Outcome = outcome
		s.addRow(r)
	}
	for _, id := range remove {
		r := rowFor(ActRemoveTeam, id)
		r.Outcome = outcome
		s.addRow(r)
	}
	return nil
}

// Decisions on held deactivations.
const (
	decisionApproved = "approved"
	decisionRejected = "rejected"
)

// finalStatus is the status a run that ran to its end gets.
func finalStatus(r *Run) events.RunStatus {
	for k, n := range r.Counts {
		if strings.HasSuffix(k, ":"+OutFailed) && n > 0 {
			return events.RunPartial
		}
	}
	return events.RunSucceeded
}

// executeUsers re-syncs the Slack users a run names (events between daily
// syncs), then the mapped teams.
func (s *syncRun) executeUsers(ctx context.Context) error {
	if s.run.Phase == "" && s.run.Trigger == events.TriggerEvent {
		more, err := s.w.takeEventUsers(ctx, s.in.OrgID)
		if err != nil {
			return err
		}
		ids := append(s.run.UserIDs, more...)
		slices.Sort(ids)
		s.run.UserIDs = slices.Compact(ids)
		s.run.Phase = phaseUsers
		if err := s.w.store.SaveRun(ctx, s.run); err != nil {
			return err
		}
	}
	if err := s.readGroups(ctx); err != nil {
		return err
	}
	for _, id := range s.run.UserIDs {
		u, err := s.src.user(ctx, id)
		if err != nil {
			return err
		}
		if !provisionable(u) {
			continue
		}
		uid := userID(u)
		if u.Deleted || !s.inScope(uid) {
			if l, ok := s.links[uid]; ok && l.Active {
				if err := s.deactivate(ctx, uid); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.applyPage(ctx, []slack.User{*u}); err != nil {
			return err
		}
	}
	if err := s.syncTeams(ctx); err != nil {
		return err
	}
	s.run.Phase = phaseDone
	return s.flush(ctx)
}

// failureRate reports a run in which most directory writes failed (at least 5 tried).
func (s *syncRun) failureRate() bool {
	ok, bad := s.dir.writes.Load(), s.dir.failed.Load()
	return ok+bad >= 5 && bad*100 >= (ok+bad)*DefaultQuarantineFailurePct
}
