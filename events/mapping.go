package events

// Mapping lookup service: core NATS request/reply (not stored on a stream).
// Send a [MappingLookupRequest] as JSON, get a [MappingLookupReply].
const (
	// MappingLookupOrgUserSubject answers the org user of (workspace, Slack user).
	MappingLookupOrgUserSubject = "orgbridge.mapping.lookup.org_user"
	// MappingLookupSlackUserSubject answers the Slack user of (org user, workspace).
	MappingLookupSlackUserSubject = "orgbridge.mapping.lookup.slack_user"
	// MappingLookupQueue is the queue group every mapping worker replica joins.
	MappingLookupQueue = "orgbridge-mapping"
)

// MappingLookupRequest asks for one side of a mapping. Workspace is the team
// id (or the enterprise id of an org-wide install). For the org-user lookup
// set SlackUserID; for the Slack-user lookup set OrgUserID (and OrgID, which
// defaults to the org the workspace is bound to).
type MappingLookupRequest struct {
	Workspace   string `json:"workspace"`
	SlackUserID string `json:"slack_user_id,omitempty"`
	OrgID       string `json:"org_id,omitempty"`
	OrgUserID   string `json:"org_user_id,omitempty"`
}

// MappingLookupReply is the answer: Found with the mapping, or not found, or
// Error naming what was wrong with the request.
type MappingLookupReply struct {
	Found       bool   `json:"found"`
	MappingID   string `json:"mapping_id,omitempty"`
	Workspace   string `json:"workspace,omitempty"`
	SlackUserID string `json:"slack_user_id,omitempty"`
	OrgID       string `json:"org_id,omitempty"`
	OrgUserID   string `json:"org_user_id,omitempty"`
	Username    string `json:"username,omitempty"`
	Error       string `json:"error,omitempty"`
}
