package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
	"golang.org/x/text/unicode/norm"
)

// issueLink asks for a new sign-in link of person pid in event slug as
// the organizer c (with its CSRF token), returning the status and link.
func issueLink(t *testing.T, c *http.Client, csrf, base, slug string, pid int64) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/events/%s/people/%d/invite", base, slug, pid), nil)
	req.Header.Set(auth.CSRFHeader, csrf)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		URL string `json:"url"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.URL
}

// postAs sends body to u as c, with the CSRF token when there is one.
func postAs(t *testing.T, c *http.Client, u, ctype, body, csrf string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if csrf != "" {
		req.Header.Set(auth.CSRFHeader, csrf)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestLinksOnlyFromOrganizersOfEveryEvent: a sign-in link starts a
// session with all of a person's roles, in every event. So an organizer
// of one event may not give a link to a person who is also in an event
// they do not organize (it would make them that person there), neither
// one at a time nor on the printed cards, and the attempt issues nothing.
// An organizer of both events may.
func TestLinksOnlyFromOrganizersOfEveryEvent(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	other := f.mustEvent(t, "other", "Other seminar")
	// Both a participant here and an organizer of the other event.
	both := f.MustMember(t, domain.RoleParticipant, &f.ws[0], "NO", "ngo")
	if _, err := f.store.DB().ExecContext(ctx, "INSERT INTO memberships (event_id, person_id, role) VALUES (?, ?, 'organizer')", other, both.id); err != nil {
		t.Fatal(err)
	}
	plain, _ := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Only here", Country: "SE", ActorType: "police"}, domain.RoleParticipant, f.ws[0].ID)
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	invites := func() (n int) {
		t.Helper()
		if err := f.store.DB().NewRaw("SELECT count(*) FROM invites WHERE person_id = ? AND revoked_at IS NULL", both.id).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := invites()

	if status, link := issueLink(t, org.http, csrf, f.srv.URL, f.event.Slug, both.id); status != http.StatusForbidden || link != "" {
		t.Fatalf("link for a person of another event: %d %q, want 403 and no link", status, link)
	}
	if got := invites(); got != before {
		t.Errorf("the refused link changed the person's links: %d live, want %d", got, before)
	}
	if status, _ := issueLink(t, org.http, csrf, f.srv.URL, f.event.Slug, plain.ID); status != http.StatusOK {
		t.Errorf("link for a person of this event only: %d, want 200", status)
	}

	// The cards: one for everyone but that person, and the page says why.
	status, body := postAs(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/cards", "application/x-www-form-urlencoded",
		url.Values{"csrf_token": {csrf}}.Encode(), "")
	page := string(body)
	if status != http.StatusOK || !strings.Contains(page, "No card for:") || !strings.Contains(page, "other event(s) that you do not organize") {
		t.Fatalf("cards: %d, want the page to name the person without a card:\n%.800s", status, page)
	}
	if strings.Count(page, `<div class="card">`) == 0 {
		t.Errorf("cards: none printed for the people of this event only")
	}
	if got := invites(); got != before {
		t.Errorf("the cards gave the person of another event a link: %d live, want %d", got, before)
	}

	// An organizer of both events may.
	boss := f.MustMember(t, domain.RoleOrganizer, nil, "DK", "coordinator")
	if _, err := f.store.DB().ExecContext(ctx, "INSERT INTO memberships (event_id, person_id, role) VALUES (?, ?, 'organizer')", other, boss.id); err != nil {
		t.Fatal(err)
	}
	bossCSRF := csrfToken(t, boss.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	if status, link := issueLink(t, boss.http, bossCSRF, f.srv.URL, f.event.Slug, both.id); status != http.StatusOK || link == "" {
		t.Errorf("link from an organizer of both events: %d %q, want 200 and a link", status, link)
	}
}

// TestOrganisationSignInEndsSessionsOthersBegan: an organizer may add a
// person with a staff member's email and sign in with a link of theirs
// before the staff member first signs in with their organisation account.
// That first sign-in finds the person by email; the sessions and links
// others made for the person must end there, or the roles the account
// brings would reach the organizer's session. A staff member, once
// linked to their account, gets no sign-in link at all.
func TestOrganisationSignInEndsSessionsOthersBegan(t *testing.T) {
	p := startTestIDP(t)
	f := MustFixture(t, p.env(pg.NewDB(t)))
	side := f.mustEvent(t, "side", "Side seminar")
	sideOrg, tok := mustInvite(t, f.store, side, store.PersonInput{Name: "Side organizer", Country: "FI", ActorType: "ngo"}, domain.RoleOrganizer, 0)
	org := mustSignIn(t, f.srv.URL, tok, sideOrg.ID)
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/side/people")
	status, body := postAs(t, org.http, f.srv.URL+"/api/events/side/people", "application/json",
		`{"name":"Not yet staff","email":"aino@example.fi","role":"observer"}`, csrf)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("add a person: %d %s", status, body)
	}
	var added struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &added); err != nil || added.ID == 0 {
		t.Fatalf("added person: %s (%v)", body, err)
	}
	status, link := issueLink(t, org.http, csrf, f.srv.URL, "side", added.ID)
	if status != http.StatusOK {
		t.Fatalf("link for the added person: %d", status)
	}
	held := newBrowser()
	if status, _ := held.get(t, link); status != http.StatusOK {
		t.Fatalf("sign in with the link: %d", status)
	}
	conn := member{id: added.ID, http: held.c}.Dial(t, f.srv.URL)
	if fr := conn.join(t, fmt.Sprintf("plenary:%d", side), 0); fr.Type != "joined" {
		t.Fatalf("join with the link's session: %+v", fr)
	}
	people := f.srv.URL + "/events/" + f.event.Slug + "/people"

	// The staff member signs in for the first time; the claim makes them
	// an organizer of the main event.
	p.m.QueueUser(&mockoidc.MockUser{Subject: "staff-1", Email: "aino@example.fi", EmailVerified: true,
		PreferredUsername: "Aino Virtanen", Groups: []string{"rapporteur-admins"}})
	staff := newBrowser()
	if status, page := staff.get(t, f.srv.URL+"/auth/login?next="+url.QueryEscape("/events/"+f.event.Slug+"/people")); status != http.StatusOK || !strings.Contains(page, "People of") {
		t.Fatalf("staff sign-in: %d, want the people page:\n%.400s", status, page)
	}
	if status, _ := held.get(t, people); status != http.StatusUnauthorized {
		t.Errorf("the session begun with the organizer's link, after the staff sign-in: %d on the people page, want 401", status)
	}
	conn.mustCloseWith(t, hub.CloseUnauthenticated, 5*time.Second, "the link session's socket")
	if status, _ := newBrowser().get(t, link); status != http.StatusUnauthorized {
		t.Errorf("the organizer's link after the staff sign-in: %d, want 401 (revoked)", status)
	}
	if status, _ := issueLink(t, org.http, csrf, f.srv.URL, "side", added.ID); status != http.StatusForbidden {
		t.Errorf("a new link for a person with an organisation account: %d, want 403", status)
	}
	if status, _ := staff.get(t, people); status != http.StatusOK {
		t.Errorf("the staff member's own session: %d, want 200", status)
	}
}

// TestSignInLinkFromAnotherSiteAsksFirst: a sign-in link opened from
// another site (a planted link: login CSRF) signs nobody in until the
// person confirms on this site's page; the link stays unused meanwhile.
// A post from another site is refused. A link scanned or typed (no
// Sec-Fetch-Site, or none) signs in at once, as before.
func TestSignInLinkFromAnotherSiteAsksFirst(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	p, _ := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Planted", Country: "FI", ActorType: "ngo"}, domain.RoleParticipant, f.ws[0].ID)
	token, hash := auth.NewInviteToken()
	if _, err := f.store.CreateInvite(ctx, store.Invite{EventID: f.event.ID, PersonID: p.ID, TokenHash: hash, Once: true, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	link := f.srv.URL + "/signin/" + token
	victim := newBrowser()
	signedIn := func() bool { return victim.cookie(f.srv.URL) != "" }
	req, _ := http.NewRequest("GET", link, nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := victim.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Sign in on this device as Planted?") || signedIn() {
		t.Fatalf("a link opened from another site: %d, signed in %v, want the question and no session:\n%.500s", resp.StatusCode, signedIn(), page)
	}
	var used bool
	if err := f.store.DB().NewRaw("SELECT used_at IS NOT NULL FROM invites WHERE token_hash = ?", hash).Scan(ctx, &used); err != nil || used {
		t.Fatalf("the one-time link after the question: used %v (%v), want unused", used, err)
	}
	// A browser that sends no Sec-Fetch-Site (Safari before 16.4) is asked too.
	req, _ = http.NewRequest("GET", link, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if resp, err = victim.c.Do(req); err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Sign in on this device as Planted?") || signedIn() {
		t.Fatalf("a link opened by a browser without Sec-Fetch-Site: %d, signed in %v, want the question", resp.StatusCode, signedIn())
	}
	// What is not a token is not echoed into the question's form: a path
	// there would make the button post elsewhere on this site.
	req, _ = http.NewRequest("GET", f.srv.URL+"/signin/..%2F..%2Fevents%2F"+f.event.Slug+"%2Fcards", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err = victim.c.Do(req); err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(page), "<form") {
		t.Fatalf("a path as a token: %d, want 401 and no form:\n%.500s", resp.StatusCode, page)
	}
	// Another site posting the form itself is refused.
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
		req, _ := http.NewRequest("POST", link, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := victim.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || signedIn() {
			t.Errorf("a sign-in posted with %v: %d, signed in %v; want 403 and no session", h, resp.StatusCode, signedIn())
		}
	}
	// The person confirms on our page.
	req, _ = http.NewRequest("POST", link, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", f.srv.URL)
	resp, err = victim.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 || !signedIn() {
		t.Fatalf("the confirmed sign-in: %d, signed in %v", resp.StatusCode, signedIn())
	}
	// Scanned from a card: at once.
	_, tok2 := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Scanned", Country: "SE", ActorType: "police"}, domain.RoleParticipant, f.ws[0].ID)
	scanner := newBrowser()
	req, _ = http.NewRequest("GET", f.srv.URL+"/signin/"+tok2, nil)
	req.Header.Set("Sec-Fetch-Site", "none")
	resp, err = scanner.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 || scanner.cookie(f.srv.URL) == "" {
		t.Errorf("a scanned link: %d, signed in %v; want signed in at once", resp.StatusCode, scanner.cookie(f.srv.URL) != "")
	}
}

// TestSignInLinkBetweenItsTwoTransactions: a sign-in by link redeems the
// link, then starts a session. A one-time link whose session cannot start
// (the database fails) is given back; and a session whose link was
// revoked in between (a sign-out everywhere, a first organisation
// sign-in) does not outlive it. Triggers on sessions stand in for both.
func TestSignInLinkBetweenItsTwoTransactions(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx, db := context.Background(), f.store.DB()
	p, _ := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Between", Country: "FI", ActorType: "ngo"}, domain.RoleParticipant, f.ws[0].ID)
	token, hash := auth.NewInviteToken()
	if _, err := f.store.CreateInvite(ctx, store.Invite{EventID: f.event.ID, PersonID: p.ID, TokenHash: hash, Once: true, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	sessions := func() (n int) {
		t.Helper()
		if err := db.NewRaw("SELECT count(*) FROM sessions WHERE person_id = ?", p.ID).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	link := f.srv.URL + "/signin/" + token

	exec(`CREATE FUNCTION test_no_session() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: no sessions now'; END $$`,
		`CREATE TRIGGER test_no_session BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION test_no_session()`)
	if status, _ := newBrowser().get(t, link); status == http.StatusOK || sessions() != 0 {
		t.Fatalf("sign-in while sessions cannot start: %d, %d sessions; want it refused", status, sessions())
	}
	exec(`DROP TRIGGER test_no_session ON sessions`, `DROP FUNCTION test_no_session()`)
	b := newBrowser()
	if status, _ := b.get(t, link); status != http.StatusOK || b.cookie(f.srv.URL) == "" || sessions() != 1 {
		t.Fatalf("the one-time link once sessions work: %d, %d sessions; want it given back and signed in", status, sessions())
	}

	// Revoked while the session starts.
	token2, hash2 := auth.NewInviteToken()
	if _, err := f.store.CreateInvite(ctx, store.Invite{EventID: f.event.ID, PersonID: p.ID, TokenHash: hash2, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	exec(`CREATE FUNCTION test_revoke() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE invites SET revoked_at = now() WHERE person_id = NEW.person_id; RETURN NEW; END $$`,
		`CREATE TRIGGER test_revoke BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION test_revoke()`)
	if status, page := newBrowser().get(t, f.srv.URL+"/signin/"+token2); status != http.StatusUnauthorized || !strings.Contains(page, "revoked") || sessions() != 1 {
		t.Fatalf("a link revoked while its session started: %d, %d sessions; want 401 and no new session", status, sessions())
	}
}

// TestImportRefusesAWorkshopNameTwoShare: two parts each with a
// "Workshop 1" make "Workshop 1" in a participant list mean neither: the
// row is refused (nothing imported) rather than the person put in one
// group by chance; the full name still works. A form posted to the API
// and refused at the door gets a page, not JSON.
func TestImportRefusesAWorkshopNameTwoShare(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	if _, err := f.store.DB().ExecContext(ctx, `INSERT INTO workshops (event_id, part_id, position, name)
		SELECT event_id, part_id, position + 100, 'Workshop 1: A second group' FROM workshops WHERE id = ?`, f.ws[len(f.ws)-1].ID); err != nil {
		t.Fatal(err)
	}
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	api := f.srv.URL + "/api/events/" + f.event.Slug + "/people/import"
	status, body := postAs(t, org.http, api, "text/csv", "name,country,workshop,role\nAmbiguous,FI,Workshop 1,participant\n", csrf)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "workshop") {
		t.Fatalf("a workshop name two share: %d %s, want 400 naming the workshop", status, body)
	}
	status, body = postAs(t, org.http, api, "text/csv", "name,country,workshop,role\nPlain,FI,Workshop 1: A second group,participant\n", csrf)
	if status != http.StatusOK {
		t.Fatalf("the full name: %d %s", status, body)
	}
	// Signed out, a form posting to the API is refused with a page.
	status, body = postAs(t, http.DefaultClient, api, "application/x-www-form-urlencoded", "x=1", "")
	if status != http.StatusUnauthorized || !strings.Contains(string(body), "<html") {
		t.Errorf("a form refused at the door: %d, want 401 as a page:\n%.200s", status, body)
	}
}

// TestImportOverTheLimitIsTooLarge: a participant list over the 4 MiB
// limit is answered 413 too_large, uploaded from the people page's form
// (where the cut body once read as a missing CSRF token) or sent as a
// CSV body; nothing is imported.
func TestImportOverTheLimitIsTooLarge(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	api := f.srv.URL + "/api/events/" + f.event.Slug + "/people/import"
	big := "name,country,role\n" + strings.Repeat("Someone Somebody,FI,observer\n", (maxFormBody/29)+1000)

	ctype, form := csvUpload(csrf, big)
	if status, body := postAs(t, org.http, api, ctype, form, ""); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a form upload over the limit: %d %.300s, want 413", status, body)
	}
	status, body := postAs(t, org.http, api, "text/csv", big, csrf)
	var prob struct{ Code string }
	json.Unmarshal(body, &prob)
	if status != http.StatusRequestEntityTooLarge || prob.Code != "too_large" {
		t.Errorf("a CSV body over the limit: %d %.300s, want 413 too_large", status, body)
	}
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM people WHERE name = 'Someone Somebody'").Scan(context.Background(), &n); err != nil || n != 0 {
		t.Errorf("%d people imported (%v), want none", n, err)
	}
}

// TestImportFromThePeoplePageSaysWhatItDid: a list uploaded from the
// people page is answered with the page, saying how many people were
// added and which rows were left out as people of the event already (the
// same list uploaded again adds no one).
func TestImportFromThePeoplePageSaysWhatItDid(t *testing.T) {
	f, uploadCSV := mustImportForm(t)
	upload := func() string {
		return uploadCSV("name,email,country,role\nUlla Upload,ulla@example.fi,FI,observer\nOla Upload,,NO,observer\n")
	}
	if page := upload(); !strings.Contains(page, "Imported 2 people.</p>") || strings.Contains(page, "Line 2:") {
		t.Fatalf("first upload's page says:\n%.2000s", page)
	}
	if page := upload(); !strings.Contains(page, "Imported 0 people. 2 rows were left out") || !strings.Contains(page, "Line 3: Ola Upload is in the event already") {
		t.Fatalf("second upload's page says:\n%.2000s", page)
	}
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM people WHERE name LIKE '% Upload'").Scan(context.Background(), &n); err != nil || n != 2 {
		t.Fatalf("%d people (%v), want 2", n, err)
	}
}

// TestImportFromAMacsExport: a list written in Unicode NFD (as a Mac may
// export it: "Å" as "A" and a combining ring) matches the event's terms
// and the people already imported in NFC, and what it adds is stored in
// NFC, so that it matches what is typed later.
func TestImportFromAMacsExport(t *testing.T) {
	f, upload := mustImportForm(t)
	const list = "name,email,country,role\nÅsa Öberg,,Åland Islands,observer\nJörgen Ås,jörgen@example.ax,AX,observer\n"
	if page := upload(list); !strings.Contains(page, "Imported 2 people.</p>") {
		t.Fatalf("the list in NFC: the page says:\n%.2000s", page)
	}
	if !norm.NFC.IsNormalString(list) || norm.NFD.String(list) == list {
		t.Fatal("the list is not in NFC, or the same in NFD")
	}
	if page := upload(norm.NFD.String(list)); !strings.Contains(page, "Imported 0 people. 2 rows were left out") {
		t.Fatalf("the same list in NFD: the page says:\n%.2000s", page)
	}
	if page := upload(norm.NFD.String("name,email,country,role\nÖrjan Åberg,örjan@example.ax,Åland Islands,observer\n")); !strings.Contains(page, "Imported 1 person.</p>") {
		t.Fatalf("a new person in NFD: the page says:\n%.2000s", page)
	}
	var names []string
	if err := f.store.DB().NewRaw("SELECT name || ' ' || coalesce(email, '') FROM people WHERE country = 'AX' ORDER BY id").Scan(context.Background(), &names); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Åsa Öberg ", "Jörgen Ås jörgen@example.ax", "Örjan Åberg örjan@example.ax"}; !slices.Equal(names, want) {
		t.Fatalf("people stored: %q, want %q (in NFC)", names, want)
	}
}

// mustImportForm starts a server with an organizer signed in, and returns
// it with a function that uploads a CSV file from the people page's
// import form and returns the page that answers (failing unless 200).
func mustImportForm(t *testing.T) (*fixture, func(csv string) string) {
	t.Helper()
	f := MustFixture(t, map[string]string{})
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	api := f.srv.URL + "/api/events/" + f.event.Slug + "/people/import"
	return f, func(csv string) string {
		t.Helper()
		ctype, form := csvUpload(csrf, csv)
		status, body := postAs(t, org.http, api, ctype, form, "")
		if status != http.StatusOK {
			t.Fatalf("upload of %q: %d %.300s", csv, status, body)
		}
		return string(body)
	}
}

// csvUpload is the people page's import form with csv as its file (the
// form carries the CSRF token): its content type and body.
func csvUpload(csrf, csv string) (ctype, body string) {
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("csrf_token", csrf)
	fw, _ := mw.CreateFormFile("file", "people.csv")
	fw.Write([]byte(csv))
	mw.Close()
	return mw.FormDataContentType(), form.String()
}

// TestAReturningExpertJoinsOnlyThroughAnOrganizerOfAll: an expert of
// another event, on an imported list or added by hand, becomes a person
// of this event too, but only by an organizer of every event they are
// in. Their card from that event (which its organizers may have kept a
// copy of) stops working, and their open socket and browser are signed
// out, so that no one reaches this event with a link or session made
// before; the page says so. An organizer of this event only is refused,
// and nothing changes.
func TestAReturningExpertJoinsOnlyThroughAnOrganizerOfAll(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	other := f.mustEvent(t, "last-year", "Last year")
	kari, token := mustInvite(t, f.store, other, store.PersonInput{Name: "Kari Nordmann", Email: "kari@example.no", Country: "NO"}, domain.RoleObserver, 0)
	liisa, _ := mustInvite(t, f.store, other, store.PersonInput{Name: "Liisa Virtanen", Email: "liisa@example.fi", Country: "FI"}, domain.RoleObserver, 0)
	tablet := mustSignIn(t, f.srv.URL, token, kari.ID)
	conn := tablet.Dial(t, f.srv.URL)
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	api := f.srv.URL + "/api/events/" + f.event.Slug + "/people"
	list := fmt.Sprintf("name,email,country,workshop,role\nK. Nordmann,KARI@example.no,NO,%d,participant\nNew Person,new@example.se,SE,%d,participant\n", f.ws[0].ID, f.ws[0].ID)
	inEvent := func(id int64) int {
		t.Helper()
		ms, err := f.store.Memberships(ctx, id, f.event.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}

	// An organizer of this event only.
	ctype, form := csvUpload(csrf, list)
	if status, body := postAs(t, org.http, api+"/import", ctype, form, ""); status != http.StatusBadRequest || !strings.Contains(string(body), "that you do not organize") {
		t.Fatalf("import by an organizer of this event only: %d %.1000s; want 400 saying why", status, body)
	}
	add := `{"name":"Liisa V.","email":"liisa@example.fi","role":"observer"}`
	if status, body := postAs(t, org.http, api, "application/json", add, csrf); status != http.StatusForbidden || !strings.Contains(string(body), "that you do not organize") {
		t.Fatalf("added by hand by an organizer of this event only: %d %s; want 403 saying why", status, body)
	}
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM people WHERE email = 'new@example.se'").Scan(ctx, &n); err != nil || n != 0 || inEvent(kari.ID)+inEvent(liisa.ID) != 0 {
		t.Fatalf("the refused import and add changed the event: %d new people (%v)", n, err)
	}
	conn.send(t, map[string]any{"type": "ping"})
	conn.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed
	workshopPage := fmt.Sprintf("%s/events/%s/workshops/%d", f.srv.URL, f.event.Slug, f.ws[0].ID)
	statusOf := func(c *http.Client, u string) (int, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, _ := statusOf(tablet.http, workshopPage); status != http.StatusForbidden {
		t.Fatalf("Kari's browser before the join, on the group's page: %d, want 403", status)
	}

	// Once the organizer organizes last year's event too.
	if _, err := f.store.DB().ExecContext(ctx, "INSERT INTO memberships (event_id, person_id, role) VALUES (?, ?, 'organizer')", other, org.id); err != nil {
		t.Fatal(err)
	}
	ctype, form = csvUpload(csrf, list)
	status, body := postAs(t, org.http, api+"/import", ctype, form, "")
	if page := string(body); status != http.StatusOK || !strings.Contains(page, "Imported 2 people.") ||
		!strings.Contains(page, "1 of the people imported was a person of another event") ||
		!strings.Contains(page, "kari@example.no is Kari Nordmann, a person already on this server") || !strings.Contains(page, "revoked (1)") {
		t.Fatalf("import by an organizer of both events: %d, the page says:\n%.3000s", status, page)
	}
	conn.mustCloseWith(t, hub.CloseUnauthenticated, 5*time.Second, "Kari's socket")
	if status, _ := statusOf(tablet.http, workshopPage); status != http.StatusUnauthorized { // her group's now
		t.Errorf("Kari's browser after the join: %d, want 401", status)
	}
	jar, _ := cookiejar.New(nil)
	if status, page := statusOf(&http.Client{Jar: jar}, f.srv.URL+"/signin/"+token); status != http.StatusUnauthorized || !strings.Contains(page, "revoked") {
		t.Errorf("Kari's card of last year after the join: %d, want 401 saying it was revoked:\n%.2000s", status, page)
	}
	if p, err := f.store.Person(ctx, kari.ID); err != nil || p.Name != "Kari Nordmann" || inEvent(kari.ID) != 1 {
		t.Errorf("Kari is %q (%v) with %d roles here; want her name kept and 1 role", p.Name, err, inEvent(kari.ID))
	}

	// By hand: the JSON answer says what the join did.
	status, body = postAs(t, org.http, api, "application/json", add, csrf)
	var got struct {
		ID     int64
		Name   string
		Joined string
	}
	if err := json.Unmarshal(body, &got); status != http.StatusCreated || err != nil || got.ID != liisa.ID || got.Name != "Liisa Virtanen" || !strings.Contains(got.Joined, "signed out") {
		t.Fatalf("Liisa added by hand: %d %s (%v); want her, as she is, and what the join did", status, body, err)
	}
	if err := f.store.DB().NewRaw("SELECT count(*) FROM audit_log WHERE action = 'person.join' AND actor_id = ?", org.id).Scan(ctx, &n); err != nil || n != 2 {
		t.Errorf("%d audit records of joins (%v), want 2", n, err)
	}
}

// TestJoiningAStaffMemberKeepsThemSignedIn: a person who signs in with an
// organisation account has no links, and only sessions of that account,
// so joining them to another event leaves them signed in; their open
// socket is closed with 4003, to resume under the new role.
func TestJoiningAStaffMemberKeepsThemSignedIn(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	other := f.mustEvent(t, "last-year", "Last year")
	staff, token := mustInvite(t, f.store, other, store.PersonInput{Name: "Staff Member", Email: "staff@example.org"}, domain.RoleOrganizer, 0)
	laptop := mustSignIn(t, f.srv.URL, token, staff.ID)
	// As if their first organisation sign-in had come since (which revokes
	// their links): a staff member's sessions are their account's.
	if _, err := f.store.DB().ExecContext(ctx, "UPDATE people SET oidc_issuer = 'https://idp.example', oidc_subject = 'staff-1' WHERE id = ?", staff.ID); err != nil {
		t.Fatal(err)
	}
	conn := laptop.Dial(t, f.srv.URL)
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	if _, err := f.store.DB().ExecContext(ctx, "INSERT INTO memberships (event_id, person_id, role) VALUES (?, ?, 'organizer')", other, org.id); err != nil {
		t.Fatal(err)
	}
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	status, body := postAs(t, org.http, f.srv.URL+"/api/events/"+f.event.Slug+"/people", "application/json", `{"name":"Staff","email":"staff@example.org","role":"report_author"}`, csrf)
	if status != http.StatusCreated || !strings.Contains(string(body), "they sign in with their organisation account") {
		t.Fatalf("the staff member added: %d %s", status, body)
	}
	conn.mustCloseWith(t, hub.CloseAccessChanged, 5*time.Second, "the staff member's socket")
	resp, err := laptop.http.Get(fmt.Sprintf("%s/events/%s/workshops/%d", f.srv.URL, f.event.Slug, f.ws[0].ID)) // a group's drafts: theirs to read now
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the staff member's browser after the join, on a group's page: %d, want 200", resp.StatusCode)
	}
}
