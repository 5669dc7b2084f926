package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// busyRoomWithAFinding is a demo workshop with one finding, "F", for the
// tests that queue ops behind its busy room (queueBehindBusyRoom): the
// store, the workshop, its room and the finding's id.
func busyRoomWithAFinding(t *testing.T) (*store.Store, domain.Workshop, string, int64) {
	t.Helper()
	s, ws := MustDemoWorkshops(t)
	w := ws[2]
	return s, w, store.WorkshopRoom(w.ID), mustNewFinding(t, s, w.ID, "f", "F")
}

// TestResentKeyMessagesInABatchIsReplayed: a keymessages.set that
// committed (its ack lost) is resent after a reconnect and lands in a
// shared transaction: it must be acked with its original seq (PROTOCOL.md,
// Resume), not answered as a conflict with its own save.
func TestResentKeyMessagesInABatchIsReplayed(t *testing.T) {
	ctx := context.Background()
	s, w, room, fid := busyRoomWithAFinding(t)
	p := mustPerson(t, s)
	first, err := s.SetKeyMessages(ctx, &p, w.ID, "km1", 0, "First")
	if err != nil {
		t.Fatal(err)
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) { return s.SetKeyMessages(ctx, &p, w.ID, "km1", 0, "First") }, // resent
		func() (store.Applied, error) { return s.AddComment(ctx, p, w.ID, "c1", fid, "New") },
	})
	if res[0].err != nil || !res[0].a.Replayed || res[0].a.Entry.Seq != first.Entry.Seq {
		t.Errorf("resent keymessages.set in a batch: %+v %v; want a replay of seq %d", res[0].a, res[0].err, first.Entry.Seq)
	}
}

// TestResentDeleteInABatchIsReplayed: the same for a finding.delete: the
// resend must be acked, not NotFound.
func TestResentDeleteInABatchIsReplayed(t *testing.T) {
	ctx := context.Background()
	s, w, room, fid := busyRoomWithAFinding(t)
	other := mustNewFinding(t, s, w.ID, "g", "G")
	p := mustPerson(t, s)
	first, err := s.DeleteFinding(ctx, &p, w.ID, "del", fid, 0)
	if err != nil {
		t.Fatal(err)
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) { return s.DeleteFinding(ctx, &p, w.ID, "del", fid, 0) }, // resent
		func() (store.Applied, error) { return s.Vote(ctx, p, w.ID, "v1", other) },
	})
	if res[0].err != nil || !res[0].a.Replayed || res[0].a.Entry.Seq != first.Entry.Seq {
		t.Errorf("resent finding.delete in a batch: %+v %v; want a replay of seq %d", res[0].a, res[0].err, first.Entry.Seq)
	}
}

// TestResentUpdateInABatchIsReplayed: a finding.update resent after
// another person changed the same field: the resend must be acked with
// its seq, not reported as a conflict.
func TestResentUpdateInABatchIsReplayed(t *testing.T) {
	ctx := context.Background()
	s, w, room, fid := busyRoomWithAFinding(t)
	p1, p2 := mustPerson(t, s), mustPerson(t, s)
	first, err := s.UpdateFinding(ctx, &p1, w.ID, "u1", fid, 1, map[string]json.RawMessage{"title": json.RawMessage(`"Mine"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFinding(ctx, &p2, w.ID, "u2", fid, 2, map[string]json.RawMessage{"title": json.RawMessage(`"Theirs"`)}); err != nil {
		t.Fatal(err)
	}
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) {
			return s.UpdateFinding(ctx, &p1, w.ID, "u1", fid, 1, map[string]json.RawMessage{"title": json.RawMessage(`"Mine"`)}) // resent
		},
		func() (store.Applied, error) { return s.Vote(ctx, p2, w.ID, "v1", fid) },
	})
	if res[0].err != nil || !res[0].a.Replayed || res[0].a.Entry.Seq != first.Entry.Seq {
		t.Errorf("resent finding.update in a batch: %+v %v; want a replay of seq %d", res[0].a, res[0].err, first.Entry.Seq)
	}
}

// TestCreateWithARepeatedTermAfterOwnOp: a create whose term list names a
// key twice is taken ("kept sorted, without repeats") alone; the same
// create queued after another op of its author (so not hoisted into the
// batch's create statement) must be too.
func TestCreateWithARepeatedTermAfterOwnOp(t *testing.T) {
	ctx := context.Background()
	s, ws := MustDemoWorkshops(t)
	w := ws[3]
	room := store.WorkshopRoom(w.ID)
	p := mustPerson(t, s)
	if _, err := s.CreateFinding(ctx, &p, w.ID, "alone", store.FindingInput{Title: "Alone", Countries: []string{"NO", "NO"}}); err != nil {
		t.Fatalf("alone: %v", err)
	}
	target := mustNewFinding(t, s, w.ID, "target", "Target")
	res := queueBehindBusyRoom(t, s, room, []func() (store.Applied, error){
		func() (store.Applied, error) { return s.Vote(ctx, p, w.ID, "p-vote", target) },
		func() (store.Applied, error) {
			return s.CreateFinding(ctx, &p, w.ID, "p-create", store.FindingInput{Title: "After my vote", Countries: []string{"NO", "NO"}})
		},
	})
	if res[0].err != nil || res[1].err != nil {
		t.Errorf("vote %v; create with a repeated term after it: %v; want both applied", res[0].err, res[1].err)
	}
}
