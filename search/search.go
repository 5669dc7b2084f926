package search

import (
	"context"
	"fmt"
	"time"

	"github.com/blevesearch/bleve/v2"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Document is one finding as the index sees it.
type Document struct {
	ID       string // finding id, e.g. "42"
	Event    string // event id
	Workshop string // workshop id ("" if none)
	// Lang is one of Languages(); "" (or unsupported) → detected from the
	// text, else Options.DefaultLang.
	Lang string

	Title, Done, Results, Transferability, Proposal, Comments, KeyMessages string

	// Taxonomy term keys, e.g. "FI", "victim-identification".
	Countries, Themes, Ps, Forms, VictimGroups, Actors []string

	Release  string   // "draft" | "shared" | "released"
	Audience []string // visibility tokens computed by the server, e.g. "public", "event:1"
	Created  time.Time
	Updated  time.Time
}

// Query is one search as the user (and the server's access rules) asks it.
type Query struct {
	// Text is the user's query (syntax: see the package documentation);
	// "" matches all.
	Text string
	// Filters maps a dimension (country, theme, p, form, victim, actor,
	// workshop, event, release, lang) to values: OR within a dimension,
	// AND across dimensions. Values are matched exactly (case matters).
	Filters map[string][]string
	// Audience holds the viewer's visibility tokens; a document matches
	// only if it shares one. Empty matches nothing.
	Audience []string
	// Page is 1-based; Size defaults to 20 and is capped at 100.
	Page, Size int
	// Sort is "relevance" (default) or "date" (Updated, newest first).
	Sort string
	// IDs, when above 0, asks for the ids of the first IDs matches, in
	// order, in Result.IDs instead of a page of hits: one list from one
	// snapshot, for an export (paging through changes would skip and
	// repeat findings edited meanwhile). Page and Size are then ignored.
	IDs int
}

// PageSize is the number of hits a page of q holds: Size, DefaultSize
// when unset, at most MaxSize.
func (q Query) PageSize() int {
	if q.Size <= 0 {
		return DefaultSize
	}
	return min(q.Size, MaxSize)
}

// Result is one page of hits with facet counts.
type Result struct {
	Total uint64
	Hits  []Hit
	IDs   []string // see Query.IDs
	// Facets maps each dimension to its term counts, most frequent first.
	// A dimension's counts apply all filters except that dimension's own.
	Facets map[string][]FacetCount
	Took   time.Duration
}

// Hit is one matching finding with the fields the index stores.
type Hit struct {
	ID    string
	Score float64
	// Fragments maps a text field (title, done, ...) to highlighted
	// snippets: HTML-escaped text with matches in <mark>...</mark>.
	Fragments map[string][]string

	Title                                              string
	Lang, Event, Workshop, Release                     string
	Countries, Themes, Ps, Forms, VictimGroups, Actors []string
	Created, Updated                                   time.Time
}

// FacetCount is the number of matching findings that carry a term.
type FacetCount struct {
	Term  string
	Count int
}

// Paging and facet limits.
const (
	DefaultSize = 20
	MaxSize     = 100
	// maxFrom caps how deep paging goes.
	maxFrom = 100000
	// facetSize is large enough for every term of a taxonomy dimension;
	// workshops and events get bigFacetSize. Larger dimensions report only
	// their most frequent terms.
	facetSize    = 200
	bigFacetSize = 1000
)

// storedFields are the fields loaded for each hit.
var storedFields = []string{"title", "countries", "themes", "ps", "forms", "victims", "actors", "workshop", "event", "release", "lang", fieldCreated, fieldUpdated}

// highlightFields are the fields loaded for each hit of a text query: the
// stored fields and the text fields to highlight.
var highlightFields = append(append([]string(nil), storedFields...), textFields[1:]...)

// Search runs q. Bad query text or filters give a *QueryError.
//
// Bleve finds (and, sorted by relevance, scores) the documents that match
// the text. Audience, filters, facet counts, order and paging are then
// worked out in memory from the segments' columns, and Bleve loads the
// page's stored fields and highlights. Without text, documents come in
// date order whatever the sort, and Bleve only loads the page. Sorted by
// date, hits have score 0.
func (ix *Index) Search(ctx context.Context, q Query) (*Result, error) {
	start := time.Now()
	size := q.PageSize()
	page := q.Page
	if page < 1 {
		page = 1
	}
	if (page - 1) > maxFrom/size {
		return nil, queryErrorf("page %d is too far (at most %d results can be paged through)", page, maxFrom)
	}
	from := (page - 1) * size
	if q.IDs > 0 {
		from, size = 0, q.IDs
	}
	var byDate bool
	switch q.Sort {
	case "", "relevance":
	case "date":
		byDate = true
	default:
		return nil, queryErrorf("unknown sort %q (use relevance or date)", q.Sort)
	}
	parsed, err := parseQuery(q.Text)
	if err != nil {
		return nil, err
	}
	for dim := range q.Filters {
		if _, ok := dimField[dim]; !ok {
			return nil, queryErrorf("unknown filter %q", dim)
		}
	}

	res := &Result{Facets: make(map[string][]FacetCount, len(dimensions)), Hits: []Hit{}}
	for _, dim := range dimensions {
		res.Facets[dim] = []FacetCount{}
	}
	if len(q.Audience) == 0 {
		res.Took = time.Since(start)
		return res, nil
	}

	var text query.Query
	var t *tally
	var v *view
	if parsed == nil {
		if v, err = ix.current(); err == nil {
			t = ix.newTally(v, q, from+size, true)
			t.hitAll()
		}
	} else {
		text = (&compiler{m: ix.bi.Mapping(), pos: ix.pos}).compile(parsed, true)
		v, err = ix.matches(ctx, text, !byDate, q.Audience, func(v *view) func(int, uint32, float64) {
			t = ix.newTally(v, q, from+size, byDate)
			return t.hit
		})
	}
	if err != nil {
		return nil, err
	}
	defer v.release()
	if err := t.finish(ctx); err != nil {
		return nil, err
	}

	res.Total = t.total
	t.facets(res.Facets)
	top := t.sorted()
	if q.IDs > 0 {
		if res.IDs, err = v.docIDs(top[:min(len(top), q.IDs)]); err != nil {
			return nil, err
		}
		res.Took = time.Since(start)
		return res, nil
	}
	if from >= len(top) {
		res.Took = time.Since(start)
		return res, nil
	}
	if res.Hits, err = ix.load(ctx, v, top[from:], text, q.Audience); err != nil {
		return nil, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// load fetches the stored fields (and, for a text query, highlights) of
// the hits in top, in that order. It reads the index as it is now, which
// may be newer than the view the hits were found in: a document changed
// meanwhile is loaded only if the viewer's audience still matches it, or
// a finding moved back to draft would show its draft text.
func (ix *Index) load(ctx context.Context, v *view, top []ranked, text query.Query, audience []string) ([]Hit, error) {
	ids, err := v.docIDs(top)
	if err != nil {
		return nil, err
	}
	aud := make([]query.Query, len(audience))
	for i, a := range audience {
		tq := query.NewTermQuery(a)
		tq.SetField(fieldAudience)
		aud[i] = tq
	}
	and := []query.Query{query.NewDocIDQuery(ids), query.NewDisjunctionQuery(aud)}
	if text != nil {
		and = append(and, text)
	}
	q := query.NewConjunctionQuery(and)
	req := bleve.NewSearchRequestOptions(q, len(ids), 0, false)
	req.Fields = storedFields
	if text != nil {
		req.Fields = highlightFields
		req.IncludeLocations = true
	}
	sr, err := ix.bi.SearchInContext(ctx, req)
	if err != nil {
		return nil, searchError(err)
	}
	found := make(map[string]*bsearch.DocumentMatch, len(sr.Hits))
	for _, dm := range sr.Hits {
		found[dm.ID] = dm
	}
	hits := make([]Hit, 0, len(ids))
	for i, id := range ids {
		// A document changed since it matched may be gone or no longer match.
		if dm, ok := found[id]; ok {
			hits = append(hits, toHit(id, top[i].score, dm.Fields, snippets(dm)))
		}
	}
	return hits, nil
}

// docIDs returns the document ids of the hits in top, in that order.
func (v *view) docIDs(top []ranked) ([]string, error) {
	ids := make([]string, len(top))
	for i, r := range top {
		seg, local := v.locate(r.g)
		id, err := v.segs[seg].DocID(uint64(local))
		if err != nil {
			return nil, searchError(err)
		}
		ids[i] = string(id)
	}
	return ids, nil
}

// searchError wraps an error from Bleve; context errors stay visible to
// errors.Is.
func searchError(err error) error {
	return fmt.Errorf("search: %w", err)
}

// toHit builds a Hit from a Bleve hit's stored fields and fragments.
func toHit(id string, score float64, fields map[string]interface{}, frags map[string][]string) Hit {
	h := Hit{
		ID:           id,
		Score:        score,
		Lang:         str(fields["lang"]),
		Event:        str(fields["event"]),
		Workshop:     str(fields["workshop"]),
		Release:      str(fields["release"]),
		Countries:    strs(fields["countries"]),
		Themes:       strs(fields["themes"]),
		Ps:           strs(fields["ps"]),
		Forms:        strs(fields["forms"]),
		VictimGroups: strs(fields["victims"]),
		Actors:       strs(fields["actors"]),
		Created:      parseStoredTime(fields[fieldCreated]),
		Updated:      parseStoredTime(fields[fieldUpdated]),
	}
	h.Title = str(fields["title"])
	if len(frags) > 0 {
		h.Fragments = frags
	}
	return h
}

// str reads a stored single value.
func str(v interface{}) string {
	switch v := v.(type) {
	case string:
		return v
	case []interface{}:
		if len(v) > 0 {
			s, _ := v[0].(string)
			return s
		}
	}
	return ""
}

// strs reads a stored value that may have one or several entries.
func strs(v interface{}) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []interface{}:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
