package hub

import (
	"errors"
	"math"
	"sync"
	"time"
)

// errClosed is returned when writing to a connection that is closing.
var errClosed = errors.New("hub: connection closing")

// sendQueue is a connection's outgoing queue, bounded in bytes. Frames are
// shared byte slices and are never modified. Only the write pump takes from it.
type sendQueue struct {
	mu      sync.Mutex
	frames  [][]byte
	bytes   int // queued plus taken but not yet written
	limit   int
	closed  bool
	discard bool          // drop what is queued instead of flushing it
	code    int           // close code to send, 0 for none
	reason  string        // close reason
	ready   chan struct{} // cap 1: something to write or closed
	space   chan struct{} // cap 1: bytes were released or closed

	// The frames that do not count against the limit (see fits and
	// pushAll) are runs of bytes [from, to) of all ever queued (added), in
	// order; released counts those written (or dropped) so far, and runs
	// wholly released are dropped.
	added, released int
	runs            [][2]int
}

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// fits tells whether b may be queued now. A big frame (a big snapshot)
// goes in when no other such frame is queued, and does not count against
// the limit of the frames around it: live entries queue behind it as long
// as the client keeps reading. (It used to wait for an empty queue, which
// a busy room on a slow link may never leave.)
func (q *sendQueue) fits(b []byte) bool {
	if q.big(b) {
		return q.over() == 0
	}
	return q.room(len(b))
}

// big tells whether b is over half the limit: it would leave a catch-up
// (see pushWaitSpare) no room to spare, so it is kept apart as above.
func (q *sendQueue) big(b []byte) bool { return len(b) > q.limit/2 }

// over is the part of bytes that does not count against the limit: what
// is left unwritten of the frames queued apart (see fits and pushAll).
func (q *sendQueue) over() int {
	n := 0
	for _, r := range q.runs {
		n += r[1] - max(q.released, r[0])
	}
	return n
}

// room tells whether n more bytes fit under the limit (which frames over
// it do not count against); the caller holds mu.
func (q *sendQueue) room(n int) bool {
	used := q.bytes - q.over()
	return used == 0 || used+n <= q.limit
}

// add queues b, apart from the limit when apart is set; the caller holds
// mu and checked that it may.
func (q *sendQueue) add(b []byte, apart bool) {
	if apart {
		if k := len(q.runs) - 1; k >= 0 && q.runs[k][1] == q.added {
			q.runs[k][1] += len(b)
		} else {
			q.runs = append(q.runs, [2]int{q.added, q.added + len(b)})
		}
	}
	q.frames = append(q.frames, b)
	q.bytes += len(b)
	q.added += len(b)
}

// push adds b unless that would overflow the queue; it reports false on
// overflow. A closed queue swallows b.
func (q *sendQueue) push(b []byte) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	if !q.fits(b) {
		q.mu.Unlock()
		return false
	}
	q.add(b, q.big(b))
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// pushAll adds the frames bs together (one fan-out: a transaction's
// entries, or a read of the log), waking the write pump once; it reports
// false, adding none, when the connection is too slow for them. Within the
// room left under the limit they queue as single frames do. A burst of
// over half the limit (big entries at once) that does not fit is not
// judged by its own size: it goes in apart from the limit, as a big frame
// does, behind what is queued apart already (a burst before it, a
// snapshot), up to apartBursts times the limit apart in all. Those are
// frames shared with the room's other members: a connection that stops
// reading holds them until its write fails or the next fan-out finds no
// room. A closed queue swallows them.
func (q *sendQueue) pushAll(bs [][]byte) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	n, big := 0, false
	for _, b := range bs {
		n += len(b)
		big = big || q.big(b)
	}
	used := q.bytes - q.over()
	apart := big || n > q.limit/2
	if !big && (used+n <= q.limit || used == 0 && !apart) {
		apart = false // it fits
	} else if !apart || q.over()+n > apartBursts*q.limit {
		q.mu.Unlock()
		return false
	}
	for _, b := range bs {
		q.add(b, apart)
	}
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// apartBursts bounds the bursts queued apart from a send queue's limit, in
// limits (see pushAll).
const apartBursts = 16

// pushWait adds b, waiting for room in the queue while it is full. It returns
// errClosed when the queue is or gets closed.
func (q *sendQueue) pushWait(b []byte) error { return q.pushWaitSpare(b, 0) }

// pushWaitSpare is pushWait that also leaves spare bytes of the queue
// free (spare at most half the limit; big frames go as fits says): a
// catch-up leaves room for what its connection gets meanwhile (entries of
// its other rooms, acks), which is queued without waiting and would
// otherwise find the queue full and drop the connection as too slow.
func (q *sendQueue) pushWaitSpare(b []byte, spare int) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return errClosed
		}
		if q.fits(b) && (q.big(b) || q.room(len(b)+spare)) {
			q.add(b, q.big(b))
			q.mu.Unlock()
			signal(q.ready)
			return nil
		}
		q.mu.Unlock()
		<-q.space
	}
}

// pushSpare adds b only if spare bytes of the queue stay free after it,
// reporting whether it did. A closed queue swallows it.
func (q *sendQueue) pushSpare(b []byte, spare int) bool {
	q.mu.Lock()
	ok := q.closed || q.room(len(b)+spare)
	q.mu.Unlock()
	return ok && q.push(b)
}

// waitRoom waits until n bytes are free in the queue. It returns errClosed
// when the queue closes.
func (q *sendQueue) waitRoom(n int) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return errClosed
		}
		if q.room(n) {
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()
		<-q.space
	}
}

// close marks the queue closed; the write pump then sends close code (if not
// 0) after flushing what is queued, or at once when discard is set. It reports
// whether this call closed the queue.
func (q *sendQueue) close(code int, reason string, discard bool) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.closed, q.code, q.reason, q.discard = true, code, reason, discard
	if discard {
		q.frames = nil
	}
	q.mu.Unlock()
	signal(q.ready)
	signal(q.space)
	return true
}

func (q *sendQueue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// take hands the queued frames to the write pump.
func (q *sendQueue) take() (batch [][]byte, closed bool, code int, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch, q.frames = q.frames, nil
	return batch, q.closed, q.code, q.reason
}

// written releases the frames after a write and reports whether to stop
// writing the current batch because the queue was closed with discard.
func (q *sendQueue) written(frames [][]byte) (stop bool) {
	q.mu.Lock()
	for _, b := range frames {
		q.bytes = max(q.bytes-len(b), 0)
		q.released += len(b)
	}
	for len(q.runs) > 0 && q.runs[0][1] <= q.released {
		q.runs = q.runs[1:]
	}
	stop = q.closed && q.discard
	q.mu.Unlock()
	signal(q.space)
	return stop
}

// bucket is a token bucket; it is used by one goroutine only.
type bucket struct {
	rate   float64 // tokens per second
	size   float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, size int) bucket {
	return bucket{rate: rate, size: float64(size), tokens: float64(size)}
}

// take spends one token if there is one; otherwise it reports how long until
// there will be.
func (b *bucket) take(now time.Time) (ok bool, wait time.Duration) {
	if wait = b.wait(now); wait > 0 {
		return false, wait
	}
	b.tokens--
	return true, 0
}

// wait refills the bucket up to now and reports how long until it holds a
// token (0 when it does), spending none.
func (b *bucket) wait(now time.Time) time.Duration {
	if !b.last.IsZero() {
		b.tokens = math.Min(b.size, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
