package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// roleConn is a connection as one user of deploy/nats/nats.conf that
// collects the permission violations the server reports on it.
type roleConn struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
}

func dialRole(t *testing.T, ns *testenv.ProductionNATS, user string, extra ...nats.Option) *roleConn {
	t.Helper()
	rc := &roleConn{violations: make(chan error, 16)}
	opts := append(natsAuth(config.NATSAuth{User: user, Password: config.Secret(ns.Password(user))}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				select {
				case rc.violations <- err:
				default:
				}
			}
		}))
	nc, err := nats.Connect(ns.URL, append(opts, extra...)...)
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	if rc.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	rc.nc = nc
	return rc
}

// refused runs op and waits for the server to report a permission violation
// on the connection (publishes and subscriptions report it asynchronously;
// JetStream API requests it refuses get no answer).
func (rc *roleConn) refused(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx) }()
	select {
	case <-rc.violations:
		cancel()
		<-done
	case <-ctx.Done():
		t.Fatalf("%s: no permission violation within the deadline (op: %v)", what, <-done)
	}
}

// TestProductionNATSPermissions runs deploy/nats/nats.conf and checks that
// every role may do its work and nothing that belongs to another role.
func TestProductionNATSPermissions(t *testing.T) {
	ns := testenv.StartProductionNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ingress := dialRole(t, ns, "ingress")
	worker := dialRole(t, ns, "worker")
	ops := dialRole(t, ns, "ops")
	// The ingress and the workers create and update the streams as they start.
	for _, rc := range []*roleConn{ingress, worker} {
		if err := bus.EnsureStreams(ctx, rc.js, events.StreamOptions{}); err != nil {
			t.Fatalf("creating the streams: %v", err)
		}
	}

	publishes := []struct {
		user    string
		subject string
		allowed bool
	}{
		{"ingress", events.SlackEventSubject("T1", "message"), true},
		{"ingress", events.SlackCommandSubject("T1"), true},
		{"ingress", events.SlackInteractionSubject("T1"), true},
		{"ingress", events.SlackInstallSubject(events.NoTenant), true},
		{"ingress", events.OrgConnectSubject("T1"), true},
		{"ingress", events.ProvisioningSyncSubject("O1"), true},
		{"ingress", events.AppCommandSubject("/expenses"), false},
		{"ingress", events.AppInteractionSubject("A1"), false},
		{"ingress", events.DisconnectRequestSubject("E1"), false},
		{"ingress", events.DisconnectResultSubject("E1"), false},
		{"ingress", events.OrgUserDeactivatedSubject("O1"), false},
		{"ingress", events.DLQSubject("SLACK", "c"), false},
		{"worker", events.AppCommandSubject("/expenses"), true},
		{"worker", events.AppInteractionSubject("A1"), true},
		{"worker", events.DisconnectResultSubject("E1"), true},
		{"worker", events.ProvisioningRunSubject("O1"), true},
		{"worker", events.DLQSubject("SLACK", "c"), true},
		{"worker", events.SlackEventSubject("T1", "message"), false},
		{"worker", events.OrgConnectSubject("T1"), false},
		{"worker", events.OrgUserDeactivatedSubject("O1"), false},
		{"systems", events.DisconnectRequestSubject("E1"), true},
		{"systems", events.OrgUserDeactivatedSubject("O1"), true},
		{"systems", events.SlackEventSubject("T1", "message"), false},
		{"systems", events.SlackCommandSubject("T1"), false},
		{"systems", events.AppCommandSubject("/expenses"), false},
		{"systems", events.DisconnectResultSubject("E1"), false},
		{"apps", events.AppCommandSubject("/expenses"), false},
		{"apps", events.SlackEventSubject("T1", "message"), false},
		{"apps", events.DisconnectRequestSubject("E1"), false},
		{"ops", events.SlackEventSubject("T1", "message"), true},
		{"ops", events.DisconnectRequestSubject("E1"), true},
	}
	for i, tt := range publishes {
		verb := map[bool]string{true: "may", false: "may not"}[tt.allowed]
		t.Run(tt.user+" "+verb+" publish "+tt.subject, func(t *testing.T) {
			rc := dialRole(t, ns, tt.user, nats.CustomInboxPrefix(inboxOf(tt.user)))
			s, err := ops.js.Stream(ctx, streamOf(t, tt.subject))
			if err != nil {
				t.Fatal(err)
			}
			before := stored(ctx, t, s, tt.subject)
			if tt.allowed {
				if _, err := rc.js.Publish(ctx, tt.subject, []byte(`{}`), jetstream.WithMsgID(fmt.Sprintf("%s-%d", tt.user, i))); err != nil {
					t.Fatalf("publish: %v", err)
				}
				if got := stored(ctx, t, s, tt.subject); got != before+1 {
					t.Fatalf("%d messages on %s after the publish, want %d", got, tt.subject, before+1)
				}
				return
			}
			rc.refused(t, "publishing "+tt.subject, func(context.Context) error {
				if err := rc.nc.Publish(tt.subject, []byte(`{}`)); err != nil {
					return err
				}
				return rc.nc.Flush()
			})
			if got := stored(ctx, t, s, tt.subject); got != before {
				t.Fatalf("a refused publish was stored: %d messages on %s, want %d", got, tt.subject, before)
			}
		})
	}

	t.Run("a worker consumes and acknowledges", func(t *testing.T) {
		if _, err := ingress.js.Publish(ctx, events.SlackEventSubject("T2", "user_change"), []byte(`{}`), jetstream.WithMsgID("consume-1")); err != nil {
			t.Fatal(err)
		}
		cons, err := worker.js.CreateOrUpdateConsumer(ctx, events.StreamSlack, jetstream.ConsumerConfig{Durable: "acl-worker",
			FilterSubjects: []string{"slack.events.T2.*"}, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("creating a durable consumer: %v", err)
		}
		consumeOne(ctx, t, cons)
	})

	t.Run("other systems read their results, not the requests", func(t *testing.T) {
		systems := dialRole(t, ns, "systems", nats.CustomInboxPrefix(inboxOf("systems")))
		live, err := systems.nc.SubscribeSync(events.DisconnectResultSubject("E2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := systems.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := worker.js.Publish(ctx, events.DisconnectResultSubject("E2"), []byte(`{}`), jetstream.WithMsgID("result-1")); err != nil {
			t.Fatal(err)
		}
		if _, err := live.NextMsgWithContext(ctx); err != nil {
			t.Fatalf("a live subscription to results: %v", err)
		}
		cons, err := systems.js.CreateOrUpdateConsumer(ctx, events.StreamDisconnect, jetstream.ConsumerConfig{Durable: "acl-systems",
			FilterSubject: events.DisconnectResultSubject("E2"), AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("creating a consumer of results: %v", err)
		}
		consumeOne(ctx, t, cons)
		systems.refused(t, "a consumer of disconnect requests", func(ctx context.Context) error {
			_, err := systems.js.CreateOrUpdateConsumer(ctx, events.StreamDisconnect, jetstream.ConsumerConfig{Durable: "acl-snoop",
				FilterSubject: events.DisconnectRequestSubject("E2")})
			return err
		})
		systems.refused(t, "subscribing to orgbridge's replies", func(context.Context) error {
			if _, err := systems.nc.SubscribeSync("_INBOX.>"); err != nil {
				return err
			}
			return systems.nc.Flush()
		})
	})

	t.Run("apps read the APP stream and look mappings up", func(t *testing.T) {
		apps := dialRole(t, ns, "apps", nats.CustomInboxPrefix(inboxOf("apps")))
		if _, err := worker.js.Publish(ctx, events.AppCommandSubject("/acl"), []byte(`{}`), jetstream.WithMsgID("app-1")); err != nil {
			t.Fatal(err)
		}
		cons, err := apps.js.CreateOrUpdateConsumer(ctx, events.StreamApp, jetstream.ConsumerConfig{Durable: "acl-apps",
			FilterSubject: events.AppCommandSubject("/acl"), AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("creating a consumer of app commands: %v", err)
		}
		consumeOne(ctx, t, cons)
		sub, err := worker.nc.QueueSubscribe(events.MappingLookupOrgUserSubject, events.MappingLookupQueue, func(m *nats.Msg) {
			_ = m.Respond([]byte(`{"found":false}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := worker.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		reply, err := apps.nc.RequestWithContext(ctx, events.MappingLookupOrgUserSubject, []byte(`{"workspace":"T1","slack_user_id":"U1"}`))
		if err != nil || string(reply.Data) != `{"found":false}` {
			t.Fatalf("mapping lookup = %v, %v", reply, err)
		}
	})

	t.Run("the ingress's admin API and console file disconnect requests as ops", func(t *testing.T) {
		tests := []struct {
			name      string
			natsURL   string
			admin     config.NATSAuth
			wantOwnNC bool
		}{
			{name: "NATS_ADMIN_USER set: their own connection", natsURL: ns.URL,
				admin: config.NATSAuth{User: "ops", Password: config.Secret(ns.Password("ops"))}, wantOwnNC: true},
			{name: "unset: the ingress's connection", natsURL: ns.URL},
			{name: "dev (in-process): the ingress's connection", natsURL: "",
				admin: config.NATSAuth{User: "ops", Password: config.Secret(ns.Password("ops"))}},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := workerDeps{cfg: config.Config{NATSAdmin: tt.admin}, nc: ingress.nc, js: ingress.js, log: slog.New(slog.DiscardHandler)}
				adminNC, err := useAdminNATS(&d, tt.natsURL)
				if err != nil {
					t.Fatal(err)
				}
				if adminNC != nil {
					defer adminNC.Close()
				}
				if own := d.nc != ingress.nc; own != tt.wantOwnNC || (adminNC != nil) != own || (own && d.nc != adminNC) {
					t.Fatalf("own connection = %v (returned %v), want %v", own, adminNC != nil, tt.wantOwnNC)
				}
				if !tt.wantOwnNC {
					return
				}
				req := events.DisconnectRequest{EnterpriseID: "E0ACL", TargetTeam: "T0ACL", RequestedBy: "acl-test", Reason: "permissions test", RequestID: fmt.Sprintf("acl-admin-%d", i)}
				if _, err := disconnect.PublishRequest(ctx, d.js, req); err != nil {
					t.Fatalf("filing a disconnect request on the admin connection: %v", err)
				}
			})
		}
	})

	t.Run("wrong credentials are refused", func(t *testing.T) {
		tests := []struct {
			name string
			auth config.NATSAuth
		}{
			{name: "no credentials"},
			{name: "wrong password", auth: config.NATSAuth{User: "ingress", Password: "not-" + config.Secret(ns.Password("ingress"))}},
			{name: "another role's password", auth: config.NATSAuth{User: "ops", Password: config.Secret(ns.Password("ingress"))}},
			{name: "unknown user", auth: config.NATSAuth{User: "admin", Password: "admin"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				nc, err := nats.Connect(ns.URL, append(natsAuth(tt.auth), nats.NoReconnect())...)
				if err == nil {
					nc.Close()
					t.Fatal("connected; want the server to refuse")
				}
				if !errors.Is(err, nats.ErrAuthorization) {
					t.Fatalf("err = %v, want an authorization violation", err)
				}
			})
		}
	})
}

// inboxOf is the reply prefix a role's clients use: orgbridge's own parts
// share _INBOX; other teams' clients have their own (deploy/nats/nats.conf).
func inboxOf(user string) string {
	switch user {
	case "systems", "apps":
		return "_INBOX_" + user
	}
	return nats.InboxPrefix[:len(nats.InboxPrefix)-1]
}

func streamOf(t *testing.T, subject string) string {
	t.Helper()
	prefix, _, _ := strings.Cut(subject, ".")
	for _, spec := range events.StreamSpecs() {
		for _, s := range spec.Subjects {
			if strings.HasPrefix(s, prefix+".") {
				return spec.Name
			}
		}
	}
	t.Fatalf("no stream takes %s", subject)
	return ""
}

func stored(ctx context.Context, t *testing.T, s jetstream.Stream, subject string) uint64 {
	t.Helper()
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func consumeOne(ctx context.Context, t *testing.T, cons jetstream.Consumer) {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	n := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
		n++
	}
	if n != 1 || batch.Error() != nil {
		t.Fatalf("fetched %d messages (%v), want 1", n, batch.Error())
	}
}

// TestNATSAuthNKeySeed connects with NATS_NKEY_SEED to a server that knows
// the user by its public nkey, and checks a missing seed file is named.
func TestNATSAuthNKeySeed(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	tests := []struct {
		name string
		auth config.NATSAuth
		want func(error) bool // nil: connects
	}{
		{name: "seed file", auth: config.NATSAuth{NKeySeedFile: seedFile}},
		{name: "missing seed file", auth: config.NATSAuth{NKeySeedFile: seedFile + ".missing"},
			want: func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
		{name: "no credentials", want: func(err error) bool { return errors.Is(err, nats.ErrAuthorization) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(s.ClientURL(), append(natsAuth(tt.auth), nats.NoReconnect())...)
			if err == nil {
				nc.Close()
			}
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("connect: %v", err)
			case tt.want != nil && (err == nil || !tt.want(err)):
				t.Fatalf("connect err = %v; want it refused", err)
			}
		})
	}
}
