package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// bulkFindings inserts n findings straight into the findings table (no
// log entries: only a rebuild sees them).
func bulkFindings(tb testing.TB, st *store.Store, ev domain.Event, w domain.Workshop, n int) {
	tb.Helper()
	_, err := st.DB().NewRaw(`INSERT INTO findings (event_id, workshop_id, title, what_done, countries, release_state)
		SELECT ?, ?, 'Bulk finding ' || g, 'Outreach to seasonal workers, number ' || g, '{FI}', 'released'
		FROM generate_series(1, ?) g`, ev.ID, w.ID, n).Exec(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
}

func liveFindings(tb testing.TB, st *store.Store) int {
	tb.Helper()
	n, err := st.CountLiveFindings(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestIndexRebuildsDeletedOrDamagedFolder stops the server, removes or
// damages its index folder and starts it again: search answers 503 with
// Retry-After and a progress message while it rebuilds, then everything.
func TestIndexRebuildsDeletedOrDamagedFolder(t *testing.T) {
	for _, damage := range []string{"deleted", "damaged"} {
		t.Run(damage, func(t *testing.T) {
			dataDir := t.TempDir()
			env := map[string]string{"DATA_DIR": dataDir}
			f := MustFixture(t, env)
			waitSearch(t, f.srv.URL, f.event.Slug)
			bulkFindings(t, f.store, f.event, f.ws[0], 8000)
			f.srv.Stop(t)

			dir := filepath.Join(dataDir, "search")
			switch damage {
			case "deleted":
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			case "damaged":
				n := 0
				filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
					if err == nil && !info.IsDir() && (strings.HasSuffix(p, ".zap") || strings.HasSuffix(p, ".json")) {
						os.WriteFile(p, []byte("garbage"), 0o644)
						n++
					}
					return nil
				})
				if n == 0 {
					t.Fatal("no index files to damage")
				}
			}

			s := MustStart(t, env)
			var saw503 bool
			deadline := time.Now().Add(120 * time.Second)
			for {
				status, r, h := doSearch(t, nil, s.URL, q("event", f.event.Slug, "country", "FI", "q", "seasonal"))
				if status == 503 {
					if h.Get("Retry-After") == "" {
						t.Fatalf("503 without Retry-After: %q %v", r.Message, h)
					}
					// Before the indexer has looked at its folder it says
					// it is starting; once it knows, it reports progress.
					if strings.Contains(r.Message, "is starting") {
						if time.Now().After(deadline) {
							t.Fatal("search still starting after 2 minutes")
						}
						time.Sleep(20 * time.Millisecond)
						continue
					}
					if !strings.Contains(r.Message, "rebuilding the index") || !strings.Contains(r.Message, "% done") {
						t.Fatalf("503 without progress: %q %v", r.Message, h)
					}
					if !saw503 {
						t.Logf("503: %s (Retry-After %s)", r.Message, h.Get("Retry-After"))
					}
					saw503 = true
				} else if status == 200 {
					if r.Total > 0 && r.Total < 8000 {
						t.Fatalf("partial results while rebuilding: %d", r.Total)
					}
					if r.Total == 8000 {
						break
					}
				} else {
					t.Fatalf("status %d: %s", status, r.Message)
				}
				if time.Now().After(deadline) {
					t.Fatal("index not rebuilt in time")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !saw503 {
				t.Error("never saw a 503 while rebuilding")
			}
			// Everything is there, demo findings too, and the log is followed.
			author := (&fixture{srv: s, store: f.store, event: f.event, ws: f.ws}).MustMember(t, domain.RoleReportAuthor, nil, "FI", "police")
			if r := mustSearch(t, author.http, s.URL, q("event", f.event.Slug)); r.Total != liveFindings(t, f.store) {
				t.Errorf("after rebuild: %d findings found, %d in the database", r.Total, liveFindings(t, f.store))
			}
			id := mustCreate(t, f.store, f.ws[1], store.FindingInput{Title: "Narwhal after rebuild"})
			waitFor(t, author.http, s.URL, q("event", f.event.Slug, "q", "narwhal"), 5*time.Second, func(r searchResult) bool {
				return slices.Contains(r.ids(), id)
			})
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitIndexer waits until x answers searches and returns the number of
// findings it finds with audience.
func waitIndexer(tb testing.TB, x *indexer, audience []string) int {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := x.Search(context.Background(), search.Query{Audience: audience})
		if err == nil {
			return int(res.Total)
		}
		if domain.ErrorCode(err) != domain.Unavailable || time.Now().After(deadline) {
			tb.Fatalf("indexer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIndexMappingVersionBumpRebuilds runs the indexer in-process on an
// index built with one mapping version, then with the next: the second
// rebuilds it.
func TestIndexMappingVersionBumpRebuilds(t *testing.T) {
	st := pg.MustStore(t)
	ev, _ := mustDemoEvent(t, st)
	all := []string{audiencePublic, audienceShared(ev.ID), audienceDrafts(ev.ID)}
	dir := filepath.Join(t.TempDir(), "search")
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	x := newIndexer(st, dir, search.Options{MappingVersion: 1}, logger)
	x.start()
	if got, want := waitIndexer(t, x, all), liveFindings(t, st); got != want {
		t.Fatalf("version 1: %d findings found, want %d", got, want)
	}
	x.stop()
	if strings.Count(logs.String(), "search index rebuilt") != 1 {
		t.Fatalf("first start: want one build (the folder was new):\n%s", logs.String())
	}

	// The same version again: opened as it is, no rebuild.
	x = newIndexer(st, dir, search.Options{MappingVersion: 1}, logger)
	x.start()
	waitIndexer(t, x, all)
	x.stop()
	if strings.Count(logs.String(), "search index rebuilt") != 1 {
		t.Fatalf("second start rebuilt an index it could use:\n%s", logs.String())
	}

	x = newIndexer(st, dir, search.Options{MappingVersion: 2}, logger)
	x.start()
	if got, want := waitIndexer(t, x, all), liveFindings(t, st); got != want {
		t.Fatalf("version 2: %d findings found, want %d", got, want)
	}
	x.stop()
	if !strings.Contains(logs.String(), "mapping version 1, want 2") || strings.Count(logs.String(), "search index rebuilt") != 2 {
		t.Fatalf("bump: want a rebuild because of the mapping version:\n%s", logs.String())
	}
	if _, err := search.Open(dir, search.Options{MappingVersion: 1}); !errors.Is(err, search.ErrNeedsRebuild) {
		t.Fatalf("the index is not at version 2: opening as version 1 gave %v", err)
	}
}

// TestIndexerSIGKILLMidBatchLosesNothing runs the real binary while
// findings are created, updated and deleted through the store, kills it
// with SIGKILL while its indexer is catching up, and restarts it: the
// index then holds exactly the database's live findings, with their
// current contents (checked by opening the index offline once it has
// stopped).
func TestIndexerSIGKILLMidBatchLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	bin := mustBuild(t)
	dsn := pg.NewDB(t)
	dataDir := t.TempDir()
	t.Setenv("DATA_DIR", dataDir) // mustRunProcess passes the environment on
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p1 := mustRunProcess(t, bin, addr, dsn)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	evs, _ := st.Events(ctx)
	ws, _ := st.Workshops(ctx, evs[0].ID)
	f := &fixture{srv: &server{URL: p1.URL}, store: st, event: evs[0], ws: ws}
	waitSearch(t, p1.URL, f.event.Slug)
	author := f.MustMember(t, domain.RoleReportAuthor, nil, "FI", "researchers")

	// Writers: creates, with some updates and deletes, through the store.
	const n = 3000
	writerDone := make(chan error, 1)
	go func() {
		for i := range n {
			w := ws[i%len(ws)]
			a, err := st.CreateFinding(ctx, nil, w.ID, fmt.Sprintf("k%d", i), store.FindingInput{
				Title: fmt.Sprintf("Kill test %d", i), Countries: []string{"FI"}})
			if err != nil {
				writerDone <- err
				return
			}
			var created struct{ ID int64 }
			_ = json.Unmarshal(a.Entry.Payload, &created)
			id := created.ID
			switch {
			case i%10 == 3 && id > 0:
				_, err = st.DeleteFinding(ctx, nil, w.ID, fmt.Sprintf("kd%d", i), id, 0)
			case i%7 == 2 && id > 0:
				_, err = st.UpdateFinding(ctx, nil, w.ID, fmt.Sprintf("ku%d", i), id, 1,
					map[string]json.RawMessage{"title": json.RawMessage(fmt.Sprintf(`"Kill test %d updated"`, i))})
			}
			if err != nil {
				writerDone <- err
				return
			}
		}
		writerDone <- nil
	}()

	// Kill while the index trails the writers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := mustSearch(t, author.http, p1.URL, q("event", f.event.Slug, "q", "kill"))
		if r.Total >= 300 {
			t.Logf("SIGKILL with %d kill-test findings indexed", r.Total)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("indexer made no progress")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.cmd.Wait()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	p2 := mustRunProcess(t, bin, addr, dsn)
	want := liveFindings(t, st)
	// Until the indexer has opened the index, search honestly answers 503.
	start := time.Now()
	waitSearch(t, p2.URL, f.event.Slug)
	t.Logf("search answered %v after the restart", time.Since(start).Round(time.Millisecond))
	waitFor(t, author.http, p2.URL, q("event", f.event.Slug), 60*time.Second, func(r searchResult) bool { return r.Total == want })
	// A finding created and updated may first be indexed from its creation
	// entry, then again from the database once its hold is over.
	var updated int
	if err := st.DB().NewRaw("SELECT count(*) FROM findings WHERE deleted_at IS NULL AND title LIKE '% updated'").Scan(ctx, &updated); err != nil {
		t.Fatal(err)
	}
	waitFor(t, author.http, p2.URL, q("event", f.event.Slug, "q", "updated"), 60*time.Second, func(r searchResult) bool { return r.Total == updated })
	// Stop it and compare the index with the database offline. Not with
	// SIGKILL this time: the index is written to disk behind what search
	// answers, so what a kill leaves may trail by a batch, which the next
	// start would index again (as above) but an offline read cannot.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- p2.cmd.Wait() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("the server did not stop cleanly: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop within 30 s of SIGTERM")
	}

	ix, err := search.Open(filepath.Join(dataDir, "search"), search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	count, err := ix.Count()
	if err != nil {
		t.Fatal(err)
	}
	if int(count) != want {
		t.Fatalf("index holds %d documents, the database %d live findings", count, want)
	}
	fs, err := st.AllFindingsForIndex(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.IndexFinding{}
	for _, f := range fs {
		byID[strconv.FormatInt(f.ID, 10)] = f
	}
	seen := map[string]bool{}
	audience := []string{audiencePublic, audienceShared(f.event.ID), audienceDrafts(f.event.ID)}
	for page := 1; ; page++ {
		res, err := ix.Search(ctx, search.Query{Audience: audience, Page: page, Size: search.MaxSize, Sort: "date"})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			if seen[h.ID] {
				t.Fatalf("finding %s twice", h.ID)
			}
			seen[h.ID] = true
			db, ok := byID[h.ID]
			if !ok {
				t.Errorf("finding %s is in the index but not (live) in the database", h.ID)
				continue
			}
			if h.Title != db.Title || h.Release != db.ReleaseState || strings.Join(h.Countries, ",") != strings.Join(db.Countries, ",") {
				t.Errorf("finding %s: index has %q %s %v, database %q %s %v", h.ID, h.Title, h.Release, h.Countries, db.Title, db.ReleaseState, db.Countries)
			}
		}
		if len(res.Hits) < search.MaxSize {
			break
		}
	}
	if len(seen) != len(byID) {
		t.Fatalf("index shows %d findings, database has %d", len(seen), len(byID))
	}
	t.Logf("after SIGKILL and restart: %d documents, %d live findings, contents equal", count, want)
}

// TestReindexCommand rebuilds offline, and refuses while a server holds the index.
func TestReindexCommand(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"DATA_DIR": dataDir}
	f := MustFixture(t, env)
	waitSearch(t, f.srv.URL, f.event.Slug)
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	err := run(context.Background(), []string{"rapporteur", "reindex"}, getenv, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "stop the server first") {
		t.Fatalf("reindex with the server running: %v", err)
	}
	f.srv.Stop(t)
	bulkFindings(t, f.store, f.event, f.ws[0], 2500)
	out.Reset()
	if err := run(context.Background(), []string{"rapporteur", "reindex"}, getenv, &out, io.Discard); err != nil {
		t.Fatalf("reindex: %v\n%s", err, out.String())
	}
	want := liveFindings(t, f.store)
	if !strings.Contains(out.String(), fmt.Sprintf("done: %d findings indexed", want)) || !strings.Contains(out.String(), "(100%)") && !strings.Contains(out.String(), "%)") {
		t.Fatalf("reindex output:\n%s", out.String())
	}
	t.Logf("reindex output:\n%s", out.String())
	// The server uses the rebuilt index as it is.
	s := MustStart(t, env)
	author := (&fixture{srv: s, store: f.store, event: f.event, ws: f.ws}).MustMember(t, domain.RoleReportAuthor, nil, "FI", "police")
	waitFor(t, author.http, s.URL, q("event", f.event.Slug), 30*time.Second, func(r searchResult) bool { return r.Total == want })
}

// A finding indexed from its creation entry makes the same document as one
// read back from the database, whichever way it was created (the demo's
// seed, a create alone in its room, creates sharing a transaction); a
// finding changed again in the same entries, or in a workshop whose key
// messages changed, is read back instead.
func TestCreatedFindingsIndexAsReadBack(t *testing.T) {
	ctx := context.Background()
	st := pg.MustStore(t)
	_, ws := mustDemoEvent(t, st)
	w := ws[0]
	in := store.FindingInput{Title: " Outreach to seasonal workers ", WhatDone: "Visits on farms", Results: "Referrals",
		Countries: []string{"SE", "FI"}, Themes: []string{"identification"}, Forms: []string{"labour"},
		Language: "sv", ContactConsent: true, ContactName: "Anna", ContactEmail: "anna@example.org", Attribution: "named"}
	if _, err := st.CreateFinding(ctx, nil, w.ID, "alone", in); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.CreateFinding(ctx, nil, w.ID, fmt.Sprintf("together-%d", i), in)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, err := st.EntriesAfter(ctx, store.WorkshopRoom(w.ID), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	createdOnly := func(entries []domain.LogEntry) map[int64]store.IndexFinding {
		t.Helper()
		_, made, err := touchedFindings(ctx, st, entries)
		if err != nil {
			t.Fatal(err)
		}
		return made
	}
	made := createdOnly(entries)
	if len(made) != len(entries) || len(made) < 22 {
		t.Fatalf("%d findings taken from %d creation entries, want all", len(made), len(entries))
	}
	ids := slices.Collect(maps.Keys(made))
	back, err := st.FindingsForIndex(ctx, ids)
	if err != nil || len(back) != len(ids) {
		t.Fatalf("read back %d of %d findings: %v", len(back), len(ids), err)
	}
	for _, f := range back {
		got, want := findingDocument(made[f.ID]), findingDocument(f)
		for _, d := range []*search.Document{&got, &want} {
			d.Created, d.Updated = d.Created.UTC(), d.Updated.UTC()
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("finding %d from its entry:\n%+v\nread back:\n%+v", f.ID, got, want)
		}
	}

	changed := entries[len(entries)-1]
	update := domain.LogEntry{Room: changed.Room, Seq: changed.Seq + 1, Kind: "finding.update",
		Payload: json.RawMessage(fmt.Sprintf(`{"id": %d, "title": "Later"}`, ids[0]))}
	if _, ok := createdOnly(append(slices.Clone(entries), update))[ids[0]]; ok {
		t.Error("a finding updated after its creation was taken from its creation entry")
	}
	keyMessages := domain.LogEntry{Room: changed.Room, Seq: changed.Seq + 1, Kind: "keymessages.set",
		Payload: json.RawMessage(`{"text": "Key"}`)}
	if n := len(createdOnly(append(slices.Clone(entries), keyMessages))); n != 0 {
		t.Errorf("%d findings taken from their entries though their workshop's key messages changed", n)
	}
}
