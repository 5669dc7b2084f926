package search_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/search/gen"
)

// dimValues reads a generated document's values in a dimension.
func dimValues(d *search.Document, dim string) []string {
	switch dim {
	case "country":
		return d.Countries
	case "theme":
		return d.Themes
	case "p":
		return d.Ps
	case "form":
		return d.Forms
	case "victim":
		return d.VictimGroups
	case "actor":
		return d.Actors
	case "workshop":
		return nonEmpty(d.Workshop)
	case "event":
		return nonEmpty(d.Event)
	case "release":
		return nonEmpty(d.Release)
	case "lang":
		return nonEmpty(d.Lang)
	}
	panic("unknown dim " + dim)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

var dims = []string{"country", "theme", "p", "form", "victim", "actor", "workshop", "event", "release", "lang"}

// bruteMatch reports whether d passes audience and all filters but skip.
func bruteMatch(d *search.Document, audience []string, filters map[string][]string, skip string) bool {
	if !intersects(d.Audience, audience) {
		return false
	}
	for dim, vals := range filters {
		if dim == skip || len(vals) == 0 {
			continue
		}
		if !intersects(dimValues(d, dim), vals) {
			return false
		}
	}
	return true
}

// bruteFacets counts terms per dimension with multi-select semantics.
func bruteFacets(docs []search.Document, audience []string, filters map[string][]string) (uint64, map[string]map[string]int) {
	var total uint64
	out := make(map[string]map[string]int)
	for _, dim := range dims {
		out[dim] = make(map[string]int)
	}
	for i := range docs {
		d := &docs[i]
		if bruteMatch(d, audience, filters, "") {
			total++
		}
		for _, dim := range dims {
			if bruteMatch(d, audience, filters, dim) {
				for _, v := range dimValues(d, dim) {
					out[dim][v]++
				}
			}
		}
	}
	return total, out
}

func TestFacetsMatchBruteForce(t *testing.T) {
	docs := gen.Findings(1, 1000, gen.Events(6))
	ix := MustOpen(t, t.TempDir(), search.Options{})
	MustApply(t, ix, docs, 500)

	cases := []struct {
		name     string
		text     string // a word whose documents strings.Contains finds
		audience []string
		filters  map[string][]string
	}{
		{"none", "", []string{"public"}, nil},
		{"text", "människohandel", []string{"public", "org:1", "org:2"}, map[string][]string{"country": {"SE", "AX"}}},
		{"one country", "", []string{"public", "event:2"}, map[string][]string{"country": {"FI"}}},
		{"two dims", "", []string{"event:1", "event:2", "event:3", "org:4"}, map[string][]string{
			"country": {"FI", "SE"}, "theme": {"victim-identification"}}},
		{"many dims", "", []string{"public", "org:1", "org:2", "org:3", "org:4", "org:5", "org:6"}, map[string][]string{
			"p": {"prevention"}, "form": {"forced-labour", "sexual-exploitation"}, "victim": {"children", "migrant-workers"}, "lang": {"en"}}},
		{"event release", "", []string{"org:1", "org:2", "org:3"}, map[string][]string{
			"release": {"released", "shared"}, "event": {"1", "3"}, "actor": {"police"}}},
		{"workshop", "", []string{"org:1", "org:2", "org:3", "org:4", "org:5", "org:6"}, map[string][]string{
			"workshop": {"101", "102", "103", "110"}, "country": {"DK"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := MustSearch(t, ix, search.Query{Text: tc.text, Audience: tc.audience, Filters: tc.filters})
			subset := docs
			if tc.text != "" {
				subset = nil
				for _, d := range docs {
					joined := strings.ToLower(strings.Join([]string{d.Title, d.Done, d.Results, d.Transferability, d.Proposal, d.Comments, d.KeyMessages}, " "))
					if strings.Contains(joined, tc.text) {
						subset = append(subset, d)
					}
				}
			}
			wantTotal, want := bruteFacets(subset, tc.audience, tc.filters)
			if res.Total != wantTotal {
				t.Errorf("Total = %d, want %d", res.Total, wantTotal)
			}
			if wantTotal == 0 {
				t.Fatalf("test case matches nothing; pick other filters")
			}
			for _, dim := range dims {
				got := make(map[string]int)
				for _, fc := range res.Facets[dim] {
					got[fc.Term] = fc.Count
				}
				if !reflect.DeepEqual(got, want[dim]) {
					t.Errorf("facet %s:\n got %v\nwant %v", dim, got, want[dim])
				}
				for i := 1; i < len(res.Facets[dim]); i++ {
					if res.Facets[dim][i].Count > res.Facets[dim][i-1].Count {
						t.Errorf("facet %s not sorted by count: %v", dim, res.Facets[dim])
						break
					}
				}
			}
		})
	}
}

// TestFacetsFollowUpdatesDeletesAndMerges checks counts, totals and date
// order against brute force while documents are updated (old versions
// stay in older segments, marked deleted), deleted, and merged into one
// segment: the in-memory columns must follow every snapshot.
func TestFacetsFollowUpdatesDeletesAndMerges(t *testing.T) {
	docs := everyone(gen.Findings(21, 600, gen.Events(4)))
	ix := MustOpen(t, t.TempDir(), search.Options{})
	MustApply(t, ix, docs, 50) // twelve segments, before merging

	live := make(map[string]search.Document, len(docs))
	for _, d := range docs {
		live[d.ID] = d
	}
	filters := map[string][]string{"country": {"FI", "SE"}, "release": {"released"}}
	check := func(step string) {
		t.Helper()
		cur := make([]search.Document, 0, len(live))
		for _, d := range live {
			cur = append(cur, d)
		}
		for _, f := range []map[string][]string{nil, filters} {
			wantTotal, want := bruteFacets(cur, all, f)
			res := MustSearch(t, ix, search.Query{Audience: all, Filters: f, Sort: "date", Size: 100})
			if res.Total != wantTotal {
				t.Fatalf("%s, filters %v: Total = %d, want %d", step, f, res.Total, wantTotal)
			}
			for _, dim := range dims {
				got := make(map[string]int)
				for _, fc := range res.Facets[dim] {
					got[fc.Term] = fc.Count
				}
				if !reflect.DeepEqual(got, want[dim]) {
					t.Fatalf("%s, filters %v: facet %s:\n got %v\nwant %v", step, f, dim, got, want[dim])
				}
			}
			for i, h := range res.Hits {
				d, ok := live[h.ID]
				if !ok {
					t.Fatalf("%s: hit %s was deleted", step, h.ID)
				}
				if !h.Updated.Equal(d.Updated) || !reflect.DeepEqual(h.Countries, d.Countries) {
					t.Fatalf("%s: hit %s is a stale version", step, h.ID)
				}
				if i > 0 && h.Updated.After(res.Hits[i-1].Updated) {
					t.Fatalf("%s: hits not newest first", step)
				}
			}
		}
	}
	check("indexed")

	// Move every third document to Finland, released, and newest.
	var upd []search.Document
	for i := 0; i < len(docs); i += 3 {
		d := live[docs[i].ID]
		d.Countries = []string{"FI"}
		d.Release = "released"
		d.Updated = d.Updated.Add(1000 * time.Hour)
		live[d.ID] = d
		upd = append(upd, d)
	}
	MustApply(t, ix, upd, 40)
	check("updated")

	var del []string
	for i := 1; i < len(docs); i += 4 {
		del = append(del, docs[i].ID)
		delete(live, docs[i].ID)
	}
	if err := ix.Apply(nil, del, nil); err != nil {
		t.Fatal(err)
	}
	check("deleted")

	if err := ix.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("merged")
}

func TestAudience(t *testing.T) {
	docs := gen.Findings(2, 300, gen.Events(3))
	ix := MustOpen(t, t.TempDir(), search.Options{})
	MustApply(t, ix, docs, 300)

	for _, aud := range [][]string{nil, {}} {
		res := MustSearch(t, ix, search.Query{Audience: aud})
		if res.Total != 0 || len(res.Hits) != 0 {
			t.Errorf("audience %v: Total = %d, want 0", aud, res.Total)
		}
	}
	res := MustSearch(t, ix, search.Query{Audience: []string{"nobody"}})
	if res.Total != 0 {
		t.Errorf("unknown token: Total = %d, want 0", res.Total)
	}

	aud := []string{"public", "workshop:102"}
	res = MustSearch(t, ix, search.Query{Audience: aud, Size: 100})
	var want uint64
	for i := range docs {
		if intersects(docs[i].Audience, aud) {
			want++
		}
	}
	if res.Total != want || want == 0 {
		t.Errorf("Total = %d, want %d (> 0)", res.Total, want)
	}
	byID := make(map[string]*search.Document)
	for i := range docs {
		byID[docs[i].ID] = &docs[i]
	}
	for _, h := range res.Hits {
		if !intersects(byID[h.ID].Audience, aud) {
			t.Errorf("hit %s has audience %v, not visible to %v", h.ID, byID[h.ID].Audience, aud)
		}
	}
}

func TestUpdateAndDelete(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	d := search.Document{ID: "42", Lang: "en", Title: "Joint inspections in the cleaning sector",
		Countries: []string{"FI"}, Audience: []string{"public"}, Updated: time.Now()}
	other := search.Document{ID: "43", Lang: "en", Title: "Hotline for migrant workers",
		Countries: []string{"SE"}, Audience: []string{"public"}}
	if err := ix.Apply([]search.Document{d, other}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := ids(MustSearch(t, ix, search.Query{Text: "cleaning", Audience: all})); !reflect.DeepEqual(got, []string{"42"}) {
		t.Fatalf("cleaning: got %v, want [42]", got)
	}

	d.Title = "Joint inspections on construction sites"
	d.Countries = []string{"NO"}
	if err := ix.Apply([]search.Document{d}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if res := MustSearch(t, ix, search.Query{Text: "cleaning", Audience: all}); res.Total != 0 {
		t.Errorf("after update, cleaning: got %v, want none", ids(res))
	}
	res := MustSearch(t, ix, search.Query{Text: "construction", Audience: all})
	if got := ids(res); !reflect.DeepEqual(got, []string{"42"}) {
		t.Fatalf("construction: got %v, want [42]", got)
	}
	if h := res.Hits[0]; h.Title != d.Title || !reflect.DeepEqual(h.Countries, []string{"NO"}) {
		t.Errorf("hit = %+v, want updated title and countries [NO]", h)
	}
	if n, _ := ix.Count(); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}

	if err := ix.Apply(nil, []string{"42"}, nil); err != nil {
		t.Fatal(err)
	}
	if res := MustSearch(t, ix, search.Query{Text: "construction", Audience: all}); res.Total != 0 {
		t.Errorf("after delete: got %v, want none", ids(res))
	}
	if n, _ := ix.Count(); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
	// An id both upserted and deleted in one batch ends up deleted.
	if err := ix.Apply([]search.Document{other}, []string{"43"}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := ix.Count(); n != 0 {
		t.Errorf("Count = %d, want 0", n)
	}
}

func TestCheckpointCommitsWithBatch(t *testing.T) {
	dir := t.TempDir()
	ix, err := search.Open(dir, search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ix.Checkpoint("log"); err != nil || v != nil {
		t.Fatalf("fresh Checkpoint = %q, %v; want nil, nil", v, err)
	}
	docs := gen.Findings(3, 200)
	if err := ix.Apply(docs, nil, map[string][]byte{"log": []byte("1234"), "other": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Apply(nil, []string{"1", "2"}, map[string][]byte{"log": []byte("1236"), "other": nil}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix = MustOpen(t, dir, search.Options{})
	if v, err := ix.Checkpoint("log"); err != nil || string(v) != "1236" {
		t.Errorf("Checkpoint(log) = %q, %v; want 1236", v, err)
	}
	if v, err := ix.Checkpoint("other"); err != nil || v != nil {
		t.Errorf("Checkpoint(other) = %q, %v; want nil", v, err)
	}
	if n, err := ix.Count(); err != nil || n != 198 {
		t.Errorf("Count = %d, %v; want 198", n, err)
	}
}

func TestMappingVersionBumpNeedsRebuild(t *testing.T) {
	dir := t.TempDir()
	ix := MustOpen(t, dir, search.Options{})
	MustApply(t, ix, gen.Findings(4, 20), 20)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := search.Open(dir, search.Options{MappingVersion: search.MappingVersion + 1})
	if !errors.Is(err, search.ErrNeedsRebuild) {
		t.Fatalf("Open with bumped version: err = %v, want ErrNeedsRebuild", err)
	}
	nx, err := search.Create(dir, search.Options{MappingVersion: search.MappingVersion + 1})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := nx.Count(); n != 0 {
		t.Errorf("Count after Create = %d, want 0", n)
	}
	if err := nx.Close(); err != nil {
		t.Fatal(err)
	}
	MustOpen(t, dir, search.Options{MappingVersion: search.MappingVersion + 1})
}

// damage functions each break an index folder in one way.
var damages = map[string]func(t *testing.T, dir string){
	"meta deleted": func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, "index_meta.json")); err != nil {
			t.Fatal(err)
		}
	},
	"store deleted": func(t *testing.T, dir string) {
		if err := os.RemoveAll(filepath.Join(dir, "store")); err != nil {
			t.Fatal(err)
		}
	},
	"garbage in every file": func(t *testing.T, dir string) {
		err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			return os.WriteFile(p, []byte(strings.Repeat("garbage\x00\xff", 97)), 0o600)
		})
		if err != nil {
			t.Fatal(err)
		}
	},
	"segments garbled": func(t *testing.T, dir string) {
		matches, _ := filepath.Glob(filepath.Join(dir, "store", "*.zap"))
		if len(matches) == 0 {
			t.Fatal("no segment files")
		}
		for _, m := range matches {
			if err := os.WriteFile(m, []byte(strings.Repeat("\x13\x37", 4096)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	},
	"segments truncated": func(t *testing.T, dir string) {
		matches, _ := filepath.Glob(filepath.Join(dir, "store", "*.zap"))
		for _, m := range matches {
			if err := os.Truncate(m, 10); err != nil {
				t.Fatal(err)
			}
		}
	},
	"root truncated": func(t *testing.T, dir string) {
		if err := os.Truncate(filepath.Join(dir, "store", "root.bolt"), 100); err != nil {
			t.Fatal(err)
		}
	},
}

func TestDamagedIndexNeedsRebuild(t *testing.T) {
	docs := gen.Findings(5, 100)
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "idx")
			ix, err := search.Open(dir, search.Options{})
			if err != nil {
				t.Fatal(err)
			}
			MustApply(t, ix, docs, 100)
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			damage(t, dir)

			ix, err = search.Open(dir, search.Options{})
			if err == nil {
				// Some damage only shows when the data is read.
				_, serr := ix.Search(context.Background(), search.Query{Text: "trafficking", Audience: all})
				_ = ix.Close()
				t.Fatalf("Open of damaged index succeeded (search err: %v), want ErrNeedsRebuild", serr)
			}
			if !errors.Is(err, search.ErrNeedsRebuild) {
				t.Fatalf("err = %v, want ErrNeedsRebuild", err)
			}
			nx, err := search.Create(dir, search.Options{})
			if err != nil {
				t.Fatalf("Create over damaged index: %v", err)
			}
			_ = nx.Close()
			MustOpen(t, dir, search.Options{})
		})
	}
}

func TestCreateRefusesForeignFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := search.Open(dir, search.Options{}); !errors.Is(err, search.ErrNeedsRebuild) {
		t.Errorf("Open(foreign folder) err = %v, want ErrNeedsRebuild", err)
	}
	if _, err := search.Create(dir, search.Options{}); err == nil {
		t.Errorf("Create(foreign folder) succeeded, want refusal")
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Errorf("foreign file gone: %v", err)
	}
}

func TestRebuildAndReplace(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "index")
	old := MustOpen(t, dir, search.Options{})
	MustApply(t, old, gen.Findings(6, 10), 10)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	tmp := filepath.Join(base, "index.rebuild")
	nx, err := search.Create(tmp, search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	docs := gen.Findings(7, 50)
	if err := nx.Apply(docs, nil, map[string][]byte{"log": []byte("99")}); err != nil {
		t.Fatal(err)
	}
	if err := nx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := search.Replace(tmp, dir); err != nil {
		t.Fatal(err)
	}
	ix := MustOpen(t, dir, search.Options{})
	if n, _ := ix.Count(); n != 50 {
		t.Errorf("Count = %d, want 50", n)
	}
	if v, _ := ix.Checkpoint("log"); string(v) != "99" {
		t.Errorf("Checkpoint = %q, want 99", v)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 1 {
		t.Errorf("leftovers in %s: %v", base, entries)
	}
}

// TestCreateOverAnOpenIndexIsLocked: an index being built (a server's
// rebuild) is not removed by another Create in its folder (an offline
// reindex), which gets ErrLocked; the first goes on.
func TestCreateOverAnOpenIndexIsLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "search.rebuild")
	ix, err := search.Create(dir, search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	MustApply(t, ix, everyone(gen.Findings(3, 5)), 10)
	if _, err := search.Create(dir, search.Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, search.ErrLocked) {
		t.Fatalf("Create over an open index: %v, want ErrLocked", err)
	}
	if n, err := ix.Count(); err != nil || n != 5 {
		t.Fatalf("the first index after the second Create: %d documents (%v), want 5", n, err)
	}
}

func TestOpenTwiceIsLocked(t *testing.T) {
	dir := t.TempDir()
	MustOpen(t, dir, search.Options{})
	_, err := search.Open(dir, search.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, search.ErrLocked) || errors.Is(err, search.ErrNeedsRebuild) {
		t.Fatalf("second Open err = %v, want ErrLocked only", err)
	}
}

func TestMalformedQueries(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	MustApply(t, ix, gen.Findings(8, 20), 20)
	bad := []search.Query{
		{Text: `"unbalanced quote`},
		{Text: `title:(`},
		{Text: `title:(victims`},
		{Text: `title:`},
		{Text: `title: victims`},
		{Text: `(victims police`},
		{Text: `victims)`},
		{Text: `victims OR`},
		{Text: `OR victims`},
		{Text: `()`},
		{Text: `v*`},
		{Text: `country:(FI SE)`},
		{Text: strings.Repeat("word ", 40)},
		{Text: `"` + strings.Repeat("labour ", 40) + `"`}, // a phrase counts its words
		{Text: `done:"` + strings.Repeat("labour ", 40) + `"`}, // in a field too
		{Text: strings.Repeat("a-", 40) + "b"},                 // and a hyphenated word
		{Text: strings.Repeat("é", 1001)},                      // one word, too long
		{Filters: map[string][]string{"colour": {"red"}}},
		{Sort: "title"},
		{Page: 1 << 30},
	}
	for _, q := range bad {
		q.Audience = all
		_, err := ix.Search(context.Background(), q)
		var qe *search.QueryError
		if !errors.As(err, &qe) {
			t.Errorf("Search(%q, %v, %q, page %d): err = %v, want *QueryError", q.Text, q.Filters, q.Sort, q.Page, err)
			continue
		}
		if qe.Msg == "" {
			t.Errorf("Search(%q): empty message", q.Text)
		}
	}
	good := []string{
		`victims`, `"labour exploitation"`, `traffick*`, `-police victims`, `victims -"sexual exploitation"`,
		`police OR NGOs`, `(police OR NGOs) victims`, `title:hotline`, `title:"joint inspections"`,
		`title:(joint inspections)`, `country:FI`, `theme:victim*`, `NOT police`, `+victims`,
		`http://example.org`, `non-punishment`, `a - b`, `2011/36/EU`, `the`, `C\"est`,
	}
	for _, s := range good {
		if _, err := ix.Search(context.Background(), search.Query{Text: s, Audience: all}); err != nil {
			t.Errorf("Search(%q): %v", s, err)
		}
	}
}

func TestQuerySemantics(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	docs := []search.Document{
		{ID: "1", Lang: "en", Title: "Joint inspections against labour exploitation", Done: "Police and labour inspectors visited construction sites.", Countries: []string{"FI"}},
		{ID: "2", Lang: "en", Title: "Safe houses for victims of sexual exploitation", Done: "NGOs run shelters for women.", Countries: []string{"SE"}},
		{ID: "3", Lang: "en", Title: "Training police officers", Done: "Police trained to spot indicators of trafficking in the labour market.", Countries: []string{"NO"}},
		{ID: "4", Lang: "en", Title: "Hotline for the victims", Done: "Exploitation reported anonymously by phone.", Countries: []string{"DK"}},
	}
	for i := range docs {
		docs[i].Audience = []string{"public"}
	}
	MustApply(t, ix, docs, 10)
	cases := []struct {
		text string
		want []string
	}{
		{`exploitation`, []string{"1", "2", "4"}},
		{`"labour exploitation"`, []string{"1"}},
		{`"police inspections"`, []string{}},            // adjacent positions, but in done and in title
		{`labour exploitation`, []string{"1"}},          // AND
		{`labour OR shelters`, []string{"1", "2", "3"}}, // OR
		{`exploitation -sexual`, []string{"1", "4"}},
		{`-police`, []string{"2", "4"}},
		{`traffick*`, []string{"3"}},
		{`inspect*`, []string{"1"}},
		{`indic*`, []string{"3"}},
		{`victims*`, []string{"2", "4"}}, // prefix stemmed as well
		{`title:police`, []string{"3"}},
		{`done:police`, []string{"1", "3"}},
		{`country:FI police`, []string{"1"}},
		{`the victims`, []string{"2", "4"}}, // stop word ignored for English
		{`victim`, []string{"2", "4"}},      // stemmed
		{`"the victims"`, []string{"2", "4"}},
		{`title:(police OR hotline)`, []string{"3", "4"}},
		{`*`, []string{"1", "2", "3", "4"}},
	}
	for _, tc := range cases {
		res := MustSearch(t, ix, search.Query{Text: tc.text, Audience: all})
		got := ids(res)
		sort.Strings(got)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestInflectedFormsAcrossLanguages(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	docs := []search.Document{
		{ID: "sv1", Lang: "sv", Title: "Kontroller hos arbetsgivare", Done: "Polisen granskade arbetsgivarna i städbranschen."},
		{ID: "sv2", Lang: "sv", Title: "Stöd till offren", Done: "Socialtjänsten arbetar mot människohandeln i Malmö."},
		{ID: "sv3", Lang: "sv", Title: "Nätverk", Done: "Ett nordiskt nätverk mot människohandel."},
		{ID: "fi1", Lang: "fi", Title: "Ihmiskauppa rakennusalalla", Done: "Poliisi tarkasti työmaat."},
		{ID: "fi2", Lang: "fi", Title: "Uhrien auttaminen", Done: "Ihmiskaupan uhrit saavat majoitusta."},
		{ID: "en1", Lang: "en", Title: "Employers inspected", Done: "Labour inspectors and employers cooperated."},
		{ID: "det", Title: "Arbetsgivaren och facket", Done: "Facket granskade arbetsgivaren och dess underleverantörer i byggbranschen."},
	}
	for i := range docs {
		docs[i].Audience = []string{"public"}
	}
	MustApply(t, ix, docs, 10)
	cases := []struct {
		text string
		want []string
	}{
		{`arbetsgivaren`, []string{"det", "sv1"}},
		{`arbetsgivarna`, []string{"det", "sv1"}},
		{`människohandel`, []string{"sv2", "sv3"}},
		{`människohandeln`, []string{"sv2", "sv3"}},
		{`människohandelns`, []string{"sv2", "sv3"}},
		{`ihmiskaupan`, []string{"fi1", "fi2"}},
		{`ihmiskauppa`, []string{"fi1", "fi2"}},
		{`ihmiskaupassa`, []string{"fi1", "fi2"}},
		{`uhri`, []string{"fi2"}},
		{`employer`, []string{"en1"}},
		{`"ihmiskaupan uhrit"`, []string{"fi2"}},
	}
	for _, tc := range cases {
		res := MustSearch(t, ix, search.Query{Text: tc.text, Audience: all})
		got := ids(res)
		sort.Strings(got)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.text, got, tc.want)
		}
	}
	// The undeclared-language document was detected as Swedish.
	res := MustSearch(t, ix, search.Query{Filters: map[string][]string{"lang": {"sv"}}, Audience: all})
	if !hasID(res, "det") {
		t.Errorf("document without Lang not detected as sv: %v", ids(res))
	}
}

func TestHighlightEscapesHTML(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	d := search.Document{ID: "x", Lang: "en", Title: `<script>alert("x")</script> trafficking & exploitation`,
		Done: "Victims of trafficking were <b>identified</b>.", Audience: []string{"public"}}
	MustApply(t, ix, []search.Document{d}, 1)
	res := MustSearch(t, ix, search.Query{Text: "trafficking", Audience: all})
	if len(res.Hits) != 1 {
		t.Fatalf("hits = %v", ids(res))
	}
	h := res.Hits[0]
	title := strings.Join(h.Fragments["title"], " ")
	if !strings.Contains(title, "<mark>trafficking</mark>") || strings.Contains(title, "<script>") || !strings.Contains(title, "&lt;script&gt;") {
		t.Errorf("title fragment = %q, want escaped HTML with <mark>", title)
	}
	done := strings.Join(h.Fragments["done"], " ")
	if !strings.Contains(done, "<mark>trafficking</mark>") || strings.Contains(done, "<b>") {
		t.Errorf("done fragment = %q", done)
	}
	if h.Title != d.Title {
		t.Errorf("Title = %q, want %q", h.Title, d.Title)
	}
	// A fielded query highlights its field only.
	res = MustSearch(t, ix, search.Query{Text: "done:trafficking", Audience: all})
	if len(res.Hits) != 1 {
		t.Fatalf("done:trafficking: hits = %v", ids(res))
	}
	if f := res.Hits[0].Fragments; len(f["done"]) != 1 || len(f["title"]) != 0 {
		t.Errorf("done:trafficking: fragments = %q, want done only", f)
	}
}

func TestSortByDateAndPaging(t *testing.T) {
	docs := everyone(gen.Findings(9, 230))
	ix := MustOpen(t, t.TempDir(), search.Options{})
	MustApply(t, ix, docs, 500)

	var seen []string
	var prev time.Time
	for page := 1; ; page++ {
		res := MustSearch(t, ix, search.Query{Audience: all, Sort: "date", Page: page, Size: 50})
		if res.Total != 230 {
			t.Fatalf("Total = %d, want 230", res.Total)
		}
		if len(res.Hits) == 0 {
			break
		}
		for _, h := range res.Hits {
			if !prev.IsZero() && h.Updated.After(prev) {
				t.Errorf("page %d: %s updated %v after previous %v", page, h.ID, h.Updated, prev)
			}
			prev = h.Updated
			seen = append(seen, h.ID)
		}
		if page > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 230 {
		t.Fatalf("paged through %d hits, want 230", len(seen))
	}
	uniq := make(map[string]bool)
	for _, id := range seen {
		uniq[id] = true
	}
	if len(uniq) != 230 {
		t.Errorf("%d distinct ids over pages, want 230", len(uniq))
	}
	newest := docs[0].Updated
	for _, d := range docs {
		if d.Updated.After(newest) {
			newest = d.Updated
		}
	}
	res := MustSearch(t, ix, search.Query{Audience: all, Sort: "date", Size: 1})
	if !res.Hits[0].Updated.Equal(newest) {
		t.Errorf("first by date updated %v, want newest %v", res.Hits[0].Updated, newest)
	}
	// Size defaults and caps.
	if n := len(MustSearch(t, ix, search.Query{Audience: all}).Hits); n != search.DefaultSize {
		t.Errorf("default size: %d hits", n)
	}
	if n := len(MustSearch(t, ix, search.Query{Audience: all, Size: 1000}).Hits); n != search.MaxSize {
		t.Errorf("capped size: %d hits", n)
	}
	// An export's ids: the pages' order, in one list, and at most as asked.
	if ids := MustSearch(t, ix, search.Query{Audience: all, Sort: "date", IDs: 1000}).IDs; !slices.Equal(ids, seen) {
		t.Errorf("ids for an export: %d, not the pages' %d in order", len(ids), len(seen))
	}
	if res := MustSearch(t, ix, search.Query{Audience: all, Sort: "date", IDs: 7}); len(res.IDs) != 7 || len(res.Hits) != 0 || res.Total != 230 {
		t.Errorf("7 ids for an export: %d ids, %d hits, total %d", len(res.IDs), len(res.Hits), res.Total)
	}
	if ids := MustSearch(t, ix, search.Query{Audience: []string{"nobody"}, IDs: 1000}).IDs; len(ids) != 0 {
		t.Errorf("ids for an export outside the audience: %d", len(ids))
	}
}

func TestRelevanceRanksTitleMatches(t *testing.T) {
	docs := everyone(gen.Findings(10, 400))
	ix := MustOpen(t, t.TempDir(), search.Options{})
	MustApply(t, ix, docs, 400)
	res := MustSearch(t, ix, search.Query{Text: "hotline", Audience: all, Size: 5})
	if res.Total == 0 {
		t.Fatal("no hits for hotline")
	}
	for i := 1; i < len(res.Hits); i++ {
		if res.Hits[i].Score > res.Hits[i-1].Score {
			t.Errorf("hits not by score: %v", res.Hits)
		}
	}
	for _, h := range res.Hits {
		if len(h.Fragments) == 0 {
			t.Errorf("hit %s has no fragments", h.ID)
		}
	}
}

func TestSearchHonoursContext(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	MustApply(t, ix, everyone(gen.Findings(11, 50)), 50)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ix.Search(ctx, search.Query{Text: "victims", Audience: all, Filters: map[string][]string{"country": {"FI"}}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestDetectLang(t *testing.T) {
	cases := map[string]string{
		"The police and the labour inspectorate visited the employers.":                         "en",
		"Polisen och Arbetsmiljöverket genomförde kontroller hos arbetsgivarna.":                "sv",
		"Poliisi ja työsuojeluviranomainen tekivät yhteisiä tarkastuksia.":                      "fi",
		"Politiet og Arbejdstilsynet gennemførte kontroller mod menneskehandel efter et tip.":   "da",
		"Politiet og Arbeidstilsynet gjennomførte kontroller mot menneskehandel etter et tips.": "no",
		"": "",
	}
	for text, want := range cases {
		if got := search.DetectLang(text); got != want {
			t.Errorf("DetectLang(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestGeneratorIsSeeded(t *testing.T) {
	a := gen.Findings(42, 50)
	b := gen.Findings(42, 50)
	c := gen.Findings(43, 50)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed gave different findings")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds gave the same findings")
	}
	langs := make(map[string]int)
	for _, d := range gen.Findings(1, 2000) {
		langs[d.Lang]++
		if d.Title == "" || d.Done == "" || len(d.Countries) == 0 || len(d.Audience) == 0 {
			t.Fatalf("incomplete finding %+v", d)
		}
		if got := search.DetectLang(d.Title + " " + d.Done); got != d.Lang && d.Lang != "no" && d.Lang != "da" {
			t.Errorf("finding %s in %s detected as %s: %s %s", d.ID, d.Lang, got, d.Title, d.Done)
		}
	}
	for _, l := range search.Languages() {
		if langs[l] == 0 {
			t.Errorf("no findings in %s: %v", l, langs)
		}
	}
}

func TestConcurrentApplyAndSearch(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	docs := everyone(gen.Findings(12, 200))
	done := make(chan error, 3)
	for w := 0; w < 2; w++ {
		go func(w int) {
			for i := w * 100; i < (w+1)*100; i += 25 {
				if err := ix.Apply(docs[i:i+25], nil, map[string][]byte{fmt.Sprint("w", w): []byte(fmt.Sprint(i))}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}(w)
	}
	go func() {
		// Words and phrases read decoded postings from a cache shared by
		// all searches; -race watches it.
		texts := []string{"victims", `"labour exploitation"`, "traffick*", `"safe accommodation" OR police`}
		for i := 0; i < 40; i++ {
			if _, err := ix.Search(context.Background(), search.Query{Text: texts[i%len(texts)], Audience: all,
				Filters: map[string][]string{"country": {"FI", "SE"}}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 3; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := ix.Count(); n != 200 {
		t.Errorf("Count = %d, want 200", n)
	}
}

func TestLoaderAppliesEveryBatchAndReportsErrors(t *testing.T) {
	docs := everyone(gen.Findings(13, 900))
	ix := MustOpen(t, t.TempDir(), search.Options{})
	load := ix.NewLoader(3)
	for i := 0; i < len(docs); i += 100 {
		if err := load.Add(docs[i : i+100]); err != nil {
			t.Fatal(err)
		}
	}
	if err := load.Wait(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ix.Count(); n != 900 {
		t.Errorf("Count = %d, want 900", n)
	}
	wantTotal, _ := bruteFacets(docs, all, nil)
	if res := MustSearch(t, ix, search.Query{Audience: all}); res.Total != wantTotal {
		t.Errorf("Total = %d, want %d", res.Total, wantTotal)
	}

	bad := ix.NewLoader(2)
	if err := bad.Add([]search.Document{{Title: "no id"}}); err != nil {
		t.Fatal(err)
	}
	if err := bad.Wait(); err == nil || !strings.Contains(err.Error(), "no id") {
		t.Errorf("Wait = %v, want the batch's error", err)
	}
	if err := bad.Add(docs[:1]); err == nil {
		t.Error("Add after a failed batch: want its error")
	}
}

func TestWarmReadsAnyIndex(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	if err := ix.Warm(); err != nil {
		t.Fatalf("empty index: %v", err)
	}
	docs := everyone(gen.Findings(14, 120))
	MustApply(t, ix, docs, 40)
	if err := ix.Warm(); err != nil {
		t.Fatalf("filled index: %v", err)
	}
	wantTotal, _ := bruteFacets(docs, all, map[string][]string{"country": {"FI"}})
	if res := MustSearch(t, ix, search.Query{Audience: all, Filters: map[string][]string{"country": {"FI"}}}); res.Total != wantTotal {
		t.Errorf("after warming: Total = %d, want %d", res.Total, wantTotal)
	}
}

// TestAsyncIndexKeepsItsCheckpointWithItsBatches applies batches without
// waiting for the disk, closes, and checks that the reopened index holds
// exactly the batches up to the checkpoint it shows.
func TestAsyncIndexKeepsItsCheckpointWithItsBatches(t *testing.T) {
	dir := t.TempDir()
	docs := everyone(gen.Findings(15, 400))
	ix := MustOpen(t, dir, search.Options{Async: true})
	for i := 0; i < len(docs); i += 20 {
		if err := ix.Apply(docs[i:i+20], nil, map[string][]byte{"n": []byte(fmt.Sprint(i + 20))}); err != nil {
			t.Fatal(err)
		}
		// Searchable at once, before it is on disk.
		if res := MustSearch(t, ix, search.Query{Audience: all, Size: 1}); res.Total != uint64(i+20) {
			t.Fatalf("after batch %d: Total = %d, want %d", i/20, res.Total, i+20)
		}
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = MustOpen(t, dir, search.Options{Async: true})
	cp, err := ix.Checkpoint("n")
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	if cp != nil {
		if want, err = strconv.Atoi(string(cp)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := ix.Count(); n != uint64(want) {
		t.Errorf("reopened index holds %d findings, its checkpoint says %d", n, want)
	}
}

func TestBulkGCRaisesAndRestoresTheTarget(t *testing.T) {
	prev := debug.SetGCPercent(50)
	defer debug.SetGCPercent(prev)
	restore := search.BulkGC()
	if got := debug.SetGCPercent(200); got != 200 {
		t.Errorf("GOGC during BulkGC = %d, want 200", got)
	}
	debug.SetGCPercent(200)
	restore()
	if got := debug.SetGCPercent(50); got != 50 {
		t.Errorf("GOGC after restore = %d, want 50", got)
	}
	debug.SetGCPercent(-1)
	search.BulkGC()()
	if got := debug.SetGCPercent(50); got != -1 {
		t.Errorf("GOGC off: BulkGC left %d, want -1", got)
	}
}

// TestSegmentQueriesMatchBleve compares the words, phrases and prefixes
// matched segment by segment (from decoded postings) with Bleve's own
// queries over the same index: the same documents, and for words and
// phrases the same scores. The index has several segments, updated and
// deleted documents, and is compared again after a merge.
func TestSegmentQueriesMatchBleve(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	docs := everyone(gen.Findings(5, 3000))
	MustApply(t, ix, docs, 500)
	texts := []string{
		`victims`, `labour`, `police`, `människohandel`, `ihmiskaupan`, `the`,
		`"labour exploitation"`, `"national referral mechanism"`, `"victims of forced begging"`, `"safe accommodation"`,
		`traffick*`, `arbets*`, `inspect*`,
		`"labour exploitation" OR police`, `labour exploitation`, `police -"labour exploitation"`,
		`title:police`, `done:"labour exploitation"`, `victims traffick*`,
	}
	prefix := func(s string) bool { return strings.Contains(s, "*") }
	compare := func(stage string) {
		t.Helper()
		for _, text := range texts {
			got, err := ix.MatchScores(context.Background(), text, all, false)
			if err != nil {
				t.Fatalf("%s: %s: %v", stage, text, err)
			}
			want, err := ix.MatchScores(context.Background(), text, all, true)
			if err != nil {
				t.Fatalf("%s: %s (Bleve): %v", stage, text, err)
			}
			if len(want) == 0 && text != "the" {
				t.Errorf("%s: %s: Bleve finds nothing; the test data should hold it", stage, text)
			}
			if len(got) != len(want) {
				t.Errorf("%s: %s: %d matches, Bleve %d", stage, text, len(got), len(want))
				continue
			}
			for id, w := range want {
				g, ok := got[id]
				if !ok {
					t.Errorf("%s: %s: document %s missing", stage, text, id)
					break
				}
				if !prefix(text) && math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
					t.Errorf("%s: %s: document %s scores %v, Bleve %v", stage, text, id, g, w)
					break
				}
			}
		}
	}
	compare("built")

	// Rewrite some documents (their old versions stay, deleted, in older
	// segments) and delete others.
	var changed []search.Document
	var deleted []string
	for i := 0; i < len(docs); i += 7 {
		d := docs[i]
		d.Title = "Labour exploitation and safe accommodation for victims"
		changed = append(changed, d)
	}
	for i := 3; i < len(docs); i += 11 {
		deleted = append(deleted, docs[i].ID)
	}
	if err := ix.Apply(changed, deleted, nil); err != nil {
		t.Fatal(err)
	}
	compare("changed")

	if err := ix.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	compare("merged")
}

// TestFieldedPrefixesFindEveryMatch: "title:inspect*" finds every finding
// whose title holds a word that starts so. Filtering a match's positions
// to the field wrote over a list Bleve still used, and dropped matches
// (15 to 27 of 440 here, depending on how the segments were laid out).
func TestFieldedPrefixesFindEveryMatch(t *testing.T) {
	docs := everyone(gen.Findings(1, 20000))
	ix, err := search.Create(t.TempDir(), search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	load := ix.NewLoader(1) // as the server's rebuild does
	for i := 0; i < len(docs); i += 1000 {
		if err := load.Add(docs[i:min(i+1000, len(docs))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := load.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text, prefix string
		field        func(d *search.Document) string
	}{
		{"title:inspect*", "inspect", func(d *search.Document) string { return d.Title }},
		{"results:victim*", "victim", func(d *search.Document) string { return d.Results }},
	} {
		want := map[string]bool{}
		for i := range docs {
			for _, w := range strings.FieldsFunc(strings.ToLower(c.field(&docs[i])), func(r rune) bool { return !unicode.IsLetter(r) }) {
				if strings.HasPrefix(w, c.prefix) {
					want[docs[i].ID] = true
				}
			}
		}
		res := MustSearch(t, ix, search.Query{Text: c.text, Audience: all, IDs: len(docs)})
		got := map[string]bool{}
		for _, id := range res.IDs {
			got[id] = true
		}
		missing := 0
		for id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing > 0 || len(got) != len(want) || len(want) == 0 {
			t.Errorf("%s: %d found, %d hold it, %d of them missing", c.text, len(got), len(want), missing)
		}
	}
}
