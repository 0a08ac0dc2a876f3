package provisioning

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNoIntegration: the org has no provisioning integration.
	ErrNoIntegration = errors.New("provisioning: the org has no provisioning integration; connect Slack first")
	// ErrAlreadyActive: the org already has an active integration (only one at a time).
	ErrAlreadyActive = errors.New("provisioning: the org already has an active provisioning integration")
	// ErrNotActive: the integration is disconnected.
	ErrNotActive = errors.New("provisioning: the integration is disconnected; connect Slack again")
	// ErrNoRun: no such run.
	ErrNoRun = errors.New("provisioning: no such run")
	// ErrRunNotFinished: a pending or running run has no report yet.
	ErrRunNotFinished = errors.New("provisioning: the run is not finished; its report is available when it ends")
	// ErrNothingHeld: the run holds no deactivations to approve or reject.
	ErrNothingHeld = errors.New("provisioning: the run is not awaiting approval")
	// ErrNotSlackAdmin: the person connecting is not a Slack admin or owner.
	ErrNotSlackAdmin = errors.New("provisioning: you must be an admin or owner of the Slack workspace to connect it")
	// ErrNotOrgAdmin: the person connecting is not an admin of the org.
	ErrNotOrgAdmin = errors.New("provisioning: you must be an administrator of the org to connect a provisioning source")
)

// laterError is a wait the bus turns into NakWithDelay.
type laterError struct {
	why   string
	after time.Duration
}

func (e *laterError) Error() string {
	return fmt.Sprintf("provisioning: %s; again in %s", e.why, e.after)
}
func (e *laterError) Retryable() bool           { return true }
func (e *laterError) RetryAfter() time.Duration { return e.after }
