package events

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [StreamOptions].
const (
	DefaultMaxAge          = 7 * 24 * time.Hour
	DefaultDuplicateWindow = 20 * time.Minute
	// MinDuplicateWindow covers Slack's retry schedule (about 0 s, 1 min and 5 min
	// after the first attempt) with room to spare.
	MinDuplicateWindow = 15 * time.Minute
)

// MaxDeliveriesAdvisoryPrefix is the subject prefix of the advisories the NATS server
// publishes when a message has used up a consumer's MaxDeliver. The DLQ stream
// captures them so that a message abandoned by a crashed or hung worker still
// reaches the dead-letter queue.
const MaxDeliveriesAdvisoryPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."

// StreamSpec names one stream of the contract and the subjects it captures.
type StreamSpec struct {
	Name        string
	Subjects    []string
	Description string
}

// StreamSpecs lists every stream orgbridge uses, in the order they are created.
func StreamSpecs() []StreamSpec {
	return []StreamSpec{
		{
			Name: StreamSlack,
			Subjects: []string{
				prefixSlackEvents + "*.*",
				prefixSlackCommands + "*",
				prefixSlackInteractions + "*",
				prefixSlackInstall + ">",
				prefixSlackUninstall + "*",
			},
			Description: "Everything Slack sends, verified by the ingress; Msg-Id = event_id for events.",
		},
		{
			Name:        StreamOrg,
			Subjects:    []string{prefixOrgConnect + ">", prefixOrgUserDeactivated + "*"},
			Description: "Org OAuth results and org-side signals other systems publish.",
		},
		{
			Name:        StreamDisconnect,
			Subjects:    []string{prefixDisconnectRequests + "*", prefixDisconnectResults + "*"},
			Description: "team.externalTeams.disconnect requests from other systems and their results.",
		},
		{
			Name:        StreamProvisioning,
			Subjects:    []string{prefixProvisioningSync + "*", prefixProvisioningRuns + "*"},
			Description: "Scheduled and manual directory sync triggers, and run lifecycle events.",
		},
		{
			Name:        StreamApp,
			Subjects:    []string{prefixAppCommands + "*", prefixAppInteractions + "*"},
			Description: "Authenticated commands and interactions for app handlers, org identity attached.",
		},
		{
			Name:        StreamDLQ,
			Subjects:    []string{prefixDLQ + ">", MaxDeliveriesAdvisoryPrefix + ">"},
			Description: "Dead letters with the reason they failed, and captured MAX_DELIVERIES advisories.",
		},
	}
}

// StreamOptions are the settings an operator may tune for every stream.
type StreamOptions struct {
	// MaxAge bounds how long messages are kept (and so how far back a replay can
	// reach). Zero means [DefaultMaxAge].
	MaxAge time.Duration
	// DuplicateWindow is how long a Nats-Msg-Id is remembered. Zero means
	// [DefaultDuplicateWindow]; it may not be below [MinDuplicateWindow].
	DuplicateWindow time.Duration
	// Replicas is 1 on a single server and 3 on a NATS cluster. Zero means 1.
	Replicas int
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	return o
}

// Validate reports settings that would break the contract.
func (o StreamOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.MaxAge < 0:
		return fmt.Errorf("stream max age %s is negative", o.MaxAge)
	case o.DuplicateWindow < MinDuplicateWindow:
		return fmt.Errorf("duplicate window %s is shorter than Slack's retry schedule needs (%s)", o.DuplicateWindow, MinDuplicateWindow)
	case o.DuplicateWindow > o.MaxAge:
		return fmt.Errorf("duplicate window %s is longer than the stream max age %s", o.DuplicateWindow, o.MaxAge)
	case o.Replicas < 1 || o.Replicas > 5:
		return fmt.Errorf("stream replicas %d is outside 1..5", o.Replicas)
	}
	return nil
}

// StreamConfig builds the JetStream configuration of spec: Limits retention and
// file storage always (WorkQueue retention cannot be replayed).
func StreamConfig(spec StreamSpec, opts StreamOptions) jetstream.StreamConfig {
	opts = opts.withDefaults()
	return jetstream.StreamConfig{
		Name:        spec.Name,
		Description: spec.Description,
		Subjects:    append([]string(nil), spec.Subjects...),
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      opts.MaxAge,
		Duplicates:  opts.DuplicateWindow,
		Replicas:    opts.Replicas,
	}
}
