package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// An app handler another team writes: it consumes authenticated /expenses
// commands, which carry the user's org identity, and answers through
// response_url. Nothing in it holds a token.
func Example_appCommandHandler() {
	// A throwaway NATS server and a stand-in for Slack's response_url.
	dir, _ := os.MkdirTemp("", "events-example")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	srv.Start()
	defer srv.Shutdown()
	srv.ReadyForConnections(5 * time.Second)
	answered := make(chan string, 1)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		answered <- string(b)
	}))
	defer slack.Close()

	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	for _, spec := range events.StreamSpecs() {
		js.CreateOrUpdateStream(ctx, events.StreamConfig(spec, events.StreamOptions{}))
	}

	// The handler.
	cons, _ := js.CreateOrUpdateConsumer(ctx, events.StreamApp, jetstream.ConsumerConfig{
		Durable: "expenses", FilterSubject: events.AppCommandSubject("/expenses"), AckPolicy: jetstream.AckExplicitPolicy})
	cc, _ := cons.Consume(func(m jetstream.Msg) {
		var cmd events.AppCommand
		if err := events.Decode(m.Headers(), m.Data(), &cmd); err != nil {
			_ = m.Term() // a body this reader does not understand
			return
		}
		body, _ := json.Marshal(map[string]string{"response_type": "ephemeral",
			"text": "Expense report " + cmd.Text + " for " + cmd.Org.Username})
		resp, err := http.Post(cmd.ResponseURL, "application/json", bytes.NewReader(body))
		if err != nil {
			_ = m.NakWithDelay(time.Second) // try again later
			return
		}
		resp.Body.Close()
		_ = m.Ack()
	})
	defer cc.Stop()

	// What orgbridge publishes once the user is connected and mapped.
	events.NewPublisher(js).Publish(ctx, events.AppCommandSubject("/expenses"), "app:example-1", events.AppCommand{
		SchemaVersion: events.SchemaVersion, AppID: "A0EXPENSES", Command: "/expenses", Text: "42",
		TeamID: "T0001", SlackUserID: "U0001", ResponseURL: slack.URL, ReceivedAt: time.Now(),
		Org: events.OrgIdentity{OrgID: "00D000000000001", OrgUserID: "005000000000001", Username: "alice@acme.example"},
	})
	fmt.Println(<-answered)
	// Output:
	// {"response_type":"ephemeral","text":"Expense report 42 for alice@acme.example"}
}
