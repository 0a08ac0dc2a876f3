package mapping

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestConnectIndexesBeforeTheRecord: org-side revocation finds workspaces
// through ob:{org}:workspaces. A Connect whose mapping write fails (here the association
// key has the wrong type) must already have written that index, so a
// crash between the two steps never leaves a mapping revocation cannot see.
func TestConnectIndexesBeforeTheRecord(t *testing.T) {
	w, r, _ := newTestWorker(t)
	ctx := ctxT(t)
	if err := r.Client.HSet(ctx, kAssoc("T1", org1, "U1"), "x", "y").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := w.Store().Connect(ctx, &Mapping{Workspace: "T1", SlackUserID: "U1", OrgID: org1, OrgUserID: alice, Source: "oauth"})
	if err == nil {
		t.Fatal("Connect succeeded over a key of the wrong type")
	}
	if !r.Client.SIsMember(ctx, kOrgWorkspaces(org1), "T1").Val() {
		t.Fatal("the org's workspace index was not written before the mapping")
	}
	if !r.Client.SIsMember(ctx, kWorkspaces, "T1").Val() {
		t.Fatal("the workspace index was not written before the mapping")
	}
}

type fakeDirectory struct {
	users map[string]map[string]bool
	err   error
	calls int
}

func (f *fakeDirectory) SlackUsers(_ context.Context, ws string) (map[string]bool, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	u, ok := f.users[ws]
	if !ok {
		return nil, fmt.Errorf("%w (%s)", ErrNoSlackApp, ws)
	}
	return u, nil
}

// TestImportSlackChecks: the workspace's users are listed once per import,
// and a transient failure (rate limit, Slack down) is "retry", not
// "invalid_slack_user".
func TestImportSlackChecks(t *testing.T) {
	rows := []ImportRow{
		{Workspace: "T1", SlackUserID: "U1", OrgID: org1, OrgUserID: alice},
		{Workspace: "T1", SlackUserID: "U2", OrgID: org1, OrgUserID: bob},
		{Workspace: "T1", SlackUserID: "U3", OrgID: org1, OrgUserID: "005000000000003"},
		{Workspace: "T2", SlackUserID: "U4", OrgID: org1, OrgUserID: "005000000000004"},
	}
	tests := []struct {
		name      string
		dir       *fakeDirectory
		want      []string
		wantCalls int
	}{
		{name: "listed once per workspace", dir: &fakeDirectory{users: map[string]map[string]bool{"T1": {"U1": true, "U2": false}}},
			want: []string{ResultOK, ResultInvalidSlackUser, ResultInvalidSlackUser, ResultInvalidSlackUser}, wantCalls: 2},
		{name: "Slack unavailable", dir: &fakeDirectory{err: errors.New("slack rate limit exceeded, retry after 30s")},
			want: []string{ResultRetry, ResultRetry, ResultRetry, ResultRetry}, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _, _ := newTestWorker(t)
			w.cfg.SlackUsers = tt.dir
			res := w.Import(ctxT(t), rows)
			for i, r := range res {
				if r.Result != tt.want[i] {
					t.Errorf("row %d: %s (%s), want %s", i+1, r.Result, r.Message, tt.want[i])
				}
			}
			if tt.dir.calls != tt.wantCalls {
				t.Errorf("listed Slack users %d times, want %d", tt.dir.calls, tt.wantCalls)
			}
		})
	}
}
