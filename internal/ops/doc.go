// Package ops holds the operator tools behind `orgbridge replay`, `orgbridge dlq`
// and `orgbridge streams`: re-delivering a range of a stream to the workers,
// inspecting and re-driving dead letters, and reporting streams and consumers.
//
// Every function takes a [jetstream.JetStream] the caller connected, writes
// progress (if any) to an [io.Writer] the caller chose, and returns a typed
// summary; printing tables or JSON is the command line's business.
//
// Copies that ops publish (replays and re-drives) carry [events.HeaderOriginID],
// so handlers that de-duplicate on [events.MessageIdentity] never act on the
// same message twice, and a Nats-Msg-Id derived from the original, so running
// the same operation twice within the stream's duplicate window stores nothing new.
package ops
