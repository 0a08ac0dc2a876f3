package binding

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	responseURLsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		responseURLsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_binding_response_urls_refused_total",
			Help: "Commands and interactions dead-lettered, never answered, because their response_url is not Slack's (forged on NATS?).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.responseURLsRefused, err = register(reg, m.responseURLsRefused)
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
