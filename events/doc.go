// Package events is orgbridge's public contract on NATS JetStream: the stream
// specifications, the subjects messages travel on, the headers they carry and the
// JSON message types other systems publish and read, with a [Publisher] that
// applies all of it.
//
// Everything outside this package is internal and free to change; what is here
// changes only with a new [SchemaVersion]. events/README.md explains the same
// contract for teams that do not write Go.
package events
