package main

// buildDisconnect builds the disconnect worker. Placeholder until the worker is written.
func buildDisconnect(d workerDeps) (worker, error) { return nil, errNotBuilt("disconnect") }
