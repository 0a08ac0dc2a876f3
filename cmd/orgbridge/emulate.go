package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/orgbridge/orgbridge/internal/config"
	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	smtpemu "github.com/orgbridge/orgbridge/internal/emulator/smtp"
	"github.com/orgbridge/orgbridge/internal/ingress"
)

// emulatorOptions are the knobs `emulate` and `dev` share.
type emulatorOptions struct {
	slackAddr, orgAddr string
	// smtpAddr is where the SMTP sink listens; empty starts none. Its mail
	// control API (/_emulator/mail) is served with the org emulator's.
	smtpAddr      string
	ingressURL    string
	signingSecret string
	timeScale     float64
	slack         slackemu.Config
	org           orgemu.Config
}

// emulators are the Slack and org emulators running on their listeners, and
// the SMTP sink when one was asked for.
type emulators struct {
	slack     *slackemu.Emulator
	org       *orgemu.Emulator
	mail      *smtpemu.Sink
	slackURL  string
	orgURL    string
	listeners []net.Listener
	servers   []*http.Server
}

// startEmulators listens on both addresses and builds both worlds; serve runs them.
func startEmulators(o emulatorOptions, log *slog.Logger) (*emulators, error) {
	o.slack.SigningSecret = o.signingSecret
	o.slack.IngressURL = o.ingressURL
	o.slack.TimeScale = o.timeScale
	o.slack.Logger = log.With("part", "slack-emulator")
	o.org.Logger = log.With("part", "org-emulator")
	se, err := slackemu.New(o.slack)
	if err != nil {
		return nil, usagef("%v", err)
	}
	oe, err := orgemu.New(o.org)
	if err != nil {
		se.Close()
		return nil, usagef("%v", err)
	}
	e := &emulators{slack: se, org: oe}
	orgHandler := oe.Handler()
	if o.smtpAddr != "" {
		if e.mail, err = smtpemu.Start(o.smtpAddr, smtpemu.WithLogger(log.With("part", "smtp-sink"))); err != nil {
			e.close()
			return nil, fmt.Errorf("ORGBRIDGE_SMTP_EMULATOR_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/_emulator/mail", e.mail.Handler())
		mux.Handle("/", orgHandler)
		orgHandler = mux
	}
	for _, part := range []struct {
		name, addr string
		h          http.Handler
		setBase    func(string)
		url        *string
	}{
		{"ORGBRIDGE_SLACK_EMULATOR_ADDR", o.slackAddr, se.Handler(), se.SetBaseURL, &e.slackURL},
		{"ORGBRIDGE_ORG_EMULATOR_ADDR", o.orgAddr, orgHandler, oe.SetBaseURL, &e.orgURL},
	} {
		l, err := net.Listen("tcp", part.addr)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("%s: cannot listen on %s: %w", part.name, part.addr, err)
		}
		*part.url = "http://" + l.Addr().String()
		part.setBase(*part.url)
		e.listeners = append(e.listeners, l)
		e.servers = append(e.servers, ingress.NewHTTPServer(part.addr, part.h))
	}
	return e, nil
}

// serve runs both emulators until ctx ends.
func (e *emulators) serve(ctx context.Context, log *slog.Logger) error {
	defer e.close()
	g, gctx := errgroup.WithContext(ctx)
	for i, srv := range e.servers {
		g.Go(func() error { return serveHTTP(gctx, srv, e.listeners[i], newShutdown(gctx, 5*time.Second), 0, log) })
	}
	return g.Wait()
}

func (e *emulators) close() {
	e.slack.Close()
	e.org.Close()
	if e.mail != nil {
		_ = e.mail.Close()
	}
}

// smtpConfig points a mailer at the sink, keeping a configured sender.
func (e *emulators) smtpConfig(from string) (config.SMTP, error) {
	host, port, err := net.SplitHostPort(e.mail.Addr())
	if err != nil {
		return config.SMTP{}, fmt.Errorf("the SMTP sink's address %s: %w", e.mail.Addr(), err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return config.SMTP{}, fmt.Errorf("the SMTP sink's port %s: %w", port, err)
	}
	if from == "" {
		from = devMailFrom
	}
	return config.SMTP{Host: host, Port: p, TLS: config.SMTPTLSNone, From: from}, nil
}

// devMailFrom is the sender of mail in dev when SMTP_FROM is unset.
const devMailFrom = "orgbridge <noreply@orgbridge.invalid>"

func runEmulate(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	fs := newFlags(c, "emulate", "[flags]\n\nRuns the Slack and org emulators standalone (docs/EMULATORS.md): slack-go and the org client\n"+
		"pointed at them work unchanged, and their /_emulator/ control APIs deliver signed requests to an ingress.",
		configEnv("ORGBRIDGE_SLACK_EMULATOR_ADDR", "ORGBRIDGE_ORG_EMULATOR_ADDR", "ORGBRIDGE_SMTP_EMULATOR_ADDR", "ORGBRIDGE_SLACK_SEED_FILE",
			"SLACK_SIGNING_SECRET", "ORGBRIDGE_TIME_SCALE", "ORGBRIDGE_HTTP_ADDR")...)
	var o emulatorOptions
	fs.StringVar(&o.slackAddr, "slack-addr", "", "where the Slack emulator listens (ORGBRIDGE_SLACK_EMULATOR_ADDR)")
	fs.StringVar(&o.orgAddr, "org-addr", "", "where the org emulator listens (ORGBRIDGE_ORG_EMULATOR_ADDR)")
	fs.StringVar(&o.smtpAddr, "smtp-addr", "", "where the SMTP sink listens (ORGBRIDGE_SMTP_EMULATOR_ADDR); its mail is at <org emulator>/_emulator/mail")
	fs.StringVar(&o.ingressURL, "ingress-url", "", "ingress base URL deliveries go to (default http://ORGBRIDGE_HTTP_ADDR)")
	fs.Int64Var(&o.slack.Seed, "seed", 0, "seed of the generated worlds")
	fs.IntVar(&o.slack.Workspaces, "workspaces", 0, "standalone Slack workspaces (default 2; negative for none)")
	fs.IntVar(&o.slack.Enterprises, "enterprises", 0, "Enterprise Grid orgs (default 1)")
	fs.IntVar(&o.slack.Users, "users", 0, "users per workspace (default 20)")
	fs.IntVar(&o.slack.Groups, "groups", 0, "user groups per workspace (default 3)")
	fs.IntVar(&o.slack.ExternalTeams, "external-teams", 0, "Slack Connect teams per Grid org (default 5)")
	fs.StringVar(&o.slack.SeedFile, "seed-file", "", "JSON world for the Slack emulator, replacing the generated one (ORGBRIDGE_SLACK_SEED_FILE)")
	fs.StringVar(&o.slack.SeedFile, "slack-seed-file", "", "the same as --seed-file")
	fs.BoolVar(&o.slack.DisableRateLimits, "no-rate-limits", false, "turn the Slack emulator's rate tiers off")
	fs.IntVar(&o.org.Orgs, "orgs", 0, "generated orgs (default: the documented world of four orgs)")
	fs.IntVar(&o.org.UsersPerOrg, "users-per-org", 0, "users in each generated org")
	fs.Float64Var(&o.org.SCIMWritesPerSecond, "scim-writes-per-second", 0, "limit SCIM writes, answering 429 with Retry-After over it (0: no limit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.load(c)
	if err != nil {
		return err
	}
	o.org.Seed = o.slack.Seed
	if o.slackAddr == "" {
		o.slackAddr = cfg.SlackEmulatorAddr
	}
	if o.orgAddr == "" {
		o.orgAddr = cfg.OrgEmulatorAddr
	}
	if o.smtpAddr == "" {
		o.smtpAddr = cfg.SMTPEmulatorAddr
	}
	if o.slack.SeedFile == "" {
		o.slack.SeedFile = cfg.SlackSeedFile
	}
	if o.ingressURL == "" {
		o.ingressURL = "http://" + cfg.HTTPAddr
	}
	o.signingSecret = cfg.SlackSigningSecret.Reveal()
	o.timeScale = cfg.TimeScale
	log := newLogger(c, cfg)
	e, err := startEmulators(o, log)
	if err != nil {
		return err
	}
	printEmulators(c, e, o.ingressURL)
	return e.serve(ctx, log)
}

func printEmulators(c *cli, e *emulators, ingressURL string) {
	w := e.slack.World()
	fmt.Fprintf(c.stdout, "  Slack emulator  %s   (API %s, control %s/_emulator/world)\n", e.slackURL, e.slack.APIURL(), e.slackURL)
	fmt.Fprintf(c.stdout, "                  %d workspaces, %d Grid orgs; client_id %s; deliveries signed and sent to %s\n",
		len(w.Workspaces), len(w.Enterprises), e.slack.ClientID(), ingressURL)
	fmt.Fprintf(c.stdout, "  org emulator    %s   (control %s/_emulator/world)\n", e.orgURL, e.orgURL)
	if e.mail != nil {
		fmt.Fprintf(c.stdout, "  SMTP sink       smtp://%s   (caught mail: %s/_emulator/mail)\n", e.mail.Addr(), e.orgURL)
	}
}
