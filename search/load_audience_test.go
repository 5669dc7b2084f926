package search_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/search"
)

// TestLoadKeepsToTheAudience: a hit's stored fields are loaded from a
// newer snapshot than the one the audience was checked on; a document
// whose audience narrowed in between (released, then draft again) must
// not be returned with its new content to a viewer who may not see it.
// Runs for 2 s, against a document flipping between the two.
func TestLoadKeepsToTheAudience(t *testing.T) {
	ix := MustOpen(t, t.TempDir(), search.Options{Async: true})
	pub := search.Document{ID: "1", Lang: "en", Title: "Labour inspection report", Done: "labour inspection", Release: "released", Audience: []string{"public"}}
	draft := search.Document{ID: "1", Lang: "en", Title: "Labour inspection DRAFTSECRET", Done: "labour inspection DRAFTSECRET", Release: "draft", Audience: []string{"event:1:drafts"}}
	filler := make([]search.Document, 200)
	for i := range filler {
		filler[i] = search.Document{ID: "f" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Lang: "en", Title: "other", Audience: []string{"x"}}
	}
	MustApply(t, ix, append(filler, pub), 500)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			d := pub
			if i%2 == 1 {
				d = draft
			}
			_ = ix.Apply([]search.Document{d}, nil, nil)
		}
	}()
	var leaked atomic.Value
	for _, text := range []string{"", "labour"} {
		wg.Add(1)
		go func(text string) {
			defer wg.Done()
			for ctx.Err() == nil {
				res, err := ix.Search(context.Background(), search.Query{Text: text, Audience: []string{"public"}})
				if err != nil {
					continue
				}
				for _, h := range res.Hits {
					if strings.Contains(h.Title, "DRAFTSECRET") || h.Release == "draft" {
						leaked.Store(h)
						cancel()
					}
				}
			}
		}(text)
	}
	wg.Wait()
	if h := leaked.Load(); h != nil {
		t.Fatalf("public viewer got a draft document's content: %+v", h)
	}
}
