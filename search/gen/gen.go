// Package gen generates realistic, reproducible findings for tests and
// benchmarks of the search index (and of the server): multilingual
// best-practice texts, the default taxonomy of DESIGN.md, many events and
// workshops, and dates spread over several years.
package gen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rapporteur/rapporteur/search"
)

// Default taxonomy term keys, per dimension (the dimension names of
// search.Query.Filters). Never mutated; Taxonomy hands out copies.
var (
	countries = []string{"DK", "FI", "IS", "NO", "SE", "AX", "FO", "GL", "nordic", "EU", "intl"}
	ps        = []string{"prevention", "protection", "prosecution", "partnership"}
	forms     = []string{"sexual-exploitation", "forced-labour", "slavery", "servitude", "criminal-activities",
		"organ-removal", "forced-marriage", "illegal-adoption", "surrogacy"}
	themes = []string{"victim-identification", "assistance-shelter", "safe-return", "compensation-justice",
		"non-punishment", "multi-agency", "information-sharing", "training-indicators", "data-research",
		"labour-inspection", "supply-chains", "online-technology", "reducing-demand", "international-cooperation"}
	victims = []string{"women-girls", "men", "children", "unaccompanied-children", "eu-nationals",
		"migrant-workers", "asylum-seekers", "prostitution", "lgbti"}
	actors = []string{"police", "prosecution", "courts", "labour-inspectorate", "migration", "tax-customs",
		"border-guard", "social-services", "health", "child-protection", "national-coordinator",
		"national-rapporteur", "assistance-system", "ngo", "trade-union", "lawyers", "researchers", "io", "business"}
)

// Taxonomy returns the default taxonomy: dimension → term keys.
func Taxonomy() map[string][]string {
	cp := func(s []string) []string { return append([]string(nil), s...) }
	return map[string][]string{
		"country": cp(countries), "p": cp(ps), "form": cp(forms), "theme": cp(themes),
		"victim": cp(victims), "actor": cp(actors),
	}
}

// config holds the generator's settings.
type config struct {
	events            int
	workshopsPerEvent int
	start             time.Time
	years             int
}

// Option changes a generator setting.
type Option func(*config)

// Events sets how many events the findings spread over (default 40).
func Events(n int) Option { return func(c *config) { c.events = max(1, n) } }

// WorkshopsPerEvent sets the most workshops an event has (default 12; each
// event has between a third of that and that many).
func WorkshopsPerEvent(n int) Option { return func(c *config) { c.workshopsPerEvent = max(1, n) } }

// Start sets the date of the first event (default 18 November 2021) and
// over how many years events spread (default 4).
func Start(t time.Time, years int) Option {
	return func(c *config) { c.start, c.years = t, max(1, years) }
}

// event is a generated event with its workshops.
type event struct {
	id        string
	workshops []string
	date      time.Time
}

// Findings returns n findings generated from seed: the same seed and
// options give the same findings. IDs are "1".."n". Audience tokens are
// "org:E" always, plus "workshop:W" (draft), "event:E" (shared) and
// "public" (released), with E and W the event and workshop ids.
func Findings(seed int64, n int, opts ...Option) []search.Document {
	c := config{events: 40, workshopsPerEvent: 12, start: time.Date(2021, 11, 18, 10, 0, 0, 0, time.UTC), years: 4}
	for _, o := range opts {
		o(&c)
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))

	evs := make([]event, c.events)
	wid := 100
	span := c.years * 365
	for i := range evs {
		e := event{id: strconv.Itoa(i + 1)}
		e.date = c.start.AddDate(0, 0, r.IntN(span))
		nw := c.workshopsPerEvent/3 + r.IntN(c.workshopsPerEvent-c.workshopsPerEvent/3+1)
		for range max(1, nw) {
			wid++
			e.workshops = append(e.workshops, strconv.Itoa(wid))
		}
		evs[i] = e
	}

	docs := make([]search.Document, n)
	for i := range docs {
		docs[i] = finding(r, strconv.Itoa(i+1), evs[r.IntN(len(evs))])
	}
	return docs
}

// finding generates one finding of event e.
func finding(r *rand.Rand, id string, e event) search.Document {
	d := search.Document{ID: id, Event: e.id}
	if r.IntN(20) > 0 {
		d.Workshop = e.workshops[r.IntN(len(e.workshops))]
	}
	switch x := r.IntN(100); {
	case x < 72:
		d.Lang = "en"
	case x < 79:
		d.Lang = "sv"
	case x < 86:
		d.Lang = "fi"
	case x < 93:
		d.Lang = "da"
	default:
		d.Lang = "no"
	}

	d.Countries = pickCountries(r, d.Lang)
	d.Ps = pick(r, ps, 1+r.IntN(2))
	d.Forms = pick(r, forms, 1+weighted(r, 2))
	d.Themes = pick(r, themes, 1+r.IntN(3))
	d.VictimGroups = pick(r, victims, r.IntN(3))
	d.Actors = pick(r, actors, 1+r.IntN(3))

	t := texts[d.Lang]
	d.Title = fill(r, t, oneOf(r, t.titles))
	d.Done = sentences(r, t, t.done, 2+r.IntN(2))
	d.Results = sentences(r, t, t.results, 1+r.IntN(2))
	d.Transferability = sentences(r, t, t.transfer, 1)
	d.Proposal = sentences(r, t, t.proposal, 1)
	if r.IntN(3) == 0 {
		d.Comments = sentences(r, t, t.comments, 1)
	}
	if r.IntN(4) == 0 {
		d.KeyMessages = sentences(r, t, t.keyMessages, 1)
	}

	switch x := r.IntN(10); {
	case x < 3:
		d.Release = "draft"
	case x < 7:
		d.Release = "shared"
	default:
		d.Release = "released"
	}
	d.Audience = []string{"org:" + e.id}
	if d.Workshop != "" {
		d.Audience = append(d.Audience, "workshop:"+d.Workshop)
	}
	if d.Release != "draft" {
		d.Audience = append(d.Audience, "event:"+e.id)
	}
	if d.Release == "released" {
		d.Audience = append(d.Audience, "public")
	}

	d.Created = e.date.Add(time.Duration(r.IntN(8*60)) * time.Minute)
	d.Updated = d.Created
	if r.IntN(2) == 0 {
		d.Updated = d.Created.Add(time.Duration(r.IntN(60*24*90)) * time.Minute)
	}
	return d
}

// pickCountries favours the countries that speak the finding's language.
func pickCountries(r *rand.Rand, lang string) []string {
	home := map[string][]string{"sv": {"SE", "AX"}, "fi": {"FI", "AX"}, "da": {"DK", "FO", "GL"}, "no": {"NO"}}[lang]
	out := []string{}
	if len(home) > 0 && r.IntN(4) > 0 {
		out = append(out, home[weighted(r, len(home))])
	}
	for len(out) == 0 || (len(out) < 3 && r.IntN(3) == 0) {
		c := countries[weighted(r, len(countries))]
		if !contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// weighted returns an index in [0,n), smaller ones more often.
func weighted(r *rand.Rand, n int) int {
	a, b := r.IntN(n), r.IntN(n)
	return min(a, b)
}

// pick returns k distinct terms of list, favouring the first ones.
func pick(r *rand.Rand, list []string, k int) []string {
	out := make([]string, 0, k)
	for len(out) < k {
		t := list[weighted(r, len(list))]
		if !contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func oneOf(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

// sentences fills k distinct templates of list.
func sentences(r *rand.Rand, t *langText, list []string, k int) string {
	k = min(k, len(list))
	idx := r.Perm(len(list))[:k]
	parts := make([]string, k)
	for i, j := range idx {
		parts[i] = fill(r, t, list[j])
	}
	return strings.Join(parts, " ")
}

// fill replaces {slot} placeholders with random words of the language.
func fill(r *rand.Rand, t *langText, tmpl string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		slot := tmpl[i+1 : i+j]
		switch slot {
		case "n":
			b.WriteString(strconv.Itoa(2 + r.IntN(180)))
		case "year":
			b.WriteString(strconv.Itoa(2012 + r.IntN(12)))
		default:
			words, ok := t.slots[slot]
			if !ok {
				panic(fmt.Sprintf("gen: no slot %q", slot))
			}
			b.WriteString(oneOf(r, words))
		}
		tmpl = tmpl[i+j+1:]
	}
	s := b.String()
	first, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(first)) + s[size:]
}
