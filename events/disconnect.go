package events

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DisconnectState is the state of a disconnect request, as reported on
// [DisconnectResultSubject].
type DisconnectState string

// States of a disconnect request. Rejected, Completed, Failed and Unconfirmed
// are final.
const (
	// DisconnectAccepted: the request is valid and queued (or, with
	// JoinedRequestID set, joined an active request for the same target).
	DisconnectAccepted DisconnectState = "accepted"
	// DisconnectRejected: the request is invalid; nothing was called. Error and
	// Message name the problem.
	DisconnectRejected DisconnectState = "rejected"
	// DisconnectSubmitted: Slack accepted team.externalTeams.disconnect and is
	// disconnecting in the background.
	DisconnectSubmitted DisconnectState = "submitted"
	// DisconnectCompleted: team.externalTeams.list shows the team disconnected
	// (or gone). A dry run ends here too, with DryRun set and nothing called.
	DisconnectCompleted DisconnectState = "completed"
	// DisconnectFailed: Slack refused for good (Error is Slack's code), or
	// retries ran out.
	DisconnectFailed DisconnectState = "failed"
	// DisconnectUnconfirmed: the disconnect could not be confirmed before the
	// deadline; a person must check the team in Slack's admin pages.
	DisconnectUnconfirmed DisconnectState = "unconfirmed"
)

// Final reports whether no state follows s.
func (s DisconnectState) Final() bool {
	switch s {
	case DisconnectRejected, DisconnectCompleted, DisconnectFailed, DisconnectUnconfirmed:
		return true
	}
	return false
}

// DisconnectRequest is the body other systems publish on
// [DisconnectRequestSubject] (with a Nats-Msg-Id, e.g. the request id) to have
// an external organization disconnected from an Enterprise Grid org's Slack
// Connect channels and DMs.
type DisconnectRequest struct {
	SchemaVersion int `json:"schema_version"`
	// RequestID identifies the request in every result and in the audit trail;
	// 1–128 characters of letters, digits, '-', '_', ':' and '.'.
	RequestID string `json:"request_id"`
	// EnterpriseID is the Grid org (E…); it must match the subject.
	EnterpriseID string `json:"enterprise_id"`
	// TargetTeam is the external organization's team id (T…).
	TargetTeam string `json:"target_team"`
	// Reason says why, for the audit trail; required.
	Reason string `json:"reason"`
	// RequestedBy names the person or system asking; required.
	RequestedBy string `json:"requested_by"`
	// NotBefore delays the disconnect until then.
	NotBefore *time.Time `json:"not_before,omitempty"`
	// DryRun validates and reports without disconnecting anything.
	DryRun bool `json:"dry_run,omitempty"`
}

var (
	requestIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	enterprisePattern = regexp.MustCompile(`^E[A-Z0-9]{2,}$`)
	teamPattern       = regexp.MustCompile(`^T[A-Z0-9]{2,}$`)
)

// ValidEnterpriseID reports whether id looks like an Enterprise Grid id (E…),
// as [DisconnectRequest.Validate] requires of enterprise_id.
func ValidEnterpriseID(id string) bool { return enterprisePattern.MatchString(id) }

// Error codes of rejected requests, in [DisconnectResult.Error].
const (
	DisconnectErrInvalidRequest    = "invalid_request"
	DisconnectErrInvalidTarget     = "invalid_target_team"
	DisconnectErrUnknownEnterprise = "unknown_enterprise"
	DisconnectErrNoGridInstall     = "no_grid_installation"
	DisconnectErrOwnOrg            = "target_is_own_org"
	DisconnectErrMissingScope      = "missing_scope"
)

// DisconnectRequestError is a request that breaks the schema. Code is one of
// the DisconnectErr constants.
type DisconnectRequestError struct {
	Code    string
	Field   string
	Problem string
}

func (e *DisconnectRequestError) Error() string {
	return fmt.Sprintf("disconnect request: %s: %s", e.Field, e.Problem)
}

// Validate checks the request against the schema, so a caller can find its
// mistakes before publishing. It does not know installations: the worker
// checks those.
func (r DisconnectRequest) Validate() error {
	bad := func(code, field, problem string) error {
		return &DisconnectRequestError{Code: code, Field: field, Problem: problem}
	}
	switch {
	case r.SchemaVersion < 1 || r.SchemaVersion > SchemaVersion:
		return bad(DisconnectErrInvalidRequest, "schema_version", fmt.Sprintf("%d is not supported (1..%d)", r.SchemaVersion, SchemaVersion))
	case !requestIDPattern.MatchString(r.RequestID):
		return bad(DisconnectErrInvalidRequest, "request_id", "must be 1–128 letters, digits, '-', '_', ':' or '.'")
	case !enterprisePattern.MatchString(r.EnterpriseID):
		return bad(DisconnectErrInvalidRequest, "enterprise_id", fmt.Sprintf("%q is not an Enterprise Grid id (E…)", r.EnterpriseID))
	case !teamPattern.MatchString(r.TargetTeam):
		return bad(DisconnectErrInvalidTarget, "target_team", fmt.Sprintf("%q is not a Slack team id (T…)", r.TargetTeam))
	case strings.TrimSpace(r.Reason) == "":
		return bad(DisconnectErrInvalidRequest, "reason", "is required: say why, for the audit trail")
	case len(r.Reason) > 1000:
		return bad(DisconnectErrInvalidRequest, "reason", "is longer than 1000 characters")
	case strings.TrimSpace(r.RequestedBy) == "":
		return bad(DisconnectErrInvalidRequest, "requested_by", "is required: name the person or system asking")
	case len(r.RequestedBy) > 200:
		return bad(DisconnectErrInvalidRequest, "requested_by", "is longer than 200 characters")
	}
	return nil
}

// DisconnectResult is what orgbridge publishes on [DisconnectResultSubject] at
// every state change of a request. Its Nats-Msg-Id is
// [DisconnectResultMsgID], so each state of a request is stored once.
type DisconnectResult struct {
	SchemaVersion int             `json:"schema_version"`
	RequestID     string          `json:"request_id"`
	EnterpriseID  string          `json:"enterprise_id"`
	TargetTeam    string          `json:"target_team"`
	State         DisconnectState `json:"state"`
	// Error is a machine-readable code: one of the DisconnectErr constants for
	// a rejection, Slack's error code for a failure.
	Error string `json:"error,omitempty"`
	// Message says, for a person, what happened and what to do next.
	Message string `json:"message,omitempty"`
	// JoinedRequestID is the active request for the same target this one
	// joined; it shares that request's outcome and Slack is called once.
	JoinedRequestID string `json:"joined_request_id,omitempty"`
	DryRun          bool   `json:"dry_run,omitempty"`
	// Attempts is how many times team.externalTeams.disconnect was called.
	Attempts    int       `json:"attempts"`
	RequestedBy string    `json:"requested_by,omitempty"`
	At          time.Time `json:"at"`
}

// DisconnectResultMsgID is the Nats-Msg-Id of a result: one per request and state.
func DisconnectResultMsgID(requestID string, state DisconnectState) string {
	return "disconnect-result:" + requestID + ":" + string(state)
}
