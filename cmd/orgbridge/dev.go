package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/console"
	"github.com/orgbridge/orgbridge/internal/devstack"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/telemetry"
)

func runDev(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	fs := newFlags(c, "dev", "[flags]\n\nRuns everything in one process: an embedded NATS server with JetStream (also listening on\n"+
		"ORGBRIDGE_NATS_ADDR for the CLI and other systems), Redis (REDIS_URL, or a redis-server child with\n"+
		"AOF under the data dir), the ingress and every worker. State survives a restart.",
		configEnv("ORGBRIDGE_DATA_DIR", "ORGBRIDGE_HTTP_ADDR", "ORGBRIDGE_NATS_ADDR", "REDIS_URL", "SLACK_SIGNING_SECRET",
			"ORGBRIDGE_PUBLISH_TIMEOUT", "ORGBRIDGE_SHUTDOWN_TIMEOUT", "ORGBRIDGE_STREAM_MAX_AGE", "ORGBRIDGE_LOG_LEVEL", "ORGBRIDGE_LOG_FORMAT",
			"ORGBRIDGE_SLACK_SEED_FILE", "ORGBRIDGE_SMTP_EMULATOR_ADDR", "SMTP_HOST", "SMTP_FROM")...)
	f.register(fs, true, false)
	var dataDir, natsAddr, seedFile string
	fs.StringVar(&dataDir, "data-dir", "", "where JetStream and Redis keep their data (ORGBRIDGE_DATA_DIR)")
	fs.StringVar(&natsAddr, "nats-addr", "", "address the embedded NATS server listens on (ORGBRIDGE_NATS_ADDR)")
	fs.StringVar(&seedFile, "slack-seed-file", "", "JSON world for the Slack emulator, replacing the generated one (ORGBRIDGE_SLACK_SEED_FILE; docs/EMULATORS.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.load(c)
	if err != nil {
		return err
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	if natsAddr != "" {
		cfg.NATSAddr = natsAddr
	}
	if seedFile != "" {
		cfg.SlackSeedFile = seedFile
	}
	if c.getenv("ORGBRIDGE_LOG_FORMAT") == "" {
		cfg.LogFormat = "text" // a person is reading dev's logs
	}
	if c.getenv("ORGBRIDGE_SHUTDOWN_DRAIN") == "" {
		cfg.ShutdownDrain = 0 // no load balancer to drain: Ctrl-C stops at once
	}
	log := newLogger(c, cfg)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("ORGBRIDGE_DATA_DIR: cannot create %s: %w", cfg.DataDir, err)
	}
	if cfg.SlackSigningSecret == "" {
		secret, err := devSecret(cfg.DataDir, "dev-signing-secret", randomHex)
		if err != nil {
			return err
		}
		cfg.SlackSigningSecret = config.Secret(secret)
		fmt.Fprintf(c.stdout, "SLACK_SIGNING_SECRET was not set; this dev stack signs with %s (kept in %s)\n",
			secret, filepath.Join(cfg.DataDir, "dev-signing-secret"))
	}
	if cfg.EncryptionKeys == "" {
		keys, err := devSecret(cfg.DataDir, "dev-encryption-keys", func() string { return store.GenerateKeySpec("dev1") })
		if err != nil {
			return err
		}
		cfg.EncryptionKeys = config.Secret(keys)
	}
	if cfg.AdminToken == "" {
		token, err := devSecret(cfg.DataDir, "dev-admin-token", randomHex)
		if err != nil {
			return err
		}
		cfg.AdminToken = config.Secret(token)
		fmt.Fprintf(c.stdout, "ORGBRIDGE_ADMIN_TOKEN was not set; the admin API takes the bearer token kept in %s\n",
			filepath.Join(cfg.DataDir, "dev-admin-token"))
	}

	ns, err := devstack.StartNATS(cfg.NATSAddr, filepath.Join(cfg.DataDir, "jetstream"))
	if err != nil {
		return fmt.Errorf("ORGBRIDGE_NATS_ADDR: %w", err)
	}
	defer ns.Shutdown()
	if !cfg.Redis.Configured() {
		child, err := devstack.StartRedis(ctx, filepath.Join(cfg.DataDir, "redis"), log)
		if err != nil {
			return err
		}
		defer child.Stop()
		cfg.Redis.URL = child.URL()
	}
	rdb, err := openRedis(ctx, cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()

	g, gctx := errgroup.WithContext(ctx)
	// No real Slack app or org configured: the emulators stand in, so the whole
	// flow can be clicked through on one machine.
	var emu *emulators
	if !cfg.HasSlackCredentials() || !cfg.HasOrgCredentials() {
		opts := emulatorOptions{
			slackAddr: cfg.SlackEmulatorAddr, orgAddr: cfg.OrgEmulatorAddr,
			ingressURL: "http://" + cfg.HTTPAddr, signingSecret: cfg.SlackSigningSecret.Reveal(), timeScale: cfg.TimeScale,
			slack: slackemu.Config{SeedFile: cfg.SlackSeedFile},
		}
		if !cfg.SMTP.Enabled() {
			opts.smtpAddr = cfg.SMTPEmulatorAddr // no mail server: mail goes to the sink
		}
		emu, err = startEmulators(opts, log)
		if err != nil {
			return err
		}
		if emu.mail != nil {
			if cfg.SMTP, err = emu.smtpConfig(cfg.SMTP.From); err != nil {
				emu.close()
				return err
			}
		}
		if !cfg.HasSlackCredentials() {
			cfg.Slack.APIURL = emu.slack.APIURL()
			cfg.Slack.OAuthURL = emu.slackURL + "/oauth/v2/authorize"
			cfg.Slack.ClientID = emu.slack.ClientID()
			cfg.Slack.ClientSecret = config.Secret(emu.slack.ClientSecret())
			cfg.Slack.AppID = emu.slack.AppID()
		}
		if !cfg.HasOrgCredentials() {
			cfg.Org.LoginURL = emu.orgURL
			cfg.Org.ClientID = "orgbridge-dev"
			cfg.Org.ClientSecret = "orgbridge-dev"
		}
		g.Go(func() error { return emu.serve(gctx, log) })
	}

	metricsAddr := cfg.HTTPAddr
	if cfg.AdminAddr != "" {
		metricsAddr = cfg.AdminAddr
	}
	fmt.Fprintf(c.stdout, "orgbridge dev is running (Ctrl-C to stop)\n"+
		"  ingress  http://%s/slack/events  /slack/commands  /slack/interactivity\n"+
		"  metrics  http://%s/metrics\n"+
		"  NATS     %s   (export NATS_URL=%s for the CLI)\n"+
		"  Redis    %s\n"+
		"  data     %s\n",
		cfg.HTTPAddr, metricsAddr, ns.URL(), ns.URL(), cfg.Redis, cfg.DataDir)
	if emu != nil {
		printEmulators(c, emu, "http://"+cfg.HTTPAddr)
	}
	fmt.Fprintf(c.stdout, "  console  %s%s   (sign in with the org: alice@acme.example is an org admin, bob@acme.example an org user)\n", cfg.PublicURL, console.Prefix)
	fmt.Fprintf(c.stdout, "  install  %s%s   (open it in a browser to install the app", cfg.PublicURL, ingress.PathSlackInstall)
	if emu != nil {
		fmt.Fprint(c.stdout, " into the emulated workspace")
	}
	fmt.Fprintln(c.stdout, ")")

	reg := telemetry.NewRegistry()
	inProcess := nats.InProcessServer(ns.Server())
	g.Go(func() error { return serveIngress(gctx, cfg, "", rdb, reg, log, inProcess) })
	g.Go(func() error { return runWorkers(gctx, cfg, "", rdb, reg, log, nil, nil, inProcess) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("orgbridge dev stopped")
	return err
}

// devSecret returns the dev stack's secret called name, generating it on the
// first run and keeping it (owner-only) under the data dir so restarts agree.
func devSecret(dataDir, name string, generate func() string) (string, error) {
	path := filepath.Join(dataDir, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	secret := generate()
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("saving the dev %s: %w", name, err)
	}
	return secret, nil
}

func randomHex() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}
