package main

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgbridge/orgbridge/internal/config"
)

// natsAuth turns the NATS_* credentials into connection options for the
// ingress, the workers and the CLI (deploy/nats/nats.conf has a user per
// role). A file that cannot be read fails the connect with the file's name.
// `orgbridge dev` does not use it: its embedded server has no users.
func natsAuth(a config.NATSAuth) []nats.Option {
	var opts []nats.Option
	switch {
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	case a.NKeySeedFile != "":
		opts = append(opts, nkeyFromSeedFile(a.NKeySeedFile))
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password.Reveal()))
	}
	if a.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(a.TLSCAFile))
	}
	if a.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(a.TLSCertFile, a.TLSKeyFile))
	}
	return opts
}

// nkeyFromSeedFile is nats.NkeyOptionFromSeed with the file read when
// connecting, so a missing file is a connect error like every other.
func nkeyFromSeedFile(path string) nats.Option {
	return func(o *nats.Options) error {
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return err
		}
		return opt(o)
	}
}

// cliNATSAuth is [natsAuth] for the ops commands, from their environment.
func cliNATSAuth(c *cli) ([]nats.Option, error) {
	a, err := config.LoadNATSAuth(c.getenv)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return natsAuth(a), nil
}

// useAdminNATS gives the ingress's admin API, console and OAuth redirects
// their own NATS connection as NATS_ADMIN_USER (the ops user of
// deploy/nats/nats.conf), when one is configured: they publish disconnect
// requests and manage dead letters, which the ingress user, serving Slack's
// traffic, may not. Without NATS_ADMIN_* (and in dev, natsURL "") d keeps the
// ingress's connection. It returns the connection it opened (nil when none),
// for the caller to drain and close.
func useAdminNATS(d *workerDeps, natsURL string) (*nats.Conn, error) {
	if natsURL == "" || !d.cfg.NATSAdmin.Set() {
		return nil, nil
	}
	auth := d.cfg.NATSAdmin
	nc, err := connectService(natsURL, "orgbridge-ingress-admin", d.log, append([]nats.Option{nats.DrainTimeout(d.cfg.ShutdownTimeout)}, natsAuth(auth)...)...)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	d.nc, d.js = nc, js
	return nc, nil
}
