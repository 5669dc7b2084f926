package domain

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Roles a membership can give a person in an event.
const (
	RoleOrganizer    = "organizer"
	RoleRapporteur   = "rapporteur"
	RoleParticipant  = "participant"
	RoleReportAuthor = "report_author"
	RoleObserver     = "observer"
)

// Release states of findings, workshops and side events: draft is the
// group's own, shared is visible to the event, released is public.
const (
	Draft    = "draft"
	Shared   = "shared"
	Released = "released"
)

// Taxonomy dimensions.
const (
	DimCountry = "country"
	DimP       = "p"
	DimForm    = "form"
	DimTheme   = "theme"
	DimVictim  = "victim"
	DimActor   = "actor"
)

// Dimensions lists the taxonomy dimensions in display order.
func Dimensions() []string {
	return []string{DimCountry, DimTheme, DimP, DimForm, DimVictim, DimActor}
}

// Event is one seminar.
type Event struct {
	bun.BaseModel `bun:"table:events"`
	ID            int64      `bun:",pk,autoincrement" json:"id"`
	Slug          string     `json:"slug"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Venue         string     `json:"venue"`
	Timezone      string     `json:"timezone"`
	Language      string     `json:"language"`
	StartsAt      *time.Time `json:"starts_at,omitempty"`
	EndsAt        *time.Time `json:"ends_at,omitempty"`
	CreatedAt     time.Time  `bun:",nullzero,default:now()" json:"created_at"`
}

// Part is a section of an event's programme (talks, workshops, plenary).
type Part struct {
	bun.BaseModel `bun:"table:parts"`
	ID            int64      `bun:",pk,autoincrement" json:"id"`
	EventID       int64      `json:"event_id"`
	Position      int        `json:"position"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Kind          string     `json:"kind"`
	StartsAt      *time.Time `json:"starts_at,omitempty"`
	EndsAt        *time.Time `json:"ends_at,omitempty"`
	Streamed      bool       `bun:",notnull" json:"streamed"`
}

// Workshop is a group working in a part.
type Workshop struct {
	bun.BaseModel      `bun:"table:workshops"`
	ID                 int64  `bun:",pk,autoincrement" json:"id"`
	EventID            int64  `json:"event_id"`
	PartID             int64  `json:"part_id"`
	Position           int    `json:"position"`
	Name               string `json:"name"`
	Description        string `json:"description"`
	RoomName           string `json:"room_name"`
	KeyMessages        string `json:"key_messages"`
	KeyMessagesVersion int    `bun:",notnull" json:"key_messages_version"`
	ReleaseState       string `json:"release_state"`
}

// SideEvent is an event held alongside the seminar whose results Part III presents.
type SideEvent struct {
	bun.BaseModel `bun:"table:side_events"`
	ID            int64      `bun:",pk,autoincrement" json:"id"`
	EventID       int64      `json:"event_id"`
	Position      int        `json:"position"`
	Title         string     `json:"title"`
	Organiser     string     `json:"organiser"`
	Description   string     `json:"description"`
	StartsAt      *time.Time `json:"starts_at,omitempty"`
	EndsAt        *time.Time `json:"ends_at,omitempty"`
	ReleaseState  string     `json:"release_state"`
}

// Limits of a person's texts, in characters, wherever a person comes from.
const (
	MaxPersonName = 200
	MaxEmail      = 254 // as SMTP allows
	MaxPersonText = 200 // organisation, country, actor type
)

// Person is someone who takes part; staff are linked to an OIDC subject.
type Person struct {
	bun.BaseModel `bun:"table:people"`
	ID            int64     `bun:",pk,autoincrement" json:"id"`
	Name          string    `json:"name"`
	Email         *string   `json:"email,omitempty"`
	Organisation  string    `json:"organisation"`
	Country       string    `json:"country"`
	ActorType     string    `json:"actor_type"`
	OIDCIssuer    *string   `bun:"oidc_issuer" json:"-"`
	OIDCSubject   *string   `bun:"oidc_subject" json:"-"`
	CreatedAt     time.Time `bun:",nullzero,default:now()" json:"created_at"`
}

// Membership gives a person a role in an event, for roles of a group with its workshop.
type Membership struct {
	bun.BaseModel `bun:"table:memberships"`
	ID            int64     `bun:",pk,autoincrement" json:"id"`
	EventID       int64     `json:"event_id"`
	PersonID      int64     `json:"person_id"`
	Role          string    `json:"role"`
	WorkshopID    *int64    `json:"workshop_id,omitempty"`
	Attribution   string    `json:"attribution"`
	CreatedAt     time.Time `bun:",nullzero,default:now()" json:"created_at"`
}

// Term is one taxonomy term of an event.
type Term struct {
	bun.BaseModel `bun:"table:taxonomy_terms"`
	EventID       int64  `bun:",pk" json:"-"`
	Dimension     string `bun:",pk" json:"dimension"`
	Key           string `bun:",pk" json:"key"`
	Label         string `json:"label"`
	Position      int    `json:"position"`
}

// Finding is a best practice recorded by a group. Its JSON (log entries,
// snapshots, conflict replies) reaches every tablet of its room, so it
// leaves the contact out: only organizers and report authors see that,
// on the pages.
type Finding struct {
	bun.BaseModel   `bun:"table:findings"`
	ID              int64          `bun:",pk,autoincrement" json:"id"`
	EventID         int64          `json:"event_id"`
	WorkshopID      *int64         `json:"workshop_id,omitempty"`
	SideEventID     *int64         `json:"side_event_id,omitempty"`
	AuthorID        *int64         `json:"-"`
	Title           string         `json:"title"`
	WhatDone        string         `json:"what_done"`
	Results         string         `json:"results"`
	Transferability string         `json:"transferability"`
	NordicProposal  string         `json:"nordic_proposal"`
	Countries       []string       `bun:",array" json:"countries"`
	Themes          []string       `bun:",array" json:"themes"`
	Ps              []string       `bun:",array" json:"ps"`
	Forms           []string       `bun:",array" json:"forms"`
	VictimGroups    []string       `bun:",array" json:"victim_groups"`
	ActorTypes      []string       `bun:",array" json:"actor_types"`
	Language        string         `json:"language"`
	ContactName     string         `json:"-"` // off the JSON: see Finding
	ContactEmail    string         `json:"-"`
	ContactConsent  bool           `bun:",notnull" json:"contact_consent"`
	Attribution     string         `json:"attribution"`
	ReleaseState    string         `json:"release_state"`
	IsKey           bool           `bun:",notnull" json:"is_key"`
	KeyPosition     *int           `json:"key_position,omitempty"`
	Version         int            `json:"version"`
	FieldVersions   map[string]int `bun:",type:jsonb" json:"-"`
	CreatedAt       time.Time      `bun:",nullzero,default:now()" json:"created_at"`
	UpdatedAt       time.Time      `bun:",nullzero,default:now()" json:"updated_at"`
	DeletedAt       *time.Time     `json:"-"`
	Votes           int            `bun:",scanonly" json:"votes"`
}

// LogEntry is one committed entry of a room's event log.
type LogEntry struct {
	bun.BaseModel `bun:"table:log_entries"`
	Room          string          `bun:",pk" json:"room"`
	Seq           int64           `bun:",pk" json:"seq"`
	OpID          string          `json:"op_id"`
	ActorID       *int64          `json:"actor_id,omitempty"`
	Kind          string          `json:"kind"`
	Payload       json.RawMessage `bun:"type:jsonb" json:"payload"`
	At            time.Time       `bun:",nullzero,default:now()" json:"at"`
	// ActorLabel attributes the entry under the Chatham House rule: the
	// actor's country and actor type, never the name.
	ActorLabel string `bun:"actor_label,scanonly" json:"actor,omitempty"`
}

// AuditEntry records an administrative change: who, what, when.
type AuditEntry struct {
	bun.BaseModel `bun:"table:audit_log"`
	ID            int64           `bun:",pk,autoincrement" json:"id"`
	At            time.Time       `bun:",nullzero,default:now()" json:"at"`
	ActorID       *int64          `json:"actor_id,omitempty"`
	EventID       *int64          `json:"event_id,omitempty"`
	Action        string          `json:"action"`
	Target        string          `json:"target"`
	Detail        json.RawMessage `bun:"type:jsonb" json:"detail"`
}

// RuleLabel is how the person is named under the Chatham House rule:
// their country and actor type, those they have.
func (p Person) RuleLabel() string { return joinGiven(" · ", p.Country, p.ActorType) }

// joinGiven joins the parts that are not empty with sep.
func joinGiven(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}

// Credit is how a finding by author is credited under its attribution:
// under the Chatham House rule (the default) by the author's RuleLabel;
// "organisation", by their organisation; "named", by their name and
// organisation, as the author agreed. An unknown author, or one whose
// details are empty, gives "".
func Credit(attribution string, author Person) string {
	switch attribution {
	case "organisation":
		if author.Organisation != "" {
			return author.Organisation
		}
	case "named":
		if author.Name != "" {
			return joinGiven(", ", author.Name, author.Organisation)
		}
	}
	return author.RuleLabel()
}
