package search

import (
	"sync"

	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// posCacheBudget bounds the memory an index's position cache holds.
const posCacheBudget = 64 << 20

// termPositions are one term's postings in one segment, decoded: its
// documents with the term's frequency and norm in each and, if asked for,
// its positions. Reading positions from the index costs six varints a
// position, which made a phrase of common words (half the documents hold
// "labour") slow; matching decoded positions is a merge of small sorted
// lists. A word's postings are read the same way, and summing scores from
// decoded postings is a tight loop.
type termPositions struct {
	docs []uint32  // ascending, deleted documents included
	off  []uint32  // docs[i] holds the term off[i+1]-off[i] times, at pos[off[i]:off[i+1]]
	pos  []uint64  // array element << 32 | position, ascending per document; nil without positions
	norm []float32 // per document
	// dense holds docs as a set when they are more than a 32nd of the
	// segment (then it costs less than docs), for postings decoded without
	// positions: counting the documents a viewer may see is then an AND of
	// two sets (see scopedReader.docFreq).
	dense bitset
}

// freq is how often the i-th document holds the term.
func (tp *termPositions) freq(i int) uint64 { return uint64(tp.off[i+1] - tp.off[i]) }

// size is the memory the positions hold, in bytes.
func (tp *termPositions) size() int {
	return 4*len(tp.docs) + 4*len(tp.off) + 8*len(tp.pos) + 4*len(tp.norm) + 8*len(tp.dense) + 96
}

// decodePositions reads a term's postings from a segment, with positions
// if withPos.
func decodePositions(dict segment.TermDictionary, term string, withPos bool) (*termPositions, error) {
	pl, err := dict.PostingsList([]byte(term), nil, nil)
	if err != nil {
		return nil, err
	}
	n := int(pl.Count())
	tp := &termPositions{docs: make([]uint32, 0, n), off: make([]uint32, 1, n+1), norm: make([]float32, 0, n)}
	it := pl.Iterator(true, true, withPos, nil)
	for {
		p, err := it.Next()
		if err != nil {
			return nil, err
		}
		if p == nil {
			break
		}
		tp.docs = append(tp.docs, uint32(p.Number()))
		tp.norm = append(tp.norm, float32(p.Norm()))
		if !withPos {
			tp.off = append(tp.off, tp.off[len(tp.off)-1]+uint32(p.Frequency()))
			continue
		}
		first := len(tp.pos)
		for _, l := range p.Locations() {
			var el uint64
			if ap := l.ArrayPositions(); len(ap) > 0 {
				el = ap[0]
			}
			tp.pos = append(tp.pos, el<<32|l.Pos())
		}
		sortUint64s(tp.pos[first:])
		tp.off = append(tp.off, uint32(len(tp.pos)))
	}
	return tp, nil
}

// sortUint64s sorts a short list in place (they come nearly sorted).
func sortUint64s(s []uint64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// has reports whether the i-th document holds position p.
func (tp *termPositions) has(i int, p uint64) bool {
	for _, q := range tp.pos[tp.off[i]:tp.off[i+1]] {
		if q >= p {
			return q == p
		}
	}
	return false
}

// posCache keeps decoded term postings per segment, the least recently
// used dropped beyond its budget. Segments never change, so an entry
// stays right until its segment is merged away; entries of segments gone
// from the index are dropped as new ones come.
type posCache struct {
	budget  int // bytes
	mu      sync.Mutex
	used    int
	tick    uint64
	entries map[posKey]*posEntry
}

type posKey struct {
	seg     segment.Segment
	term    string
	withPos bool
}

type posEntry struct {
	once sync.Once
	tp   *termPositions
	err  error
	size int    // counted in used once decoded
	last uint64 // tick of the last use
}

func newPosCache(budget int) *posCache {
	return &posCache{budget: budget, entries: make(map[posKey]*posEntry)}
}

// get returns term's postings in seg (with positions if withPos),
// decoding them from dict unless cached. live says which segments the
// index still has.
func (c *posCache) get(seg segment.Segment, dict segment.TermDictionary, term string, withPos bool, live func(segment.Segment) bool) (*termPositions, error) {
	k := posKey{seg, term, withPos}
	c.mu.Lock()
	c.tick++
	e := c.entries[k]
	if e == nil {
		e = &posEntry{}
		c.entries[k] = e
	}
	e.last = c.tick
	c.mu.Unlock()

	e.once.Do(func() {
		e.tp, e.err = decodePositions(dict, term, withPos)
		if n := int(seg.Count()); e.err == nil && !withPos && len(e.tp.docs) > n/32 {
			e.tp.dense = newBitset(n)
			for _, d := range e.tp.docs {
				e.tp.dense.set(d)
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.entries[k] != e { // dropped meanwhile: its segment is gone
			return
		}
		if e.err != nil {
			delete(c.entries, k)
			return
		}
		e.size = e.tp.size()
		c.used += e.size
		c.shrink(live)
	})
	return e.tp, e.err
}

// shrink drops the entries of segments gone, then the least recently used
// ones until the cache fits its budget. It holds c.mu.
func (c *posCache) shrink(live func(segment.Segment) bool) {
	for k, e := range c.entries {
		if !live(k.seg) {
			c.used -= e.size
			delete(c.entries, k)
		}
	}
	for c.used > c.budget {
		var oldest posKey
		var o *posEntry
		for k, e := range c.entries {
			if e.size > 0 && (o == nil || e.last < o.last) {
				oldest, o = k, e
			}
		}
		if o == nil {
			return
		}
		c.used -= o.size
		delete(c.entries, oldest)
	}
}
