package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/pgtest"
	"github.com/rapporteur/rapporteur/server/store"
)

// TestSignOutEverywhere: an organizer signs a person out on every device
// (a lost tablet). The person's open socket closes with 4001 at once,
// their browser is signed out, and the link the tablet was opened with no
// longer signs anyone in; someone else stays signed in.
func TestSignOutEverywhere(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	p, token := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Lost tablet", Country: "FI", ActorType: "police"}, domain.RoleParticipant, w.ID)
	lost := mustSignIn(t, f.srv.URL, token, p.ID)
	other := f.MustMember(t, domain.RoleParticipant, w, "SE", "ngo")
	room := store.WorkshopRoom(w.ID)
	lostConn, otherConn := lost.Dial(t, f.srv.URL), other.Dial(t, f.srv.URL)
	for _, c := range []*client{lostConn, otherConn} {
		if fr := c.join(t, room, 0); fr.Type != "joined" {
			t.Fatalf("join: %+v", fr)
		}
	}
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	signOut := func(id int64) *http.Response { t.Helper(); return signOutEverywhere(t, f, org, id) }
	if resp := signOut(p.ID); resp.StatusCode != 200 {
		t.Fatalf("sign out everywhere: %s", resp.Status)
	}
	lostConn.mustCloseWith(t, hub.CloseUnauthenticated, 5*time.Second, "the lost tablet's socket")
	otherConn.send(t, map[string]any{"type": "ping"})
	otherConn.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed
	status := func(c *http.Client, url string) int {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(lost.http, fmt.Sprintf("%s/events/%s/workshops/%d", f.srv.URL, f.event.Slug, w.ID)); got != http.StatusUnauthorized {
		t.Errorf("the lost tablet's browser after the sign-out: %d, want 401", got)
	}
	jar, _ := cookiejar.New(nil)
	if got := status(&http.Client{Jar: jar}, f.srv.URL+"/signin/"+token); got != http.StatusUnauthorized {
		t.Errorf("the tablet's link after the sign-out: %d, want 401", got)
	}
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM audit_log WHERE action = 'person.signout_everywhere'").Scan(context.Background(), &n); err != nil || n != 1 {
		t.Errorf("%d audit entries of the sign-out (%v), want 1", n, err)
	}
	// A person of no role in the event is not found, and nothing changes.
	if resp := signOut(1 << 40); resp.StatusCode != http.StatusNotFound {
		t.Errorf("sign out an unknown person: %s, want 404", resp.Status)
	}

	// A person who is also in another event is signed out there too: only
	// an organizer of both may do it.
	ctx := context.Background()
	otherEvent := f.mustEvent(t, "other", "Other seminar")
	both := f.MustMember(t, domain.RoleParticipant, w, "NO", "ngo")
	if _, err := f.store.DB().ExecContext(ctx, "INSERT INTO memberships (event_id, person_id, role) VALUES (?, ?, 'observer')", otherEvent, both.id); err != nil {
		t.Fatal(err)
	}
	// A card of the other event: it signs in with all their roles too.
	otherToken, otherHash := auth.NewInviteToken()
	if _, err := f.store.CreateInvite(ctx, store.Invite{EventID: otherEvent, PersonID: both.id, TokenHash: otherHash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	bothConn := both.Dial(t, f.srv.URL)
	if resp := signOut(both.id); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign out a person also in an event the organizer does not organize: %s, want 403", resp.Status)
	}
	bothConn.send(t, map[string]any{"type": "ping"})
	bothConn.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed
	if _, err := f.store.DB().ExecContext(ctx, "INSERT INTO memberships (event_id, person_id, role) VALUES (?, ?, 'organizer')", otherEvent, org.id); err != nil {
		t.Fatal(err)
	}
	if resp := signOut(both.id); resp.StatusCode != 200 {
		t.Errorf("sign out by an organizer of both events: %s, want 200", resp.Status)
	}
	bothConn.mustCloseWith(t, hub.CloseUnauthenticated, 5*time.Second, "the socket of the person in both events")
	jar2, _ := cookiejar.New(nil)
	if got := status(&http.Client{Jar: jar2}, f.srv.URL+"/signin/"+otherToken); got != http.StatusUnauthorized {
		t.Errorf("their link of the other event after signing out everywhere: %d, want 401", got)
	}
}

// TestPagesAreNotCached: on a shared tablet the browser must not keep a
// signed-in person's pages (their group's findings, the people list with
// emails) for the back button after a sign-out.
func TestPagesAreNotCached(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	waitSearch(t, f.srv.URL, f.event.Slug) // the search page answers 503 while the index is built
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	for _, path := range []string{
		"/events/" + f.event.Slug + "/people",
		fmt.Sprintf("/events/%s/workshops/%d", f.event.Slug, f.ws[0].ID),
		"/events/" + f.event.Slug + "/search",
		"/events/" + f.event.Slug,
	} {
		resp, err := org.http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %s, Cache-Control %q; want 200 and no-store", path, resp.Status, resp.Header.Get("Cache-Control"))
		}
	}
}

// signOutEverywhere has organizer org sign person id out on every device
// (the people page's button) and returns the answer, its body closed.
func signOutEverywhere(t *testing.T, f *fixture, org member, id int64) *http.Response {
	t.Helper()
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/events/%s/people/%d/signout", f.srv.URL, f.event.Slug, id), nil)
	req.Header.Set(auth.CSRFHeader, csrf)
	resp, err := org.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestSigningInAsAnotherPersonEndsTheFormersConnections: on a shared
// tablet, B opens their own sign-in link in the browser where A is signed
// in with a live page. The sign-in ends A's session, and A's open socket
// closes at once (4001), not at the next check of sessions a minute on:
// until then, what was typed there was saved as A's, and A's group was
// shown there.
func TestSigningInAsAnotherPersonEndsTheFormersConnections(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	a := f.MustMember(t, domain.RoleParticipant, w, "FI", "police")
	conn := a.Dial(t, f.srv.URL)
	if fr := conn.join(t, room, 0); fr.Type != "joined" {
		t.Fatalf("join: %+v", fr)
	}
	_, tokenB := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "B on A's tablet"}, domain.RoleParticipant, f.ws[1].ID)
	resp, err := a.http.Get(f.srv.URL + "/signin/" + tokenB) // A's browser
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("B's sign-in: %s", resp.Status)
	}
	conn.mustCloseWith(t, hub.CloseUnauthenticated, 5*time.Second, "A's socket after B signed in")
}

// TestASessionThatCannotBeReadIsNoSignOut: while the database cannot
// answer for the session (here a lock on the sessions table, and a
// database connection that gives up reading after 2 s), the workshop page
// and the live connection answer 503, not 401: on a 401 the tablet's
// service worker forgets the page it keeps, and the page the room's copy,
// when they are needed most. Once the database answers, the person is
// still signed in.
func TestASessionThatCannotBeReadIsNoSignOut(t *testing.T) {
	f := MustFixture(t, map[string]string{"DATABASE_URL": pgtest.WithParams(pg.NewDB(t), "read_timeout=2s")})
	w := &f.ws[0]
	m := f.MustMember(t, domain.RoleParticipant, w, "DK", "police")
	page := fmt.Sprintf("%s/events/%s/workshops/%d", f.srv.URL, f.event.Slug, w.ID)
	status := func(url string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Origin", f.srv.URL) // as a page of the server sends it
		resp, err := m.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ctx := context.Background()
	tx, err := f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if got := status(page); got != http.StatusServiceUnavailable {
		t.Errorf("the workshop page while the session cannot be read: %d, want 503", got)
	}
	if got := status(f.srv.URL + "/ws"); got != http.StatusServiceUnavailable {
		t.Errorf("the live connection while the session cannot be read: %d, want 503", got)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := status(page); got != http.StatusOK {
		t.Errorf("the workshop page once the database answers: %d, want 200 (still signed in)", got)
	}
}
