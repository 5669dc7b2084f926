package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// searchDims are the filter dimensions a search URL may set, in display
// order (the event is chosen by its slug).
var searchDims = []string{"country", "theme", "p", "form", "victim", "actor", "workshop", "release", "lang"}

// maxCSVRows caps a CSV download.
const maxCSVRows = 10000

// searchScope is a parsed search request: the query with the viewer's
// audience, and the event it is limited to (nil for all the viewer may see).
type searchScope struct {
	Query  search.Query
	Event  *domain.Event
	Viewer *viewer
	Tokens []string
}

// parseSearch reads a search from the URL; slug names the event ("" for
// every event).
func (a *app) parseSearch(r *http.Request, slug string) (searchScope, error) {
	var s searchScope
	v, err := authOf(r).viewer(r.Context())
	if err != nil {
		return s, err
	}
	s.Viewer = v
	vals := r.URL.Query()
	s.Query = search.Query{Text: vals.Get("q"), Sort: vals.Get("sort"), Filters: map[string][]string{}}
	if slug != "" {
		ev, err := a.store.EventBySlug(r.Context(), slug)
		if err != nil {
			return s, err
		}
		s.Event = &ev
		s.Tokens = searchAudience(v, ev.ID)
		s.Query.Filters["event"] = []string{strconv.FormatInt(ev.ID, 10)}
	} else {
		s.Tokens = searchAudienceAll(v)
	}
	s.Query.Audience = s.Tokens
	for _, dim := range searchDims {
		for _, val := range vals[dim] {
			if val = strings.TrimSpace(val); val != "" {
				s.Query.Filters[dim] = append(s.Query.Filters[dim], val)
			}
		}
	}
	for name, dst := range map[string]*int{"page": &s.Query.Page, "size": &s.Query.Size} {
		if t := vals.Get(name); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil || n < 1 {
				return s, domain.Errorf(domain.Invalid, "The %s must be a whole number from 1 up, not %q.", name, t)
			}
			*dst = n
		}
	}
	return s, nil
}

// searchIndex runs a search on the index alone and answers Unavailable
// with a Retry-After.
func (a *app) searchIndex(w http.ResponseWriter, r *http.Request, q search.Query) (*search.Result, error) {
	res, err := a.search.Search(r.Context(), q)
	if domain.ErrorCode(err) == domain.Unavailable {
		w.Header().Set("Retry-After", strconv.Itoa(searchRetryAfter))
	}
	return res, err
}

// runSearch runs a search (see searchIndex). The
// hits are checked against the database: a finding deleted, or taken back
// from release, since it was indexed is left out, even when the indexer
// lags or is down. (Total and facet counts are the index's.)
func (a *app) runSearch(w http.ResponseWriter, r *http.Request, q search.Query) (*search.Result, error) {
	res, err := a.searchIndex(w, r, q)
	if err != nil || len(res.Hits) == 0 {
		return res, err
	}
	ids := make([]int64, 0, len(res.Hits))
	for _, h := range res.Hits {
		if id, err := strconv.ParseInt(h.ID, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	fs, err := a.store.FindingsAudience(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	ok := make(map[string]bool, len(fs))
	for _, f := range fs {
		ok[strconv.FormatInt(f.ID, 10)] = mayRead(q.Audience, f)
	}
	res.Hits = slices.DeleteFunc(res.Hits, func(h search.Hit) bool { return !ok[h.ID] })
	return res, nil
}

// facetJSON is one facet term with its count and label.
type facetJSON struct {
	Term  string `json:"term"`
	Count int    `json:"count"`
	Label string `json:"label"`
}

// hitJSON is one search hit as the API returns it.
type hitJSON struct {
	ID           int64               `json:"id"`
	URL          string              `json:"url"`
	Title        string              `json:"title"`
	Event        string              `json:"event"`
	Workshop     string              `json:"workshop"`
	WorkshopName string              `json:"workshop_name,omitempty"`
	Release      string              `json:"release_state"`
	Language     string              `json:"language"`
	Countries    []string            `json:"countries"`
	Themes       []string            `json:"themes"`
	Ps           []string            `json:"ps"`
	Forms        []string            `json:"forms"`
	VictimGroups []string            `json:"victim_groups"`
	ActorTypes   []string            `json:"actor_types"`
	Created      time.Time           `json:"created_at"`
	Updated      time.Time           `json:"updated_at"`
	Score        float64             `json:"score"`
	Fragments    map[string][]string `json:"fragments,omitempty"`
}

// searchJSON is the body of GET /api/search.
type searchJSON struct {
	Total  uint64                 `json:"total"`
	Page   int                    `json:"page"`
	Size   int                    `json:"size"`
	Hits   []hitJSON              `json:"hits"`
	Facets map[string][]facetJSON `json:"facets"`
	TookMS float64                `json:"took_ms"`
}

// searchNames labels facet terms and links hits: taxonomy labels,
// workshop names and event slugs by id.
type searchNames struct {
	labels map[string]map[string]string // dimension → term → label
	slugs  map[string]string            // event id → slug
}

func (a *app) searchNames(ctx context.Context, ev *domain.Event) (searchNames, error) {
	n := searchNames{labels: map[string]map[string]string{
		"release": {domain.Draft: "Draft (the group's own)", domain.Shared: "Shared with the event", domain.Released: "Released (public)"},
		"lang":    {"en": "English", "da": "Danish", "fi": "Finnish", "no": "Norwegian", "sv": "Swedish"},
	}, slugs: map[string]string{}}
	evs, err := a.store.Events(ctx)
	if err != nil {
		return n, err
	}
	for _, e := range evs {
		n.slugs[strconv.FormatInt(e.ID, 10)] = e.Slug
	}
	if ev == nil {
		return n, nil
	}
	tax, err := a.store.Taxonomy(ctx, ev.ID)
	if err != nil {
		return n, err
	}
	for dim, terms := range tax {
		n.labels[dim] = map[string]string{}
		for _, t := range terms {
			n.labels[dim][t.Key] = t.Label
		}
	}
	ws, err := a.store.Workshops(ctx, ev.ID)
	if err != nil {
		return n, err
	}
	n.labels["workshop"] = map[string]string{}
	for _, w := range ws {
		n.labels["workshop"][strconv.FormatInt(w.ID, 10)] = w.Name
	}
	return n, nil
}

// label is the display name of a term, the term itself when it has none.
func (n searchNames) label(dim, term string) string {
	if l := n.labels[dim][term]; l != "" {
		return l
	}
	return term
}

// findingURL is the page of a finding.
func (n searchNames) findingURL(eventID, id string) string {
	return "/events/" + url.PathEscape(n.slugs[eventID]) + "/findings/" + id
}

func (n searchNames) facets(res *search.Result) map[string][]facetJSON {
	out := map[string][]facetJSON{}
	for dim, fcs := range res.Facets {
		l := make([]facetJSON, 0, len(fcs))
		for _, fc := range fcs {
			l = append(l, facetJSON{Term: fc.Term, Count: fc.Count, Label: n.label(dim, fc.Term)})
		}
		out[dim] = l
	}
	return out
}

func (n searchNames) hit(h search.Hit) hitJSON {
	id, _ := strconv.ParseInt(h.ID, 10, 64)
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return hitJSON{ID: id, URL: n.findingURL(h.Event, h.ID), Title: h.Title, Event: h.Event, Workshop: h.Workshop,
		WorkshopName: n.labels["workshop"][h.Workshop], Release: h.Release, Language: h.Lang,
		Countries: nz(h.Countries), Themes: nz(h.Themes), Ps: nz(h.Ps), Forms: nz(h.Forms),
		VictimGroups: nz(h.VictimGroups), ActorTypes: nz(h.Actors), Created: h.Created, Updated: h.Updated,
		Score: h.Score, Fragments: h.Fragments}
}

// handleSearch is GET /api/search: hits, highlighted fragments and facet
// counts of what the viewer may see.
func (a *app) handleSearch(w http.ResponseWriter, r *http.Request) {
	s, err := a.parseSearch(r, r.URL.Query().Get("event"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res, err := a.runSearch(w, r, s.Query)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	names, err := a.searchNames(r.Context(), s.Event)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := searchJSON{Total: res.Total, Page: max(1, s.Query.Page), Size: s.Query.PageSize(), Hits: []hitJSON{},
		Facets: names.facets(res), TookMS: float64(res.Took.Microseconds()) / 1000}
	for _, h := range res.Hits {
		out.Hits = append(out.Hits, names.hit(h))
	}
	writeJSON(w, out)
}

// handleSearchCSV is GET /api/search.csv: every finding the search
// matches (up to maxCSVRows), with all its fields, as a CSV download.
func (a *app) handleSearchCSV(w http.ResponseWriter, r *http.Request) {
	s, err := a.parseSearch(r, r.URL.Query().Get("event"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// One list of ids from one snapshot of the index (the rows are checked
	// against the database below).
	q := s.Query
	q.IDs = maxCSVRows
	res, err := a.searchIndex(w, r, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ids := make([]int64, 0, len(res.IDs))
	for _, s := range res.IDs {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	fs, err := a.store.FindingsForExport(r.Context(), ids)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	byID := make(map[int64]store.ExportFinding, len(fs))
	for _, f := range fs {
		byID[f.ID] = f
	}
	names, err := a.searchNames(r.Context(), s.Event)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	name := "findings.csv"
	if s.Event != nil {
		name = s.Event.Slug + "-findings.csv"
	}
	// How many the search matched, as the index counts them: more than
	// the rows when the download stopped at maxCSVRows.
	w.Header().Set("X-Total-Count", strconv.FormatUint(res.Total, 10))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "url", "event", "workshop", "title", "what_done", "results", "transferability",
		"nordic_proposal", "countries", "themes", "ps", "forms", "victim_groups", "actor_types", "language",
		"release_state", "is_key", "attribution", "credit", "contact_name", "contact_email", "created_at", "updated_at"})
	for _, id := range ids {
		f, ok := byID[id]
		// The database is the truth: a finding deleted or withdrawn since
		// it was indexed is left out.
		if !ok || !mayRead(s.Tokens, f.Finding) {
			continue
		}
		ev := strconv.FormatInt(f.EventID, 10)
		ws := ""
		if f.WorkshopID != nil {
			ws = strconv.FormatInt(*f.WorkshopID, 10)
			if n := names.labels["workshop"][ws]; n != "" {
				ws = n
			}
		}
		contactName, contactEmail := "", ""
		if f.ContactConsent && auth.Allowed(s.Viewer.principal(f.EventID), auth.ActSearchAll, 0) {
			contactName, contactEmail = f.ContactName, f.ContactEmail
		}
		row := []string{strconv.FormatInt(f.ID, 10), a.baseURL + names.findingURL(ev, strconv.FormatInt(f.ID, 10)),
			names.slugs[ev], ws, f.Title, f.WhatDone, f.Results, f.Transferability, f.NordicProposal,
			strings.Join(f.Countries, "; "), strings.Join(f.Themes, "; "), strings.Join(f.Ps, "; "),
			strings.Join(f.Forms, "; "), strings.Join(f.VictimGroups, "; "), strings.Join(f.ActorTypes, "; "),
			f.Language, f.ReleaseState, strconv.FormatBool(f.IsKey), f.Attribution, f.Credit, contactName, contactEmail,
			f.CreatedAt.UTC().Format(time.RFC3339), f.UpdatedAt.UTC().Format(time.RFC3339)}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		_ = cw.Write(row)
	}
	cw.Flush()
}

// csvSafe defuses a cell a spreadsheet would run as a formula (CSV
// injection) by prefixing it with a quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
