package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestValidateSubject(t *testing.T) {
	long := strings.Repeat("T", 5000)
	tests := []struct {
		name, subject string
		wantReason    string // "" when the subject is valid
	}{
		{"event", events.SlackEventSubject("T0123ABCD", "app_mention"), ""},
		{"enterprise event", events.SlackEventSubject("E0123ABCD", "user_change"), ""},
		{"command", events.AppCommandSubject("/expenses"), ""},
		{"longest token", "app.commands." + strings.Repeat("x", events.MaxTokenLen), ""},
		{"dead letter", events.DLQSubject(events.StreamSlack, "binding"), ""},
		{"advisory", events.MaxDeliveriesAdvisoryPrefix + "SLACK.binding", ""},
		{"empty", "", "empty"},
		{"5,000-character tenant", events.SlackEventSubject(long, "message"), "longer than 512 bytes"},
		{"5,000-character command", events.AppCommandSubject("/" + long), "longer than 512 bytes"},
		{"token over the bound", "app.commands." + strings.Repeat("x", events.MaxTokenLen+1), "token 3 is 129 bytes long"},
		{"many short tokens over the total", strings.Repeat("abcdefghij.", 60) + "k", "longer than 512 bytes"},
		{"empty token", "slack.events..message", "token 3 is empty"},
		{"trailing dot", "slack.commands.", "token 3 is empty"},
		{"wildcard", "app.commands.*", `byte "*"`},
		{"full wildcard", "app.>", `byte ">"`},
		{"white space", "app.commands.a b", `byte " "`},
		{"line break", "app.commands.a\r\nPUB x 1", `byte "\r"`},
		{"non-ASCII", "app.commands.é", `byte "\xc3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := events.ValidateSubject(tt.subject)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("valid subject refused: %v", err)
				}
				return
			}
			var se *events.SubjectError
			if !errors.As(err, &se) || !errors.Is(err, events.ErrInvalidSubject) {
				t.Fatalf("got %v, want a *SubjectError matching ErrInvalidSubject", err)
			}
			if !strings.Contains(err.Error(), tt.wantReason) {
				t.Fatalf("error %q does not say %q", err, tt.wantReason)
			}
			if se.Len != len(tt.subject) || len(err.Error()) > 300 {
				t.Fatalf("error does not bound what it repeats: Len %d, %d-byte message", se.Len, len(err.Error()))
			}
			if se.Retryable() {
				t.Fatal("a subject error says retrying can help")
			}
		})
	}
}

// A subject longer than the server's control line makes the server answer
// "maximum control line exceeded", which nats.go treats as fatal: the
// connection closes for good. The publisher must refuse it before sending.
func TestPublisherRefusesBadSubjectsAndKeepsTheConnection(t *testing.T) {
	n := testenv.StartStreams(t)
	pub := events.NewPublisher(n.JS)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	long := strings.Repeat("A", 5000)
	body := events.AppCommand{SchemaVersion: events.SchemaVersion, Command: "/x"}
	for _, subject := range []string{
		events.AppCommandSubject("/" + long),
		events.AppInteractionSubject(long),
		events.SlackEventSubject(long, "message"),
		events.DisconnectResultSubject(long),
	} {
		_, err := pub.Publish(ctx, subject, "msg-1", body)
		if !errors.Is(err, events.ErrInvalidSubject) {
			t.Fatalf("publish on a %d-byte subject: got %.200v, want ErrInvalidSubject", len(subject), err)
		}
		if s := n.Conn.Status(); s != nats.CONNECTED {
			t.Fatalf("after refusing a %d-byte subject the connection is %s", len(subject), s)
		}
	}
	// The connection still works, and nothing of the refused messages was stored.
	if _, err := pub.Publish(ctx, events.AppCommandSubject("/expenses"), "msg-2", body); err != nil {
		t.Fatalf("publish after the refusals: %v", err)
	}
	s, err := n.JS.Stream(ctx, events.StreamApp)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("APP stream holds %d messages, want only the valid one", info.State.Msgs)
	}
	if s := n.Conn.Status(); s != nats.CONNECTED {
		t.Fatalf("connection is %s at the end", s)
	}
}
