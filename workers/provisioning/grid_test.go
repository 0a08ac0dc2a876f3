package provisioning_test

import (
	"context"
	"testing"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

const gridID = "E0GRID0001"

// gridSeed is an Enterprise Grid org of two workspaces; one person belongs
// to both under one W… id.
var gridSeed = map[string]any{
	"enterprises": []map[string]any{{"id": gridID, "name": "Acme Grid"}},
	"workspaces": []map[string]any{
		{"id": "T0GRIDA001", "name": "Acme HQ", "enterprise_id": gridID},
		{"id": "T0GRIDB001", "name": "Acme Labs", "enterprise_id": gridID},
	},
	"users": []map[string]any{
		{"id": "W0ADMIN001", "team_id": "T0GRIDA001", "name": "alice", "first_name": "Alice", "last_name": "Archer", "email": "alice@acme.example", "is_admin": true, "is_owner": true},
		{"id": "W0BOTH0001", "team_id": "T0GRIDA001", "team_ids": []string{"T0GRIDA001", "T0GRIDB001"}, "name": "paula", "first_name": "Paula", "last_name": "Both", "email": "paula@acme.example"},
		{"id": "W0LABS0001", "team_id": "T0GRIDB001", "name": "quinn", "first_name": "Quinn", "last_name": "Labs", "email": "quinn@acme.example"},
	},
	"groups": []map[string]any{
		{"id": "S0LABS0001", "team_id": "T0GRIDB001", "name": "Lab crew", "handle": "lab", "users": []string{"W0BOTH0001", "W0LABS0001"}},
	},
}

// TestGridSource: a whole Grid org is one source; a person in several
// workspaces is one directory user; groups of every workspace can scope.
func TestGridSource(t *testing.T) {
	e := newEnvWith(t, gridSeed)
	w := e.worker(provisioning.Config{})
	e.start(w)
	ctx := context.Background()
	req := e.connectRequest("W0ADMIN001", "alice@acme.example")
	req.WholeGrid = true
	in, err := w.Connect(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if in.Source.EnterpriseID != gridID || in.Source.TeamID != "" {
		t.Fatalf("a whole-Grid source: %+v", in.Source)
	}
	run := e.sync(w, false)
	if run.Status != events.RunSucceeded {
		t.Fatalf("grid sync: %s %s", run.Status, run.Error)
	}
	users := e.dirUsers()
	count := 0
	for _, u := range users {
		if u.ExternalID == "W0BOTH0001" {
			count++
		}
	}
	if count != 1 || users["quinn@acme.example"].ExternalID != "W0LABS0001" || users["alice@acme.example"].ExternalID != "W0ADMIN001" {
		t.Fatalf("grid users: %d directory users for the person in two workspaces; quinn %+v", count, users["quinn@acme.example"])
	}
	groups, err := w.SearchGroups(ctx, acme, "lab", 10)
	if err != nil || len(groups) != 1 || groups[0].Members != 2 {
		t.Fatalf("groups of the Grid's workspaces: %+v %v", groups, err)
	}
}
