package main

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// The roles of the permission tests: every role of auth.Roles, with the
// workshop roles in group A, and a participant of group B to show that
// groups are walled off from each other.
const (
	rOrg   = "organizer"
	rRapA  = "rapporteur(A)"
	rPartA = "participant(A)"
	rPartB = "participant(B)"
	rAuth  = "report_author"
	rObs   = "observer"
	rPub   = "public"
)

var permRoles = []string{rOrg, rRapA, rPartA, rPartB, rAuth, rObs, rPub}

// everyone and signedIn are role sets for the tables below.
func everyone() []string { return permRoles }
func signedIn() []string { return permRoles[:len(permRoles)-1] }

// permWho is one signed-in role of the test with its browser and CSRF token.
type permWho struct {
	m    member
	csrf string
}

// TestRoutesAreAllGuarded reads routes.go: every route is registered
// through a.guard with a declared access, and each has a row in
// TestPermissionTableOverHTTP (so a new route cannot skip either).
func TestRoutesAreAllGuarded(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	ast.Inspect(file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || len(call.Args) != 2 {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "mux" {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok {
			t.Errorf("%s: route pattern is not a literal", fset.Position(call.Pos()))
			return true
		}
		pattern, _ := strconv.Unquote(lit.Value)
		patterns = append(patterns, pattern)
		g, ok := call.Args[1].(*ast.CallExpr)
		gs, ok2 := func() (*ast.SelectorExpr, bool) {
			if !ok {
				return nil, false
			}
			s, ok := g.Fun.(*ast.SelectorExpr)
			return s, ok
		}()
		if sel.Sel.Name != "Handle" || !ok2 || gs.Sel.Name != "guard" {
			t.Errorf("%s: route %q is not registered as mux.Handle(pattern, a.guard(access, handler))", fset.Position(call.Pos()), pattern)
		}
		return true
	})
	covered := map[string]bool{}
	for _, c := range httpPermCases() {
		covered[c.route] = true
	}
	for _, p := range patterns {
		if !covered[p] {
			t.Errorf("route %q has no row in the permission test (httpPermCases)", p)
		}
	}
	if len(patterns) < 20 {
		t.Fatalf("found only %d routes in routes.go", len(patterns))
	}
}

// permFixture is the world of a permission test: a server, one person
// per role, a finding of each release state in group A and a draft in B.
type permFixture struct {
	*fixture
	who          map[string]permWho
	a, b         domain.Workshop
	draftA       domain.Finding
	draftB       domain.Finding
	sharedA      domain.Finding
	releasedA    domain.Finding
	victimPerson int64 // a person whose links the table's invite routes work on
	removable    int64 // a person the table's remove route takes out of the event
	inviteID     int64
}

func mustPermFixture(t *testing.T) *permFixture {
	f := &permFixture{fixture: MustFixture(t, map[string]string{}), who: map[string]permWho{}}
	waitSearch(t, f.srv.URL, f.event.Slug) // the search routes answer 503 while the index is built
	f.a, f.b = f.ws[0], f.ws[1]
	add := func(role string, w *domain.Workshop) permWho {
		m := f.MustMember(t, role, w, "FI", "police")
		return permWho{m: m, csrf: csrfToken(t, m.http, f.srv.URL+"/events/"+f.event.Slug)}
	}
	f.who[rOrg] = add(domain.RoleOrganizer, nil)
	f.who[rRapA] = add(domain.RoleRapporteur, &f.a)
	f.who[rPartA] = add(domain.RoleParticipant, &f.a)
	f.who[rPartB] = add(domain.RoleParticipant, &f.b)
	f.who[rAuth] = add(domain.RoleReportAuthor, nil)
	f.who[rObs] = add(domain.RoleObserver, nil)

	ctx := context.Background()
	mk := func(w domain.Workshop, title, state string) domain.Finding {
		ap, err := f.store.CreateFinding(ctx, nil, w.ID, "perm-"+title, store.FindingInput{Title: title})
		if err != nil {
			t.Fatal(err)
		}
		fs, _ := f.store.WorkshopFindings(ctx, w.ID)
		var out domain.Finding
		for _, x := range fs {
			if x.Title == title {
				out = x
			}
		}
		if state != domain.Draft {
			if _, err := f.store.SetFindingRelease(ctx, nil, w.ID, "perm-rel-"+title, out.ID, state); err != nil {
				t.Fatal(err)
			}
		}
		_ = ap
		return out
	}
	f.draftA = mk(f.a, "Draft of A", domain.Draft)
	f.draftB = mk(f.b, "Draft of B", domain.Draft)
	f.sharedA = mk(f.a, "Shared by A", domain.Shared)
	f.releasedA = mk(f.a, "Released by A", domain.Released)
	p, _, err := f.store.AddMember(ctx, nil, f.event.ID, store.PersonInput{Name: "Link holder"}, domain.RoleParticipant, f.a.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.victimPerson = p.ID
	gone, _, err := f.store.AddMember(ctx, nil, f.event.ID, store.PersonInput{Name: "To be removed"}, domain.RoleObserver, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.removable = gone.ID
	invs, err := f.store.IssueInvites(ctx, nil, f.event.ID, map[int64]string{p.ID: auth.HashToken("perm-test-token")}, f.event.CreatedAt.AddDate(10, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	f.inviteID = invs[p.ID].ID
	return f
}

// httpPermCase is one route of the table: a concrete request and the
// roles that may make it; everyone else is refused (401 signed out, 403
// or, for rows that hide what is not theirs, 404 signed in).
type httpPermCase struct {
	route   string // the pattern in routes.go
	name    string
	method  string
	path    func(f *permFixture) string
	body    func(f *permFixture, role string) (ctype, body string)
	allowed []string
	denied  int // status for a signed-in role not allowed (0: 403)
	// okStatus is the status of an allowed request (0: any 2xx or 3xx).
	okStatus int
}

func httpPermCases() []httpPermCase {
	slug := func(f *permFixture) string { return f.event.Slug }
	get := func(route, name string, path func(f *permFixture) string, allowed []string) httpPermCase {
		return httpPermCase{route: route, name: name, method: "GET", path: path, allowed: allowed}
	}
	fixed := func(p string) func(*permFixture) string { return func(*permFixture) string { return p } }
	ev := func(suffix string) func(*permFixture) string {
		return func(f *permFixture) string { return "/api/events/" + slug(f) + suffix }
	}
	page := func(suffix string) func(*permFixture) string {
		return func(f *permFixture) string { return "/events/" + slug(f) + suffix }
	}
	finding := func(pick func(f *permFixture) domain.Finding) func(*permFixture) string {
		return func(f *permFixture) string { return fmt.Sprintf("/events/%s/findings/%d", slug(f), pick(f).ID) }
	}
	org := []string{rOrg}
	return []httpPermCase{
		get("GET /healthz", "health", fixed("/healthz"), everyone()),
		get("GET /readyz", "ready", fixed("/readyz"), everyone()),
		get("GET /api/events", "events", fixed("/api/events"), everyone()),
		get("GET /api/events/{slug}", "event", ev(""), everyone()),
		get("GET /api/events/{slug}/parts", "parts", ev("/parts"), everyone()),
		get("GET /api/events/{slug}/workshops", "workshops", ev("/workshops"), everyone()),
		get("GET /api/events/{slug}/side-events", "side events", ev("/side-events"), everyone()),
		get("GET /api/events/{slug}/taxonomy", "taxonomy", ev("/taxonomy"), everyone()),
		get("GET /api/search", "search (filtered per viewer)", fixed("/api/search?q=x"), everyone()),
		get("GET /api/search.csv", "search export (filtered per viewer)", fixed("/api/search.csv?q=x"), everyone()),
		{route: "/api/", name: "unknown API route", method: "GET", path: fixed("/api/nothing"), allowed: everyone(), okStatus: 404},
		{route: "/", name: "unknown page", method: "GET", path: fixed("/nothing"), allowed: everyone(), okStatus: 404},
		get("GET /{$}", "home", fixed("/"), everyone()),
		get("GET /events/{slug}", "programme", page(""), everyone()),
		get("GET /events/{slug}/search", "search page", page("/search"), everyone()),
		get("GET /events/{slug}/workshops/{id}", "group A's live page", func(f *permFixture) string { return fmt.Sprintf("/events/%s/workshops/%d", slug(f), f.a.ID) },
			[]string{rOrg, rRapA, rPartA, rAuth}),
		get("GET /events/{slug}/workshops/{id}", "group B's live page", func(f *permFixture) string { return fmt.Sprintf("/events/%s/workshops/%d", slug(f), f.b.ID) },
			[]string{rOrg, rPartB, rAuth}),
		get("GET /api/events/{slug}/workshops/{id}/my-votes", "own votes in group A", func(f *permFixture) string {
			return fmt.Sprintf("/api/events/%s/workshops/%d/my-votes", slug(f), f.a.ID)
		},
			[]string{rOrg, rRapA, rPartA, rAuth}),
		get("GET /api/events/{slug}/workshops/{id}/my-votes", "own votes in group B", func(f *permFixture) string {
			return fmt.Sprintf("/api/events/%s/workshops/%d/my-votes", slug(f), f.b.ID)
		},
			[]string{rOrg, rPartB, rAuth}),
		get("GET /events/{slug}/findings/{id}", "released finding", finding(func(f *permFixture) domain.Finding { return f.releasedA }), everyone()),
		{route: "GET /events/{slug}/findings/{id}", name: "shared finding", method: "GET", denied: 404,
			path: finding(func(f *permFixture) domain.Finding { return f.sharedA }), allowed: []string{rOrg, rRapA, rPartA, rPartB, rAuth, rObs}},
		{route: "GET /events/{slug}/findings/{id}", name: "group A's draft", method: "GET", denied: 404,
			path: finding(func(f *permFixture) domain.Finding { return f.draftA }), allowed: []string{rOrg, rRapA, rPartA, rAuth}},
		{route: "GET /events/{slug}/findings/{id}", name: "group B's draft", method: "GET", denied: 404,
			path: finding(func(f *permFixture) domain.Finding { return f.draftB }), allowed: []string{rOrg, rPartB, rAuth}},
		get("GET /events/{slug}/people", "people page", page("/people"), org),
		get("GET /events/{slug}/cards", "cards page", page("/cards"), org),
		{route: "POST /events/{slug}/cards", name: "print cards", method: "POST", path: page("/cards"), allowed: org, okStatus: 200,
			body: func(f *permFixture, role string) (string, string) {
				return "application/x-www-form-urlencoded", url.Values{"csrf_token": {f.csrfOf(role)}}.Encode()
			}},
		{route: "POST /api/events/{slug}/people/import", name: "import", method: "POST", path: ev("/people/import"), allowed: org, okStatus: 200,
			body: func(f *permFixture, role string) (string, string) {
				return "text/csv", "name,workshop\nImported by " + role + ",Workshop 1\n"
			}},
		{route: "POST /api/events/{slug}/people", name: "add a person", method: "POST", path: ev("/people"), allowed: org, okStatus: 201,
			body: func(f *permFixture, role string) (string, string) {
				return "application/json", `{"name":"Added by ` + role + `","role":"observer"}`
			}},
		{route: "POST /api/events/{slug}/people/{id}", name: "edit a person", method: "POST", allowed: org, okStatus: 200,
			path: func(f *permFixture) string {
				return fmt.Sprintf("/api/events/%s/people/%d", slug(f), f.victimPerson)
			},
			body: func(f *permFixture, role string) (string, string) {
				return "application/json", fmt.Sprintf(`{"name":"Link holder","workshop":"%d","role":"participant"}`, f.a.ID)
			}},
		{route: "POST /api/events/{slug}/people/{id}/remove", name: "remove a person", method: "POST", allowed: org, okStatus: 200,
			path: func(f *permFixture) string {
				return fmt.Sprintf("/api/events/%s/people/%d/remove", slug(f), f.removable)
			}},
		{route: "POST /api/events/{slug}/people/{id}/invite", name: "new link", method: "POST", allowed: org, okStatus: 200,
			path: func(f *permFixture) string {
				return fmt.Sprintf("/api/events/%s/people/%d/invite", slug(f), f.victimPerson)
			}},
		{route: "POST /api/events/{slug}/people/{id}/signout", name: "sign out everywhere", method: "POST", allowed: org, okStatus: 200,
			path: func(f *permFixture) string {
				return fmt.Sprintf("/api/events/%s/people/%d/signout", slug(f), f.victimPerson)
			}},
		{route: "POST /api/invites/{id}/revoke", name: "revoke a link", method: "POST", allowed: org, okStatus: 200,
			path: func(f *permFixture) string { return fmt.Sprintf("/api/invites/%d/revoke", f.inviteID) }},
		{route: "GET /signin/{token}", name: "unknown link (refused for all)", method: "GET", path: fixed("/signin/nope"), allowed: everyone(), okStatus: 401},
		{route: "POST /signin/{token}", name: "unknown link, confirmed (refused for all)", method: "POST", path: fixed("/signin/nope"), allowed: everyone(), okStatus: 401},
		{route: "GET /auth/login", name: "staff sign-in not configured", method: "GET", path: fixed("/auth/login"), allowed: everyone(), okStatus: 404},
		{route: "GET /auth/callback", name: "callback, staff sign-in not configured", method: "GET", path: fixed("/auth/callback?state=x&code=y"), allowed: everyone(), okStatus: 404},
		{route: "GET /auth/signed-out", name: "after a sign-out, staff sign-in not configured: home", method: "GET", path: fixed("/auth/signed-out"), allowed: everyone(), okStatus: 303},
		{route: "POST /auth/logout", name: "sign-out", method: "POST", path: fixed("/auth/logout"), allowed: everyone(), okStatus: 303,
			body: func(f *permFixture, role string) (string, string) {
				return "application/x-www-form-urlencoded", url.Values{"csrf_token": {f.csrfOf(role)}}.Encode()
			}},
		{route: "GET /ws", name: "WebSocket without upgrade or Origin", method: "GET", path: fixed("/ws"), allowed: nil, denied: 403},
		get("GET /static/", "static file", fixed("/static/style.css"), everyone()),
		get("GET /sw.js", "service worker", fixed("/sw.js"), everyone()),
	}
}

func (f *permFixture) csrfOf(role string) string { return f.who[role].csrf }

// TestPermissionTableOverHTTP makes every route's request as every role.
func TestPermissionTableOverHTTP(t *testing.T) {
	f := mustPermFixture(t)
	for _, c := range httpPermCases() {
		for _, role := range permRoles {
			if c.route == "POST /auth/logout" && role != rPub {
				continue // signing out would end the role's session for the rest of the table; TestOIDCSignInThroughTheServer covers it
			}
			t.Run(c.name+"/"+role, func(t *testing.T) {
				client := http.DefaultClient
				csrf := ""
				if role != rPub {
					client, csrf = f.who[role].m.http, f.who[role].csrf
				}
				var body io.Reader
				ctype := ""
				if c.body != nil {
					var b string
					ctype, b = c.body(f, role)
					body = strings.NewReader(b)
				}
				req, _ := http.NewRequest(c.method, f.srv.URL+c.path(f), body)
				if ctype != "" {
					req.Header.Set("Content-Type", ctype)
				}
				if c.method != "GET" && csrf != "" {
					req.Header.Set(auth.CSRFHeader, csrf)
				}
				noFollow := *client
				noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
				resp, err := noFollow.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				allowed := slices.Contains(c.allowed, role)
				var want []int
				switch {
				case allowed && c.okStatus != 0:
					want = []int{c.okStatus}
				case allowed:
					want = []int{200, 201, 303}
				case role == rPub && c.denied == 0:
					want = []int{401}
				case c.denied != 0:
					want = []int{c.denied}
				default:
					want = []int{403}
				}
				if !slices.Contains(want, resp.StatusCode) {
					t.Errorf("%s %s as %s: %d, want %v\n%.300s", c.method, c.path(f), role, resp.StatusCode, want, got)
				}
			})
		}
	}
}

// hubPermOps is every op kind of live.go's opAction with a well-formed
// body, and the roles allowed to make it in group A's room.
func hubPermOps(f *permFixture) []struct {
	kind    string
	base    int64
	body    any
	allowed []string
} {
	fid := f.draftA.ID
	curators := []string{rOrg, rRapA}
	writers := []string{rOrg, rRapA, rPartA}
	return []struct {
		kind    string
		base    int64
		body    any
		allowed []string
	}{
		{"finding.create", 0, map[string]any{"title": "New"}, writers},
		{"finding.update", 1, map[string]any{"id": fid, "fields": map[string]any{"results": "r"}}, writers},
		{"vote", 0, map[string]any{"finding_id": fid}, writers},
		{"unvote", 0, map[string]any{"finding_id": fid}, writers},
		{"comment", 0, map[string]any{"finding_id": fid, "text": "c"}, []string{rOrg, rRapA, rPartA, rAuth}},
		{"finding.share", 0, map[string]any{"finding_id": fid}, curators},
		{"key.mark", 0, map[string]any{"finding_id": fid}, curators},
		{"key.unmark", 0, map[string]any{"finding_id": fid}, curators},
		{"key.reorder", 0, map[string]any{"finding_ids": []int64{}}, curators},
		{"keymessages.set", 0, map[string]any{"text": "k"}, curators},
		{"finding.release", 0, map[string]any{"finding_id": fid, "state": "released"}, []string{rOrg}},
		{"finding.delete", 0, map[string]any{"finding_id": fid}, writers},
	}
}

// TestPermissionTableOverWebSocket joins every room kind and makes every
// op kind as every signed-in role (the public cannot open the WebSocket:
// TestWebSocketRefusesForeignOriginAndAnonymous).
func TestPermissionTableOverWebSocket(t *testing.T) {
	f := mustPermFixture(t)
	roomA, roomB := store.WorkshopRoom(f.a.ID), store.WorkshopRoom(f.b.ID)
	joins := []struct {
		room    string
		allowed []string
	}{
		{roomA, []string{rOrg, rRapA, rPartA, rAuth}},
		{roomB, []string{rOrg, rPartB, rAuth}},
		{fmt.Sprintf("event:%d", f.event.ID), []string{rOrg}},
		{fmt.Sprintf("plenary:%d", f.event.ID), signedIn()},
	}
	// A member of group B tries to write to group A's finding from B's room.
	t.Run("cross-group ops", func(t *testing.T) {
		c := f.who[rPartB].m.Dial(t, f.srv.URL)
		if fr := c.join(t, roomB, 0); fr.Type != "joined" {
			t.Fatalf("join B: %+v", fr)
		}
		fid := f.draftA.ID
		for i, o := range []struct {
			kind string
			base int64
			body any
		}{
			{"finding.update", 1, map[string]any{"id": fid, "fields": map[string]any{"results": "from B"}}},
			{"vote", 0, map[string]any{"finding_id": fid}},
			{"comment", 0, map[string]any{"finding_id": fid, "text": "from B"}},
			{"finding.delete", 0, map[string]any{"finding_id": fid}},
		} {
			c.send(t, op(roomB, fmt.Sprintf("cross-%d", i), o.kind, o.base, o.body))
			if fr := c.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" }); fr.Type != "error" {
				t.Errorf("%s on group A's finding from group B's room: %+v, want an error", o.kind, fr)
			}
		}
		got, err := f.store.Finding(context.Background(), fid)
		var n int
		if err := f.store.DB().NewRaw("SELECT (SELECT count(*) FROM votes WHERE finding_id = ?) + (SELECT count(*) FROM comments WHERE finding_id = ?)", fid, fid).Scan(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
		if err != nil || got.Results == "from B" || got.DeletedAt != nil || n != 0 {
			t.Fatalf("group A's finding changed from group B: %+v %v (votes+comments %d)", got, err, n)
		}
	})

	for _, role := range signedIn() {
		t.Run(role, func(t *testing.T) {
			c := f.who[role].m.Dial(t, f.srv.URL)
			joined := map[string]bool{}
			for _, j := range joins {
				fr := c.join(t, j.room, 0)
				ok := slices.Contains(j.allowed, role)
				if ok != (fr.Type == "joined") || (!ok && fr.Code != "forbidden") {
					t.Errorf("join %s as %s: %s %s, allowed=%v", j.room, role, fr.Type, fr.Code, ok)
				}
				joined[j.room] = fr.Type == "joined"
			}
			// In group B's room a B participant has what an A participant has in A.
			asInB := map[string]string{rOrg: rOrg, rAuth: rAuth, rPartB: rPartA}
			for i, o := range hubPermOps(f) {
				for _, room := range []string{roomA, roomB} {
					opID := fmt.Sprintf("perm-%s-%d-%s", strings.NewReplacer("(", "", ")", "").Replace(role), i, room)
					c.send(t, op(room, opID, o.kind, o.base, o.body))
					fr := c.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
					allowed := slices.Contains(o.allowed, role)
					if room == roomB {
						allowed = slices.Contains(o.allowed, asInB[role])
					}
					switch {
					case !joined[room]:
						if fr.Type != "error" || fr.Code != "not_joined" {
							t.Errorf("%s in %s as %s without joining: %+v, want not_joined", o.kind, room, role, fr)
						}
					case allowed:
						if fr.Type == "error" && fr.Code == "forbidden" {
							t.Errorf("%s in %s as %s: forbidden, want allowed", o.kind, room, role)
						}
					default:
						if fr.Type != "error" || fr.Code != "forbidden" {
							t.Errorf("%s in %s as %s: %s %s, want forbidden", o.kind, room, role, fr.Type, fr.Code)
						}
					}
				}
			}
		})
	}
	// No entry in group B's room was made by a member of group A.
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM log_entries WHERE room = ? AND actor_id IN (?, ?)", roomB, f.who[rRapA].m.id, f.who[rPartA].m.id).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d entries in group B's room by members of group A", n)
	}
}

// A released finding may be public: a participant's or rapporteur's edit or
// delete would go out unreviewed, and a rapporteur's share would take back
// the organizer's release. Only an organizer changes it.
func TestReleasedFindingsChangeOnlyByOrganizers(t *testing.T) {
	f := mustPermFixture(t)
	ctx := context.Background()
	room := store.WorkshopRoom(f.a.ID)
	rel, err := f.store.Finding(ctx, f.releasedA.ID)
	if err != nil || rel.ReleaseState != domain.Released {
		t.Fatalf("fixture's released finding: %+v (%v)", rel, err)
	}
	reply := func(role, opID, kind string, base int64, body any) frame {
		t.Helper()
		c := f.who[role].m.Dial(t, f.srv.URL)
		if fr := c.join(t, room, 0); fr.Type != "joined" {
			t.Fatalf("join as %s: %+v", role, fr)
		}
		c.send(t, op(room, opID, kind, base, body))
		return c.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
	}
	for _, role := range []string{rPartA, rRapA} {
		for _, o := range []struct {
			kind string
			body any
		}{
			{"finding.update", map[string]any{"id": rel.ID, "fields": map[string]any{"title": "Changed by " + role}}},
			{"finding.delete", map[string]any{"finding_id": rel.ID}},
		} {
			if fr := reply(role, o.kind+" "+role, o.kind, int64(rel.Version), o.body); fr.Code != "forbidden" {
				t.Errorf("%s of a released finding as %s: %+v, want forbidden", o.kind, role, fr)
			}
		}
	}
	if fr := reply(rRapA, "share released", "finding.share", 0, map[string]any{"finding_id": rel.ID}); fr.Type != "ack" {
		t.Errorf("share of a released finding: %+v, want an ack that changes nothing", fr)
	}
	got, err := f.store.Finding(ctx, rel.ID)
	if err != nil || got.ReleaseState != domain.Released || got.Title != rel.Title || got.Version != rel.Version {
		t.Fatalf("released finding after the others' ops: %+v (%v); want it as it was", got, err)
	}
	// A share still shares a draft.
	if fr := reply(rRapA, "share draft", "finding.share", 0, map[string]any{"finding_id": f.draftA.ID}); fr.Type != "ack" {
		t.Fatalf("share of a draft: %+v", fr)
	}
	if d, _ := f.store.Finding(ctx, f.draftA.ID); d.ReleaseState != domain.Shared {
		t.Errorf("draft after share: %s, want shared", d.ReleaseState)
	}
	if fr := reply(rOrg, "org update", "finding.update", int64(rel.Version), map[string]any{"id": rel.ID, "fields": map[string]any{"title": "Corrected by the organizer"}}); fr.Type != "ack" {
		t.Fatalf("organizer's update of a released finding: %+v", fr)
	}
	if got, _ := f.store.Finding(ctx, rel.ID); got.Title != "Corrected by the organizer" || got.ReleaseState != domain.Released {
		t.Errorf("after the organizer's update: %+v", got)
	}
}

// A group's key messages are its drafts for the plenary: the programme's
// workshop list shows them only to those who may read the group's drafts.
func TestKeyMessagesStayWithTheirGroup(t *testing.T) {
	f := mustPermFixture(t)
	if _, err := f.store.SetKeyMessages(context.Background(), nil, f.a.ID, "km", 0, "Draft key message of group A"); err != nil {
		t.Fatal(err)
	}
	sees := map[string]bool{rOrg: true, rRapA: true, rPartA: true, rAuth: true}
	for _, role := range everyone() {
		client := http.DefaultClient
		if role != rPub {
			client = f.who[role].m.http
		}
		resp, err := client.Get(f.srv.URL + "/api/events/" + f.event.Slug + "/workshops")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ws []domain.Workshop
		if err := json.Unmarshal(body, &ws); err != nil || resp.StatusCode != 200 {
			t.Fatalf("as %s: %d %s", role, resp.StatusCode, body)
		}
		for _, w := range ws {
			if w.ID == f.a.ID && (w.KeyMessages == "Draft key message of group A") != sees[role] {
				t.Errorf("as %s: group A's key messages %q; want them shown: %v", role, w.KeyMessages, sees[role])
			}
		}
	}
}
