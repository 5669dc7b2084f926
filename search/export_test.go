package search

import "context"

// MatchScores runs a query's text as Search does and returns each
// matching document's id with its score. With reference, it uses Bleve's
// own queries only, for comparison with the segment-by-segment ones.
// Scores are weighed over what audience may see.
func (ix *Index) MatchScores(ctx context.Context, text string, audience []string, reference bool) (map[string]float64, error) {
	n, err := parseQuery(text)
	if err != nil {
		return nil, err
	}
	c := &compiler{m: ix.bi.Mapping(), pos: ix.pos}
	if reference {
		c.pos = nil
	}
	out := make(map[string]float64)
	var idErr error
	v, err := ix.matches(ctx, c.compile(n, true), true, audience, func(v *view) func(int, uint32, float64) {
		return func(seg int, local uint32, score float64) {
			id, err := v.segs[seg].DocID(uint64(local))
			if err != nil {
				idErr = err
			}
			out[string(id)] = score
		}
	})
	if v != nil {
		v.release()
	}
	if err == nil {
		err = idErr
	}
	return out, err
}
