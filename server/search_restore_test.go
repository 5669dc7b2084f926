package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// TestSearchPageNextWithACappedSize: the index cuts a page at 100; with
// size=200 and 150 hits the page shows 100 and must offer Next, or hits
// 101..150 cannot be reached.
func TestSearchPageNextWithACappedSize(t *testing.T) {
	f := MustSearchFixture(t)
	w := f.ws[0]
	for i := 0; i < 150; i++ {
		id := mustCreate(t, f.store, w, store.FindingInput{Title: fmt.Sprintf("Wallaby practice %d", i)})
		mustRelease(t, f.store, w, id, domain.Released)
	}
	waitFor(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "wallaby"), 30*time.Second, func(r searchResult) bool { return r.Total == 150 })
	resp, err := http.Get(f.srv.URL + "/events/" + f.event.Slug + "/search?q=wallaby&size=200")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	shown := strings.Count(string(b), "/findings/")
	if shown < 150 && !strings.Contains(string(b), `rel="next"`) {
		t.Fatalf("page shows %d of 150 hits and has no Next link", shown)
	}
}

// TestIndexRebuildsWhenTheLogWentBack: the database is restored from a
// backup (same search_index_owner) under an index that stays, and new
// entries reuse the seqs the index has read, up to the same head. Seqs
// alone look caught up; the op ids at the checkpoint do not match, and the
// index rebuilds itself: the new finding is found, the one gone is not.
func TestIndexRebuildsWhenTheLogWentBack(t *testing.T) {
	f := MustSearchFixture(t)
	ctx := context.Background()
	w := f.ws[0]
	room := store.WorkshopRoom(w.ID)
	var before int64
	if err := f.store.DB().NewRaw("SELECT coalesce((SELECT seq FROM rooms WHERE id = ?), 0)", room).Scan(ctx, &before); err != nil {
		t.Fatal(err)
	}
	x := mustCreate(t, f.store, w, store.FindingInput{Title: "Kangaroo practice"})
	mustRelease(t, f.store, w, x, domain.Released)
	waitFor(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "kangaroo"), 10*time.Second, func(r searchResult) bool { return len(r.Hits) == 1 })
	// "Restore" the database to before x: its rows and entries gone.
	for _, s := range []string{
		fmt.Sprintf("DELETE FROM log_entries WHERE room = '%s' AND seq > %d", room, before),
		fmt.Sprintf("DELETE FROM findings WHERE id = %d", x),
		fmt.Sprintf("UPDATE rooms SET seq = %d WHERE id = '%s'", before, room),
	} {
		if _, err := f.store.DB().ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	y := mustCreate(t, f.store, w, store.FindingInput{Title: "Koala practice"})
	mustRelease(t, f.store, w, y, domain.Released)
	// The index sees it within its slow poll (5 s) and rebuilds itself
	// (searches answer 503 meanwhile).
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(f.srv.URL + "/api/search?" + q("event", f.event.Slug, "q", "koala").Encode())
		if err != nil {
			t.Fatal(err)
		}
		var r searchResult
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && len(r.Hits) == 1 {
			if gone := mustSearch(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "kangaroo")); gone.Total != 0 {
				t.Fatalf("kangaroo, gone from the database, still counts after the rebuild: total %d", gone.Total)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("finding %d created after the restore never reached the index", y)
}
