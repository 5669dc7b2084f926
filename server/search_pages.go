package main

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
)

// facetDimTitles names the facet dimensions on the search page.
var facetDimTitles = map[string]string{
	"country": "Country or area", "theme": "Theme", "p": "The 4 Ps", "form": "Form of exploitation",
	"victim": "Victim group", "actor": "Actor type", "workshop": "Workshop", "release": "Release state", "lang": "Language",
}

// facetBox is one checkbox of the search page.
type facetBox struct {
	Term, Label string
	Count       int
	Checked     bool
}

// facetGroup is one dimension's checkboxes.
type facetGroup struct {
	Dim, Title string
	Boxes      []facetBox
}

// hitView is one result on the search page. Fragments come from the
// search package, HTML-escaped with <mark> around matches.
type hitView struct {
	URL, Title, Workshop, Release string
	TitleHTML                     template.HTML
	Snippets                      []template.HTML
	Countries, Themes             []string
}

// snippetFields are the text fields whose fragments the page shows, in order.
var snippetFields = []string{"done", "results", "transferability", "proposal", "comments", "keymessages"}

// handleSearchPage is the search page for report authors: a query box,
// facet checkboxes with counts and highlighted results; a plain GET form.
func (a *app) handleSearchPage(w http.ResponseWriter, r *http.Request) {
	s, err := a.parseSearch(r, r.PathValue("slug"))
	if err != nil {
		a.message(w, r, err)
		return
	}
	names, err := a.searchNames(r.Context(), s.Event)
	if err != nil {
		a.message(w, r, err)
		return
	}
	data := map[string]any{"Event": s.Event, "Q": s.Query.Text, "Sort": s.Query.Sort}
	res, err := a.runSearch(w, r, s.Query)
	status := http.StatusOK
	if err != nil {
		if c := domain.ErrorCode(err); c != domain.Invalid && c != domain.Unavailable {
			a.message(w, r, err)
			return
		}
		status = statusOf(domain.ErrorCode(err))
		data["Error"] = domain.ErrorMessage(err)
		a.page(w, r, status, "search.html", data)
		return
	}
	var groups []facetGroup
	for _, dim := range searchDims {
		g := facetGroup{Dim: dim, Title: facetDimTitles[dim]}
		seen := map[string]bool{}
		for _, fc := range res.Facets[dim] {
			seen[fc.Term] = true
			g.Boxes = append(g.Boxes, facetBox{Term: fc.Term, Label: names.label(dim, fc.Term), Count: fc.Count,
				Checked: slices.Contains(s.Query.Filters[dim], fc.Term)})
		}
		// A checked term nothing matches any more stays, so it can be unchecked.
		for _, t := range s.Query.Filters[dim] {
			if !seen[t] {
				g.Boxes = append(g.Boxes, facetBox{Term: t, Label: names.label(dim, t), Checked: true})
			}
		}
		if len(g.Boxes) > 0 {
			groups = append(groups, g)
		}
	}
	var hits []hitView
	for _, h := range res.Hits {
		hv := hitView{URL: names.findingURL(h.Event, h.ID), Title: h.Title, Workshop: names.label("workshop", h.Workshop),
			Release: names.label("release", h.Release)}
		if fs := h.Fragments["title"]; len(fs) > 0 {
			hv.TitleHTML = template.HTML(fs[0]) // escaped by the search package
		}
		for _, f := range snippetFields {
			for _, frag := range h.Fragments[f] {
				if len(hv.Snippets) < 3 {
					hv.Snippets = append(hv.Snippets, template.HTML(frag)) // escaped by the search package
				}
			}
		}
		for _, c := range h.Countries {
			hv.Countries = append(hv.Countries, names.label("country", c))
		}
		for _, t := range h.Themes {
			hv.Themes = append(hv.Themes, names.label("theme", t))
		}
		hits = append(hits, hv)
	}
	// The CSV link and paging keep the search's parameters.
	params := r.URL.Query()
	params.Del("page")
	csv := url.Values{}
	for k, v := range params {
		csv[k] = v
	}
	csv.Set("event", s.Event.Slug)
	page := max(1, s.Query.Page)
	size := s.Query.PageSize() // as the index cut the page
	pageURL := func(p int) string {
		v := url.Values{}
		for k, vs := range params {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(p))
		return "?" + v.Encode()
	}
	if page > 1 {
		data["Prev"] = pageURL(page - 1)
	}
	if uint64(page*size) < res.Total {
		data["Next"] = pageURL(page + 1)
	}
	data["Total"] = res.Total
	data["Page"] = page
	data["Facets"] = groups
	data["Hits"] = hits
	data["CSV"] = "/api/search.csv?" + csv.Encode()
	data["MaxCSVRows"], data["MaxCSVRowsText"] = uint64(maxCSVRows), thousands(maxCSVRows)
	data["ByDate"] = s.Query.Sort == "date"
	a.page(w, r, status, "search.html", data)
}

// thousands writes n (≥ 0) with a comma between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// attributionRule says how a finding of attribution a is credited.
func attributionRule(a string) string {
	switch a {
	case "organisation":
		return "credited to the author's organisation, as they agreed"
	case "named":
		return "credited by name, as the author agreed"
	}
	return "Chatham House rule: country and actor type only"
}

// handleFindingPage shows one finding with all its fields to those who
// may read it (the same rule as search); to anyone else it does not exist.
func (a *app) handleFindingPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev, err := a.eventOf(r)
	if err != nil {
		a.message(w, r, err)
		return
	}
	v, err := authOf(r).viewer(r.Context())
	if err != nil {
		a.message(w, r, err)
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	notFound := domain.Errorf(domain.NotFound, "There is no finding %s in this event, or you may not see it.", r.PathValue("id"))
	fs, err := a.store.FindingsForIndex(ctx, []int64{id})
	if err != nil {
		a.message(w, r, err)
		return
	}
	if len(fs) != 1 || fs[0].EventID != ev.ID || !mayRead(searchAudience(v, ev.ID), fs[0].Finding) {
		a.message(w, r, notFound)
		return
	}
	f := fs[0]
	names, err := a.searchNames(ctx, &ev)
	if err != nil {
		a.message(w, r, err)
		return
	}
	type termList struct {
		Title  string
		Labels []string
	}
	var terms []termList
	for _, t := range []struct {
		dim  string
		keys []string
	}{{"country", f.Countries}, {"theme", f.Themes}, {"p", f.Ps}, {"form", f.Forms}, {"victim", f.VictimGroups}, {"actor", f.ActorTypes}} {
		tl := termList{Title: facetDimTitles[t.dim]}
		for _, k := range t.keys {
			tl.Labels = append(tl.Labels, names.label(t.dim, k))
		}
		terms = append(terms, tl)
	}
	workshop := ""
	if f.WorkshopID != nil {
		workshop = names.label("workshop", strconv.FormatInt(*f.WorkshopID, 10))
	}
	showContact := f.ContactConsent && auth.Allowed(v.principal(ev.ID), auth.ActSearchAll, 0)
	// Comments are the group's discussion, for the event's members: a
	// release publishes the finding, not what was said about it.
	var comments []string
	if auth.Allowed(v.principal(ev.ID), auth.ActFindingReadShared, 0) {
		comments = f.Comments
	}
	ex, err := a.store.FindingsForExport(ctx, []int64{f.ID}) // its credit
	if err != nil {
		a.message(w, r, err)
		return
	}
	credit := ""
	if len(ex) == 1 {
		credit = ex[0].Credit
	}
	a.page(w, r, http.StatusOK, "finding.html", map[string]any{
		"Event": ev, "Finding": f.Finding, "Comments": comments, "Workshop": workshop, "Terms": terms,
		"Credit": credit, "Rule": attributionRule(f.Attribution),
		"Release": names.label("release", f.ReleaseState), "Language": names.label("lang", f.Language),
		"ShowContact": showContact,
	})
}
