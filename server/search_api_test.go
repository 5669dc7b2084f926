package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// searchResult is the body of GET /api/search as a test reads it.
type searchResult struct {
	Total int `json:"total"`
	Hits  []struct {
		ID        int64               `json:"id"`
		Title     string              `json:"title"`
		URL       string              `json:"url"`
		Release   string              `json:"release_state"`
		Fragments map[string][]string `json:"fragments"`
	} `json:"hits"`
	Facets map[string][]struct {
		Term  string `json:"term"`
		Count int    `json:"count"`
		Label string `json:"label"`
	} `json:"facets"`
	Message string `json:"message"`
}

func (r searchResult) ids() []int64 {
	var out []int64
	for _, h := range r.Hits {
		out = append(out, h.ID)
	}
	slices.Sort(out)
	return out
}

// MustSearchFixture is a running server with its own index folder, once
// its index answers.
func MustSearchFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := MustFixture(tb, map[string]string{"DATA_DIR": tb.TempDir()})
	waitSearch(tb, f.srv.URL, f.event.Slug)
	return f
}

// waitSearch waits until the server's search answers 200.
func waitSearch(tb testing.TB, base, slug string) {
	tb.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/search?event=" + slug)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatal("search not ready within 90s")
}

// doSearch runs GET /api/search with params as c (nil: the public).
func doSearch(tb testing.TB, c *http.Client, base string, params url.Values) (int, searchResult, http.Header) {
	tb.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(base + "/api/search?" + params.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var r searchResult
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatalf("search %v: %v: %s", params, err, b)
	}
	return resp.StatusCode, r, resp.Header
}

// mustSearch runs a search that must succeed.
func mustSearch(tb testing.TB, c *http.Client, base string, params url.Values) searchResult {
	tb.Helper()
	status, r, _ := doSearch(tb, c, base, params)
	if status != 200 {
		tb.Fatalf("search %v: status %d: %s", params, status, r.Message)
	}
	return r
}

// waitFor polls the search until ok accepts its result, failing after timeout.
func waitFor(tb testing.TB, c *http.Client, base string, params url.Values, timeout time.Duration, ok func(searchResult) bool) searchResult {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := mustSearch(tb, c, base, params)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("search %v: still %d hits %v after %v", params, r.Total, r.ids(), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustCreate records a finding in workshop w and returns its id.
func mustCreate(tb testing.TB, st *store.Store, w domain.Workshop, in store.FindingInput) int64 {
	tb.Helper()
	a, err := st.CreateFinding(context.Background(), nil, w.ID, fmt.Sprintf("t-%d", time.Now().UnixNano()), in)
	if err != nil {
		tb.Fatal(err)
	}
	var p struct{ ID int64 }
	if err := json.Unmarshal(a.Entry.Payload, &p); err != nil || p.ID == 0 {
		tb.Fatalf("create: payload %s: %v", a.Entry.Payload, err)
	}
	return p.ID
}

// mustRelease sets a finding's release state.
func mustRelease(tb testing.TB, st *store.Store, w domain.Workshop, id int64, state string) {
	tb.Helper()
	if _, err := st.SetFindingRelease(context.Background(), nil, w.ID, fmt.Sprintf("r-%d", time.Now().UnixNano()), id, state); err != nil {
		tb.Fatal(err)
	}
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// TestSearchFacetCountsEqualSQL compares total and facet counts with SQL
// counts over the same findings for several filter combinations.
func TestSearchFacetCountsEqualSQL(t *testing.T) {
	f := MustSearchFixture(t)
	ctx := context.Background()
	tax, err := f.store.Taxonomy(ctx, f.event.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(dim string) []string {
		var out []string
		for _, term := range tax[dim] {
			out = append(out, term.Key)
		}
		return out
	}
	r := rand.New(rand.NewPCG(5, 5))
	some := func(dim string) []string {
		ks := keys(dim)
		var out []string
		for range r.IntN(3) + 1 {
			out = append(out, ks[r.IntN(len(ks))])
		}
		return out
	}
	const n = 150
	var last int64
	for i := range n {
		w := f.ws[r.IntN(len(f.ws))]
		id := mustCreate(t, f.store, w, store.FindingInput{
			Title: fmt.Sprintf("Practice %d against trafficking", i), WhatDone: "Joint inspections of employers by the police.",
			Countries: some("country"), Themes: some("theme"), Ps: some("p"), Forms: some("form"),
			VictimGroups: some("victim"), ActorTypes: some("actor"),
		})
		switch r.IntN(3) {
		case 1:
			mustRelease(t, f.store, w, id, domain.Shared)
		case 2:
			mustRelease(t, f.store, w, id, domain.Released)
		}
		last = id
	}
	author := f.MustMember(t, domain.RoleReportAuthor, nil, "FI", "researchers")
	// Wait until the index holds every finding in its last release
	// state: a finding changed again right after it was indexed is
	// indexed again a moment later.
	var states []struct {
		Term  string
		Count int
	}
	if err := f.store.DB().NewRaw("SELECT release_state AS term, count(*) AS count FROM findings WHERE event_id = ? AND deleted_at IS NULL GROUP BY 1", f.event.ID).Scan(ctx, &states); err != nil {
		t.Fatal(err)
	}
	waitFor(t, author.http, f.srv.URL, q("event", f.event.Slug), 10*time.Second, func(r searchResult) bool {
		have := map[string]int{}
		for _, fc := range r.Facets["release"] {
			have[fc.Term] = fc.Count
		}
		for _, st := range states {
			if have[st.Term] != st.Count {
				return false
			}
		}
		return true
	})
	_ = last

	// column of each dimension; workshop and release are scalar columns.
	cols := map[string]string{"country": "countries", "theme": "themes", "p": "ps", "form": "forms",
		"victim": "victim_groups", "actor": "actor_types"}
	sqlWhere := func(filters map[string][]string, skip string) (string, []any) {
		where := "event_id = ? AND deleted_at IS NULL"
		args := []any{f.event.ID}
		for dim, vals := range filters {
			if dim == skip {
				continue
			}
			switch dim {
			case "release":
				where += " AND release_state = ANY(?)"
			case "workshop":
				where += " AND workshop_id::text = ANY(?)"
			default:
				where += " AND " + cols[dim] + " && ?::text[]"
			}
			args = append(args, pgdialect.Array(vals))
		}
		return where, args
	}
	w0 := fmt.Sprint(f.ws[0].ID)
	combos := []map[string][]string{
		{},
		{"country": {"FI"}},
		{"country": {"FI", "SE"}, "theme": {"identification"}},
		{"p": {"prevention"}, "release": {"released", "shared"}},
		{"actor": {"police", "ngo"}, "form": {"labour"}, "victim": {"children", "men"}},
		{"workshop": {w0}, "country": {"NO", "DK"}},
	}
	for _, filters := range combos {
		params := q("event", f.event.Slug)
		for dim, vals := range filters {
			for _, v := range vals {
				params.Add(dim, v)
			}
		}
		got := mustSearch(t, author.http, f.srv.URL, params)
		where, args := sqlWhere(filters, "")
		var total int
		if err := f.store.DB().NewRaw("SELECT count(*) FROM findings WHERE "+where, args...).Scan(ctx, &total); err != nil {
			t.Fatal(err)
		}
		if got.Total != total {
			t.Errorf("filters %v: total %d, SQL %d", filters, got.Total, total)
		}
		t.Logf("filters %v: %d findings, facet countries %v", filters, total, got.Facets["country"])
		for dim, col := range map[string]string{"country": "unnest(countries)", "theme": "unnest(themes)", "p": "unnest(ps)",
			"form": "unnest(forms)", "victim": "unnest(victim_groups)", "actor": "unnest(actor_types)",
			"release": "release_state", "workshop": "workshop_id::text"} {
			where, args := sqlWhere(filters, dim)
			var rows []struct {
				Term  string
				Count int
			}
			if err := f.store.DB().NewRaw("SELECT t AS term, count(*) AS count FROM (SELECT "+col+" AS t FROM findings WHERE "+where+") x WHERE t IS NOT NULL GROUP BY t", args...).Scan(ctx, &rows); err != nil {
				t.Fatal(err)
			}
			want := map[string]int{}
			for _, r := range rows {
				want[r.Term] = r.Count
			}
			have := map[string]int{}
			for _, fc := range got.Facets[dim] {
				have[fc.Term] = fc.Count
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Errorf("filters %v, facet %s:\n got %v\nwant %v", filters, dim, have, want)
			}
		}
	}
	// Labels come from the event's taxonomy.
	for _, fc := range mustSearch(t, author.http, f.srv.URL, q("event", f.event.Slug)).Facets["country"] {
		if fc.Term == "FI" && fc.Label != "Finland" {
			t.Errorf("label of FI = %q", fc.Label)
		}
	}
}

// TestSearchFollowsUpdatesAndDeletesWithin1s measures the time from an
// op's acknowledgement (the store call returning) until /api/search shows
// it, for a create, an update and a delete.
func TestSearchFollowsUpdatesAndDeletesWithin1s(t *testing.T) {
	f := MustSearchFixture(t)
	author := f.MustMember(t, domain.RoleReportAuthor, nil, "SE", "police")
	ctx := context.Background()
	w := f.ws[1]
	params := func(word string) url.Values { return q("event", f.event.Slug, "q", word) }
	var worst time.Duration
	measure := func(what string, word string, ok func(searchResult) bool) {
		t.Helper()
		start := time.Now()
		waitFor(t, author.http, f.srv.URL, params(word), 5*time.Second, ok)
		d := time.Since(start)
		worst = max(worst, d)
		t.Logf("%s searchable after %v", what, d)
		if d >= time.Second {
			t.Errorf("%s took %v to be searchable, want < 1s", what, d)
		}
	}

	id := mustCreate(t, f.store, w, store.FindingInput{Title: "Zebrafish hotline for seasonal workers", Countries: []string{"SE"}})
	measure("create", "zebrafish", func(r searchResult) bool { return slices.Contains(r.ids(), id) })

	cur, err := f.store.Finding(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateFinding(ctx, nil, w.ID, "u1", id, cur.Version, map[string]json.RawMessage{
		"title": json.RawMessage(`"Axolotl hotline for seasonal workers"`)}); err != nil {
		t.Fatal(err)
	}
	measure("update", "axolotl", func(r searchResult) bool { return slices.Contains(r.ids(), id) })
	if r := mustSearch(t, author.http, f.srv.URL, params("zebrafish")); r.Total != 0 {
		t.Errorf("old title still found: %v", r.ids())
	}

	if _, err := f.store.AddComment(ctx, author.id, w.ID, "c1", id, "Kingfisher project in Malmö was similar"); err == nil {
		measure("comment", "kingfisher", func(r searchResult) bool { return slices.Contains(r.ids(), id) })
	} else {
		t.Logf("comment not added (%v); skipped", err)
	}

	if _, err := f.store.DeleteFinding(ctx, nil, w.ID, "d1", id, 0); err != nil {
		t.Fatal(err)
	}
	measure("delete", "axolotl", func(r searchResult) bool { return r.Total == 0 })
	t.Logf("worst: %v", worst)
}

// TestSearchVisibilityPerRole checks who finds drafts, shared and
// released findings, in search and on the finding page.
func TestSearchVisibilityPerRole(t *testing.T) {
	f := MustSearchFixture(t)
	wa, wb := f.ws[0], f.ws[1]
	draftA := mustCreate(t, f.store, wa, store.FindingInput{Title: "Quokka draft of group A"})
	draftB := mustCreate(t, f.store, wb, store.FindingInput{Title: "Quokka draft of group B"})
	sharedB := mustCreate(t, f.store, wb, store.FindingInput{Title: "Quokka shared by group B"})
	releasedB := mustCreate(t, f.store, wb, store.FindingInput{Title: "Quokka released by group B"})
	mustRelease(t, f.store, wb, sharedB, domain.Shared)
	mustRelease(t, f.store, wb, releasedB, domain.Released)

	author := f.MustMember(t, domain.RoleReportAuthor, nil, "FI", "researchers")
	organizer := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	partA := f.MustMember(t, domain.RoleParticipant, &wa, "NO", "police")
	rappB := f.MustMember(t, domain.RoleRapporteur, &wb, "DK", "ngo")
	observer := f.MustMember(t, domain.RoleObserver, nil, "IS", "io")
	params := q("event", f.event.Slug, "q", "quokka")
	all := []int64{draftA, draftB, sharedB, releasedB}
	slices.Sort(all)
	// Wait until the index holds every finding in its last state: a new
	// finding is indexed from its creation entry, and its release comes
	// after (at least the indexer's hold on re-indexing it later).
	state := map[int64]string{draftA: domain.Draft, draftB: domain.Draft, sharedB: domain.Shared, releasedB: domain.Released}
	waitFor(t, author.http, f.srv.URL, params, 10*time.Second, func(r searchResult) bool {
		for _, h := range r.Hits {
			if state[h.ID] != h.Release {
				return false
			}
		}
		return fmt.Sprint(r.ids()) == fmt.Sprint(all)
	})
	cases := []struct {
		who  string
		c    *http.Client
		want []int64
	}{
		{"report author", author.http, all},
		{"organizer", organizer.http, all},
		{"participant of A", partA.http, []int64{draftA, sharedB, releasedB}},
		{"rapporteur of B", rappB.http, []int64{draftB, sharedB, releasedB}},
		{"observer", observer.http, []int64{sharedB, releasedB}},
		{"public", nil, []int64{releasedB}},
	}
	for _, c := range cases {
		slices.Sort(c.want)
		got := mustSearch(t, c.c, f.srv.URL, params)
		if fmt.Sprint(got.ids()) != fmt.Sprint(c.want) || got.Total != len(c.want) {
			t.Errorf("%s finds %v (total %d), want %v", c.who, got.ids(), got.Total, c.want)
		}
		// Without an event, the same.
		got = mustSearch(t, c.c, f.srv.URL, q("q", "quokka"))
		if fmt.Sprint(got.ids()) != fmt.Sprint(c.want) {
			t.Errorf("%s finds %v across events, want %v", c.who, got.ids(), c.want)
		}
		// Facets count only what the viewer may see.
		n := 0
		for _, fc := range got.Facets["release"] {
			n += fc.Count
		}
		if n != len(c.want) {
			t.Errorf("%s: release facet counts %d findings, want %d", c.who, n, len(c.want))
		}
		// The finding page follows the same rule.
		cl := c.c
		if cl == nil {
			cl = http.DefaultClient
		}
		for _, id := range all {
			resp, err := cl.Get(fmt.Sprintf("%s/events/%s/findings/%d", f.srv.URL, f.event.Slug, id))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := 404
			if slices.Contains(c.want, id) {
				want = 200
			}
			if resp.StatusCode != want {
				t.Errorf("%s: finding page %d: status %d, want %d", c.who, id, resp.StatusCode, want)
			}
		}
	}
	// The CSV holds the same findings.
	resp, err := partA.http.Get(f.srv.URL + "/api/search.csv?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || len(recs) != 4 {
		t.Errorf("participant's CSV: %d rows (%v), want header + 3", len(recs), err)
	}
}

// TestSearchNordicInflections finds a Swedish and a Finnish finding by
// other inflected forms of their words.
func TestSearchNordicInflections(t *testing.T) {
	f := MustSearchFixture(t)
	sv := mustCreate(t, f.store, f.ws[0], store.FindingInput{Title: "Stöd till offren",
		WhatDone: "Socialtjänsten arbetar mot människohandeln i Malmö.", Language: "sv"})
	fi := mustCreate(t, f.store, f.ws[0], store.FindingInput{Title: "Uhrien auttaminen",
		WhatDone: "Ihmiskaupan uhrit saavat majoitusta.", Language: "fi"})
	author := f.MustMember(t, domain.RoleReportAuthor, nil, "FI", "researchers")
	for _, c := range []struct {
		word string
		id   int64
	}{{"människohandel", sv}, {"människohandelns", sv}, {"ihmiskauppa", fi}, {"ihmiskaupassa", fi}} {
		r := waitFor(t, author.http, f.srv.URL, q("event", f.event.Slug, "q", c.word), 5*time.Second, func(r searchResult) bool {
			return slices.Contains(r.ids(), c.id)
		})
		for _, h := range r.Hits {
			if h.ID == c.id && !strings.Contains(strings.Join(h.Fragments["done"], " "), "<mark>") {
				t.Errorf("%s: no highlight in %v", c.word, h.Fragments)
			}
		}
	}
}

// TestSearchBadQueryIs400 checks malformed queries and parameters.
func TestSearchBadQueryIs400(t *testing.T) {
	f := MustSearchFixture(t)
	for _, params := range []url.Values{
		q("event", f.event.Slug, "q", `"unclosed phrase`),
		q("event", f.event.Slug, "q", "(a OR b"),
		q("event", f.event.Slug, "sort", "sideways"),
		q("event", f.event.Slug, "page", "zero"),
	} {
		status, r, _ := doSearch(t, nil, f.srv.URL, params)
		if status != 400 || r.Message == "" {
			t.Errorf("%v: status %d, message %q; want 400 with a message", params, status, r.Message)
		}
		t.Logf("%v → %s", params, r.Message)
	}
	if status, _, _ := doSearch(t, nil, f.srv.URL, q("event", "no-such-event")); status != 404 {
		t.Errorf("unknown event: status %d, want 404", status)
	}
}

// TestSearchPageAndCSV renders the search page with facets and
// highlights, follows its CSV link, and checks CSV-injection safety.
func TestSearchPageAndCSV(t *testing.T) {
	f := MustSearchFixture(t)
	id := mustCreate(t, f.store, f.ws[2], store.FindingInput{Title: "=HYPERLINK(\"http://evil\") pangolin",
		WhatDone: "Pangolin outreach to <script>alert(1)</script> workers.", Countries: []string{"FI", "SE"}, Themes: []string{"identification"}})
	author := f.MustMember(t, domain.RoleReportAuthor, nil, "FI", "researchers")
	waitFor(t, author.http, f.srv.URL, q("event", f.event.Slug, "q", "pangolin"), 5*time.Second, func(r searchResult) bool {
		return slices.Contains(r.ids(), id)
	})
	resp, err := author.http.Get(f.srv.URL + "/events/" + f.event.Slug + "/search?q=pangolin&country=FI")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 {
		t.Fatalf("search page: %s\n%s", resp.Status, page)
	}
	for _, want := range []string{
		`name="q" value="pangolin"`,
		`<input type="checkbox" name="country" value="FI" checked> Finland <span class="count">(1)</span>`,
		`name="theme" value="identification"`,
		`<mark>Pangolin</mark>`,
		fmt.Sprintf(`href="/events/%s/findings/%d"`, f.event.Slug, id),
		"Download these results as CSV",
		"&lt;script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("search page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("search page contains unescaped script")
	}
	// The finding page shows its fields.
	resp, err = author.http.Get(fmt.Sprintf("%s/events/%s/findings/%d", f.srv.URL, f.event.Slug, id))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Pangolin outreach") || !strings.Contains(string(b), "Finland") {
		t.Errorf("finding page: %s\n%s", resp.Status, b)
	}

	resp, err = author.http.Get(f.srv.URL + "/api/search.csv?event=" + f.event.Slug + "&q=pangolin&country=FI")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("CSV headers: %v", resp.Header)
	}
	if len(recs) != 2 || recs[0][0] != "id" || recs[1][0] != fmt.Sprint(id) {
		t.Fatalf("CSV = %v", recs)
	}
	if n := resp.Header.Get("X-Total-Count"); n != "1" {
		t.Errorf("X-Total-Count %q, want 1", n)
	}
	col := slices.Index(recs[0], "title")
	if got := recs[1][col]; got != `'=HYPERLINK("http://evil") pangolin` {
		t.Errorf("title cell %q: want it defused with a leading quote", got)
	}
	if got := recs[1][slices.Index(recs[0], "countries")]; got != "FI; SE" {
		t.Errorf("countries cell %q", got)
	}
}

// A group's key messages are found with its key findings, but they are
// its drafts: a key finding shared or released does not take them to
// readers who may not read the group's drafts.
func TestSearchKeepsKeyMessagesWithTheirGroup(t *testing.T) {
	f := MustSearchFixture(t)
	ctx := context.Background()
	w := f.ws[0]
	if _, err := f.store.SetKeyMessages(ctx, nil, w.ID, "km", 0, "Wombats everywhere"); err != nil {
		t.Fatal(err)
	}
	draft := mustCreate(t, f.store, w, store.FindingInput{Title: "Draft key finding"})
	released := mustCreate(t, f.store, w, store.FindingInput{Title: "Released key finding"})
	for i, id := range []int64{draft, released} {
		if _, err := f.store.MarkKey(ctx, nil, w.ID, fmt.Sprint("mark-", i), id, 0); err != nil {
			t.Fatal(err)
		}
	}
	mustRelease(t, f.store, w, released, domain.Released)
	// Both indexed in their last state: the released one is read after the
	// key messages were written.
	author := f.MustMember(t, domain.RoleReportAuthor, nil, "FI", "researchers")
	waitFor(t, author.http, f.srv.URL, q("event", f.event.Slug, "q", "key finding"), 10*time.Second, func(r searchResult) bool {
		for _, h := range r.Hits {
			if h.ID == released && h.Release == domain.Released {
				return r.Total == 2
			}
		}
		return false
	})
	params := q("event", f.event.Slug, "q", "wombats")
	if got := mustSearch(t, author.http, f.srv.URL, params); fmt.Sprint(got.ids()) != fmt.Sprint([]int64{draft}) {
		t.Errorf("report author finds the key messages with %v, want only the draft key finding %d", got.ids(), draft)
	}
	if pub := mustSearch(t, nil, f.srv.URL, params); pub.Total != 0 {
		t.Errorf("the public finds the draft key messages with %v", pub.ids())
	}
}

// Search hits are checked against the database: a finding taken back from
// release (or deleted) is not shown from an index that has not caught up,
// here one that never hears of it.
func TestSearchHitsFollowTheDatabaseNotJustTheIndex(t *testing.T) {
	f := MustSearchFixture(t)
	w := f.ws[0]
	id := mustCreate(t, f.store, w, store.FindingInput{Title: "Platypus practice"})
	mustRelease(t, f.store, w, id, domain.Released)
	params := q("event", f.event.Slug, "q", "platypus")
	waitFor(t, nil, f.srv.URL, params, 10*time.Second, func(r searchResult) bool { return len(r.Hits) == 1 })
	// Behind the log's back: the indexer is not told.
	if _, err := f.store.DB().ExecContext(context.Background(), "UPDATE findings SET release_state = 'shared' WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	if r := mustSearch(t, nil, f.srv.URL, params); len(r.Hits) != 0 {
		t.Errorf("the public still finds the withdrawn finding: %v", r.ids())
	}
	observer := f.MustMember(t, domain.RoleObserver, nil, "IS", "io")
	if r := mustSearch(t, observer.http, f.srv.URL, params); fmt.Sprint(r.ids()) != fmt.Sprint([]int64{id}) {
		t.Errorf("an observer (who may read shared findings) finds %v, want %d", r.ids(), id)
	}
	resp, err := http.Get(f.srv.URL + "/events/" + f.event.Slug + "/search?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), "Platypus") {
		t.Errorf("the public search page still shows the withdrawn finding")
	}
}

// The CSV export goes through the index's pages as they are: hits the
// database check leaves out of a page do not end the export early.
func TestSearchCSVGoesPastWithdrawnHits(t *testing.T) {
	f := MustSearchFixture(t)
	w := f.ws[0]
	var ids []int64
	for i := 0; i < search.MaxSize+1; i++ {
		id := mustCreate(t, f.store, w, store.FindingInput{Title: fmt.Sprintf("Numbat practice %d", i)})
		mustRelease(t, f.store, w, id, domain.Released)
		ids = append(ids, id)
	}
	params := q("event", f.event.Slug, "q", "numbat")
	waitFor(t, nil, f.srv.URL, params, 30*time.Second, func(r searchResult) bool { return r.Total == len(ids) })
	// Ten of the first page taken back behind the index's back.
	first := mustSearch(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "numbat", "size", fmt.Sprint(search.MaxSize))).ids()
	if len(first) != search.MaxSize {
		t.Fatalf("first page: %d hits, want %d", len(first), search.MaxSize)
	}
	withdrawn := first[:10]
	if _, err := f.store.DB().ExecContext(context.Background(), "UPDATE findings SET release_state = 'shared' WHERE id = ANY(?)", pgdialect.Array(withdrawn)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(f.srv.URL + "/api/search.csv?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if want := 1 + len(ids) - len(withdrawn); err != nil || len(recs) != want {
		t.Fatalf("the public's CSV: %d rows (%v), want %d (a header and every finding still released)", len(recs), err, want)
	}
}

// Comments are the group's discussion: a released finding is public, its
// comments are not (page and search); members of the event see them.
func TestReleasedFindingsKeepTheirCommentsToTheEvent(t *testing.T) {
	f := MustSearchFixture(t)
	ctx := context.Background()
	w := f.ws[0]
	id := mustCreate(t, f.store, w, store.FindingInput{Title: "Echidna practice"})
	commenter, _ := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Commenter"}, domain.RoleParticipant, w.ID)
	if _, err := f.store.AddComment(ctx, commenter.ID, w.ID, "c1", id, "Bilby worries from the group"); err != nil {
		t.Fatal(err)
	}
	mustRelease(t, f.store, w, id, domain.Released)
	waitFor(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "echidna"), 10*time.Second, func(r searchResult) bool {
		return len(r.Hits) == 1 && r.Hits[0].Release == domain.Released
	})
	if r := mustSearch(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "bilby")); r.Total != 0 {
		t.Errorf("the public finds the released finding by its comment: %v", r.ids())
	}
	page := fmt.Sprintf("%s/events/%s/findings/%d", f.srv.URL, f.event.Slug, id)
	body := func(c *http.Client) string {
		t.Helper()
		resp, err := c.Get(page)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("finding page: %s", resp.Status)
		}
		return string(b)
	}
	if strings.Contains(body(http.DefaultClient), "Bilby") {
		t.Error("the public finding page shows the group's comment")
	}
	observer := f.MustMember(t, domain.RoleObserver, nil, "IS", "io")
	if !strings.Contains(body(observer.http), "Bilby worries from the group") {
		t.Error("a member of the event does not see the comment on the finding page")
	}
}

// The export and the finding page credit a finding as its author agreed:
// by country and actor type under the Chatham House rule, by organisation
// or by name only when the finding says so; never a name under the rule.
func TestExportCreditsAsTheAuthorAgreed(t *testing.T) {
	f := MustSearchFixture(t)
	ctx := context.Background()
	w := f.ws[1]
	author, _, err := f.store.AddMember(ctx, nil, f.event.ID, store.PersonInput{Name: "Pia Virtanen", Organisation: "Poliisi",
		Country: "FI", ActorType: "police"}, domain.RoleParticipant, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"chatham": "FI · police", "organisation": "Poliisi", "named": "Pia Virtanen, Poliisi"}
	ids := map[int64]string{}
	for attribution := range want {
		a, err := f.store.CreateFinding(ctx, &author.ID, w.ID, "credit-"+attribution,
			store.FindingInput{Title: "Armadillo outreach " + attribution, Attribution: attribution})
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ ID int64 }
		if err := json.Unmarshal(a.Entry.Payload, &p); err != nil {
			t.Fatal(err)
		}
		mustRelease(t, f.store, w, p.ID, domain.Released)
		ids[p.ID] = attribution
	}
	waitFor(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "armadillo"), 5*time.Second, func(r searchResult) bool { return r.Total == 3 })

	resp, err := http.Get(f.srv.URL + "/api/search.csv?event=" + f.event.Slug + "&q=armadillo")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || len(recs) != 4 {
		t.Fatalf("CSV: %v, %v", recs, err)
	}
	attrCol, creditCol := slices.Index(recs[0], "attribution"), slices.Index(recs[0], "credit")
	if attrCol < 0 || creditCol < 0 {
		t.Fatalf("CSV header %v lacks attribution or credit", recs[0])
	}
	for _, rec := range recs[1:] {
		id, _ := strconv.ParseInt(rec[0], 10, 64)
		attribution := ids[id]
		if rec[attrCol] != attribution || rec[creditCol] != want[attribution] {
			t.Errorf("finding %d (%s): attribution %q, credit %q; want %q", id, attribution, rec[attrCol], rec[creditCol], want[attribution])
		}
		if attribution == "chatham" && (strings.Contains(strings.Join(rec, "|"), "Pia") || strings.Contains(strings.Join(rec, "|"), "Poliisi")) {
			t.Errorf("a finding under the Chatham House rule names its author: %v", rec)
		}
	}
	for id, attribution := range ids {
		resp, err := http.Get(fmt.Sprintf("%s/events/%s/findings/%d", f.srv.URL, f.event.Slug, id))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		if !strings.Contains(page, want[attribution]) {
			t.Errorf("the page of finding %d (%s) does not credit it %q", id, attribution, want[attribution])
		}
		if attribution == "chatham" && (strings.Contains(page, "Pia") || strings.Contains(page, "Poliisi")) {
			t.Errorf("the page of a finding under the Chatham House rule names its author")
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
