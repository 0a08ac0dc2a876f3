// Package failover holds orgbridge's failover tests: the ingress and workers
// on a three-node NATS JetStream cluster with R3 streams while the node that
// leads a stream or a consumer is lost, and workers on Redis behind Sentinel
// while the primary is killed. Everything runs on loopback, bounded, in
// seconds; it is part of `make test` (and `make test-distributed` runs it
// alone). The figures the tests log are in docs/BENCHMARKS.md.
//
// The package has no code of its own: the test helpers that start the
// servers are in internal/testenv.
package failover
