package events_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/events"
)

// orgUserDeactivated is the body other systems publish on
// org.user.deactivated.<org_id> when they deactivate a user in the org.
type orgUserDeactivated struct {
	SchemaVersion int    `json:"schema_version"`
	OrgID         string `json:"org_id"`
	OrgUserID     string `json:"org_user_id"`
}

// A system outside orgbridge tells it that an org user was deactivated. The
// message id makes a retried publish land once.
func ExamplePublisher_Publish() {
	// A throwaway server for the example; in production connect to NATS_URL.
	dir, _ := os.MkdirTemp("", "events-example")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	srv.Start()
	defer srv.Shutdown()
	srv.ReadyForConnections(5e9)

	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// orgbridge creates its streams when it starts; the example does it itself.
	for _, spec := range events.StreamSpecs() {
		js.CreateOrUpdateStream(ctx, events.StreamConfig(spec, events.StreamOptions{}))
	}

	pub := events.NewPublisher(js)
	msg := orgUserDeactivated{SchemaVersion: events.SchemaVersion, OrgID: "00D000000000001", OrgUserID: "005000000000042"}
	subject := events.OrgUserDeactivatedSubject(msg.OrgID)
	for attempt := 1; attempt <= 2; attempt++ {
		ack, err := pub.Publish(ctx, subject, "hr-offboarding-7731", msg)
		if err != nil {
			fmt.Println("not stored:", err)
			return
		}
		fmt.Printf("attempt %d: stream %s, duplicate %v\n", attempt, ack.Stream, ack.Duplicate)
	}
	// Output:
	// attempt 1: stream ORG, duplicate false
	// attempt 2: stream ORG, duplicate true
}
