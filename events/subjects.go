package events

import (
	"fmt"
	"strings"
)

// Stream names. Every stream uses Limits retention and file storage so that it can
// be replayed; see [StreamSpecs].
const (
	StreamSlack        = "SLACK"
	StreamOrg          = "ORG"
	StreamDisconnect   = "DISCONNECT"
	StreamProvisioning = "PROVISIONING"
	StreamApp          = "APP"
	StreamDLQ          = "DLQ"
)

// NoTenant stands in a subject where a message carries neither a team nor an
// enterprise id, so that subjects always have the same number of tokens.
const NoTenant = "_"

// Subject prefixes, one per kind of message.
const (
	prefixSlackEvents        = "slack.events."
	prefixSlackCommands      = "slack.commands."
	prefixSlackInteractions  = "slack.interactions."
	prefixSlackInstall       = "slack.install."
	prefixSlackUninstall     = "slack.uninstall."
	prefixOrgConnect         = "org.connect."
	prefixOrgUserDeactivated = "org.user.deactivated."
	prefixDisconnectRequests = "disconnect.requests."
	prefixDisconnectResults  = "disconnect.results."
	prefixProvisioningSync   = "provisioning.sync."
	prefixAppCommands        = "app.commands."
	prefixAppInteractions    = "app.interactions."
	prefixDLQ                = "dlq."
)

// Token makes s safe to use as one subject token: NATS subjects are split on '.',
// and '*', '>' and white space have meanings of their own, so each of those (and
// any other byte outside printable ASCII) becomes '_'. An empty s becomes
// [NoTenant].
func Token(s string) string {
	if s == "" {
		return NoTenant
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !tokenByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func tokenByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '.' && c != '*' && c != '>'
}

// Bounds on the subjects [Publisher] publishes. Every token of this contract is
// a Slack or org id, an event type, a command name or a stream or consumer
// name: all far shorter. The bounds keep a subject far below the server's
// control line (4 KiB by default), whose overflow closes the connection.
const (
	// MaxTokenLen is the longest token, in bytes.
	MaxTokenLen = 128
	// MaxSubjectLen is the longest subject, in bytes.
	MaxSubjectLen = 512
)

// ValidateSubject reports, as a [*SubjectError], why subject cannot be
// published: it is empty or longer than [MaxSubjectLen], or one of its tokens
// is empty, longer than [MaxTokenLen], or has a byte [Token] would have
// replaced (white space, '.', '*', '>', control and non-ASCII bytes). Subjects
// built by this package's functions from sane values always pass.
func ValidateSubject(subject string) error {
	switch {
	case subject == "":
		return newSubjectError(subject, "it is empty")
	case len(subject) > MaxSubjectLen:
		return newSubjectError(subject, fmt.Sprintf("it is longer than %d bytes", MaxSubjectLen))
	}
	token, start := 1, 0
	for i := 0; i <= len(subject); i++ {
		if i < len(subject) && subject[i] != '.' {
			if !tokenByte(subject[i]) {
				return newSubjectError(subject, fmt.Sprintf("token %d has the byte %q; tokens are printable ASCII without '.', '*', '>' or white space", token, subject[i:i+1]))
			}
			continue
		}
		switch n := i - start; {
		case n == 0:
			return newSubjectError(subject, fmt.Sprintf("token %d is empty", token))
		case n > MaxTokenLen:
			return newSubjectError(subject, fmt.Sprintf("token %d is %d bytes long; at most %d are allowed", token, n, MaxTokenLen))
		}
		token, start = token+1, i+1
	}
	return nil
}

// Tenant picks the id a subject is keyed by: the team id, or the enterprise id
// for org-wide (Enterprise Grid) traffic that has no team.
func Tenant(teamID, enterpriseID string) string {
	if teamID != "" {
		return teamID
	}
	return enterpriseID
}

// SlackEventSubject is where the ingress publishes an Events API callback:
// slack.events.<team_or_enterprise>.<event_type>.
func SlackEventSubject(tenant, eventType string) string {
	return prefixSlackEvents + Token(tenant) + "." + Token(eventType)
}

// SlackCommandSubject is where the ingress publishes a slash command:
// slack.commands.<team_or_enterprise>.
func SlackCommandSubject(tenant string) string { return prefixSlackCommands + Token(tenant) }

// SlackInteractionSubject is where the ingress publishes an interactivity payload
// (block actions, view submissions, shortcuts): slack.interactions.<team_or_enterprise>.
func SlackInteractionSubject(tenant string) string { return prefixSlackInteractions + Token(tenant) }

// SlackInstallSubject carries completed OAuth installs: slack.install.<team_or_enterprise>.
func SlackInstallSubject(tenant string) string { return prefixSlackInstall + Token(tenant) }

// SlackUninstallSubject carries app_uninstalled and tokens_revoked events:
// slack.uninstall.<team_or_enterprise>.
func SlackUninstallSubject(tenant string) string { return prefixSlackUninstall + Token(tenant) }

// OrgConnectSubject carries org OAuth results: org.connect.<team_or_enterprise>.
func OrgConnectSubject(tenant string) string { return prefixOrgConnect + Token(tenant) }

// OrgUserDeactivatedSubject is where other systems announce that an org user was
// deactivated: org.user.deactivated.<org_id>.
func OrgUserDeactivatedSubject(orgID string) string { return prefixOrgUserDeactivated + Token(orgID) }

// DisconnectRequestSubject is where other systems ask for an external team to be
// disconnected from an Enterprise Grid org: disconnect.requests.<enterprise_id>.
func DisconnectRequestSubject(enterpriseID string) string {
	return prefixDisconnectRequests + Token(enterpriseID)
}

// DisconnectResultSubject carries every state change of a disconnect request:
// disconnect.results.<enterprise_id>.
func DisconnectResultSubject(enterpriseID string) string {
	return prefixDisconnectResults + Token(enterpriseID)
}

// ProvisioningSyncSubject triggers a directory sync for a tenant:
// provisioning.sync.<tenant>.
func ProvisioningSyncSubject(tenant string) string { return prefixProvisioningSync + Token(tenant) }

// AppCommandSubject carries an authenticated slash command, org identity attached,
// to the app handlers other teams write: app.commands.<command without slash>.
func AppCommandSubject(command string) string {
	return prefixAppCommands + Token(strings.TrimPrefix(command, "/"))
}

// AppInteractionSubject carries an authenticated interaction to app handlers:
// app.interactions.<app_id>.
func AppInteractionSubject(appID string) string { return prefixAppInteractions + Token(appID) }

// DLQSubject is where a message that could not be handled is parked:
// dlq.<stream>.<consumer>.
func DLQSubject(stream, consumer string) string {
	return prefixDLQ + Token(stream) + "." + Token(consumer)
}
