package main

import (
	"fmt"

	"github.com/orgbridge/orgbridge/internal/mailer"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// buildProvisioning builds the provisioning worker. The returned
// *provisioning.Worker also serves the admin API and the connect pages.
func buildProvisioning(d workerDeps) (worker, error) {
	return newProvisioningWorker(d)
}

func newProvisioningWorker(d workerDeps) (*provisioning.Worker, error) {
	keys, err := store.ParseKeyring(d.cfg.EncryptionKeys.Reveal())
	if err != nil {
		return nil, usagef("ORGBRIDGE_ENCRYPTION_KEYS: %v", err)
	}
	sc, err := slackapi.New(d.cfg.Slack.APIURL)
	if err != nil {
		return nil, err
	}
	org, err := provisioningOrgClient(d)
	if err != nil {
		return nil, err
	}
	var m provisioning.Mailer
	if d.cfg.SMTP.Enabled() {
		ml, err := mailer.New(d.cfg.SMTP)
		if err != nil {
			return nil, usagef("SMTP_*: %v", err)
		}
		m = ml
	}
	return provisioning.New(provisioning.Deps{JS: d.js, Redis: d.rdb, Keys: keys, Slack: sc, Org: org, SlackOAuth: newSlackOAuth(d),
		Mailer: m, Logger: d.log.With("worker", "provisioning"), Registerer: d.reg},
		provisioning.Config{WorkerID: workerID(d.cfg), TimeScale: d.cfg.TimeScale})
}

// provisioningOrgClient is the org OAuth client of the provisioning connect
// pages (its own redirect URL).
func provisioningOrgClient(d workerDeps) (*orgapi.Client, error) {
	c, err := orgapi.New(orgapi.Config{BaseURL: d.cfg.Org.LoginURL, ClientID: d.cfg.Org.ClientID,
		ClientSecret: orgapi.Secret(d.cfg.Org.ClientSecret.Reveal()), RedirectURL: d.cfg.PublicURL + provisioning.PathOrgCallback})
	if err != nil {
		return nil, fmt.Errorf("ORG_LOGIN_URL / ORG_CLIENT_ID / ORG_CLIENT_SECRET: %w", err)
	}
	return c, nil
}
