package main

import (
	"os"

	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// buildDisconnect builds the disconnect worker. Installations come from the
// Redis-backed dev store until issue 4's installation store replaces it. The
// returned *disconnect.Worker also serves the admin API (AdminHandler).
func buildDisconnect(d workerDeps) (worker, error) {
	sc, err := slackapi.New(d.cfg.Slack.APIURL)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return disconnect.New(disconnect.Deps{
		JS: d.js, Redis: d.rdb, Slack: sc,
		Installations: disconnect.NewRedisInstallations(d.rdb),
		Logger:        d.log.With("worker", "disconnect"),
	}, disconnect.Config{TimeScale: d.cfg.TimeScale, WorkerID: host})
}
