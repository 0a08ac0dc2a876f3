// Package bus is orgbridge's worker runtime on NATS JetStream: it creates the
// contract streams, runs durable pull consumers with a bounded pool of handler
// goroutines, and turns each handler's result into an explicit outcome.
//
//   - nil error: Ack.
//   - retryable error: NakWithDelay, exponential by delivery count with jitter,
//     or the retry-after the error carries ([RetryAfter], *slack.RateLimitedError).
//     (Plain Nak would ignore the consumer's BackOff and redeliver at once.)
//   - permanent error ([Permanent], or Retryable() == false), a panic, or the
//     last allowed delivery failing: copy to the DLQ stream, wait for the
//     stream's PubAck, then TermWithReason. Term counts as an ack, so the copy
//     comes first; if the copy cannot be stored the message is NakWithDelayed
//     instead and nothing is lost.
//   - no outcome at all (the worker crashed, or a handler hung past its
//     timeout): JetStream redelivers after AckWait, and once MaxDeliver is used
//     up the server publishes a MAX_DELIVERIES advisory. The DLQ stream stores
//     those, and every [Runner] captures them into proper dead letters.
//   - a retryable error while a dependency is unreachable ([RunnerConfig.Dependencies],
//     or the NATS connection): no outcome yet. JetStream counts every delivery
//     toward MaxDeliver, so the runner stops pulling and keeps the message's
//     delivery (InProgress) until the probes pass, then runs the handler again.
//     An outage spends no deliveries; see [RunnerConfig.Dependencies].
//
// Handlers must be safe to run twice: redeliveries and replays happen. See
// [Idempotent] and [IdempotentExternal], and store.ApplyOnce for effects inside
// Redis.
//
// Acks are fire-and-forget (Ack), not DoubleAck, unless a consumer sets
// [ConsumerConfig.DoubleAck]. DoubleAck costs a round trip per message and only
// confirms that the ack arrived, not that the effect happened; a lost ack causes
// one redelivery, which idempotent handlers absorb anyway. The runner flushes
// the connection when it shuts down so acks sent during the drain reach the
// server before Run returns.
package bus
