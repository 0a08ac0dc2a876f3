package bench

import (
	"context"
	"testing"

	"github.com/orgbridge/orgbridge/events"
	orgemu "github.com/orgbridge/orgbridge/internal/emulator/org"
	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
)

// TestProvisioningMeasuresBothSyncs runs the provisioning benchmark small:
// the first sync writes, the no-change sync writes nothing, and the floor
// counts the pages read.
func TestProvisioningMeasuresBothSyncs(t *testing.T) {
	se := slackemu.StartTest(t, slackemu.Config{Workspaces: 1, Enterprises: -1, Users: 300, Groups: 6, ExternalTeams: -1, TimeScale: 600})
	oe := orgemu.StartTest(t, orgemu.Config{})
	rep, err := Provisioning(context.Background(), ProvisioningOptions{SlackURL: se.URL(), OrgURL: oe.URL(), Scale: 600, Users: 300,
		PageSize: 100, Teams: 2, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs measured, want 2", len(rep.Runs))
	}
	first, again := rep.Runs[0], rep.Runs[1]
	if first.Status != events.RunSucceeded || first.DirWrites < 200 || first.Pages != 3 || first.SlackCalls != 3 || first.Floor <= 0 {
		t.Fatalf("first sync: %+v", first)
	}
	if again.Status != events.RunSucceeded || again.DirWrites != 0 || again.Counts["unchanged"] < 200 {
		t.Fatalf("no-change sync: %+v", again)
	}
	if rep.PeakRSS <= 0 || first.CPU <= 0 {
		t.Fatalf("peak RSS %d, CPU %s: not measured", rep.PeakRSS, first.CPU)
	}
}
