package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/demo"
	"github.com/rapporteur/rapporteur/server/store"
)

// TestSlowCommitsAreLogged: a room transaction held up past
// store.SlowBatch (here by a lock on the room's row, as a stalling disk
// holds up a commit) is logged as a warning with its room and length, once.
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
	room := store.WorkshopRoom(ws[0].ID)
	if _, err := st.CreateFinding(ctx, nil, ws[0].ID, "first", store.FindingInput{Title: "First"}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go watchSlowBatches(wctx, st, slog.New(slog.NewTextHandler(&logs, nil)), 50*time.Millisecond)

	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM rooms WHERE id = ? FOR UPDATE", room); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := st.CreateFinding(ctx, nil, ws[0].ID, "held", store.FindingInput{Title: "Held"})
		done <- err
	}()
	time.Sleep(3 * store.SlowBatch / 2)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "slow commits"); {
		if time.Now().After(end) {
			t.Fatalf("no slow commit logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // four more rounds, which have nothing to say
	got := logs.String()
	if n := strings.Count(got, "slow commits"); n != 1 || !strings.Contains(got, "level=WARN") ||
		!strings.Contains(got, "room="+room) || !strings.Contains(got, "transactions=1 ops=1") {
		t.Fatalf("want one warning of 1 transaction of 1 op in %s, got:\n%s", room, got)
	}
}
