package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// TestOrganizerEditsAPerson: an organizer fixes a mistyped email and
// moves a participant to another group. The participant's open socket
// is closed to be checked again (4003), and a rejoin of the old group's
// room is refused; the change is in the audit trail. Saving what is
// there already changes nothing and closes nothing. Bad input, another
// person's email and a person of no role here are refused, and change
// nothing.
func TestOrganizerEditsAPerson(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	w0, w1 := f.ws[0], f.ws[1]
	p, token := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Moved Person", Email: "moved@exmaple.fi", Country: "FI", ActorType: "police"}, domain.RoleParticipant, w0.ID)
	moved := mustSignIn(t, f.srv.URL, token, p.ID)
	conn := moved.Dial(t, f.srv.URL)
	if fr := conn.join(t, store.WorkshopRoom(w0.ID), 0); fr.Type != "joined" {
		t.Fatalf("join: %+v", fr)
	}
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	edit := func(id int64, body string) (int, []byte) {
		t.Helper()
		return postAs(t, org.http, fmt.Sprintf("%s/api/events/%s/people/%d", f.srv.URL, f.event.Slug, id), "application/json", body, csrf)
	}
	roles := func() string {
		t.Helper()
		ms, err := f.store.Memberships(ctx, p.ID, f.event.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s@%d", m.Role, *m.WorkshopID))
		}
		return strings.Join(out, ",")
	}
	audits := func() (n int) {
		t.Helper()
		if err := f.store.DB().NewRaw("SELECT count(*) FROM audit_log WHERE action = 'person.update' AND target = ?", fmt.Sprintf("person:%d", p.ID)).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := roles()

	// Refused, and nothing changes.
	for _, c := range []struct {
		what, body string
		status     int
	}{
		{"an unknown workshop", `{"name":"Moved Person","email":"moved@example.fi","workshop":"No such group","role":"participant"}`, http.StatusBadRequest},
		{"no name", `{"email":"moved@example.fi","workshop":"` + fmt.Sprint(w1.ID) + `","role":"participant"}`, http.StatusBadRequest},
		{"a participant without a group", `{"name":"Moved Person","role":"participant"}`, http.StatusBadRequest},
		{"not JSON", `{"name":`, http.StatusBadRequest},
		{"the organizer's email", `{"name":"Moved Person","email":"` + mustEmailOf(t, f, org.id) + `","workshop":"` + fmt.Sprint(w1.ID) + `","role":"participant"}`, http.StatusConflict},
	} {
		if status, body := edit(p.ID, c.body); status != c.status || !strings.Contains(string(body), `"code"`) {
			t.Errorf("%s: %d %s, want %d with a problem", c.what, status, body, c.status)
		}
	}
	otherEvent := f.mustEvent(t, "other", "Other seminar")
	elsewhere, _ := mustInvite(t, f.store, otherEvent, store.PersonInput{Name: "Not here"}, domain.RoleObserver, 0)
	for _, id := range []int64{elsewhere.ID, 1 << 40} {
		// A country this event lacks: still 404, so that nothing of a
		// person of other events only can be learnt through the form.
		for _, body := range []string{`{"name":"Renamed","role":"observer"}`, `{"name":"Renamed","country":"XX","role":"observer"}`} {
			if status, got := edit(id, body); status != http.StatusNotFound || !strings.Contains(string(got), "has no role in this event") {
				t.Errorf("person %d, of no role here, edited with %s: %d %s, want 404", id, body, status, got)
			}
		}
	}
	if got, err := f.store.Person(ctx, elsewhere.ID); err != nil || got.Name != "Not here" {
		t.Errorf("the person of another event is now %q (%v)", got.Name, err)
	}
	if got, err := f.store.Person(ctx, p.ID); err != nil || *got.Email != "moved@exmaple.fi" || roles() != before || audits() != 0 {
		t.Fatalf("the refused edits changed the person: %+v (%v), roles %s", got, err, roles())
	}
	conn.send(t, map[string]any{"type": "ping"})
	conn.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed

	// The typo fixed and the group changed.
	status, body := edit(p.ID, `{"name":"Moved Person","email":"moved@example.fi","country":"FI","actor_type":"police","workshop":"`+fmt.Sprint(w1.ID)+`","role":"participant"}`)
	var got domain.Person
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil || got.Email == nil || *got.Email != "moved@example.fi" {
		t.Fatalf("edit: %d %s (%v)", status, body, err)
	}
	if want := fmt.Sprintf("participant@%d", w1.ID); roles() != want {
		t.Errorf("roles after the move: %s, want %s", roles(), want)
	}
	conn.mustCloseWith(t, hub.CloseAccessChanged, 5*time.Second, "the moved participant's socket")
	again := moved.Dial(t, f.srv.URL)
	if fr := again.join(t, store.WorkshopRoom(w0.ID), 0); fr.Type != "error" {
		t.Errorf("rejoin of the old group's room: %+v, want an error", fr)
	}
	if fr := again.join(t, store.WorkshopRoom(w1.ID), 0); fr.Type != "joined" {
		t.Errorf("join of the new group's room: %+v", fr)
	}
	if n := audits(); n != 1 {
		t.Errorf("%d audit records of the edit, want 1", n)
	}

	// The same again: nothing to change, no record, no socket closed.
	if status, body := edit(p.ID, `{"name":"Moved Person","email":"moved@example.fi","country":"FI","actor_type":"police","workshop":"`+fmt.Sprint(w1.ID)+`","role":"participant"}`); status != http.StatusOK {
		t.Fatalf("the same again: %d %s", status, body)
	}
	again.send(t, map[string]any{"type": "ping"})
	again.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed
	if n := audits(); n != 1 {
		t.Errorf("%d audit records after saving what was there, want 1", n)
	}

	// From the people page's form: a redirect to the page, which shows
	// the new role.
	form := url.Values{"csrf_token": {csrf}, "name": {"Moved Person"}, "email": {"moved@example.fi"}, "country": {"FI"}, "actor_type": {"police"},
		"workshop": {fmt.Sprint(w0.ID)}, "role": {"rapporteur"}}
	status, body = postAs(t, org.http, fmt.Sprintf("%s/api/events/%s/people/%d", f.srv.URL, f.event.Slug, p.ID), "application/x-www-form-urlencoded", form.Encode(), "")
	if status != http.StatusOK || !strings.Contains(string(body), "rapporteur · "+w0.Name) {
		t.Fatalf("edit from the page: %d, the page says:\n%.3000s", status, body)
	}
	again.mustCloseWith(t, hub.CloseAccessChanged, 5*time.Second, "the new rapporteur's socket")
	if n := audits(); n != 2 {
		t.Errorf("%d audit records after the page's edit, want 2", n)
	}
}

// TestACatchUpCarriesTheActorAsItIsNow: after an organizer changes a
// person's country and actor type, a catch-up sends the person's entries
// with the new label (PROTOCOL.md: the actor is the one when the entry is
// sent), on this process and on another. Before, the entries cached since
// they were first read kept the old label, which may be the one that told
// who the person was.
func TestACatchUpCarriesTheActorAsItIsNow(t *testing.T) {
	f, other, w, room := twoProcesses(t)
	ctx := context.Background()
	p, _ := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Relabelled", Email: "relabelled@example.fi", Country: "FI", ActorType: "police"}, domain.RoleParticipant, w.ID)
	if _, err := f.store.CreateFinding(ctx, &p.ID, w.ID, "labelled", store.FindingInput{Title: "Labelled"}); err != nil {
		t.Fatal(err)
	}
	reader := f.MustMember(t, domain.RoleParticipant, w, "SE", "ngo")
	here, there := reader.Dial(t, f.srv.URL), reader.Dial(t, other.URL)
	actorOn := func(c *client) string { // as a catch-up from the start sends it
		t.Helper()
		c.send(t, map[string]any{"type": "join", "room": room, "since": 0})
		a := c.next(t, func(fr frame) bool { return fr.Type == "entry" && fr.OpID == "labelled" }).Actor
		c.next(t, ofType("joined"))
		c.send(t, map[string]any{"type": "leave", "room": room})
		c.next(t, ofType("left"))
		return a
	}
	for _, c := range []*client{here, there} { // now in each process's cache
		if a := actorOn(c); a != "FI · police" {
			t.Fatalf("actor before the change: %q", a)
		}
	}
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	if status, body := postAs(t, org.http, fmt.Sprintf("%s/api/events/%s/people/%d", f.srv.URL, f.event.Slug, p.ID), "application/json",
		`{"name":"Relabelled","email":"relabelled@example.fi","country":"DK","actor_type":"ngo","workshop":"`+fmt.Sprint(w.ID)+`","role":"participant"}`, csrf); status != http.StatusOK {
		t.Fatalf("edit: %d %s", status, body)
	}
	if a := actorOn(here); a != "DK · ngo" {
		t.Errorf("actor in a catch-up on the process that made the change: %q, want DK · ngo", a)
	}
	deadline := time.Now().Add(5 * time.Second) // the other process hears of it through Postgres
	for a := actorOn(there); a != "DK · ngo"; a = actorOn(there) {
		if time.Now().After(deadline) {
			t.Fatalf("actor in a catch-up on the other process: %q, want DK · ngo", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEditingAPersonOfAnotherEvent: a person's name and details are
// shown in every event they are in, so only an organizer of all of them
// may change those; an organizer of this event may still change their
// role here.
func TestEditingAPersonOfAnotherEvent(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	other := f.mustEvent(t, "other", "Other seminar")
	both := f.MustMember(t, domain.RoleParticipant, &f.ws[0], "NO", "ngo")
	if _, err := f.store.DB().ExecContext(ctx, "INSERT INTO memberships (event_id, person_id, role) VALUES (?, ?, 'observer')", other, both.id); err != nil {
		t.Fatal(err)
	}
	// A country this event's taxonomy lacks (the other event's), and an
	// email in capitals (as an organisation account may give it): echoed
	// back as they are, they are no change.
	if _, err := f.store.DB().ExecContext(ctx, "UPDATE people SET country = 'XK', email = 'Both.Events@Example.org' WHERE id = ?", both.id); err != nil {
		t.Fatal(err)
	}
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	api := fmt.Sprintf("%s/api/events/%s/people/%d", f.srv.URL, f.event.Slug, both.id)
	status, body := postAs(t, org.http, api, "application/json", `{"name":"Renamed","country":"NO","actor_type":"ngo","role":"observer"}`, csrf)
	if status != http.StatusForbidden || !strings.Contains(string(body), "other event(s) that you do not organize") {
		t.Fatalf("a new name for a person of another event: %d %s, want 403 saying why", status, body)
	}
	if p, err := f.store.Person(ctx, both.id); err != nil || p.Name != both.name {
		t.Fatalf("the refused edit renamed them: %q (%v)", p.Name, err)
	}
	status, body = postAs(t, org.http, api, "application/json", fmt.Sprintf(`{"name":%q,"email":"Both.Events@Example.org","country":"XK","actor_type":"ngo","role":"observer"}`, both.name), csrf)
	if status != http.StatusOK {
		t.Fatalf("a new role only: %d %s, want 200", status, body)
	}
	if p, err := f.store.Person(ctx, both.id); err != nil || p.Country != "XK" || *p.Email != "Both.Events@Example.org" {
		t.Errorf("their details after a new role: %+v (%v), want them as they were", p, err)
	}
	ms, err := f.store.Memberships(ctx, both.id, f.event.ID)
	if err != nil || len(ms) != 1 || ms[0].Role != domain.RoleObserver || ms[0].WorkshopID != nil {
		t.Fatalf("their roles here: %+v (%v), want observer", ms, err)
	}
	if ms, err := f.store.Memberships(ctx, both.id, other); err != nil || len(ms) != 1 || ms[0].Role != domain.RoleObserver {
		t.Fatalf("their roles in the other event: %+v (%v), want them unchanged", ms, err)
	}
}

// mustEmailOf gives a person of the fixture an email, and returns it.
func mustEmailOf(t *testing.T, f *fixture, id int64) string {
	t.Helper()
	email := fmt.Sprintf("person-%d@example.org", id)
	if _, err := f.store.DB().ExecContext(context.Background(), "UPDATE people SET email = ? WHERE id = ?", email, id); err != nil {
		t.Fatal(err)
	}
	return email
}

// TestOrganizerRemovesAPerson: someone imported by mistake is taken out
// of the event: their socket is closed (4003) and they cannot rejoin the
// group's room, their card for the event stops working, their findings
// keep their author, and the removal is in the audit trail. The event's
// only organizer cannot be removed, nor can a person of no role here.
func TestOrganizerRemovesAPerson(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	w := f.ws[0]
	p, token := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "By mistake", Country: "SE", ActorType: "ngo"}, domain.RoleParticipant, w.ID)
	mistake := mustSignIn(t, f.srv.URL, token, p.ID)
	conn := mistake.Dial(t, f.srv.URL)
	if fr := conn.join(t, store.WorkshopRoom(w.ID), 0); fr.Type != "joined" {
		t.Fatalf("join: %+v", fr)
	}
	if _, err := f.store.CreateFinding(ctx, &p.ID, w.ID, "removed-1", store.FindingInput{Title: "Written before the removal"}); err != nil {
		t.Fatal(err)
	}
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	remove := func(id int64) (int, []byte) {
		t.Helper()
		return postAs(t, org.http, fmt.Sprintf("%s/api/events/%s/people/%d/remove", f.srv.URL, f.event.Slug, id), "application/x-www-form-urlencoded", url.Values{"csrf_token": {csrf}}.Encode(), "")
	}
	if status, body := remove(p.ID); status != http.StatusOK || strings.Contains(string(body), "By mistake") {
		t.Fatalf("remove from the page: %d, the page still lists them or failed:\n%.2000s", status, body)
	}
	conn.mustCloseWith(t, hub.CloseAccessChanged, 5*time.Second, "the removed person's socket")
	if fr := mistake.Dial(t, f.srv.URL).join(t, store.WorkshopRoom(w.ID), 0); fr.Type != "error" {
		t.Errorf("the removed person rejoins the group's room: %+v, want an error", fr)
	}
	if ms, err := f.store.Memberships(ctx, p.ID, f.event.ID); err != nil || len(ms) != 0 {
		t.Errorf("their roles after the removal: %+v (%v), want none", ms, err)
	}
	var revoked bool
	if err := f.store.DB().NewRaw("SELECT revoked_at IS NOT NULL FROM invites WHERE person_id = ?", p.ID).Scan(ctx, &revoked); err != nil || !revoked {
		t.Errorf("their card after the removal: revoked %v (%v), want revoked", revoked, err)
	}
	var author int64
	if err := f.store.DB().NewRaw("SELECT author_id FROM findings WHERE title = 'Written before the removal'").Scan(ctx, &author); err != nil || author != p.ID {
		t.Errorf("the finding's author after the removal: %d (%v), want %d", author, err, p.ID)
	}
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM audit_log WHERE action = 'person.remove' AND target = ?", fmt.Sprintf("person:%d", p.ID)).Scan(ctx, &n); err != nil || n != 1 {
		t.Errorf("%d audit records of the removal (%v), want 1", n, err)
	}
	if status, _ := remove(p.ID); status != http.StatusNotFound {
		t.Errorf("removed again: %d, want 404", status)
	}
	// The organizers but one removed; then that one is refused.
	var orgs []int64
	if err := f.store.DB().NewRaw("SELECT person_id FROM memberships WHERE event_id = ? AND role = 'organizer' AND workshop_id IS NULL AND person_id <> ?", f.event.ID, org.id).Scan(ctx, &orgs); err != nil {
		t.Fatal(err)
	}
	for _, id := range orgs {
		if status, body := remove(id); status != http.StatusOK {
			t.Fatalf("remove organizer %d: %d %.300s", id, status, body)
		}
	}
	if status, body := remove(org.id); status != http.StatusConflict || !strings.Contains(string(body), "only organizer") {
		t.Errorf("remove the only organizer: %d %.500s, want 409", status, body)
	}
}

// TestAStaleEditOfAPersonIsRefused: two organizers have the people page
// open; one makes Pia the group's rapporteur, the other, from the page as
// it was, fixes her name. The second edit is refused (409, saying what
// she is now) and changes nothing; made again from the page loaded anew,
// it is saved. An edit without a base (an API client) is taken as before.
func TestAStaleEditOfAPersonIsRefused(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	w := f.ws[0]
	pia, _ := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Pia Virtanenn", Country: "FI", ActorType: "police"}, domain.RoleParticipant, w.ID)
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	pageURL := f.srv.URL + "/events/" + f.event.Slug + "/people"
	csrf := csrfToken(t, org.http, pageURL)
	base := func() string {
		t.Helper()
		resp, err := org.http.Get(pageURL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		i := strings.Index(page, fmt.Sprintf(`action="/api/events/%s/people/%d"`, f.event.Slug, pia.ID))
		if i < 0 {
			t.Fatalf("no edit form of Pia on the page")
		}
		m := regexp.MustCompile(`name="base" value="([0-9a-f]+)"`).FindStringSubmatch(page[i:])
		if m == nil {
			t.Fatalf("Pia's edit form has no base")
		}
		return m[1]
	}
	stale := base()
	edit := func(body string) (int, []byte) {
		t.Helper()
		return postAs(t, org.http, fmt.Sprintf("%s/api/events/%s/people/%d", f.srv.URL, f.event.Slug, pia.ID), "application/json", body, csrf)
	}
	if status, body := edit(fmt.Sprintf(`{"name":"Pia Virtanenn","country":"FI","actor_type":"police","workshop":"%d","role":"rapporteur","base":%q}`, w.ID, stale)); status != http.StatusOK {
		t.Fatalf("the first edit: %d %s", status, body)
	}
	status, body := edit(fmt.Sprintf(`{"name":"Pia Virtanen","country":"FI","actor_type":"police","workshop":"%d","role":"participant","base":%q}`, w.ID, stale))
	if status != http.StatusConflict || !strings.Contains(string(body), `"conflict"`) || !strings.Contains(string(body), "rapporteur") {
		t.Fatalf("the stale edit: %d %s, want 409 saying she is rapporteur now", status, body)
	}
	ms, err := f.store.Memberships(ctx, pia.ID, f.event.ID)
	if p, perr := f.store.Person(ctx, pia.ID); err != nil || perr != nil || len(ms) != 1 || ms[0].Role != domain.RoleRapporteur || p.Name != "Pia Virtanenn" {
		t.Fatalf("after the stale edit: %q, %+v (%v, %v)", p.Name, ms, err, perr)
	}
	if status, body := edit(fmt.Sprintf(`{"name":"Pia Virtanen","country":"FI","actor_type":"police","workshop":"%d","role":"rapporteur","base":%q}`, w.ID, base())); status != http.StatusOK {
		t.Fatalf("the edit made again from the page loaded anew: %d %s", status, body)
	}
	if status, body := edit(fmt.Sprintf(`{"name":"Pia Virtanen","organisation":"Poliisi","country":"FI","actor_type":"police","workshop":"%d","role":"rapporteur"}`, w.ID)); status != http.StatusOK {
		t.Fatalf("an edit without a base: %d %s", status, body)
	}
	if p, err := f.store.Person(ctx, pia.ID); err != nil || p.Name != "Pia Virtanen" || p.Organisation != "Poliisi" {
		t.Fatalf("Pia is %+v (%v)", p, err)
	}
}

// TestABadPersonBodyChangesNothing: a JSON person with a key that is not
// a field (a misspelling an edit would take as a field left out, and
// clear), with more after the object, or sent as another media type is
// refused as invalid, and nothing is added or changed.
func TestABadPersonBodyChangesNothing(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	p, _ := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Pia", Organisation: "Poliisi"}, domain.RoleObserver, 0)
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "police")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	people := f.srv.URL + "/api/events/" + f.event.Slug + "/people"
	for _, c := range []struct{ what, url, ctype, body string }{
		{"an edit with a misspelt field", fmt.Sprintf("%s/%d", people, p.ID), "application/json", `{"name":"Pia","organization":"Poliisi","role":"observer"}`},
		{"an edit with more after it", fmt.Sprintf("%s/%d", people, p.ID), "application/json", `{"name":"Pia","role":"observer"} {"organisation":""}`},
		{"an add with garbage after it", people, "application/json", `{"name":"Trailing","role":"observer"} not json {`},
		{"an add as text", people, "text/plain", `{"name":"Trailing","role":"observer"}`},
	} {
		status, body := postAs(t, org.http, c.url, c.ctype, c.body, csrf)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"code":"invalid"`) {
			t.Errorf("%s: %d %s, want 400 invalid", c.what, status, body)
		}
	}
	if got, err := f.store.Person(ctx, p.ID); err != nil || got.Organisation != "Poliisi" || got.Name != "Pia" {
		t.Errorf("after the refused edits: %+v (%v), want Pia of Poliisi", got, err)
	}
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM people WHERE name = 'Trailing'").Scan(ctx, &n); err != nil || n != 0 {
		t.Errorf("%d people added by refused adds (%v), want none", n, err)
	}
	// A good one still goes through.
	if status, body := postAs(t, org.http, people, "application/json; charset=utf-8", `{"name":"Good","role":"observer"}`, csrf); status != http.StatusCreated {
		t.Errorf("a good add: %d %s", status, body)
	}
}
