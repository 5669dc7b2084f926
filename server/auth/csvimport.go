package auth

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/rapporteur/rapporteur/server/domain"
	"golang.org/x/text/unicode/norm"
)

// Validator checks taxonomy values against the event's data; the server
// implements it. Values are passed trimmed, as written in the file.
type Validator interface {
	ValidCountry(string) bool
	ValidActor(string) bool
	ValidWorkshop(string) bool
	ValidRole(string) bool
}

// ParticipantRow is one person read from an import file. Role is lower
// case and defaults to "participant"; Email is lower case or empty.
type ParticipantRow struct {
	Line         int // line of the record in the file (1 = header)
	Name         string
	Email        string
	Organisation string
	Country      string
	ActorType    string
	Workshop     string
	Role         string
}

// RowError is one problem in an import file. Field is the column name, or
// "" for a problem with the whole row or file.
type RowError struct {
	Line    int
	Field   string
	Message string
}

// knownColumn reports the import's columns; only name is required.
func knownColumn(name string) bool {
	switch name {
	case "name", "email", "organisation", "country", "actor_type", "workshop", "role":
		return true
	}
	return false
}

// csvColumn normalises a header cell and maps accepted aliases.
func csvColumn(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.NewReplacer(" ", "_", "-", "_").Replace(h)
	switch h {
	case "organization", "org":
		return "organisation"
	case "actor", "actortype":
		return "actor_type"
	case "e_mail", "mail":
		return "email"
	}
	return h
}

// Bounds of one participant list: an event is at most some thousands of
// people, and a bad file's report stays readable.
const (
	MaxParticipantRows = 5000
	MaxRowErrors       = 100
)

// ParseParticipants reads a participant list: UTF-8 (optional BOM), ","
// or ";" delimited (detected from the header), a header row naming the
// columns name, email, organisation, country, actor_type, workshop, role in
// any order and case (only name is required). It returns the rows and
// every problem found; the caller must import nothing if there is any
// RowError. Limit the reader's size (http.MaxBytesReader) before calling.
func ParseParticipants(r io.Reader, taxonomy Validator) ([]ParticipantRow, []RowError) {
	// In NFC (a Mac's export may write "Å" as two code points), so that
	// the checks below, and the people stored, see one form.
	br := bufio.NewReader(norm.NFC.Reader(r))
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	head, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return nil, []RowError{{Line: 1, Message: "cannot read the file: " + oneLine(err.Error())}}
	}
	if strings.TrimSpace(head) == "" {
		return nil, []RowError{{Line: 1, Message: "the file is empty or its first line is blank; a header row is required (name,email,organisation,country,actor_type,workshop,role)"}}
	}
	cr := csv.NewReader(io.MultiReader(strings.NewReader(head), br))
	cr.Comma = detectDelimiter(head)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false

	header, err := cr.Read()
	if err != nil {
		return nil, []RowError{{Line: 1, Message: "the header row is not valid CSV: " + csvErr(err)}}
	}
	var errs []RowError
	col := map[string]int{} // column name → index+1
	var unnamed []int       // columns with a blank header
	for i, h := range header {
		if !utf8.ValidString(h) {
			errs = append(errs, RowError{Line: 1, Message: fmt.Sprintf("header column %d is not valid UTF-8; save the file as UTF-8", i+1)})
			continue
		}
		name := csvColumn(h)
		if name == "" {
			unnamed = append(unnamed, i) // blank header cells (trailing delimiters) are ignored if empty
			continue
		}
		switch {
		case !knownColumn(name):
			errs = append(errs, RowError{Line: 1, Field: oneLine(h), Message: fmt.Sprintf("unknown column %q; expected name, email, organisation, country, actor_type, workshop, role", oneLine(h))})
		case col[name] != 0:
			errs = append(errs, RowError{Line: 1, Field: name, Message: fmt.Sprintf("column %q appears twice", name)})
		default:
			col[name] = i + 1 // +1 so that 0 means absent
		}
	}
	if col["name"] == 0 {
		errs = append(errs, RowError{Line: 1, Field: "name", Message: "the header has no name column"})
	}
	if len(errs) > 0 {
		return nil, errs
	}

	var rows []ParticipantRow
	seen := map[string]int{} // email → line
	for lines := 0; ; lines++ {
		if len(errs) >= MaxRowErrors {
			errs = append(errs, RowError{Message: fmt.Sprintf("reading stopped after %d problems; fix these and import the file again", len(errs))})
			break
		}
		if lines == MaxParticipantRows {
			errs = append(errs, RowError{Message: fmt.Sprintf("the file has over %d rows; import it in parts", MaxParticipantRows)})
			break
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			errs = append(errs, RowError{Line: line, Message: "not valid CSV here, reading stopped: " + csvErr(err)})
			break
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		if len(rec) > len(header) {
			extra := false
			for _, v := range rec[len(header):] {
				extra = extra || strings.TrimSpace(v) != ""
			}
			if extra {
				errs = append(errs, RowError{Line: line, Message: fmt.Sprintf("the row has %d fields but the header has %d columns", len(rec), len(header))})
				continue
			}
		}
		stray := false
		for _, i := range unnamed {
			stray = stray || (i < len(rec) && strings.TrimSpace(rec[i]) != "")
		}
		if stray {
			errs = append(errs, RowError{Line: line, Message: "the row has a value in a column without a header"})
			continue
		}
		bad := false
		for _, v := range rec {
			bad = bad || !utf8.ValidString(v)
		}
		if bad {
			errs = append(errs, RowError{Line: line, Message: "the row is not valid UTF-8; save the file as UTF-8"})
			continue
		}
		get := func(name string) string {
			i := col[name] - 1
			if i < 0 || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		p := ParticipantRow{
			Line: line, Name: get("name"), Email: strings.ToLower(get("email")),
			Organisation: get("organisation"), Country: get("country"),
			ActorType: get("actor_type"), Workshop: get("workshop"), Role: strings.ToLower(get("role")),
		}
		if p.Role == "" {
			p.Role = "participant"
		}
		n := len(errs)
		add := func(field, msg string) { errs = append(errs, RowError{Line: line, Field: field, Message: msg}) }
		if p.Name == "" {
			add("name", "the name is missing")
		}
		for _, f := range []struct {
			field, value string
			limit        int
		}{{"name", p.Name, domain.MaxPersonName}, {"organisation", p.Organisation, domain.MaxPersonText}} {
			if strings.IndexByte(f.value, 0) >= 0 {
				add(f.field, "the "+f.field+" holds a NUL character, which cannot be stored")
			} else if n := utf8.RuneCountInString(f.value); n > f.limit {
				add(f.field, fmt.Sprintf("the %s is %d characters long; at most %d are allowed", f.field, n, f.limit))
			}
		}
		if p.Email != "" {
			if !validEmail(p.Email) {
				add("email", fmt.Sprintf("%q is not an email address", oneLine(p.Email)))
			} else if n := utf8.RuneCountInString(p.Email); n > domain.MaxEmail {
				add("email", fmt.Sprintf("the email is %d characters long; at most %d are allowed", n, domain.MaxEmail))
			} else if first, dup := seen[p.Email]; dup {
				add("email", fmt.Sprintf("%s is already on line %d", p.Email, first))
			} else {
				seen[p.Email] = line
			}
		}
		if p.Country != "" && !taxonomy.ValidCountry(p.Country) {
			add("country", fmt.Sprintf("unknown country %q", oneLine(p.Country)))
		}
		if p.ActorType != "" && !taxonomy.ValidActor(p.ActorType) {
			add("actor_type", fmt.Sprintf("unknown actor type %q", oneLine(p.ActorType)))
		}
		if p.Workshop != "" && !taxonomy.ValidWorkshop(p.Workshop) {
			add("workshop", fmt.Sprintf("unknown workshop %q (or a name two workshops share: give its full name or id)", oneLine(p.Workshop)))
		}
		if !taxonomy.ValidRole(p.Role) {
			add("role", fmt.Sprintf("unknown role %q", oneLine(p.Role)))
		} else if (p.Role == string(RoleParticipant) || p.Role == string(RoleRapporteur)) && p.Workshop == "" {
			add("workshop", fmt.Sprintf("a %s needs a workshop", p.Role))
		}
		if len(errs) == n {
			rows = append(rows, p)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return rows, nil
}

// detectDelimiter picks ";" when the header line has more semicolons than
// commas outside quotes (spreadsheets in many European locales), else ",".
func detectDelimiter(line string) rune {
	commas, semis, quoted := 0, 0, false
	for _, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ',':
			commas++
		case c == ';':
			semis++
		}
	}
	if semis > commas {
		return ';'
	}
	return ','
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || !strings.EqualFold(a.Address, s) {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t<>")
}

func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

func csvErr(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return oneLine(pe.Err.Error())
	}
	return oneLine(err.Error())
}
