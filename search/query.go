package search

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// QueryError reports a query the index cannot run: bad syntax in
// Query.Text, an unknown filter dimension and the like. Msg is meant for
// the user.
type QueryError struct {
	Msg string
}

func (e *QueryError) Error() string { return "search: bad query: " + e.Msg }

func queryErrorf(format string, args ...interface{}) *QueryError {
	return &QueryError{Msg: fmt.Sprintf(format, args...)}
}

// Limits on user queries, to keep one search from expanding into a huge
// Bleve query.
const (
	maxQueryTerms  = 32
	maxQueryDepth  = 8
	minPrefixRunes = 2
	// maxQueryRunes bounds the text: a phrase of thousands of words in
	// a field cost seconds of CPU per request.
	maxQueryRunes = 1000
)

type tokKind int

const (
	tokWord tokKind = iota
	tokPhrase
	tokField // text is the field name
	tokLParen
	tokRParen
	tokOr
	tokNot
	tokPlus
)

type token struct {
	kind tokKind
	text string
	pos  int // rune offset, for messages
}

// lex splits a query string into tokens.
func lex(s string) ([]token, error) {
	var toks []token
	rs := []rune(s)
	i := 0
	for i < len(rs) {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(':
			toks = append(toks, token{tokLParen, "(", i})
			i++
		case r == ')':
			toks = append(toks, token{tokRParen, ")", i})
			i++
		case r == '"':
			start := i
			i++
			var b strings.Builder
			closed := false
			for i < len(rs) {
				if rs[i] == '\\' && i+1 < len(rs) {
					b.WriteRune(rs[i+1])
					i += 2
					continue
				}
				if rs[i] == '"' {
					closed = true
					i++
					break
				}
				b.WriteRune(rs[i])
				i++
			}
			if !closed {
				return nil, queryErrorf("unbalanced quote at position %d", start+1)
			}
			toks = append(toks, token{tokPhrase, b.String(), start})
		case (r == '-' || r == '+') && i+1 < len(rs) && !unicode.IsSpace(rs[i+1]) && rs[i+1] != ')':
			if r == '-' {
				toks = append(toks, token{tokNot, "-", i})
			} else {
				toks = append(toks, token{tokPlus, "+", i})
			}
			i++
		default:
			start := i
			for i < len(rs) && !unicode.IsSpace(rs[i]) && rs[i] != '(' && rs[i] != ')' && rs[i] != '"' {
				if rs[i] == '\\' && i+1 < len(rs) {
					i++
				}
				i++
			}
			w := string(rs[start:i])
			if c := strings.IndexByte(w, ':'); c > 0 && isQueryField(w[:c]) {
				toks = append(toks, token{tokField, w[:c], start})
				if rest := w[c+1:]; rest != "" {
					toks = append(toks, token{tokWord, unescape(rest), start + utf8.RuneCountInString(w[:c+1])})
				}
				continue
			}
			switch w {
			case "OR", "||":
				toks = append(toks, token{tokOr, w, start})
			case "AND", "&&", "*":
				// words are ANDed anyway; a lone * (match all) adds nothing
			case "NOT":
				toks = append(toks, token{tokNot, w, start})
			default:
				toks = append(toks, token{tokWord, unescape(w), start})
			}
		}
	}
	return toks, nil
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		if rs[i] == '\\' && i+1 < len(rs) {
			i++
		}
		b.WriteRune(rs[i])
	}
	return b.String()
}

// isQueryField reports whether name may be used as "name:" in a query.
func isQueryField(name string) bool {
	if _, ok := dimField[name]; ok {
		return true
	}
	for _, f := range textFields {
		if f == name {
			return true
		}
	}
	return false
}

// node is a parsed query.
type node interface{}

// termNode is a word, phrase or prefix, optionally in one field.
type termNode struct {
	text   string
	phrase bool
	prefix bool
	field  string // "" = all text fields
	pos    int
}

// andNode needs all of must and none of not.
type andNode struct {
	must []node
	not  []node
}

// orNode needs any of its children.
type orNode struct {
	any []node
}

type parser struct {
	toks  []token
	i     int
	terms int
}

// parseQuery parses user query text; nil node means "match everything".
func parseQuery(s string) (node, error) {
	if n := utf8.RuneCountInString(s); n > maxQueryRunes {
		return nil, queryErrorf("the query is %d characters long; at most %d", n, maxQueryRunes)
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, nil
	}
	p := &parser{toks: toks}
	n, err := p.or("", 0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		t := p.toks[p.i]
		if t.kind == tokRParen {
			return nil, queryErrorf("unbalanced parenthesis at position %d", t.pos+1)
		}
		return nil, queryErrorf("unexpected %q at position %d", t.text, t.pos+1)
	}
	return n, nil
}

func (p *parser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return token{}, false
}

func (p *parser) or(field string, depth int) (node, error) {
	if depth > maxQueryDepth {
		return nil, queryErrorf("too deeply nested")
	}
	first, err := p.and(field, depth)
	if err != nil {
		return nil, err
	}
	alts := []node{first}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tokOr {
			break
		}
		p.i++
		n, err := p.and(field, depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
	}
	if len(alts) == 1 {
		return first, nil
	}
	return &orNode{any: alts}, nil
}

func (p *parser) and(field string, depth int) (node, error) {
	a := &andNode{}
	for {
		t, ok := p.peek()
		if !ok || t.kind == tokRParen || t.kind == tokOr {
			break
		}
		neg := false
		switch t.kind {
		case tokNot:
			neg = true
			p.i++
		case tokPlus:
			p.i++
		}
		n, err := p.primary(field, depth)
		if err != nil {
			return nil, err
		}
		if neg {
			a.not = append(a.not, n)
		} else {
			a.must = append(a.must, n)
		}
	}
	if len(a.must) == 0 && len(a.not) == 0 {
		t, ok := p.peek()
		if !ok {
			return nil, queryErrorf("query ends where a search term is expected")
		}
		return nil, queryErrorf("expected a search term before %q at position %d", t.text, t.pos+1)
	}
	if len(a.must) == 1 && len(a.not) == 0 {
		return a.must[0], nil
	}
	return a, nil
}

func (p *parser) primary(field string, depth int) (node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, queryErrorf("query ends where a search term is expected")
	}
	switch t.kind {
	case tokLParen:
		p.i++
		n, err := p.or(field, depth+1)
		if err != nil {
			return nil, err
		}
		if c, ok := p.peek(); !ok || c.kind != tokRParen {
			return nil, queryErrorf("unbalanced parenthesis at position %d", t.pos+1)
		}
		p.i++
		return n, nil
	case tokField:
		if field != "" {
			return nil, queryErrorf("field %q inside field %q at position %d", t.text, field, t.pos+1)
		}
		p.i++
		v, ok := p.peek()
		if !ok || (v.kind != tokWord && v.kind != tokPhrase && v.kind != tokLParen) || v.pos > t.pos+utf8.RuneCountInString(t.text)+1 {
			return nil, queryErrorf("%s: needs a value right after the colon (position %d)", t.text, t.pos+1)
		}
		if v.kind == tokLParen && !isTextField(t.text) {
			return nil, queryErrorf("%s: takes a single value, not a group (position %d)", t.text, t.pos+1)
		}
		return p.primary(t.text, depth)
	case tokWord, tokPhrase:
		p.i++
		p.terms += wordsIn(t.text) // a phrase, or "a-b-c", is searched word by word
		if p.terms > maxQueryTerms {
			return nil, queryErrorf("too many search terms (at most %d; each word of a quoted phrase counts)", maxQueryTerms)
		}
		n := &termNode{text: t.text, phrase: t.kind == tokPhrase, field: field, pos: t.pos}
		if !n.phrase && strings.HasSuffix(n.text, "*") {
			n.text = strings.TrimRight(n.text, "*")
			n.prefix = true
			if utf8.RuneCountInString(n.text) < minPrefixRunes {
				return nil, queryErrorf("prefix %q at position %d needs at least %d letters before the *", t.text, t.pos+1, minPrefixRunes)
			}
		}
		return n, nil
	case tokRParen:
		return nil, queryErrorf("unbalanced parenthesis at position %d", t.pos+1)
	case tokOr:
		return nil, queryErrorf("OR at position %d needs a term on both sides", t.pos+1)
	default:
		return nil, queryErrorf("unexpected %q at position %d", t.text, t.pos+1)
	}
}

// wordsIn counts the runs of letters and digits in s (at least one): the
// words an analyser makes of a search term, near enough.
func wordsIn(s string) int {
	n, in := 0, false
	for _, r := range s {
		w := unicode.IsLetter(r) || unicode.IsDigit(r)
		if w && !in {
			n++
		}
		in = w
	}
	return max(n, 1)
}

func isTextField(name string) bool {
	for _, f := range textFields {
		if f == name {
			return true
		}
	}
	return false
}

// compiler turns parsed nodes into Bleve queries.
type compiler struct {
	m   mapping.IndexMapping
	pos *posCache // for words and phrases; nil: Bleve's own queries only
}

// neutralBoost is the boost of the clause that stands in for a stop word:
// it matches every document of a language and should barely score.
const neutralBoost = 0.0001

// compile builds the Bleve query for n. inAnd says whether n is a required
// (ANDed) part: there a word that a language drops as a stop word matches
// every document of that language; elsewhere it matches none.
func (c *compiler) compile(n node, inAnd bool) query.Query {
	switch n := n.(type) {
	case *andNode:
		var must []query.Query
		for _, m := range n.must {
			must = append(must, c.compile(m, true))
		}
		var not []query.Query
		for _, m := range n.not {
			not = append(not, c.compile(m, false))
		}
		if len(must) == 0 {
			must = []query.Query{query.NewMatchAllQuery()}
		}
		if len(not) == 0 {
			if len(must) == 1 {
				return must[0]
			}
			return query.NewConjunctionQuery(must)
		}
		b := query.NewBooleanQuery(must, nil, not)
		return b
	case *orNode:
		var any []query.Query
		for _, m := range n.any {
			any = append(any, c.compile(m, false))
		}
		return query.NewDisjunctionQuery(any)
	case *termNode:
		return c.term(n, inAnd)
	}
	return query.NewMatchNoneQuery()
}

// term builds the query for one word, phrase or prefix.
func (c *compiler) term(n *termNode, inAnd bool) query.Query {
	if f, ok := dimField[n.field]; ok {
		if n.prefix {
			q := query.NewPrefixQuery(n.text)
			q.SetField(f)
			return q
		}
		q := query.NewTermQuery(n.text)
		q.SetField(f)
		return q
	}
	// The term is analyzed in every language and each distinct form
	// (a stem may be the same in several languages) is looked up once in
	// textField. A phrase matches within one array element, so within one
	// text field.
	var forms []string
	addForm := func(form string) {
		for _, f := range forms {
			if f == form {
				return
			}
		}
		forms = append(forms, form)
	}
	var phrases [][][]string
	addPhrase := func(p [][]string) {
		for _, q := range phrases {
			if samePhrase(p, q) {
				return
			}
		}
		phrases = append(phrases, p)
	}
	// neutral stands in for a word a language drops as a stop word.
	var neutral []query.Query
	for _, lang := range langs {
		analyzer := c.m.AnalyzerNamed(analyzerFor[lang])
		if n.prefix {
			// Indexed terms are stems, so "indicat*" must also look for
			// the stem "indic" of the prefix.
			p := strings.ToLower(n.text)
			addForm(p)
			if toks := analyzer.Analyze([]byte(n.text)); len(toks) == 1 {
				stem := string(toks[0].Term)
				if stem != p && strings.HasPrefix(p, stem) && utf8.RuneCountInString(stem) >= minPrefixRunes {
					addForm(stem)
				}
			}
			continue
		}
		toks := analyzer.Analyze([]byte(n.text))
		switch {
		case len(toks) == 0:
			if inAnd {
				q := query.NewTermQuery(lang)
				q.SetField("lang")
				q.SetBoost(neutralBoost)
				neutral = append(neutral, q)
			}
		case len(toks) == 1:
			addForm(string(toks[0].Term))
		default:
			addPhrase(phraseOf(toks))
		}
	}
	var any []query.Query
	for _, form := range forms {
		any = append(any, c.formQuery(form, n.prefix))
	}
	for _, p := range phrases {
		any = append(any, c.phraseQueryOf(p))
	}
	if len(any) > 0 && n.field != "" {
		any = []query.Query{&inTextField{q: query.NewDisjunctionQuery(any), pos: textFieldPos(n.field)}}
	}
	any = append(any, neutral...)
	if len(any) == 0 {
		return query.NewMatchNoneQuery()
	}
	if len(any) == 1 {
		return any[0]
	}
	if c.pos != nil && allSegNative(any) {
		return &anyQuery{qs: any}
	}
	return query.NewDisjunctionQuery(any)
}

// allSegNative reports whether every query of qs works segment by segment.
func allSegNative(qs []query.Query) bool {
	for _, q := range qs {
		if !segNative(q) {
			return false
		}
	}
	return true
}

// textFieldPos is the array element of textField that holds a text field.
func textFieldPos(field string) uint64 {
	for i, f := range textFields {
		if f == field {
			return uint64(i)
		}
	}
	panic("search: not a text field: " + field)
}

// inTextField matches the documents where q, a query on textField,
// matches within one text field (array element pos), as in "title:word".
// It keeps only the match positions in that field, so that highlights
// stay there too.
type inTextField struct {
	q   query.Query
	pos uint64
}

// Searcher implements query.Query.
func (f *inTextField) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	keep := opts.IncludeTermVectors
	opts.IncludeTermVectors = true
	s, err := f.q.Searcher(ctx, r, m, opts)
	if err != nil {
		return nil, err
	}
	return searcher.NewFilteringSearcher(ctx, s, func(_ *bsearch.SearchContext, d *bsearch.DocumentMatch) bool {
		// A new list: Bleve's searchers may still hold the match's own (a
		// prefix's term searchers did), and filtering it in place dropped
		// matches of other documents.
		in := make([]bsearch.FieldTermLocation, 0, len(d.FieldTermLocations))
		for _, l := range d.FieldTermLocations {
			if ap := l.Location.ArrayPositions; len(ap) == 1 && ap[0] == f.pos {
				in = append(in, l)
			}
		}
		found := len(in) > 0
		if !keep {
			in = in[:0]
		}
		d.FieldTermLocations = in
		return found
	}), nil
}

// formQuery is the query for one analyzed form of a word or a prefix in
// textField: ours, or Bleve's own when the compiler has no position cache.
func (c *compiler) formQuery(form string, prefix bool) query.Query {
	switch {
	case c.pos == nil && prefix:
		q := query.NewPrefixQuery(form)
		q.SetField(textField)
		return q
	case c.pos == nil:
		q := query.NewTermQuery(form)
		q.SetField(textField)
		return q
	case prefix:
		return &prefixQuery{prefix: form, field: textField}
	default:
		return &termQuery{term: form, field: textField, pos: c.pos}
	}
}

// phraseOf lays out analyzed tokens by position, as Bleve's match-phrase
// query does: a position a stop word left empty matches any term.
func phraseOf(toks analysis.TokenStream) [][]string {
	first, last := toks[0].Position, toks[0].Position
	for _, t := range toks {
		first, last = min(first, t.Position), max(last, t.Position)
	}
	p := make([][]string, last-first+1)
	for _, t := range toks {
		p[t.Position-first] = append(p[t.Position-first], string(t.Term))
	}
	return p
}

// phraseQueryOf is the query for a phrase laid out by phraseOf: our
// phraseQuery, or Bleve's multi-phrase query where a position holds
// several terms or the compiler has no position cache.
func (c *compiler) phraseQueryOf(p [][]string) query.Query {
	terms := make([]string, len(p))
	for i, at := range p {
		switch len(at) {
		case 0:
		case 1:
			terms[i] = at[0]
		default:
			return query.NewMultiPhraseQuery(p, textField)
		}
	}
	if c.pos == nil {
		return query.NewMultiPhraseQuery(p, textField)
	}
	return &phraseQuery{terms: terms, field: textField, pos: c.pos}
}

// samePhrase reports whether two phrases have the same terms at each position.
func samePhrase(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}
