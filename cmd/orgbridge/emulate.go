package main

import "context"

// TODO(owner): placeholder until the command is written.
func runEmulate(ctx context.Context, c *cli, args []string) error { return usagef("not built yet") }
