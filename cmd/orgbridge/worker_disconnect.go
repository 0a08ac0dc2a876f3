package main

import (
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/slackapi"
	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/workers/disconnect"
)

// buildDisconnect builds the disconnect worker. The returned *disconnect.Worker
// also serves the admin API (AdminHandler).
func buildDisconnect(d workerDeps) (worker, error) {
	return newDisconnectWorker(d)
}

func newDisconnectWorker(d workerDeps) (*disconnect.Worker, error) {
	sc, err := slackapi.New(d.cfg.Slack.APIURL)
	if err != nil {
		return nil, err
	}
	installs, err := disconnectInstallations(d.cfg, d.rdb)
	if err != nil {
		return nil, err
	}
	return disconnect.New(disconnect.Deps{
		JS: d.js, Redis: d.rdb, Slack: sc,
		Installations: installs,
		Logger:        d.log.With("worker", "disconnect"),
		Registerer:    d.reg,
	}, disconnect.Config{TimeScale: d.cfg.TimeScale, WorkerID: workerID(d.cfg), AuditRetention: d.cfg.AuditRetention,
		MaxNotBefore: maxNotBefore(d.cfg.Streams.MaxAge)})
}

// workerID names this replica in the audit trail: ORGBRIDGE_WORKER_ID, else
// the host name (a pod's name on Kubernetes).
func workerID(cfg config.Config) string {
	if cfg.WorkerID != "" {
		return cfg.WorkerID
	}
	host, _ := os.Hostname()
	return host
}

// maxNotBefore is how far ahead a disconnect may be scheduled: an hour less
// than the stream keeps messages, since a waiting request lives in the stream.
func maxNotBefore(streamMaxAge time.Duration) time.Duration {
	if streamMaxAge <= 0 {
		return 0 // no limit on the stream: the worker's default
	}
	if streamMaxAge <= 2*time.Hour {
		return max(streamMaxAge/2, time.Minute)
	}
	return streamMaxAge - time.Hour
}

// disconnectInstallations reads org-wide installs of this Slack app from the
// installation store the binding worker fills.
func disconnectInstallations(cfg config.Config, rdb redis.UniversalClient) (disconnect.StoreInstallations, error) {
	keys, err := store.ParseKeyring(cfg.EncryptionKeys.Reveal())
	if err != nil {
		return disconnect.StoreInstallations{}, usagef("ORGBRIDGE_ENCRYPTION_KEYS: %v", err)
	}
	return disconnect.StoreInstallations{Store: store.NewInstallations(rdb, keys), AppID: cfg.Slack.AppID}, nil
}
