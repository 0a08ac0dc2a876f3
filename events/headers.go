package events

import "strconv"

// Headers every orgbridge message may carry. Names are case-sensitive in NATS;
// use these constants.
const (
	// HeaderMsgID is JetStream's de-duplication id (Nats-Msg-Id).
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderSchema is the schema version of the body; see [SchemaVersion].
	HeaderSchema = "Orgbridge-Schema"
	// HeaderTeam and HeaderEnterprise name the Slack tenant of the message.
	HeaderTeam       = "Orgbridge-Team"
	HeaderEnterprise = "Orgbridge-Enterprise"
	// HeaderType is the Slack event type, command or interaction type.
	HeaderType = "Orgbridge-Type"
	// HeaderReceivedAt is when the ingress received the request (RFC 3339, nanoseconds).
	HeaderReceivedAt = "Orgbridge-Received-At"
	// HeaderRequestID correlates a message with the log lines of every part that touched it.
	HeaderRequestID = "Orgbridge-Request-Id"
	// HeaderSlackRetryNum and HeaderSlackRetryReason keep Slack's retry headers.
	HeaderSlackRetryNum    = "X-Slack-Retry-Num"
	HeaderSlackRetryReason = "X-Slack-Retry-Reason"
	// HeaderContentType tells how the raw Slack body is encoded: application/json
	// for events, application/x-www-form-urlencoded for commands and interactions.
	HeaderContentType = "Content-Type"

	// HeaderOriginID is the identity of the message a copy was made from (a replay
	// or a re-drive). Handlers de-duplicate on it, so a copy never has an effect
	// twice; see [MessageIdentity].
	HeaderOriginID = "Orgbridge-Origin-Id"
	// HeaderReplayFor limits a replayed copy to one durable consumer; other
	// consumers acknowledge it without handling it.
	HeaderReplayFor = "Orgbridge-Replay-For"

	// Dead-letter headers, set on every message in the DLQ stream.
	HeaderDLQStream     = "Orgbridge-Dlq-Stream"
	HeaderDLQSeq        = "Orgbridge-Dlq-Seq"
	HeaderDLQSubject    = "Orgbridge-Dlq-Subject"
	HeaderDLQConsumer   = "Orgbridge-Dlq-Consumer"
	HeaderDLQDeliveries = "Orgbridge-Dlq-Deliveries"
	HeaderDLQError      = "Orgbridge-Dlq-Error"
	HeaderDLQFailedAt   = "Orgbridge-Dlq-Failed-At"
)

// MessageIdentity is the id handlers de-duplicate a message on: the origin id of
// a copy, else its Nats-Msg-Id, else its stream and sequence. Every publisher in
// this contract sets a Nats-Msg-Id, so the fallback only matters for messages
// published by hand.
func MessageIdentity(header map[string][]string, stream string, seq uint64) string {
	if v := first(header, HeaderOriginID); v != "" {
		return v
	}
	if v := first(header, HeaderMsgID); v != "" {
		return v
	}
	return stream + ":" + strconv.FormatUint(seq, 10)
}

func first(h map[string][]string, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
