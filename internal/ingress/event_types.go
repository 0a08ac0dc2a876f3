package ingress

// knownEventTypes are the Slack event types orgbridge's workers or app handlers
// subscribe to (deploy/slack/manifest.yaml). Any other type is still published,
// and counted in orgbridge_ingress_unknown_event_types_total so an operator notices
// a subscription nobody consumes.
var knownEventTypes = map[string]bool{
	"app_uninstalled":                true,
	"tokens_revoked":                 true,
	"user_change":                    true,
	"team_join":                      true,
	"app_home_opened":                true,
	"app_mention":                    true,
	"message":                        true,
	"subteam_created":                true,
	"subteam_updated":                true,
	"subteam_members_changed":        true,
	"shared_channel_invite_accepted": true,
	"app_rate_limited":               true,
}
