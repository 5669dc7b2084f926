package hub

import (
	"testing"
	"time"
)

// TestBigFrameDoesNotCrowdOutLiveFrames checks the send queue's limit
// around a frame bigger than the limit (a big room's snapshot): it is
// queued only alone, and the live frames behind it get the whole limit,
// so a client that reads is not dropped as slow while it downloads.
func TestBigFrameDoesNotCrowdOutLiveFrames(t *testing.T) {
	q := newSendQueue(100)
	big, small := make([]byte, 500), make([]byte, 40)
	if !q.push(big) {
		t.Fatal("a big frame was refused by an empty queue")
	}
	if q.push(make([]byte, 300)) {
		t.Fatal("a second big frame was queued behind the first")
	}
	if !q.push(small) || !q.push(small) {
		t.Fatal("live frames were refused behind a big frame")
	}
	if q.push(small) {
		t.Fatal("live frames beyond the limit were queued")
	}
	batch, _, _, _ := q.take()
	if len(batch) != 3 {
		t.Fatalf("took %d frames, want 3", len(batch))
	}
	q.written(batch[:1]) // the snapshot is out
	if q.bytes != 80 || q.over() != 0 {
		t.Fatalf("after writing the big frame: bytes %d, over %d; want 80, 0", q.bytes, q.over())
	}
	if q.push(small) {
		t.Fatal("live frames beyond the limit were queued after the big frame")
	}
	q.written(batch[1:])
	if q.bytes != 0 || !q.push(big) {
		t.Fatalf("after writing everything: bytes %d, and a big frame must fit", q.bytes)
	}
}

// TestBigFrameGoesBehindLiveFrames: a big frame (a snapshot) is queued
// behind live frames still unwritten; it does not wait for an empty
// queue, which a busy room on a slow link may never leave.
func TestBigFrameGoesBehindLiveFrames(t *testing.T) {
	q := newSendQueue(100)
	if !q.push(make([]byte, 40)) {
		t.Fatal("a live frame was refused")
	}
	mustQueueSoon(t, q, func() error { return q.pushWait(make([]byte, 500)) }, "the big frame")
	if batch, _, _, _ := q.take(); len(batch) != 2 || len(batch[1]) != 500 {
		t.Fatalf("queued %d frames, want the live frame, then the big one", len(batch))
	}

	// A frame over half the limit cannot leave half the queue spare, as a
	// catch-up's frames do; it too goes behind a live frame at once.
	q = newSendQueue(100)
	q.push(make([]byte, 10))
	mustQueueSoon(t, q, func() error { return q.pushWaitSpare(make([]byte, 60), 50) }, "a frame over half the limit")
	if !q.push(make([]byte, 40)) {
		t.Fatal("a live frame was refused behind the big one")
	}
}

// mustQueueSoon fails the test unless push, which waits for room in q,
// returns within a few seconds.
func mustQueueSoon(t *testing.T, q *sendQueue, push func() error, what string) {
	t.Helper()
	queued := make(chan error, 1)
	go func() { queued <- push() }()
	select {
	case err := <-queued:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		q.close(0, "", true)
		t.Fatalf("%s waits for the frames queued before it to be written", what)
	}
}

// TestABurstGoesInApart: a fan-out bigger than the room left goes in
// whole, apart from the limit; frames go on queueing behind it within the
// limit; more bursts join it while it is unwritten, up to apartBursts
// limits in all, and the next is refused (the connection is too slow);
// once they are written there is room again.
func TestABurstGoesInApart(t *testing.T) {
	q := newSendQueue(100)
	small := make([]byte, 30)
	if !q.push(small) {
		t.Fatal("a small frame was refused")
	}
	burst := [][]byte{make([]byte, 40), make([]byte, 40), make([]byte, 40)}
	if !q.pushAll(burst) {
		t.Fatal("a burst over the room left was refused")
	}
	if q.over() != 120 {
		t.Fatalf("over %d, want the burst's 120", q.over())
	}
	if !q.push(small) || !q.push(small) {
		t.Fatal("frames within the limit were refused behind the burst")
	}
	n := 1
	for q.pushAll(burst) {
		n++
	}
	if want := apartBursts * 100 / 120; n != want {
		t.Fatalf("%d bursts of 120 went in apart, want %d", n, want)
	}
	batch, _, _, _ := q.take()
	q.written(batch)
	if q.over() != 0 || q.bytes != 0 {
		t.Fatalf("after writing everything: over %d, bytes %d; want 0, 0", q.over(), q.bytes)
	}
	if !q.pushAll(burst) || q.over() != 120 {
		t.Fatalf("a burst after the others were written: over %d, want 120", q.over())
	}
}

// A connection that stops reading, sent one small entry per fan-out (the
// ordinary case, no burst at all), is refused once its queue holds the
// limit: only bursts go apart from it. (Found by a review.)
func TestASlowReaderOfSingleEntriesIsRefusedNearTheLimit(t *testing.T) {
	q := newSendQueue(100)
	n := 0
	for n < 1000 && q.pushAll([][]byte{make([]byte, 10)}) {
		n++
	}
	if q.bytes > 2*q.limit {
		t.Fatalf("a reader that never reads holds %d bytes of single 10-byte entries (%d accepted, over()=%d) under a limit of %d",
			q.bytes, n, q.over(), q.limit)
	}
}

// Regular frames queued between two bursts count against the limit: they
// are not taken into the bursts' run. (Found by a review.)
func TestRegularFramesBetweenBurstsStayUnderTheLimit(t *testing.T) {
	q := newSendQueue(100)
	q.pushAll([][]byte{make([]byte, 60), make([]byte, 60)}) // burst 1, apart
	for q.push(make([]byte, 10)) {                          // regular frames up to the limit
	}
	regular := q.bytes - 120
	q.pushAll([][]byte{make([]byte, 60), make([]byte, 60)}) // burst 2 joins the run, with the regular frames between
	for q.push(make([]byte, 10)) {
		regular += 10
	}
	if regular > q.limit {
		t.Fatalf("%d bytes of regular (non-burst) frames queued unwritten, limit %d (over()=%d, bytes=%d)", regular, q.limit, q.over(), q.bytes)
	}
}

// TestSnapshotsOfARoomShareOneFrame: a snapshot the same as the room's
// last is sent in that one's frame (one copy held among the joins that
// get it); another replaces it.
func TestSnapshotsOfARoomShareOneFrame(t *testing.T) {
	r := &room{}
	first := []byte(`{"type":"snapshot","seq":3}`)
	if got := r.shareSnapshot(first); &got[0] != &first[0] {
		t.Fatal("the room's first snapshot is not sent as made")
	}
	same := []byte(`{"type":"snapshot","seq":3}`)
	if got := r.shareSnapshot(same); &got[0] != &first[0] {
		t.Fatal("a snapshot the same as the last is sent in a frame of its own")
	}
	other := []byte(`{"type":"snapshot","seq":4}`)
	if got := r.shareSnapshot(other); &got[0] != &other[0] {
		t.Fatal("another snapshot is sent in the last one's frame")
	}
	if got := r.shareSnapshot([]byte(`{"type":"snapshot","seq":4}`)); &got[0] != &other[0] {
		t.Fatal("the next snapshot the same as the new last is not shared")
	}
}
