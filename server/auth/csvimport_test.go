package auth

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// taxo is a small test taxonomy.
type taxo struct{}

func (taxo) ValidCountry(s string) bool {
	return strings.Contains("|DK|FI|IS|NO|SE|AX|FO|GL|", "|"+s+"|")
}
func (taxo) ValidActor(s string) bool { return s == "authority" || s == "ngo" || s == "researcher" }
func (taxo) ValidWorkshop(s string) bool {
	return s == "Workshop 1" || s == "Workshop 2" || s == "W3"
}
func (taxo) ValidRole(s string) bool {
	switch Role(s) {
	case RoleParticipant, RoleRapporteur, RoleObserver, RoleOrganizer, RoleReportAuthor:
		return true
	}
	return false
}

func TestParseParticipantsGood(t *testing.T) {
	// BOM, semicolons (a Nordic spreadsheet), columns reordered and in
	// mixed case, CRLF, a quoted field holding the delimiter and a line
	// break, a blank line, trailing empty column.
	in := "\ufeffRole;NAME;E-mail;Organization;country;Actor Type;workshop;\r\n" +
		"rapporteur;Aino Virtanen;Aino.Virtanen@Example.fi;\"Ministry; Justice\";FI;authority;Workshop 1;\r\n" +
		"\r\n" +
		";Björn Ødegård;bjorn@example.no;\"Multi\nline NGO\";NO;ngo;Workshop 2;\r\n" +
		"observer;Sara Lind;;;SE;;;\r\n" +
		"report_author;Jón Jónsson;jon@example.is;;IS;researcher;;\r\n"
	rows, errs := ParseParticipants(strings.NewReader(in), taxo{})
	if len(errs) != 0 {
		t.Fatalf("errors: %+v", errs)
	}
	want := []ParticipantRow{
		{Line: 2, Name: "Aino Virtanen", Email: "aino.virtanen@example.fi", Organisation: "Ministry; Justice", Country: "FI", ActorType: "authority", Workshop: "Workshop 1", Role: "rapporteur"},
		{Line: 4, Name: "Björn Ødegård", Email: "bjorn@example.no", Organisation: "Multi\nline NGO", Country: "NO", ActorType: "ngo", Workshop: "Workshop 2", Role: "participant"},
		{Line: 6, Name: "Sara Lind", Country: "SE", Role: "observer"},
		{Line: 7, Name: "Jón Jónsson", Email: "jon@example.is", Country: "IS", ActorType: "researcher", Role: "report_author"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows\n%+v\nwant\n%+v", rows, want)
	}

	// Commas, minimal columns.
	rows, errs = ParseParticipants(strings.NewReader("name,workshop\nA,W3\n"), taxo{})
	if len(errs) != 0 || len(rows) != 1 || rows[0].Name != "A" || rows[0].Role != "participant" || rows[0].Line != 2 {
		t.Fatalf("%+v %+v", rows, errs)
	}
}

func TestParseParticipantsBadRows(t *testing.T) {
	in := "name,email,organisation,country,actor_type,workshop,role\n" + // 1
		"Aino,aino@example.fi,,FI,authority,Workshop 1,participant\n" + // 2 good
		",nobody@example.fi,,FI,,Workshop 1,\n" + // 3 missing name
		"Bad Mail,not-an-email,,FI,,Workshop 1,\n" + // 4 bad email
		"Dup,AINO@example.fi,,FI,,Workshop 1,\n" + // 5 duplicate email
		"Where,w@example.fi,,XX,,Workshop 1,\n" + // 6 unknown country
		"Who,who@example.fi,,FI,pirate,Workshop 1,\n" + // 7 unknown actor
		"Which,which@example.fi,,FI,,Workshop 9,\n" + // 8 unknown workshop
		"Role,role@example.fi,,FI,,Workshop 1,king\n" + // 9 unknown role
		"Lost,lost@example.fi,,FI,,,participant\n" + // 10 participant without workshop
		"Lost Rap,lostrap@example.fi,,FI,,,rapporteur\n" + // 11 rapporteur without workshop
		"Angle,Angle <a@example.fi>,,FI,,W3,\n" + // 12 display-name address
		"Many,m@example.fi,,FI,,W3,,extra\n" + // 13 too many fields
		"Bad\xffUTF,u@example.fi,,FI,,W3,\n" + // 14 invalid UTF-8
		"Nul\x00l,n@example.fi,,FI,,W3,\n" + // 15 NUL in the name
		"Long," + strings.Repeat("l", 250) + "@example.fi,Org\x00,FI,,W3,\n" + // 16 email too long, NUL in the organisation
		strings.Repeat("ä", 201) + ",,,FI,,W3,\n" // 17 name too long
	rows, errs := ParseParticipants(strings.NewReader(in), taxo{})
	if rows != nil {
		t.Errorf("rows returned despite errors: %+v", rows)
	}
	want := []RowError{
		{3, "name", "missing"},
		{4, "email", "not an email"},
		{5, "email", "already on line 2"},
		{6, "country", "unknown country"},
		{7, "actor_type", "unknown actor"},
		{8, "workshop", "unknown workshop"},
		{9, "role", "unknown role"},
		{10, "workshop", "needs a workshop"},
		{11, "workshop", "needs a workshop"},
		{12, "email", "not an email"},
		{13, "", "fields"},
		{14, "", "UTF-8"},
		{15, "name", "NUL"},
		{16, "organisation", "NUL"},
		{16, "email", "261 characters long; at most 254"},
		{17, "name", "201 characters long; at most 200"},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%+v", len(errs), len(want), errs)
	}
	for i, w := range want {
		e := errs[i]
		if e.Line != w.Line || e.Field != w.Field || !strings.Contains(e.Message, w.Message) {
			t.Errorf("error %d = %+v, want line %d field %q message ~%q", i, e, w.Line, w.Field, w.Message)
		}
	}
}

func TestParseParticipantsBadFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		in    string
		line  int
		field string
		msg   string
	}{
		"empty":                {"", 1, "", "header row is required"},
		"blank first line":     {"\nname\nA\n", 1, "", "header row is required"},
		"no name column":       {"email,role\na@b.fi,observer\n", 1, "name", "no name column"},
		"unknown column":       {"name,contry\nA,FI\n", 1, "contry", "unknown column"},
		"duplicate column":     {"name,email,Name\nA,a@b.fi,A\n", 1, "name", "twice"},
		"bare quote":           {"name,role\nA,observer\nB \"x\" C,observer\n", 3, "", "not valid CSV"},
		"value without header": {"name,role,\nA,observer,oops\n", 2, "", "without a header"},
	} {
		t.Run(name, func(t *testing.T) {
			rows, errs := ParseParticipants(strings.NewReader(tc.in), taxo{})
			if rows != nil || len(errs) == 0 {
				t.Fatalf("rows %+v errs %+v", rows, errs)
			}
			e := errs[0]
			if e.Line != tc.line || e.Field != tc.field || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("%+v, want line %d field %q ~%q", e, tc.line, tc.field, tc.msg)
			}
		})
	}
}

// TestParseParticipantsBounds: a list of over MaxParticipantRows rows is
// refused as a whole; a bad file's report stops after MaxRowErrors
// problems, saying so.
func TestParseParticipantsBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("name,country,role\n")
	for i := range MaxParticipantRows + 1 {
		fmt.Fprintf(&b, "Person %d,FI,observer\n", i)
	}
	if rows, errs := ParseParticipants(strings.NewReader(b.String()), taxo{}); rows != nil || len(errs) != 1 || !strings.Contains(errs[0].Message, "import it in parts") {
		t.Errorf("a list of %d rows: %d rows, problems %+v; want it refused as too long", MaxParticipantRows+1, len(rows), errs)
	}
	b.Reset()
	b.WriteString("name,country,role\n")
	for range 3 * MaxRowErrors {
		b.WriteString("Someone,XX,observer\n")
	}
	errs := problemsOf(t, b.String())
	if len(errs) != MaxRowErrors+1 || !strings.Contains(errs[MaxRowErrors].Message, "reading stopped") {
		t.Errorf("a file of %d bad rows: %d problems reported, want %d and a last word", 3*MaxRowErrors, len(errs), MaxRowErrors+1)
	}
}

// problemsOf returns only the problems ParseParticipants finds in in.
func problemsOf(t *testing.T, in string) []RowError {
	t.Helper()
	_, errs := ParseParticipants(strings.NewReader(in), taxo{})
	return errs
}

// TestParseParticipantsInNFD: a list in Unicode NFD (a Mac's export: "ö"
// as "o" and a combining mark) is read in NFC: a name of 200 letters fits
// though its NFD form is 400 code points, the same email in both forms
// is one email, and the rows hold NFC.
func TestParseParticipantsInNFD(t *testing.T) {
	long := strings.Repeat("ö", 200)
	in := norm.NFD.String("name,email,country,role\n" + long + ",jörgen@example.ax,AX,observer\nJörgen Ås,,AX,observer\n")
	rows, errs := ParseParticipants(strings.NewReader(in), taxo{})
	if len(errs) != 0 || len(rows) != 2 || rows[0].Name != long || rows[0].Email != "jörgen@example.ax" || rows[1].Name != "Jörgen Ås" {
		t.Fatalf("rows %+v, errors %+v; want two rows in NFC", rows, errs)
	}
	_, errs = ParseParticipants(strings.NewReader("name,email,role\nA,jörgen@example.ax,observer\nB,"+norm.NFD.String("jörgen@example.ax")+",observer\n"), taxo{})
	if len(errs) != 1 || errs[0].Line != 3 || !strings.Contains(errs[0].Message, "already on line 2") {
		t.Fatalf("an email in NFC and in NFD: %+v, want line 3 refused as a repeat", errs)
	}
}
