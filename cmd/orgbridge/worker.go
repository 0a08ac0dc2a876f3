package main

import "context"

// TODO(owner): placeholder until the command is written.
func runWorker(ctx context.Context, c *cli, args []string) error { return usagef("not built yet") }
