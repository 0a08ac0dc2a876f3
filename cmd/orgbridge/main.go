// Command orgbridge is the self-hosted backend for Slack apps that work with an
// org: the ingress, the workers, an all-in-one dev mode, the emulators and the
// tools ops use on the streams.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a graceful shutdown; a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	// go-redis would print its own dial retries to stderr; every Redis failure
	// already reaches us as an error and is reported with its context.
	redis.SetLogger(discardRedisLog{})
	code := run(ctx, os.Args[1:], &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// cli is what a command may touch of the outside world, so tests can run
// commands in-process.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand. run gets the arguments after the command name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "run everything in one process: NATS, Redis, emulators, ingress and workers", runDev},
		{"ingress", "run the HTTP ingress against NATS_URL and REDIS_URL", runIngress},
		{"worker", "run workers against NATS_URL and REDIS_URL", runWorker},
		{"emulate", "run the Slack and org emulators standalone", runEmulate},
		{"replay", "re-deliver a range of a stream to the workers", runReplay},
		{"dlq", "list, show, re-drive and purge dead letters", runDLQ},
		{"streams", "show streams and consumers with pending counts", runStreams},
		{"disconnect", "request, follow and audit external-org disconnects; manage policies", runDisconnect},
		{"keys", "re-encrypt stored secrets under the first encryption key", runKeysRotate},
		{"org", "clean up org connections: unbind a workspace (apps.uninstall), invalidate a binding, delete mappings in bulk", runOrg},
		{"provisioning", "connect, configure, sync and audit Slack → directory provisioning", runProvisioning},
		{"bench", "measure the ingress against its ceilings on this machine", runBench},
	}
}

// usageError is a mistake in how a command was called; it exits with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// errHelp ends a command after it printed its help; it exits with code 0.
var errHelp = errors.New("help requested")

// run executes one command line and returns the process exit code: 0 success,
// 1 failure, 2 a usage or configuration error.
func run(ctx context.Context, args []string, c *cli) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(c.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, cmd := range commands() {
		if cmd.name != args[0] {
			continue
		}
		err := cmd.run(ctx, c, args[1:])
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, errHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(c.stderr, "orgbridge %s: %v\n", cmd.name, err)
			return 2
		default:
			fmt.Fprintf(c.stderr, "orgbridge %s: %v\n", cmd.name, err)
			return 1
		}
	}
	fmt.Fprintf(c.stderr, "orgbridge: unknown command %q; run `orgbridge --help` for the list\n", args[0])
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: orgbridge <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `orgbridge <command> --help` for a command's flags and environment variables.")
}
