package search

import (
	"strings"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/da" // registers analyzer "da"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/en" // registers analyzer "en"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/fi" // registers analyzer "fi"
	_ "github.com/blevesearch/bleve/v2/analysis/lang/no" // registers analyzer "no"
	"github.com/blevesearch/bleve/v2/analysis/lang/sv"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	unicodetok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"

	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/custom" // analyzer type of the sv analyzer
	_ "github.com/blevesearch/bleve/v2/analysis/char/regexp"     // char filter used by the sv analyzer
)

// MappingVersion is the version of the index layout built by this package.
// Bump it whenever the mapping or the way documents are indexed changes:
// Open then reports ErrNeedsRebuild for indexes built by an older version.
const MappingVersion = 3

// langs are the languages the index analyzes, in a fixed order.
var langs = []string{"en", "da", "fi", "no", "sv"}

// Languages returns the language codes the index analyzes.
func Languages() []string { return append([]string(nil), langs...) }

// svAnalyzer is the name of our Swedish analyzer: bleve's "sv" plus char
// filters that turn the definite form "-eln(s)" into "-el" before stemming,
// which the Swedish snowball stemmer does not do ("människohandeln" →
// "människohandel"). The replacement keeps byte offsets, so highlighting is
// unaffected.
const svAnalyzer = "sv_rapporteur"

// analyzerFor maps a language to the analyzer its text fields use.
var analyzerFor = map[string]string{
	"en": "en",
	"da": "da",
	"fi": "fi",
	"no": "no",
	"sv": svAnalyzer,
}

// textFields are the full-text fields of a finding, as named in query
// syntax and in Hit.Fragments. Each is stored under its name and indexed
// as one element of textField.
var textFields = []string{"title", "done", "results", "transferability", "proposal", "comments", "keymessages"}

// textField is the one indexed text field: an array holding a document's
// text fields in textFields order (element i is textFields[i]), analyzed
// in the document's language. Every language shares it, so a word is one
// lookup whatever the language. Positions keep their array element, so a
// phrase matches within one text field and a fielded query checks the
// element. One field instead of one per text field and language halves
// what indexing writes.
const textField = "text"

// dimensions are the filter and facet dimensions, in a fixed order.
var dimensions = []string{"country", "theme", "p", "form", "victim", "actor", "workshop", "event", "release", "lang"}

// dimField maps a filter/facet dimension to its keyword field in the index.
var dimField = map[string]string{
	"country":  "countries",
	"theme":    "themes",
	"p":        "ps",
	"form":     "forms",
	"victim":   "victims",
	"actor":    "actors",
	"workshop": "workshop",
	"event":    "event",
	"release":  "release",
	"lang":     "lang",
}

const (
	fieldAudience = "audience"
	fieldUpdated  = "updated"
	fieldCreated  = "created"
)

// newMapping builds the index mapping: one document type per language,
// chosen by the "lang" field, whose textField uses that language's
// analyzer; the text fields stored for highlighting; keyword and date
// fields for filters, facets and sorting.
func newMapping() (*mapping.IndexMappingImpl, error) {
	im := mapping.NewIndexMapping()
	if err := im.AddCustomCharFilter("sv_definite_elns", map[string]interface{}{
		"type":    "regexp",
		"regexp":  `(?i)(\pL{3}el)ns\b`,
		"replace": "${1}  ",
	}); err != nil {
		return nil, err
	}
	if err := im.AddCustomCharFilter("sv_definite_eln", map[string]interface{}{
		"type":    "regexp",
		"regexp":  `(?i)(\pL{3}el)n\b`,
		"replace": "${1} ",
	}); err != nil {
		return nil, err
	}
	if err := im.AddCustomAnalyzer(svAnalyzer, map[string]interface{}{
		"type":          "custom",
		"char_filters":  []interface{}{"sv_definite_elns", "sv_definite_eln"},
		"tokenizer":     unicodetok.Name,
		"token_filters": []interface{}{lowercase.Name, sv.StopName, sv.SnowballStemmerName},
	}); err != nil {
		return nil, err
	}
	im.TypeField = "lang"
	for _, lang := range langs {
		im.AddDocumentMapping(lang, docMapping(lang))
	}
	im.DefaultMapping = docMapping("en")
	im.DefaultAnalyzer = "en"
	im.IndexDynamic = false
	im.StoreDynamic = false
	im.DocValuesDynamic = false
	return im, nil
}

// docMapping is the mapping of a document in lang.
func docMapping(lang string) *mapping.DocumentMapping {
	dm := mapping.NewDocumentMapping()
	dm.Dynamic = false
	// No composite _all field: textField already gathers the text.
	dm.AddSubDocumentMapping("_all", mapping.NewDocumentDisabledMapping())

	text := mapping.NewTextFieldMapping()
	text.Analyzer = analyzerFor[lang]
	text.Store = false
	text.IncludeTermVectors = true // phrases, fielded queries, highlights
	text.IncludeInAll = false
	text.DocValues = false
	dm.AddFieldMappingsAt(textField, text)
	for _, f := range textFields {
		fm := mapping.NewTextFieldMapping()
		fm.Index = false
		fm.Store = true
		fm.IncludeTermVectors = false
		fm.IncludeInAll = false
		fm.DocValues = false
		dm.AddFieldMappingsAt(f, fm)
	}
	for _, dim := range dimensions {
		dm.AddFieldMappingsAt(dimField[dim], keywordField(true))
	}
	dm.AddFieldMappingsAt(fieldAudience, keywordField(false))
	// The update time is indexed (the columns read its exact terms for
	// date order); the creation time is only shown.
	for _, f := range []string{fieldUpdated, fieldCreated} {
		fm := mapping.NewDateTimeFieldMapping()
		fm.Index = f == fieldUpdated
		fm.Store = true
		fm.DocValues = false
		fm.IncludeInAll = false
		dm.AddFieldMappingsAt(f, fm)
	}
	return dm
}

// keywordField is a single-token field for exact filters and facets.
func keywordField(store bool) *mapping.FieldMapping {
	fm := mapping.NewKeywordFieldMapping()
	fm.Analyzer = keyword.Name
	fm.Store = store
	fm.DocValues = true
	fm.IncludeTermVectors = false
	fm.IncludeInAll = false
	return fm
}

// bleveDoc turns a Document into the map bleve indexes, typed by lang.
func bleveDoc(d *Document, lang string) map[string]interface{} {
	m := make(map[string]interface{}, 24)
	texts := []string{d.Title, d.Done, d.Results, d.Transferability, d.Proposal, d.Comments, d.KeyMessages}
	m[textField] = texts // empty ones too: element i is textFields[i]
	for i, f := range textFields {
		if texts[i] != "" {
			m[f] = texts[i]
		}
	}
	put := func(field string, vals []string) {
		if len(vals) > 0 {
			m[field] = vals
		}
	}
	put("countries", d.Countries)
	put("themes", d.Themes)
	put("ps", d.Ps)
	put("forms", d.Forms)
	put("victims", d.VictimGroups)
	put("actors", d.Actors)
	put(fieldAudience, d.Audience)
	if d.Workshop != "" {
		m["workshop"] = d.Workshop
	}
	if d.Event != "" {
		m["event"] = d.Event
	}
	if d.Release != "" {
		m["release"] = d.Release
	}
	m["lang"] = lang
	if !d.Updated.IsZero() {
		m[fieldUpdated] = d.Updated.UTC()
	}
	if !d.Created.IsZero() {
		m[fieldCreated] = d.Created.UTC()
	}
	return m
}

// docLang is the language a document is indexed in: its Lang when
// supported, otherwise the detected language of its text, otherwise def.
func docLang(d *Document, def string) string {
	if _, ok := analyzerFor[d.Lang]; ok {
		return d.Lang
	}
	text := strings.Join([]string{d.Title, d.Done, d.Results, d.Transferability, d.Proposal, d.Comments, d.KeyMessages}, " ")
	if l := DetectLang(text); l != "" {
		return l
	}
	return def
}

// markerWords are frequent function words that tell the five languages
// apart. Words shared by several languages are listed under each of them.
var markerWords = map[string][]string{
	"en": {"the", "and", "of", "to", "is", "are", "with", "for", "that", "was", "were", "in", "on", "by", "which", "has", "have", "from", "this", "their", "not", "it"},
	"da": {"og", "af", "at", "er", "til", "det", "med", "som", "på", "ikke", "mod", "efter", "blev", "være", "nogle", "meget", "hvor", "også", "der", "deres", "fra", "har", "for", "ofre", "en", "et", "vi", "kan", "om", "skal", "eller", "mellem"},
	"no": {"og", "av", "at", "er", "til", "det", "med", "som", "på", "ikke", "mot", "etter", "ble", "være", "noen", "mye", "hvor", "også", "der", "deres", "fra", "har", "for", "ofre", "en", "et", "vi", "kan", "om", "skal", "eller", "mellom", "gjennom", "ofrene"},
	"sv": {"och", "att", "är", "av", "för", "med", "som", "på", "inte", "till", "det", "om", "också", "mot", "efter", "blev", "vara", "har", "från", "deras", "en", "ett", "vi", "kan", "ska", "eller", "mellan", "genom", "offer", "där"},
	"fi": {"ja", "on", "ei", "että", "ovat", "joka", "jotka", "sekä", "myös", "tai", "kanssa", "oli", "ole", "se", "ne", "kun", "mutta", "jossa", "kuin", "tämä", "niiden", "uhrit", "uhrien", "ihmiskaupan"},
}

// markerIndex maps a marker word to the languages it marks; built once,
// never mutated.
var markerIndex = func() map[string][]string {
	m := make(map[string][]string)
	for _, l := range langs {
		for _, w := range markerWords[l] {
			m[w] = append(m[w], l)
		}
	}
	return m
}()

// DetectLang guesses the language (one of Languages()) of a text by counting
// marker words; "" when the text holds none.
func DetectLang(text string) string {
	score := make(map[string]int, len(langs))
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r)
	})
	// Letters that only some of the languages use weigh in as well.
	for _, r := range strings.ToLower(text) {
		switch r {
		case 'ä', 'ö':
			score["sv"]++
			score["fi"]++
		case 'æ', 'ø':
			score["da"]++
			score["no"]++
		}
	}
	for _, w := range words {
		for _, l := range markerIndex[w] {
			score[l] += 2
		}
	}
	best, bestScore := "", 0
	for _, l := range langs {
		if score[l] > bestScore {
			best, bestScore = l, score[l]
		}
	}
	return best
}

// parseStoredTime reads a stored datetime field value.
func parseStoredTime(v interface{}) time.Time {
	s, ok := v.(string)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
