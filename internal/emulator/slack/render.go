package slackemu

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// The JSON shapes below follow what Slack returns (users.list members,
// usergroups, team.info, team.externalTeams.list organizations).

type userJSON struct {
	ID                string          `json:"id"`
	TeamID            string          `json:"team_id"`
	Name              string          `json:"name"`
	Deleted           bool            `json:"deleted"`
	Color             string          `json:"color"`
	RealName          string          `json:"real_name"`
	TZ                string          `json:"tz"`
	TZLabel           string          `json:"tz_label"`
	TZOffset          int             `json:"tz_offset"`
	Profile           profileJSON     `json:"profile"`
	IsAdmin           bool            `json:"is_admin"`
	IsOwner           bool            `json:"is_owner"`
	IsPrimaryOwner    bool            `json:"is_primary_owner"`
	IsRestricted      bool            `json:"is_restricted"`
	IsUltraRestricted bool            `json:"is_ultra_restricted"`
	IsBot             bool            `json:"is_bot"`
	IsAppUser         bool            `json:"is_app_user"`
	IsInvitedUser     bool            `json:"is_invited_user,omitempty"`
	Updated           int64           `json:"updated"`
	IsEmailConfirmed  bool            `json:"is_email_confirmed"`
	Enterprise        *enterpriseUser `json:"enterprise_user,omitempty"`
}

type profileJSON struct {
	Title                 string `json:"title"`
	Phone                 string `json:"phone"`
	Skype                 string `json:"skype"`
	RealName              string `json:"real_name"`
	RealNameNormalized    string `json:"real_name_normalized"`
	DisplayName           string `json:"display_name"`
	DisplayNameNormalized string `json:"display_name_normalized"`
	FirstName             string `json:"first_name"`
	LastName              string `json:"last_name"`
	StatusText            string `json:"status_text"`
	StatusEmoji           string `json:"status_emoji"`
	AvatarHash            string `json:"avatar_hash"`
	Email                 string `json:"email,omitempty"`
	BotID                 string `json:"bot_id,omitempty"`
	Image24               string `json:"image_24"`
	Image32               string `json:"image_32"`
	Image48               string `json:"image_48"`
	Image72               string `json:"image_72"`
	Image192              string `json:"image_192"`
	Image512              string `json:"image_512"`
	Image1024             string `json:"image_1024"`
	ImageOriginal         string `json:"image_original"`
	IsCustomImage         bool   `json:"is_custom_image"`
	Team                  string `json:"team"`
}

type enterpriseUser struct {
	ID             string   `json:"id"`
	EnterpriseID   string   `json:"enterprise_id"`
	EnterpriseName string   `json:"enterprise_name"`
	IsAdmin        bool     `json:"is_admin"`
	IsOwner        bool     `json:"is_owner"`
	IsPrimaryOwner bool     `json:"is_primary_owner"`
	Teams          []string `json:"teams"`
}

var colors = []string{"9f69e7", "4bbe2e", "e7392d", "3c989f", "674b1b", "e96699", "5b89d5", "53b759"}

// avatarHash is a stable 12-hex-digit hash of the user id, like Slack's.
func avatarHash(id string) string {
	s := sha256.Sum256([]byte(id))
	return hex.EncodeToString(s[:6])
}

// renderUser builds the users.list / users.info shape; ws is the user's home
// workspace. withEmail follows Slack: profile.email only for tokens holding
// users:read.email.
func renderUser(ws *workspace, u *user, withEmail bool) userJSON {
	real := strings.TrimSpace(u.First + " " + u.Last)
	h := avatarHash(u.ID)
	img := func(size string) string {
		return "https://avatars.slack-edge.com/emulated/" + u.ID + "_" + h + "_" + size + ".png"
	}
	display, original := u.Name, img("original")
	if u.x != nil {
		if u.x.DisplayName != "" {
			display = u.x.DisplayName
		}
		if u.x.ImageOriginal != "" {
			original = u.x.ImageOriginal
		}
	}
	j := userJSON{
		ID: u.ID, TeamID: ws.ID, Name: u.Name, Deleted: u.has(flagDeleted),
		Color: colors[int(h[0])%len(colors)], RealName: real,
		TZ: "America/Los_Angeles", TZLabel: "Pacific Standard Time", TZOffset: -28800,
		IsAdmin: u.has(flagAdmin), IsOwner: u.has(flagOwner), IsPrimaryOwner: u.has(flagPrimaryOwner),
		IsRestricted: u.has(flagRestricted), IsUltraRestricted: u.has(flagUltraRestricted), IsBot: u.has(flagBot),
		IsAppUser: u.has(flagAppUser), IsInvitedUser: u.has(flagInvited),
		Updated: u.Updated, IsEmailConfirmed: u.Email != "",
		Profile: profileJSON{
			Title: u.Title, RealName: real, RealNameNormalized: real, DisplayName: display, DisplayNameNormalized: display,
			FirstName: u.First, LastName: u.Last, AvatarHash: h, BotID: u.BotID,
			Image24: img("24"), Image32: img("32"), Image48: img("48"), Image72: img("72"), Image192: img("192"), Image512: img("512"),
			Image1024: img("1024"), ImageOriginal: original, IsCustomImage: u.x != nil && u.x.ImageOriginal != "",
			Team: ws.ID,
		},
	}
	if withEmail {
		j.Profile.Email = u.Email
	}
	if ent := ws.Enterprise; ent != nil {
		teams := []string{ws.ID}
		if u.x != nil {
			for _, t := range u.x.Teams {
				teams = append(teams, t.ID)
			}
		}
		j.Enterprise = &enterpriseUser{ID: u.ID, EnterpriseID: ent.ID, EnterpriseName: ent.Name,
			IsAdmin: u.has(flagAdmin), IsOwner: u.has(flagOwner), IsPrimaryOwner: u.has(flagPrimaryOwner), Teams: teams}
	}
	return j
}

type groupJSON struct {
	ID          string     `json:"id"`
	TeamID      string     `json:"team_id"`
	IsUsergroup bool       `json:"is_usergroup"`
	IsSubteam   bool       `json:"is_subteam"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Handle      string     `json:"handle"`
	IsExternal  bool       `json:"is_external"`
	DateCreate  int64      `json:"date_create"`
	DateUpdate  int64      `json:"date_update"`
	DateDelete  int64      `json:"date_delete"`
	AutoType    *string    `json:"auto_type"`
	CreatedBy   string     `json:"created_by"`
	UpdatedBy   string     `json:"updated_by"`
	DeletedBy   *string    `json:"deleted_by"`
	Prefs       groupPrefs `json:"prefs"`
	Users       []string   `json:"users,omitempty"`
	UserCount   *int       `json:"user_count,omitempty"`
}

type groupPrefs struct {
	Channels []string `json:"channels"`
	Groups   []string `json:"groups"`
}

// activeMembers are the group's members who are not deactivated: Slack drops
// deactivated users from user groups.
func (g *group) activeMembers() []string {
	out := make([]string, 0, len(g.Members))
	for _, m := range g.Members {
		if u := g.memberRef(m).user(); !u.has(flagDeleted) {
			out = append(out, u.ID)
		}
	}
	return out
}

func renderGroup(g *group, withUsers, withCount bool) groupJSON {
	j := groupJSON{ID: g.ID, TeamID: g.ws.ID, IsUsergroup: true, IsSubteam: true, Name: g.Name, Description: g.Description,
		Handle: g.Handle, DateCreate: g.Created, DateUpdate: g.Updated, CreatedBy: g.CreatedBy, UpdatedBy: g.CreatedBy,
		Prefs: groupPrefs{Channels: []string{}, Groups: []string{}}}
	if g.Disabled {
		j.DateDelete = g.Deleted
		if j.DateDelete == 0 {
			j.DateDelete = g.Updated
		}
		by := g.CreatedBy
		j.DeletedBy = &by
	}
	members := g.activeMembers()
	if withUsers {
		j.Users = members
		if j.Users == nil {
			j.Users = []string{}
		}
	}
	if withCount {
		n := len(members)
		j.UserCount = &n
	}
	return j
}

type teamJSON struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Domain         string         `json:"domain"`
	EmailDomain    string         `json:"email_domain"`
	Icon           map[string]any `json:"icon"`
	EnterpriseID   string         `json:"enterprise_id,omitempty"`
	EnterpriseName string         `json:"enterprise_name,omitempty"`
}

func renderTeam(ws *workspace) teamJSON {
	j := teamJSON{ID: ws.ID, Name: ws.Name, Domain: ws.Domain, EmailDomain: ws.Domain + ".example.com",
		Icon: map[string]any{"image_default": true, "image_34": "https://a.slack-edge.com/emulated/team_34.png",
			"image_68": "https://a.slack-edge.com/emulated/team_68.png"}}
	if ws.Enterprise != nil {
		j.EnterpriseID, j.EnterpriseName = ws.Enterprise.ID, ws.Enterprise.Name
		j.EmailDomain = ws.Enterprise.Domain + ".example.com"
	}
	return j
}

type orgJSON struct {
	TeamID              string           `json:"team_id"`
	TeamName            string           `json:"team_name"`
	TeamDomain          string           `json:"team_domain"`
	PublicChannelCount  int              `json:"public_channel_count"`
	PrivateChannelCount int              `json:"private_channel_count"`
	IMChannelCount      int              `json:"im_channel_count"`
	MPIMChannelCount    int              `json:"mpim_channel_count"`
	ConnectedWorkspaces []connectedWS    `json:"connected_workspaces"`
	SlackConnectPrefs   map[string]any   `json:"slack_connect_prefs"`
	ConnectionStatus    string           `json:"connection_status"`
	LastActiveTimestamp int64            `json:"last_active_timestamp"`
	IsSponsored         bool             `json:"is_sponsored"`
	Canvas              ownershipSummary `json:"canvas"`
	Lists               ownershipSummary `json:"lists"`
}

type connectedWS struct {
	WorkspaceID   string `json:"workspace_id"`
	WorkspaceName string `json:"workspace_name"`
}

type ownershipSummary struct {
	TotalCount       int   `json:"total_count"`
	OwnershipDetails []any `json:"ownership_details"`
}

func renderExternal(x *externalTeam, now time.Time) orgJSON {
	j := orgJSON{TeamID: x.ID, TeamName: x.Name, TeamDomain: x.Domain, PublicChannelCount: x.Public,
		PrivateChannelCount: x.Private, IMChannelCount: x.IMs, MPIMChannelCount: x.MPIMs,
		ConnectedWorkspaces: []connectedWS{}, SlackConnectPrefs: map[string]any{},
		ConnectionStatus: x.status(now), LastActiveTimestamp: x.LastActive, IsSponsored: x.Sponsored,
		Canvas: ownershipSummary{OwnershipDetails: []any{}}, Lists: ownershipSummary{OwnershipDetails: []any{}}}
	for _, ws := range x.Workspaces {
		j.ConnectedWorkspaces = append(j.ConnectedWorkspaces, connectedWS{WorkspaceID: ws.ID, WorkspaceName: ws.Name})
	}
	for _, p := range x.Prefs {
		j.SlackConnectPrefs[p] = map[string]any{"value": true, "source": "org"}
	}
	return j
}
