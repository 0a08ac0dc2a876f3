package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/store"
)

// DurableEvents is the consumer of the Slack events that update one user or
// team between daily syncs.
const DurableEvents = "provisioning-events"

// kSource maps a Slack source (workspace or enterprise) to the org whose
// active integration reads it.
func kSource(source string) string { return store.Key(source, "prov", "org") }

// EventsConsumerConfig is the consumer of team_join, user_change and
// subteam_members_changed.
func (w *Worker) EventsConsumerConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{Stream: events.StreamSlack, Durable: w.cfg.Durable + "-events",
		FilterSubjects: []string{"slack.events.*.team_join", "slack.events.*.user_change", "slack.events.*.subteam_members_changed"}}
}

// slackEvent is the part of an Events API callback the worker reads.
type slackEvent struct {
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id"`
	EventID      string `json:"event_id"`
	Event        struct {
		Type string          `json:"type"`
		User json.RawMessage `json:"user"`
		// subteam_members_changed
		SubteamID    string   `json:"subteam_id"`
		AddedUsers   []string `json:"added_users"`
		RemovedUsers []string `json:"removed_users"`
	} `json:"event"`
}

// HandleEvent turns a Slack event into a small run for the users it names,
// when their source has an active integration.
func (w *Worker) HandleEvent(ctx context.Context, m *bus.Message) error {
	var ev slackEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("provisioning: event is not JSON: %w", err))
	}
	var users []string
	switch ev.Event.Type {
	case "team_join", "user_change":
		var u struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(ev.Event.User, &u); err != nil || u.ID == "" {
			return bus.Permanent(fmt.Errorf("provisioning: %s without a user id", ev.Event.Type))
		}
		users = []string{u.ID}
	case "subteam_members_changed":
		users = append(slices.Clone(ev.Event.AddedUsers), ev.Event.RemovedUsers...)
	default:
		return nil
	}
	slices.Sort(users)
	users = slices.Compact(users)
	if len(users) == 0 || len(users) > 1000 {
		return nil
	}
	org, err := w.orgOfSource(ctx, ev.TeamID, ev.EnterpriseID)
	if err != nil || org == "" {
		return err
	}
	in, err := w.store.Integration(ctx, org)
	if errors.Is(err, ErrNoIntegration) {
		return nil
	}
	if err != nil {
		return err
	}
	if in.Status != StatusActive || in.Pending() && in.LastRunID == "" {
		return nil // not syncing yet: the first sync reads everyone
	}
	// Events come in bursts (a profile edit is a user_change): they are
	// gathered in a set that the next event run takes whole, so a burst is
	// one or two runs, not one run per event.
	if err := w.rdb.SAdd(ctx, kEventUsers(org), toAny(users)...).Err(); err != nil {
		return err
	}
	id := "e-" + randomHex(12)
	pending, err := w.rdb.SetNX(ctx, kEventRun(org), id, 10*time.Minute).Result()
	if err != nil || !pending {
		return err // an event run not started yet takes these users too
	}
	run := &Run{ID: id, OrgID: org, IntegrationID: in.ID, Trigger: events.TriggerEvent, By: ev.Event.Type + " " + ev.EventID,
		Status: events.RunPending, UserIDs: users, SettingsVersion: in.SettingsVersion, Created: w.cfg.Now().UTC(), Counts: map[string]int{}}
	if _, err := w.store.CreateRun(ctx, run, w.cfg.HistoryLimit); err != nil {
		return err
	}
	return w.publishTrigger(ctx, run, events.ActionUsers, run.By)
}

func kEventUsers(org string) string { return store.Key(org, "prov", "event", "users") }
func kEventRun(org string) string   { return store.Key(org, "prov", "event", "run") }

// takeEventUsers hands the Slack users gathered from events to the run that
// starts, and lets the next event start a new run.
var takeEventUsers = redis.NewScript(`
local ids = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return ids
`)

func (w *Worker) takeEventUsers(ctx context.Context, org string) ([]string, error) {
	return takeEventUsers.Run(ctx, w.rdb, []string{kEventUsers(org), kEventRun(org)}).StringSlice()
}

func (w *Worker) orgOfSource(ctx context.Context, ids ...string) (string, error) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		org, err := w.rdb.Get(ctx, kSource(id)).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		return org, err
	}
	return "", nil
}
