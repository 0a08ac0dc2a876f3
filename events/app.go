package events

import (
	"encoding/json"
	"time"
)

// Encrypted is a secret (an OAuth code) sealed with AES-256-GCM under the key
// KeyID names; only orgbridge can open it. Secrets never travel in the clear.
type Encrypted struct {
	KeyID      string `json:"kid"`
	Ciphertext string `json:"ct"`
}

// SlackInstall is published by the ingress on [SlackInstallSubject] when Slack
// redirects back from OAuth v2; the binding worker exchanges the code.
type SlackInstall struct {
	SchemaVersion int `json:"schema_version"`
	// FlowID identifies this OAuth flow; the worker's outcome is stored under it
	// for the browser waiting on the callback.
	FlowID      string    `json:"flow_id"`
	AppID       string    `json:"app_id,omitempty"`
	Code        Encrypted `json:"code"`
	RedirectURI string    `json:"redirect_uri"`
	// Error is Slack's error on the redirect (access_denied), instead of a code.
	Error string `json:"error,omitempty"`
}

// OrgConnect is published by the ingress on [OrgConnectSubject] when the org
// redirects back from its OAuth flow; the binding worker binds the workspace
// and creates the user's mapping.
type OrgConnect struct {
	SchemaVersion int    `json:"schema_version"`
	FlowID        string `json:"flow_id"`
	AppID         string `json:"app_id,omitempty"`
	TeamID        string `json:"team_id,omitempty"`
	EnterpriseID  string `json:"enterprise_id,omitempty"`
	// Scope is the tenant the binding is kept under: the team, or the
	// enterprise for an org-wide install.
	Scope            string    `json:"scope"`
	SlackUserID      string    `json:"slack_user_id"`
	ChannelID        string    `json:"channel_id,omitempty"`
	Code             Encrypted `json:"code"`
	Error            string    `json:"error,omitempty"`
	ErrorDescription string    `json:"error_description,omitempty"`
}

// OrgUserDeactivated is what other systems publish on
// [OrgUserDeactivatedSubject] when an org user is deactivated: orgbridge
// removes the user's mappings and associations in every workspace.
type OrgUserDeactivated struct {
	SchemaVersion int    `json:"schema_version"`
	OrgID         string `json:"org_id"`
	OrgUserID     string `json:"org_user_id"`
}

// OrgIdentity is the org user a Slack user is mapped to, attached to
// authenticated commands and interactions. It carries no token.
type OrgIdentity struct {
	OrgID       string `json:"org_id"`
	OrgName     string `json:"org_name,omitempty"`
	OrgUserID   string `json:"org_user_id"`
	Username    string `json:"username,omitempty"`
	InstanceURL string `json:"instance_url,omitempty"`
	MappingID   string `json:"mapping_id"`
}

// AppCommand is an authenticated slash command on [AppCommandSubject].
// Answer it through ResponseURL (5 posts within 30 minutes of ReceivedAt).
type AppCommand struct {
	SchemaVersion int         `json:"schema_version"`
	AppID         string      `json:"app_id"`
	Command       string      `json:"command"`
	Text          string      `json:"text"`
	TeamID        string      `json:"team_id"`
	EnterpriseID  string      `json:"enterprise_id,omitempty"`
	ChannelID     string      `json:"channel_id,omitempty"`
	SlackUserID   string      `json:"slack_user_id"`
	ResponseURL   string      `json:"response_url"`
	TriggerID     string      `json:"trigger_id,omitempty"`
	ReceivedAt    time.Time   `json:"received_at"`
	Org           OrgIdentity `json:"org"`
}

// AppInteraction is an authenticated interaction on [AppInteractionSubject].
// Payload is Slack's interaction payload unchanged.
type AppInteraction struct {
	SchemaVersion int             `json:"schema_version"`
	AppID         string          `json:"app_id"`
	Type          string          `json:"type"`
	TeamID        string          `json:"team_id"`
	EnterpriseID  string          `json:"enterprise_id,omitempty"`
	SlackUserID   string          `json:"slack_user_id"`
	ResponseURL   string          `json:"response_url,omitempty"`
	TriggerID     string          `json:"trigger_id,omitempty"`
	ReceivedAt    time.Time       `json:"received_at"`
	Org           OrgIdentity     `json:"org"`
	Payload       json.RawMessage `json:"payload"`
}
