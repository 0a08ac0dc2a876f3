// Package mapping is the mapping worker: shared user mappings Slack user ↔
// org user. It revokes mappings fully when a user is deactivated in Slack
// (user_change with deleted=true) or in the org (org.user.deactivated), answers
// lookups both ways on NATS request/reply, and serves the mappings admin API
// (list, delete, import, export). Mappings are created by the binding worker
// when a user authenticates, through [Store.Connect].
package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/store"
)

// Durable consumer names.
const (
	DurableSlackUsers = "mapping-slack-users"
	DurableOrgUsers   = "mapping-org-users"
)

// BindingReader tells which org a workspace is bound to ("" when none); the
// binding worker's store implements it.
type BindingReader interface {
	BoundOrg(ctx context.Context, workspace string) (string, error)
}

// SlackDirectory lists a workspace's Slack users (id → active) for imports,
// once per workspace and import; the binding worker implements it with
// users.list. It fails with [ErrNoSlackApp] when nothing can list them; any
// other error is transient (rate limit, Slack or Redis unavailable).
type SlackDirectory interface {
	SlackUsers(ctx context.Context, workspace string) (map[string]bool, error)
}

// Config builds a [Worker].
type Config struct {
	Store *Store
	// NC serves the lookup service; nil serves none.
	NC  *nats.Conn
	Log *slog.Logger
	// Idempotency records processed messages (so replays change nothing).
	Idempotency *store.Idempotency
	Bindings    BindingReader
	SlackUsers  SlackDirectory
}

// Validate reports a missing dependency.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("mapping: a Store is required")
	}
	if c.Idempotency == nil {
		return errors.New("mapping: an Idempotency recorder is required")
	}
	return nil
}

// Worker is the mapping worker.
type Worker struct {
	cfg Config
	log *slog.Logger
}

// New returns the worker.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, log: cfg.Log}, nil
}

// Store returns the worker's store.
func (w *Worker) Store() *Store { return w.cfg.Store }

// Register adds the worker's consumers to r.
//
// Profile edits make user_change frequent, and only a deactivation
// (deleted=true) matters here: the others are acked before the idempotency
// record, so they leave no key behind.
func (w *Worker) Register(r *bus.Runner) error {
	idem := bus.Idempotent(w.cfg.Idempotency, 0)
	if err := r.Register(bus.ConsumerConfig{
		Stream: events.StreamSlack, Durable: DurableSlackUsers,
		FilterSubjects: []string{"slack.events.*.user_change"},
	}, w.HandleUserChange, onlyDeactivations, idem); err != nil {
		return err
	}
	return r.Register(bus.ConsumerConfig{
		Stream: events.StreamOrg, Durable: DurableOrgUsers,
		FilterSubjects: []string{"org.user.deactivated.*"},
	}, w.HandleOrgUserDeactivated, idem)
}

// Run serves the lookup service until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.NC == nil {
		<-ctx.Done()
		return nil
	}
	subs := make([]*nats.Subscription, 0, 2)
	for _, subj := range []string{events.MappingLookupOrgUserSubject, events.MappingLookupSlackUserSubject} {
		sub, err := w.cfg.NC.QueueSubscribe(subj, events.MappingLookupQueue, w.serveLookup)
		if err != nil {
			return fmt.Errorf("mapping: subscribing %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	<-ctx.Done()
	for _, s := range subs {
		_ = s.Drain()
	}
	return nil
}

func (w *Worker) serveLookup(msg *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var req events.MappingLookupRequest
	var reply events.MappingLookupReply
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		reply.Error = "request is not JSON: " + err.Error()
	} else {
		reply = w.Lookup(ctx, msg.Subject == events.MappingLookupSlackUserSubject, req)
	}
	b, _ := json.Marshal(reply)
	_ = msg.Respond(b)
}

// Lookup answers one lookup: the org user of (workspace, Slack user), or with
// bySlack the Slack user of (org user, workspace).
func (w *Worker) Lookup(ctx context.Context, toSlack bool, req events.MappingLookupRequest) events.MappingLookupReply {
	if req.Workspace == "" {
		return events.MappingLookupReply{Error: "workspace is required"}
	}
	var m *Mapping
	var err error
	if toSlack {
		if req.OrgUserID == "" {
			return events.MappingLookupReply{Error: "org_user_id is required"}
		}
		org := req.OrgID
		if org == "" && w.cfg.Bindings != nil {
			if org, err = w.cfg.Bindings.BoundOrg(ctx, req.Workspace); err != nil {
				return events.MappingLookupReply{Error: err.Error()}
			}
		}
		if org == "" {
			return events.MappingLookupReply{}
		}
		m, err = w.cfg.Store.SlackUserOf(ctx, req.Workspace, org, req.OrgUserID)
	} else {
		if req.SlackUserID == "" {
			return events.MappingLookupReply{Error: "slack_user_id is required"}
		}
		m, err = w.cfg.Store.Get(ctx, req.Workspace, req.SlackUserID)
		if err == nil && req.OrgID != "" && m.OrgID != req.OrgID {
			err = ErrNotFound
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return events.MappingLookupReply{}
	case err != nil:
		return events.MappingLookupReply{Error: err.Error()}
	}
	return events.MappingLookupReply{Found: true, MappingID: m.ID, Workspace: m.Workspace, SlackUserID: m.SlackUserID,
		OrgID: m.OrgID, OrgUserID: m.OrgUserID, Username: m.Username}
}

// userChange is the part of a user_change callback the worker reads.
type userChange struct {
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id"`
	Event        struct {
		Type string `json:"type"`
		User struct {
			ID      string `json:"id"`
			TeamID  string `json:"team_id"`
			Deleted bool   `json:"deleted"`
		} `json:"user"`
	} `json:"event"`
}

// onlyDeactivations acks, unhandled and unrecorded, a user_change that does
// not deactivate the user (a profile edit).
func onlyDeactivations(next bus.Handler) bus.Handler {
	return func(ctx context.Context, m *bus.Message) error {
		var ev userChange
		if err := json.Unmarshal(m.Data, &ev); err == nil && (!ev.Event.User.Deleted || ev.Event.User.ID == "") {
			return nil
		}
		return next(ctx, m)
	}
}

// HandleUserChange fully revokes a Slack user deactivated in Slack.
func (w *Worker) HandleUserChange(ctx context.Context, m *bus.Message) error {
	var ev userChange
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("user_change is not JSON: %w", err))
	}
	if !ev.Event.User.Deleted || ev.Event.User.ID == "" {
		return nil
	}
	for _, ws := range uniq(ev.TeamID, ev.Event.User.TeamID, ev.EnterpriseID) {
		ok, err := w.cfg.Store.Revoke(ctx, ws, ev.Event.User.ID, "")
		if err != nil {
			return err
		}
		if ok {
			w.log.Info("Slack user deactivated: mapping and associations removed", "workspace", ws, "slack_user", ev.Event.User.ID)
		}
	}
	return nil
}

// HandleOrgUserDeactivated fully revokes an org user other systems report deactivated.
func (w *Worker) HandleOrgUserDeactivated(ctx context.Context, m *bus.Message) error {
	var ev events.OrgUserDeactivated
	if err := events.Decode(m.Header, m.Data, &ev); err != nil {
		return bus.Permanent(err)
	}
	if ev.OrgID == "" || ev.OrgUserID == "" {
		return bus.Permanent(errors.New("org.user.deactivated needs org_id and org_user_id"))
	}
	freed, err := w.cfg.Store.RevokeOrgUser(ctx, ev.OrgID, ev.OrgUserID)
	if err != nil {
		return err
	}
	w.log.Info("org user deactivated: mappings and associations removed", "org", ev.OrgID, "org_user", ev.OrgUserID, "workspaces", len(freed))
	return nil
}

func uniq(vals ...string) []string {
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if v == "" {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == v
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}
