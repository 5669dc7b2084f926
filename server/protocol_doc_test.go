package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rapporteur/rapporteur/server/auth"
)

// The op kinds PROTOCOL.md lists, and who it says may make them, are the
// server's: a client is written from that file alone.
func TestProtocolListsEveryOpKind(t *testing.T) {
	doc, err := os.ReadFile("../hub/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)
	start := strings.Index(section, "## Op kinds")
	if start < 0 {
		t.Fatal(`no "## Op kinds" section`)
	}
	section = section[start:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	row := regexp.MustCompile("(?m)^\\| `([a-z.]+)` \\| .*? \\| ([^|]+) \\| `")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented[m[1]] = strings.TrimSpace(m[2])
	}
	var missing, extra []string
	for kind := range opActions {
		if _, ok := documented[kind]; !ok {
			missing = append(missing, kind)
		}
	}
	for kind := range documented {
		if _, ok := opActions[kind]; !ok {
			extra = append(extra, kind)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("PROTOCOL.md's op kinds: missing %v, not the server's %v", missing, extra)
	}
	// "who" names the roles with the grant, as the permission table has it.
	words := map[auth.Role]string{auth.RoleOrganizer: "organizers", auth.RoleReportAuthor: "report authors"}
	for kind, who := range documented {
		granted := map[auth.Role]bool{}
		for _, r := range auth.Table() {
			if r.Action == opActions[kind] {
				granted[r.Role] = true
			}
		}
		group := granted[auth.RoleParticipant] && granted[auth.RoleRapporteur]
		if strings.Contains(who, "group") != group {
			t.Errorf("%s: PROTOCOL.md says %q; participants and rapporteurs granted: %v", kind, who, group)
		}
		if !group && strings.Contains(who, "rapporteur") != granted[auth.RoleRapporteur] {
			t.Errorf("%s: PROTOCOL.md says %q; rapporteurs granted: %v", kind, who, granted[auth.RoleRapporteur])
		}
		for role, word := range words {
			if strings.Contains(who, word) != granted[role] {
				t.Errorf("%s: PROTOCOL.md says %q; %s granted: %v", kind, who, role, granted[role])
			}
		}
	}
}
