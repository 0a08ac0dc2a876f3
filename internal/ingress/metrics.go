package ingress

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests     *prometheus.CounterVec
	publishAck   *prometheus.HistogramVec
	unknownTypes prometheus.Counter
	duplicates   prometheus.Counter
	ok           map[string]prometheus.Counter // requests{route, code="200"}, looked up once
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_ingress_requests_total",
			Help: "Slack requests by route and HTTP status answered.",
		}, []string{"route", "code"}),
		publishAck: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orgbridge_ingress_publish_ack_seconds",
			Help:    "Time from publish to JetStream's acknowledgement, by route.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		unknownTypes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_ingress_unknown_event_types_total",
			Help: "Events of a type no orgbridge worker subscribes to (published all the same).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_ingress_duplicate_events_total",
			Help: "Events JetStream already held (Slack retries of a stored event).",
		}),
	}
	m.ok = make(map[string]prometheus.Counter)
	for _, route := range []string{routeEvents, routeCommands, routeInteractions} {
		m.ok[route] = m.requests.WithLabelValues(route, "200")
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.publishAck, m.unknownTypes, m.duplicates)
	}
	return m
}
