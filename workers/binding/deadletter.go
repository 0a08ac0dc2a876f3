package binding

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/store"
)

// DurableDeadLetters reads the dead letters of the commands and interactions
// consumers, so their users hear that something went wrong.
const DurableDeadLetters = "binding-dead-letters"

// deadLetterSubjects are the DLQ subjects [Worker.HandleDeadLetter] answers.
func deadLetterSubjects() []string {
	return []string{events.DLQSubject(events.StreamSlack, DurableCommands), events.DLQSubject(events.StreamSlack, DurableInteractions)}
}

// DeadLetterRef is how a dead letter is named to the person whose command it
// was: its id in the DLQ stream (`orgbridge dlq show <id>`).
func DeadLetterRef(dlqSeq uint64) string { return "DLQ-" + strconv.FormatUint(dlqSeq, 10) }

func msgSomethingWrong(ref string) string {
	return "Something went wrong on our side and orgbridge could not finish this. We are looking into it. " +
		"If you contact your admin, give them this reference: " + ref + "."
}

func kAnswered(tenant, identity string) string {
	return store.Key(tenant, "binding", "answered", identity)
}

// MarkAnswered records, for ttl, that the user of message identity (of
// tenant) was already told why it failed for good.
func (s *Store) MarkAnswered(ctx context.Context, tenant, identity string, ttl time.Duration) error {
	return s.rdb.Set(ctx, kAnswered(tenant, identity), "1", ttl).Err()
}

// Answered reports whether [Store.MarkAnswered] recorded identity.
func (s *Store) Answered(ctx context.Context, tenant, identity string) (bool, error) {
	n, err := s.rdb.Exists(ctx, kAnswered(tenant, identity)).Result()
	return n > 0, err
}

// markAnswered records that m's user was already told why m failed for
// good, so its dead letter adds no second answer.
func (w *Worker) markAnswered(ctx context.Context, m *bus.Message) {
	if err := w.cfg.Bindings.MarkAnswered(ctx, m.Tenant, m.Identity, InteractionTTL); err != nil {
		w.log.Warn("could not record that the user was answered", "err", err)
	}
}

// HandleDeadLetter answers the user of a command or interaction whose
// handling ended in the dead-letter queue (a permanent failure, deliveries
// used up, a crashed worker): an ephemeral "something went wrong" through its
// response_url, with the dead letter's id as the reference, so nobody is
// left with silence (Slack's "dispatch failed"). Interactions without a
// response_url (App Home, modals) get it as a message from the app. It does
// nothing for a message whose user was already told (a command name no app
// can receive), a response_url that is not Slack's (that message was not
// sent by Slack), or one older than [InteractionMaxAge].
func (w *Worker) HandleDeadLetter(ctx context.Context, m *bus.Message) error {
	if received, err := time.Parse(time.RFC3339Nano, m.Header.Get(events.HeaderReceivedAt)); err == nil && time.Since(received) > InteractionMaxAge {
		return nil
	}
	if done, err := w.cfg.Bindings.Answered(ctx, m.Tenant, m.Identity); err != nil || done {
		return err
	}
	form, err := url.ParseQuery(string(m.Data))
	if err != nil {
		return nil // not a command or an interaction: nothing to answer
	}
	a := actor{app: form.Get("api_app_id"), team: form.Get("team_id"), ent: form.Get("enterprise_id"),
		user: form.Get("user_id"), responseURL: form.Get("response_url")}
	if raw := form.Get("payload"); raw != "" {
		var p interaction
		if json.Unmarshal([]byte(raw), &p) != nil {
			return nil
		}
		a = actor{app: p.APIAppID, team: p.Team.ID, user: p.User.ID, responseURL: p.ResponseURL}
		if a.team == "" {
			a.team = p.User.TeamID
		}
		if p.Enterprise != nil {
			a.ent = p.Enterprise.ID
		}
	}
	ref := DeadLetterRef(m.StreamSeq)
	text := msgSomethingWrong(ref)
	log := bus.LoggerFrom(ctx).With("reference", ref, "team", a.team, "slack_user", a.user)
	switch {
	case a.responseURL != "":
		if err := w.cfg.ResponseURLs.Check(a.responseURL); err != nil {
			log.Warn("dead letter not answered: its response_url is not Slack's")
			return nil
		}
		if err := w.reply(ctx, a.responseURL, text, nil); err != nil {
			return err
		}
	case a.user != "" && a.app != "":
		if err := w.tellUser(ctx, a, text); err != nil {
			return err
		}
	default:
		return nil
	}
	w.metrics.deadLetterAnswers.Inc()
	log.Info("user told their request failed")
	return nil
}

// tellUser sends text to a's user as a message from the app (its App Home
// Messages tab): for answers with no response_url to go through.
func (w *Worker) tellUser(ctx context.Context, a actor, text string) error {
	c, _, err := w.botClient(ctx, a.app, a.ent, a.team)
	if errors.Is(err, store.ErrNoInstallation) {
		return nil // nothing can reach them
	}
	if err != nil {
		return err
	}
	_, _, err = c.PostMessageContext(ctx, a.user, slack.MsgOptionText(text, false))
	return err
}
