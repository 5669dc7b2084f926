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

	"github.com/uptrace/bun"

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
	f, w, room, before, x := kangarooIndexed(t)
	ctx := context.Background()
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
	mustFindAfterTheRebuild(t, f, []string{"koala"}, "kangaroo")
}

// kangarooIndexed makes a search fixture whose first workshop's room has
// "Kangaroo practice" (x) released and found, and returns the room's
// head from before it: a restore to before would take x away.
func kangarooIndexed(t *testing.T) (f *fixture, w domain.Workshop, room string, before, x int64) {
	t.Helper()
	f = MustSearchFixture(t)
	w = f.ws[0]
	room = store.WorkshopRoom(w.ID)
	if err := f.store.DB().NewRaw("SELECT coalesce((SELECT seq FROM rooms WHERE id = ?), 0)", room).Scan(context.Background(), &before); err != nil {
		t.Fatal(err)
	}
	x = mustCreate(t, f.store, w, store.FindingInput{Title: "Kangaroo practice"})
	mustRelease(t, f.store, w, x, domain.Released)
	waitFor(t, nil, f.srv.URL, q("event", f.event.Slug, "q", "kangaroo"), 10*time.Second, func(r searchResult) bool { return len(r.Hits) == 1 })
	return f, w, room, before, x
}

// mustFindAfterTheRebuild waits until a search finds each of words once,
// then checks that gone counts no more.
func mustFindAfterTheRebuild(t *testing.T, f *fixture, words []string, gone string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, word := range words {
		for {
			resp, err := http.Get(f.srv.URL + "/api/search?" + q("event", f.event.Slug, "q", word).Encode())
			if err != nil {
				t.Fatal(err)
			}
			var r searchResult
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(r.Hits) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q, written after the log went back, never reached the index (%d hits)", word, len(r.Hits))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if r := mustSearch(t, nil, f.srv.URL, q("event", f.event.Slug, "q", gone)); r.Total != 0 {
		t.Fatalf("%q, gone from the database, still counts after the rebuild: total %d", gone, r.Total)
	}
}

// TestIndexRebuildsWhenTheLogWentBackPastIt: as above, but one commit
// takes the restored log past what the index had read, and it is heard of
// at once (NOTIFY), before the slow poll's check. Read on from its old
// seq, the index would skip the entries reusing the seqs it had passed,
// and keep the finding gone, for good: the entry it read last is checked
// first, and is another op.
func TestIndexRebuildsWhenTheLogWentBackPastIt(t *testing.T) {
	f, w, room, before, x := kangarooIndexed(t)
	ctx := context.Background()
	// "Restore" to before x, and three findings in one commit after it.
	err := f.store.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM log_entries WHERE room = ? AND seq > ?", room, before); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM findings WHERE id = ?", x); err != nil {
			return err
		}
		for i, title := range []string{"Koala practice", "Wombat practice", "Platypus practice"} {
			fd := domain.Finding{EventID: w.EventID, WorkshopID: &w.ID, Title: title, Language: "en", Attribution: "chatham",
				ReleaseState: domain.Released, Version: 1, FieldVersions: map[string]int{},
				Countries: []string{}, Themes: []string{}, Ps: []string{}, Forms: []string{}, VictimGroups: []string{}, ActorTypes: []string{}}
			if _, err := tx.NewInsert().Model(&fd).Returning("id, created_at, updated_at").Exec(ctx); err != nil {
				return err
			}
			p, err := json.Marshal(fd)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO log_entries (room, seq, op_id, kind, payload) VALUES (?, ?, ?, 'finding.create', ?::jsonb)",
				room, before+int64(i)+1, "restored-"+title, string(p)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE rooms SET seq = ? WHERE id = ?", before+3, room)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// As the store's announcer does after a commit.
	if _, err := f.store.DB().ExecContext(ctx, "SELECT pg_notify(?, ?)", store.NotifyChannel, fmt.Sprintf("%s %d", room, before+3)); err != nil {
		t.Fatal(err)
	}
	mustFindAfterTheRebuild(t, f, []string{"koala", "wombat", "platypus"}, "kangaroo")
}
