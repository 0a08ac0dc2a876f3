package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/orgbridge/orgbridge/internal/bench"
)

// runBenchProvisioning is `orgbridge bench provisioning`: the emulators in a
// child process (`orgbridge emulate`), the worker, NATS and Redis here, so
// the CPU and peak RSS printed are the worker's.
func runBenchProvisioning(ctx context.Context, c *cli, args []string) error {
	var o bench.ProvisioningOptions
	fs := newFlags(c, "bench provisioning", "[flags]\n\nConnects an emulated Slack workspace of --users users and --groups groups (rate tiers on, at\n"+
		"--scale) to the org emulator's SCIM directory and measures a first sync and a no-change sync:\n"+
		"wall time against Slack's Tier 2 floor for the users.list pages, directory writes and 429s,\n"+
		"CPU time and peak RSS of this process (the emulators run in a child process).")
	fs.IntVar(&o.Users, "users", 100000, "users in the workspace")
	groups := fs.Int("groups", 500, "user groups in the workspace")
	fs.IntVar(&o.Teams, "teams", 50, "directory teams the groups are mapped onto (0: no team mapping)")
	fs.Float64Var(&o.Scale, "scale", 10, "Slack emulator time scale (Tier 2: 20 calls per emulated minute)")
	fs.IntVar(&o.PageSize, "page-size", 999, "users.list limit")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "directory writes in flight")
	dirLimit := fs.Float64("directory-limit", 4000, "the org emulator's SCIM write limit per second (0: none)")
	fs.Float64Var(&o.DirectoryWritesPerSecond, "pace", 3800, "the worker's directory write pacing per second (0: none)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the first sync to this file")
	fs.StringVar(&o.NoChangeCPUProfile, "cpuprofile-nochange", "", "write a CPU profile of the no-change sync to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.Users < 10 || *groups < 0 || o.Scale <= 0 || o.PageSize < 1 || o.PageSize > 999 || o.Teams < 0 {
		return usagef("--users ≥ 10, --groups ≥ 0, --scale > 0, --page-size 1..999, --teams ≥ 0")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "127.0.0.1:0"
		}
		defer l.Close()
		return l.Addr().String()
	}
	slackAddr, orgAddr := addr(), addr()
	cmd := exec.CommandContext(ctx, exe, "emulate", "--slack-addr", slackAddr, "--org-addr", orgAddr, "--smtp-addr", addr(),
		"--workspaces", "1", "--enterprises", "-1", "--users", strconv.Itoa(o.Users), "--groups", strconv.Itoa(*groups),
		"--external-teams", "-1", "--scim-writes-per-second", strconv.FormatFloat(*dirLimit, 'f', -1, 64))
	cmd.Env = append(os.Environ(), "ORGBRIDGE_TIME_SCALE="+strconv.FormatFloat(o.Scale, 'f', -1, 64),
		"SLACK_SIGNING_SECRET=bench", "ORGBRIDGE_LOG_LEVEL=error", "ORGBRIDGE_HTTP_ADDR=127.0.0.1:1")
	cmd.Stderr = c.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	fmt.Fprintf(c.stderr, "starting the emulators (%d users, %d groups) …\n", o.Users, *groups)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	o.SlackURL, o.OrgURL = "http://"+slackAddr, "http://"+orgAddr
	deadline := time.Now().Add(2 * time.Minute)
	for !answers(o.SlackURL+"/_emulator/world") || !answers(o.OrgURL+"/_emulator/world") {
		if time.Now().After(deadline) {
			return errors.New("the emulators did not start within 2 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	o.Progress = c.stderr
	rep, err := bench.Provisioning(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nprovisioning benchmark: %d users, %d groups → %d teams, page size %d, Slack time scale %g, directory limit %g/s, pacing %g/s, %d writers\n",
		o.Users, *groups, o.Teams, o.PageSize, o.Scale, *dirLimit, o.DirectoryWritesPerSecond, o.Concurrency)
	for _, r := range rep.Runs {
		fmt.Fprintf(c.stdout, "  %-15s %-24s wall %-9s floor %-9s ×%.3f  pages %d, users.list calls %d (429: %d)  directory writes %d (429: %d), reads %d  CPU %s\n",
			r.Name, r.Status, r.Wall.Round(time.Millisecond), r.Floor.Round(time.Millisecond), r.Ratio(), r.Pages, r.SlackCalls, r.Slack429,
			r.DirWrites, r.Dir429, r.DirReads, r.CPU.Round(time.Millisecond))
		fmt.Fprintf(c.stdout, "  %-15s report: %s\n", "", countsLine(r.Counts))
	}
	fmt.Fprintf(c.stdout, "  peak RSS of the worker process: %.1f MB\n", float64(rep.PeakRSS)/(1<<20))
	return nil
}

func answers(u string) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
