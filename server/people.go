package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// eventTerms checks and resolves import values against one event's
// taxonomy and workshops (auth.Validator): keys, labels and workshop
// names match without regard to case or Unicode form.
type eventTerms struct {
	countries map[string]string // folded key or label → key
	actors    map[string]string
	workshops map[string]int64 // folded full name, short name ("workshop 1") or id → id
	names     map[int64]string
}

func (a *app) termsOf(ctx context.Context, eventID int64) (*eventTerms, error) {
	tax, err := a.store.Taxonomy(ctx, eventID)
	if err != nil {
		return nil, err
	}
	ws, err := a.store.Workshops(ctx, eventID)
	if err != nil {
		return nil, err
	}
	t := &eventTerms{countries: map[string]string{}, actors: map[string]string{}, workshops: map[string]int64{}, names: map[int64]string{}}
	for _, term := range tax[domain.DimCountry] {
		t.countries[store.Fold(term.Key)], t.countries[store.Fold(term.Label)] = term.Key, term.Key
	}
	for _, term := range tax[domain.DimActor] {
		t.actors[store.Fold(term.Key)], t.actors[store.Fold(term.Label)] = term.Key, term.Key
	}
	// A name that could mean two workshops (two parts' "Workshop 1", a
	// workshop named like another's id) means none: 0, refused as unknown,
	// rather than putting people in a group by chance.
	addWorkshop := func(key string, id int64) {
		if had, ok := t.workshops[key]; ok && had != id {
			id = 0
		}
		t.workshops[key] = id
	}
	for _, w := range ws {
		addWorkshop(store.Fold(w.Name), w.ID)
		if short, _, ok := strings.Cut(w.Name, ":"); ok {
			addWorkshop(store.Fold(strings.TrimSpace(short)), w.ID)
		}
		addWorkshop(strconv.FormatInt(w.ID, 10), w.ID)
		t.names[w.ID] = w.Name
	}
	return t, nil
}

func (t *eventTerms) ValidCountry(s string) bool { _, ok := t.countries[store.Fold(s)]; return ok }
func (t *eventTerms) ValidActor(s string) bool   { _, ok := t.actors[store.Fold(s)]; return ok }
func (t *eventTerms) ValidWorkshop(s string) bool {
	return t.workshops[store.Fold(s)] != 0
}
func (t *eventTerms) ValidRole(s string) bool {
	return slices.Contains([]string{domain.RoleOrganizer, domain.RoleRapporteur, domain.RoleParticipant, domain.RoleReportAuthor, domain.RoleObserver}, s)
}

// row turns a checked import row into what the store takes.
func (t *eventTerms) row(p auth.ParticipantRow) store.ImportRow {
	r := store.ImportRow{Line: p.Line, Role: p.Role, Person: store.PersonInput{
		Name: p.Name, Email: p.Email, Organisation: p.Organisation,
		Country: t.countries[store.Fold(p.Country)], ActorType: t.actors[store.Fold(p.ActorType)],
	}}
	if p.Workshop != "" {
		r.WorkshopID = t.workshops[store.Fold(p.Workshop)]
	}
	return r
}

// isForm reports a request posted by an HTML form (answered with pages)
// rather than by a script (answered with JSON).
func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// handleImportPeople imports a participant list (CSV body, or the file
// field of a form): every row is checked first, and any bad row refuses
// the whole file with each row's line, field and reason.
func (a *app) handleImportPeople(w http.ResponseWriter, r *http.Request) {
	ev := authOf(r).scope.event
	var body io.Reader
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		f, _, err := r.FormFile("file")
		if errors.As(err, new(*http.MaxBytesError)) {
			a.answerErr(w, r, tooLarge())
			return
		}
		if err != nil {
			a.answerErr(w, r, domain.Errorf(domain.Invalid, "Choose a CSV file to import."))
			return
		}
		defer f.Close()
		body = f
	} else {
		// Read whole, so that a file over the limit is told as such, not
		// as a row that is cut short.
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
		if errors.As(err, new(*http.MaxBytesError)) {
			a.answerErr(w, r, tooLarge())
			return
		}
		if err != nil {
			a.answerErr(w, r, domain.Errorf(domain.Invalid, "The file could not be read: %v.", err))
			return
		}
		body = bytes.NewReader(b)
	}
	terms, err := a.termsOf(r.Context(), ev.ID)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	rows, rowErrs := auth.ParseParticipants(body, terms)
	if len(rowErrs) > 0 {
		probs := make([]store.RowProblem, len(rowErrs))
		for i, e := range rowErrs {
			probs[i] = store.RowProblem{Line: e.Line, Field: e.Field, Message: e.Message}
		}
		a.answerErr(w, r, &domain.Error{Code: domain.Invalid, Detail: probs,
			Message: fmt.Sprintf("The file has %d problem(s); nothing was imported. Fix the rows listed and import the whole file again.", len(probs))})
		return
	}
	in := make([]store.ImportRow, len(rows))
	for i, p := range rows {
		in[i] = terms.row(p)
	}
	res, err := a.store.ImportPeople(r.Context(), actor(r), ev.ID, in)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	for _, j := range res.Joinings {
		a.joined(r.Context(), j)
	}
	if isForm(r) {
		a.peoplePage(w, r, &res, "") // the page, saying what the import did (sent again, it adds no one)
		return
	}
	writeJSON(w, map[string]any{"imported": len(res.Added), "people": res.Added, "joined": res.Joined, "already": res.Already})
}

// personForm is one person added by hand.
type personForm struct {
	Name         string `json:"name"`
	Email        string `json:"email"`
	Organisation string `json:"organisation"`
	Country      string `json:"country"`
	ActorType    string `json:"actor_type"`
	Workshop     string `json:"workshop"`
	Role         string `json:"role"`
	// Base, if set, is the version of the person the edit was made on
	// (see store.MemberVersion): an edit of a person changed since is
	// refused.
	Base string `json:"base"`
}

// decodePerson reads a JSON person strictly: its media type must say
// JSON, and a key that is not a field (a misspelling, which an edit would
// take as the field left out, and clear) or anything after the object is
// invalid, and nothing is changed.
func decodePerson(w http.ResponseWriter, r *http.Request, in *personForm) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return domain.Errorf(domain.Invalid, "Send the person as JSON (Content-Type: application/json) or as a form.")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(in)
	if err == nil {
		if more := dec.Decode(new(json.RawMessage)); more == nil {
			err = errors.New("more follows the person")
		} else if more != io.EOF {
			err = more
		}
	}
	if errors.As(err, new(*http.MaxBytesError)) {
		return domain.Errorf(domain.TooLarge, "A person is at most 1 MiB of JSON.")
	}
	if err != nil {
		return domain.Errorf(domain.Invalid, "The body must be one JSON person: %v.", err)
	}
	return nil
}

// personRow reads one person with one role (JSON, or a form with the same
// fields), checked like an import row; when it is bad it answers the
// request and returns false. A country, actor type or email the same as
// stored's (an edit of a person as they are) is taken as stored: it may
// be another event's term, or an email in capitals from an organisation
// account, which a new row could not have. It also returns the version
// the edit was made on, if given (personForm.Base).
func (a *app) personRow(w http.ResponseWriter, r *http.Request, stored *domain.Person) (store.ImportRow, string, bool) {
	ev := authOf(r).scope.event
	var in personForm
	if isForm(r) {
		in = personForm{Name: r.PostFormValue("name"), Email: r.PostFormValue("email"), Organisation: r.PostFormValue("organisation"),
			Country: r.PostFormValue("country"), ActorType: r.PostFormValue("actor_type"), Workshop: r.PostFormValue("workshop"), Role: r.PostFormValue("role"), Base: r.PostFormValue("base")}
	} else if err := decodePerson(w, r, &in); err != nil {
		a.answerErr(w, r, err)
		return store.ImportRow{}, "", false
	}
	var keepCountry, keepActor, keepEmail bool
	if stored != nil {
		keepCountry, keepActor = in.Country != "" && in.Country == stored.Country, in.ActorType != "" && in.ActorType == stored.ActorType
		keepEmail = stored.Email != nil && store.Fold(in.Email) == store.Fold(*stored.Email)
		if keepCountry {
			in.Country = ""
		}
		if keepActor {
			in.ActorType = ""
		}
		if keepEmail {
			in.Email = ""
		}
	}
	terms, err := a.termsOf(r.Context(), ev.ID)
	if err != nil {
		a.answerErr(w, r, err)
		return store.ImportRow{}, "", false
	}
	// One person is a one-row file: the same checks and messages as an import.
	var csv strings.Builder
	csv.WriteString("name,email,organisation,country,actor_type,workshop,role\n")
	for i, v := range []string{in.Name, in.Email, in.Organisation, in.Country, in.ActorType, in.Workshop, in.Role} {
		if i > 0 {
			csv.WriteByte(',')
		}
		csv.WriteString(`"` + strings.ReplaceAll(strings.ReplaceAll(v, "\n", " "), `"`, `""`) + `"`)
	}
	rows, rowErrs := auth.ParseParticipants(strings.NewReader(csv.String()+"\n"), terms)
	if len(rowErrs) > 0 || len(rows) != 1 {
		msgs := []string{}
		probs := []store.RowProblem{}
		for _, e := range rowErrs {
			msgs = append(msgs, e.Message)
			probs = append(probs, store.RowProblem{Field: e.Field, Message: e.Message})
		}
		if len(rows) == 0 && len(rowErrs) == 0 {
			msgs = append(msgs, "the person is empty")
		}
		a.answerErr(w, r, &domain.Error{Code: domain.Invalid, Message: "The person is not right: " + strings.Join(msgs, "; ") + ".", Detail: probs})
		return store.ImportRow{}, "", false
	}
	row := terms.row(rows[0])
	if keepCountry {
		row.Person.Country = stored.Country
	}
	if keepActor {
		row.Person.ActorType = stored.ActorType
	}
	if keepEmail {
		row.Person.Email = *stored.Email
	}
	return row, in.Base, true
}

// handleAddPerson adds one person with one role, checked like an import row.
func (a *app) handleAddPerson(w http.ResponseWriter, r *http.Request) {
	ev := authOf(r).scope.event
	row, _, ok := a.personRow(w, r, nil)
	if !ok {
		return
	}
	p, joined, err := a.store.AddMember(r.Context(), actor(r), ev.ID, row.Person, row.Role, row.WorkshopID)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	said := ""
	if joined != nil {
		a.joined(r.Context(), *joined)
		said = joined.Say(p)
	}
	if isForm(r) {
		if said != "" {
			a.peoplePage(w, r, nil, said) // what else the join did, which a redirect would not say
			return
		}
		http.Redirect(w, r, "/events/"+ev.Slug+"/people", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(struct {
		domain.Person
		Joined string `json:"joined,omitempty"` // set for a person of other events, saying what joining them did
	}{p, said})
}

// handleEditPerson sets a person's name, details and role in the event
// (the same fields as adding one, checked the same way, every field
// given): a typo in the list, a participant moved to another group. Their
// open connections, which carry their name, label and roles, are checked
// again after a change.
func (a *app) handleEditPerson(w http.ResponseWriter, r *http.Request) {
	ev := authOf(r).scope.event
	pid, err := personOf(r)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	// Of this event, or not found alike: nothing of a person of other
	// events only is read, nor whether the id exists.
	ms, err := a.store.Memberships(r.Context(), pid, ev.ID)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	var stored domain.Person
	if len(ms) > 0 {
		stored, err = a.store.Person(r.Context(), pid)
	}
	if len(ms) == 0 || domain.ErrorCode(err) == domain.NotFound {
		a.answerErr(w, r, domain.Errorf(domain.NotFound, "Person %d has no role in this event.", pid))
		return
	}
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	row, base, ok := a.personRow(w, r, &stored)
	if !ok {
		return
	}
	p, changed, err := a.store.UpdateMember(r.Context(), actor(r), ev.ID, pid, row.Person, row.Role, row.WorkshopID, base)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	if changed {
		a.reauthorize(r.Context(), pid)
	}
	if isForm(r) {
		http.Redirect(w, r, "/events/"+ev.Slug+"/people", http.StatusSeeOther)
		return
	}
	writeJSON(w, p)
}

// handleRemovePerson takes a person's roles in the event away (and the
// event's links of theirs); their open connections are checked again, so
// their screens leave the event's rooms at once.
func (a *app) handleRemovePerson(w http.ResponseWriter, r *http.Request) {
	ev := authOf(r).scope.event
	pid, err := personOf(r)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	p, err := a.store.RemoveMember(r.Context(), actor(r), ev.ID, pid)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	a.reauthorize(r.Context(), pid)
	if isForm(r) {
		http.Redirect(w, r, "/events/"+ev.Slug+"/people", http.StatusSeeOther)
		return
	}
	writeJSON(w, p)
}

// joined closes the connections a join of a person of other events ended,
// or has those of a staff member checked again, for their new role.
func (a *app) joined(ctx context.Context, j store.Joining) {
	a.endSessions(ctx, j.Sessions...)
	if j.Staff {
		a.reauthorize(ctx, j.PersonID)
	}
}

// answerErr answers a form with a message page and a script with a problem.
func (a *app) answerErr(w http.ResponseWriter, r *http.Request, err error) {
	if isForm(r) {
		var de *domain.Error
		if errors.As(err, &de) {
			if probs, ok := de.Detail.([]store.RowProblem); ok {
				var lines []string
				for _, p := range probs {
					lines = append(lines, fmt.Sprintf("line %d%s: %s", p.Line, map[bool]string{true: ", " + p.Field}[p.Field != ""], p.Message))
				}
				err = &domain.Error{Code: de.Code, Message: de.Message + " " + strings.Join(lines, "; ") + ".", Err: err}
			}
		}
		a.message(w, r, err)
		return
	}
	a.fail(w, r, err)
}

// personView is one row of the people page.
type personView struct {
	Person   domain.Person
	Roles    []string
	Role     string // their role, and its workshop, as the edit form shows them
	Workshop int64
	InviteID int64
	Status   string
	Active   bool
	Version  string // see store.MemberVersion: the edit form's base
}

// inviteStatus words the state of a person's newest link.
func inviteStatus(inv *store.Invite, now time.Time) (string, bool) {
	switch {
	case inv == nil:
		return "no link yet", false
	case inv.RevokedAt != nil:
		return "revoked", false
	case !now.Before(inv.ExpiresAt):
		return "expired", false
	case inv.Once && inv.UsedAt != nil:
		return "used", false
	case inv.UsedAt != nil:
		return "active, used " + inv.UsedAt.UTC().Format("2 Jan 15:04 MST"), true
	}
	return "active, not used yet", true
}

// handlePeoplePage lists the event's people with roles and link status.
func (a *app) handlePeoplePage(w http.ResponseWriter, r *http.Request) { a.peoplePage(w, r, nil, "") }

// peoplePage renders the people page, with what an import did when
// imported is not nil.
func (a *app) peoplePage(w http.ResponseWriter, r *http.Request, imported *store.ImportResult, joined string) {
	ev := authOf(r).scope.event
	people, err := a.store.EventPeople(r.Context(), ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	terms, err := a.termsOf(r.Context(), ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	views := make([]personView, len(people))
	for i, p := range people {
		v := personView{Person: p.Person, Version: store.MemberVersion(p.Person, p.Memberships)}
		for _, m := range p.Memberships {
			role := m.Role
			if m.WorkshopID != nil {
				role += " · " + terms.names[*m.WorkshopID]
			}
			v.Roles = append(v.Roles, role)
		}
		if len(p.Memberships) > 0 {
			m := p.Memberships[0]
			v.Role = m.Role
			if m.WorkshopID != nil {
				v.Workshop = *m.WorkshopID
			}
		}
		v.Status, v.Active = inviteStatus(p.Invite, a.now())
		if p.Invite != nil {
			v.InviteID = p.Invite.ID
		}
		views[i] = v
	}
	ws, err := a.store.Workshops(r.Context(), ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	a.page(w, r, http.StatusOK, "people.html", map[string]any{"Event": ev, "People": views, "Imported": imported, "JoinedOne": joined, "Workshops": ws,
		"RoleChoices": []string{domain.RoleParticipant, domain.RoleRapporteur, domain.RoleObserver, domain.RoleReportAuthor, domain.RoleOrganizer}})
}

// personOf reads the person id of the request's path.
func personOf(r *http.Request) (int64, error) {
	pid, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, domain.Errorf(domain.NotFound, "There is no person %q.", r.PathValue("id"))
	}
	return pid, nil
}

// handleNewInvite issues a new personal link for one person, revoking
// their earlier ones, and returns it (the token is shown only now).
func (a *app) handleNewInvite(w http.ResponseWriter, r *http.Request) {
	ev := authOf(r).scope.event
	pid, err := personOf(r)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	token, hash := auth.NewInviteToken()
	invs, err := a.store.IssueInvites(r.Context(), actor(r), ev.ID, map[int64]string{pid: hash}, a.inviteExpiry(ev))
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	inv, link := invs[pid], a.baseURL+"/signin/"+token
	if isForm(r) {
		p, _ := a.store.Person(r.Context(), pid)
		a.page(w, r, http.StatusOK, "message.html", map[string]any{"Title": "New sign-in link",
			"Message": fmt.Sprintf("The new sign-in link for %s works until %s; earlier links of theirs no longer work. It is shown only now.", p.Name, inv.ExpiresAt.UTC().Format("2 Jan 2006 15:04 MST")),
			"Link":    link, "LinkText": link})
		return
	}
	writeJSON(w, map[string]any{"invite_id": inv.ID, "person_id": pid, "url": link, "expires_at": inv.ExpiresAt})
}

// handleSignOutEverywhere signs a person out on every device (a lost
// tablet): their sessions end, their open connections close at once, and
// their links stop working; an organizer then gives them a new link.
func (a *app) handleSignOutEverywhere(w http.ResponseWriter, r *http.Request) {
	ev := authOf(r).scope.event
	pid, err := personOf(r)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	ids, revoked, err := a.store.SignOutEverywhere(r.Context(), actor(r), ev.ID, pid)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	a.endSessions(r.Context(), ids...)
	if isForm(r) {
		p, _ := a.store.Person(r.Context(), pid)
		a.page(w, r, http.StatusOK, "message.html", map[string]any{"Title": "Signed out everywhere",
			"Message": fmt.Sprintf("%s is signed out on every device (%d sessions ended) and their sign-in links no longer work (%d revoked). Give them a new link or card to sign in again.", p.Name, len(ids), revoked)})
		return
	}
	writeJSON(w, map[string]any{"person_id": pid, "sessions_ended": len(ids), "links_revoked": revoked})
}

// handleRevokeInvite revokes a link.
func (a *app) handleRevokeInvite(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64) // scopeOfInvite checked it
	inv, err := a.store.RevokeInvite(r.Context(), actor(r), id)
	if err != nil {
		a.answerErr(w, r, err)
		return
	}
	if isForm(r) {
		http.Redirect(w, r, "/events/"+authOf(r).scope.event.Slug+"/people", http.StatusSeeOther)
		return
	}
	writeJSON(w, map[string]any{"invite_id": inv.ID, "person_id": inv.PersonID, "revoked_at": inv.RevokedAt})
}

// handleCardsPage offers to print the QR cards. Printing issues new links,
// so it is a POST: a reload or a prefetch of this page changes nothing.
func (a *app) handleCardsPage(w http.ResponseWriter, r *http.Request) {
	a.page(w, r, http.StatusOK, "cards.html", map[string]any{"Event": authOf(r).scope.event})
}

// card is one printed QR card.
type card struct {
	Name  string
	Group string
	QR    template.HTML
	URL   string
}

// handlePrintCards issues a fresh link for every person of the event who
// signs in on a tablet (everyone but organizers and report authors, who
// use their organisation account), revoking their earlier links, and
// renders one card per person: name, group, QR code, link.
func (a *app) handlePrintCards(w http.ResponseWriter, r *http.Request) {
	ev := authOf(r).scope.event
	people, err := a.store.EventPeople(r.Context(), ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	terms, err := a.termsOf(r.Context(), ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	hashes, tokens := map[int64]string{}, map[int64]string{}
	var cards []card
	var ids []int64
	for _, p := range people {
		var groups []string
		tablet := false
		for _, m := range p.Memberships {
			if staffRole(m.Role) {
				continue
			}
			tablet = true
			if m.WorkshopID != nil {
				groups = append(groups, terms.names[*m.WorkshopID])
			} else {
				groups = append(groups, m.Role)
			}
		}
		if !tablet {
			continue
		}
		token, hash := auth.NewInviteToken()
		hashes[p.Person.ID], tokens[p.Person.ID] = hash, token
		ids = append(ids, p.Person.ID)
		cards = append(cards, card{Name: p.Person.Name, Group: strings.Join(groups, ", ")})
	}
	// People the organizer may not give a link to get no card; the page
	// says who and why.
	refused, err := a.store.LinkRefusals(r.Context(), actor(r), ev.ID, ids)
	if err != nil {
		a.message(w, r, err)
		return
	}
	var skipped []string
	if len(refused) > 0 {
		keep, kept := ids[:0], cards[:0]
		for i, pid := range ids {
			if why, ok := refused[pid]; ok {
				skipped = append(skipped, why)
				delete(hashes, pid)
				continue
			}
			keep, kept = append(keep, pid), append(kept, cards[i])
		}
		ids, cards = keep, kept
	}
	// The cards are made before the links are issued: issuing revokes
	// the old cards, so nothing may fail after it.
	for i, pid := range ids {
		link := a.baseURL + "/signin/" + tokens[pid]
		svg, err := auth.QRCodeSVG(link, 0)
		if err != nil {
			a.message(w, r, err)
			return
		}
		cards[i].QR = template.HTML(svg) // our own SVG: shapes only, no text from people
		cards[i].URL = link
	}
	if len(ids) > 0 {
		if _, err := a.store.IssueInvites(r.Context(), actor(r), ev.ID, hashes, a.inviteExpiry(ev)); err != nil {
			a.message(w, r, err)
			return
		}
	}
	a.page(w, r, http.StatusOK, "cards.html", map[string]any{"Event": ev, "Cards": cards, "Printed": true, "Skipped": skipped,
		"Expires": a.inviteExpiry(ev).UTC().Format("2 Jan 2006")})
}
