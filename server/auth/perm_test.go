package auth

import (
	"fmt"
	"testing"
)

// expected is the permission matrix written out independently of
// perm.go's table: for each action and role, "-" = never, "W" = only in
// the member's own workshop, "E" = anywhere in the event.
// Columns: organizer rapporteur participant report_author observer public.
var expected = map[Action]string{
	ActEventRead:          "E E E E E E",
	ActEventManage:        "E - - - - -",
	ActPeopleManage:       "E - - - - -",
	ActReadDrafts:         "E W W E - -",
	ActFindingReadShared:  "E E E E E -",
	ActFindingReadRelease: "E E E E E E",
	ActFindingCreate:      "E W W - - -",
	ActFindingUpdate:      "E W W - - -",
	ActFindingDelete:      "E W W - - -",
	ActFindingVote:        "E W W - - -",
	ActFindingComment:     "E W W E - -",
	ActFindingShare:       "E W - - - -",
	ActKeyCurate:          "E W - - - -",
	ActReleaseManage:      "E - - - - -",
	ActConclusionWrite:    "E - - E - -",
	ActSearchAll:          "E - - E - -",
	ActReportExport:       "E - - E - -",
}

var matrixRoles = []Role{RoleOrganizer, RoleRapporteur, RoleParticipant, RoleReportAuthor, RoleObserver, RolePublic}

func grant(a Action, col int) byte { return expected[a][2*col] }

func TestPermissionMatrix(t *testing.T) {
	const own, other = int64(11), int64(22)
	if len(expected) != len(Actions()) {
		t.Fatalf("matrix has %d actions, Actions() %d", len(expected), len(Actions()))
	}
	for _, a := range Actions() {
		if _, ok := expected[a]; !ok {
			t.Fatalf("action %s missing from the test matrix", a)
		}
		for col, role := range matrixRoles {
			g := grant(a, col)
			// Workshop roles are members of workshop 11; event roles are event-wide.
			m := Membership{Role: role}
			if role == RoleParticipant || role == RoleRapporteur {
				m.WorkshopID = own
			}
			p := Principal{PersonID: 1, EventID: 1, Roles: []Membership{m}}
			if role == RolePublic {
				p = Principal{} // not signed in
			}
			for _, tc := range []struct {
				where string
				ws    int64
				want  bool
			}{
				{"own workshop", own, g != '-'},
				{"other workshop", other, g == 'E'},
				{"no workshop", 0, g == 'E'},
			} {
				if got := Allowed(p, a, tc.ws); got != tc.want {
					t.Errorf("%s %s in %s: got %v, want %v", role, a, tc.where, got, tc.want)
				}
			}
		}
	}
}

// TestTableMatchesMatrix walks Table(): every rule is in the matrix with
// the same scope, and every grant in the matrix is a rule.
func TestTableMatchesMatrix(t *testing.T) {
	col := map[Role]int{}
	for i, r := range matrixRoles {
		col[r] = i
	}
	if fmt.Sprint(Roles()) != fmt.Sprint(matrixRoles) {
		t.Fatalf("Roles() = %v", Roles())
	}
	seen := map[string]bool{}
	for _, r := range Table() {
		key := string(r.Action) + "/" + string(r.Role)
		if seen[key] {
			t.Errorf("duplicate rule %s", key)
		}
		seen[key] = true
		c, ok := col[r.Role]
		if _, known := expected[r.Action]; !ok || !known {
			t.Errorf("rule with unknown role or action: %+v", r)
			continue
		}
		want := grant(r.Action, c)
		if (want == 'W') != r.OwnWorkshop || want == '-' {
			t.Errorf("rule %+v, matrix says %c", r, want)
		}
	}
	for a := range expected {
		for c, role := range matrixRoles {
			if grant(a, c) != '-' && !seen[string(a)+"/"+string(role)] {
				t.Errorf("matrix grants %s to %s but the table does not", a, role)
			}
		}
	}
	// Table returns a copy.
	tb := Table()
	tb[0].Role = RolePublic
	tb[0].Action = ActReleaseManage
	if Allowed(Principal{}, ActReleaseManage, 0) {
		t.Fatal("editing Table()'s result changed the permissions")
	}
}

func TestPermissionEdges(t *testing.T) {
	// Several memberships: participant of 1 and rapporteur of 2.
	p := Principal{PersonID: 1, EventID: 1, Roles: []Membership{{RoleParticipant, 1}, {RoleRapporteur, 2}}}
	for _, tc := range []struct {
		a    Action
		ws   int64
		want bool
	}{
		{ActFindingCreate, 1, true}, {ActFindingCreate, 2, true}, {ActFindingCreate, 3, false},
		{ActFindingShare, 2, true}, {ActFindingShare, 1, false},
		{ActKeyCurate, 2, true}, {ActKeyCurate, 1, false},
		{ActReleaseManage, 0, false},
	} {
		if got := Allowed(p, tc.a, tc.ws); got != tc.want {
			t.Errorf("%s in %d: %v", tc.a, tc.ws, got)
		}
	}
	// A workshop role without a workshop grants nothing workshop-scoped.
	stray := Principal{Roles: []Membership{{RoleParticipant, 0}}}
	if Allowed(stray, ActFindingCreate, 0) || Allowed(stray, ActReadDrafts, 0) {
		t.Error("participant without a workshop can write")
	}
	if !Allowed(stray, ActFindingReadShared, 5) {
		t.Error("participant cannot read shared findings")
	}
	if Allowed(Principal{Roles: []Membership{{"superuser", 0}}}, ActEventManage, 0) || Allowed(Principal{}, "no.such.action", 0) {
		t.Error("unknown role or action granted")
	}
}
