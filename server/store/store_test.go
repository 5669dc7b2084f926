package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/rapporteur/rapporteur/migrations"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/demo"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/pgtest"
	"github.com/rapporteur/rapporteur/server/store"
	"golang.org/x/text/unicode/norm"
)

var pg *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

// MustDemo loads the demo event into a fresh store and returns both.
func MustDemo(tb testing.TB) (*store.Store, domain.Event) {
	tb.Helper()
	s := pg.MustStore(tb)
	spec, err := demo.Spec()
	if err != nil {
		tb.Fatal(err)
	}
	ev, err := s.CreateEvent(context.Background(), spec)
	if err != nil {
		tb.Fatalf("create demo event: %v", err)
	}
	return s, ev
}

// MustDemoWorkshops is MustDemo's store with the demo event's workshops.
func MustDemoWorkshops(tb testing.TB) (*store.Store, []domain.Workshop) {
	tb.Helper()
	s, ev := MustDemo(tb)
	ws, err := s.Workshops(context.Background(), ev.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return s, ws
}

func tableCount(tb testing.TB, s *store.Store) int {
	tb.Helper()
	var n int
	err := s.DB().NewRaw(`SELECT count(*) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_name NOT LIKE 'bun_%'`).Scan(context.Background(), &n)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestMigrateUpDownUp(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, pg.NewEmptyDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready on an unmigrated database: got nil, want an error")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	up := tableCount(t, s)
	if up < 15 {
		t.Fatalf("after up: %d tables, want at least 15", up)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready after up: %v", err)
	}
	if err := s.Rollback(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	if got := tableCount(t, s); got != 0 {
		t.Fatalf("after down: %d tables, want 0", got)
	}
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready after down: got nil, want an error")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if got := tableCount(t, s); got != up {
		t.Fatalf("after up again: %d tables, want %d", got, up)
	}
}

// Vote entries logged before they stopped naming the voter lose the name
// when the server is upgraded; other entries keep their payloads.
func TestMigrationTakesVotersOutOfOldEntries(t *testing.T) {
	got := payloadsAfterMigration(t, "20261127000002", `
		('workshop:1', 1, 'v', 'vote', '{"finding_id":3,"votes":1,"person_id":9}'),
		('workshop:1', 2, 'u', 'unvote', '{"finding_id":3,"votes":0,"person_id":9}'),
		('workshop:1', 3, 'c', 'comment', '{"id":1,"finding_id":3,"body":"person_id","person_id":9}')`)
	want := []string{`{"votes": 1, "finding_id": 3}`, `{"votes": 0, "finding_id": 3}`, `{"id": 1, "body": "person_id", "person_id": 9, "finding_id": 3}`}
	if !slices.Equal(got, want) {
		t.Errorf("payloads after the migration:\n%q\nwant\n%q", got, want)
	}
}

// Entries logged before they left the finding's contact out lose it when
// the server is upgraded; the rest of their payloads stays.
func TestMigrationTakesContactsOutOfOldEntries(t *testing.T) {
	got := payloadsAfterMigration(t, "20261127000004", `
		('workshop:1', 1, 'c', 'finding.create', '{"id":3,"title":"T","contact_name":"Anna","contact_email":"a@example.org","contact_consent":true}'),
		('workshop:1', 2, 'u', 'finding.update', '{"finding":{"id":3,"version":2,"updated_at":"2026-11-27T10:00:00Z","title":"T","contact_email":"a@example.org","contact_consent":true},"fields":["contact_email"]}'),
		('workshop:1', 3, 'k', 'comment', '{"id":1,"finding_id":3,"body":"contact_name"}')`)
	// (The update's entry then carries what changed: see the next test.)
	want := []string{`{"id": 3, "title": "T", "contact_consent": true}`,
		`{"id": 3, "fields": ["contact_email"], "changes": {}, "version": 2, "updated_at": "2026-11-27T10:00:00Z"}`,
		`{"id": 1, "body": "contact_name", "finding_id": 3}`}
	if !slices.Equal(got, want) {
		t.Errorf("payloads after the migration:\n%q\nwant\n%q", got, want)
	}
}

// Update entries logged with the whole finding carry what changed once
// the server is upgraded; other entries keep their payloads.
func TestMigrationMakesUpdateEntriesCarryWhatChanged(t *testing.T) {
	got := payloadsAfterMigration(t, "20261128000001", `
		('workshop:1', 1, 'c', 'finding.create', '{"id":3,"version":1,"title":"T","countries":["FI"]}'),
		('workshop:1', 2, 'u', 'finding.update', '{"finding":{"id":3,"version":2,"updated_at":"2026-11-27T10:00:00Z","title":"New","what_done":"Long text","countries":["SE"]},"fields":["countries","title"]}')`)
	want := []string{`{"id": 3, "title": "T", "version": 1, "countries": ["FI"]}`,
		`{"id": 3, "fields": ["countries", "title"], "changes": {"title": "New", "countries": ["SE"]}, "version": 2, "updated_at": "2026-11-27T10:00:00Z"}`}
	if !slices.Equal(got, want) {
		t.Errorf("payloads after the migration:\n%q\nwant\n%q", got, want)
	}
}

// People stored before names and emails were kept in NFC are put in NFC
// when the server is upgraded; an email whose NFC form another person has
// already stays as it was, and the upgrade goes through.
func TestMigrationPutsPeopleInNFC(t *testing.T) {
	ctx := context.Background()
	s := mustMigrateBefore(t, "20261127000005")
	nfd := norm.NFD.String
	if _, err := s.DB().ExecContext(ctx, "INSERT INTO people (name, organisation, email) VALUES (?, ?, ?), (?, '', ?), (?, '', ?)",
		nfd("Åsa Öberg"), nfd("Länsstyrelsen"), nfd("åsa@example.se"),
		"Jörgen Ås", "jörgen@example.ax", nfd("Jörgen Ås"), nfd("jörgen@example.ax")); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.DB().NewRaw("SELECT name || '|' || organisation || '|' || email FROM people ORDER BY id").Scan(ctx, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"Åsa Öberg|Länsstyrelsen|åsa@example.se", "Jörgen Ås||jörgen@example.ax", "Jörgen Ås||" + nfd("jörgen@example.ax")}
	if !slices.Equal(got, want) {
		t.Errorf("people after the migration:\n%q\nwant\n%q", got, want)
	}
}

// payloadsAfterMigration logs the entries values (rows of room, seq,
// op_id, kind, payload) in a database migrated up to, not including,
// migration name, migrates it to the end, and returns the payloads.
func payloadsAfterMigration(t *testing.T, name, values string) []string {
	t.Helper()
	ctx := context.Background()
	s := mustMigrateBefore(t, name)
	if _, err := s.DB().ExecContext(ctx, "INSERT INTO log_entries (room, seq, op_id, kind, payload) VALUES "+values); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.DB().NewRaw("SELECT payload::text FROM log_entries ORDER BY seq").Scan(ctx, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// mustMigrateBefore opens an empty database migrated up to, not
// including, the migration whose file name starts with name.
func mustMigrateBefore(t *testing.T, name string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, pg.NewEmptyDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	before := fstest.MapFS{}
	err = fs.WalkDir(migrations.FS(), ".", func(file string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && file < name {
			b, _ := fs.ReadFile(migrations.FS(), file)
			before[file] = &fstest.MapFile{Data: b}
		}
		return err
	})
	if err != nil || len(before) == 0 {
		t.Fatalf("older migrations: %d files, %v", len(before), err)
	}
	if err := s.MigrateFrom(ctx, before); err != nil {
		t.Fatal(err)
	}
	return s
}

// A finding's event is its workshop's: the schema refuses a finding placed
// in another event than its workshop's, or in no workshop or side event,
// and deleting the event still takes its findings.
func TestFindingBelongsToItsWorkshopsEvent(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	var other int64
	if err := s.DB().NewRaw("INSERT INTO events (slug, title) VALUES ('other', 'Other') RETURNING id").Scan(ctx, &other); err != nil {
		t.Fatal(err)
	}
	insert := func(event int64, workshop *int64) error {
		_, err := s.DB().NewRaw("INSERT INTO findings (event_id, workshop_id, title) VALUES (?, ?, 'Misplaced')", event, workshop).Exec(ctx)
		return err
	}
	for _, c := range []struct {
		name, constraint string
		err              error
	}{
		{"another event's workshop", "findings_workshop_event_fkey", insert(other, &ws[0].ID)},
		{"no workshop", "findings_scope_check", insert(ws[0].EventID, nil)},
	} {
		if !strings.Contains(fmt.Sprint(c.err), c.constraint) {
			t.Errorf("%s: insert error = %v, want a violation of %s", c.name, c.err, c.constraint)
		}
	}
	if err := insert(ws[0].EventID, &ws[0].ID); err != nil {
		t.Fatalf("a finding in its workshop's event: %v", err)
	}
	if _, err := s.DB().NewRaw("DELETE FROM events WHERE id = ?", ws[0].EventID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := s.DB().NewRaw("SELECT count(*) FROM findings").Scan(ctx, &left); err != nil || left != 0 {
		t.Errorf("findings left after their event was deleted: %d (%v), want 0", left, err)
	}
}

func TestFailedMigrationIsNotRecorded(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, pg.NewEmptyDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fsys := fstest.MapFS{
		"20200101000001_good.tx.up.sql":   {Data: []byte("CREATE TABLE good (id int);")},
		"20200101000001_good.tx.down.sql": {Data: []byte("DROP TABLE good;")},
		"20200101000002_bad.tx.up.sql":    {Data: []byte("CREATE TABLE half (id int);\n--bun:split\nSELECT no_such_function();")},
		"20200101000002_bad.tx.down.sql":  {Data: []byte("DROP TABLE half;")},
	}
	if err := s.MigrateFrom(ctx, fsys); err == nil {
		t.Fatal("migrate with a failing migration: got nil error")
	}
	pending, err := s.PendingFrom(ctx, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0] != "20200101000002" {
		t.Fatalf("pending = %v, want only the failing migration", pending)
	}
	var half bool
	if err := s.DB().NewRaw("SELECT to_regclass('half') IS NOT NULL").Scan(ctx, &half); err != nil {
		t.Fatal(err)
	}
	if half {
		t.Fatal("the failing migration left its first statement applied")
	}
	// A crash may leave bun's lock row behind; the next migrate must not be stuck on it.
	if _, err := s.DB().NewRaw("INSERT INTO bun_migration_locks (table_name) VALUES ('bun_migrations')").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	fixed := fstest.MapFS{
		"20200101000001_good.tx.up.sql":   fsys["20200101000001_good.tx.up.sql"],
		"20200101000001_good.tx.down.sql": fsys["20200101000001_good.tx.down.sql"],
		"20200101000002_bad.tx.up.sql":    {Data: []byte("CREATE TABLE half (id int);")},
		"20200101000002_bad.tx.down.sql":  fsys["20200101000002_bad.tx.down.sql"],
	}
	if err := s.MigrateFrom(ctx, fixed); err != nil {
		t.Fatalf("migrate after the fix, over a stale lock: %v", err)
	}
}

func TestApplyFailingHalfWayLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	room := store.WorkshopRoom(ws[0].ID)
	before, _ := s.Head(ctx, room)
	boom := errors.New("boom")
	_, err := s.Apply(ctx, room, "op-fail", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		f := domain.Finding{EventID: ws[0].EventID, WorkshopID: &ws[0].ID, Title: "half-way", Language: "en",
			Attribution: "chatham", ReleaseState: "draft", Version: 1, FieldVersions: map[string]int{},
			Countries: []string{}, Themes: []string{}, Ps: []string{}, Forms: []string{}, VictimGroups: []string{}, ActorTypes: []string{}}
		if _, err := tx.NewInsert().Model(&f).Exec(ctx); err != nil {
			return "", nil, err
		}
		return "", nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply error = %v, want boom", err)
	}
	var rows int
	if err := s.DB().NewRaw("SELECT count(*) FROM findings WHERE title = 'half-way'").Scan(ctx, &rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("finding rows after failed change = %d, want 0", rows)
	}
	entries, err := s.EntriesAfter(ctx, room, before, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("log entries after failed change = %d, want 0", len(entries))
	}
	if after, _ := s.Head(ctx, room); after != before {
		t.Errorf("room head moved from %d to %d", before, after)
	}
	// The op id was not used up: applying it for real works.
	a, err := s.CreateFinding(ctx, nil, ws[0].ID, "op-fail", store.FindingInput{Title: "for real"})
	if err != nil || a.Replayed || a.Entry.Seq != before+1 {
		t.Fatalf("retry: %+v, %v; want a fresh entry at seq %d", a, err, before+1)
	}
}

func TestConcurrentWritersGetGaplessSeqs(t *testing.T) {
	ctx := context.Background()
	s, ev := MustDemo(t)
	ws, _ := s.Workshops(ctx, ev.ID)
	wid := ws[1].ID
	room := store.WorkshopRoom(wid)
	start, _ := s.Head(ctx, room)
	const writers, each = 100, 50

	// A reader follows seq > n as the writers go and must see every entry once.
	seen := make(chan []int64, 1)
	stop := make(chan struct{})
	go func() {
		var got []int64
		last := start
		for {
			es, err := s.EntriesAfter(ctx, room, last, 1000)
			if err != nil {
				t.Error(err)
				break
			}
			for _, e := range es {
				got = append(got, e.Seq)
				last = e.Seq
			}
			if len(es) == 0 {
				select {
				case <-stop:
					if last == start+writers*each {
						seen <- got
						return
					}
				case <-time.After(2 * time.Millisecond):
				}
			}
		}
		seen <- got
	}()

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := s.CreateFinding(ctx, nil, wid, fmt.Sprintf("w%d-%d", w, i), store.FindingInput{Title: fmt.Sprintf("finding %d/%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := <-seen
	if len(got) != writers*each {
		t.Fatalf("reader saw %d entries, want %d", len(got), writers*each)
	}
	for i, seq := range got {
		if want := start + int64(i) + 1; seq != want {
			t.Fatalf("reader entry %d has seq %d, want %d (gap or duplicate)", i, seq, want)
		}
	}
	all, err := s.EntriesAfter(ctx, room, start, 10*writers*each)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each || all[len(all)-1].Seq != start+writers*each {
		t.Fatalf("log holds %d entries ending at %d, want %d ending at %d", len(all), all[len(all)-1].Seq, writers*each, start+writers*each)
	}
}

func TestRepeatedOpIsAppliedOnce(t *testing.T) {
	ctx := context.Background()
	s, ev := MustDemo(t)
	ws, _ := s.Workshops(ctx, ev.ID)
	first, err := s.CreateFinding(ctx, nil, ws[2].ID, "same-op", store.FindingInput{Title: "once", Countries: []string{"SE"}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateFinding(ctx, nil, ws[2].ID, "same-op", store.FindingInput{Title: "once", Countries: []string{"SE"}})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.Entry.Seq != first.Entry.Seq {
		t.Fatalf("retry: replayed=%v seq=%d, want replayed at seq %d", again.Replayed, again.Entry.Seq, first.Entry.Seq)
	}
	var n int
	s.DB().NewRaw("SELECT count(*) FROM findings WHERE title = 'once'").Scan(ctx, &n)
	if n != 1 {
		t.Fatalf("%d findings, want 1", n)
	}
}

func TestFindingValidation(t *testing.T) {
	ctx := context.Background()
	s, ev := MustDemo(t)
	ws, _ := s.Workshops(ctx, ev.ID)
	cases := []struct {
		name string
		in   store.FindingInput
	}{
		{"no title", store.FindingInput{}},
		{"unknown country", store.FindingInput{Title: "x", Countries: []string{"XX"}}},
		{"unknown theme", store.FindingInput{Title: "x", Themes: []string{"nope"}}},
		{"contact without consent", store.FindingInput{Title: "x", ContactName: "Anna"}},
		{"bad contact email", store.FindingInput{Title: "x", ContactConsent: true, ContactEmail: "not-an-email"}},
		{"bad language", store.FindingInput{Title: "x", Language: "de"}},
		{"huge title", store.FindingInput{Title: string(make([]byte, 400))}},
	}
	head, _ := s.Head(ctx, store.WorkshopRoom(ws[0].ID))
	for i, c := range cases {
		_, err := s.CreateFinding(ctx, nil, ws[0].ID, fmt.Sprintf("bad-%d", i), c.in)
		if got := domain.ErrorCode(err); got != domain.Invalid {
			t.Errorf("%s: code %q (%v), want invalid", c.name, got, err)
		}
	}
	if after, _ := s.Head(ctx, store.WorkshopRoom(ws[0].ID)); after != head {
		t.Errorf("bad input moved the room head from %d to %d", head, after)
	}
}

func TestUpdateMergesFieldsAndRefusesConflicts(t *testing.T) {
	ctx := context.Background()
	s, ev := MustDemo(t)
	ws, _ := s.Workshops(ctx, ev.ID)
	wid := ws[0].ID
	a, err := s.CreateFinding(ctx, nil, wid, "c1", store.FindingInput{Title: "start"})
	if err != nil {
		t.Fatal(err)
	}
	var f domain.Finding
	json.Unmarshal(a.Entry.Payload, &f)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }

	// Two people edit version 1: one the title, the other the results. Both apply.
	if _, err := s.UpdateFinding(ctx, nil, wid, "u1", f.ID, 1, map[string]json.RawMessage{"title": raw("new title")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFinding(ctx, nil, wid, "u2", f.ID, 1, map[string]json.RawMessage{"results": raw("it worked"), "countries": raw([]string{"NO", "DK"})}); err != nil {
		t.Fatalf("merge of a different field: %v", err)
	}
	got, _ := s.Finding(ctx, f.ID)
	if got.Title != "new title" || got.Results != "it worked" || got.Version != 3 || len(got.Countries) != 2 {
		t.Fatalf("after merge: %+v", got)
	}
	// A third edit of the title based on version 1 conflicts and changes nothing.
	_, err = s.UpdateFinding(ctx, nil, wid, "u3", f.ID, 1, map[string]json.RawMessage{"title": raw("stale title")})
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.Conflict {
		t.Fatalf("stale edit: %v, want conflict", err)
	}
	cd, ok := de.Detail.(store.ConflictDetail)
	if !ok || cd.Current.Title != "new title" || len(cd.Fields) != 1 || cd.Fields[0] != "title" {
		t.Fatalf("conflict detail = %+v", de.Detail)
	}
	if now, _ := s.Finding(ctx, f.ID); now.Title != "new title" || now.Version != 3 {
		t.Fatalf("conflicting edit changed the finding: %+v", now)
	}
	// Wrong types and unknown fields are refused.
	for i, ch := range []map[string]json.RawMessage{{"title": raw(5)}, {"nope": raw("x")}, {"countries": raw("FI")}, {"title": raw(nil)}} {
		if _, err := s.UpdateFinding(ctx, nil, wid, fmt.Sprintf("bad%d", i), f.ID, 3, ch); domain.ErrorCode(err) != domain.Invalid {
			t.Errorf("update %v: %v, want invalid", ch, err)
		}
	}
	// Delete, then it is gone.
	if _, err := s.DeleteFinding(ctx, nil, wid, "d1", f.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finding(ctx, f.ID); domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("after delete: %v, want not_found", err)
	}
}

// A list changed to another of the same length: json.Unmarshal reuses a
// slice's array, which once made the old value look like the new one, so
// the change was acked but not saved, or saved over someone else's.
func TestUpdateOfAListToOneOfTheSameLength(t *testing.T) {
	ctx := context.Background()
	s, ev := MustDemo(t)
	ws, _ := s.Workshops(ctx, ev.ID)
	wid := ws[0].ID
	a, err := s.CreateFinding(ctx, nil, wid, "c1", store.FindingInput{Title: "start", Countries: []string{"DK"}})
	if err != nil {
		t.Fatal(err)
	}
	var f domain.Finding
	json.Unmarshal(a.Entry.Payload, &f)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }

	u, err := s.UpdateFinding(ctx, nil, wid, "u1", f.ID, 1, map[string]json.RawMessage{"countries": raw([]string{"SE"})})
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Version int `json:"version"`
		Changes struct {
			Countries []string `json:"countries"`
		} `json:"changes"`
		Fields []string `json:"fields"`
	}
	json.Unmarshal(u.Entry.Payload, &p)
	if !slices.Equal(p.Fields, []string{"countries"}) || !slices.Equal(p.Changes.Countries, []string{"SE"}) || p.Version != 2 {
		t.Fatalf("entry of DK → SE: fields %v, countries %v, version %d", p.Fields, p.Changes.Countries, p.Version)
	}
	if got, _ := s.Finding(ctx, f.ID); !slices.Equal(got.Countries, []string{"SE"}) || got.FieldVersions["countries"] != 2 {
		t.Fatalf("stored after DK → SE: %v, field versions %v", got.Countries, got.FieldVersions)
	}
	// The same terms in another order are no change, and so no conflict
	// for someone still at version 1.
	if _, err := s.UpdateFinding(ctx, nil, wid, "u-order", f.ID, 2, map[string]json.RawMessage{"countries": raw([]string{"SE", "DK"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFinding(ctx, nil, wid, "u-set", f.ID, 2, map[string]json.RawMessage{"countries": raw([]string{"SE", "DK"})}); err != nil {
		t.Fatalf("the same set in another order: %v", err)
	}
	if got, _ := s.Finding(ctx, f.ID); !slices.Equal(got.Countries, []string{"DK", "SE"}) || got.Version != 3 {
		t.Fatalf("after SE,DK sent twice: %v at version %d, want DK,SE at 3 (one change)", got.Countries, got.Version)
	}
	if _, err := s.UpdateFinding(ctx, nil, wid, "u-back", f.ID, 3, map[string]json.RawMessage{"countries": raw([]string{"SE"})}); err != nil {
		t.Fatal(err)
	}
	// Someone else, still at version 1, changes the same list: a conflict.
	_, err = s.UpdateFinding(ctx, nil, wid, "u2", f.ID, 1, map[string]json.RawMessage{"title": raw("x"), "countries": raw([]string{"NO"})})
	if domain.ErrorCode(err) != domain.Conflict {
		t.Fatalf("stale change of the list: %v, want conflict", err)
	}
	if got, _ := s.Finding(ctx, f.ID); !slices.Equal(got.Countries, []string{"SE"}) || got.Title != "start" {
		t.Fatalf("the conflict wrote: %+v", got)
	}
}

func TestDemoEventIsComplete(t *testing.T) {
	ctx := context.Background()
	s, ev := MustDemo(t)
	parts, _ := s.Parts(ctx, ev.ID)
	if len(parts) != 3 || !parts[0].Streamed || parts[1].Streamed || !parts[2].Streamed {
		t.Fatalf("parts = %+v, want I streamed, II not, III streamed", parts)
	}
	ws, _ := s.Workshops(ctx, ev.ID)
	se, _ := s.SideEvents(ctx, ev.ID)
	tax, _ := s.Taxonomy(ctx, ev.ID)
	if len(ws) != 5 || len(se) != 2 {
		t.Fatalf("%d workshops and %d side events, want 5 and 2", len(ws), len(se))
	}
	if len(tax["country"]) != 11 || len(tax["p"]) != 4 || len(tax["form"]) != 9 || len(tax["theme"]) != 14 || len(tax["victim"]) != 9 || len(tax["actor"]) != 19 {
		t.Fatalf("taxonomy sizes wrong: %d %d %d %d %d %d", len(tax["country"]), len(tax["p"]), len(tax["form"]), len(tax["theme"]), len(tax["victim"]), len(tax["actor"]))
	}
	fs, err := s.WorkshopFindings(ctx, ws[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatal("workshop 1 has no example findings")
	}
	es, _ := s.EntriesAfter(ctx, store.WorkshopRoom(ws[0].ID), 0, 100)
	if len(es) != len(fs) {
		t.Fatalf("workshop 1 has %d findings but %d log entries", len(fs), len(es))
	}
	spec, _ := demo.Spec()
	if _, err := s.CreateEvent(ctx, spec); domain.ErrorCode(err) != domain.Conflict {
		t.Fatalf("second demo: %v, want conflict", err)
	}
}

func TestTermsWithQuotesAreRefusedNotInjected(t *testing.T) {
	ctx := context.Background()
	s, ev := MustDemo(t)
	ws, _ := s.Workshops(ctx, ev.ID)
	for i, k := range []string{`FI","SE`, `FI\`, `{FI}`, `"`} {
		_, err := s.CreateFinding(ctx, nil, ws[0].ID, fmt.Sprintf("q%d", i), store.FindingInput{Title: "x", Countries: []string{k}})
		if domain.ErrorCode(err) != domain.Invalid {
			t.Errorf("country %q: %v, want invalid", k, err)
		}
	}
}

// TestOpsQueuedBehindABusyRoomShareATransaction holds a room's
// transaction open until seven more ops queue behind it; they then run in
// one transaction where one fails half-way, one repeats an earlier op id,
// one names a term not in the taxonomy, one comments on a finding that
// does not exist, and two creates and a vote are fine. Only the failing
// ops are left out, each with its own error, and seqs stay gapless.
func TestOpsQueuedBehindABusyRoomShareATransaction(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[2]
	room := store.WorkshopRoom(w.ID)
	voter := mustPerson(t, s)
	first, err := s.CreateFinding(ctx, nil, w.ID, "earlier", store.FindingInput{Title: "Earlier"})
	if err != nil {
		t.Fatal(err)
	}
	start := first.Entry.Seq

	boom := errors.New("boom")
	ops := []func() (store.Applied, error){
		func() (store.Applied, error) {
			return s.Apply(ctx, room, "half-way", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
				if _, err := tx.NewRaw("UPDATE findings SET title = 'overwritten' WHERE id = ?", mustFindingID(t, first)).Exec(ctx); err != nil {
					return "", nil, err
				}
				return "", nil, boom
			})
		},
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, nil, w.ID, "earlier", store.FindingInput{Title: "Earlier, again"})
		},
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, nil, w.ID, "bad-term", store.FindingInput{Title: "Bad", Countries: []string{"XX"}})
		},
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, nil, w.ID, "fine", store.FindingInput{Title: "Fine", Countries: []string{"NO"}})
		},
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, nil, w.ID, "fine too", store.FindingInput{Title: "Fine too", Themes: []string{"training"}})
		},
		func() (store.Applied, error) {
			return s.AddComment(ctx, voter, w.ID, "comment on nothing", 1<<40, "Lost")
		},
		func() (store.Applied, error) {
			return s.Vote(ctx, voter, w.ID, "vote", mustFindingID(t, first))
		},
	}
	results := queueBehindBusyRoom(t, s, room, ops)
	halfWay, again, badTerm, fine, fineToo, lost, vote := results[0], results[1], results[2], results[3], results[4], results[5], results[6]
	if domain.ErrorCode(lost.err) != domain.NotFound {
		t.Errorf("comment on no finding: %v, want NotFound", lost.err)
	}
	if vote.err != nil || !vote.a.Entry.At.Equal(fine.a.Entry.At) || !strings.Contains(string(vote.a.Entry.Payload), `"votes":1`) {
		t.Errorf("vote: %+v %v (payload %s), want one vote in the shared transaction", vote.a, vote.err, vote.a.Entry.Payload)
	}
	if !errors.Is(halfWay.err, boom) {
		t.Errorf("half-way op: %v, want boom", halfWay.err)
	}
	if again.err != nil || !again.a.Replayed || again.a.Entry.Seq != start {
		t.Errorf("repeated op: %+v %v, want a replay of seq %d", again.a, again.err, start)
	}
	if domain.ErrorCode(badTerm.err) != domain.Invalid {
		t.Errorf("bad term: %v, want Invalid", badTerm.err)
	}
	if fine.err != nil || fineToo.err != nil {
		t.Fatalf("fine ops: %v, %v", fine.err, fineToo.err)
	}
	if !fine.a.Entry.At.Equal(fineToo.a.Entry.At) {
		t.Errorf("the fine ops were not in one transaction: at %v and %v", fine.a.Entry.At, fineToo.a.Entry.At)
	}
	f, err := s.Finding(ctx, mustFindingID(t, first))
	if err != nil {
		t.Fatal(err)
	}
	if f.Title != "Earlier" {
		t.Errorf("the failed op's write stayed: title %q", f.Title)
	}
	es, err := s.EntriesAfter(ctx, room, start, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range es {
		if e.Seq != start+int64(i)+1 {
			t.Errorf("entry %d has seq %d", i, e.Seq)
		}
		got = append(got, e.OpID)
	}
	// New creates go first in a shared transaction.
	if !slices.Equal(got, []string{"blocker", "fine", "fine too", "vote"}) {
		t.Errorf("entries after the first: %v, want [blocker fine, fine too, vote]", got)
	}
	if h := mustHead(t, s, room); h != start+4 {
		t.Errorf("room head %d, want %d", h, start+4)
	}
	var comments int
	if err := s.DB().NewRaw("SELECT count(*) FROM comments").Scan(ctx, &comments); err != nil || comments != 0 {
		t.Errorf("comments: %d (%v), want none", comments, err)
	}
	for _, e := range es[1:3] {
		var f domain.Finding
		if err := json.Unmarshal(e.Payload, &f); err != nil {
			t.Fatal(err)
		}
		got, err := s.Finding(ctx, f.ID)
		if err != nil || got.Title != f.Title || !got.CreatedAt.Equal(f.CreatedAt) || got.WorkshopID == nil || *got.WorkshopID != w.ID {
			t.Errorf("entry %d says %+v; the database has %+v (%v)", e.Seq, f, got, err)
		}
	}
}

func mustHead(tb testing.TB, s *store.Store, room string) int64 {
	tb.Helper()
	h, err := s.Head(context.Background(), room)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func mustFindingID(tb testing.TB, a store.Applied) int64 {
	tb.Helper()
	var f struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(a.Entry.Payload, &f); err != nil || f.ID == 0 {
		tb.Fatalf("no finding id in %s: %v", a.Entry.Payload, err)
	}
	return f.ID
}

// TestPanickingOpFailsAlone: an op whose change panics fails as internal
// (its transaction rolled back, its client's later ops held back); the
// room's next op is applied, and the process goes on.
func TestPanickingOpFailsAlone(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	room := store.WorkshopRoom(ws[0].ID)
	o := &clientOrder{}
	_, err := s.Apply(store.WithOrder(ctx, orderPlace{o, 1}), room, "bug", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		if _, err := tx.NewRaw("UPDATE rooms SET seq = seq + 100 WHERE id = ?", room).Exec(ctx); err != nil {
			return "", nil, err
		}
		panic("a bug the op's body sets off")
	})
	if domain.ErrorCode(err) != domain.Internal || !strings.Contains(err.Error(), "a bug the op's body sets off") {
		t.Fatalf("panicking op: %v, want internal naming the panic", err)
	}
	if o.broken.Load() != 1 {
		t.Error("the panicking op did not hold back its client's later ops")
	}
	a, err := s.Apply(ctx, room, "next", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		return "test.next", map[string]any{}, nil
	})
	if err != nil || a.Entry.Seq != mustHead(t, s, room) || a.Entry.Seq > 100 {
		t.Fatalf("the next op: %+v %v (head %d), want applied after a rolled back panic", a.Entry, err, mustHead(t, s, room))
	}
}

// TestPanickingOpInASharedTransactionFailsAlone: the op that panics
// fails; another client's op in the same transaction is applied, and
// that client's order stays whole.
func TestPanickingOpInASharedTransactionFailsAlone(t *testing.T) {
	r := newOrderRoom(t)
	results := queueBehindBusyRoom(t, r.s, r.room, []func() (store.Applied, error){
		func() (store.Applied, error) {
			return r.s.Apply(r.at(r.a, 1), r.room, "bug", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
				panic("a bug the op's body sets off")
			})
		},
		func() (store.Applied, error) {
			return r.s.AddComment(r.at(r.b, 1), r.voter, r.w.ID, "b1", r.fid, "Another client's")
		},
	})
	if domain.ErrorCode(results[0].err) != domain.Internal {
		t.Errorf("panicking op: %v, want internal", results[0].err)
	}
	if results[1].err != nil || r.b.broken.Load() != 0 {
		t.Errorf("another client's op in the same transaction: %v (order broken at %d), want applied", results[1].err, r.b.broken.Load())
	}
	r.mustComments(t, "Another client's")
}

// TestFollowHearsAccessChanges: Follow says when Postgres listens, and
// from then on hears every access change announced, by any process.
func TestFollowHearsAccessChanges(t *testing.T) {
	s, _ := MustDemo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 { // a new listener each time: its LISTEN races with the first notes
		heard := make(chan string, 10)
		fctx, stop := context.WithCancel(ctx)
		followed := mustFollow(t, fctx, s, store.Followers{
			Wake:   func(string, int64) {},
			Access: func(from, kind, id string) { heard <- from + " " + kind + " " + id },
		})
		if err := s.AnnounceAccess(ctx, "other", store.AccessSession, "s1"); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-heard:
			if got != "other session s1" {
				t.Fatalf("heard %q", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an access change announced after Listening was not heard")
		}
		stop()
		if err := <-followed; err != nil {
			t.Fatal(err)
		}
	}
}

// mustFollow runs s.Follow with fs until ctx ends, and returns once
// Postgres listens (fs.Listening is its own); followed gets what Follow
// returns.
func mustFollow(t *testing.T, ctx context.Context, s *store.Store, fs store.Followers) (followed <-chan error) {
	t.Helper()
	listening, done := make(chan struct{}), make(chan error, 1)
	fs.Listening = func() { close(listening) }
	go func() { done <- s.Follow(ctx, fs) }()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("Follow ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Follow never said it listens")
	}
	return done
}

// comment on it, and two clients' orders, for the op order tests.
type orderRoom struct {
	s          *store.Store
	w          domain.Workshop
	room       string
	voter, fid int64
	a, b       *clientOrder
}

func newOrderRoom(t *testing.T) *orderRoom {
	t.Helper()
	s, ws := MustDemoWorkshops(t)
	r := &orderRoom{s: s, w: ws[2], room: store.WorkshopRoom(ws[2].ID), voter: mustPerson(t, s), a: &clientOrder{}, b: &clientOrder{}}
	first, err := s.CreateFinding(context.Background(), nil, r.w.ID, "earlier", store.FindingInput{Title: "Earlier"})
	if err != nil {
		t.Fatal(err)
	}
	r.fid = mustFindingID(t, first)
	return r
}

// at is the context of the n-th op client o sent.
func (r *orderRoom) at(o *clientOrder, n int64) context.Context {
	return store.WithOrder(context.Background(), orderPlace{o, n})
}

// mustComments fails the test unless the comments are want, in order.
func (r *orderRoom) mustComments(t *testing.T, want ...string) {
	t.Helper()
	var texts []string
	if err := r.s.DB().NewRaw("SELECT body FROM comments ORDER BY id").Scan(context.Background(), &texts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(texts, want) {
		t.Errorf("comments %q, want %q", texts, want)
	}
}

// clientOrder is one client's ops in the order sent, as the hub keeps it
// (store.Order): place n is broken when an op before it broke.
type clientOrder struct{ broken atomic.Int64 }

type orderPlace struct {
	o *clientOrder
	n int64
}

func (p orderPlace) Broken() bool { b := p.o.broken.Load(); return b != 0 && b < p.n }
func (p orderPlace) Break()       { p.o.broken.CompareAndSwap(0, p.n) }
func (p orderPlace) Mend()        { p.o.broken.CompareAndSwap(p.n, 0) }

// TestFailedOpHoldsBackItsClientsLaterOps has a client's op fail half-way
// in a shared transaction: the op it sent next, in the same transaction,
// and the one after, in a later one, are refused as unavailable and write
// nothing, while another client's op in the same transaction is applied.
func TestFailedOpHoldsBackItsClientsLaterOps(t *testing.T) {
	r := newOrderRoom(t)
	s, w, room, voter, fid := r.s, r.w, r.room, r.voter, r.fid
	a, b, at := r.a, r.b, r.at
	results := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) {
			return s.Apply(at(a, 1), room, "a1", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
				if _, err := tx.NewRaw("UPDATE findings SET title = 'overwritten' WHERE id = ?", fid).Exec(ctx); err != nil {
					return "", nil, err
				}
				return "", nil, errors.New("the database failed")
			})
		},
		func() (store.Applied, error) {
			return s.AddComment(at(b, 1), voter, w.ID, "b1", fid, "Another client's")
		},
		func() (store.Applied, error) {
			return s.AddComment(at(a, 2), voter, w.ID, "a2", fid, "Sent after the failed op")
		},
	})
	if domain.ErrorCode(results[0].err) != domain.Internal {
		t.Errorf("failing op: %v, want internal", results[0].err)
	}
	if results[1].err != nil {
		t.Errorf("another client's op: %v, want applied", results[1].err)
	}
	if domain.ErrorCode(results[2].err) != domain.Unavailable {
		t.Errorf("op sent after the failed one, same transaction: %+v %v, want unavailable", results[2].a, results[2].err)
	}
	_, err := s.AddComment(at(a, 3), voter, w.ID, "a3", fid, "Sent later still")
	if domain.ErrorCode(err) != domain.Unavailable {
		t.Errorf("op sent after the failed one, later transaction: %v, want unavailable", err)
	}
	r.mustComments(t, "Another client's")
	// Its resend starts the order again (the hub gives it a new chain).
	if _, err := s.AddComment(at(&clientOrder{}, 1), voter, w.ID, "a2", fid, "Sent after the failed op"); err != nil {
		t.Errorf("resent op: %v", err)
	}
}

// TestFailedOpHoldsBackItsClientsLaterOpsOneByOne: a shared transaction
// fails as a whole (a comment's write fails at its end), and its ops run
// one by one: the failing comment's client's next op is refused, another
// client's op is applied.
func TestFailedOpHoldsBackItsClientsLaterOpsOneByOne(t *testing.T) {
	r := newOrderRoom(t)
	ctx, s, w, room, voter, fid := context.Background(), r.s, r.w, r.room, r.voter, r.fid
	for _, q := range []string{
		`CREATE FUNCTION test_fail_comment() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.body = 'Fails' THEN RAISE EXCEPTION 'test: this comment fails'; END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER test_fail_comment BEFORE INSERT ON comments FOR EACH ROW EXECUTE FUNCTION test_fail_comment()`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	a, b, at := r.a, r.b, r.at
	results := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) { return s.AddComment(at(a, 1), voter, w.ID, "a1", fid, "Fails") },
		func() (store.Applied, error) { return s.AddComment(at(a, 2), voter, w.ID, "a2", fid, "Sent after it") },
		func() (store.Applied, error) {
			return s.AddComment(at(b, 1), voter, w.ID, "b1", fid, "Another client's")
		},
	})
	if domain.ErrorCode(results[0].err) != domain.Internal {
		t.Errorf("failing comment: %v, want internal", results[0].err)
	}
	if domain.ErrorCode(results[1].err) != domain.Unavailable {
		t.Errorf("op sent after it: %+v %v, want unavailable", results[1].a, results[1].err)
	}
	if results[2].err != nil {
		t.Errorf("another client's op: %v, want applied", results[2].err)
	}
	r.mustComments(t, "Another client's")
}

// TestOpFailingInATransactionThatRollsBackHoldsNothingBack: an op fails
// in a shared transaction that then fails for another reason (a repeated
// op id) and runs again; the op succeeds the second time, and the op its
// client sent next is applied, not held back by the first failure.
func TestOpFailingInATransactionThatRollsBackHoldsNothingBack(t *testing.T) {
	r := newOrderRoom(t)
	ctx, s, w, room, voter, fid := context.Background(), r.s, r.w, r.room, r.voter, r.fid
	if _, err := s.AddComment(ctx, voter, w.ID, "b1", fid, "Sent before"); err != nil {
		t.Fatal(err)
	}
	a, b, at := r.a, r.b, r.at
	var calls atomic.Int32
	results := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) {
			return s.Apply(at(a, 1), room, "a1", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
				if calls.Add(1) == 1 {
					return "", nil, errors.New("the database failed, once")
				}
				return "test.flaky", map[string]any{}, nil
			})
		},
		func() (store.Applied, error) { return s.AddComment(at(b, 1), voter, w.ID, "b1", fid, "Sent before") }, // resent
		func() (store.Applied, error) {
			return s.AddComment(at(a, 2), voter, w.ID, "a2", fid, "Sent after the flaky op")
		},
	})
	if calls.Load() != 2 {
		t.Fatalf("the flaky op ran %d times, want twice (the transaction ran again)", calls.Load())
	}
	if results[0].err != nil {
		t.Errorf("flaky op: %v, want applied the second time", results[0].err)
	}
	if results[1].err != nil || !results[1].a.Replayed {
		t.Errorf("resent op: %+v %v, want a replay", results[1].a, results[1].err)
	}
	if results[2].err != nil {
		t.Errorf("op sent after the flaky one: %v, want applied", results[2].err)
	}
	if n := a.broken.Load(); n != 0 {
		t.Errorf("the client's order is still broken at %d", n)
	}
}

// mustPerson adds a person to the database.
func mustPerson(tb testing.TB, s *store.Store) int64 {
	tb.Helper()
	p := domain.Person{Name: "Voter", Country: "FI"}
	if _, err := s.DB().NewInsert().Model(&p).Exec(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return p.ID
}

// opResult is what a queued op returned.
type opResult struct {
	a   store.Applied
	err error
}

// queueBehindBusyRoom holds room's transaction open, queues ops behind it
// one after another (so they run in this order, in one batch), lets the
// room go and returns what each op returned.
func queueBehindBusyRoom(t *testing.T, s *store.Store, room string, ops []func() (store.Applied, error)) []opResult {
	t.Helper()
	ctx := context.Background()
	blocker := make(chan error, 1)
	running, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, err := s.Apply(ctx, room, "blocker", nil, func(ctx context.Context, tx bun.Tx) (string, any, error) {
			close(running)
			select {
			case <-release:
				return "test.block", map[string]any{}, nil
			case <-time.After(10 * time.Second):
				return "", nil, errors.New("not released")
			}
		})
		blocker <- err
	}()
	<-running // the others queue behind it
	results := make([]chan opResult, len(ops))
	for i, op := range ops {
		results[i] = make(chan opResult, 1)
		go func() {
			a, err := op()
			results[i] <- opResult{a, err}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for s.Queued(room) < i+1 { // in this order
			if time.Now().After(deadline) {
				close(release)
				t.Fatalf("op %d did not queue", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	out := make([]opResult, len(ops))
	for i := range results {
		out[i] = <-results[i]
	}
	return out
}

// TestBatchedCreatesStoreWhatWasSent queues creates behind a busy room, so
// that they are written by the batch statement, with texts that array and
// JSON literals must escape: each finding and its entry hold exactly what
// was sent, and the entry says what the database holds.
func TestBatchedCreatesStoreWhatWasSent(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[1]
	author := mustPerson(t, s)
	ins := []store.FindingInput{
		{Title: `He said "NULL", then {a,b}\ and \"`, WhatDone: "Two lines,\nand a\ttab.", Results: `'quoted', "{}", NULL`,
			Transferability: "Æøå – ✓ 𝄞 <b>&amp;</b>", NordicProposal: `\\server\share`,
			Countries: []string{"SE", "FI"}, Themes: []string{"training"}, Language: "sv",
			ContactName: `Anna "A." Berg`, ContactEmail: "anna@example.org", ContactConsent: true, Attribution: "named"},
		{Title: "NULL"},
		{Title: "{}", WhatDone: `","`, Countries: []string{"NO"}, Attribution: "organisation"},
	}
	actors := []*int64{&author, nil, &author}
	// Terms that are not the taxonomy's, written to break out of the
	// array literals: refused, and the others still go in.
	bad := []string{`FI","SE`, `{FI}`, `FI\`, `\"FI`}
	ops := make([]func() (store.Applied, error), len(ins)+len(bad))
	for i := range ins {
		ops[i] = func() (store.Applied, error) {
			return s.CreateFinding(ctx, actors[i], w.ID, fmt.Sprintf("odd-%d", i), ins[i])
		}
	}
	for i, k := range bad {
		ops[len(ins)+i] = func() (store.Applied, error) {
			return s.CreateFinding(ctx, nil, w.ID, fmt.Sprintf("bad-%d", i), store.FindingInput{Title: "Bad term", Countries: []string{"SE", k}})
		}
	}
	results := queueBehindBusyRoom(t, s, store.WorkshopRoom(w.ID), ops)
	for i, r := range results[len(ins):] {
		if domain.ErrorCode(r.err) != domain.Invalid {
			t.Errorf("country %q: %+v %v, want invalid", bad[i], r.a, r.err)
		}
	}
	var stored int
	if err := s.DB().NewRaw("SELECT count(*) FROM findings WHERE title = 'Bad term'").Scan(ctx, &stored); err != nil || stored != 0 {
		t.Errorf("%d findings with a bad term were stored (%v)", stored, err)
	}
	results = results[:len(ins)]
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("create %d: %v", i, r.err)
		}
		if !r.a.Entry.At.Equal(results[0].a.Entry.At) {
			t.Errorf("create %d was not in the batch's transaction", i)
		}
		if a := r.a.Entry.ActorID; (a == nil) != (actors[i] == nil) || a != nil && *a != *actors[i] {
			t.Errorf("create %d: entry actor %v, want %v", i, a, actors[i])
		}
		var sent domain.Finding
		if err := json.Unmarshal(r.a.Entry.Payload, &sent); err != nil {
			t.Fatalf("create %d: entry payload %s: %v", i, r.a.Entry.Payload, err)
		}
		got, err := s.Finding(ctx, sent.ID)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		in := ins[i]
		want := []string{strings.TrimSpace(in.Title), in.WhatDone, in.Results, in.Transferability, in.NordicProposal,
			in.ContactName, in.ContactEmail, strings.Join(sorted(in.Countries), ","), strings.Join(in.Themes, ",")}
		have := []string{got.Title, got.WhatDone, got.Results, got.Transferability, got.NordicProposal,
			got.ContactName, got.ContactEmail, strings.Join(got.Countries, ","), strings.Join(got.Themes, ",")}
		if !slices.Equal(have, want) || got.ContactConsent != in.ContactConsent {
			t.Errorf("create %d, stored finding:\n have %q\n want %q", i, have, want)
		}
		// The entry is the same but for the contact, which it leaves out.
		want[5], want[6] = "", ""
		have = []string{sent.Title, sent.WhatDone, sent.Results, sent.Transferability, sent.NordicProposal,
			"", "", strings.Join(sent.Countries, ","), strings.Join(sent.Themes, ",")}
		if !slices.Equal(have, want) || sent.ContactConsent != in.ContactConsent {
			t.Errorf("create %d, entry's finding:\n have %q\n want %q", i, have, want)
		}
		if bytes.Contains(r.a.Entry.Payload, []byte("contact_name")) || bytes.Contains(r.a.Entry.Payload, []byte("contact_email")) {
			t.Errorf("create %d: the entry carries the contact: %s", i, r.a.Entry.Payload)
		}
		if sent.EventID != w.EventID || sent.WorkshopID == nil || *sent.WorkshopID != w.ID ||
			!sent.CreatedAt.Equal(got.CreatedAt) || !sent.UpdatedAt.Equal(got.UpdatedAt) || sent.CreatedAt.IsZero() {
			t.Errorf("create %d: the entry says %+v, the database %+v", i, sent, got)
		}
		if (got.AuthorID == nil) != (actors[i] == nil) || got.AuthorID != nil && *got.AuthorID != author {
			t.Errorf("create %d: author %v, want %v", i, got.AuthorID, actors[i])
		}
	}
}

func sorted(ss []string) []string {
	return slices.Sorted(slices.Values(ss))
}

// TestBatchedUpdatesChainAndMeetOtherOps runs updates of one finding in
// one batch with ops that are not single writes between them: each update
// must see the ones before it (their writes are held back to the batch's
// end), and an op like marking a key finding or deleting must see them
// too and not be undone by them.
func TestBatchedUpdatesChainAndMeetOtherOps(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[3]
	room := store.WorkshopRoom(w.ID)
	a, b := mustNewFinding(t, s, w.ID, "make a", "A"), mustNewFinding(t, s, w.ID, "make b", "B")
	foreign := mustNewFinding(t, s, ws[4].ID, "make foreign", "Elsewhere")
	person := mustPerson(t, s)
	update := func(opID string, id int64, base int, field, value string) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			raw, _ := json.Marshal(value)
			return s.UpdateFinding(ctx, nil, w.ID, opID, id, base, map[string]json.RawMessage{field: raw})
		}
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		update("a title", a, 1, "title", "A1"),                                            // v2
		update("a results", a, 1, "results", "R"),                                         // v3: merges, keeps A1
		update("a title again", a, 1, "title", "A-clobber"),                               // conflict: title changed at v2
		func() (store.Applied, error) { return s.MarkKey(ctx, nil, w.ID, "a key", a, 0) }, // v4
		update("a done", a, 4, "what_done", "W"),                                          // v5, still key
		func() (store.Applied, error) { return s.DeleteFinding(ctx, nil, w.ID, "b delete", b, 0) },
		update("b title", b, 1, "title", "gone"),    // deleted
		update("a title last", a, 2, "title", "A2"), // v6
		func() (store.Applied, error) { return s.AddComment(ctx, person, w.ID, "a comment", a, "Held back") },
		func() (store.Applied, error) { return s.AddComment(ctx, person, w.ID, "b comment", b, "Too late") },
		func() (store.Applied, error) {
			return s.AddComment(ctx, person, w.ID, "a comment 2", a, "Also held back")
		},
		update("foreign title", foreign, 1, "title", "Not yours"),
	})
	if domain.ErrorCode(res[11].err) != domain.NotFound {
		t.Errorf("update of another workshop's finding: %v, want NotFound", res[11].err)
	}
	if f, err := s.Finding(ctx, foreign); err != nil || f.Title != "Elsewhere" {
		t.Errorf("the other workshop's finding: %+v %v", f, err)
	}
	for _, i := range []int{0, 1, 3, 4, 5, 7, 8, 10} {
		if res[i].err != nil {
			t.Fatalf("op %d: %v", i, res[i].err)
		}
		if !res[i].a.Entry.At.Equal(res[0].a.Entry.At) {
			t.Errorf("op %d was not in the first op's transaction", i)
		}
	}
	var conflict *domain.Error
	if !errors.As(res[2].err, &conflict) || conflict.Code != domain.Conflict {
		t.Fatalf("clobbering update: %v, want a conflict", res[2].err)
	}
	if cur := conflict.Detail.(store.ConflictDetail).Current; cur.Title != "A1" || cur.Results != "R" {
		t.Errorf("conflict shows title %q, results %q; want the batch's A1, R", cur.Title, cur.Results)
	}
	if domain.ErrorCode(res[6].err) != domain.NotFound {
		t.Errorf("update of the deleted finding: %v, want NotFound", res[6].err)
	}
	if p := string(res[1].a.Entry.Payload); !strings.Contains(p, `"changes":{"results":"R"}`) || !strings.Contains(p, `"version":3`) {
		t.Errorf("second update's entry: %s, want results R at version 3 (after the batch's first)", p)
	}
	f, err := s.Finding(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if f.Title != "A2" || f.Results != "R" || f.WhatDone != "W" || !f.IsKey || f.Version != 6 {
		t.Errorf("finding a = title %q results %q done %q key %v version %d; want A2, R, W, key, 6",
			f.Title, f.Results, f.WhatDone, f.IsKey, f.Version)
	}
	if _, err := s.Finding(ctx, b); domain.ErrorCode(err) != domain.NotFound {
		t.Errorf("finding b: %v, want deleted", err)
	}
	if domain.ErrorCode(res[9].err) != domain.NotFound {
		t.Errorf("comment on the deleted finding: %v, want NotFound", res[9].err)
	}
	var comments []store.Comment
	if err := s.DB().NewSelect().Model(&comments).Where("finding_id IN (?)", bun.In([]int64{a, b})).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(comments) != 2 || comments[0].Body != "Held back" || comments[1].Body != "Also held back" ||
		comments[0].PersonID == nil || *comments[0].PersonID != person {
		t.Fatalf("comments = %+v, want the two on finding a, by the person", comments)
	}
	for k, i := range []int{8, 10} {
		var p struct{ ID int64 }
		if err := json.Unmarshal(res[i].a.Entry.Payload, &p); err != nil || p.ID != comments[k].ID {
			t.Errorf("comment entry %s does not carry the stored id %d", res[i].a.Entry.Payload, comments[k].ID)
		}
	}
}

// TestWithQueuedIsCalledOnceTheOpWaitsInItsRoom: the hook fires while the
// op still waits behind a busy room, before the op is applied.
func TestWithQueuedIsCalledOnceTheOpWaitsInItsRoom(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[0]
	room := store.WorkshopRoom(w.ID)
	queued := make(chan struct{})
	var done atomic.Bool
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) {
			qctx := store.WithQueued(ctx, func() { close(queued) })
			a, err := s.CreateFinding(qctx, nil, w.ID, "hooked", store.FindingInput{Title: "Hooked"})
			done.Store(true)
			return a, err
		},
		func() (store.Applied, error) {
			// Runs once the first op is queued, behind the same busy room.
			select {
			case <-queued:
			case <-time.After(10 * time.Second):
				return store.Applied{}, errors.New("the hook was not called")
			}
			if done.Load() {
				return store.Applied{}, errors.New("the hook came after the op was applied")
			}
			return s.CreateFinding(ctx, nil, w.ID, "second", store.FindingInput{Title: "Second"})
		},
	})
	got := res[0]
	if got.err != nil || res[1].err != nil {
		t.Fatalf("ops: %v, %v", got.err, res[1].err)
	}
	if res[1].a.Entry.Seq != got.a.Entry.Seq+1 {
		t.Errorf("seqs %d then %d: the op queued after the hook must follow it", got.a.Entry.Seq, res[1].a.Entry.Seq)
	}
}

// TestBatchedVotesCountAndLandOnce gives and takes back votes in one
// batch, on top of a vote given before it: every entry carries the count
// after its op, and the database ends with exactly the batch's outcome.
func TestBatchedVotesCountAndLandOnce(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[1]
	room := store.WorkshopRoom(w.ID)
	a, b := mustNewFinding(t, s, w.ID, "va", "Voted"), mustNewFinding(t, s, w.ID, "vb", "Deleted")
	p1, p2, p3, p4 := mustPerson(t, s), mustPerson(t, s), mustPerson(t, s), mustPerson(t, s)
	if _, err := s.Vote(ctx, p4, w.ID, "before", a); err != nil {
		t.Fatal(err)
	}
	vote := func(opID string, p, f int64) func() (store.Applied, error) {
		return func() (store.Applied, error) { return s.Vote(ctx, p, w.ID, opID, f) }
	}
	unvote := func(opID string, p, f int64) func() (store.Applied, error) {
		return func() (store.Applied, error) { return s.Unvote(ctx, p, w.ID, opID, f) }
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		vote("p1 a", p1, a),       // 2
		vote("p2 a", p2, a),       // 3
		vote("p1 a again", p1, a), // 3: once per person
		unvote("p1 a off", p1, a), // 2
		vote("p1 nothing", p1, 1<<40),
		unvote("p3 a off", p3, a), // 2: p3 never voted
		func() (store.Applied, error) { return s.DeleteFinding(ctx, nil, w.ID, "b delete", b, 0) },
		vote("p2 b", p2, b),       // deleted
		vote("p3 a", p3, a),       // 3
		unvote("p4 a off", p4, a), // 2: the vote from before the batch
	})
	want := map[int]int{0: 2, 1: 3, 2: 3, 3: 2, 5: 2, 8: 3, 9: 2}
	for i, n := range want {
		// Exactly these keys: the entry must not say who voted.
		var p struct {
			FindingID int64 `json:"finding_id"`
			Votes     int   `json:"votes"`
		}
		dec := json.NewDecoder(bytes.NewReader(res[i].a.Entry.Payload))
		dec.DisallowUnknownFields()
		if res[i].err != nil || dec.Decode(&p) != nil || p.Votes != n || p.FindingID == 0 {
			t.Errorf("op %d: %v, payload %s; want the finding and %d votes, nothing else", i, res[i].err, res[i].a.Entry.Payload, n)
		}
	}
	for _, i := range []int{4, 7} {
		if domain.ErrorCode(res[i].err) != domain.NotFound {
			t.Errorf("op %d: %v, want NotFound", i, res[i].err)
		}
	}
	var voters []int64
	if err := s.DB().NewRaw("SELECT person_id FROM votes WHERE finding_id = ? ORDER BY person_id", a).Scan(ctx, &voters); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(voters, []int64{p2, p3}) {
		t.Errorf("voters of a = %v, want p2 %d and p3 %d", voters, p2, p3)
	}
}

// An update's entry carries what changed, not the whole finding (every
// member of the room is sent it): a one-word edit of a finding with long
// texts is a small entry, alone and in a batch after the batch's own
// votes. A conflict's current finding is whole, with its votes.
func TestUpdateEntriesCarryWhatChanged(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[1]
	f := mustNewFinding(t, s, w.ID, "c", "Voted on")
	long := strings.Repeat("€", 20000)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	if _, err := s.UpdateFinding(ctx, nil, w.ID, "long", f, 1, map[string]json.RawMessage{"what_done": raw(long), "results": raw(long)}); err != nil {
		t.Fatal(err)
	}
	p1, p2 := mustPerson(t, s), mustPerson(t, s)
	if _, err := s.Vote(ctx, p1, w.ID, "v1", f); err != nil {
		t.Fatal(err)
	}
	carries := func(a store.Applied, title string, version int) {
		t.Helper()
		var p struct {
			ID      int64                      `json:"id"`
			Version int                        `json:"version"`
			Changes map[string]json.RawMessage `json:"changes"`
			Fields  []string                   `json:"fields"`
		}
		if err := json.Unmarshal(a.Entry.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.ID != f || p.Version != version || len(p.Changes) != 1 || string(p.Changes["title"]) != string(raw(title)) || !slices.Equal(p.Fields, []string{"title"}) {
			t.Errorf("entry of a title edit: %s, want finding %d at version %d, the title alone", a.Entry.Payload, f, version)
		}
		if n := len(a.Entry.Payload); n > 500 {
			t.Errorf("entry of a title edit of a finding with long texts: %d bytes", n)
		}
	}
	a, err := s.UpdateFinding(ctx, nil, w.ID, "u1", f, 2, map[string]json.RawMessage{"title": raw("Alone")})
	if err != nil {
		t.Fatal(err)
	}
	carries(a, "Alone", 3)
	res := queueBehindBusyRoom(t, s, store.WorkshopRoom(w.ID), []func() (store.Applied, error){
		func() (store.Applied, error) { return s.Vote(ctx, p2, w.ID, "v2", f) },
		func() (store.Applied, error) {
			return s.UpdateFinding(ctx, nil, w.ID, "u2", f, 3, map[string]json.RawMessage{"title": raw("In a batch")})
		},
		func() (store.Applied, error) {
			return s.UpdateFinding(ctx, nil, w.ID, "u3", f, 1, map[string]json.RawMessage{"title": raw("Stale")})
		},
	})
	if res[1].err != nil {
		t.Fatal(res[1].err)
	}
	carries(res[1].a, "In a batch", 4)
	var de *domain.Error
	if !errors.As(res[2].err, &de) || de.Code != domain.Conflict {
		t.Fatalf("stale update: %v, want conflict", res[2].err)
	}
	if cd, ok := de.Detail.(store.ConflictDetail); !ok || cd.Current.Votes != 2 || cd.Current.WhatDone != long {
		t.Errorf("conflict's current finding: %+v, want it whole, with 2 votes", de.Detail)
	}
}

// TestAConflictSeesAnOlderProcessesEntry: during an upgrade a process of
// the older version logs an update with the whole finding (as "finding").
// A stale update of the same field is still a conflict over it.
func TestAConflictSeesAnOlderProcessesEntry(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[2]
	id := mustNewFinding(t, s, w.ID, "c", "Start")
	p1, p2 := mustPerson(t, s), mustPerson(t, s)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	if _, err := s.UpdateFinding(ctx, &p1, w.ID, "older", id, 1, map[string]json.RawMessage{"title": raw("By an older process")}); err != nil {
		t.Fatal(err)
	}
	// As the older version logged it.
	if _, err := s.DB().ExecContext(ctx, `UPDATE log_entries SET payload = jsonb_build_object('finding',
		jsonb_build_object('id', payload->'id', 'version', payload->'version', 'title', 'By an older process'), 'fields', payload->'fields')
		WHERE op_id = 'older'`); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateFinding(ctx, &p2, w.ID, "stale", id, 1, map[string]json.RawMessage{"title": raw("Over it")})
	if domain.ErrorCode(err) != domain.Conflict {
		t.Fatalf("a stale update of the title an older process changed: %v, want a conflict", err)
	}
}

// A stale update conflicts only over changes by someone else: two saves of
// one field from one person, the second sent before the first was acked,
// both apply; alone and in a batch, whose entries reach the log at its end.
func TestOwnEarlierEditsAreNoConflict(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[3]
	id := mustNewFinding(t, s, w.ID, "c", "Start")
	p1, p2 := mustPerson(t, s), mustPerson(t, s)
	upd := func(p int64, opID string, base int, field, value string) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			v, _ := json.Marshal(value)
			return s.UpdateFinding(ctx, &p, w.ID, opID, id, base, map[string]json.RawMessage{field: v})
		}
	}
	steps := []struct {
		op       func() (store.Applied, error)
		conflict bool
	}{
		{upd(p1, "p1 title", 1, "title", "A1"), false},
		{upd(p1, "p1 title again", 1, "title", "A2"), false},     // own: applies over A1
		{upd(p2, "p2 title", 1, "title", "B"), true},             // p1 changed it since 1
		{upd(p2, "p2 results", 1, "results", "R"), false},        // another field: merges
		{upd(p1, "p1 stale results", 3, "results", "R1"), true},  // p2 changed it since 3
		{upd(p1, "p1 title at 4", 4, "title", "A3"), false},      // nobody changed it since 4
		{upd(p1, "p1 title once more", 2, "title", "A4"), false}, // since 2 only p1's own
	}
	for i, st := range steps {
		_, err := st.op()
		if got := domain.ErrorCode(err) == domain.Conflict; got != st.conflict || (!st.conflict && err != nil) {
			t.Fatalf("step %d: %v, want conflict %v", i, err, st.conflict)
		}
	}
	if f, _ := s.Finding(ctx, id); f.Title != "A4" || f.Results != "R" || f.Version != 6 {
		t.Fatalf("after the steps: title %q, results %q, version %d; want A4, R, 6", f.Title, f.Results, f.Version)
	}
	res := queueBehindBusyRoom(t, s, store.WorkshopRoom(w.ID), []func() (store.Applied, error){
		upd(p2, "b p2", 6, "title", "B2"),
		upd(p1, "b p1", 6, "title", "A5"),       // p2's change, earlier in the batch
		upd(p2, "b p2 again", 6, "title", "B3"), // p2's own
	})
	if res[0].err != nil || domain.ErrorCode(res[1].err) != domain.Conflict || res[2].err != nil {
		t.Fatalf("in a batch: %v, %v, %v; want ok, conflict, ok", res[0].err, res[1].err, res[2].err)
	}
	if f, _ := s.Finding(ctx, id); f.Title != "B3" || f.Version != 8 {
		t.Fatalf("after the batch: title %q, version %d; want B3, 8", f.Title, f.Version)
	}
}

// A person's stale copy on one device does not save over what they wrote
// since on another: an update or delete that names its client conflicts
// with the same person's change from another client, or from none named;
// alone and in a batch. Its own client's changes are its own, and an op
// that names no client takes every change of its person for its own.
func TestAChangeFromAnotherClientOfThePersonIsAConflict(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[4]
	id := mustNewFinding(t, s, w.ID, "c", "Start")
	p := mustPerson(t, s)
	from := func(client string) context.Context { return store.WithClient(ctx, client) }
	upd := func(client, opID string, base int, field, value string) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			v, _ := json.Marshal(value)
			return s.UpdateFinding(from(client), &p, w.ID, opID, id, base, map[string]json.RawMessage{field: v})
		}
	}
	steps := []struct {
		op       func() (store.Applied, error)
		conflict bool
	}{
		{upd("laptop", "laptop title", 1, "title", "L1"), false},
		{upd("laptop", "laptop title again", 1, "title", "L2"), false}, // its own
		{upd("tablet", "tablet title", 1, "title", "T"), true},         // the laptop's since 1
		{upd("tablet", "tablet results", 1, "results", "R"), false},    // another field: merges
		{upd("", "no client title", 1, "title", "N1"), false},          // names none: the person's own
		{upd("laptop", "laptop stale title", 3, "title", "L3"), true},  // since 3 by no client named
		{upd("laptop", "laptop title at 5", 5, "title", "L4"), false},  // nobody changed it since 5
		{upd("tablet", "tablet results again", 1, "results", "R2"), false},
	}
	for i, st := range steps {
		_, err := st.op()
		if got := domain.ErrorCode(err) == domain.Conflict; got != st.conflict || (!st.conflict && err != nil) {
			t.Fatalf("step %d: %v, want conflict %v", i, err, st.conflict)
		}
	}
	f, _ := s.Finding(ctx, id)
	if f.Title != "L4" || f.Results != "R2" || f.Version != 7 {
		t.Fatalf("after the steps: title %q, results %q, version %d; want L4, R2, 7", f.Title, f.Results, f.Version)
	}
	// The conflict says whose change it is.
	_, err := upd("tablet", "tablet title, later", 1, "title", "T")()
	if want := "You (on another device or browser) changed the title since version 1;"; !strings.Contains(domain.ErrorMessage(err), want) {
		t.Fatalf("the tablet's stale title: %v, want %q", err, want)
	}
	// A delete based on a version the laptop wrote over since.
	_, err = s.DeleteFinding(from("tablet"), &p, w.ID, "tablet delete", id, 3)
	if want := "You (on another device or browser) changed the title since version 3;"; !strings.Contains(domain.ErrorMessage(err), want) {
		t.Fatalf("a stale delete from the tablet: %v, want %q", err, want)
	}
	res := queueBehindBusyRoom(t, s, store.WorkshopRoom(w.ID), []func() (store.Applied, error){
		upd("laptop", "b laptop", 7, "title", "L5"),
		upd("tablet", "b tablet", 7, "title", "T2"),       // the laptop's, earlier in the batch
		upd("laptop", "b laptop again", 7, "title", "L6"), // its own
	})
	if res[0].err != nil || domain.ErrorCode(res[1].err) != domain.Conflict || res[2].err != nil {
		t.Fatalf("in a batch: %v, %v, %v; want ok, conflict, ok", res[0].err, res[1].err, res[2].err)
	}
	// Someone else's change among the person's own is someone else's.
	other := mustPerson(t, s)
	if _, err := s.UpdateFinding(ctx, &other, w.ID, "other results", id, 9, map[string]json.RawMessage{"results": json.RawMessage(`"O"`)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.UpdateFinding(from("tablet"), &p, w.ID, "tablet both", id, 7, map[string]json.RawMessage{"title": json.RawMessage(`"T"`), "results": json.RawMessage(`"T"`)})
	// It says who changed which field.
	if want := "Someone else changed the results, and you (on another device or browser) the title, since version 7;"; !strings.HasPrefix(domain.ErrorMessage(err), want) {
		t.Fatalf("a stale update over the laptop's title and another's results: %v, want %q", err, want)
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("a stale update over the laptop's title and another's results: %v, want a domain error", err)
	}
	if d, ok := de.Detail.(store.ConflictDetail); !ok || !slices.Equal(d.Fields, []string{"results", "title"}) || !slices.Equal(d.Yours, []string{"title"}) {
		t.Fatalf("the conflict's detail: %#v, want fields [results title], yours [title]", de.Detail)
	}
	// After the batch, from the log: the batch's entries name their client.
	if _, err := upd("tablet", "tablet after the batch", 7, "title", "T3")(); domain.ErrorCode(err) != domain.Conflict {
		t.Fatalf("a stale update after the batch: %v, want a conflict", err)
	}
	if _, err := upd("laptop", "laptop after the batch", 7, "title", "L7")(); err != nil {
		t.Fatalf("the laptop's own after the batch: %v", err)
	}
	if f, _ := s.Finding(ctx, id); f.Title != "L7" || f.Version != 11 {
		t.Fatalf("at the end: title %q, version %d; want L7, 11", f.Title, f.Version)
	}
	// A name the log could not keep is refused, and writes nothing.
	if _, err := upd(strings.Repeat("x", 65), "too long a client", 11, "title", "X")(); domain.ErrorCode(err) != domain.Invalid {
		t.Fatalf("a client of 65 characters: %v, want invalid", err)
	}
	if _, err := upd("a\x00b", "a client with a NUL", 11, "title", "X")(); domain.ErrorCode(err) != domain.Invalid {
		t.Fatalf("a client with a NUL: %v, want invalid", err)
	}
	if f, _ := s.Finding(ctx, id); f.Title != "L7" || f.Version != 11 {
		t.Fatalf("after the refused names: title %q, version %d; want L7, 11", f.Title, f.Version)
	}
	var n int
	if err := s.DB().NewRaw("SELECT count(*) FROM log_clients").Scan(ctx, &n); err != nil || n != 8 {
		t.Fatalf("clients logged: %d (%v), want the 8 updates that named one and applied", n, err)
	}
}

// The key state, too: a stale delete, mark or unmark from one client of
// the person conflicts with their key change from another client, or from
// none named (judged by the change itself, not by a later mark that
// changed nothing); alone and in a batch.
func TestAKeyChangeFromAnotherClientOfThePersonIsAConflict(t *testing.T) {
	ctx := store.WithCurateRight(context.Background())
	s, ws := MustDemoWorkshops(t)
	w := ws[4]
	p := mustPerson(t, s)
	from := func(client string) context.Context { return store.WithClient(ctx, client) }
	id := mustNewFinding(t, s, w.ID, "c", "Start")
	steps := []struct {
		op   func() (store.Applied, error)
		want string // the conflict's message begins so; "" for none
	}{
		{func() (store.Applied, error) { return s.MarkKey(from("laptop"), &p, w.ID, "laptop mark", id, 1) }, ""},
		{func() (store.Applied, error) {
			return s.DeleteFinding(from("tablet"), &p, w.ID, "tablet delete", id, 1)
		},
			"You (on another device or browser) changed whether it is a key finding since version 1"},
		{func() (store.Applied, error) { return s.UnmarkKey(from("tablet"), &p, w.ID, "tablet unmark", id, 1) },
			"You (on another device or browser) made this finding a key finding since version 1"},
		{func() (store.Applied, error) { return s.UnmarkKey(from("laptop"), &p, w.ID, "laptop unmark", id, 1) }, ""}, // its own
		{func() (store.Applied, error) { return s.MarkKey(from("tablet"), &p, w.ID, "tablet mark", id, 1) },
			"You (on another device or browser) took this finding out of the key findings since version 1"},
		{func() (store.Applied, error) { return s.MarkKey(ctx, &p, w.ID, "mark, no client", id, 1) }, ""},              // names none: all its person's
		{func() (store.Applied, error) { return s.MarkKey(from("tablet"), &p, w.ID, "tablet mark again", id, 4) }, ""}, // changes nothing
		{func() (store.Applied, error) {
			return s.UnmarkKey(from("tablet"), &p, w.ID, "tablet stale unmark", id, 3)
		},
			"You (on another device or browser) made this finding a key finding since version 3"},
	}
	for i, st := range steps {
		_, err := st.op()
		if msg := domain.ErrorMessage(err); st.want == "" && err != nil || st.want != "" && (domain.ErrorCode(err) != domain.Conflict || !strings.HasPrefix(msg, st.want)) {
			t.Fatalf("step %d: %v, want %q", i, err, st.want)
		}
		var de *domain.Error
		if st.want != "" && errors.As(err, &de) {
			if d, _ := de.Detail.(store.ConflictDetail); !slices.Equal(d.Yours, []string{"is_key"}) {
				t.Fatalf("step %d: detail %#v, want the key state among the person's own changes", i, de.Detail)
			}
		}
	}
	if f, _ := s.Finding(ctx, id); !f.IsKey || f.Version != 4 {
		t.Fatalf("after the steps: key %v, version %d; want key at 4", f.IsKey, f.Version)
	}
	res := queueBehindBusyRoom(t, s, store.WorkshopRoom(w.ID), []func() (store.Applied, error){
		func() (store.Applied, error) { return s.UnmarkKey(from("laptop"), &p, w.ID, "b laptop unmark", id, 4) },
		func() (store.Applied, error) { return s.MarkKey(from("tablet"), &p, w.ID, "b tablet mark", id, 4) },      // the laptop's, earlier in the batch
		func() (store.Applied, error) { return s.MarkKey(from("laptop"), &p, w.ID, "b laptop mark", id, 4) },      // its own
		func() (store.Applied, error) { return s.DeleteFinding(from("tablet"), &p, w.ID, "b tablet del", id, 4) }, // the laptop's
	})
	if res[0].err != nil || domain.ErrorCode(res[1].err) != domain.Conflict || res[2].err != nil || domain.ErrorCode(res[3].err) != domain.Conflict {
		t.Fatalf("in a batch: %v, %v, %v, %v; want ok, conflict, ok, conflict", res[0].err, res[1].err, res[2].err, res[3].err)
	}
	if f, err := s.Finding(ctx, id); err != nil || !f.IsKey || f.Version != 6 {
		t.Fatalf("after the batch: %+v (%v); want key at 6", f, err)
	}
}

// TestAContactChangedSinceBaseIsAConflict: consent taken back clears the
// contact, but not one someone else gave since the sender's base; and a
// stale change of a contact someone else cleared is a conflict, not a
// validation error about the finding the sender never saw.
func TestAContactChangedSinceBaseIsAConflict(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[1].ID
	a, b := mustPerson(t, s), mustPerson(t, s)
	n := 0
	newFinding := func() int64 {
		n++
		r, err := s.CreateFinding(ctx, &a, w, fmt.Sprintf("contact %d", n), store.FindingInput{Title: "With a contact",
			ContactConsent: true, ContactName: "Old", ContactEmail: "old@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		return mustFindingID(t, r)
	}
	upd := func(p int64, opID string, id int64, base int, body string) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			var changes map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &changes); err != nil {
				t.Fatal(err)
			}
			return s.UpdateFinding(ctx, &p, w, opID, id, base, changes)
		}
	}
	contact := func(id int64) string {
		f, err := s.Finding(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%v %s <%s> v%d", f.ContactConsent, f.ContactName, f.ContactEmail, f.Version)
	}
	wantConflict := func(err error, fields ...string) {
		t.Helper()
		var e *domain.Error
		if !errors.As(err, &e) || e.Code != domain.Conflict {
			t.Fatalf("%v, want a conflict", err)
		}
		if d, ok := e.Detail.(store.ConflictDetail); !ok || !slices.Equal(d.Fields, fields) {
			t.Fatalf("conflict detail %+v, want fields %v", e.Detail, fields)
		}
	}

	// B gives a new contact; A, on version 1, takes consent back.
	id := newFinding()
	if _, err := upd(b, "b new contact", id, 1, `{"contact_name": "New", "contact_email": "new@example.org"}`)(); err != nil {
		t.Fatal(err)
	}
	_, err := upd(a, "a withdraws", id, 1, `{"contact_consent": false}`)()
	wantConflict(err, "contact_email", "contact_name")
	if want := "Someone else changed the contact's email and the contact's name since version 1;"; !strings.Contains(domain.ErrorMessage(err), want) {
		t.Errorf("message %q, want it to say %q (fields named for people)", domain.ErrorMessage(err), want)
	}
	if got, want := contact(id), "true New <new@example.org> v2"; got != want {
		t.Fatalf("after the refused withdrawal: %s, want %s", got, want)
	}
	// On the version that has B's contact, it goes through and clears it.
	if _, err := upd(a, "a withdraws at 2", id, 2, `{"contact_consent": false}`)(); err != nil {
		t.Fatal(err)
	}
	if got, want := contact(id), "false  <> v3"; got != want {
		t.Fatalf("after the withdrawal: %s, want %s", got, want)
	}

	// B takes consent back; A, on version 1, corrects the email.
	id = newFinding()
	if _, err := upd(b, "b withdraws", id, 1, `{"contact_consent": false}`)(); err != nil {
		t.Fatal(err)
	}
	_, err = upd(a, "a fixes the email", id, 1, `{"contact_email": "fixed@example.org"}`)()
	wantConflict(err, "contact_email")

	// One's own contact change since base is no conflict.
	id = newFinding()
	if _, err := upd(a, "a new contact", id, 1, `{"contact_name": "Mine"}`)(); err != nil {
		t.Fatal(err)
	}
	if _, err := upd(a, "a withdraws own", id, 1, `{"contact_consent": false}`)(); err != nil {
		t.Fatal(err)
	}

	// The same in one batch: B's contact, then A's withdrawal on version 1.
	id = newFinding()
	res := queueBehindBusyRoom(t, s, store.WorkshopRoom(w), []func() (store.Applied, error){
		upd(b, "batch b contact", id, 1, `{"contact_email": "batch@example.org"}`),
		upd(a, "batch a withdraws", id, 1, `{"contact_consent": false}`),
	})
	if res[0].err != nil {
		t.Fatal(res[0].err)
	}
	wantConflict(res[1].err, "contact_email")
	if got, want := contact(id), "true Old <batch@example.org> v2"; got != want {
		t.Fatalf("after the batch: %s, want %s", got, want)
	}
}

// TestAStaleDeleteOrKeyChangeIsAConflict: a delete, mark or unmark sent
// with the version its sender saw is a conflict when someone else changed
// the finding's fields (delete) or key state since; one's own changes and
// an op without base are not.
func TestAStaleDeleteOrKeyChangeIsAConflict(t *testing.T) {
	ctx := store.WithCurateRight(context.Background())
	s, ws := MustDemoWorkshops(t)
	w := ws[1].ID
	a, b := mustPerson(t, s), mustPerson(t, s)
	n := 0
	newFinding := func() int64 {
		n++
		r, err := s.CreateFinding(ctx, &a, w, fmt.Sprintf("stale %d", n), store.FindingInput{Title: "T"})
		if err != nil {
			t.Fatal(err)
		}
		return mustFindingID(t, r)
	}
	results := func(p int64, opID string, id int64, base int) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			return s.UpdateFinding(ctx, &p, w, opID, id, base, map[string]json.RawMessage{"results": json.RawMessage(`"` + opID + `"`)})
		}
	}
	mark := func(p int64, opID string, id int64, base int, key bool) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			if key {
				return s.MarkKey(ctx, &p, w, opID, id, base)
			}
			return s.UnmarkKey(ctx, &p, w, opID, id, base)
		}
	}
	del := func(p int64, opID string, id int64, base int) func() (store.Applied, error) {
		return func() (store.Applied, error) { return s.DeleteFinding(ctx, &p, w, opID, id, base) }
	}
	must := func(op func() (store.Applied, error)) {
		t.Helper()
		if _, err := op(); err != nil {
			t.Fatal(err)
		}
	}
	conflict := func(err error, field string) {
		t.Helper()
		var e *domain.Error
		if !errors.As(err, &e) || e.Code != domain.Conflict {
			t.Fatalf("%v, want a conflict", err)
		}
		if d, ok := e.Detail.(store.ConflictDetail); !ok || !slices.Equal(d.Fields, []string{field}) {
			t.Fatalf("conflict detail %+v, want fields [%s]", e.Detail, field)
		}
	}
	state := func(id int64) string {
		f, err := s.Finding(ctx, id)
		if err != nil {
			return "gone"
		}
		return fmt.Sprintf("key %v v%d", f.IsKey, f.Version)
	}

	// B writes results (v2); A, who saw v1, deletes: B's text stays.
	id := newFinding()
	must(results(b, "b results", id, 1))
	_, err := del(a, "a deletes at 1", id, 1)()
	conflict(err, "results")
	must(del(a, "a deletes at 2", id, 2)) // having seen it
	if got := state(id); got != "gone" {
		t.Fatalf("after the delete at 2: %s", got)
	}
	// Without base, as before: deleted.
	id = newFinding()
	must(results(b, "b results 2", id, 1))
	must(del(a, "a deletes", id, 0))
	// One's own change since base is no conflict.
	id = newFinding()
	must(results(a, "a results", id, 1))
	must(del(a, "a deletes own", id, 1))

	// B marks (v2) and unmarks (v3); A's mark, made at v1, comes after.
	id = newFinding()
	must(mark(b, "b mark", id, 1, true))
	must(mark(b, "b unmark", id, 2, false))
	_, err = mark(a, "a mark at 1", id, 1, true)()
	conflict(err, "is_key")
	if got := state(id); got != "key false v3" {
		t.Fatalf("after the refused mark: %s", got)
	}
	must(mark(a, "a mark at 3", id, 3, true)) // having seen the unmark
	// B's unmark on v1, after A's mark: a conflict too; and a delete.
	_, err = mark(b, "b unmark at 1", id, 1, false)()
	conflict(err, "is_key")
	_, err = del(b, "b deletes at 3", id, 3)()
	conflict(err, "is_key")
	// A's own quick toggle, both on the version before: no conflict.
	must(mark(a, "a unmark at 3", id, 3, false))
	must(mark(a, "a mark again at 3", id, 3, true))
	// Asking for what already is: applied, changes nothing.
	must(mark(b, "b marks a key at 1", id, 1, true))
	if got := state(id); got != "key true v6" {
		t.Fatalf("after the toggles: %s", got)
	}
	// A base the finding never had is invalid.
	if _, err := mark(a, "a base 99", id, 99, false)(); domain.ErrorCode(err) != domain.Invalid {
		t.Fatalf("base 99: %v, want invalid", err)
	}
	if _, err := del(a, "a del base 99", id, 99)(); domain.ErrorCode(err) != domain.Invalid {
		t.Fatalf("delete at base 99: %v, want invalid", err)
	}

	// In one batch: B's results and mark, then A's delete and unmark at 1.
	id = newFinding()
	res := queueBehindBusyRoom(t, s, store.WorkshopRoom(w), []func() (store.Applied, error){
		results(b, "batch b results", id, 1),
		del(a, "batch a deletes", id, 1),
		mark(b, "batch b mark", id, 2, true),
		mark(a, "batch a unmark", id, 1, false),
	})
	if res[0].err != nil || res[2].err != nil {
		t.Fatal(res[0].err, res[2].err)
	}
	conflict(res[1].err, "results")
	conflict(res[3].err, "is_key")
	if got := state(id); got != "key true v3" {
		t.Fatalf("after the batch: %s", got)
	}
}

// Key findings and key messages: a conflict carries detail.current (as
// PROTOCOL.md says), and a list that can never be right is invalid.
func TestKeyOpsConflictWithTheCurrentValue(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[2]
	a, b := mustNewFinding(t, s, w.ID, "a", "A"), mustNewFinding(t, s, w.ID, "b", "B")
	for _, id := range []int64{a, b} {
		if _, err := s.MarkKey(ctx, nil, w.ID, fmt.Sprint("mark-", id), id, 0); err != nil {
			t.Fatal(err)
		}
	}
	head := mustHead(t, s, store.WorkshopRoom(w.ID))
	if _, err := s.ReorderKey(ctx, nil, w.ID, "twice", []int64{a, a, b}, nil); domain.ErrorCode(err) != domain.Invalid {
		t.Errorf("reorder naming a finding twice: %v, want invalid", err)
	}
	_, err := s.ReorderKey(ctx, nil, w.ID, "one missing", []int64{b}, nil)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.Conflict {
		t.Fatalf("reorder missing a key finding: %v, want conflict", err)
	}
	if d, _ := json.Marshal(de.Detail); string(d) != fmt.Sprintf(`{"current":{"order":[%d,%d]}}`, a, b) {
		t.Errorf("reorder conflict detail %s", d)
	}
	// Two people reorder the order they both saw: the second, whose from
	// is no longer the order, is a conflict, not a silent overwrite.
	if _, err := s.ReorderKey(ctx, nil, w.ID, "first", []int64{b, a}, []int64{a, b}); err != nil {
		t.Fatalf("a reorder from the current order: %v", err)
	}
	_, err = s.ReorderKey(ctx, nil, w.ID, "second", []int64{a, b}, []int64{a, b})
	if !errors.As(err, &de) || de.Code != domain.Conflict {
		t.Fatalf("a reorder from an order changed since: %v, want conflict", err)
	}
	if d, _ := json.Marshal(de.Detail); string(d) != fmt.Sprintf(`{"current":{"order":[%d,%d]}}`, b, a) {
		t.Errorf("reorder conflict detail %s, want the order the first made", d)
	}
	if _, err := s.ReorderKey(ctx, nil, w.ID, "twice, stale", []int64{a, a}, []int64{a, b}); domain.ErrorCode(err) != domain.Invalid {
		t.Errorf("a stale reorder naming a finding twice: %v, want invalid", err)
	}
	head++ // the first reorder
	if _, err := s.SetKeyMessages(ctx, nil, w.ID, "km1", 0, "First"); err != nil {
		t.Fatal(err)
	}
	_, err = s.SetKeyMessages(ctx, nil, w.ID, "km2", 0, "Stale")
	if !errors.As(err, &de) || de.Code != domain.Conflict {
		t.Fatalf("stale key messages: %v, want conflict", err)
	}
	if d, _ := json.Marshal(de.Detail); string(d) != `{"current":{"text":"First","version":1}}` {
		t.Errorf("key messages conflict detail %s", d)
	}
	if _, err := s.SetKeyMessages(ctx, nil, w.ID, "km3", 2, "Ahead"); domain.ErrorCode(err) != domain.Invalid {
		t.Fatalf("key messages based on a version to come: %v, want invalid", err)
	}
	if after := mustHead(t, s, store.WorkshopRoom(w.ID)); after != head+1 {
		t.Errorf("room moved from %d to %d; only the first reorder and key messages should be logged", head, after)
	}
}

// mustNewFinding creates a finding titled title in workshop w and returns its id.
func mustNewFinding(tb testing.TB, s *store.Store, w int64, opID, title string) int64 {
	tb.Helper()
	a, err := s.CreateFinding(context.Background(), nil, w, opID, store.FindingInput{Title: title})
	if err != nil {
		tb.Fatal(err)
	}
	return mustFindingID(tb, a)
}

// TestRepeatedOpInABatch sends an op id again in a batch with new ops: the
// batch is not looked up in advance, so the log's unique (room, op_id)
// refuses it and the batch runs again with a lookup. The repeat is
// answered with its first entry, the new ops land once, and WithCommitted
// hands over only the new entries, in log order, more set on all but the
// last.
func TestRepeatedOpInABatch(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[0]
	room := store.WorkshopRoom(w.ID)
	first, err := s.CreateFinding(ctx, nil, w.ID, "again", store.FindingInput{Title: "Said twice"})
	if err != nil {
		t.Fatal(err)
	}
	type handed struct {
		seq  int64
		more bool
	}
	var mu sync.Mutex
	var got []handed
	hctx := store.WithCommitted(ctx, func(e domain.LogEntry, more bool) {
		mu.Lock()
		got = append(got, handed{e.Seq, more})
		mu.Unlock()
	})
	create := func(opID, title string) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			return s.CreateFinding(hctx, nil, w.ID, opID, store.FindingInput{Title: title})
		}
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		create("new-1", "New one"), create("again", "Said twice"), create("new-2", "New two"),
	})
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("op %d: %v", i, r.err)
		}
	}
	if !res[1].a.Replayed || res[1].a.Entry.Seq != first.Entry.Seq {
		t.Errorf("the repeat: replayed %v at seq %d, want its first seq %d", res[1].a.Replayed, res[1].a.Entry.Seq, first.Entry.Seq)
	}
	a, b := res[0].a.Entry.Seq, res[2].a.Entry.Seq
	if res[0].a.Replayed || res[2].a.Replayed || a == b || min(a, b) <= first.Entry.Seq {
		t.Fatalf("new ops at seqs %d and %d (replayed %v, %v), after %d", a, b, res[0].a.Replayed, res[2].a.Replayed, first.Entry.Seq)
	}
	var n int
	if err := s.DB().NewRaw("SELECT count(*) FROM findings WHERE workshop_id = ? AND title IN ('Said twice', 'New one', 'New two')", w.ID).Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d findings, want 3: each op once", n)
	}
	want := []handed{{min(a, b), true}, {max(a, b), false}}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("handed over %v, want %v", got, want)
	}
}

// TestPersonTextsAreCheckedNotAltered: a person's texts that cannot be
// stored as given (a NUL, which the driver would drop without a word, text
// that is not UTF-8, too long) are refused, by hand and by import, and
// nothing is written; the names an identity provider sends are cleaned,
// since a sign-in is not refused for them.
func TestPersonTextsAreCheckedNotAltered(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	ev := ws[0].EventID
	people := func() int {
		t.Helper()
		var n int
		if err := s.DB().NewRaw("SELECT count(*) FROM people").Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := people()
	for name, in := range map[string]store.PersonInput{
		"NUL in the name":       {Name: "Ann\x00a"},
		"NUL in the email":      {Name: "Anna", Email: "anna\x00@example.org"},
		"country not UTF-8":     {Name: "Anna", Country: "F\xffI"},
		"organisation too long": {Name: "Anna", Organisation: strings.Repeat("ö", 201)},
		"name too long":         {Name: strings.Repeat("a", 201)},
		"NUL in the actor type": {Name: "Anna", ActorType: "police\x00"},
		"no name":               {Name: ""},
	} {
		if _, _, err := s.AddMember(ctx, nil, ev, in, domain.RoleParticipant, ws[0].ID); domain.ErrorCode(err) != domain.Invalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	long := strings.Repeat("å", 200)
	p, _, err := s.AddMember(ctx, nil, ev, store.PersonInput{Name: long, Organisation: `"Quoted" \ org`}, domain.RoleParticipant, ws[0].ID)
	if err != nil {
		t.Fatalf("a name at the limit: %v", err)
	}
	if got, err := s.Person(ctx, p.ID); err != nil || got.Name != long || got.Organisation != `"Quoted" \ org` {
		t.Errorf("stored %q / %q (%v)", got.Name, got.Organisation, err)
	}
	_, err = s.ImportPeople(ctx, nil, ev, []store.ImportRow{
		{Line: 2, Person: store.PersonInput{Name: "Fine"}, Role: domain.RoleParticipant, WorkshopID: ws[0].ID},
		{Line: 3, Person: store.PersonInput{Name: "Bad\x00"}, Role: domain.RoleParticipant, WorkshopID: ws[0].ID},
	})
	if domain.ErrorCode(err) != domain.Invalid || !strings.Contains(err.Error(), "Line 3") {
		t.Errorf("import with a NUL on line 3: %v, want invalid naming line 3", err)
	}
	if n := people(); n != before+1 {
		t.Errorf("%d people were written, want only the one at the limit", n-before)
	}

	signed, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "s1",
		Name: "Bo\x00b\xffby " + strings.Repeat("x", 300), Email: "bobby\x00@example.org", EmailVerified: true})
	if err != nil {
		t.Fatalf("sign-in with an odd name: %v", err)
	}
	got, err := s.Person(ctx, signed.Person.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := ("Bobby " + strings.Repeat("x", 300))[:200]; got.Name != want || got.Email != nil {
		t.Errorf("signed-in person: name %q, email %v; want %q and no email", got.Name, got.Email, want)
	}
}

// TestSignInFindsAPersonWhateverTheUnicodeForm: a provider that sends the
// name and email of a person added by hand in NFD (a decomposed "ö")
// signs that person in, not someone new, and what it stores is in NFC.
func TestSignInFindsAPersonWhateverTheUnicodeForm(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	p, _, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Jörgen Ås", Email: "jörgen@example.ax"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "j",
		Name: norm.NFD.String("Jörgen Ås"), Email: norm.NFD.String("JÖRGEN@example.ax"), EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Person(ctx, signed.Person.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != p.ID || got.Name != "Jörgen Ås" || got.Email == nil || *got.Email != "JÖRGEN@example.ax" {
		t.Errorf("signed in %d %q %v, want person %d, %q and the claim's email in NFC", got.ID, got.Name, got.Email, p.ID, "Jörgen Ås")
	}
}

// TestOpIDIsCountedInCharacters: an op id of 100 characters is taken
// whatever its bytes, as the hub and the log's CHECK count it; 101 is not.
func TestOpIDIsCountedInCharacters(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	if _, err := s.CreateFinding(ctx, nil, ws[0].ID, strings.Repeat("é", 100), store.FindingInput{Title: "Long op id"}); err != nil {
		t.Errorf("op id of 100 two-byte characters: %v", err)
	}
	if _, err := s.CreateFinding(ctx, nil, ws[0].ID, strings.Repeat("é", 101), store.FindingInput{Title: "Longer op id"}); domain.ErrorCode(err) != domain.Invalid {
		t.Errorf("op id of 101 characters: %v, want invalid", err)
	}
}

// TestNULsNameNothing: the database drops a NUL from a string, so an op
// id or event slug with one would be another's; both are refused.
func TestNULsNameNothing(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	p := mustPerson(t, s)
	for _, apply := range []func(opID string) error{
		func(opID string) error {
			_, err := s.CreateFinding(ctx, &p, ws[0].ID, opID, store.FindingInput{Title: "With a NUL in its op id"})
			return err
		},
		func(opID string) error {
			_, err := s.SetKeyMessages(store.WithCurateRight(ctx), &p, ws[0].ID, opID, 0, "Key messages")
			return err
		},
	} {
		if err := apply("a\x00b"); domain.ErrorCode(err) != domain.Invalid {
			t.Errorf("op id with a NUL: %v, want invalid", err)
		}
	}
	var n int
	if err := s.DB().NewRaw("SELECT count(*) FROM log_entries WHERE op_id = 'ab'").Scan(ctx, &n); err != nil || n != 0 {
		t.Errorf("%d entries logged as op ab (%v), want none", n, err)
	}
	evs, err := s.Events(ctx)
	if err != nil || len(evs) == 0 {
		t.Fatal(err)
	}
	if _, err := s.EventBySlug(ctx, evs[0].Slug+"\x00"); domain.ErrorCode(err) != domain.NotFound {
		t.Errorf("the slug with a NUL after it: %v, want not found", err)
	}
}

// TestBatchKeepsEachPersonsOrder: a shared transaction writes new creates
// first, but a person's create sent after another op of theirs keeps its
// place after it; another person's create may go first.
func TestBatchKeepsEachPersonsOrder(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[3]
	room := store.WorkshopRoom(w.ID)
	p := mustPerson(t, s)
	target, err := s.CreateFinding(ctx, nil, w.ID, "target", store.FindingInput{Title: "Supported"})
	if err != nil {
		t.Fatal(err)
	}
	results := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) { return s.Vote(ctx, p, w.ID, "p-vote", mustFindingID(t, target)) },
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, &p, w.ID, "p-create", store.FindingInput{Title: "After my vote"})
		},
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, nil, w.ID, "other-create", store.FindingInput{Title: "Someone else's"})
		},
	})
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("op %d: %v", i, r.err)
		}
	}
	if !results[0].a.Entry.At.Equal(results[1].a.Entry.At) {
		t.Fatal("the ops were not in one transaction")
	}
	es, err := s.EntriesAfter(ctx, room, target.Entry.Seq, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.OpID)
	}
	if want := []string{"blocker", "other-create", "p-vote", "p-create"}; !slices.Equal(got, want) {
		t.Errorf("log order %v, want %v", got, want)
	}
}

// TestZeroTimeoutsInTheURLMeanNone: DATABASE_URL's timeouts override the
// 10 s default, and 0 means none (as in libpq), not a deadline already
// past that fails every connection.
func TestZeroTimeoutsInTheURLMeanNone(t *testing.T) {
	dsn := pg.NewDB(t)
	for _, params := range []string{"connect_timeout=0", "read_timeout=0", "timeout=0"} {
		s, err := store.Open(context.Background(), pgtest.WithParams(dsn, params))
		if err != nil {
			t.Fatalf("%s: %v", params, err)
		}
		if _, err := s.Head(context.Background(), "workshop:1"); err != nil {
			t.Errorf("%s: a query: %v", params, err)
		}
		s.Close()
	}
}

// TestImportAgainAddsOnlyNewPeople: people of the event already are left
// out of an import and listed, with nothing of theirs changed: by email,
// and by name for people of the event without an email (as many rows as
// there are such people of the name, whether the row now gives an email
// or not). The same list imported twice adds its people once. An email of
// someone outside the event still refuses the whole file.
func TestImportAgainAddsOnlyNewPeople(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	ev := ws[0].EventID
	row := func(line int, name, email string) store.ImportRow {
		return store.ImportRow{Line: line, Person: store.PersonInput{Name: name, Email: email, Country: "FI"}, Role: domain.RoleParticipant, WorkshopID: ws[0].ID}
	}
	first, err := s.ImportPeople(ctx, nil, ev, []store.ImportRow{row(2, "Anna Aalto", "anna@example.fi"), row(3, "Sara Lind", "")})
	if err != nil || len(first.Added) != 2 || len(first.Already) != 0 {
		t.Fatalf("first import: %+v, %v", first, err)
	}
	list := []store.ImportRow{
		row(2, "Anna A.", "ANNA@example.fi"),      // her email, another name: left out, and said
		row(3, " sara  LIND ", "sara@example.se"), // the Sara without an email, who has one now
		row(4, "Sara Lind", ""),                   // a second Sara
		row(5, "Bo Berg", "bo@example.se"),
	}
	for i, want := range [][]string{{"Sara Lind", "Bo Berg"}, {}} {
		res, err := s.ImportPeople(ctx, nil, ev, list)
		if err != nil {
			t.Fatal(err)
		}
		added := []string{}
		for _, p := range res.Added {
			added = append(added, p.Name)
		}
		if !slices.Equal(added, want) || len(res.Already) != len(list)-len(want) {
			t.Fatalf("import %d of the list: added %v, want %v; left out %+v", i+1, added, want, res.Already)
		}
		if !strings.Contains(res.Already[0].Message, "Anna Aalto") {
			t.Errorf("a row with Anna's email and another name: %q, want her name said", res.Already[0].Message)
		}
	}
	if p, err := s.Person(ctx, first.Added[0].ID); err != nil || p.Name != "Anna Aalto" {
		t.Errorf("Anna left out is %q (%v), want her name kept", p.Name, err)
	}
	// Bo has an email: a row of his name without one is someone else.
	res, err := s.ImportPeople(ctx, nil, ev, []store.ImportRow{row(2, "Bo Berg", "bo@example.se"), row(3, "Bo Berg", "")})
	if err != nil || len(res.Added) != 1 || res.Added[0].Email != nil || len(res.Already) != 1 || res.Already[0].Line != 2 {
		t.Fatalf("Bo by email and another Bo without one: %+v, %v; want the second added", res, err)
	}
	// Someone of another event that the importer does not organize: the
	// whole file is refused.
	other, err := s.CreateEvent(ctx, store.EventSpec{Slug: "other", Title: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	outside, _, err := s.AddMember(ctx, nil, other.ID, store.PersonInput{Name: "Outside Person", Email: "out@example.org", Organisation: "Old org"}, domain.RoleObserver, 0)
	if err != nil {
		t.Fatal(err)
	}
	hereOnly, _, err := s.AddMember(ctx, nil, ev, store.PersonInput{Name: "Organizer here"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	refused, err := s.ImportPeople(ctx, &hereOnly.ID, ev, []store.ImportRow{row(2, "New", "new@example.org"), row(3, "Outside", "out@example.org")})
	if de := (*domain.Error)(nil); !errors.As(err, &de) || de.Code != domain.Invalid || len(refused.Added) != 0 ||
		!strings.Contains(fmt.Sprint(de.Detail), "1 other event(s) that you do not organize") {
		t.Fatalf("an email of a person of an event the importer does not organize: %+v, %v; want invalid, saying why", refused, err)
	}
	var n int
	s.DB().NewRaw("SELECT count(*) FROM people WHERE email = 'new@example.org'").Scan(ctx, &n)
	if n != 0 {
		t.Fatal("a refused file added people")
	}
	if _, _, err := s.AddMember(ctx, &hereOnly.ID, ev, store.PersonInput{Name: "Outside", Email: "OUT@example.org"}, domain.RoleObserver, 0); domain.ErrorCode(err) != domain.Forbidden {
		t.Fatalf("added by hand by the same organizer: %v, want forbidden", err)
	}
	// One email twice, in two Unicode forms: refused, not joined twice.
	twice, err := s.ImportPeople(ctx, nil, ev, []store.ImportRow{row(2, "Jörgen", "jörgen@example.org"), row(3, "Jörgen", norm.NFD.String("JÖRGEN@example.org"))})
	if de := (*domain.Error)(nil); !errors.As(err, &de) || de.Code != domain.Invalid || len(twice.Added) != 0 || !strings.Contains(fmt.Sprint(de.Detail), "is the email of line 2 too") {
		t.Fatalf("one email twice: %+v, %v; want invalid, saying so", twice, err)
	}
	// By an organizer of both (here: the server itself), the person joins
	// this event with the row's role, and keeps their name and details.
	res, err = s.ImportPeople(ctx, nil, ev, []store.ImportRow{row(2, "New", "new@example.org"), row(3, "O. Person", "OUT@example.org")})
	if err != nil || len(res.Added) != 2 || res.Added[1].ID != outside.ID || len(res.Joined) != 1 || res.Joined[0].Line != 3 ||
		!strings.Contains(res.Joined[0].Message, "Outside Person") {
		t.Fatalf("an email of another event's person: %+v, %v; want New added and Outside Person joined", res, err)
	}
	var roles []string
	if err := s.DB().NewRaw("SELECT event_id || ':' || role || ':' || coalesce(workshop_id, 0) FROM memberships WHERE person_id = ? ORDER BY event_id", outside.ID).Scan(ctx, &roles); err != nil {
		t.Fatal(err)
	}
	if want := []string{fmt.Sprintf("%d:participant:%d", ev, ws[0].ID), fmt.Sprintf("%d:observer:0", other.ID)}; ev > other.ID || !slices.Equal(roles, want) {
		t.Errorf("Outside Person's roles: %q, want %q", roles, want)
	}
	if p, err := s.Person(ctx, outside.ID); err != nil || p.Name != "Outside Person" || p.Organisation != "Old org" {
		t.Errorf("Outside Person is now %q of %q (%v), want their details kept", p.Name, p.Organisation, err)
	}
	// Imported again, and added by hand: in the event already.
	if res, err := s.ImportPeople(ctx, nil, ev, []store.ImportRow{row(2, "Outside Person", "out@example.org")}); err != nil || len(res.Added) != 0 || len(res.Already) != 1 {
		t.Fatalf("the returning expert imported again: %+v, %v; want left out", res, err)
	}
	if _, _, err := s.AddMember(ctx, nil, ev, store.PersonInput{Name: "Outside Person", Email: "out@example.org"}, domain.RoleObserver, 0); domain.ErrorCode(err) != domain.Conflict {
		t.Fatalf("the returning expert added by hand again: %v, want a conflict", err)
	}
}

// TestJoiningAPersonEndsTheirSessionsAndLinks: a sign-in link starts a
// session with every role of its person, so a person of another event
// given a role here (by hand, by an organizer of both events) loses the
// links and sessions they had: those were given by that event's
// organizers, who would otherwise reach this event through them. The
// join is in the audit trail.
func TestJoiningAPersonEndsTheirSessionsAndLinks(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	other, err := s.CreateEvent(ctx, store.EventSpec{Slug: "other", Title: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	boss, _, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Boss", Email: "boss@example.fi"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	anna, _, err := s.AddMember(ctx, nil, other.ID, store.PersonInput{Name: "Anna Aalto", Email: "anna@example.fi", Country: "FI"}, domain.RoleObserver, 0)
	if err != nil {
		t.Fatal(err)
	}
	links, err := s.IssueInvites(ctx, nil, other.ID, map[int64]string{anna.ID: "hash-of-annas-card"}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, auth.Session{ID: "annas-tablet", PersonID: anna.ID, CSRF: "x", Created: time.Now(), LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The boss organizes this event only: forbidden, and nothing changes.
	if _, j, err := s.AddMember(ctx, &boss.ID, ws[0].EventID, store.PersonInput{Name: "A. Aalto", Email: "Anna@Example.fi"}, domain.RoleRapporteur, ws[0].ID); domain.ErrorCode(err) != domain.Forbidden || j != nil {
		t.Fatalf("joined by an organizer of this event only: %+v, %v; want forbidden", j, err)
	}
	if _, err := s.GetSession(ctx, "annas-tablet"); err != nil {
		t.Fatalf("the refused join ended Anna's session: %v", err)
	}
	// Once the boss organizes the other event too, Anna joins.
	if _, j, err := s.AddMember(ctx, nil, other.ID, store.PersonInput{Name: "Boss", Email: "boss@example.fi"}, domain.RoleOrganizer, 0); err != nil || j == nil {
		t.Fatalf("the boss joins the other event: %+v, %v", j, err)
	}
	again, j, err := s.AddMember(ctx, &boss.ID, ws[0].EventID, store.PersonInput{Name: "A. Aalto", Email: "Anna@Example.fi", Country: "SE"}, domain.RoleRapporteur, ws[0].ID)
	if err != nil || j == nil || again.ID != anna.ID || again.Name != "Anna Aalto" || again.Country != "FI" {
		t.Fatalf("added again in another event: %+v %+v, %v; want person %d as she is", again, j, err, anna.ID)
	}
	if !slices.Equal(j.Sessions, []string{"annas-tablet"}) || j.LinksRevoked != 1 || !strings.Contains(j.Say(again), "revoked (1)") {
		t.Errorf("the join: %+v; want Anna's session ended and her link revoked", j)
	}
	if _, err := s.GetSession(ctx, "annas-tablet"); err == nil {
		t.Error("Anna's session lives on after the join")
	}
	if revoked, err := s.InviteRevoked(ctx, links[anna.ID].ID); err != nil || !revoked {
		t.Errorf("Anna's card of the other event: revoked %v (%v), want revoked", revoked, err)
	}
	ms, err := s.Memberships(ctx, anna.ID, ws[0].EventID)
	if err != nil || len(ms) != 1 || ms[0].Role != domain.RoleRapporteur || ms[0].WorkshopID == nil || *ms[0].WorkshopID != ws[0].ID {
		t.Fatalf("her roles in the event: %+v, %v; want rapporteur of workshop %d", ms, err, ws[0].ID)
	}
	var n int
	if err := s.DB().NewRaw("SELECT count(*) FROM people WHERE lower(email) = 'anna@example.fi'").Scan(ctx, &n); err != nil || n != 1 {
		t.Fatalf("%d people with her email (%v), want 1", n, err)
	}
	if err := s.DB().NewRaw("SELECT count(*) FROM audit_log WHERE action = 'person.join' AND actor_id = ? AND target = ?", boss.ID, fmt.Sprintf("person:%d", anna.ID)).Scan(ctx, &n); err != nil || n != 1 {
		t.Errorf("%d audit records of the boss joining Anna (%v), want 1", n, err)
	}
}

// TestUpdateMemberKeepsAnOrganizer: the organizer role cannot be taken
// from an event's only organizer (no one could then manage its people),
// but can once someone else has it; the attribution choice stays.
func TestUpdateMemberKeepsAnOrganizer(t *testing.T) {
	ctx := context.Background()
	s := pg.MustStore(t)
	ev, err := s.CreateEvent(ctx, store.EventSpec{Slug: "small", Title: "Small"})
	if err != nil {
		t.Fatal(err)
	}
	only, _, err := s.AddMember(ctx, nil, ev.ID, store.PersonInput{Name: "Only organizer"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "UPDATE memberships SET attribution = 'named' WHERE person_id = ?", only.ID); err != nil {
		t.Fatal(err)
	}
	in := store.PersonInput{Name: "Only organizer"}
	if _, changed, err := s.UpdateMember(ctx, &only.ID, ev.ID, only.ID, in, domain.RoleObserver, 0, ""); domain.ErrorCode(err) != domain.Conflict || changed {
		t.Fatalf("the only organizer made an observer: %v (changed %v), want a conflict", err, changed)
	}
	second, _, err := s.AddMember(ctx, nil, ev.ID, store.PersonInput{Name: "Second organizer"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, changed, err := s.UpdateMember(ctx, &second.ID, ev.ID, only.ID, in, domain.RoleObserver, 0, ""); err != nil || !changed {
		t.Fatalf("an organizer of two made an observer: %v (changed %v)", err, changed)
	}
	ms, err := s.Memberships(ctx, only.ID, ev.ID)
	if err != nil || len(ms) != 1 || ms[0].Role != domain.RoleObserver || ms[0].Attribution != "named" {
		t.Fatalf("their roles: %+v (%v), want observer, attribution kept", ms, err)
	}
}

// TestJoiningAStaffMemberKeepsTheirSessions: a person who signs in with
// an organisation account has no links, and sessions of that account
// only, so a join leaves their sessions alone (the caller checks their
// connections again instead).
func TestJoiningAStaffMemberKeepsTheirSessions(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	other, err := s.CreateEvent(ctx, store.EventSpec{Slug: "other", Title: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	staff, _, err := s.AddMember(ctx, nil, other.ID, store.PersonInput{Name: "Staff Member", Email: "staff@example.org"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "UPDATE people SET oidc_issuer = 'https://idp.example', oidc_subject = 'staff-1' WHERE id = ?", staff.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, auth.Session{ID: "staff-laptop", PersonID: staff.ID, CSRF: "x", Created: time.Now(), LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, j, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Staff", Email: "staff@example.org"}, domain.RoleOrganizer, 0)
	if err != nil || j == nil || !j.Staff || j.PersonID != staff.ID || len(j.Sessions) != 0 {
		t.Fatalf("the join: %+v, %v; want a staff join that ends nothing", j, err)
	}
	if _, err := s.GetSession(ctx, "staff-laptop"); err != nil {
		t.Errorf("the staff member's session after the join: %v, want it kept", err)
	}
}

// TestALinkIsNotIssuedPastAJoin: a join holds the person's row from its
// check to its commit, and issuing a link waits for it: a link issued by
// an organizer of the person's other event in between would otherwise
// miss both the join's revocation and its new membership, and sign in
// with the new role. The join is held up midway by a sign-in that holds
// the person's card (see TestAJoinAndASignInDoNotDeadlock).
func TestALinkIsNotIssuedPastAJoin(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	other, err := s.CreateEvent(ctx, store.EventSpec{Slug: "other", Title: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	otherOrg, _, err := s.AddMember(ctx, nil, other.ID, store.PersonInput{Name: "Organizer there"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	expert, _, err := s.AddMember(ctx, nil, other.ID, store.PersonInput{Name: "Expert", Email: "expert@example.org"}, domain.RoleObserver, 0)
	if err != nil {
		t.Fatal(err)
	}
	card, signIn, signInPID := mustHoldCard(t, s, other.ID, expert.ID)
	joined := make(chan error, 1)
	go func() {
		_, _, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Expert", Email: "expert@example.org"}, domain.RoleOrganizer, 0)
		joined <- err
	}()
	joinPID := mustWaitBlocked(t, s, []int{signInPID}, joined)
	issued := make(chan error, 1)
	go func() {
		_, err := s.IssueInvites(ctx, &otherOrg.ID, other.ID, map[int64]string{expert.ID: "hash-issued-meanwhile"}, time.Now().Add(time.Hour))
		issued <- err
	}()
	mustWaitBlocked(t, s, []int{joinPID}, issued)
	if err := signIn.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatalf("the join: %v", err)
	}
	if err := <-issued; domain.ErrorCode(err) != domain.Forbidden {
		t.Fatalf("the link after the join: %v, want forbidden (the expert is in an event its issuer does not organize)", err)
	}
	if revoked, err := s.InviteRevoked(ctx, card); err != nil || !revoked {
		t.Errorf("the card after the join: revoked %v (%v), want revoked", revoked, err)
	}
}

// mustHoldCard gives person a link of eventID and holds its row as a
// sign-in does (RedeemInvite) in a transaction left open: the link's id,
// the transaction, and its backend's pid.
func mustHoldCard(t *testing.T, s *store.Store, eventID, person int64) (int64, bun.Tx, int) {
	t.Helper()
	ctx := context.Background()
	links, err := s.IssueInvites(ctx, nil, eventID, map[int64]string{person: fmt.Sprintf("hash-of-card-%d", person)}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	var pid int
	if err := tx.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT id FROM invites WHERE id = ? FOR UPDATE", links[person].ID); err != nil {
		t.Fatal(err)
	}
	return links[person].ID, tx, pid
}

// mustWaitBlocked waits until a backend waits for a lock of one of the
// backends by, and returns its pid; done is the waiting call's outcome,
// which must not come first.
func mustWaitBlocked(t *testing.T, s *store.Store, by []int, done <-chan error) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("went through (%v) instead of waiting for backend(s) %v", err, by)
		default:
		}
		var pids []int
		if err := s.DB().NewRaw("SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && ?::int[]", pgdialect.Array(by)).Scan(context.Background(), &pids); err != nil {
			t.Fatal(err)
		}
		if len(pids) > 0 {
			return pids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing waited for backend(s) %v", by)
		}
	}
}

// TestAJoinAndASignInDoNotDeadlock: a sign-in holds its link's row and
// then writes an audit record that names the person (a key-share lock on
// their row), while a join holds the person's row and waits to revoke
// that link. Both must go through.
func TestAJoinAndASignInDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	other, err := s.CreateEvent(ctx, store.EventSpec{Slug: "other", Title: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	expert, _, err := s.AddMember(ctx, nil, other.ID, store.PersonInput{Name: "Expert", Email: "expert@example.org"}, domain.RoleObserver, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustOutlastALinkSignIn(t, s, other.ID, expert.ID, "the join", func() error {
		_, _, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Expert", Email: "expert@example.org"}, domain.RoleObserver, 0)
		return err
	})
}

// mustOutlastALinkSignIn runs revoke, a call that revokes person's links,
// while a sign-in with one of them (a link of eventID) holds the link's
// row, and lets that sign-in write its audit record (a key-share lock on
// the person) while revoke waits for it. Both must go through, and the
// link be revoked.
func mustOutlastALinkSignIn(t *testing.T, s *store.Store, eventID, person int64, what string, revoke func() error) {
	t.Helper()
	ctx := context.Background()
	card, signIn, signInPID := mustHoldCard(t, s, eventID, person)
	done := make(chan error, 1)
	go func() { done <- revoke() }()
	mustWaitBlocked(t, s, []int{signInPID}, done)
	if _, err := signIn.ExecContext(ctx, "INSERT INTO audit_log (actor_id, event_id, action, target) VALUES (?, ?, 'signin.link', 'invite')", person, eventID); err != nil {
		t.Fatalf("the link sign-in's audit record: %v", err)
	}
	if err := signIn.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if revoked, err := s.InviteRevoked(ctx, card); err != nil || !revoked {
		t.Errorf("the card after %s: revoked %v (%v), want revoked", what, revoked, err)
	}
}

// TestUpdateMemberLeavesRolesFromClaimsAlone: a role granted by an
// organisation account's claims is set again at every sign-in, so it is
// changed there: an edit of it is a conflict, while an edit that keeps it
// goes through.
func TestUpdateMemberLeavesRolesFromClaimsAlone(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	staff, _, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Staff Member", Email: "staff@example.org"}, domain.RoleReportAuthor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO oidc_role_grants (membership_id, claim_value)
		SELECT id, 'authors' FROM memberships WHERE person_id = ?`, staff.ID); err != nil {
		t.Fatal(err)
	}
	if _, changed, err := s.UpdateMember(ctx, nil, ws[0].EventID, staff.ID, store.PersonInput{Name: "Staff Member", Email: "staff@example.org"}, domain.RoleObserver, 0, ""); domain.ErrorCode(err) != domain.Conflict || changed {
		t.Fatalf("a role from claims changed by hand: %v (changed %v), want a conflict", err, changed)
	}
	p, changed, err := s.UpdateMember(ctx, nil, ws[0].EventID, staff.ID, store.PersonInput{Name: "Staff Member", Email: "staff@example.org", Organisation: "Ministry"}, domain.RoleReportAuthor, 0, "")
	if err != nil || !changed || p.Organisation != "Ministry" {
		t.Fatalf("their organisation changed, their role kept: %+v (changed %v), %v", p, changed, err)
	}
	var grants int
	if err := s.DB().NewRaw("SELECT count(*) FROM oidc_role_grants g JOIN memberships m ON m.id = g.membership_id WHERE m.person_id = ?", staff.ID).Scan(ctx, &grants); err != nil || grants != 1 {
		t.Errorf("%d role grants after the edit (%v), want 1", grants, err)
	}
}

// TestAnOrganisationSignInAndALinkSignInDoNotDeadlock: a person's first
// organisation sign-in, found by email, revokes their links while a
// sign-in with one of those links holds the link's row and writes its
// audit record (a key-share lock on the person). Both must go through.
func TestAnOrganisationSignInAndALinkSignInDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	staff, _, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Staff", Email: "staff@example.org"}, domain.RoleObserver, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustOutlastALinkSignIn(t, s, ws[0].EventID, staff.ID, "the organisation sign-in", func() error {
		_, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "staff-1", Email: "staff@example.org", EmailVerified: true, Name: "Staff"})
		return err
	})
}

// TestEnsureOrganizerIsNeverStaff: the printed sign-in link is for the
// bootstrap organizer, so that is never a person who signs in with an
// organisation account (who gets no link), even when such a person is
// the event's first organizer.
func TestEnsureOrganizerIsNeverStaff(t *testing.T) {
	ctx := context.Background()
	s := pg.MustStore(t)
	ev, err := s.CreateEvent(ctx, store.EventSpec{Slug: "staffed", Title: "Staffed"})
	if err != nil {
		t.Fatal(err)
	}
	staff, _, err := s.AddMember(ctx, nil, ev.ID, store.PersonInput{Name: "Staff organizer", Email: "staff@example.org"}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "UPDATE people SET oidc_issuer = 'https://idp.example', oidc_subject = 'staff-1' WHERE id = ?", staff.ID); err != nil {
		t.Fatal(err)
	}
	p, err := s.EnsureOrganizer(ctx, ev.ID)
	if err != nil || p.ID == staff.ID || p.OIDCSubject != nil {
		t.Fatalf("bootstrap organizer: %+v, %v; want someone other than the staff member", p, err)
	}
	again, err := s.EnsureOrganizer(ctx, ev.ID)
	if err != nil || again.ID != p.ID {
		t.Fatalf("bootstrap organizer again: %+v, %v; want %d", again, err, p.ID)
	}
}

// TestAContactCannotBeGuessed: members of a group are not shown a
// finding's contact, so an update's answer must not tell whether a value
// sent for it was the one stored. A guess is a change (or a conflict)
// whether right or wrong, and taking consent back clears the contact and
// says so alike whether there was one.
func TestAContactCannotBeGuessed(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[3]
	p1, p2 := mustPerson(t, s), mustPerson(t, s)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	fieldsOf := func(a store.Applied) []string {
		t.Helper()
		var p struct {
			Fields []string `json:"fields"`
		}
		if err := json.Unmarshal(a.Entry.Payload, &p); err != nil {
			t.Fatal(err)
		}
		return p.Fields
	}
	create := func(op, email string) int64 {
		t.Helper()
		a, err := s.CreateFinding(ctx, &p1, w.ID, op, store.FindingInput{Title: op, ContactEmail: email, ContactConsent: true})
		if err != nil {
			t.Fatal(err)
		}
		return mustFindingID(t, a)
	}
	const secret = "anna.secret@police.example"
	f := create("with contact", "first@police.example")
	if _, err := s.UpdateFinding(ctx, &p1, w.ID, "set", f, 1, map[string]json.RawMessage{"contact_email": raw(secret)}); err != nil {
		t.Fatal(err)
	}
	// From a stale version: a conflict, right guess or wrong.
	for i, guess := range []string{"bo@ngo.example", secret} {
		_, err := s.UpdateFinding(ctx, &p2, w.ID, fmt.Sprintf("stale%d", i), f, 1, map[string]json.RawMessage{"contact_email": raw(guess)})
		if domain.ErrorCode(err) != domain.Conflict {
			t.Errorf("a stale update of the contact to guess %d: %v, want a conflict", i, err)
		}
	}
	// From the current version: the right guess is a change like any other.
	a, err := s.UpdateFinding(ctx, &p2, w.ID, "same", f, 2, map[string]json.RawMessage{"contact_email": raw(secret)})
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(a); !slices.Equal(got, []string{"contact_email"}) {
		t.Errorf("the stored contact sent again: entry's fields %q, want [contact_email]", got)
	}
	// Consent taken back: the same answer with and without a contact.
	none := create("without contact", "")
	for _, id := range []int64{f, none} {
		got, err := s.Finding(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.UpdateFinding(ctx, &p2, w.ID, fmt.Sprintf("consent%d", id), id, got.Version, map[string]json.RawMessage{"contact_consent": raw(false)})
		if err != nil {
			t.Fatalf("consent taken back of finding %d: %v", id, err)
		}
		if fs := fieldsOf(a); !slices.Equal(fs, []string{"contact_consent", "contact_email", "contact_name"}) {
			t.Errorf("consent taken back of finding %d: entry's fields %q", id, fs)
		}
		if got, err = s.Finding(ctx, id); err != nil || got.ContactEmail != "" || got.ContactName != "" || got.ContactConsent {
			t.Errorf("after consent taken back, finding %d keeps %q %q %v (%v)", id, got.ContactName, got.ContactEmail, got.ContactConsent, err)
		}
	}
}

// TestOnlyTheAuthorCreditsAFindingBeyondTheRule: under the Chatham House
// rule a finding is credited to a country and actor type; naming its
// author or their organisation is for the author (or an organizer) to
// allow. Another member may not, but may take it back to the rule.
func TestOnlyTheAuthorCreditsAFindingBeyondTheRule(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[3]
	author, other := mustPerson(t, s), mustPerson(t, s)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	a, err := s.CreateFinding(ctx, &author, w.ID, "c", store.FindingInput{Title: "Credited"})
	if err != nil {
		t.Fatal(err)
	}
	id := mustFindingID(t, a)
	version := 1
	set := func(ctx context.Context, who int64, to string) error {
		_, err := s.UpdateFinding(ctx, &who, w.ID, fmt.Sprintf("a%d", version), id, version, map[string]json.RawMessage{"attribution": raw(to)})
		if err == nil {
			version++
		}
		return err
	}
	if err := set(ctx, other, "named"); domain.ErrorCode(err) != domain.Forbidden {
		t.Errorf("another member names the author: %v, want forbidden", err)
	}
	if got, _ := s.Finding(ctx, id); got.Attribution != "chatham" {
		t.Errorf("after a refused change: %q", got.Attribution)
	}
	if err := set(ctx, author, "named"); err != nil {
		t.Errorf("the author names themselves: %v", err)
	}
	if err := set(ctx, other, "chatham"); err != nil {
		t.Errorf("another member takes it back to the rule: %v", err)
	}
	if err := set(store.WithReleaseRight(ctx), other, "organisation"); err != nil {
		t.Errorf("an organizer credits the organisation: %v", err)
	}
}

// TestAnUnverifiedEmailIsNotKept: a provider account whose email the
// provider does not vouch for (email_verified false) could claim anyone's
// address; kept, it was found by an organizer adding that address, and
// its claimer got the role. The address is not kept, and an organizer's
// add makes a person of their own.
func TestAnUnverifiedEmailIsNotKept(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	const addr = "jane.doe@ministry.example"
	mallory, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "mallory", Name: "Jane Doe", Email: addr})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Person(ctx, mallory.Person.ID); err != nil || got.Email != nil {
		t.Fatalf("an unverified email kept: %v (%v)", got.Email, err)
	}
	jane, joined, err := s.AddMember(ctx, nil, ws[0].EventID, store.PersonInput{Name: "Jane Doe", Email: addr}, domain.RoleOrganizer, 0)
	if err != nil {
		t.Fatal(err)
	}
	if jane.ID == mallory.Person.ID || joined != nil {
		t.Errorf("the organizer's add of %s gave its role to the account that claimed it unverified", addr)
	}
	// A verified claim of the same account keeps it (when no one has it).
	other, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "aino", Email: "aino@ministry.example", EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Person(ctx, other.Person.ID); err != nil || got.Email == nil || *got.Email != "aino@ministry.example" {
		t.Errorf("a verified email not kept: %v (%v)", got.Email, err)
	}
	// An address an organizer gave is kept through an unverified sign-in.
	if _, err := s.DB().ExecContext(ctx, "UPDATE people SET email = 'aino.v@ministry.example' WHERE id = ?", other.Person.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "aino", Email: "aino@ministry.example"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Person(ctx, other.Person.ID); err != nil || got.Email == nil || *got.Email != "aino.v@ministry.example" {
		t.Errorf("an organizer's address after an unverified sign-in: %v (%v)", got.Email, err)
	}
	// The claim's own address, kept from before, goes.
	if _, err := s.DB().ExecContext(ctx, "UPDATE people SET email = 'aino@ministry.example' WHERE id = ?", other.Person.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "aino", Email: "AINO@ministry.example"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Person(ctx, other.Person.ID); err != nil || got.Email != nil {
		t.Errorf("the claim's unverified address kept from before: %v (%v)", got.Email, err)
	}
}

// TestClaimRolesOfAnotherEventBecomeItsOwn: roles from the provider's
// roles claim are granted in one event (OIDC_EVENT), and that event's
// organizers cannot take them away (the next sign-in would grant them
// again). When the setting moves to next year's event, the roles the
// claim granted in the old one stayed the claim's for good, so no one
// could remove them there. At the next sign-in they become the old
// event's own: kept (they may be all the organizers it has), and
// removable by its organizers.
func TestClaimRolesOfAnotherEventBecomeItsOwn(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	old := ws[0].EventID
	next, err := s.CreateEvent(ctx, store.EventSpec{Slug: "next-year", Title: "Next year"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMember(ctx, nil, old, store.PersonInput{Name: "Another organizer"}, domain.RoleOrganizer, 0); err != nil {
		t.Fatal(err)
	}
	signIn := func(event int64) int64 {
		t.Helper()
		out, err := s.SignInOIDC(ctx, store.OIDCSignIn{Issuer: "https://idp.example", Subject: "aino", Name: "Aino",
			EventID: event, SyncRoles: true, Roles: map[string]string{domain.RoleOrganizer: "admins"}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Person.ID
	}
	rolesIn := func(person, event int64) int {
		t.Helper()
		ms, err := s.Memberships(ctx, person, event)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}
	aino := signIn(old)
	if _, err := s.RemoveMember(ctx, nil, old, aino); domain.ErrorCode(err) != domain.Conflict {
		t.Fatalf("removing a role the claim holds: %v, want a conflict", err)
	}
	signIn(next.ID)
	if rolesIn(aino, old) != 1 || rolesIn(aino, next.ID) != 1 {
		t.Fatalf("after OIDC_EVENT moved: %d roles in the old event, %d in the new; want 1 and 1", rolesIn(aino, old), rolesIn(aino, next.ID))
	}
	if _, err := s.RemoveMember(ctx, nil, old, aino); err != nil {
		t.Errorf("the old event's organizers remove a role the claim no longer holds: %v", err)
	}
	if rolesIn(aino, old) != 0 || rolesIn(aino, next.ID) != 1 {
		t.Errorf("after the removal: %d roles in the old event, %d in the new; want 0 and 1", rolesIn(aino, old), rolesIn(aino, next.ID))
	}
}

// TestAnOpNamingAnotherWorkshopsFindingLocksNothing: an op in one workshop
// naming a finding of another (ids are sequential) is not found, and
// does not wait for, or hold, that finding's lock: it could otherwise
// stall the other group's edits, or deadlock with them.
func TestAnOpNamingAnotherWorkshopsFindingLocksNothing(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	here, there := ws[0].ID, ws[1].ID
	theirs := mustNewFinding(t, s, there, "theirs", "Another group's")
	p := mustPerson(t, s)
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// The other group's transaction, editing its finding.
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM findings WHERE id = ? FOR UPDATE", theirs); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func(ctx context.Context) (store.Applied, error){
		"update": func(ctx context.Context) (store.Applied, error) {
			return s.UpdateFinding(ctx, &p, here, "update", theirs, 1, map[string]json.RawMessage{"title": json.RawMessage(`"Mine"`)})
		},
		"vote":   func(ctx context.Context) (store.Applied, error) { return s.Vote(ctx, p, here, "vote", theirs) },
		"unvote": func(ctx context.Context) (store.Applied, error) { return s.Unvote(ctx, p, here, "unvote", theirs) },
		"comment": func(ctx context.Context) (store.Applied, error) {
			return s.AddComment(ctx, p, here, "comment", theirs, "Hm")
		},
		"key": func(ctx context.Context) (store.Applied, error) { return s.MarkKey(ctx, &p, here, "key", theirs, 0) },
		"unkey": func(ctx context.Context) (store.Applied, error) {
			return s.UnmarkKey(ctx, &p, here, "unkey", theirs, 0)
		},
		"share": func(ctx context.Context) (store.Applied, error) {
			return s.ShareFinding(ctx, &p, here, "share", theirs)
		},
		"release": func(ctx context.Context) (store.Applied, error) {
			return s.SetFindingRelease(ctx, &p, here, "release", theirs, "released")
		},
		"delete": func(ctx context.Context) (store.Applied, error) {
			return s.DeleteFinding(ctx, &p, here, "delete", theirs, 0)
		},
	}
	for name, op := range ops {
		octx, cancel := context.WithTimeout(ctx, 3*time.Second)
		start := time.Now()
		_, err := op(octx)
		cancel()
		if code := domain.ErrorCode(err); code != domain.NotFound || time.Since(start) > 2*time.Second {
			t.Errorf("%s of another workshop's locked finding: %v (%s) after %s, want not_found at once", name, err, code, time.Since(start).Round(time.Millisecond))
		}
	}
}

// TestACommittedListenerThatPanicsFailsAlone: listeners (WithCommitted)
// that panic on their entry leave the batch's other listeners each called
// once, and the process running.
func TestACommittedListenerThatPanicsFailsAlone(t *testing.T) {
	s, ws := MustDemoWorkshops(t)
	w := ws[0]
	room := store.WorkshopRoom(w.ID)
	var mu sync.Mutex
	calls := map[string]int{}
	create := func(opID string) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			ctx := store.WithCommitted(context.Background(), func(e domain.LogEntry, more bool) {
				mu.Lock()
				calls[e.OpID]++
				mu.Unlock()
				if e.OpID == "boom" || e.OpID == "boom again" {
					panic("a listener's bug")
				}
			})
			return s.CreateFinding(ctx, nil, w.ID, opID, store.FindingInput{Title: opID})
		}
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){create("boom"), create("second"), create("boom again"), create("third")})
	for i, r := range res {
		if r.err != nil {
			t.Errorf("op %d: %v, want it applied (only its listener failed)", i, r.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{"boom", "second", "boom again", "third"} {
		if calls[id] != 1 {
			t.Errorf("the listener of %s was called %d times, want once", id, calls[id])
		}
	}
}

// TestAnOpOfUnknownOutcomeAnnouncesTheHead: an op that fails in a way
// that may hide its commit (its COMMIT's answer lost) has the room's head
// announced as the log has it, so that an entry committed without its
// answer reaches the screens at once, not at the next slow poll.
func TestAnOpOfUnknownOutcomeAnnouncesTheHead(t *testing.T) {
	s, ws := MustDemoWorkshops(t)
	room := store.WorkshopRoom(ws[0].ID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woke := make(chan int64, 64)
	mustFollow(t, ctx, s, store.Followers{
		Wake: func(r string, seq int64) {
			if r == room {
				woke <- seq
			}
		},
		Access: func(string, string, string) {},
	})
	// A commit whose answer was lost: in the log, announced to no one.
	head := mustHead(t, s, room)
	if _, err := s.DB().ExecContext(ctx, `WITH r AS (UPDATE rooms SET seq = seq + 1 WHERE id = ? RETURNING seq)
		INSERT INTO log_entries (room, seq, op_id, kind, payload) SELECT ?, seq, 'lost-answer', 'test.lost', '{}' FROM r`, room, room); err != nil {
		t.Fatal(err)
	}
	_, err := s.Apply(ctx, room, "unsure", nil, func(context.Context, bun.Tx) (string, any, error) {
		return "", nil, errors.New("connection reset")
	})
	if domain.ErrorCode(err) != domain.Internal {
		t.Fatalf("the failing op: %v, want an internal error", err)
	}
	for deadline := time.After(5 * time.Second); ; {
		select {
		case seq := <-woke:
			if seq == head+1 {
				return
			}
		case <-deadline:
			t.Fatalf("no wake-up at %d after an op of unknown outcome", head+1)
		}
	}
}

// TestEntriesKeepTextAsWritten: an entry carries "<", ">" and "&" as
// they are, not as JSON's HTML escapes, six bytes each: a text full of
// them made entries six times the op that sent them, to every member of
// the room.
func TestEntriesKeepTextAsWritten(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[1]
	p := mustPerson(t, s)
	text := strings.Repeat("<a & b>", 1000)
	raw, _ := json.Marshal(text)
	c, err := s.CreateFinding(ctx, &p, w.ID, "escapes create", store.FindingInput{Title: "Escapes", WhatDone: text})
	if err != nil {
		t.Fatal(err)
	}
	id := mustFindingID(t, c)
	u, err := s.UpdateFinding(ctx, &p, w.ID, "escapes update", id, 1, map[string]json.RawMessage{"results": raw})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []domain.LogEntry{c.Entry, u.Entry} {
		if bytes.Contains(e.Payload, []byte(`\u003c`)) || !bytes.Contains(e.Payload, []byte(text)) || len(e.Payload) > len(text)+2000 {
			t.Errorf("%s entry of %d bytes for a text of %d: %.120s", e.Kind, len(e.Payload), len(text), e.Payload)
		}
	}
	es, err := s.EntriesAfter(ctx, store.WorkshopRoom(w.ID), u.Entry.Seq-1, 1)
	if err != nil || len(es) != 1 {
		t.Fatalf("the update's entry from the log: %v, %v", es, err)
	}
	var logged, offered map[string]any
	if json.Unmarshal(es[0].Payload, &logged) != nil || json.Unmarshal(u.Entry.Payload, &offered) != nil || !reflect.DeepEqual(logged, offered) {
		t.Fatalf("the entry offered and the one logged differ:\n%s\n%s", u.Entry.Payload, es[0].Payload)
	}
}

// TestASnapshotKnowsTheAtOfItsEntry: a workshop's snapshot carries, from
// the same read as its state, the at of the entry at its seq, which a
// client names when it joins again (none for a room without entries).
func TestASnapshotKnowsTheAtOfItsEntry(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[2]
	p := mustPerson(t, s)
	st, seq, err := s.WorkshopSnapshot(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if seq == 0 && !st.At.IsZero() {
		t.Fatalf("a room without entries: at %v, want none", st.At)
	}
	a, err := s.CreateFinding(ctx, &p, w.ID, "snapshot at", store.FindingInput{Title: "Snapshot at"})
	if err != nil {
		t.Fatal(err)
	}
	st, seq, err = s.WorkshopSnapshot(ctx, w.ID)
	if err != nil || seq != a.Entry.Seq || !st.At.Equal(a.Entry.At) {
		t.Fatalf("snapshot at seq %d with at %v (%v), want seq %d with at %v", seq, st.At, err, a.Entry.Seq, a.Entry.At)
	}
}

// TestAnUpdateFarBehindTheFindingIsAConflict: the conflict check reads at
// most 64 of a finding's updates since an op's base. Within them a
// person's own saves from one client still apply in order (an offline
// tablet's queue); further back, a field changed since is a conflict,
// said to be "Someone"'s, for it cannot tell whose. Other fields merge
// as ever.
func TestAnUpdateFarBehindTheFindingIsAConflict(t *testing.T) {
	ctx := store.WithClient(context.Background(), "tablet")
	s, ws := MustDemoWorkshops(t)
	w := ws[4]
	id := mustNewFinding(t, s, w.ID, "far", "Start")
	p := mustPerson(t, s)
	upd := func(opID string, base int, field, value string) error {
		v, _ := json.Marshal(value)
		_, err := s.UpdateFinding(ctx, &p, w.ID, opID, id, base, map[string]json.RawMessage{field: v})
		return err
	}
	// Version 1, then 70 saves of the title, each from the one before.
	for i := range 70 {
		if err := upd(fmt.Sprintf("own %d", i), i+1, "title", fmt.Sprintf("T%d", i)); err != nil {
			t.Fatalf("own save %d from base %d: %v", i, i+1, err)
		}
	}
	// 71 now: 64 updates after base 7.
	if err := upd("within", 7, "title", "Within"); err != nil {
		t.Fatalf("own save from 64 updates back: %v", err)
	}
	err := upd("beyond", 7, "title", "Beyond") // 65 updates back now
	if domain.ErrorCode(err) != domain.Conflict || !strings.HasPrefix(domain.ErrorMessage(err), "Someone changed the title since version 7;") {
		t.Fatalf("own save from 65 updates back: %v, want a conflict of Someone", err)
	}
	if err := upd("results", 1, "results", "R"); err != nil {
		t.Fatalf("another field from base 1: %v", err)
	}
	f, err := s.Finding(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if f.Title != "Within" || f.Results != "R" || f.Version != 73 {
		t.Fatalf("title %q, results %q, version %d; want Within, R, 73", f.Title, f.Results, f.Version)
	}
}
