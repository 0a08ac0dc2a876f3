package disconnect

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus metrics.
type metrics struct {
	// auditFailures counts writes of audit entries that failed (each one
	// fails its step, which is retried: the entries are written later, not lost).
	auditFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orgbridge_disconnect_audit_failures_total",
		Help: "Writes of disconnect audit entries that failed; the step that wrote them is retried.",
	})}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.auditFailures); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		c, ok := are.ExistingCollector.(prometheus.Counter)
		if !ok {
			return nil, err
		}
		m.auditFailures = c
	}
	return m, nil
}
