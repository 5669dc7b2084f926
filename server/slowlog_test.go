package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/demo"
	"github.com/rapporteur/rapporteur/server/pgtest"
	"github.com/rapporteur/rapporteur/server/store"
)

// TestSlowCommitsAreLogged: a room transaction held up past
// store.SlowBatch (here by a lock on the room's row, as a stalling disk
// holds up a commit) is logged as one warning with its room and counts,
// at the next round, or as the watch ends when that comes first.
func TestSlowCommitsAreLogged(t *testing.T) {
	ctx := context.Background()
	st := pg.MustStore(t)
	spec, err := demo.Spec()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := st.CreateEvent(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := st.Workshops(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	// holdUp makes one create in workshop w wait for its room's row longer
	// than SlowBatch.
	holdUp := func(w int64) {
		t.Helper()
		if _, err := st.CreateFinding(ctx, nil, w, "first", store.FindingInput{Title: "First"}); err != nil {
			t.Fatal(err) // the room's row, for the lock
		}
		tx, err := st.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "SELECT 1 FROM rooms WHERE id = ? FOR UPDATE", store.WorkshopRoom(w)); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := st.CreateFinding(ctx, nil, w, "held", store.FindingInput{Title: "Held"})
			done <- err
		}()
		pgtest.WaitForLockWait(t, st)
		time.Sleep(store.SlowBatch + 50*time.Millisecond)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := func(logs string, room string) {
		t.Helper()
		if n := strings.Count(logs, "slow room transactions"); n != 1 || !strings.Contains(logs, "level=WARN") ||
			!strings.Contains(logs, "transactions=1 ") || !strings.Contains(logs, "room="+room+" ") || !strings.Contains(logs, "ops_waiting=1 ") {
			t.Fatalf("want one warning of 1 transaction in %s, 1 op waiting, got:\n%s", room, logs)
		}
	}

	// At the next round.
	var logs syncBuffer
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	st.TakeSlowBatches() // whatever came before
	ended := make(chan struct{})
	go func() {
		watchSlowBatches(wctx, st, slog.New(slog.NewTextHandler(&logs, nil)), 50*time.Millisecond)
		close(ended)
	}()
	holdUp(ws[0].ID)
	for end := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "slow room transactions"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no slow transaction logged:\n%s", logs.String())
		}
	}
	time.Sleep(200 * time.Millisecond) // four more rounds, which have nothing to say
	want(logs.String(), store.WorkshopRoom(ws[0].ID))
	stop()
	<-ended

	// As the watch ends, before its first round.
	var last syncBuffer
	wctx, stop = context.WithCancel(ctx)
	ended = make(chan struct{})
	go func() {
		watchSlowBatches(wctx, st, slog.New(slog.NewTextHandler(&last, nil)), time.Hour)
		close(ended)
	}()
	holdUp(ws[1].ID)
	stop()
	<-ended
	want(last.String(), store.WorkshopRoom(ws[1].ID))
}
