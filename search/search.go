package search

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	bsearch "github.com/blevesearch/bleve/v2/search"
	htmlhl "github.com/blevesearch/bleve/v2/search/highlight/highlighter/html"
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
}

// Result is one page of hits with facet counts.
type Result struct {
	Total uint64
	Hits  []Hit
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

// facetRequest asks for the term counts of dimension dim.
func facetRequest(dim string) *bleve.FacetRequest {
	size := facetSize
	if dim == "workshop" || dim == "event" {
		size = bigFacetSize
	}
	return bleve.NewFacetRequest(dimField[dim], size)
}

// storedFields are the fields loaded for each hit.
var storedFields = func() []string {
	fs := []string{"countries", "themes", "ps", "forms", "victims", "actors", "workshop", "event", "release", "lang", fieldCreated, fieldUpdated}
	for _, l := range langs {
		fs = append(fs, langField("title", l))
	}
	return fs
}()

// Search runs q. Bad query text or filters give a *QueryError.
func (ix *Index) Search(ctx context.Context, q Query) (*Result, error) {
	start := time.Now()
	size := q.Size
	if size <= 0 {
		size = DefaultSize
	}
	if size > MaxSize {
		size = MaxSize
	}
	page := q.Page
	if page < 1 {
		page = 1
	}
	if (page - 1) > maxFrom/size {
		return nil, queryErrorf("page %d is too far (at most %d results can be paged through)", page, maxFrom)
	}
	from := (page - 1) * size
	var sortBy []string
	switch q.Sort {
	case "", "relevance":
		sortBy = []string{"-_score"}
	case "date":
		sortBy = []string{"-" + fieldUpdated, "_id"}
	default:
		return nil, queryErrorf("unknown sort %q (use relevance or date)", q.Sort)
	}

	parsed, err := parseQuery(q.Text)
	if err != nil {
		return nil, err
	}
	filters := make(map[string]query.Query, len(q.Filters))
	for dim, vals := range q.Filters {
		field, ok := dimField[dim]
		if !ok {
			return nil, queryErrorf("unknown filter %q", dim)
		}
		if len(vals) == 0 {
			continue
		}
		filters[dim] = anyTerm(field, vals)
	}

	res := &Result{Facets: make(map[string][]FacetCount, len(dimensions))}
	if len(q.Audience) == 0 {
		for _, dim := range dimensions {
			res.Facets[dim] = []FacetCount{}
		}
		res.Took = time.Since(start)
		return res, nil
	}

	var text query.Query = query.NewMatchAllQuery()
	if parsed != nil {
		c := &compiler{m: ix.bi.Mapping()}
		text = c.compile(parsed, true)
	}
	audience := anyTerm(fieldAudience, q.Audience)
	// build is the query with all filters but skip's.
	build := func(skip string) query.Query {
		qs := []query.Query{text, audience}
		for _, dim := range dimensions {
			if f, ok := filters[dim]; ok && dim != skip {
				qs = append(qs, f)
			}
		}
		return query.NewConjunctionQuery(qs)
	}

	main := bleve.NewSearchRequestOptions(build(""), size, from, false)
	main.SortBy(sortBy)
	main.Fields = storedFields
	main.Highlight = bleve.NewHighlightWithStyle(htmlhl.Name)
	for _, dim := range dimensions {
		if _, filtered := filters[dim]; !filtered {
			main.AddFacet(dim, facetRequest(dim))
		}
	}

	// One facet-only search per filtered dimension, run alongside the main one.
	type facetOut struct {
		dim    string
		counts []FacetCount
		err    error
	}
	var wg sync.WaitGroup
	outs := make(chan facetOut, len(filters))
	for dim := range filters {
		wg.Add(1)
		go func(dim string) {
			defer wg.Done()
			req := bleve.NewSearchRequestOptions(build(dim), 0, 0, false)
			req.Score = "none"
			req.AddFacet(dim, facetRequest(dim))
			sr, err := ix.bi.SearchInContext(ctx, req)
			if err != nil {
				outs <- facetOut{dim: dim, err: err}
				return
			}
			outs <- facetOut{dim: dim, counts: facetCounts(sr.Facets[dim])}
		}(dim)
	}

	sr, mainErr := ix.bi.SearchInContext(ctx, main)
	wg.Wait()
	close(outs)
	if mainErr != nil {
		return nil, searchError(mainErr)
	}
	for o := range outs {
		if o.err != nil {
			return nil, searchError(o.err)
		}
		res.Facets[o.dim] = o.counts
	}
	for _, dim := range dimensions {
		if _, filtered := filters[dim]; !filtered {
			res.Facets[dim] = facetCounts(sr.Facets[dim])
		}
	}

	res.Total = sr.Total
	res.Hits = make([]Hit, 0, len(sr.Hits))
	for _, dm := range sr.Hits {
		res.Hits = append(res.Hits, toHit(dm.ID, dm.Score, dm.Fields, dm.Fragments))
	}
	res.Took = time.Since(start)
	return res, nil
}

// searchError wraps an error from Bleve; context errors stay visible to
// errors.Is.
func searchError(err error) error {
	return fmt.Errorf("search: %w", err)
}

// anyTerm matches documents whose keyword field holds one of vals.
func anyTerm(field string, vals []string) query.Query {
	qs := make([]query.Query, 0, len(vals))
	for _, v := range vals {
		t := query.NewTermQuery(v)
		t.SetField(field)
		qs = append(qs, t)
	}
	if len(qs) == 1 {
		return qs[0]
	}
	return query.NewDisjunctionQuery(qs)
}

// facetCounts converts a Bleve facet to counts, most frequent first, then
// by term.
func facetCounts(fr *bsearch.FacetResult) []FacetCount {
	out := []FacetCount{}
	if fr == nil || fr.Terms == nil {
		return out
	}
	for _, t := range fr.Terms.Terms() {
		out = append(out, FacetCount{Term: t.Term, Count: t.Count})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Term < out[j].Term
	})
	return out
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
	for _, l := range langs {
		if t := str(fields[langField("title", l)]); t != "" {
			h.Title = t
			break
		}
	}
	if len(frags) > 0 {
		h.Fragments = make(map[string][]string, len(frags))
		for f, fs := range frags {
			// f is "<field>_<lang>"; report it as "<field>".
			if i := strings.LastIndexByte(f, '_'); i > 0 {
				f = f[:i]
			}
			h.Fragments[f] = append(h.Fragments[f], fs...)
		}
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
