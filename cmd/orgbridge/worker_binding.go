package main

import (
	"fmt"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/ingress"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
)

// buildBinding builds the binding worker: installs, org binding, the gate of
// commands and interactions, bot token rotation.
func buildBinding(d workerDeps) (worker, error) { return newBindingWorker(d) }

func newBindingWorker(d workerDeps) (*binding.Worker, error) {
	keys, err := store.ParseKeyring(d.cfg.EncryptionKeys.Reveal())
	if err != nil {
		return nil, fmt.Errorf("ORGBRIDGE_ENCRYPTION_KEYS: %w", err)
	}
	org, err := newOrgClient(d)
	if err != nil {
		return nil, err
	}
	return binding.New(binding.Config{
		Installations: store.NewInstallations(d.rdb, keys),
		Bindings:      binding.NewStore(d.rdb, keys),
		Mappings:      mapping.NewStore(d.rdb, keys),
		States:        store.NewOAuthStates(d.rdb, keys),
		Locker:        store.NewLocker(d.rdb),
		Idempotency:   store.NewIdempotency(d.rdb),
		Keys:          keys,
		Slack:         newSlackOAuth(d),
		Org:           org,
		Publish:       events.NewPublisher(d.js),
		PublicURL:     d.cfg.PublicURL,
		// ResponseURLs left empty: derived from SLACK_API_URL (hooks.slack.com; the emulator in dev).
		Registerer: d.reg,
		Log:        d.log.With("worker", "binding"),
	})
}

func newSlackOAuth(d workerDeps) *slackapi.OAuthApp {
	return &slackapi.OAuthApp{APIURL: d.cfg.Slack.APIURL, ClientID: d.cfg.Slack.ClientID, ClientSecret: d.cfg.Slack.ClientSecret.Reveal()}
}

// newOrgClient is the org OAuth client; its redirect is the ingress's org callback.
func newOrgClient(d workerDeps) (*orgapi.Client, error) {
	c, err := orgapi.New(orgapi.Config{BaseURL: d.cfg.Org.LoginURL, ClientID: d.cfg.Org.ClientID,
		ClientSecret: orgapi.Secret(d.cfg.Org.ClientSecret.Reveal()), RedirectURL: d.cfg.PublicURL + ingress.PathOrgCallback})
	if err != nil {
		return nil, fmt.Errorf("ORG_LOGIN_URL / ORG_CLIENT_ID / ORG_CLIENT_SECRET: %w", err)
	}
	return c, nil
}
