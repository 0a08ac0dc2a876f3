package provisioning

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/internal/telemetry"
)

// metrics are the worker's Prometheus series.
type metrics struct {
	runs        *prometheus.CounterVec
	actions     *prometheus.CounterVec
	duration    prometheus.Histogram
	quarantined prometheus.Gauge
	slackCalls  *prometheus.CounterVec
	dirWrites   *prometheus.CounterVec
	invites     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orgbridge_provisioning_runs_total",
			Help: "Provisioning runs that ended or paused, by status."}, []string{"status"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orgbridge_provisioning_actions_total",
			Help: "Provisioning report rows, by action and outcome."}, []string{"action", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orgbridge_provisioning_run_duration_seconds",
			Help: "Wall time of completed provisioning runs.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 16)}),
		quarantined: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orgbridge_provisioning_quarantined_integrations",
			Help: "Provisioning integrations in quarantine (their directory keeps failing)."}),
		slackCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orgbridge_provisioning_slack_calls_total",
			Help: "Slack Web API calls made by provisioning runs, by result (ok, rate_limited)."}, []string{"result"}),
		dirWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orgbridge_provisioning_directory_writes_total",
			Help: "SCIM writes made by provisioning runs, by result (ok, failed, rate_limited)."}, []string{"result"}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orgbridge_provisioning_invitations_total",
			Help: "Invitation emails to users a run created, by result (sent, failed)."}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	// A process that builds the worker twice (dev: the ingress's admin API
	// and the worker) shares one set of series.
	var err error
	m.runs, err = telemetry.Register(reg, m.runs)
	if err == nil {
		m.actions, err = telemetry.Register(reg, m.actions)
	}
	if err == nil {
		m.duration, err = telemetry.Register(reg, m.duration)
	}
	if err == nil {
		m.quarantined, err = telemetry.Register(reg, m.quarantined)
	}
	if err == nil {
		m.slackCalls, err = telemetry.Register(reg, m.slackCalls)
	}
	if err == nil {
		m.dirWrites, err = telemetry.Register(reg, m.dirWrites)
	}
	if err == nil {
		m.invites, err = telemetry.Register(reg, m.invites)
	}
	return m, err
}

// observe adds one execution's counts.
func (m *metrics) observe(s *syncRun) {
	m.slackCalls.WithLabelValues("ok").Add(float64(s.src.calls.Load() - s.src.throttled.Load()))
	m.slackCalls.WithLabelValues("rate_limited").Add(float64(s.src.throttled.Load()))
	m.dirWrites.WithLabelValues("ok").Add(float64(s.dir.writes.Load()))
	m.dirWrites.WithLabelValues("failed").Add(float64(s.dir.failed.Load()))
	m.dirWrites.WithLabelValues("rate_limited").Add(float64(s.dir.throttled.Load()))
}

// setQuarantined recounts the quarantined integrations.
func (m *metrics) setQuarantined(ctx context.Context, w *Worker) {
	orgs, err := w.store.Orgs(ctx)
	if err != nil {
		return
	}
	n := 0
	for _, org := range orgs {
		if in, err := w.store.Integration(ctx, org); err == nil && in.Status == StatusActive && in.Quarantine != nil {
			n++
		}
	}
	m.quarantined.Set(float64(n))
}
