package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/bus"
	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/console"
	"github.com/orgbridge/orgbridge/internal/httpx"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/telemetry"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// ingressPublishConns is how many NATS connections the ingress publishes over;
// see ingress.Pool.
const ingressPublishConns = 2

func runIngress(ctx context.Context, c *cli, args []string) error {
	var f serviceFlags
	fs := newFlags(c, "ingress", "[flags]\n\nServes Slack's requests (POST /slack/events, /slack/commands, /slack/interactivity),\n"+
		"publishing each to JetStream before answering; GET /healthz, /readyz and /metrics\n"+
		"(the admin API, /metrics and the detailed /readyz on ORGBRIDGE_ADMIN_ADDR when it is set).",
		configEnv(append([]string{"SLACK_SIGNING_SECRET", "NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS", "NATS_NKEY_SEED", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY", "NATS_ADMIN_USER", "NATS_ADMIN_PASSWORD", "NATS_ADMIN_CREDS", "NATS_ADMIN_NKEY_SEED", "REDIS_URL", "ORGBRIDGE_HTTP_ADDR", "ORGBRIDGE_ADMIN_ADDR", "ORGBRIDGE_ADMIN_TOKEN",
			"ORGBRIDGE_PUBLISH_TIMEOUT", "ORGBRIDGE_SHUTDOWN_TIMEOUT", "ORGBRIDGE_SHUTDOWN_DRAIN", "ORGBRIDGE_STREAM_MAX_AGE", "ORGBRIDGE_STREAM_DUPLICATE_WINDOW",
			"ORGBRIDGE_STREAM_REPLICAS", "ORGBRIDGE_LOG_LEVEL", "ORGBRIDGE_LOG_FORMAT"}, appEnv...)...)...)
	f.register(fs, true, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, log, rdb, err := loadService(ctx, c, &f, true)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := telemetry.NewRegistry()
	return serveIngress(ctx, cfg, cfg.NATSURL, rdb, reg, log, natsAuth(cfg.NATS)...)
}

// serveIngress runs the ingress until ctx ends; `ingress` and `dev` share it.
func serveIngress(ctx context.Context, cfg config.Config, natsURL string, rdb redis.UniversalClient, reg *prometheus.Registry, log *slog.Logger, natsOpts ...nats.Option) error {
	stop := newShutdown(ctx, cfg.ShutdownTimeout)
	conns, jss, err := ingressConns(natsURL, ingressPublishConns, cfg.PublishTimeout, log,
		append([]nats.Option{nats.DrainTimeout(cfg.ShutdownTimeout)}, natsOpts...)...)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	if err := bus.EnsureStreams(ctx, jss[0], cfg.Streams, bus.WaitLogger(log)); err != nil {
		return err
	}
	pubs := make([]ingress.Publisher, len(jss))
	for i, js := range jss {
		pubs[i] = js
	}
	srv, err := ingress.New(ingress.Config{
		SigningSecret:  cfg.SlackSigningSecret.Reveal(),
		PublishTimeout: cfg.PublishTimeout,
		Checks:         map[string]func(context.Context) error{"nats": natsReady(conns...), "redis": redisReady(rdb)},
		Live:           map[string]func(context.Context) error{"nats": ingress.NATSAlive(conns...)},
	}, ingress.NewPool(pubs...), log, reg)
	if err != nil {
		return err
	}
	srv.MountAdmin("GET /metrics", telemetry.Handler(reg))
	d := workerDeps{cfg: cfg, nc: conns[0], js: jss[0], rdb: rdb, log: log, reg: reg}
	adminNC, err := useAdminNATS(&d, natsURL)
	if err != nil {
		return err
	}
	if adminNC != nil {
		defer adminNC.Close()
		conns = append(conns[:len(conns):len(conns)], adminNC) // drained with the others at the end
	}
	if err := mountOAuthAndAdmin(srv, d); err != nil {
		return err
	}
	type listener struct {
		name, addr string
		h          http.Handler
		l          net.Listener
	}
	listeners := []*listener{{name: "ORGBRIDGE_HTTP_ADDR", addr: cfg.HTTPAddr, h: srv.Handler()}}
	if cfg.AdminAddr != "" {
		listeners = []*listener{{name: "ORGBRIDGE_HTTP_ADDR", addr: cfg.HTTPAddr, h: srv.PublicHandler()},
			{name: "ORGBRIDGE_ADMIN_ADDR", addr: cfg.AdminAddr, h: srv.AdminHandler()}}
	}
	for i, ln := range listeners {
		if ln.l, err = net.Listen("tcp", ln.addr); err != nil {
			for _, open := range listeners[:i] {
				open.l.Close()
			}
			return fmt.Errorf("%s: cannot listen on %s: %w", ln.name, ln.addr, err)
		}
		log.Info("ingress listening", "addr", ln.l.Addr().String(), "for", ln.name)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, ln := range listeners {
		g.Go(func() error {
			return serveHTTP(gctx, ingress.NewHTTPServer(ln.addr, ln.h), ln.l, stop, cfg.ShutdownDrain, log)
		})
	}
	// At the signal /readyz fails at once; the listeners keep serving for the
	// drain period, then stop, all by the one deadline.
	context.AfterFunc(gctx, srv.Drain)
	err = g.Wait()
	// Requests in flight have been answered; flush what is still buffered.
	dctx, cancel := stop.context()
	defer cancel()
	drain(dctx, conns)
	return err
}

// mountOAuthAndAdmin adds the OAuth redirect routes (install, org connect) and
// the admin API, which read and write the same stores as the workers.
func mountOAuthAndAdmin(srv *ingress.Server, d workerDeps) error {
	keys, err := store.ParseKeyring(d.cfg.EncryptionKeys.Reveal())
	if err != nil {
		return usagef("ORGBRIDGE_ENCRYPTION_KEYS: %v", err)
	}
	org, err := newOrgClient(d)
	if err != nil {
		return err
	}
	err = srv.MountOAuth(ingress.OAuthConfig{
		PublicURL:         d.cfg.PublicURL,
		SlackAuthorizeURL: d.cfg.Slack.OAuthURL,
		SlackClientID:     d.cfg.Slack.ClientID,
		SlackAppID:        d.cfg.Slack.AppID,
		SlackScopes:       d.cfg.Slack.Scopes,
		Org:               org,
		States:            store.NewOAuthStates(d.rdb, keys),
		Keys:              keys,
		Publisher:         events.NewPublisher(d.js),
	})
	if err != nil {
		return err
	}
	bw, err := newBindingWorker(d)
	if err != nil {
		return err
	}
	mw, err := buildMapping(d)
	if err != nil {
		return err
	}
	token := d.cfg.AdminToken.Reveal()
	// One guard for every admin route: failed attempts count per client, not per route.
	guard := httpx.NewAdminGuard(httpx.AdminGuardConfig{Token: token})
	bindingAdmin := guard.Wrap(bw.AdminHandler())
	mappingAdmin := guard.Wrap(mw.(*mapping.Worker).AdminHandler())
	srv.MountAdmin("/admin/api/installations", bindingAdmin)
	srv.MountAdmin("/admin/api/bindings/", bindingAdmin)
	srv.MountAdmin("/admin/api/orgs/", bindingAdmin) // bulk clean-up of an org's mappings
	srv.MountAdmin("/admin/api/mappings", mappingAdmin)
	srv.MountAdmin("/admin/api/mappings/", mappingAdmin)
	dw, err := newDisconnectWorker(d)
	if err != nil {
		return err
	}
	disconnectAdmin := guard.Wrap(dw.AdminHandler())
	srv.MountAdmin("/admin/api/disconnects", disconnectAdmin)
	srv.MountAdmin("/admin/api/disconnects/", disconnectAdmin)
	pw, err := newProvisioningWorker(d)
	if err != nil {
		return err
	}
	provOrg, err := provisioningOrgClient(d)
	if err != nil {
		return err
	}
	pages, start := pw.ConnectHandler(provisioning.ConnectConfig{PublicURL: d.cfg.PublicURL, SlackAuthorizeURL: d.cfg.Slack.OAuthURL,
		SlackClientID: d.cfg.Slack.ClientID, Org: provOrg, States: store.NewOAuthStates(d.rdb, keys),
		ReturnURL: func(org string) string { return d.cfg.PublicURL + console.Prefix + "orgs/" + org + "/provisioning" }})
	srv.Mount("/provisioning/", pages)
	srv.MountAdmin("/admin/api/provisioning/", guard.Wrap(pw.AdminHandler(start)))

	consoleOrg, err := orgapi.New(orgapi.Config{BaseURL: d.cfg.Org.LoginURL, ClientID: d.cfg.Org.ClientID,
		ClientSecret: orgapi.Secret(d.cfg.Org.ClientSecret.Reveal()), RedirectURL: d.cfg.PublicURL + console.Prefix + "auth/callback"})
	if err != nil {
		return fmt.Errorf("ORG_LOGIN_URL / ORG_CLIENT_ID / ORG_CLIENT_SECRET: %w", err)
	}
	con, err := console.New(console.Config{PublicURL: d.cfg.PublicURL, Org: consoleOrg, AdminToken: token, Operators: d.cfg.ConsoleOperators,
		Redis: d.rdb, Provisioning: pw, ConnectURL: start, Mappings: mw.(*mapping.Worker).Store(), Bindings: binding.NewStore(d.rdb, keys),
		MappingImport: mw.(*mapping.Worker), Installations: store.NewInstallations(d.rdb, keys),
		Operator: console.OperatorAPI{Disconnects: dw, JS: d.js},
		Logger:   d.log.With("part", "console")})
	if err != nil {
		return err
	}
	srv.Mount(console.Prefix, con.Handler())
	return nil
}
