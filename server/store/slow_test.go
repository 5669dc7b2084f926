package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/pgtest"
	"github.com/rapporteur/rapporteur/server/store"
)

// TestSlowBatchesAreCounted: a room transaction held up (here by a lock on
// the room's row, as a stalling disk holds up a commit) is counted with
// its room and length, and taken once.
func TestSlowBatchesAreCounted(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[0]
	room := store.WorkshopRoom(w.ID)
	// The room's row, which the held transaction will wait for.
	if _, err := s.CreateFinding(ctx, nil, w.ID, "first", store.FindingInput{Title: "First"}); err != nil {
		t.Fatal(err)
	}
	s.TakeSlowBatches() // whatever came before

	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM rooms WHERE id = ? FOR UPDATE", room); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.CreateFinding(ctx, nil, w.ID, "held", store.FindingInput{Title: "Held"})
		done <- err
	}()
	pgtest.WaitForLockWait(t, s)
	time.Sleep(store.SlowBatch + 50*time.Millisecond)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sb := s.TakeSlowBatches()
	if sb.Count != 1 || sb.Room != room || sb.Longest <= store.SlowBatch || sb.Ops != 1 || sb.MaxWait < sb.Longest {
		t.Fatalf("slow batches %+v, want 1 in %s over %s, its op waiting as long", sb, room, store.SlowBatch)
	}
	if again := s.TakeSlowBatches(); again != (store.SlowBatches{}) {
		t.Fatalf("taken twice: %+v", again)
	}
}
