// Package store holds orgbridge's Redis primitives: tenant-scoped keys, per-key
// locks whose token fences writes, and idempotency records that let a handler run
// twice with one effect.
//
// Every key carries its tenant as a Redis Cluster hash tag (see [Key]), so a Lua
// script touching one tenant's keys stays on one slot and the same code runs on a
// single server, behind Sentinel or on a cluster. Nothing here uses KEYS or SCAN.
//
// The repositories of each worker live in sub-packages (store/binding, …) and
// build on these primitives.
package store
