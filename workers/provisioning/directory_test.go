package provisioning_test

import (
	"context"
	"testing"

	"github.com/orgbridge/orgbridge/events"
	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
	"github.com/orgbridge/orgbridge/internal/orgapi"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// TestDirectoryRateLimit: a directory that answers 429 beyond a few writes a
// second slows the run down; it is retried after Retry-After, never failed.
func TestDirectoryRateLimit(t *testing.T) {
	e := newEnvWith(t, seed, orgemu.Config{SCIMWritesPerSecond: 20, SCIMWriteBurst: 2})
	w := e.worker(provisioning.Config{DirectoryConcurrency: 4})
	e.start(w)
	e.connect(w)
	run := e.sync(w, false)
	if run.Status != events.RunPartial || run.Counts["create:succeeded"] != 5 || run.Counts["update:succeeded"] != 1 {
		t.Fatalf("a rate-limited directory: %s %v, want every write through", run.Status, run.Counts)
	}
	if e.org.Stats().SCIMThrottled == 0 {
		t.Fatal("the directory never answered 429: the test does not test the limit")
	}
}

// TestIfMatchRetry: a directory user changed by someone else since
// orgbridge's last write makes the If-Match PATCH fail with 412; orgbridge
// re-reads it and applies its change once more.
func TestIfMatchRetry(t *testing.T) {
	e := newEnv(t)
	w := e.worker(provisioning.Config{})
	e.start(w)
	e.connect(w)
	e.sync(w, false)
	ctx := context.Background()
	frank := e.dirUsers()["frank@acme.example"]
	if _, err := e.scim().PatchUser(ctx, frank.ID, orgapi.PatchOperation{Op: "replace", Path: "nickName", Value: "Frankie"}); err != nil {
		t.Fatal(err)
	}
	refused := e.org.Stats().SCIMRefused
	if err := e.slack.UpdateUser("U0MEMB0001", slackemu.UserChange{Title: ptr("Principal Engineer")}); err != nil {
		t.Fatal(err)
	}
	run := e.sync(w, false)
	u := e.dirUsers()["frank@acme.example"]
	if u.Title != "Principal Engineer" || u.NickName != "Frankie" || run.Counts["update:succeeded"] != 1 {
		t.Fatalf("after a 412 the change must be applied on the fresh version, keeping the other edit: %+v, counts %v", u, run.Counts)
	}
	if got := e.org.Stats().SCIMRefused - refused; got != 1 {
		t.Fatalf("%d writes refused, want the one 412", got)
	}
}
