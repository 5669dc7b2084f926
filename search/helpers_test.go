package search_test

import (
	"context"
	"testing"

	"github.com/rapporteur/rapporteur/search"
)

// MustOpen opens (or creates) an index in dir and closes it when tb ends.
func MustOpen(tb testing.TB, dir string, opts search.Options) *search.Index {
	tb.Helper()
	ix, err := search.Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { _ = ix.Close() })
	return ix
}

// MustApply writes docs in batches of size.
func MustApply(tb testing.TB, ix *search.Index, docs []search.Document, size int) {
	tb.Helper()
	for i := 0; i < len(docs); i += size {
		if err := ix.Apply(docs[i:min(i+size, len(docs))], nil, nil); err != nil {
			tb.Fatalf("Apply: %v", err)
		}
	}
}

// MustSearch runs q and fails tb on error.
func MustSearch(tb testing.TB, ix *search.Index, q search.Query) *search.Result {
	tb.Helper()
	res, err := ix.Search(context.Background(), q)
	if err != nil {
		tb.Fatalf("Search(%+v): %v", q, err)
	}
	return res
}

// ids lists the ids of a result's hits.
func ids(res *search.Result) []string {
	out := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		out[i] = h.ID
	}
	return out
}

func hasID(res *search.Result, id string) bool {
	for _, h := range res.Hits {
		if h.ID == id {
			return true
		}
	}
	return false
}

// all is an audience that sees every generated finding of events 1..40.
var all = []string{"public", "all"}

// everyone gives each document the "all" token as well, so tests can see
// everything.
func everyone(docs []search.Document) []search.Document {
	for i := range docs {
		docs[i].Audience = append(docs[i].Audience, "all")
	}
	return docs
}
