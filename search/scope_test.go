package search_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/search/gen"
)

// Relevance is weighed over what the viewer may see: documents hidden from
// them (a group's drafts) change neither their hits' scores nor their
// order, whatever the query's kind. Before, a signed-out search for a word
// scored differently once a hidden draft held it, which told whether one
// did.
func TestScoresIgnoreWhatTheViewerCannotSee(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{})
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	doc := func(id, title, done string, countries []string, audience ...string) search.Document {
		return search.Document{ID: id, Event: "1", Workshop: "101", Lang: "en", Title: title, Done: done,
			Countries: countries, Release: "released", Audience: audience, Created: at, Updated: at}
	}
	public := []search.Document{
		doc("q1", "Quokka shelters for rescued workers", "Volunteers ran quokka shelters with the police.", []string{"FI"}, "public"),
		doc("q2", "Acmecorp audit of supply chains", "An audit found forced labour at acmecorp suppliers.", []string{"SE", "FI"}, "public"),
		doc("q3", "Labour inspection with the police", "Joint visits of inspectors and police.", []string{"FI", "NO"}, "public"),
	}
	// Unrelated visible documents, so that document frequencies matter.
	public = append(public, gen.Findings(3, 60)...)
	for i := 3; i < len(public); i++ {
		public[i].Audience = []string{"public"}
	}
	MustApply(t, ix, public, 100)

	texts := []string{`acmecorp`, `quokka OR acmecorp`, `title:acmecorp`, `"acmecorp audit"`,
		`acmecorp -quokka`, `country:FI`, `country:FI acmecorp`, `acme*`, `(quokka OR acmecorp) police`,
		`title:acme*`, `country:FI*`, `acmecorp OR zzhid*`, `done:acmecorp`}
	scores := func(audience []string) map[string]map[string]float64 {
		out := make(map[string]map[string]float64)
		for _, text := range texts {
			res := MustSearch(t, ix, search.Query{Text: text, Audience: audience, Size: 100})
			m := make(map[string]float64)
			for _, h := range res.Hits {
				m[h.ID] = h.Score
			}
			out[text] = m
		}
		return out
	}
	before := scores([]string{"public"})
	for _, text := range texts {
		if len(before[text]) == 0 {
			t.Fatalf("%s finds nothing; the test data should hold it", text)
		}
	}

	// Drafts of a group, hidden from a signed-out viewer, full of the
	// words searched for.
	var drafts []search.Document
	for i := 0; i < 40; i++ {
		d := doc(fmt.Sprintf("d%d", i), "Acmecorp acmecorp acmeqqq quokka police", "Acmecorp acme audit in FI, zzhidden.", []string{"FI", "FIX", "FIY"}, "workshop:101")
		d.Release = "draft"
		drafts = append(drafts, d)
	}
	MustApply(t, ix, drafts, 40)

	after := scores([]string{"public"})
	insiders := scores([]string{"public", "workshop:101"})
	changedForInsiders := 0
	for _, text := range texts {
		if len(after[text]) != len(before[text]) {
			t.Errorf("%s: %d hits, %d before the hidden drafts", text, len(after[text]), len(before[text]))
		}
		for id, s := range before[text] {
			if got := after[text][id]; math.Abs(got-s) > 1e-9*math.Max(1, s) {
				t.Errorf("%s: document %s scores %v, %v before the hidden drafts", text, id, got, s)
			}
			if got, ok := insiders[text][id]; ok && math.Abs(got-s) > 1e-9*math.Max(1, s) {
				changedForInsiders++
			}
		}
	}
	// The drafts do weigh for those who see them: the test data could leak.
	if changedForInsiders == 0 {
		t.Error("the drafts change no score for the group that sees them; the test proves nothing")
	}

	// Deleted and rewritten documents (old versions stay, deleted, in
	// their segments): the scores are those of an index that holds only
	// what the viewer sees.
	var gone []string
	for i := 4; i < len(public); i += 5 {
		gone = append(gone, public[i].ID)
	}
	rewritten := public[5]
	rewritten.Title = "Acmecorp and quokka police"
	drafts[0].Release, drafts[0].Audience = "released", []string{"public"}
	if err := ix.Apply([]search.Document{rewritten, drafts[0]}, gone, nil); err != nil {
		t.Fatal(err)
	}
	only := MustOpen(t, t.TempDir(), search.Options{})
	var visible []search.Document
	for _, d := range public {
		if !slices.Contains(gone, d.ID) && d.ID != rewritten.ID {
			visible = append(visible, d)
		}
	}
	MustApply(t, only, append(visible, rewritten, drafts[0]), 100)
	for _, text := range texts {
		got := MustSearch(t, ix, search.Query{Text: text, Audience: []string{"public"}, Size: 100})
		want := MustSearch(t, only, search.Query{Text: text, Audience: []string{"public"}, Size: 100})
		if len(got.Hits) != len(want.Hits) || len(want.Hits) == 0 {
			t.Errorf("%s: %d hits, %d in an index of what the viewer sees", text, len(got.Hits), len(want.Hits))
			continue
		}
		for i, w := range want.Hits {
			if g := got.Hits[i]; math.Abs(g.Score-w.Score) > 1e-9*math.Max(1, w.Score) {
				t.Errorf("%s: hit %d is %s at %v, in an index of what the viewer sees %s at %v", text, i, g.ID, g.Score, w.ID, w.Score)
			}
		}
	}
}
