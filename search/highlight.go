package search

import (
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/highlight"
	htmlformat "github.com/blevesearch/bleve/v2/search/highlight/format/html"
	simplefrag "github.com/blevesearch/bleve/v2/search/highlight/fragmenter/simple"
	simplehl "github.com/blevesearch/bleve/v2/search/highlight/highlighter/simple"
)

// fragmentSize is the length in bytes of a highlighted snippet.
const fragmentSize = 200

// snippets returns, for each text field where dm's match positions lie,
// its best snippet: HTML-escaped text with the matches in <mark>. The
// positions are in textField; element i of it is textFields[i], whose
// text dm.Fields holds. Bleve's own highlighter would run over textField
// and lose which text field a snippet came from.
func snippets(dm *search.DocumentMatch) map[string][]string {
	tlm := dm.Locations[textField]
	if len(tlm) == 0 {
		return nil
	}
	ordered := highlight.OrderTermLocations(tlm)
	ordered.MergeOverlapping()
	scorer := simplehl.NewFragmentScorer(tlm)
	fragmenter := simplefrag.NewFragmenter(fragmentSize)
	formatter := htmlformat.NewFragmentFormatter("<mark>", "</mark>")
	out := make(map[string][]string)
	for i, field := range textFields {
		text := str(dm.Fields[field])
		if text == "" {
			continue
		}
		pos := search.ArrayPositions{uint64(i)}
		var in highlight.TermLocations
		for _, tl := range ordered {
			if tl != nil && tl.ArrayPositions.Equals(pos) {
				in = append(in, tl)
			}
		}
		if len(in) == 0 {
			continue
		}
		var best *highlight.Fragment
		for _, f := range fragmenter.Fragment([]byte(text), in) {
			f.ArrayPositions = pos
			scorer.Score(f)
			if best == nil || f.Score > best.Score {
				best = f
			}
		}
		if best == nil {
			continue
		}
		snippet := formatter.Format(best, in)
		if best.Start != 0 {
			snippet = simplehl.DefaultSeparator + snippet
		}
		if best.End != len(best.Orig) {
			snippet += simplehl.DefaultSeparator
		}
		out[field] = []string{snippet}
	}
	return out
}
