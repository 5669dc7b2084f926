package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/demo"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
	"github.com/rapporteur/rapporteur/web"
)

// testIDP is a real OIDC provider (mockoidc) on loopback; its handlers run
// one at a time, since mockoidc's session map is not synchronised.
type testIDP struct {
	m  *mockoidc.MockOIDC
	mu sync.Mutex
	// endSession, set before the server first asks, makes the provider
	// advertise an end_session_endpoint (mockoidc has none) and answer it.
	endSession atomic.Bool
	logout     *httptest.Server // the provider's sign-out page (mockoidc serves only its own routes)
}

func startTestIDP(t *testing.T) *testIDP {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &testIDP{m: m, logout: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><p id=provider>Signed out at the provider</p>")
	}))}
	t.Cleanup(p.logout.Close)
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			defer p.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddMiddleware(p.endSessionMiddleware); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// endSessionMiddleware advertises the provider's sign-out
// (end_session_endpoint, p.logout) once p.endSession is set.
func (p *testIDP) endSessionMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !p.endSession.Load():
			next.ServeHTTP(w, r)
		case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			doc["end_session_endpoint"] = p.logout.URL + "/logout"
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (p *testIDP) env(dsn string) map[string]string {
	return map[string]string{
		"DATABASE_URL": dsn, "OIDC_ISSUER": p.m.Issuer(), "OIDC_CLIENT_ID": p.m.ClientID,
		"OIDC_CLIENT_SECRET": p.m.ClientSecret, "OIDC_ROLES_CLAIM": "groups",
		"OIDC_ROLE_MAP": "rapporteur-admins=organizer,authors=report_author",
	}
}

func (p *testIDP) fastForward(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m.FastForward(d)
}

// browser is a cookie-keeping client that follows redirects by hand, so a
// test sees every response (and every Set-Cookie) on the way.
type browser struct {
	jar  *cookiejar.Jar
	c    *http.Client
	seen []*http.Response
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{jar: jar, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get follows redirects from u and returns the last response's status and body.
func (b *browser) get(t *testing.T, u string) (int, string) {
	t.Helper()
	b.seen = nil
	for range 10 {
		resp, err := b.c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.seen = append(b.seen, resp)
		if resp.StatusCode/100 != 3 {
			return resp.StatusCode, string(body)
		}
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		u = next.String()
	}
	t.Fatalf("too many redirects from %s", u)
	return 0, ""
}

// sessionCookies returns the session cookies set on the way.
func (b *browser) sessionCookies() []*http.Cookie {
	var out []*http.Cookie
	for _, r := range b.seen {
		for _, c := range r.Cookies() {
			if strings.HasSuffix(c.Name, "rapporteur_session") {
				out = append(out, c)
			}
		}
	}
	return out
}

// cookie returns the browser's current value of the session cookie for base.
func (b *browser) cookie(base string) string {
	u, _ := url.Parse(base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "rapporteur_session" {
			return c.Value
		}
	}
	return ""
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// csrfToken reads the CSRF token a signed-in page carries.
func csrfToken(t *testing.T, c *http.Client, pageURL string) string {
	t.Helper()
	resp, err := c.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfMeta.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("%s (%s) carries no CSRF token", pageURL, resp.Status)
	}
	return m[1]
}

func auditCount(t *testing.T, st *store.Store, action string) int {
	t.Helper()
	var n int
	if err := st.DB().NewRaw("SELECT count(*) FROM audit_log WHERE action = ?", action).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOIDCSignInThroughTheServer(t *testing.T) {
	p := startTestIDP(t)
	dsn := pg.NewDB(t)
	f := MustFixture(t, p.env(dsn))
	// A second server process on the same database: sign-outs and role
	// changes made on the first reach the connections it holds.
	second := MustStart(t, map[string]string{"DATABASE_URL": dsn, "NO_DEMO": "1"})
	people := f.srv.URL + "/events/" + f.event.Slug + "/people"

	// The browser first holds a tablet session; staff sign-in replaces it.
	b := newBrowser()
	m := f.MustMember(t, "observer", nil, "FI", "police")
	b.jar.SetCookies(mustURL(f.srv.URL), m.http.Jar.Cookies(mustURL(f.srv.URL)))
	before := b.cookie(f.srv.URL)
	if before == "" {
		t.Fatal("no session before staff sign-in")
	}
	// A page of that session is open: it ends with the session.
	tabletConn := m.Dial(t, f.srv.URL)
	if fr := tabletConn.join(t, fmt.Sprintf("plenary:%d", f.event.ID), 0); fr.Type != "joined" {
		t.Fatalf("join the plenary: %+v", fr)
	}

	p.m.QueueUser(&mockoidc.MockUser{Subject: "staff-1", Email: "aino@example.fi", EmailVerified: true,
		PreferredUsername: "Aino Virtanen", Groups: []string{"rapporteur-admins", "staff"}})
	status, body := b.get(t, f.srv.URL+"/auth/login?next="+url.QueryEscape("/events/"+f.event.Slug+"/people"))
	if status != 200 || !strings.Contains(body, "Signed in as <strong>Aino Virtanen</strong>") || !strings.Contains(body, "People of") {
		t.Fatalf("after sign-in: %d, want the people page (organizer by the roles claim) naming the person:\n%.600s", status, body)
	}
	tabletConn.mustCloseWith(t, hub.CloseUnauthenticated, 5*time.Second, "the replaced session's socket")
	cs := b.sessionCookies()
	if len(cs) != 1 {
		t.Fatalf("session cookies set: %v", cs)
	}
	if c := cs[0]; !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" {
		t.Errorf("session cookie flags: %+v (want HttpOnly, SameSite=Lax, not Secure on http)", c)
	}
	if after := b.cookie(f.srv.URL); after == before || after == "" {
		t.Errorf("session id not rotated at sign-in (%q → %q)", before, after)
	}
	if _, err := f.store.GetSession(context.Background(), auth.HashToken(before)); err == nil {
		t.Error("the previous session still exists after sign-in")
	}
	for _, a := range []string{"signin.oidc", "role.grant"} {
		if auditCount(t, f.store, a) != 1 {
			t.Errorf("audit entries %s: %d, want 1", a, auditCount(t, f.store, a))
		}
	}

	// Another screen of the person signs in (still an organizer: nothing
	// changes) and connects.
	b2 := newBrowser()
	p.m.QueueUser(&mockoidc.MockUser{Subject: "staff-1", Email: "aino@example.fi", EmailVerified: true,
		PreferredUsername: "Aino Virtanen", Groups: []string{"rapporteur-admins", "staff"}})
	if status, body := b2.get(t, f.srv.URL+"/auth/login?next="+url.QueryEscape("/events/"+f.event.Slug+"/people")); status != 200 {
		t.Fatalf("second screen sign-in: %d\n%.300s", status, body)
	}
	other := member{http: &http.Client{Jar: b2.jar}}.Dial(t, f.srv.URL)

	// Sign out: session gone, this browser's hub connections closed, on
	// both processes.
	conn := member{http: &http.Client{Jar: b.jar}}.Dial(t, f.srv.URL)
	connSecond := member{http: &http.Client{Jar: b.jar}}.Dial(t, second.URL)
	otherSecond := member{http: &http.Client{Jar: b2.jar}}.Dial(t, second.URL)
	token := csrfToken(t, b.c, people)
	req, _ := http.NewRequest("POST", f.srv.URL+"/auth/logout", strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	select {
	case <-conn.closed:
	case <-time.After(10 * time.Second):
		t.Error("the person's WebSocket stayed open after sign-out")
	}
	// Well before the other process's minutely check of its sessions.
	connSecond.mustCloseWith(t, hub.CloseUnauthenticated, 5*time.Second, "the signed-out browser's connection to the other process")
	if status, _ := b.get(t, people); status != http.StatusUnauthorized {
		t.Errorf("people page after sign-out: %d, want 401", status)
	}
	// The other screen's session did not end: its connection is still served.
	other.send(t, map[string]any{"type": "ping", "t": "still-here"})
	other.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed

	// signInAsStaff signs b in again, the provider now saying name and
	// only the staff group: the people page is refused to them.
	signInAsStaff := func(name, after string) {
		t.Helper()
		p.m.QueueUser(&mockoidc.MockUser{Subject: "staff-1", Email: "aino@example.fi", EmailVerified: true,
			PreferredUsername: name, Groups: []string{"staff"}})
		status, body := b.get(t, f.srv.URL+"/auth/login?next="+url.QueryEscape("/events/"+f.event.Slug+"/people"))
		if status != http.StatusForbidden || !strings.Contains(body, "Signed in as <strong>"+name+"</strong>") {
			t.Fatalf("people page %s: %d\n%.400s", after, status, body)
		}
	}
	// Removed from the admin group: the next sign-in takes the role back.
	signInAsStaff("Aino V.", "without the admin group")
	// The other screen acted on the old roles: it is told to reconnect, and
	// on its new connection the organizer's room is refused.
	other.mustCloseWith(t, hub.CloseAccessChanged, 10*time.Second, "the other screen, with the revoked role")
	otherSecond.mustCloseWith(t, hub.CloseAccessChanged, 5*time.Second, "the other screen's connection to the other process")
	again := member{http: &http.Client{Jar: b2.jar}}.Dial(t, f.srv.URL)
	again.send(t, map[string]any{"type": "join", "room": "event:" + strconv.FormatInt(f.event.ID, 10), "since": 0})
	if fr := again.next(t, func(f frame) bool { return f.Type == "error" || f.Type == "joined" }); fr.Type != "error" || fr.Code != "forbidden" {
		t.Errorf("joining the event room without the role: %+v, want forbidden", fr)
	}
	if auditCount(t, f.store, "role.revoke") != 1 {
		t.Error("no role.revoke audit entry")
	}

	// A new name from the provider, the roles as they were: the other
	// screen, which showed the person to its rooms by the old name, is
	// told to reconnect too (before, it waited for the minute's check).
	signInAsStaff("Aino Korhonen", "after a new name")
	again.mustCloseWith(t, hub.CloseAccessChanged, 10*time.Second, "the other screen, after a new name")

	var n int
	f.store.DB().NewRaw("SELECT count(*) FROM people WHERE oidc_subject = 'staff-1'").Scan(context.Background(), &n)
	if n != 1 {
		t.Errorf("%d people for one subject, want 1", n)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestOIDCFailuresStartNoSession drives refused sign-ins through the
// server: each answers with a clear message and sets no session cookie.
func TestOIDCFailuresStartNoSession(t *testing.T) {
	p := startTestIDP(t)
	f := MustFixture(t, p.env(pg.NewDB(t)))

	// callbackURL begins a sign-in in b and plays the provider, returning the callback URL.
	callbackURL := func(t *testing.T, b *browser) *url.URL {
		t.Helper()
		resp, err := b.c.Get(f.srv.URL + "/auth/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp, err = b.c.Get(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(u.String(), f.srv.URL+"/auth/callback?") {
			t.Fatalf("provider redirected to %q", resp.Header.Get("Location"))
		}
		return u
	}
	refused := func(t *testing.T, b *browser, u string, want string) {
		t.Helper()
		status, body := b.get(t, u)
		if status != http.StatusUnauthorized || !strings.Contains(body, "Sign-in failed") || !strings.Contains(body, want) {
			t.Errorf("status %d, want 401 with %q:\n%.500s", status, want, body)
		}
		if cs := b.sessionCookies(); len(cs) != 0 || b.cookie(f.srv.URL) != "" {
			t.Errorf("a refused sign-in set session cookies %v", cs)
		}
	}

	t.Run("bad state", func(t *testing.T) {
		b := newBrowser()
		cb := callbackURL(t, b)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		refused(t, b, cb.String(), "does not belong to this browser")
	})
	t.Run("callback in another browser", func(t *testing.T) {
		cb := callbackURL(t, newBrowser())
		refused(t, newBrowser(), cb.String(), "not started in this browser")
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := newBrowser()
		cb := callbackURL(t, b)
		u := mustURL(f.srv.URL)
		attempt := b.jar.Cookies(u)
		if status, _ := b.get(t, cb.String()); status != 200 {
			t.Fatalf("first use of the callback: %d", status)
		}
		// An attacker who captured the callback and the attempt cookie replays both.
		thief := newBrowser()
		thief.jar.SetCookies(u, attempt)
		refused(t, thief, cb.String(), "already used")
	})
	t.Run("expired ID token", func(t *testing.T) {
		b := newBrowser()
		cb := callbackURL(t, b)
		p.fastForward(-2 * time.Hour) // the provider mints the token two hours in the past
		defer p.fastForward(2 * time.Hour)
		refused(t, b, cb.String(), "expired")
	})
	t.Run("provider error", func(t *testing.T) {
		b := newBrowser()
		cb := callbackURL(t, b)
		q := cb.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		cb.RawQuery = q.Encode()
		refused(t, b, cb.String(), "access_denied")
	})
	t.Run("provider error with words of an attacker's", func(t *testing.T) {
		// Anyone can send a browser to the callback with any error text:
		// the page must not show it as the server's words.
		b := newBrowser()
		cb := callbackURL(t, b)
		q := cb.Query()
		q.Del("code")
		q.Set("error", "Call_+1-555-0100_for_help")
		q.Set("error_description", "Your account is locked; call +1 555 0100")
		cb.RawQuery = q.Encode()
		refused(t, b, cb.String(), "an error it did not name")
		if _, body := b.get(t, cb.String()); strings.Contains(body, "555") {
			t.Errorf("the sign-in failure page shows the callback's text:\n%.500s", body)
		}
	})
	if n := auditCount(t, f.store, "signin.oidc"); n != 1 {
		t.Errorf("%d signin.oidc audit entries, want 1 (only the replay's first, good use)", n)
	}
}

func TestNoOIDCConfiguredIsNotOffered(t *testing.T) {
	s := MustStart(t, map[string]string{"DATABASE_URL": pg.NewDB(t)})
	b := newBrowser()
	status, body := b.get(t, s.URL+"/auth/login")
	if status != http.StatusNotFound || !strings.Contains(body, "not offered") {
		t.Fatalf("/auth/login without OIDC: %d %.300s", status, body)
	}
	if _, body := b.get(t, s.URL+"/"); strings.Contains(body, "/auth/login") {
		t.Error("the home page offers staff sign-in without OIDC configured")
	}
}

// TestAProviderThatDoesNotAnswerKeepsNoQueue: while the provider takes
// its requests and never answers, sign-in requests share one discovery
// (not each waiting for all the others before it), and for some seconds
// after it failed they are told at once.
func TestAProviderThatDoesNotAnswerKeepsNoQueue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // taken, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	s := MustStart(t, map[string]string{"DATABASE_URL": pg.NewDB(t), "OIDC_ISSUER": "http://" + ln.Addr().String(), "OIDC_CLIENT_ID": "x"})
	login := func() (int, time.Duration) {
		start := time.Now()
		status, _ := newBrowser().get(t, s.URL+"/auth/login")
		return status, time.Since(start)
	}
	var wg sync.WaitGroup
	took := make([]time.Duration, 3)
	for i := range took {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var status int
			if status, took[i] = login(); status != http.StatusServiceUnavailable {
				t.Errorf("sign-in with the provider silent: %d, want 503", status)
			}
		}()
	}
	wg.Wait()
	if slices.Max(took) > 15*time.Second {
		t.Fatalf("3 sign-ins at once took %v: they waited for each other's discovery", took)
	}
	if status, d := login(); status != http.StatusServiceUnavailable || d > 2*time.Second {
		t.Fatalf("a sign-in right after the discovery failed: %d in %v, want 503 at once", status, d)
	}
}

// TestInviteFlowEndToEnd imports a participant list (a bad file first),
// signs people in with their links and QR cards, and refuses revoked and
// expired links.
func TestInviteFlowEndToEnd(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	org := newBrowser()
	if status, _ := org.get(t, f.srv.Link); status != 200 {
		t.Fatalf("organizer link: %d", status)
	}
	api := f.srv.URL + "/api/events/" + f.event.Slug
	token := csrfToken(t, org.c, f.srv.URL+"/events/"+f.event.Slug+"/people")
	post := postAs
	countPeople := func() int {
		var n int
		if err := f.store.DB().NewRaw("SELECT count(*) FROM people").Scan(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n0 := countPeople()

	bad := "name,email,organisation,country,actor_type,workshop,role\n" +
		"Aino Virtanen,aino@example.fi,Police,FI,police,Workshop 1,participant\n" +
		"Björn,not-an-email,,NO,ngo,Workshop 2,\n" +
		"Sara Lind,sara@example.se,,XX,,Workshop 9,rapporteur\n"
	status, body := post(t, org.c, api+"/people/import", "text/csv", bad, token)
	var prob struct {
		Code    string
		Message string
		Detail  []store.RowProblem
	}
	json.Unmarshal(body, &prob)
	if status != 400 || prob.Code != "invalid" || len(prob.Detail) != 3 {
		t.Fatalf("bad file: %d %s", status, body)
	}
	for _, want := range []store.RowProblem{{Line: 3, Field: "email"}, {Line: 4, Field: "country"}, {Line: 4, Field: "workshop"}} {
		found := false
		for _, d := range prob.Detail {
			found = found || (d.Line == want.Line && d.Field == want.Field && d.Message != "")
		}
		if !found {
			t.Errorf("no problem reported for line %d, field %s: %+v", want.Line, want.Field, prob.Detail)
		}
	}
	if countPeople() != n0 {
		t.Fatal("a bad file imported people")
	}

	good := "Name;Email;Country;Actor type;Workshop;Role\n" +
		"Aino Virtanen;aino@example.fi;FI;Police;Workshop 1;participant\n" +
		"Björn Ødegård;bjorn@example.no;Norway;ngo;workshop 2: labour exploitation and supply chains;rapporteur\n" +
		"Sara Lind;;SE;;;observer\n"
	status, body = post(t, org.c, api+"/people/import", "text/csv; charset=utf-8", good, token)
	if status != 200 || countPeople() != n0+3 {
		t.Fatalf("good file: %d %s", status, body)
	}
	var imported struct {
		People []struct {
			ID      int64
			Name    string
			Country string
		}
	}
	json.Unmarshal(body, &imported)
	if len(imported.People) != 3 || imported.People[1].Country != "NO" {
		t.Fatalf("imported %+v", imported.People)
	}
	// The list again, with a late registration: only she is added; the
	// others are left out as people of the event already, each row named.
	again := good + "Liisa Late;liisa@example.fi;FI;;Workshop 1;participant\n"
	status, body = post(t, org.c, api+"/people/import", "text/csv", again, token)
	var reimport struct {
		Imported int
		Already  []store.RowProblem
	}
	json.Unmarshal(body, &reimport)
	if status != 200 || reimport.Imported != 1 || len(reimport.Already) != 3 || reimport.Already[0].Line != 2 || reimport.Already[2].Field != "name" || countPeople() != n0+4 {
		t.Fatalf("re-import with one new row: %d %s", status, body)
	}
	if auditCount(t, f.store, "people.import") != 2 {
		t.Error("want a people.import audit entry per import that added people")
	}

	// A personal link signs Aino in on a tablet.
	aino := imported.People[0].ID
	status, body = post(t, org.c, fmt.Sprintf("%s/people/%d/invite", api, aino), "application/json", "", token)
	var inv struct {
		InviteID int64 `json:"invite_id"`
		URL      string
	}
	json.Unmarshal(body, &inv)
	if status != 200 || !strings.HasPrefix(inv.URL, f.srv.URL+"/signin/") {
		t.Fatalf("new link: %d %s", status, body)
	}
	tablet := newBrowser()
	if status, page := tablet.get(t, inv.URL); status != 200 || !strings.Contains(page, "Signed in as <strong>Aino Virtanen</strong>") {
		t.Fatalf("link sign-in: %d %.300s", status, page)
	}
	// Reusable on another tablet until revoked.
	if status, _ := newBrowser().get(t, inv.URL); status != 200 {
		t.Fatalf("second tablet: %d", status)
	}
	status, body = post(t, org.c, fmt.Sprintf("%s/invites/%d/revoke", f.srv.URL+"/api", inv.InviteID), "application/json", "", token)
	if status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, page := newBrowser().get(t, inv.URL); status != 401 || !strings.Contains(page, "revoked") {
		t.Fatalf("revoked link: %d %.300s", status, page)
	}
	if auditCount(t, f.store, "invite.revoke") != 1 || auditCount(t, f.store, "signin.link") < 2 {
		t.Error("missing audit entries for revocation or link sign-ins")
	}

	// An expired link is refused.
	tok, hash := auth.NewInviteToken()
	if _, err := f.store.CreateInvite(context.Background(), store.Invite{EventID: f.event.ID, PersonID: aino, TokenHash: hash,
		ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if status, page := newBrowser().get(t, f.srv.URL+"/signin/"+tok); status != 401 || !strings.Contains(page, "expired") {
		t.Fatalf("expired link: %d %.300s", status, page)
	}

	// QR cards: one per tablet person (Liisa too), each a working link; earlier links die.
	status, body = post(t, org.c, f.srv.URL+"/events/"+f.event.Slug+"/cards", "application/x-www-form-urlencoded",
		url.Values{"csrf_token": {token}}.Encode(), "")
	page := string(body)
	if status != 200 || strings.Count(page, `<div class="card">`) != 4 || strings.Count(page, "<svg") != 4 ||
		!strings.Contains(page, "Björn Ødegård") || !strings.Contains(page, "Workshop 2: Labour") {
		t.Fatalf("cards: %d %.800s", status, page)
	}
	links := regexp.MustCompile(`<div class="url">([^<]+)</div>`).FindAllStringSubmatch(page, -1)
	if status, got := newBrowser().get(t, links[0][1]); status != 200 || !strings.Contains(got, "Signed in as") {
		t.Fatalf("card link: %d", status)
	}
	people := org.c
	resp, _ := people.Get(f.srv.URL + "/events/" + f.event.Slug + "/people")
	listing, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(listing), "active, used") || !strings.Contains(string(listing), "not used yet") {
		t.Errorf("people page does not show link status:\n%.1500s", listing)
	}

	// A state-changing request without the CSRF token is refused, even from the organizer.
	status, body = post(t, org.c, api+"/people", "application/json", `{"name":"Sneaky"}`, "")
	if status != 403 || !strings.Contains(string(body), `"code":"csrf"`) {
		t.Fatalf("no CSRF token: %d %s", status, body)
	}
	status, body = post(t, org.c, api+"/people", "application/json", `{"name":"Sneaky"}`, "wrong-token")
	if status != 403 {
		t.Fatalf("wrong CSRF token: %d %s", status, body)
	}
	req, _ := http.NewRequest("POST", api+"/people", strings.NewReader(`{"name":"Sneaky"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth.CSRFHeader, token)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := org.c.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("foreign Origin with the right token: %v %v", err, resp)
	}
	status, body = post(t, org.c, api+"/people", "application/json", `{"name":"Welcome","workshop":"Workshop 3","country":"dk"}`, token)
	if status != 201 || !strings.Contains(string(body), `"country":"DK"`) {
		t.Fatalf("add one with the token: %d %s", status, body)
	}
}

// TestSecureCookiesOnHTTPS checks the session cookie and the CSP of an
// app whose BASE_URL is https (served here over plain http by httptest).
func TestSecureCookiesOnHTTPS(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, pg.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	spec, _ := demo.Spec()
	if _, err := st.CreateEvent(ctx, spec); err != nil {
		t.Fatal(err)
	}
	pages, err := web.Parse()
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(appDeps{store: st, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), baseURL: "https://seminar.example.org", pages: pages})
	link, err := a.organizerLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.routes())
	defer srv.Close()
	resp, err := newBrowser().c.Get(srv.URL + "/signin/" + link[strings.LastIndex(link, "/")+1:])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteLaxMode || !strings.HasPrefix(cs[0].Name, "__Host-") {
		t.Fatalf("https session cookie: %s %+v", resp.Status, cs)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"wss://seminar.example.org", "frame-ancestors 'none'", "script-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
		t.Errorf("security headers missing: %v", resp.Header)
	}
}

// TestOIDCTrustEmail: an email the provider does not say it verified is
// not kept (anyone could claim an address an organizer adds later), unless
// OIDC_TRUST_EMAIL says the provider's addresses are its admins' to give
// (Entra ID sends no email_verified).
func TestOIDCTrustEmail(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprint("trust ", trust), func(t *testing.T) {
			p := startTestIDP(t)
			env := p.env(pg.NewDB(t))
			if trust {
				env["OIDC_TRUST_EMAIL"] = "true"
			}
			f := MustFixture(t, env)
			p.m.QueueUser(&mockoidc.MockUser{Subject: "staff-u", Email: "unverified@example.fi", EmailVerified: false,
				PreferredUsername: "Unverified", Groups: []string{"staff"}})
			b := newBrowser()
			if status, body := b.get(t, f.srv.URL+"/auth/login"); status != 200 || !strings.Contains(body, "Signed in as") {
				t.Fatalf("sign-in: %d %.300s", status, body)
			}
			var email *string
			if err := f.store.DB().NewRaw("SELECT email FROM people WHERE oidc_subject = 'staff-u'").Scan(context.Background(), &email); err != nil {
				t.Fatal(err)
			}
			if kept := email != nil; kept != trust {
				t.Errorf("the unverified email kept: %v, want %v", kept, trust)
			}
		})
	}
}

// TestSignInAttemptsAreBounded: every visit of /auth/login, signed in or
// not, keeps a sign-in in progress; with store.MaxAttempts of them kept,
// a visit is refused (429) and keeps nothing, so no one can fill the
// database with them. Once they expire, sign-ins start again.
func TestSignInAttemptsAreBounded(t *testing.T) {
	p := startTestIDP(t)
	f := MustFixture(t, p.env(pg.NewDB(t)))
	ctx := context.Background()
	count := func() (n int) {
		t.Helper()
		if err := f.store.DB().NewRaw("SELECT count(*) FROM oidc_attempts").Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := f.store.DB().ExecContext(ctx, `INSERT INTO oidc_attempts (state_hash, nonce, verifier, return_to, expires_at)
		SELECT 'filler-' || i, 'n', 'v', '/', now() + interval '10 minutes' FROM generate_series(1, ?) i`, store.MaxAttempts); err != nil {
		t.Fatal(err)
	}
	status, body := newBrowser().get(t, f.srv.URL+"/auth/login")
	if status != http.StatusTooManyRequests || !strings.Contains(body, "too many staff sign-ins") {
		t.Errorf("a sign-in over the bound: %d, want 429:\n%.500s", status, body)
	}
	if n := count(); n != store.MaxAttempts {
		t.Errorf("%d sign-ins kept, want %d", n, store.MaxAttempts)
	}
	// A sign-in the database cannot keep is the server's failure (500,
	// logged), not a refused sign-in (it was 401).
	if _, err := f.store.DB().ExecContext(ctx, "ALTER TABLE oidc_attempts RENAME TO oidc_attempts_gone"); err != nil {
		t.Fatal(err)
	}
	status, _ = newBrowser().get(t, f.srv.URL+"/auth/login")
	if _, err := f.store.DB().ExecContext(ctx, "ALTER TABLE oidc_attempts_gone RENAME TO oidc_attempts"); err != nil {
		t.Fatal(err)
	}
	if status != http.StatusInternalServerError {
		t.Errorf("a sign-in the database cannot keep: %d, want 500", status)
	}
	// Long expired, they are dropped, and a sign-in starts.
	if _, err := f.store.DB().ExecContext(ctx, "UPDATE oidc_attempts SET expires_at = now() - interval '2 hours'"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser()
	resp, err := b.c.Get(f.srv.URL + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || count() != 1 {
		t.Errorf("a sign-in after the others expired: %d, %d kept", resp.StatusCode, count())
	}
}

// TestAPanickedDiscoveryIsAFailure: a discovery that panics is kept as a
// failure, as one that returns an error is: the requests after it are
// told the provider cannot be reached, not handed a client of nil.
func TestAPanickedDiscoveryIsAFailure(t *testing.T) {
	calls := 0
	c := &oidcClient{discover: func(context.Context, auth.OIDCConfig) (*auth.OIDC, error) {
		calls++
		panic("discovery")
	}}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the discovery's panic was swallowed")
			}
		}()
		c.get(context.Background())
	}()
	o, err := c.get(context.Background())
	if o != nil || domain.ErrorCode(err) != domain.Unavailable || calls != 1 {
		t.Fatalf("after a panicked discovery: %v, %v (%d discoveries), want unavailable from memory", o, err, calls)
	}
}
