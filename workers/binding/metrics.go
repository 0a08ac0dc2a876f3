package binding

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orgbridge/orgbridge/internal/telemetry"
)

type metrics struct {
	responseURLsRefused prometheus.Counter
	orgProbes           *prometheus.CounterVec
	deadLetterAnswers   prometheus.Counter
	unreplicated        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		responseURLsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_binding_response_urls_refused_total",
			Help: "Commands and interactions dead-lettered, never answered, because their response_url is not Slack's (forged on NATS?).",
		}),
		orgProbes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_binding_org_checks_total",
			Help: "Checks of a workspace's bound org on an interaction, by result (ok, org_not_permitted, gone).",
		}, []string{"result"}),
		deadLetterAnswers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_binding_dead_letter_answers_total",
			Help: "Dead-lettered commands and interactions whose user was told something went wrong, with the dead letter's reference.",
		}),
		unreplicated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_binding_unreplicated_saves_total",
			Help: "Tokens Slack will not give again (what: rotated_token, install) saved on the Redis primary but acknowledged by no replica: a failover now would lose them.",
		}, []string{"what"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.responseURLsRefused, err = telemetry.Register(reg, m.responseURLsRefused); err != nil {
		return m, err
	}
	if m.orgProbes, err = telemetry.Register(reg, m.orgProbes); err != nil {
		return m, err
	}
	if m.deadLetterAnswers, err = telemetry.Register(reg, m.deadLetterAnswers); err != nil {
		return m, err
	}
	m.unreplicated, err = telemetry.Register(reg, m.unreplicated)
	return m, err
}
