package events

import (
	"fmt"
	"regexp"
	"time"
)

// prefixProvisioningRuns carries run lifecycle events for other systems.
const prefixProvisioningRuns = "provisioning.runs."

// ProvisioningRunSubject carries a sync run's lifecycle (started, awaiting
// approval, finished) for an org: provisioning.runs.<org_id>.
func ProvisioningRunSubject(orgID string) string { return prefixProvisioningRuns + Token(orgID) }

// SyncTrigger names what started a provisioning run.
type SyncTrigger string

// Triggers of a provisioning run.
const (
	TriggerSchedule SyncTrigger = "schedule"
	TriggerSyncNow  SyncTrigger = "sync_now"
	TriggerEvent    SyncTrigger = "event"
	TriggerAPI      SyncTrigger = "api"
	TriggerPreview  SyncTrigger = "preview"
)

// SyncAction is what a message on [ProvisioningSyncSubject] asks the
// provisioning worker to do with a run.
type SyncAction string

// Actions on a run.
const (
	// ActionRun starts (or resumes) the run RunID.
	ActionRun SyncAction = "run"
	// ActionApprove applies the deactivations a run holds for approval.
	ActionApprove SyncAction = "approve"
	// ActionReject drops the deactivations a run holds; the run ends.
	ActionReject SyncAction = "reject"
	// ActionUsers re-syncs the Slack users named in UserIDs (events between
	// daily syncs: team_join, user_change, subteam_members_changed).
	ActionUsers SyncAction = "users"
)

// ProvisioningSync is the body of a message on [ProvisioningSyncSubject]
// (Nats-Msg-Id: the run id and action, so a trigger published by several
// replicas lands once).
type ProvisioningSync struct {
	SchemaVersion int         `json:"schema_version"`
	OrgID         string      `json:"org_id"`
	RunID         string      `json:"run_id"`
	Action        SyncAction  `json:"action"`
	Trigger       SyncTrigger `json:"trigger,omitempty"`
	DryRun        bool        `json:"dry_run,omitempty"`
	// UserIDs are the Slack users an ActionUsers message re-syncs.
	UserIDs []string `json:"user_ids,omitempty"`
	// By is who asked (an admin's name, "scheduler", an event id).
	By          string    `json:"by,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

var (
	orgIDPattern = regexp.MustCompile(`^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$`)
	runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ValidOrgID reports whether s looks like an org id (15 or 18 characters starting 00D).
func ValidOrgID(s string) bool { return orgIDPattern.MatchString(s) }

// ValidRunID reports whether s can be a run id: 1–64 letters, digits, '-' or '_'.
func ValidRunID(s string) bool { return runIDPattern.MatchString(s) }

// Validate names the first problem with the message.
func (m ProvisioningSync) Validate() error {
	switch {
	case m.SchemaVersion != SchemaVersion:
		return fmt.Errorf("schema_version %d is not %d", m.SchemaVersion, SchemaVersion)
	case !ValidOrgID(m.OrgID):
		return fmt.Errorf("org_id %q is not an org id (00D…, 15 or 18 characters)", m.OrgID)
	case !ValidRunID(m.RunID):
		return fmt.Errorf("run_id %q must be 1-64 letters, digits, '-' or '_'", m.RunID)
	}
	switch m.Action {
	case ActionRun, ActionApprove, ActionReject:
	case ActionUsers:
		if len(m.UserIDs) == 0 || len(m.UserIDs) > 1000 {
			return fmt.Errorf("action users needs 1-1000 user_ids, got %d", len(m.UserIDs))
		}
	default:
		return fmt.Errorf("action %q is not run, approve, reject or users", m.Action)
	}
	return nil
}

// RunStatus is the state of a provisioning run.
type RunStatus string

// Run states: pending → running → (awaiting_approval) → a final state.
const (
	RunPending          RunStatus = "pending"
	RunRunning          RunStatus = "running"
	RunAwaitingApproval RunStatus = "awaiting_approval"
	RunSucceeded        RunStatus = "succeeded"
	RunPartial          RunStatus = "succeeded_with_failures"
	RunFailed           RunStatus = "failed"
	RunCancelled        RunStatus = "cancelled"
)

// Final reports whether no state follows s.
func (s RunStatus) Final() bool {
	switch s {
	case RunSucceeded, RunPartial, RunFailed, RunCancelled:
		return true
	}
	return false
}

// ProvisioningRunEvent is published on [ProvisioningRunSubject] when a run
// starts, waits for approval and ends (Nats-Msg-Id: run id + status).
type ProvisioningRunEvent struct {
	SchemaVersion int            `json:"schema_version"`
	OrgID         string         `json:"org_id"`
	IntegrationID string         `json:"integration_id"`
	RunID         string         `json:"run_id"`
	Status        RunStatus      `json:"status"`
	Trigger       SyncTrigger    `json:"trigger"`
	DryRun        bool           `json:"dry_run,omitempty"`
	StartedAt     time.Time      `json:"started_at,omitzero"`
	EndedAt       time.Time      `json:"ended_at,omitzero"`
	Counts        map[string]int `json:"counts,omitempty"`
	Error         string         `json:"error,omitempty"`
}
