package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// envVar documents one environment variable a command reads.
type envVar struct{ name, help string }

// newFlags returns a flag set for command name whose --help prints usage, the
// flags and the environment variables the command reads.
func newFlags(c *cli, name, usage string, env ...envVar) *flag.FlagSet {
	fs := flag.NewFlagSet("orgbridge "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: orgbridge %s %s\n\nFlags:\n", name, usage)
		fs.PrintDefaults()
		if len(env) > 0 {
			fmt.Fprintln(w, "\nEnvironment:")
			for _, e := range env {
				fmt.Fprintf(w, "  %-28s %s\n", e.name, e.help)
			}
		}
	}
	return fs
}

// parseFlags parses args into fs, turning -h into [errHelp] and any other
// mistake into a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(fs.Output())
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usagef("%v", err)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
