package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/internal/config"
)

// natsConnectTimeout bounds how long the ops commands try to reach NATS before
// telling the operator it is not there.
const natsConnectTimeout = 2 * time.Second

// natsURLEnv documents NATS_URL for the ops commands' --help.
var natsURLEnv = envVar{"NATS_URL", "NATS server to connect to (default " + config.DefaultNATSURL + "); --nats-url overrides"}

// natsURLFlag adds --nats-url to fs, defaulting to NATS_URL, else the local default.
func natsURLFlag(fs *flag.FlagSet, c *cli) *string {
	def := c.getenv("NATS_URL")
	if def == "" {
		def = config.DefaultNATSURL
	}
	return fs.String("nats-url", def, "NATS server URL")
}

// connectJetStream connects to the NATS server at rawURL for a short command:
// a bounded connect, a few reconnects at most, and JetStream checked up front,
// so a missing server is one clear error after about two seconds (a cluster
// electing a leader is given up to ten to answer JetStream requests). It
// authenticates with the NATS_* credentials of c's environment (the ops user
// of deploy/nats/nats.conf).
func connectJetStream(ctx context.Context, c *cli, rawURL string) (*nats.Conn, jetstream.JetStream, error) {
	shown := redactURL(rawURL)
	auth, err := cliNATSAuth(c)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(rawURL, append([]nats.Option{
		nats.Name("orgbridge-cli"),
		nats.Timeout(natsConnectTimeout),
		nats.MaxReconnects(3),
		nats.ReconnectWait(250 * time.Millisecond),
	}, auth...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach NATS at %s: %w; is `orgbridge dev` or a NATS server running?", shown, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("NATS at %s: %w", shown, err)
	}
	if err := waitJetStream(ctx, js); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, nil, fmt.Errorf("NATS at %s has no JetStream: %w; start the server with JetStream enabled (-js), or use `orgbridge dev`", shown, err)
		}
		return nil, nil, fmt.Errorf("NATS at %s does not answer JetStream requests: %w; on a cluster, a node may have just been lost "+
			"and a leader is being elected (try again in a few seconds); on one server, start it with JetStream enabled (-js), or use `orgbridge dev`", shown, err)
	}
	return nc, js, nil
}

// jetStreamWait bounds how long an ops command waits for JetStream to answer:
// a cluster that just lost a node elects a new meta leader in a few seconds.
const jetStreamWait = 10 * time.Second

// waitJetStream asks for the account's JetStream info until it is answered,
// for up to jetStreamWait: a request unanswered within natsConnectTimeout is
// asked again; an answer that JetStream is off is final.
func waitJetStream(ctx context.Context, js jetstream.JetStream) error {
	deadline := time.Now().Add(jetStreamWait)
	for {
		actx, cancel := context.WithTimeout(ctx, natsConnectTimeout)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
			ctx.Err() != nil || time.Now().Add(natsConnectTimeout).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// redactURL hides a password in a NATS URL before it is printed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fmtTime prints t for a table: UTC RFC 3339 to the second, "-" when unknown.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
