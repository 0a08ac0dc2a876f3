package ingress

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests   *prometheus.CounterVec
	publishAck *prometheus.HistogramVec
	// publishRetries counts publishes sent again within the publish timeout, by reason.
	publishRetries *prometheus.CounterVec
	unknownTypes   prometheus.Counter
	duplicates     prometheus.Counter
	busy           prometheus.Counter
	ok             map[string]prometheus.Counter // requests{route, code="200"}, looked up once
}

func newMetrics(reg prometheus.Registerer, budget *byteBudget) *metrics {
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
		publishRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgbridge_ingress_publish_retries_total",
			Help: "Publishes sent again within the publish timeout (same Msg-Id), by reason: no_stream_leader, reconnecting, no_ack_yet, jetstream_unavailable. Many mean a NATS node was lost or a stream is electing its leader.",
		}, []string{"reason"}),
		unknownTypes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_ingress_unknown_event_types_total",
			Help: "Events of a type no orgbridge worker subscribes to (published all the same).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_ingress_duplicate_events_total",
			Help: "Events JetStream already held (Slack retries of a stored event).",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgbridge_ingress_busy_total",
			Help: "Requests refused unread because the bytes in flight budget was spent (events 503, commands and interactions an ephemeral try-again).",
		}),
	}
	bytesInFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orgbridge_ingress_body_bytes_in_flight",
		Help: "Bytes of request body buffers held by requests in progress (bounded by the in-flight budget).",
	}, func() float64 { return float64(budget.used.Load()) })
	bodyReads := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orgbridge_ingress_body_reads_in_progress",
		Help: "Requests whose body is being read; many for long means slow or stalled senders.",
	}, func() float64 { return float64(budget.readers.Load()) })
	m.ok = make(map[string]prometheus.Counter)
	for _, route := range []string{routeEvents, routeCommands, routeInteractions} {
		m.ok[route] = m.requests.WithLabelValues(route, "200")
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.publishAck, m.publishRetries, m.unknownTypes, m.duplicates, m.busy, bytesInFlight, bodyReads)
	}
	return m
}
