package hub

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// room is a room with members in this process. Its follower goroutine reads
// the log after lastSeq and fans entries out; it lives as long as the room has
// members.
//
// Lock order: room.mu, then Hub.mu, then a sendQueue's mu.
type room struct {
	name      string
	h         *Hub
	countOnly bool // presence says how many, not who (Config.CountOnly)

	mu      sync.Mutex
	members map[*conn]*member
	lastSeq int64     // last seq fanned out; guarded by mu
	lastAt  time.Time // the At of that entry, zero when not known (see catchUp); guarded by mu
	staged  []frame   // offered entries waiting for the rest of their commit; guarded by mu
	closed  bool      // no members left; removed from Hub.rooms
	rewinds int64     // rewoundLocked calls: a head read before one is not compared after it; guarded by mu

	presenceAt    time.Time   // when presence was last broadcast; guarded by mu
	presenceTimer *time.Timer // pending throttled presence broadcast; guarded by mu
	unshared      bool        // presence here changed since last shared; guarded by mu
	shared        bool        // the other processes were told of people here; guarded by mu

	// snap is the last snapshot frame a join of the room was sent (see
	// shareSnapshot); guarded by mu.
	snap []byte

	broadcast atomic.Int64  // mirror of lastSeq for Notify's fast check
	wakeC     chan struct{} // cap 1: coalesced wake-ups for the follower
	done      chan struct{} // closed with closed
}

// member is one connection's membership in a room. Fields are guarded by room.mu.
type member struct {
	c       *conn
	r       *room
	live    bool    // catch-up done: the follower sends directly
	sent    int64   // highest seq sent (or snapshot seq) to the connection
	pending []frame // while catching up: entries the follower fanned out meanwhile
	pendB   int     // bytes in pending
	// overflowed tells that pending went over the send queue's size and
	// was dropped: the catch-up reads on from the log instead.
	overflowed bool
	// covered is the head the join's catch-up reads the log up to: what
	// is fanned out at or below it is not pending (the log gives it).
	covered int64
	// droppedTo is the highest seq an overflow of pending dropped.
	droppedTo int64
	editing   string // presence
	// editAt is when editing last changed: of a person's tabs in this
	// process that edit something, the one that changed last says what.
	editAt  time.Time
	noNames bool // sees how many are in the room, not who (Config.SeesNames)
}

// frame is an encoded entry frame, shared by every connection it goes to.
type frame struct {
	seq       int64
	at        time.Time // the entry's At
	b         []byte
	withdraws bool // the entry's Withdraws
}

func (r *room) wake() {
	select {
	case r.wakeC <- struct{}{}:
	default:
	}
}

// acquireRoom returns the room called name, creating it and starting its
// follower when needed, with r.mu held. A new room's head is read before
// the room is published, with no lock held: a slow database must not hold
// the presence and wake-ups of others behind a room that is not yet ready.
func (h *Hub) acquireRoom(ctx context.Context, name string) (*room, error) {
	var head int64
	var at time.Time // the At of the entry at head
	headRead := false
	for {
		h.mu.Lock()
		if h.closing {
			h.mu.Unlock()
			return nil, &OpError{Code: CodeUnavailable, Message: "server going away"}
		}
		r := h.rooms[name]
		if r == nil && !headRead {
			h.mu.Unlock()
			var err error
			if head, _, err = h.b.Head(ctx, name); err != nil {
				return nil, err
			}
			// The room knows from the start which log it follows (see
			// catchUp): a restore after this, before its first read, is
			// not taken for the log its members got.
			if at, err = h.entryAt(ctx, name, head); err != nil {
				return nil, err
			}
			headRead = true
			continue // someone may have made the room meanwhile
		}
		if r == nil {
			// Entries committed since Head was read are the follower's
			// first catch-up.
			r = &room{
				name:      name,
				h:         h,
				countOnly: h.cfg.CountOnly != nil && h.cfg.CountOnly(name),
				members:   make(map[*conn]*member),
				wakeC:     make(chan struct{}, 1),
				done:      make(chan struct{}),
				lastSeq:   head,
				lastAt:    at,
			}
			r.broadcast.Store(head)
			r.mu.Lock() // r is not yet visible: no one else can hold it
			h.rooms[name] = r
			h.roomWG.Add(1)
			h.mu.Unlock()
			go r.follow()
			return r, nil
		}
		h.mu.Unlock()
		r.mu.Lock()
		if !r.closed {
			return r, nil
		}
		r.mu.Unlock() // lost a race with the last member leaving; retry
	}
}

// entryAt returns the At of room's entry at seq, zero when there is none
// (or seq is not above 0).
func (h *Hub) entryAt(ctx context.Context, room string, seq int64) (time.Time, error) {
	if seq <= 0 {
		return time.Time{}, nil
	}
	es, err := h.b.After(ctx, room, seq-1, 1)
	if err != nil || len(es) == 0 || es[0].Seq != seq {
		return time.Time{}, err
	}
	return es[0].At, nil
}

// closeLocked marks r closed and removes it from the hub. Call with r.mu held.
func (r *room) closeLocked() {
	if r.closed {
		return
	}
	r.closed = true
	close(r.done)
	if r.presenceTimer != nil {
		r.presenceTimer.Stop()
		r.presenceTimer = nil
	}
	r.shareLocked() // no one here now
	r.h.mu.Lock()
	if r.h.rooms[r.name] == r {
		delete(r.h.rooms, r.name)
	}
	r.h.mu.Unlock()
}

// follow is the room's follower: on every wake-up or poll tick it reads the
// log after lastSeq and fans the entries out.
func (r *room) follow() {
	defer r.h.roomWG.Done()
	t := time.NewTicker(r.h.cfg.PollInterval)
	defer t.Stop()
	r.catchUp(false) // entries committed between Head and the first Notify
	for {
		check := false
		select {
		case <-r.done:
			return
		case <-r.wakeC:
		case <-t.C:
			check = true
		}
		r.catchUp(check)
	}
}

// catchUp reads and fans out every entry after lastSeq. With check set (the
// slow poll), when nothing new is there it also reads the head of the log,
// to find a log that went below what was sent (see rewoundLocked). The
// read starts with the entry at lastSeq: the room learns its time when it
// does not know it (after a rewind; a new room knows it from the start),
// and compares it when it does. A log with another entry there is another log
// (restored from a backup, and grown past what was sent before this
// process heard of it), and is handled as rewound too.
func (r *room) catchUp(check bool) {
	for {
		r.mu.Lock()
		from, at, closed, rewinds := r.lastSeq, r.lastAt, r.closed, r.rewinds
		r.mu.Unlock()
		if closed {
			return
		}
		after := max(from-1, 0)
		ctx, cancel := context.WithTimeout(r.h.ctx, r.h.cfg.BackendTimeout)
		es, err := r.h.b.After(ctx, r.name, after, followBatch)
		cancel()
		if err != nil {
			if r.h.ctx.Err() == nil {
				r.h.log.Warn("hub: reading room log", "room", r.name, "after", after, "err", err)
			}
			return // the next wake-up or poll retries
		}
		read := len(es)
		if after < from {
			if len(es) == 0 || es[0].Seq != from {
				r.checkHead(from, rewinds) // the entry sent last is gone
				return
			}
			r.mu.Lock()
			switch {
			case r.rewinds != rewinds || r.lastSeq != from || r.closed:
			case at.IsZero():
				r.lastAt = es[0].At
			case !es[0].At.Equal(at):
				r.h.log.Warn("hub: the room's log has another entry where one was sent (a restored database?)", "room", r.name, "seq", from)
				r.rewoundLocked(from-1, nil, true, false)
				r.mu.Unlock()
				continue
			}
			r.mu.Unlock()
			es = es[1:]
		}
		if len(es) == 0 {
			if check {
				r.checkHead(from, rewinds)
			}
			return
		}
		fs := make([]frame, len(es))
		for i, e := range es {
			fs[i] = r.h.encodeEntry(e)
		}
		r.mu.Lock()
		if r.rewinds != rewinds {
			// Read after a head the log went below while it was read:
			// read again from where the rewind left the room.
			r.mu.Unlock()
			continue
		}
		r.fanOutLocked(fs)
		r.mu.Unlock()
		if read < followBatch {
			return
		}
	}
}

// checkHead reads the head of the log and, when it is below from (what
// the room had sent before, read with rewinds), handles the log as
// rewound.
func (r *room) checkHead(from, rewinds int64) {
	ctx, cancel := context.WithTimeout(r.h.ctx, r.h.cfg.BackendTimeout)
	head, _, err := r.h.b.Head(ctx, r.name)
	cancel()
	if err != nil {
		return
	}
	r.mu.Lock()
	r.rewindBelowLocked(head, from, rewinds, nil)
	r.mu.Unlock()
}

// rewindBelowLocked rewinds the room (see rewoundLocked) when head, read
// after the room had sent before with rewinds rewinds, is below it: a
// log does not go below what was committed before it was read. A head
// read before another rewind is not compared after it. Call with r.mu
// held.
func (r *room) rewindBelowLocked(head, before, rewinds int64, keep *member) {
	if head < before && r.rewinds == rewinds && head < r.lastSeq && !r.closed {
		r.rewoundLocked(head, keep, true, true)
	}
}

// rewoundLocked handles a log found below what the room sent, or with
// another entry where one was sent (see catchUp): the database was
// restored from a backup under this process. What the members hold came
// from the other log, so each is closed with CloseLogRestored, to join again
// with a snapshot, except keep (a join that found it, going on to a snapshot
// of this log); the room goes on from head, and the Backend, when it is a
// Rewinder, is told if tell is set, to announce it if announce is (see
// Rewinder). Call with r.mu held.
func (r *room) rewoundLocked(head int64, keep *member, tell, announce bool) {
	r.h.log.Warn("hub: the room's log is below what was sent (a restored database?): members join again", "room", r.name, "head", head, "sent", r.lastSeq)
	r.rewinds++
	r.lastSeq, r.lastAt = head, time.Time{}
	r.broadcast.Store(head)
	r.staged = nil
	if tell {
		r.h.b.Rewound(r.name, head, announce)
	}
	// Entries committed to this log since head was read were not
	// offered nor announced (at or below the old lastSeq): read them.
	r.wake()
	for c, m := range r.members {
		if m == keep {
			m.pending, m.pendB, m.overflowed, m.droppedTo = nil, 0, false, 0
			continue
		}
		c.q.close(CloseLogRestored, "the log was restored: join again with a snapshot", false)
	}
}

// offer fans out an entry this process just applied if it is the next one,
// saving a read of the log; otherwise it wakes the follower. With more set,
// the entry waits for the call without it that the Backend promises next
// (see Op.Committed): a transaction's entries then go out together, one
// write per connection instead of one per entry.
func (r *room) offer(e Entry, more bool) {
	r.mu.Lock()
	if r.closed {
		r.staged = nil
		r.mu.Unlock()
		if !more {
			// The op was read in this room, which its members left; a room
			// of the name made since (a rejoin) reads the entry from the log.
			r.h.Notify(r.name, e.Seq)
		}
		return
	}
	defer r.mu.Unlock()
	if e.Seq > r.lastSeq { // encoded only then: Apply's result, offered again, was mostly sent already
		r.staged = append(r.staged, r.h.encodeEntry(e))
	}
	if more {
		return
	}
	fs := r.staged
	r.staged = nil
	slices.SortFunc(fs, func(a, b frame) int { return cmp.Compare(a.seq, b.seq) })
	fs = slices.CompactFunc(fs, func(a, b frame) bool { return a.seq == b.seq })
	for len(fs) > 0 && fs[0].seq <= r.lastSeq {
		fs = fs[1:] // fanned out meanwhile, from the log
	}
	n := 0
	for n < len(fs) && fs[n].seq == r.lastSeq+int64(n)+1 {
		n++
	}
	r.fanOutLocked(fs[:n])
	if n < len(fs) {
		r.wake() // a gap: the log has the entry missing
	}
}

// fanOutLocked sends the frames fs, in seq order, to every member without
// blocking: live members get them in their send queue, all at once,
// catching-up members in their pending list. A member whose queue
// overflows is dropped as too slow; one whose pending list overflows (a
// slow database while it catches up, or a slow link) loses the list and
// catches up from the log, which holds every entry.
func (r *room) fanOutLocked(fs []frame) {
	for len(fs) > 0 && fs[0].seq <= r.lastSeq {
		fs = fs[1:]
	}
	if len(fs) == 0 {
		return
	}
	r.lastSeq, r.lastAt = fs[len(fs)-1].seq, fs[len(fs)-1].at
	r.broadcast.Store(r.lastSeq)
	r.h.entries.Add(int64(len(fs)))
	bs := make([][]byte, 0, len(fs))
	for c, m := range r.members {
		if !m.live {
			for _, f := range fs {
				if f.seq <= m.covered {
					continue
				}
				m.pending = append(m.pending, f)
				m.pendB += len(f.b)
			}
			if m.pendB > r.h.cfg.SendQueueBytes {
				m.pending, m.pendB, m.overflowed = nil, 0, true
				m.droppedTo = max(m.droppedTo, r.lastSeq)
			}
			continue
		}
		bs = bs[:0]
		for _, f := range fs {
			if f.seq > m.sent { // else already sent during its catch-up
				bs = append(bs, f.b)
			}
		}
		if len(bs) == 0 {
			continue
		}
		m.sent = fs[len(fs)-1].seq
		if !c.q.pushAll(bs) {
			c.dropSlow()
		}
	}
}

// removeLocked drops c's membership, announces the new presence and closes
// the room when it was the last member. Call with r.mu held.
func (r *room) removeLocked(c *conn) {
	m := r.members[c]
	if m == nil {
		return
	}
	delete(r.members, c)
	if len(r.members) == 0 {
		r.closeLocked()
		return
	}
	if m.live {
		r.presenceChangedLocked()
	}
}

// Person is one entry of a presence list.
type Person struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Editing string `json:"editing"` // id of what the person is editing, "" for nothing
}

// localPeopleLocked lists the live members in this process, one per
// identity, sorted by name then id. Of several tabs of one person, what
// any edits (one editing nothing, such as a second tab just opened, hides
// nothing), and of those that edit something, the one that changed last:
// a tablet whose Wi-Fi dropped silently stays a member until its pong
// deadline, and its stale editing must not outweigh what its reconnected
// tab edits now.
func (r *room) localPeopleLocked() []Person {
	ps := make([]Person, 0, len(r.members))
	at := make([]time.Time, 0, len(r.members))
	byID := make(map[string]int, len(r.members))
	for c, m := range r.members {
		if !m.live {
			continue
		}
		p := Person{ID: c.id.ID, Name: c.id.Name, Editing: m.editing}
		i, ok := byID[p.ID]
		switch {
		case !ok:
			byID[p.ID] = len(ps)
			ps, at = append(ps, p), append(at, m.editAt)
		case p.Editing == "":
		case ps[i].Editing == "" || m.editAt.After(at[i]) ||
			m.editAt.Equal(at[i]) && p.Editing < ps[i].Editing:
			// (The same instant, which a coarse clock can give, is
			// settled as across processes, so the order of the members'
			// map does not decide.)
			ps[i], at[i] = p, m.editAt
		}
	}
	// Sorted: the members' map gives another order each time, and the
	// other processes take a share in another order for a change, which
	// they broadcast to every screen.
	sortPeople(ps)
	return ps
}

// mergePeople keeps one entry per identity of lists from several
// processes, editing what any of them edits, the least id when several
// edit.
func mergePeople(ps []Person) []Person {
	byID := make(map[string]int, len(ps))
	out := ps[:0]
	for _, p := range ps {
		i, ok := byID[p.ID]
		if !ok {
			byID[p.ID] = len(out)
			out = append(out, p)
			continue
		}
		if out[i].Editing == "" || (p.Editing != "" && p.Editing < out[i].Editing) {
			out[i].Editing = p.Editing
		}
	}
	return out
}

// sortPeople sorts a presence list by name, ignoring case, then id: every
// process sorts the same way, so their lists agree.
func sortPeople(ps []Person) {
	type keyed struct {
		fold string
		p    Person
	}
	ks := make([]keyed, len(ps))
	for i, p := range ps {
		ks[i] = keyed{strings.ToLower(p.Name), p}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.fold, b.fold), cmp.Compare(a.p.Name, b.p.Name), cmp.Compare(a.p.ID, b.p.ID))
	})
	for i, k := range ks {
		ps[i] = k.p
	}
}

// peopleLocked lists the people in the room, in this process and (as they
// last said) in the others, one per identity, sorted by name then id, at
// most maxPresence of them (none in a count-only room), and how many there
// are in all.
func (r *room) peopleLocked() ([]Person, int) {
	ps := r.localPeopleLocked()
	unlisted := 0 // counted by another process but not listed by it
	for _, p := range r.h.remote.of(r.name, time.Now()) {
		ps = append(ps, p.People...)
		unlisted += max(0, p.Count-len(p.People))
	}
	ps = mergePeople(ps)
	sortPeople(ps)
	n := len(ps) + unlisted
	if r.countOnly {
		return []Person{}, n
	}
	if len(ps) > maxPresence {
		ps = ps[:maxPresence]
	}
	return ps, n
}

// presenceChangedLocked schedules a presence broadcast after a change in
// this process (a join, a leave, an editing change), which is shared with
// the other processes too (see Config.SharePresence).
func (r *room) presenceChangedLocked() {
	r.unshared = true
	r.presenceDueLocked()
}

// presenceDueLocked schedules a presence broadcast: at once when none
// went out in the last presenceThrottle, else at the end of that interval
// (so a burst of joins costs one broadcast per interval, not one per join).
func (r *room) presenceDueLocked() {
	if r.presenceTimer != nil || r.closed {
		return // already scheduled
	}
	wait := presenceThrottle - time.Since(r.presenceAt)
	if wait <= 0 {
		r.presenceLocked()
		return
	}
	r.presenceTimer = time.AfterFunc(wait, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.presenceTimer = nil
		if !r.closed {
			r.presenceLocked()
		}
	})
}

// presenceLocked sends the room's presence list to every live member, and
// queues this process's part for the others when it changed.
func (r *room) presenceLocked() {
	r.presenceAt = time.Now()
	if r.unshared {
		r.unshared = false
		r.shareLocked()
	}
	people, n := r.peopleLocked()
	b, err := json.Marshal(presenceOut{Type: "presence", Room: r.name, People: people, Count: n})
	if err != nil {
		r.h.log.Error("hub: encoding presence", "err", err)
		return
	}
	var counted []byte // the frame of members who see no names, made once if any
	for c, m := range r.members {
		if !m.live {
			continue
		}
		if !m.noNames {
			c.enqueue(b)
			continue
		}
		if counted == nil {
			if counted, err = json.Marshal(presenceOut{Type: "presence", Room: r.name, People: []Person{}, Count: n}); err != nil {
				r.h.log.Error("hub: encoding presence", "err", err)
				return
			}
		}
		c.enqueue(counted)
	}
}

// shareLocked queues this process's presence in the room for the other
// processes (see Config.SharePresence).
func (r *room) shareLocked() {
	if r.h.shares == nil || r.h.sharedLast.Load() {
		return
	}
	p := Presence{Room: r.name}
	if !r.closed {
		p.People = r.localPeopleLocked()
		p.Count = len(p.People)
	}
	if r.countOnly {
		p.People = nil
	} else {
		// In order, so that the same people say the same (see
		// RemotePresence), and a list cut short keeps the same ones.
		sortPeople(p.People)
		p.People = p.People[:min(len(p.People), maxPresence)]
	}
	if p.Count == 0 && !r.shared {
		return // the others never heard of it
	}
	r.shared = p.Count > 0
	r.h.shares.put(p)
}

// encodeEntry encodes the entry frame once for every connection it goes to.
// An entry whose payload is not JSON (see appendEntryFrame) goes out with a
// null payload (and is logged) so that the stream never stalls on it.
func (h *Hub) encodeEntry(e Entry) frame {
	b, ok := appendEntryFrame(make([]byte, 0, 160+len(e.Payload)), e)
	if !ok {
		h.log.Error("hub: encoding entry: the payload is not JSON", "room", e.Room, "seq", e.Seq)
		e.Payload = nil
		b, _ = appendEntryFrame(b[:0], e)
	}
	return frame{seq: e.Seq, at: e.At, b: b, withdraws: e.Withdraws}
}

// shareSnapshot returns the frame the room's last snapshot was sent in
// when b is the same, else b, kept as the last: joins that ask for the
// room's state while it does not change (a reconnect storm, or one person
// asking again and again on slow links) then hold one copy of it among
// them, not one each. Compared outside the lock: a snapshot can be MBs.
func (r *room) shareSnapshot(b []byte) []byte {
	r.mu.Lock()
	last := r.snap
	r.mu.Unlock()
	if bytes.Equal(last, b) {
		return last
	}
	r.mu.Lock()
	r.snap = b
	r.mu.Unlock()
	return b
}
