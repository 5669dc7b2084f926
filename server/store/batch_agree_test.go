package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/store"
)

// The tests here hold a batch to what the same ops give one at a time.

// An update then a share and a key mark of one finding, in one batch:
// each change is stamped no earlier than the one before it, as one by one.
// (The update is stamped by the server's clock, the others were by the
// transaction's start.)
func TestABatchNeverStampsAChangeBeforeTheLast(t *testing.T) {
	ctx := context.Background()
	s, w, room, fid := busyRoomWithAFinding(t)
	p := mustPerson(t, s)
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) {
			return s.UpdateFinding(ctx, &p, w.ID, "u", fid, 1, map[string]json.RawMessage{"title": json.RawMessage(`"New"`)})
		},
		func() (store.Applied, error) { return s.ShareFinding(store.WithCurateRight(ctx), &p, w.ID, "sh", fid) },
		func() (store.Applied, error) { return s.MarkKey(store.WithCurateRight(ctx), &p, w.ID, "k", fid, 0) },
	})
	var last time.Time
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("op %d: %v", i, r.err)
		}
		var e struct {
			UpdatedAt time.Time `json:"updated_at"`
		}
		if err := json.Unmarshal(r.a.Entry.Payload, &e); err != nil || e.UpdatedAt.IsZero() {
			t.Fatalf("op %d: entry %s: no updated_at (%v)", i, r.a.Entry.Payload, err)
		}
		if e.UpdatedAt.Before(last) {
			t.Errorf("op %d (%s) stamped %v, before the op before it: %v", i, r.a.Entry.Kind, e.UpdatedAt, last)
		}
		last = e.UpdatedAt
	}
	f, err := s.Finding(ctx, fid)
	if err != nil {
		t.Fatal(err)
	}
	if !f.UpdatedAt.Equal(last) {
		t.Errorf("stored updated_at %v, want the last entry's %v", f.UpdatedAt, last)
	}
}

// Within a batch, as one by one, a change of a field by someone else is a
// conflict only when it is newer than the update's base.
func TestABatchCountsOnlyChangesSinceTheBase(t *testing.T) {
	ctx := context.Background()
	s, w, room, fid := busyRoomWithAFinding(t)
	p0, p1 := mustPerson(t, s), mustPerson(t, s)
	title := func(p *int64, op string, base int, v string) func() (store.Applied, error) {
		return func() (store.Applied, error) {
			raw, _ := json.Marshal(v)
			return s.UpdateFinding(ctx, p, w.ID, op, fid, base, map[string]json.RawMessage{"title": raw})
		}
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		title(&p1, "a", 1, "A"), // v2, by p1
		title(&p0, "b", 2, "B"), // v3, by p0: based on p1's change
		title(&p0, "c", 2, "C"), // since v2 only p0 changed the title: no conflict
	})
	for i, r := range res {
		if r.err != nil {
			t.Errorf("op %d: %v (one by one all three apply)", i, r.err)
		}
	}
	if f, err := s.Finding(ctx, fid); err != nil || f.Title != "C" {
		t.Errorf("title %q (%v), want C", f.Title, err)
	}
}

// A create sent after another op with its op id (another person's, by
// mistake) is not applied ahead of it: the op sent first is the one
// applied, as one by one.
func TestABatchAppliesTheFirstOpOfAnOpID(t *testing.T) {
	ctx := context.Background()
	s, w, room, fid := busyRoomWithAFinding(t)
	a, b := mustPerson(t, s), mustPerson(t, s)
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) { return s.Vote(ctx, a, w.ID, "a-vote", fid) },
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, &a, w.ID, "x", store.FindingInput{Title: "A's"})
		},
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, &b, w.ID, "x", store.FindingInput{Title: "B's"})
		},
	})
	if r := res[1]; r.err != nil || r.a.Replayed || r.a.Entry.ActorID == nil || *r.a.Entry.ActorID != a {
		t.Errorf("A's create, sent first: err %v, replayed %v, entry of %v; want applied as A's", r.err, r.a.Replayed, r.a.Entry.ActorID)
	}
	if r := res[2]; r.err != nil || !r.a.Replayed || r.a.Entry.Seq != res[1].a.Entry.Seq {
		t.Errorf("B's create of the same op id: err %v, replayed %v, seq %d; want A's entry (seq %d) again",
			r.err, r.a.Replayed, r.a.Entry.Seq, res[1].a.Entry.Seq)
	}
}
