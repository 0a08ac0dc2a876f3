package provisioning

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults of an integration's [Settings].
const (
	DefaultScheduleTime         = "03:00"
	DefaultTimeZone             = "UTC"
	DefaultDeactivationLimit    = 500
	DefaultDeactivationPercent  = 20
	DefaultQuarantineAfterRuns  = 3
	DefaultQuarantineFailurePct = 50
)

// Scope says whose Slack users are provisioned.
type Scope string

// Scopes of an integration.
const (
	// ScopeEveryone: every member of the Slack source.
	ScopeEveryone Scope = "everyone"
	// ScopeGroups: the members of the Slack user groups in Settings.Groups.
	ScopeGroups Scope = "groups"
)

// TeamMapping maps Slack user groups onto one directory team (a SCIM Group):
// the team's members are the in-scope members of its groups.
type TeamMapping struct {
	// TeamID is the directory Group id.
	TeamID string `json:"team_id"`
	// TeamName is shown on pages and in reports; filled from the directory.
	TeamName string `json:"team_name,omitempty"`
	// SlackGroups are Slack user group ids (S…).
	SlackGroups []string `json:"slack_groups"`
}

// Settings are what an org admin configures on an integration. Saved settings
// apply to the next run.
type Settings struct {
	Scope Scope `json:"scope"`
	// Groups are the Slack user groups in scope when Scope is ScopeGroups.
	Groups []string `json:"groups,omitempty"`
	// MapTeams switches the team mappings on; off, teams are left alone.
	MapTeams bool          `json:"map_teams"`
	Teams    []TeamMapping `json:"teams,omitempty"`
	// ScheduleTime is the daily local time ("HH:MM") of the scheduled run in TimeZone.
	ScheduleTime string `json:"schedule_time"`
	// TimeZone is an IANA time zone ("Europe/Paris").
	TimeZone string `json:"time_zone"`
	// AutoInvite sends one invitation email to each user a run creates.
	AutoInvite bool `json:"auto_invite"`
	// DeactivationLimit and DeactivationPercent are the deletion threshold:
	// a run that would deactivate more users than either holds every
	// deactivation for an admin to approve. 0 percent disables the percentage.
	DeactivationLimit   int `json:"deactivation_limit"`
	DeactivationPercent int `json:"deactivation_percent"`
}

// DefaultSettings are the settings of a new integration: everyone, no team
// mappings, 03:00 UTC, no invitations, the common deletion threshold.
func DefaultSettings() Settings {
	return Settings{Scope: ScopeEveryone, ScheduleTime: DefaultScheduleTime, TimeZone: DefaultTimeZone,
		DeactivationLimit: DefaultDeactivationLimit, DeactivationPercent: DefaultDeactivationPercent}
}

var (
	slackGroupID = regexp.MustCompile(`^S[A-Z0-9]{2,31}$`)
	clockTime    = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// SettingsError is a refused configuration: Field names what is wrong.
type SettingsError struct {
	Field string
	Msg   string
}

func (e *SettingsError) Error() string { return e.Field + ": " + e.Msg }

func settingsErr(field, format string, args ...any) error {
	return &SettingsError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks what can be checked without Slack or the directory (the
// worker checks that groups and teams exist before saving).
func (s Settings) Validate() error {
	switch s.Scope {
	case ScopeEveryone:
		if len(s.Groups) > 0 {
			return settingsErr("groups", "groups are only used with scope %q", ScopeGroups)
		}
	case ScopeGroups:
		if len(s.Groups) == 0 {
			return settingsErr("groups", "scope %q needs at least one Slack group", ScopeGroups)
		}
	default:
		return settingsErr("scope", "%q is not %q or %q", s.Scope, ScopeEveryone, ScopeGroups)
	}
	if len(s.Groups) > 500 {
		return settingsErr("groups", "at most 500 groups, got %d", len(s.Groups))
	}
	for _, g := range s.Groups {
		if !slackGroupID.MatchString(g) {
			return settingsErr("groups", "%q is not a Slack user group id (S…)", g)
		}
	}
	if len(s.Teams) > 500 {
		return settingsErr("teams", "at most 500 team mappings, got %d", len(s.Teams))
	}
	seenTeam := map[string]bool{}
	for i, t := range s.Teams {
		if t.TeamID == "" || len(t.TeamID) > 64 || strings.ContainsAny(t.TeamID, "/?#\" ") {
			return settingsErr(fmt.Sprintf("teams[%d].team_id", i), "%q is not a directory team id", t.TeamID)
		}
		if seenTeam[t.TeamID] {
			return settingsErr(fmt.Sprintf("teams[%d].team_id", i), "team %s is mapped twice: put all its Slack groups in one mapping", t.TeamID)
		}
		seenTeam[t.TeamID] = true
		if len(t.SlackGroups) == 0 {
			return settingsErr(fmt.Sprintf("teams[%d].slack_groups", i), "team %s needs at least one Slack group", t.TeamID)
		}
		for _, g := range t.SlackGroups {
			if !slackGroupID.MatchString(g) {
				return settingsErr(fmt.Sprintf("teams[%d].slack_groups", i), "%q is not a Slack user group id (S…)", g)
			}
		}
	}
	if s.MapTeams && len(s.Teams) == 0 {
		return settingsErr("teams", "team mapping is on but no team is mapped")
	}
	if !clockTime.MatchString(s.ScheduleTime) {
		return settingsErr("schedule_time", "%q is not a time of day HH:MM (00:00-23:59)", s.ScheduleTime)
	}
	if _, err := loadZone(s.TimeZone); err != nil {
		return settingsErr("time_zone", "%q is not an IANA time zone (e.g. Europe/Paris)", s.TimeZone)
	}
	if s.DeactivationLimit < 1 || s.DeactivationLimit > 1_000_000 {
		return settingsErr("deactivation_limit", "%d is outside 1..1000000", s.DeactivationLimit)
	}
	if s.DeactivationPercent < 0 || s.DeactivationPercent > 100 {
		return settingsErr("deactivation_percent", "%d is outside 0..100", s.DeactivationPercent)
	}
	return nil
}

// loadZone reads an IANA zone; "Local" and "" are refused so that a schedule
// never depends on the server's own zone.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, errors.New("no zone")
	}
	return time.LoadLocation(name)
}

// allGroups lists every Slack group the settings name (scope and teams).
func (s Settings) allGroups() []string {
	out := slices.Clone(s.Groups)
	for _, t := range s.Teams {
		out = append(out, t.SlackGroups...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// NextRun is the first scheduled time strictly after t.
func (s Settings) NextRun(t time.Time) time.Time {
	loc, err := loadZone(s.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	var hh, mm int
	fmt.Sscanf(s.ScheduleTime, "%d:%d", &hh, &mm)
	lt := t.In(loc)
	next := time.Date(lt.Year(), lt.Month(), lt.Day(), hh, mm, 0, 0, loc)
	for !next.After(t) {
		lt = lt.AddDate(0, 0, 1)
		next = time.Date(lt.Year(), lt.Month(), lt.Day(), hh, mm, 0, 0, loc)
	}
	return next
}

// Config configures the worker.
type Config struct {
	// Durable is the consumer's name (default "provisioning").
	Durable string
	// WorkerID names this replica in locks and logs.
	WorkerID string
	// TimeScale speeds up emulated time (tests); 1 in production.
	TimeScale float64
	// PageSize is users.list's limit (default 200, at most 999).
	PageSize int
	// ScheduleTick is how often the scheduler looks for due integrations (default 30s).
	ScheduleTick time.Duration
	// DirectoryConcurrency bounds directory writes in flight (default 4).
	DirectoryConcurrency int
	// DirectoryWritesPerSecond paces directory writes of one run below the
	// directory's limit (0: no pacing; a 429 still pauses every writer for
	// its Retry-After).
	DirectoryWritesPerSecond float64
	// AckWait is how long a trigger stays with a replica that stopped
	// answering before another takes the run over (default 30s).
	AckWait time.Duration
	// RunLockTTL bounds how long a crashed replica's run lock blocks another (default 2m; refreshed while running).
	RunLockTTL time.Duration
	// HistoryLimit is how many runs an integration keeps (default 400).
	HistoryLimit int
	// QuarantineAfter is how many failed runs in a row quarantine an integration (default 3).
	QuarantineAfter int
	// QuarantineBackoff is the first delay of a quarantined integration's retries; it doubles up to a day (default 1h).
	QuarantineBackoff time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Durable == "" {
		c.Durable = "provisioning"
	}
	if c.WorkerID == "" {
		c.WorkerID = "worker"
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.PageSize == 0 {
		c.PageSize = 200
	}
	if c.ScheduleTick == 0 {
		c.ScheduleTick = 30 * time.Second
	}
	if c.DirectoryConcurrency == 0 {
		c.DirectoryConcurrency = 4
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.RunLockTTL == 0 {
		c.RunLockTTL = 2 * time.Minute
	}
	if c.HistoryLimit == 0 {
		c.HistoryLimit = 400
	}
	if c.QuarantineAfter == 0 {
		c.QuarantineAfter = DefaultQuarantineAfterRuns
	}
	if c.QuarantineBackoff == 0 {
		c.QuarantineBackoff = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.PageSize < 1 || c.PageSize > 999:
		return fmt.Errorf("provisioning: page size %d is outside 1..999 (users.list)", c.PageSize)
	case c.TimeScale < 0:
		return errors.New("provisioning: time scale must not be negative")
	case c.DirectoryConcurrency < 1 || c.DirectoryConcurrency > 64:
		return fmt.Errorf("provisioning: directory concurrency %d is outside 1..64", c.DirectoryConcurrency)
	case c.DirectoryWritesPerSecond < 0:
		return errors.New("provisioning: directory writes per second must not be negative")
	case c.RunLockTTL < time.Second:
		return errors.New("provisioning: run lock TTL must be at least 1s")
	}
	return nil
}
