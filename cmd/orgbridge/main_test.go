package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for a command writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// invocation is one in-process run of the orgbridge command line.
type invocation struct {
	stdout, stderr *syncBuffer
	code           chan int
}

// invoke runs `orgbridge args...` in-process with env as its whole environment.
func invoke(ctx context.Context, env map[string]string, args ...string) *invocation {
	inv := &invocation{stdout: &syncBuffer{}, stderr: &syncBuffer{}, code: make(chan int, 1)}
	c := &cli{stdout: inv.stdout, stderr: inv.stderr, getenv: func(k string) string { return env[k] }}
	go func() { inv.code <- run(ctx, args, c) }()
	return inv
}

// invokeWait runs a command to completion.
func invokeWait(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	inv := invoke(context.Background(), env, args...)
	code = <-inv.code
	return code, inv.stdout.String(), inv.stderr.String()
}

func TestUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"no command", nil, nil, 2, "Usage: orgbridge <command>"},
		{"help", nil, []string{"--help"}, 0, "Commands:"},
		{"unknown command", nil, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"command help lists env", nil, []string{"ingress", "--help"}, 0, "SLACK_SIGNING_SECRET"},
		{"dev help", nil, []string{"dev", "--help"}, 0, "ORGBRIDGE_DATA_DIR"},
		{"keys help", nil, []string{"keys", "--help"}, 0, "ORGBRIDGE_ENCRYPTION_KEYS"},
		{"org help", nil, []string{"org", "--help"}, 0, "--team"},
		{"emulate help", nil, []string{"emulate", "--help"}, 0, "-slack-addr"},
		{"worker help", nil, []string{"worker", "--help"}, 0, "--only"},
		{"bench help", nil, []string{"bench", "ingress", "--help"}, 0, "-conns"},
		{"unknown worker", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}, []string{"worker", "--only", "billing"}, 2, `unknown worker "billing"`},
		{"worker needs keys", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}, []string{"worker"}, 2, "ORGBRIDGE_ENCRYPTION_KEYS: is required"},
		{"ingress needs the Slack app", map[string]string{"SLACK_SIGNING_SECRET": "s", "REDIS_URL": "redis://127.0.0.1:1/0",
			"ORGBRIDGE_ENCRYPTION_KEYS": "k1:x"}, []string{"ingress"}, 2, "SLACK_CLIENT_ID: and SLACK_CLIENT_SECRET are required"},
		{"worker needs the org app", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0", "ORGBRIDGE_ENCRYPTION_KEYS": "k1:x",
			"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s"}, []string{"worker"}, 2, "ORG_CLIENT_ID: and ORG_CLIENT_SECRET are required"},
		{"bad flag", nil, []string{"ingress", "--nope"}, 2, "flag provided but not defined"},
		{"ingress needs a signing secret", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}, []string{"ingress"}, 2,
			"SLACK_SIGNING_SECRET: is required"},
		{"ingress needs redis", map[string]string{"SLACK_SIGNING_SECRET": "s", "ORGBRIDGE_ENCRYPTION_KEYS": "k"}, []string{"ingress"}, 2, "REDIS_URL: is required"},
		{"bad duration", map[string]string{"ORGBRIDGE_PUBLISH_TIMEOUT": "soon"}, []string{"ingress"}, 2,
			`ORGBRIDGE_PUBLISH_TIMEOUT: "soon" is not a duration`},
		{"publish timeout past Slack's deadline", map[string]string{"ORGBRIDGE_PUBLISH_TIMEOUT": "5s"}, []string{"dev"}, 2,
			"below Slack's 3s deadline"},
		{"bad nats url", map[string]string{"NATS_URL": "http://x"}, []string{"worker"}, 2, "NATS_URL"},
		{"bad log level", map[string]string{"ORGBRIDGE_LOG_LEVEL": "loud"}, []string{"dev"}, 2, "ORGBRIDGE_LOG_LEVEL"},
		{"short duplicate window", map[string]string{"ORGBRIDGE_STREAM_DUPLICATE_WINDOW": "1m"}, []string{"dev"}, 2, "retry schedule"},
		{"short admin token", map[string]string{"ORGBRIDGE_ADMIN_TOKEN": "a", "SLACK_SIGNING_SECRET": "s", "REDIS_URL": "redis://127.0.0.1:1/0"},
			[]string{"ingress"}, 2, "ORGBRIDGE_ADMIN_TOKEN: is 1 characters; use at least 24"},
		{"short admin token in dev", map[string]string{"ORGBRIDGE_ADMIN_TOKEN": "admin"}, []string{"dev"}, 2, "ORGBRIDGE_ADMIN_TOKEN"},
		{"drain past the shutdown timeout", map[string]string{"ORGBRIDGE_SHUTDOWN_DRAIN": "30s"}, []string{"ingress"}, 2,
			"ORGBRIDGE_SHUTDOWN_DRAIN: 30s must be at least 0 and below ORGBRIDGE_SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := invokeWait(t, tt.env, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout+stderr, tt.wantOut) {
				t.Fatalf("exit %d, output:\n%s%s\nwant exit %d and %q", code, stdout, stderr, tt.wantCode, tt.wantOut)
			}
			if tt.wantCode == 2 && tt.args != nil && tt.args[0] != "frobnicate" && strings.Count(strings.TrimSpace(stderr), "\n") > 0 && !strings.Contains(stderr, "Usage") {
				t.Fatalf("a configuration error should be one line, got:\n%s", stderr)
			}
		})
	}
}
