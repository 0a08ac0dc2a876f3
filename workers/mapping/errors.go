package mapping

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: there is no such mapping.
	ErrNotFound = errors.New("mapping not found")
	// ErrAlreadyMapped: the Slack user already has a mapping in this workspace.
	ErrAlreadyMapped = errors.New("Slack user already mapped")
	// ErrBadRequest: a lookup or import row is missing a field or malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrNoSlackApp: no app is installed in the workspace, so its Slack users
	// cannot be checked (a lasting condition, unlike Slack being unavailable).
	ErrNoSlackApp = errors.New("no app is installed in the workspace to check its Slack users with")
)

// AssociatedError: the Slack user was associated with another org user of
// this org before. Deleting a mapping keeps the association, so the user must
// reconnect with that same org user (or an admin deactivates it to free them).
type AssociatedError struct {
	OrgUserID, Username string
}

func (e *AssociatedError) Error() string {
	return fmt.Sprintf("Slack user is associated with org user %s (%s) in this org", e.Username, e.OrgUserID)
}

// TakenError: the org user is already associated with another Slack user in this workspace.
type TakenError struct {
	SlackUserID string
}

func (e *TakenError) Error() string {
	return fmt.Sprintf("org user is already associated with Slack user %s in this workspace", e.SlackUserID)
}
