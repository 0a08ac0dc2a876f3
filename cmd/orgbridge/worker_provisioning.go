package main

// buildProvisioning builds the provisioning worker. Placeholder until the worker is written.
func buildProvisioning(d workerDeps) (worker, error) { return nil, errNotBuilt("provisioning") }
