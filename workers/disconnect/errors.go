package disconnect

import (
	"errors"
	"fmt"
)

// Sentinels of the disconnect worker.
var (
	// ErrUnknownEnterprise: orgbridge has never seen the enterprise.
	ErrUnknownEnterprise = errors.New("disconnect: enterprise is not known to orgbridge")
	// ErrNoGridInstall: the enterprise is known but the app is not installed
	// org-wide (Enterprise Grid), which team.externalTeams.disconnect needs.
	ErrNoGridInstall = errors.New("disconnect: the app has no org-wide (Enterprise Grid) installation for this enterprise")
	// ErrNotFound: no request or policy with that id.
	ErrNotFound = errors.New("disconnect: not found")
	// ErrInvalidPolicy: a policy breaks a rule; the wrapped message says which.
	ErrInvalidPolicy = errors.New("disconnect: invalid policy")
	// ErrBusy: another delivery of the same request is being handled.
	ErrBusy = errors.New("disconnect: the request is being handled by another delivery")
)

// Class is what the worker does after a Slack error.
type Class int

const (
	// Unknown errors are retried a bounded number of times (Config.MaxUnknownAttempts), then final.
	Unknown Class = iota
	// Retryable errors are retried with backoff (Config.MaxAttempts in all).
	Retryable
	// Final errors fail the request at once.
	Final
	// MaybeActed errors say the call failed but Slack may have acted before
	// it failed. They are handled like a call that got no answer: the "in
	// flight" record is kept and team.externalTeams.list decides (see
	// resolveInFlight); the method is called again only once the list has
	// shown the target still connected past ConfirmDeadline, by when a
	// disconnect Slack had started would have finished, and at most
	// Config.MaxAttempts calls in all.
	MaybeActed
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Final:
		return "final"
	case MaybeActed:
		return "maybe_acted"
	}
	return "unknown"
}

// errorClasses classifies every error team.externalTeams.disconnect documents
// (shared/seeds/001), plus the HTTP answers that stand for one. This is the
// one table; tests walk it entry by entry against the Slack emulator.
//
// The line between Retryable and MaybeActed is whether Slack may have done
// part of the work. Retryable answers come from before the method ran: Slack
// refused the call at the door (rate limit, an unavailable service, a POST
// body that never arrived whole, a workspace or org mid-migration, network
// limits), so forgetting the "in flight" record and calling again cannot
// disconnect twice. MaybeActed answers come from during or after it: Slack's
// table says of internal_error and fatal_error "it's possible some aspect of
// the operation succeeded before the error was raised", and an HTTP 500, 502
// or 504 (a server error, or a proxy that lost or gave up waiting for Slack's
// answer) leaves the same doubt. HTTP 503 is the load balancer turning the
// call away, like service_unavailable. A 200 whose body is not JSON, and no
// answer at all after the request was sent, are *slackapi.TransportError
// with MaybeSent and are handled like MaybeActed.
var errorClasses = map[string]Class{
	// Slack refused before acting: try again later.
	"ratelimited":         Retryable, // also HTTP 429; Retry-After adjusts the pacer
	"service_unavailable": Retryable,
	"request_timeout":     Retryable, // the POST body was missing or truncated: nothing ran
	"team_added_to_org":   Retryable, // workspace migrating into an org
	"org_login_required":  Retryable, // enterprise migration in progress
	"accesslimited":       Retryable, // network limits; may lift
	"http_503":            Retryable,

	// Slack may have acted: check with team.externalTeams.list, never call blindly.
	"internal_error": MaybeActed,
	"fatal_error":    MaybeActed,
	"http_500":       MaybeActed,
	"http_502":       MaybeActed,
	"http_504":       MaybeActed,

	// The installation cannot do it: a person must fix the install or token.
	"invalid_auth":              Final,
	"not_authed":                Final,
	"token_revoked":             Final,
	"token_expired":             Final,
	"account_inactive":          Final,
	"missing_scope":             Final,
	"not_allowed_token_type":    Final,
	"no_permission":             Final,
	"is_bot":                    Final,
	"user_is_restricted":        Final,
	"two_factor_setup_required": Final,
	"ekm_access_denied":         Final,
	"access_denied":             Final,
	"enterprise_is_restricted":  Final,
	"restricted_action":         Final,
	// The request itself is wrong.
	"invalid_target_team": Final,
	"missing_argument":    Final,
	"invalid_arguments":   Final,
	"invalid_arg_name":    Final,
	"invalid_array_arg":   Final,
	"invalid_charset":     Final,
	"invalid_form_data":   Final,
	"invalid_post_type":   Final,
	"missing_post_type":   Final,
	// The method is gone: nothing to retry.
	"method_deprecated":   Final,
	"deprecated_endpoint": Final,
}

// Classify says what to do after Slack answered code.
func Classify(code string) Class {
	if c, ok := errorClasses[code]; ok {
		return c
	}
	return Unknown
}

// ErrorClasses returns a copy of the classification table.
func ErrorClasses() map[string]Class {
	out := make(map[string]Class, len(errorClasses))
	for k, v := range errorClasses {
		out[k] = v
	}
	return out
}

// advice is what a person should do after a final error, for result messages.
func advice(code string) string {
	switch code {
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return "the org-wide installation's token no longer works: reinstall the app on the Enterprise Grid org, then send the request again"
	case "missing_scope", "not_allowed_token_type", "no_permission", "is_bot":
		return "the installation lacks what the method needs (an org-level bot token with conversations.connect:manage): reinstall with that scope"
	case "invalid_target_team":
		return "Slack does not know that team as connected to this org: check the team id (a request with dry_run, `orgbridge disconnect request … --dry-run`, shows how Slack lists it)"
	case "restricted_action", "enterprise_is_restricted", "access_denied", "user_is_restricted", "two_factor_setup_required", "ekm_access_denied":
		return "the org's settings forbid the disconnect: an org admin must allow it, then send the request again"
	case "method_deprecated", "deprecated_endpoint":
		return "Slack retired the method: orgbridge needs an update"
	}
	return "see Slack's error " + code + "; fix the cause and send a new request"
}

// slackFailure is a failed call with its classification.
type slackFailure struct {
	code  string
	class Class
	err   error
}

func (f *slackFailure) Error() string {
	return fmt.Sprintf("team.externalTeams.disconnect: %s (%s)", f.code, f.class)
}

func (f *slackFailure) Unwrap() error { return f.err }
