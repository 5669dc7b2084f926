package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/rapporteur/rapporteur/server/domain"
)

// FindingInput is what a client may set on a finding.
type FindingInput struct {
	Title           string   `json:"title"`
	WhatDone        string   `json:"what_done"`
	Results         string   `json:"results"`
	Transferability string   `json:"transferability"`
	NordicProposal  string   `json:"nordic_proposal"`
	Countries       []string `json:"countries"`
	Themes          []string `json:"themes"`
	Ps              []string `json:"ps"`
	Forms           []string `json:"forms"`
	VictimGroups    []string `json:"victim_groups"`
	ActorTypes      []string `json:"actor_types"`
	Language        string   `json:"language"`
	ContactName     string   `json:"contact_name"`
	ContactEmail    string   `json:"contact_email"`
	ContactConsent  bool     `json:"contact_consent"`
	Attribution     string   `json:"attribution"`
}

// Limits on finding text, in characters.
const (
	maxTitle = 300
	maxText  = 20000
)

// maxTermKey is the longest term key (taxonomy_terms' check): longer
// keys a client sends are refused before the taxonomy is read.
const maxTermKey = 63

// checkText says what is wrong with a client's text, if anything: not
// UTF-8, a NUL character (which Postgres stores in neither text nor
// jsonb, so it would fail the write instead of the op) or more than limit
// characters.
func checkText(what, s string, limit int) error {
	if !utf8.ValidString(s) {
		return domain.Errorf(domain.Invalid, "The %s is not valid UTF-8.", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return domain.Errorf(domain.Invalid, "The %s holds a NUL character, which cannot be stored.", what)
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return domain.Errorf(domain.Invalid, "The %s is %d characters long; at most %d are allowed.", what, n, limit)
	}
	return nil
}

// taxonomy is the set of valid term keys by dimension.
type taxonomy map[string]map[string]bool

func loadTaxonomy(ctx context.Context, db bun.IDB, eventID int64) (taxonomy, error) {
	var ts []domain.Term
	if err := db.NewSelect().Model(&ts).Where("event_id = ?", eventID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read taxonomy: %w", err)
	}
	tax := taxonomy{}
	for _, t := range ts {
		if tax[t.Dimension] == nil {
			tax[t.Dimension] = map[string]bool{}
		}
		tax[t.Dimension][t.Key] = true
	}
	return tax, nil
}

// textField is one of a finding's text fields: its name, its value in f
// and its limit in characters.
type textField struct {
	name  string
	value string
	limit int
}

// textFields returns f's text fields in a fixed order. (An array, not a
// map: validation runs for every op, and this costs no allocation.)
func textFields(f *domain.Finding) [7]textField {
	return [7]textField{{"title", f.Title, maxTitle}, {"what_done", f.WhatDone, maxText},
		{"results", f.Results, maxText}, {"transferability", f.Transferability, maxText},
		{"nordic_proposal", f.NordicProposal, maxText}, {"contact_name", f.ContactName, 200},
		{"contact_email", f.ContactEmail, 254}}
}

// termField is one of a finding's multi-valued fields: its name, its
// taxonomy dimension and where its list is in f.
type termField struct {
	name string
	dim  string
	list *[]string
}

// termFields returns f's multi-valued fields in a fixed order.
func termFields(f *domain.Finding) [6]termField {
	return [6]termField{{"countries", domain.DimCountry, &f.Countries}, {"themes", domain.DimTheme, &f.Themes},
		{"ps", domain.DimP, &f.Ps}, {"forms", domain.DimForm, &f.Forms},
		{"victim_groups", domain.DimVictim, &f.VictimGroups}, {"actor_types", domain.DimActor, &f.ActorTypes}}
}

// isContactField tells the fields of a finding's contact, which only
// those who may see contacts are shown, and entries never carry.
func isContactField(name string) bool {
	return name == "contact_name" || name == "contact_email"
}

// isTermField tells whether name is one of a finding's multi-valued fields.
func isTermField(name string) bool {
	for _, t := range termFields(&domain.Finding{}) {
		if t.name == name {
			return true
		}
	}
	return false
}

// finding validates the input against the event's taxonomy and returns the
// finding it describes (not yet placed in an event or workshop).
func (in FindingInput) finding(tax taxonomy) (domain.Finding, error) {
	f := domain.Finding{
		Title: strings.TrimSpace(in.Title), WhatDone: in.WhatDone, Results: in.Results,
		Transferability: in.Transferability, NordicProposal: in.NordicProposal,
		// Copies: validateFinding sorts and compacts them in place, and the
		// input may be validated again (an op run on its own after its batch).
		Countries: slices.Clone(in.Countries), Themes: slices.Clone(in.Themes), Ps: slices.Clone(in.Ps), Forms: slices.Clone(in.Forms),
		VictimGroups: slices.Clone(in.VictimGroups), ActorTypes: slices.Clone(in.ActorTypes), Language: in.Language,
		ContactName: in.ContactName, ContactEmail: in.ContactEmail, ContactConsent: in.ContactConsent,
		Attribution: in.Attribution, ReleaseState: domain.Draft, Version: 1, FieldVersions: map[string]int{},
	}
	if f.Language == "" {
		f.Language = "en"
	}
	if f.Attribution == "" {
		f.Attribution = "chatham"
	}
	return f, validateFinding(&f, tax)
}

// validateFinding checks every field of f and normalises its term lists;
// a nil tax skips the check of term keys against the taxonomy.
func validateFinding(f *domain.Finding, tax taxonomy) error {
	if f.Title == "" {
		return domain.Errorf(domain.Invalid, "A finding needs a title.")
	}
	for _, t := range textFields(f) {
		if err := checkText(t.name, t.value, t.limit); err != nil {
			return err
		}
	}
	if !slices.Contains([]string{"en", "da", "fi", "no", "sv"}, f.Language) {
		return domain.Errorf(domain.Invalid, "Unknown language %q: use en, da, fi, no or sv.", f.Language)
	}
	if !slices.Contains([]string{"chatham", "organisation", "named"}, f.Attribution) {
		return domain.Errorf(domain.Invalid, "Unknown attribution %q: use chatham, organisation or named.", f.Attribution)
	}
	if !f.ContactConsent && (f.ContactName != "" || f.ContactEmail != "") {
		return domain.Errorf(domain.Invalid, "A contact may be given only with the contact's consent (contact_consent).")
	}
	if f.ContactEmail != "" {
		if _, err := mail.ParseAddress(f.ContactEmail); err != nil {
			return domain.Errorf(domain.Invalid, "The contact email %q is not an email address.", f.ContactEmail)
		}
	}
	for _, t := range termFields(f) {
		l := t.list
		if *l == nil {
			*l = []string{}
		}
		if len(*l) > 50 {
			return domain.Errorf(domain.Invalid, "Too many %s: at most 50.", t.name)
		}
		for _, k := range *l {
			// Checked even without the taxonomy: a NUL would fail the
			// batch statement that writes the create.
			if err := checkText(t.name+" term", k, maxTermKey); err != nil {
				return err
			}
			if tax != nil && !tax[t.dim][k] {
				return domain.Errorf(domain.Invalid, "Unknown %s term %q for %s.", t.dim, k, t.name)
			}
		}
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return nil
}

// WorkshopRoom is the log room of a workshop's findings. (batchState.lock
// builds the same name in SQL.)
func WorkshopRoom(id int64) string { return fmt.Sprintf("workshop:%d", id) }

// EventRoom is the log room of an event's own changes (setup, release).
func EventRoom(id int64) string { return fmt.Sprintf("event:%d", id) }

// CreateFinding records a new finding in a workshop, logged in the
// workshop's room under opID. A repeated opID returns the original entry.
//
// Alone in its room's transaction, the common case (a new op with valid
// terms) is one statement, so one round trip and one commit; queued with
// other ops, the transaction's creates are one statement together.
// Anything else — a replay, an unknown workshop or term, a concurrent
// duplicate — falls back to the general path, which finds out which and
// says so.
func (s *Store) CreateFinding(ctx context.Context, actor *int64, workshopID int64, opID string, in FindingInput) (Applied, error) {
	if err := checkOpID(opID); err != nil {
		return Applied{}, err
	}
	room := WorkshopRoom(workshopID)
	row, err := newCreateRow(actor, workshopID, opID, in)
	if err != nil {
		return Applied{}, err
	}
	e := domain.LogEntry{Room: room, OpID: opID, ActorID: actor, Kind: "finding.create"}
	return s.com.submit(ctx, room, &pendingOp{opID: opID, actor: actor, create: row,
		change: createFindingChange(workshopID, actor, in),
		alone: func(ctx context.Context) (Applied, bool, error) {
			e, ok, err := s.createFindingStmt(ctx, row.args(room), e)
			return Applied{Entry: e}, ok, err
		}})
}

// createRow is one finding to create as the create statements take it,
// checked but for its terms, which the statements check.
type createRow struct {
	FindingInput // normalised; its fields are the statements' columns
	WorkshopID   int64
	OpID         string
	Actor        *int64
	Terms        []string        // each term as "dimension:key" (keys have no colon)
	Payload      json.RawMessage // the entry's, but for what the database assigns; see createFindingsSQL
}

// inputOf is what a client may set of f, with empty lists for none.
func inputOf(f *domain.Finding) FindingInput {
	return FindingInput{Title: f.Title, WhatDone: f.WhatDone, Results: f.Results,
		Transferability: f.Transferability, NordicProposal: f.NordicProposal,
		Countries: nonNil(f.Countries), Themes: nonNil(f.Themes), Ps: nonNil(f.Ps), Forms: nonNil(f.Forms),
		VictimGroups: nonNil(f.VictimGroups), ActorTypes: nonNil(f.ActorTypes), Language: f.Language,
		ContactName: f.ContactName, ContactEmail: f.ContactEmail, ContactConsent: f.ContactConsent,
		Attribution: f.Attribution}
}

// nonNil turns a nil slice into an empty one (a NOT NULL array column).
func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func newCreateRow(actor *int64, workshopID int64, opID string, in FindingInput) (*createRow, error) {
	f, err := in.finding(nil)
	if err != nil {
		return nil, err
	}
	f.WorkshopID, f.AuthorID = &workshopID, actor
	payload, err := marshalEntry(f)
	if err != nil {
		return nil, fmt.Errorf("encode finding: %w", err)
	}
	r := &createRow{WorkshopID: workshopID, OpID: opID, Actor: actor, Terms: []string{},
		Payload: payload, FindingInput: inputOf(&f)}
	for _, t := range termFields(&f) {
		for _, k := range *t.list {
			r.Terms = append(r.Terms, t.dim+":"+k)
		}
	}
	return r, nil
}

// args returns the single create statement's arguments.
func (r *createRow) args(room string) []any {
	dims, keys := make([]string, len(r.Terms)), make([]string, len(r.Terms))
	for i, t := range r.Terms {
		dims[i], keys[i], _ = strings.Cut(t, ":")
	}
	return []any{r.WorkshopID, room, r.OpID, pgTextArray(dims), pgTextArray(keys),
		r.Actor, r.Title, r.WhatDone, r.Results, r.Transferability, r.NordicProposal,
		pgTextArray(r.Countries), pgTextArray(r.Themes), pgTextArray(r.Ps), pgTextArray(r.Forms),
		pgTextArray(r.VictimGroups), pgTextArray(r.ActorTypes), r.Language,
		r.ContactName, r.ContactEmail, r.ContactConsent, r.Attribution, string(r.Payload)}
}

// createFindings creates rows, new ops all of one workshop, inside its room's
// transaction, their entries numbered from seq+1, in one statement. It
// returns the entries of those it created; the others (unknown workshop
// or term) wrote nothing. An op id the room has logged fails it on the
// log's unique (room, op_id). It runs prepared (see txStmt).
func (s *Store) createFindings(ctx context.Context, tx bun.Tx, room string, seq int64, rows []*createRow) (map[string]domain.LogEntry, error) {
	st, err := s.txStmt(ctx, tx, createFindingsSQL)
	if err != nil {
		return nil, err
	}
	rs, err := st.QueryContext(ctx, append([]any{rows[0].WorkshopID, room, seq}, createColumns(rows)...)...)
	if err != nil {
		return nil, fmt.Errorf("create findings: %w", err)
	}
	defer rs.Close()
	out := make(map[string]domain.LogEntry, len(rows))
	for rs.Next() {
		e := domain.LogEntry{Room: room, Kind: "finding.create"}
		if err := rs.Scan(&e.Seq, &e.OpID, &e.ActorID, &e.Payload, &e.At); err != nil {
			return nil, fmt.Errorf("create findings: %w", err)
		}
		out[e.OpID] = e
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("create findings: %w", err)
	}
	return out, nil
}

// createColumns returns rows as the batch create statement's column
// arrays ($4 on), in its order: an array per column, a row's lists as
// array literals, which the statement casts row by row.
func createColumns(rows []*createRow) []any {
	col := func(f func(r *createRow) string) string {
		ss := make([]string, len(rows))
		for i, r := range rows {
			ss[i] = f(r)
		}
		return pgTextArray(ss)
	}
	list := func(f func(r *createRow) []string) string {
		return col(func(r *createRow) string { return pgTextArray(f(r)) })
	}
	actors, consents := make([]byte, 0, 8*len(rows)), make([]byte, 0, 2*len(rows)+2)
	actors, consents = append(actors, '{'), append(consents, '{')
	for i, r := range rows {
		if i > 0 {
			actors, consents = append(actors, ','), append(consents, ',')
		}
		if r.Actor == nil {
			actors = append(actors, "NULL"...)
		} else {
			actors = strconv.AppendInt(actors, *r.Actor, 10)
		}
		consent := byte('f')
		if r.ContactConsent {
			consent = 't'
		}
		consents = append(consents, consent)
	}
	actors, consents = append(actors, '}'), append(consents, '}')
	return []any{
		col(func(r *createRow) string { return r.OpID }), string(actors),
		list(func(r *createRow) []string { return r.Terms }),
		col(func(r *createRow) string { return r.Title }), col(func(r *createRow) string { return r.WhatDone }),
		col(func(r *createRow) string { return r.Results }), col(func(r *createRow) string { return r.Transferability }),
		col(func(r *createRow) string { return r.NordicProposal }),
		list(func(r *createRow) []string { return r.Countries }), list(func(r *createRow) []string { return r.Themes }),
		list(func(r *createRow) []string { return r.Ps }), list(func(r *createRow) []string { return r.Forms }),
		list(func(r *createRow) []string { return r.VictimGroups }), list(func(r *createRow) []string { return r.ActorTypes }),
		col(func(r *createRow) string { return r.Language }), col(func(r *createRow) string { return r.ContactName }),
		col(func(r *createRow) string { return r.ContactEmail }), string(consents),
		col(func(r *createRow) string { return r.Attribution }), col(func(r *createRow) string { return string(r.Payload) }),
	}
}

// createFindingStmt runs the create-finding statement and fills in e. ok
// is false when it wrote nothing — an unknown workshop or term, a
// repeated op, a concurrent duplicate — and the general path must find
// out which.
func (s *Store) createFindingStmt(ctx context.Context, args []any, e domain.LogEntry) (domain.LogEntry, bool, error) {
	stmt, err := s.prepared(ctx, createFindingSQL)
	if err != nil {
		return e, false, err
	}
	err = stmt.QueryRowContext(ctx, args...).Scan(&e.Seq, &e.At, &e.Payload)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) && pgErr.IntegrityViolation() {
		return e, false, nil // a concurrent duplicate op: the general path replays it
	}
	if err != nil {
		return e, false, fmt.Errorf("create finding: %w", err)
	}
	return e, true, nil
}

// createFindingChange is the general path of CreateFinding: it finds out
// whether the workshop and terms exist and says so.
func createFindingChange(workshopID int64, actor *int64, in FindingInput) Change {
	return func(ctx context.Context, tx bun.Tx) (string, any, error) {
		var w domain.Workshop
		if err := tx.NewSelect().Model(&w).Where("id = ?", workshopID).Scan(ctx); err != nil {
			return "", nil, notFound(err, "There is no workshop %d.", workshopID)
		}
		tax, err := loadTaxonomy(ctx, tx, w.EventID)
		if err != nil {
			return "", nil, err
		}
		f, err := in.finding(tax)
		if err != nil {
			return "", nil, err
		}
		f.EventID, f.WorkshopID, f.AuthorID = w.EventID, &w.ID, actor
		if _, err := tx.NewInsert().Model(&f).Returning("id, created_at, updated_at").Exec(ctx); err != nil {
			return "", nil, fmt.Errorf("insert finding: %w", err)
		}
		return "finding.create", f, nil
	}
}

// votesColumn selects a finding's vote count (Votes is scanonly).
const votesColumn = "(SELECT count(*) FROM votes v WHERE v.finding_id = finding.id) AS votes"

// Finding returns one finding that is not deleted.
func (s *Store) Finding(ctx context.Context, id int64) (domain.Finding, error) {
	return getFinding(ctx, s.db, id, false)
}

func getFinding(ctx context.Context, db bun.IDB, id int64, lock bool) (domain.Finding, error) {
	return getFindingOf(ctx, db, 0, id, lock)
}

// getFindingOf is getFinding for a finding of the workshop (any, when
// workshopID is 0). The workshop is part of the query, so that an op
// naming another workshop's finding does not lock it.
func getFindingOf(ctx context.Context, db bun.IDB, workshopID, id int64, lock bool) (domain.Finding, error) {
	var f domain.Finding
	q := db.NewSelect().Model(&f).ColumnExpr("finding.*").ColumnExpr(votesColumn).Where("id = ? AND deleted_at IS NULL", id)
	if workshopID != 0 {
		q = q.Where("workshop_id = ?", workshopID)
	}
	if lock {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		if workshopID != 0 {
			return f, notFound(err, "There is no finding %d in this workshop.", id)
		}
		return f, notFound(err, "There is no finding %d.", id)
	}
	return f, nil
}

// WorkshopFindings returns the live findings of a workshop, oldest first.
func (s *Store) WorkshopFindings(ctx context.Context, workshopID int64) ([]domain.Finding, error) {
	fs := []domain.Finding{}
	err := s.db.NewSelect().Model(&fs).
		ColumnExpr("finding.*").ColumnExpr(votesColumn).
		Where("workshop_id = ? AND deleted_at IS NULL", workshopID).Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	return fs, nil
}

// ConflictDetail is the Detail of a Conflict error from UpdateFinding: the
// fields changed since the update's base version by someone else, or by
// the person from another client; those of Fields that only the person
// changed (Yours), so that a page says who changed each; and the finding
// as it is now.
type ConflictDetail struct {
	Fields  []string       `json:"fields"`
	Yours   []string       `json:"yours,omitempty"`
	Current domain.Finding `json:"current"`
}

// UpdateFinding applies changes (field name → JSON value) to a finding of
// the room's workshop. base is the finding version the client edited.
// Changes to fields nobody changed since base are applied; if any changed
// field was changed by someone else since base (see changedByOthers) and
// the update sets it to a different value, the whole update is refused
// with a Conflict carrying the current finding.
func (s *Store) UpdateFinding(ctx context.Context, actor *int64, workshopID int64, opID string, id int64, base int, changes map[string]json.RawMessage) (Applied, error) {
	// It reads, checks, then writes once at the end.
	right, client := hasRight(ctx, releaseRight), clientOf(ctx)
	return s.applyFindingWrite(ctx, WorkshopRoom(workshopID), opID, actor, id, heldUpdate, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		f, err := lockedFindingInRoom(ctx, tx, workshopID, id)
		if err != nil {
			return "", nil, err
		}
		if err := checkNotReleased(f, right); err != nil {
			return "", nil, err
		}
		f.Votes = batchVotes(ctx, f.ID, f.Votes)
		if len(changes) == 0 {
			return "", nil, domain.Errorf(domain.Invalid, "An update needs at least one changed field.")
		}
		if err := checkBase(f, base, 1); err != nil {
			return "", nil, err
		}
		// Terms are checked against the taxonomy only when they change.
		var tax taxonomy
		for name := range changes {
			if isTermField(name) {
				if tax, err = loadTaxonomy(ctx, tx, f.EventID); err != nil {
					return "", nil, err
				}
				break
			}
		}
		next := f // fields are replaced below; validateFinding sorts the lists in place:
		next.Countries, next.Themes, next.Ps = slices.Clone(f.Countries), slices.Clone(f.Themes), slices.Clone(f.Ps)
		next.Forms, next.VictimGroups, next.ActorTypes = slices.Clone(f.Forms), slices.Clone(f.VictimGroups), slices.Clone(f.ActorTypes)
		var conflicts conflictFields
		changed := []string{}
		// inConflict says whether someone else changed the field since
		// base, so that a change of it now would go over theirs unseen;
		// such a field is counted among the conflicts.
		inConflict := func(name string) (bool, error) {
			who, err := fieldChangedByOthers(ctx, tx, WorkshopRoom(workshopID), f, base, name, actor, client)
			conflicts.add(name, who)
			return who != byNone, err
		}
		for name, raw := range changes {
			ptr, err := fieldPtr(&next, name)
			if err != nil {
				return "", nil, err
			}
			// Decoded into a new value, not over the field: json.Unmarshal
			// reuses a slice's array, which would change "before" too.
			field := reflect.ValueOf(ptr).Elem()
			after := reflect.New(field.Type())
			if err := strictUnmarshal(raw, after.Interface()); err != nil {
				return "", nil, domain.Errorf(domain.Invalid, "The value of %s must be %s.", name, jsonKindOf(field.Type()))
			}
			if name == "title" { // as a create trims it
				after.Elem().SetString(strings.TrimSpace(after.Elem().String()))
			}
			if terms, ok := after.Interface().(*[]string); ok && isTermField(name) {
				// A set, as validateFinding stores it: the same terms in
				// another order are no change (and no conflict).
				slices.Sort(*terms)
				*terms = slices.Compact(*terms)
			}
			// A contact is not compared: its sender may not see it (entries
			// never carry it), and "no change" would tell them a guess of it
			// was right.
			if !isContactField(name) && (reflect.DeepEqual(field.Interface(), after.Elem().Interface()) || (field.Kind() == reflect.Slice && field.Len() == 0 && after.Elem().Len() == 0)) {
				continue
			}
			// A field in conflict is left as it is: the checks below judge
			// the finding the update would make, without it.
			if c, err := inConflict(name); err != nil {
				return "", nil, err
			} else if c {
				continue
			}
			field.Set(after.Elem())
			changed = append(changed, name)
		}
		if slices.Contains(changed, "contact_consent") && !next.ContactConsent {
			// Consent taken back takes the contact with it, said alike
			// whether there was one; but not a contact someone else gave
			// since base, which the sender has not seen.
			for name, v := range map[string]*string{"contact_name": &next.ContactName, "contact_email": &next.ContactEmail} {
				if _, given := changes[name]; given {
					continue
				}
				if c, err := inConflict(name); err != nil {
					return "", nil, err
				} else if c {
					continue
				}
				*v = ""
				changed = append(changed, name)
			}
		}
		// A conflict is answered first: the sender reviews the current
		// finding before anything else it sent is judged.
		if conflicts.any() {
			return "", nil, findingConflict(f, conflicts, "review the current text.", base)
		}
		if err := validateFinding(&next, tax); err != nil {
			return "", nil, err
		}
		// Credit beyond the Chatham House rule is the author's to give
		// (or an organizer's, who may have it from them; or the server's
		// own change): a member may not name someone else, though anyone
		// may take a finding back to the rule.
		if slices.Contains(changed, "attribution") && next.Attribution != "chatham" && !right &&
			actor != nil && (f.AuthorID == nil || *actor != *f.AuthorID) {
			return "", nil, domain.Errorf(domain.Forbidden, "Only the finding's author or an organizer may credit it beyond the Chatham House rule.")
		}
		if len(changed) == 0 {
			return updateEntry(f, changed)
		}
		slices.Sort(changed)
		next.Version = f.Version + 1
		next.FieldVersions = map[string]int{}
		for k, v := range f.FieldVersions {
			next.FieldVersions[k] = v
		}
		for _, name := range changed {
			next.FieldVersions[name] = next.Version
		}
		// At the database's precision: the entry's finding is what a
		// snapshot reads back. Never before the finding's last change (see
		// touchUpdatedAt).
		next.UpdatedAt = time.Now().Truncate(time.Microsecond)
		if next.UpdatedAt.Before(f.UpdatedAt) {
			next.UpdatedAt = f.UpdatedAt
		}
		if err := saveFinding(ctx, tx, &next); err != nil {
			return "", nil, err
		}
		if bs := batchStateOf(ctx); bs != nil {
			for _, name := range changed {
				bs.updated[id] = append(bs.updated[id], fieldChange{name, actor, next.Version, client})
			}
		}
		return updateEntry(next, changed)
	})
}

// updateEntry is the log entry of an update that left finding f with the
// fields changed: what changed, not the whole finding. Every member of the
// room is sent it: a one-word edit of a finding with long texts is a
// small entry. A field an entry never carries (a contact) is named, not
// given.
func updateEntry(f domain.Finding, changed []string) (string, any, error) {
	b, err := marshalEntry(f)
	if err != nil {
		return "", nil, fmt.Errorf("encode finding: %w", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return "", nil, fmt.Errorf("encode finding: %w", err)
	}
	changes := make(map[string]json.RawMessage, len(changed))
	for _, name := range changed {
		if v, ok := all[name]; ok {
			changes[name] = v
		}
	}
	return "finding.update", map[string]any{"id": f.ID, "version": f.Version, "updated_at": f.UpdatedAt,
		"changes": changes, "fields": changed}, nil
}

// touchUpdatedAt is the SET clause that stamps a change of a finding in
// SQL: the time of the change, never before the finding's last change. A
// held-back update of a batch is stamped with the server's clock as it
// runs, later than the transaction's start (now()), and a share or key
// mark after it in the batch must not go back in time.
const touchUpdatedAt = "updated_at = greatest(clock_timestamp(), updated_at)"

// changedByOthers tells whether field of finding id was changed since
// version base by anyone but actor from client: only then is a stale
// update of it a conflict. A person's own later edits (two saves of one
// field sent before the first was acked, say) are no conflict; but when
// the op names its client (see WithClient), the same person's change
// from another client, or from none named, is: that client may not have
// seen it. Changes without a known actor count as others'. It reads the
// log, and in a batch the batch's own changes, whose entries are written
// at its end.
func changedByOthers(ctx context.Context, tx bun.Tx, room string, id int64, base int, field string, actor *int64, client string) (changedBy, error) {
	if actor == nil {
		return byOthers, nil
	}
	by := byNone
	if u := batchChangesOf(ctx); u != nil {
		for _, c := range u[id] {
			if c.field != field || c.version <= base {
				continue
			}
			if c.actor == nil || *c.actor != *actor {
				return byOthers, nil
			}
			if client != "" && c.client != client {
				by = bySelfElsewhere
			}
		}
	}
	var other, elsewhere bool
	var read int
	// The finding's update entries after base, oldest first, by
	// log_entries_finding_update3_idx, at most maxChangesRead+1 of them.
	// They carry what changed; a process of the older version, during an
	// upgrade, logs the whole finding (with its id and version) instead,
	// and no client.
	err := tx.NewRaw(`SELECT coalesce(bool_or(e.touches AND e.actor_id IS DISTINCT FROM ?4), false),
		       coalesce(bool_or(e.touches AND ?5 <> '' AND NOT EXISTS (
		           SELECT 1 FROM log_clients c WHERE c.room = e.room AND c.seq = e.seq AND c.client = ?5)), false),
		       count(*)
		FROM (SELECT l.room, l.seq, l.actor_id, l.payload->'fields' @> jsonb_build_array(?3::text) AS touches
		      FROM log_entries l
		      WHERE l.room = ?0 AND l.kind = 'finding.update' AND (coalesce(l.payload->>'id', l.payload->'finding'->>'id'))::bigint = ?1
		        AND (coalesce(l.payload->>'version', l.payload->'finding'->>'version'))::int > ?2
		      ORDER BY (coalesce(l.payload->>'version', l.payload->'finding'->>'version'))::int
		      LIMIT ?6) e`,
		room, id, base, field, *actor, client, maxChangesRead+1).Scan(ctx, &other, &elsewhere, &read)
	switch {
	case err != nil:
		return byNone, fmt.Errorf("read the changes of finding %d: %w", id, err)
	case read > maxChangesRead:
		return byMany, nil
	case other:
		return byOthers, nil
	case elsewhere:
		return bySelfElsewhere, nil
	}
	return by, nil
}

// maxChangesRead is how many of a finding's updates since an op's base
// the check of a field reads (see changedByOthers). An op based on a
// version further back is a conflict for every field changed since,
// whoever changed it: as a join too far behind gets a snapshot, a client
// that far behind gets the finding as it is. Without the bound a finding
// edited thousands of times made each update of it from an early base
// read them all, inside the room's transaction.
const maxChangesRead = 64

// changedBy is whose change of a field since a base makes a conflict
// (see changedByOthers).
type changedBy int

const (
	byNone          changedBy = iota // nobody's: no conflict
	bySelfElsewhere                  // the person's own, from another client
	byOthers                         // someone else's
	byMany                           // more changes than read (see maxChangesRead): anyone's
)

// conflictsBy names, for a conflict's message, who changed the fields:
// "Someone else", unless all were the person's own from another client.
func conflictsBy(by changedBy) string {
	switch by {
	case bySelfElsewhere:
		return "You (on another device or browser)"
	case byMany:
		return "Someone"
	}
	return "Someone else"
}

// fieldChangedByOthers says whether someone other than actor from client
// changed the field of f since base (see changedByOthers); a field whose
// version is not above base is not read about.
func fieldChangedByOthers(ctx context.Context, tx bun.Tx, room string, f domain.Finding, base int, field string, actor *int64, client string) (changedBy, error) {
	if f.FieldVersions[field] <= base {
		return byNone, nil
	}
	return changedByOthers(ctx, tx, room, f.ID, base, field, actor, client)
}

// keyBy is the field_versions key of who last marked or unmarked a
// finding as key ("is_key" holds the version they did it at). It is kept
// there, not in a column of its own, so that a server process of an
// older version reads the findings table as before.
const keyBy = "is_key_by"

// keyChangedBy says whose was the last change of f's key state (a mark
// or unmark) since base, of room's finding f: someone else's, the
// person's own from another client than the op's (when it names one; see
// WithClient), or none to count. Only the last to change it is kept:
// whoever changed it last owns the key state, having seen any change
// before. In a batch it reads the batch's own key changes, whose entries
// are written at its end.
func keyChangedBy(ctx context.Context, tx bun.Tx, room string, f domain.Finding, base int, actor *int64, client string) (changedBy, error) {
	last := f.FieldVersions["is_key"]
	if last <= base {
		return byNone, nil
	}
	if by := f.FieldVersions[keyBy]; actor == nil || by == 0 || int64(by) != *actor {
		return byOthers, nil
	}
	if client == "" {
		return byNone, nil
	}
	if u := batchChangesOf(ctx); u != nil {
		for _, c := range u[f.ID] {
			if c.field == "is_key" && c.version == last {
				if c.client == client {
					return byNone, nil
				}
				return bySelfElsewhere, nil
			}
		}
	}
	// The entry that made the change is the first of its version (a mark
	// of a key finding changes nothing, and logs the version it found).
	var own bool
	err := tx.NewRaw(`SELECT coalesce((SELECT c.client = ?3 FROM log_entries e
		LEFT JOIN log_clients c ON c.room = e.room AND c.seq = e.seq
		WHERE e.room = ?0 AND e.kind IN ('key.mark', 'key.unmark')
		  AND (e.payload->>'finding_id')::bigint = ?1 AND (e.payload->>'version')::int = ?2
		ORDER BY e.seq LIMIT 1), false)`, room, f.ID, last, client).Scan(ctx, &own)
	if err != nil {
		return byNone, fmt.Errorf("read the key changes of finding %d: %w", f.ID, err)
	}
	if own {
		return byNone, nil
	}
	return bySelfElsewhere, nil
}

// checkBase refuses a base version the finding never had, or below least
// (1 where a base is required, 0 where none is).
func checkBase(f domain.Finding, base, least int) error {
	if base < least || base > f.Version {
		return domain.Errorf(domain.Invalid, "Base version %d is not a version of finding %d (now at %d).", base, f.ID, f.Version)
	}
	return nil
}

// conflictFields are the fields of a conflict: those someone else
// changed, and those only the person changed, from another client.
type conflictFields struct {
	theirs, yours []string
	many          bool // some of theirs may be the person's own (byMany)
}

// add counts field among the conflicts, as who changed it (none: not).
func (c *conflictFields) add(field string, who changedBy) {
	switch who {
	case byMany:
		c.many = true
		c.theirs = append(c.theirs, field)
	case byOthers:
		c.theirs = append(c.theirs, field)
	case bySelfElsewhere:
		c.yours = append(c.yours, field)
	}
}

// any tells whether there is a conflict.
func (c *conflictFields) any() bool { return len(c.theirs)+len(c.yours) > 0 }

// findingConflict is the Conflict of an op over base when someone else,
// or the person from another client, changed c's fields of f since; its
// message says who changed which (named for people) and ends with then,
// what to do. Detail names them as the protocol does.
func findingConflict(f domain.Finding, c conflictFields, then string, base int) error {
	theirs, yours := slices.Sorted(slices.Values(c.theirs)), slices.Sorted(slices.Values(c.yours))
	who := byOthers
	if c.many {
		who = byMany
	}
	var message string
	switch {
	case len(theirs) == 0:
		message = fmt.Sprintf("%s changed %s since version %d; %s", conflictsBy(bySelfElsewhere), saidFields(yours), base, then)
	case len(yours) == 0:
		message = fmt.Sprintf("%s changed %s since version %d; %s", conflictsBy(who), saidFields(theirs), base, then)
	default:
		message = fmt.Sprintf("%s changed %s, and you (on another device or browser) %s, since version %d; %s",
			conflictsBy(who), saidFields(theirs), saidFields(yours), base, then)
	}
	return &domain.Error{Code: domain.Conflict, Message: message,
		Detail: ConflictDetail{Fields: slices.Sorted(slices.Values(append(theirs, yours...))), Yours: yours, Current: f}}
}

// saidFields names fields for people: "the title, the results and the countries".
func saidFields(fields []string) string {
	labels := make([]string, len(fields))
	for i, name := range fields {
		labels[i] = fieldLabel(name)
	}
	if n := len(labels); n > 1 {
		return strings.Join(labels[:n-1], ", ") + " and " + labels[n-1]
	}
	return strings.Join(labels, ", ")
}

// fieldLabel names a finding's field in a message for people, as the
// pages do; a name it does not know is said as it is.
func fieldLabel(name string) string {
	switch name {
	case "title":
		return "the title"
	case "what_done":
		return "what was done"
	case "results":
		return "the results"
	case "transferability":
		return "whether another country could adopt it"
	case "nordic_proposal":
		return "the Nordic proposal"
	case "countries":
		return "the countries"
	case "themes":
		return "the themes"
	case "ps":
		return "the 4 Ps"
	case "forms":
		return "the forms of exploitation"
	case "victim_groups":
		return "the victim groups"
	case "actor_types":
		return "the actor types"
	case "language":
		return "the language"
	case "attribution":
		return "the credit"
	case "contact_name":
		return "the contact's name"
	case "contact_email":
		return "the contact's email"
	case "contact_consent":
		return "the contact's consent"
	case "is_key":
		return "whether it is a key finding"
	}
	return name
}

// jsonKindOf says, for people, what JSON a finding field a client may
// update takes (see fieldPtr: strings, lists of strings, a bool).
func jsonKindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list of strings"
	}
	return "a string"
}

// fieldPtr returns a pointer to the finding field a client may update by name.
func fieldPtr(f *domain.Finding, name string) (any, error) {
	switch name {
	case "title":
		return &f.Title, nil
	case "what_done":
		return &f.WhatDone, nil
	case "results":
		return &f.Results, nil
	case "transferability":
		return &f.Transferability, nil
	case "nordic_proposal":
		return &f.NordicProposal, nil
	case "countries":
		return &f.Countries, nil
	case "themes":
		return &f.Themes, nil
	case "ps":
		return &f.Ps, nil
	case "forms":
		return &f.Forms, nil
	case "victim_groups":
		return &f.VictimGroups, nil
	case "actor_types":
		return &f.ActorTypes, nil
	case "language":
		return &f.Language, nil
	case "contact_name":
		return &f.ContactName, nil
	case "contact_email":
		return &f.ContactEmail, nil
	case "contact_consent":
		return &f.ContactConsent, nil
	case "attribution":
		return &f.Attribution, nil
	}
	return nil, domain.Errorf(domain.Invalid, "%q is not a field of a finding that can be changed.", name)
}

func strictUnmarshal(raw json.RawMessage, ptr any) error {
	if string(raw) == "null" {
		return fmt.Errorf("null is not allowed")
	}
	return json.Unmarshal(raw, ptr)
}

// DeleteFinding removes a finding of the room's workshop (kept in the
// database as deleted, so the log and links stay whole). base, when not
// 0, is the version the sender saw: if someone else changed its fields
// or key state since, it is a Conflict carrying the finding.
func (s *Store) DeleteFinding(ctx context.Context, actor *int64, workshopID int64, opID string, id int64, base int) (Applied, error) {
	right, curate, client := hasRight(ctx, releaseRight), hasRight(ctx, curateRight), clientOf(ctx)
	room := WorkshopRoom(workshopID)
	return s.Apply(ctx, room, opID, actor, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		f, err := getFindingOf(ctx, tx, workshopID, id, true)
		if err != nil {
			return "", nil, err
		}
		if err := checkNotReleased(f, right); err != nil {
			return "", nil, err
		}
		// The rapporteur's choices are not undone behind their back.
		if (f.IsKey || f.ReleaseState == domain.Shared) && !curate {
			return "", nil, domain.Errorf(domain.Forbidden, "Finding %d is a key finding or shared with the event; only the group's rapporteur or an organizer can delete it.", f.ID)
		}
		if base > 0 {
			// Nor is someone else's newer text, or key choice, deleted
			// unseen by one who saw the finding at base.
			if err := checkBase(f, base, 0); err != nil {
				return "", nil, err
			}
			var others conflictFields
			for name := range f.FieldVersions {
				if name == "is_key" || name == keyBy {
					continue
				}
				who, err := fieldChangedByOthers(ctx, tx, room, f, base, name, actor, client)
				if err != nil {
					return "", nil, err
				}
				others.add(name, who)
			}
			who, err := keyChangedBy(ctx, tx, room, f, base, actor, client)
			if err != nil {
				return "", nil, err
			}
			others.add("is_key", who)
			if others.any() {
				f.Votes = batchVotes(ctx, f.ID, f.Votes)
				return "", nil, findingConflict(f, others, "look at the finding again before deleting it.", base)
			}
		}
		if _, err := tx.NewUpdate().Model((*domain.Finding)(nil)).Set("deleted_at = now(), version = version + 1").
			Where("id = ?", id).Exec(ctx); err != nil {
			return "", nil, fmt.Errorf("delete finding: %w", err)
		}
		return "finding.delete", map[string]any{"id": id}, nil
	})
}

// createFindingSQL is the statement of createFindingFast, prepared once per
// connection so Postgres plans it once, not on every op.
// The create-finding statement: ok holds the workshop if it exists and
// every term is in the event's taxonomy; r is the entry's seq; f and e
// write the finding and its entry. A repeated op id fails the statement on
// the log's unique (room, op_id), and nothing of it is written. (A lookup
// of the op id here was planned once per connection, while the log was
// small, and kept reading it whole as it grew.) The entry's payload is
// built as createFindingsSQL builds it.
const (
	createFindingOK = `
WITH ok AS (
    SELECT w.id, w.event_id FROM workshops w
    WHERE w.id = $1::bigint
      AND NOT EXISTS (
          SELECT 1 FROM unnest($4::text[], $5::text[]) AS t(dim, key)
          WHERE NOT EXISTS (SELECT 1 FROM taxonomy_terms tt
                            WHERE tt.event_id = w.event_id AND tt.dimension = t.dim AND tt.key = t.key))
`
	createFindingAlone = `
), r AS (
    INSERT INTO rooms (id, seq) SELECT $2::text, 1 FROM ok
    ON CONFLICT (id) DO UPDATE SET seq = rooms.seq + 1
    RETURNING seq`
	createFindingWrite = `
), f AS (
    INSERT INTO findings (event_id, workshop_id, author_id, title, what_done, results, transferability,
        nordic_proposal, countries, themes, ps, forms, victim_groups, actor_types, language,
        contact_name, contact_email, contact_consent, attribution, release_state, version, field_versions)
    SELECT ok.event_id, ok.id, $6::bigint, $7::text, $8::text, $9::text, $10::text, $11::text, $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text, $19::text, $20::text, $21::boolean, $22::text, 'draft', 1, '{}'
    FROM ok
    RETURNING id, event_id, created_at, updated_at
), e AS (
    INSERT INTO log_entries (room, seq, op_id, actor_id, kind, payload)
    SELECT $2::text, r.seq, $3::text, $6::bigint, 'finding.create',
           (left($23::text, -1) || ',"id":' || f.id || ',"event_id":' || f.event_id ||
            ',"created_at":' || to_json(f.created_at) || ',"updated_at":' || to_json(f.updated_at) || '}')::jsonb
    FROM r, f
    RETURNING seq, at, payload
)
SELECT e.seq, e.at, e.payload FROM e`

	// createFindingSQL takes the room's next seq itself.
	createFindingSQL = createFindingOK + createFindingAlone + createFindingWrite
)

// createFindingsSQL creates many findings of one workshop ($1) with their
// entries in room $2 numbered from $3+1, skipping rows with a term not in
// the event's taxonomy. The rows come as one array per column ($4 on, see
// createColumns): unnest reads them with no JSON parsing, which took a
// tenth of Postgres's time per op when the rows came as a JSON array. w
// reads the taxonomy once (materialised, or the planner reads it again for
// every row), as "dimension:key" (keys have no colon), for a cheap
// containment test per row: a per-row lookup was planned as a hash of the
// whole taxonomy built again for every row. ok is materialised (it is read
// twice and calls nextval), so each row gets its finding id once and both
// inserts agree on it. An entry's payload is the row's, from json.Marshal
// of a domain.Finding (an object with fields, never "{}"), with the fields
// the database assigns appended as text before its closing brace: jsonb
// keeps the last of repeated keys, and one parse of the text is cheaper
// than concatenating two jsonb values.
const createFindingsSQL = `
WITH w AS MATERIALIZED (
    SELECT id, event_id, ARRAY(SELECT tt.dimension || ':' || tt.key FROM taxonomy_terms tt
                               WHERE tt.event_id = workshops.event_id) AS terms
    FROM workshops WHERE id = $1
), ok AS (
    SELECT x.*, w.event_id, nextval('findings_id_seq') AS fid,
           row_number() OVER (ORDER BY x.ord) AS n
    FROM w, unnest($4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                   $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
                   $18::text[], $19::text[], $20::text[], $21::boolean[], $22::text[], $23::text[])
        WITH ORDINALITY AS x(op_id, actor_id, terms, title, what_done, results, transferability,
            nordic_proposal, countries, themes, ps, forms, victim_groups, actor_types, language,
            contact_name, contact_email, contact_consent, attribution, payload, ord)
    WHERE x.terms::text[] <@ w.terms
), f AS (
    INSERT INTO findings (id, event_id, workshop_id, author_id, title, what_done, results, transferability,
        nordic_proposal, countries, themes, ps, forms, victim_groups, actor_types, language,
        contact_name, contact_email, contact_consent, attribution, release_state, version, field_versions)
    SELECT fid, event_id, $1, actor_id, title, what_done, results, transferability, nordic_proposal,
        countries::text[], themes::text[], ps::text[], forms::text[], victim_groups::text[], actor_types::text[],
        language, contact_name, contact_email, contact_consent, attribution, 'draft', 1, '{}'
    FROM ok
    RETURNING id, created_at, updated_at
)
INSERT INTO log_entries (room, seq, op_id, actor_id, kind, payload)
SELECT $2::text, $3::bigint + ok.n, ok.op_id, ok.actor_id, 'finding.create',
       (left(ok.payload, -1) || ',"id":' || f.id || ',"event_id":' || ok.event_id ||
        ',"created_at":' || to_json(f.created_at) || ',"updated_at":' || to_json(f.updated_at) || '}')::jsonb
FROM ok JOIN f ON f.id = ok.fid
RETURNING seq, op_id, actor_id, payload, at`

// pgTextArray writes ss as a Postgres text[] literal, every element
// quoted (so "NULL" is a string, not a null).
func pgTextArray(ss []string) string {
	n := 2
	for _, s := range ss {
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	return string(append(b, '}'))
}
