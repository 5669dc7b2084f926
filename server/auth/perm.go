package auth

import "slices"

// Role is what a person is in an event.
type Role string

// The roles. Participant and rapporteur belong to one workshop; the others
// are event-wide. Public is everyone, signed in or not.
const (
	RoleOrganizer    Role = "organizer"
	RoleRapporteur   Role = "rapporteur"
	RoleParticipant  Role = "participant"
	RoleReportAuthor Role = "report_author"
	RoleObserver     Role = "observer"
	RolePublic       Role = "public"
)

// Action is something a request or hub operation wants to do.
type Action string

// The actions. Every HTTP route and hub op maps to exactly one.
const (
	ActEventRead          Action = "event.read"           // see the event, its parts and workshops
	ActEventManage        Action = "event.manage"         // setup, taxonomy, invites
	ActPeopleManage       Action = "people.manage"        // people and memberships, CSV import
	ActReadDrafts         Action = "workshop.read_drafts" // a workshop's draft findings (scoped)
	ActFindingReadShared  Action = "finding.read_shared"  // every group's shared findings
	ActFindingReadRelease Action = "finding.read_released"
	ActFindingCreate      Action = "finding.create"
	ActFindingUpdate      Action = "finding.update"
	ActFindingDelete      Action = "finding.delete"
	ActFindingVote        Action = "finding.vote"
	ActFindingComment     Action = "finding.comment"
	ActFindingShare       Action = "finding.share" // draft → shared
	ActKeyCurate          Action = "key.curate"    // key findings and key messages
	ActReleaseManage      Action = "release.manage"
	ActConclusionWrite    Action = "conclusion.write"
	ActSearchAll          Action = "search.all"
	ActReportExport       Action = "report.export"
)

// Membership is one role of a person in an event; WorkshopID is 0 for
// event-wide roles.
type Membership struct {
	Role       Role
	WorkshopID int64
}

// Principal is who is asking, within one event. The caller builds it for
// the event that owns the resource; a zero Principal is the public.
type Principal struct {
	PersonID int64
	EventID  int64
	Roles    []Membership
}

// Rule grants Role the Action. With OwnWorkshop the grant holds only for
// the workshop of the membership carrying the role.
type Rule struct {
	Action      Action
	Role        Role
	OwnWorkshop bool
}

// table is the permission table: every grant there is, and nothing else.
// "own" rules hold only in the workshop of the membership with that role;
// "event" rules hold across the event.
func table() []Rule {
	const own, event = true, false
	return []Rule{
		{ActEventRead, RoleOrganizer, event},
		{ActEventRead, RoleRapporteur, event},
		{ActEventRead, RoleParticipant, event},
		{ActEventRead, RoleReportAuthor, event},
		{ActEventRead, RoleObserver, event},
		{ActEventRead, RolePublic, event},

		{ActEventManage, RoleOrganizer, event},

		{ActPeopleManage, RoleOrganizer, event},

		{ActReadDrafts, RoleOrganizer, event},
		{ActReadDrafts, RoleRapporteur, own},
		{ActReadDrafts, RoleParticipant, own},
		{ActReadDrafts, RoleReportAuthor, event},

		{ActFindingReadShared, RoleOrganizer, event},
		{ActFindingReadShared, RoleRapporteur, event},
		{ActFindingReadShared, RoleParticipant, event},
		{ActFindingReadShared, RoleReportAuthor, event},
		{ActFindingReadShared, RoleObserver, event},

		{ActFindingReadRelease, RoleOrganizer, event},
		{ActFindingReadRelease, RoleRapporteur, event},
		{ActFindingReadRelease, RoleParticipant, event},
		{ActFindingReadRelease, RoleReportAuthor, event},
		{ActFindingReadRelease, RoleObserver, event},
		{ActFindingReadRelease, RolePublic, event},

		{ActFindingCreate, RoleOrganizer, event},
		{ActFindingCreate, RoleRapporteur, own},
		{ActFindingCreate, RoleParticipant, own},

		{ActFindingUpdate, RoleOrganizer, event},
		{ActFindingUpdate, RoleRapporteur, own},
		{ActFindingUpdate, RoleParticipant, own},

		{ActFindingDelete, RoleOrganizer, event},
		{ActFindingDelete, RoleRapporteur, own},
		{ActFindingDelete, RoleParticipant, own},

		{ActFindingVote, RoleOrganizer, event},
		{ActFindingVote, RoleRapporteur, own},
		{ActFindingVote, RoleParticipant, own},

		{ActFindingComment, RoleOrganizer, event},
		{ActFindingComment, RoleRapporteur, own},
		{ActFindingComment, RoleParticipant, own},
		{ActFindingComment, RoleReportAuthor, event},

		{ActFindingShare, RoleOrganizer, event},
		{ActFindingShare, RoleRapporteur, own},

		{ActKeyCurate, RoleOrganizer, event},
		{ActKeyCurate, RoleRapporteur, own},

		{ActReleaseManage, RoleOrganizer, event},

		{ActConclusionWrite, RoleOrganizer, event},
		{ActConclusionWrite, RoleReportAuthor, event},

		{ActSearchAll, RoleOrganizer, event},
		{ActSearchAll, RoleReportAuthor, event},

		{ActReportExport, RoleOrganizer, event},
		{ActReportExport, RoleReportAuthor, event},
	}
}

// grants is the permission table, built once and never changed: Allowed
// runs for every op a hub applies.
var grants = table()

// Table returns a copy of the permission table, one Rule per grant, in a
// stable order (grouped by action).
func Table() []Rule { return slices.Clone(grants) }

// Roles lists every role.
func Roles() []Role {
	return []Role{RoleOrganizer, RoleRapporteur, RoleParticipant, RoleReportAuthor, RoleObserver, RolePublic}
}

// Actions lists every action.
func Actions() []Action {
	return []Action{ActEventRead, ActEventManage, ActPeopleManage, ActReadDrafts, ActFindingReadShared,
		ActFindingReadRelease, ActFindingCreate, ActFindingUpdate, ActFindingDelete, ActFindingVote,
		ActFindingComment, ActFindingShare, ActKeyCurate, ActReleaseManage, ActConclusionWrite,
		ActSearchAll, ActReportExport}
}

// Allowed reports whether p may do a. workshopID is the workshop the
// target belongs to (0 when it belongs to none); it matters only for rules
// scoped to the own workshop, which never match workshop 0. Every
// principal, signed in or not, has the public role's grants.
func Allowed(p Principal, a Action, workshopID int64) bool {
	for _, r := range grants {
		if r.Action != a {
			continue
		}
		if r.Role == RolePublic && !r.OwnWorkshop {
			return true // the public role's membership is in no workshop
		}
		for _, m := range p.Roles {
			if m.Role != r.Role {
				continue
			}
			if !r.OwnWorkshop || (workshopID != 0 && m.WorkshopID == workshopID) {
				return true
			}
		}
	}
	return false
}
