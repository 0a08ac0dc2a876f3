package main

// buildMapping builds the mapping worker. Placeholder until the worker is written.
func buildMapping(d workerDeps) (worker, error) { return nil, errNotBuilt("mapping") }
