package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rapporteur/rapporteur/server/store"
)

// BenchmarkCreateFinding measures the create-finding path (finding row +
// log entry, one transaction) next to the physical limit on the same
// database: a plain one-row INSERT per transaction. Writers work in their
// own rooms ("rooms=own", as workshops do) or all in one room ("rooms=one",
// where the room lock serialises them).
//
//	go test -run '^$' -bench CreateFinding -benchtime 3s ./server/store/
//	PGTEST_DURABLE=1 go test ...   (fsync on, as in production)
func BenchmarkCreateFinding(b *testing.B) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(b)
	if _, err := s.DB().ExecContext(ctx, "CREATE TABLE plain (id bigserial PRIMARY KEY, room text NOT NULL, payload jsonb NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	var op atomic.Int64
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("plain-insert/writers=%d", writers), func(b *testing.B) {
			parallel(b, writers, func(w int) error {
				_, err := s.DB().ExecContext(ctx, "INSERT INTO plain (room, payload) VALUES (?, ?)", fmt.Sprint(w), `{"title":"x"}`)
				return err
			})
		})
		for _, rooms := range []string{"own", "one"} {
			if writers == 1 && rooms == "one" {
				continue
			}
			b.Run(fmt.Sprintf("create-finding/writers=%d/rooms=%s", writers, rooms), func(b *testing.B) {
				parallel(b, writers, func(w int) error {
					wid := ws[0].ID
					if rooms == "own" {
						wid = ws[w%len(ws)].ID
						if w >= len(ws) {
							wid = mustWorkshop(b, s, ws[0].EventID, w)
						}
					}
					_, err := s.CreateFinding(ctx, nil, wid, fmt.Sprintf("b%d", op.Add(1)),
						store.FindingInput{Title: "Benchmark finding", WhatDone: "Something that was done.", Countries: []string{"FI"}, Themes: []string{"training"}})
					return err
				})
			})
		}
	}
}

// parallel runs b.N calls of fn spread over writers goroutines and reports ops/s.
func parallel(b *testing.B, writers int, fn func(w int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := fn(w); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// mustWorkshop returns a workshop of the event for writer w beyond the
// demo's five, made once per writer.
func mustWorkshop(b *testing.B, s *store.Store, eventID int64, w int) int64 {
	var id int64
	err := s.DB().NewRaw(`INSERT INTO workshops (event_id, part_id, position, name)
		SELECT ?, part_id, ?, ? FROM workshops WHERE event_id = ? LIMIT 1
		ON CONFLICT (part_id, position) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
		eventID, 100+w, fmt.Sprintf("bench %d", w), eventID).Scan(context.Background(), &id)
	if err != nil {
		b.Fatal(err)
	}
	return id
}

// BenchmarkDurableOps measures the store's group commit: 200 writers in
// 20 rooms (ten a room, as when ops queue up) next to 200 writers of a
// plain one-row INSERT per transaction on the same database. Run it with
// fsync on, as in production:
//
//	PGTEST_DURABLE=1 go test -run '^$' -bench DurableOps -benchtime 5s ./server/store/
func BenchmarkDurableOps(b *testing.B) {
	ctx := context.Background()
	s, ev := MustDemo(b)
	if _, err := s.DB().ExecContext(ctx, "CREATE TABLE plain (id bigserial PRIMARY KEY, room text NOT NULL, payload jsonb NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	const rooms, writers = 20, 200
	wids := make([]int64, rooms)
	for i := range wids {
		wids[i] = mustWorkshop(b, s, ev.ID, i)
	}
	b.Run(fmt.Sprintf("plain-insert/writers=%d", writers), func(b *testing.B) {
		parallel(b, writers, func(w int) error {
			_, err := s.DB().ExecContext(ctx, "INSERT INTO plain (room, payload) VALUES (?, ?)", fmt.Sprint(w), `{"title":"x"}`)
			return err
		})
	})
	var op atomic.Int64
	b.Run(fmt.Sprintf("create-finding/writers=%d/rooms=%d", writers, rooms), func(b *testing.B) {
		parallel(b, writers, func(w int) error {
			_, err := s.CreateFinding(ctx, nil, wids[w%rooms], fmt.Sprintf("d%d", op.Add(1)),
				store.FindingInput{Title: "Benchmark finding", WhatDone: "Something that was done.", Countries: []string{"FI"}, Themes: []string{"training"}})
			return err
		})
	})
	b.Run(fmt.Sprintf("comment/writers=%d/rooms=%d", writers, rooms), func(b *testing.B) {
		targets := make([]int64, rooms)
		for i, wid := range wids {
			a, err := s.CreateFinding(ctx, nil, wid, fmt.Sprintf("target-%d", i), store.FindingInput{Title: "Commented"})
			if err != nil {
				b.Fatal(err)
			}
			targets[i] = mustFindingID(b, a)
		}
		person := mustPerson(b, s)
		b.ResetTimer()
		parallel(b, writers, func(w int) error {
			_, err := s.AddComment(ctx, person, wids[w%rooms], fmt.Sprintf("c%d", op.Add(1)), targets[w%rooms], "A comment")
			return err
		})
	})
}
