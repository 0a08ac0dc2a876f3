package binding

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	if m.responseURLsRefused, err = register(reg, m.responseURLsRefused); err != nil {
		return m, err
	}
	if m.orgProbes, err = register(reg, m.orgProbes); err != nil {
		return m, err
	}
	if m.deadLetterAnswers, err = register(reg, m.deadLetterAnswers); err != nil {
		return m, err
	}
	m.unreplicated, err = register(reg, m.unreplicated)
	return m, err
}

// register registers c, or returns the collector already registered under its
// name: the ingress and the workers build this worker in one process in dev.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
