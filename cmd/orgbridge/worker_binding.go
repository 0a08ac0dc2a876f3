package main

// buildBinding builds the binding worker. Placeholder until the worker is written.
func buildBinding(d workerDeps) (worker, error) { return nil, errNotBuilt("binding") }
