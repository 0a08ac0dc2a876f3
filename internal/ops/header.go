package ops

import (
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/orgbridge/orgbridge/events"
)

// dlqHeaderPrefix is the common prefix of the dead-letter headers in events.
const dlqHeaderPrefix = "Orgbridge-Dlq-"

// jsControlHeader reports headers that steer JetStream at publish time and must
// not travel on a copy: the de-duplication id (a copy gets its own) and the
// expectations, which held for the original publish only.
func jsControlHeader(key string) bool {
	return key == events.HeaderMsgID || key == "Nats-Rollup" || strings.HasPrefix(key, "Nats-Expected-")
}

// copyHeader returns a deep copy of h without the keys drop reports.
func copyHeader(h nats.Header, drop func(string) bool) nats.Header {
	out := make(nats.Header, len(h)+2)
	for k, vs := range h {
		if drop(k) {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}
