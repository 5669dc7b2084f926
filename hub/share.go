package hub

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Presence is one process's part of a room's presence, passed between the
// processes that serve the room (see Config.SharePresence and
// Hub.RemotePresence).
type Presence struct {
	Room   string
	People []Person // the people in the room on that process; nil in a count-only room
	Count  int      // how many: len(People), or more when not all are listed
}

// heard is what another process last said of its part of a room.
type heard struct {
	p  Presence
	at time.Time
}

// remotePresence holds what the other processes said of their part of
// each room's presence, whether or not the room has members here.
type remotePresence struct {
	ttl   time.Duration // what is not said again within it is dropped: that process is gone
	mu    sync.Mutex
	rooms map[string]map[string]heard // room → process → what it said
}

// of returns the parts of room heard from the other processes, not expired at now.
func (rp *remotePresence) of(room string, now time.Time) []Presence {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []Presence
	for _, h := range rp.rooms[room] {
		if now.Sub(h.at) < rp.ttl {
			out = append(out, h.p)
		}
	}
	return out
}

// set records what from said of p.Room and reports whether it is news:
// whether the room's presence changes, and whether from was not known in
// the room until now.
func (rp *remotePresence) set(from string, p Presence, now time.Time) (changed, newcomer bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	procs := rp.rooms[p.Room]
	old, held := procs[from]
	if p.Count <= 0 {
		delete(procs, from)
		if len(procs) == 0 {
			delete(rp.rooms, p.Room)
		}
		// Expired but not yet swept, it may still be on the screens.
		return held, false
	}
	known := held && now.Sub(old.at) < rp.ttl
	if procs == nil {
		procs = make(map[string]heard)
		rp.rooms[p.Room] = procs
	}
	procs[from] = heard{p: p, at: now}
	changed = !known || old.p.Count != p.Count || !slices.Equal(old.p.People, p.People)
	return changed, !known
}

// expire drops what was not said again within ttl and returns the rooms
// whose presence changed by it.
func (rp *remotePresence) expire(now time.Time) []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var rooms []string
	for room, procs := range rp.rooms {
		for from, h := range procs {
			if now.Sub(h.at) >= rp.ttl {
				delete(procs, from)
				if !slices.Contains(rooms, room) {
					rooms = append(rooms, room)
				}
			}
		}
		if len(procs) == 0 {
			delete(rp.rooms, room)
		}
	}
	return rooms
}

// shareQueue holds this process's presence of each room waiting to be
// shared, the latest of each room only.
type shareQueue struct {
	mu      sync.Mutex
	pending map[string]Presence
	wake    chan struct{} // cap 1
	stop    chan struct{} // closed by end: share what is queued and end
	stopped sync.Once
	done    chan struct{} // closed when the sharer ends
}

// end makes the sharer share what is queued and end, and waits for it.
func (q *shareQueue) end() {
	q.stopped.Do(func() { close(q.stop) })
	<-q.done
}

func newShareQueue() *shareQueue {
	return &shareQueue{pending: make(map[string]Presence), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (q *shareQueue) put(p Presence) {
	q.mu.Lock()
	q.pending[p.Room] = p
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *shareQueue) take() map[string]Presence {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	p := q.pending
	q.pending = make(map[string]Presence)
	return p
}

// share is the hub's presence sharer: it passes each room's presence here
// to Config.SharePresence when it changes and again every PresenceEvery,
// and drops what the other processes stopped saying.
func (h *Hub) share() {
	q := h.shares
	defer close(q.done)
	t := time.NewTicker(h.cfg.PresenceEvery)
	defer t.Stop()
	// What the others stop saying is dropped within a quarter heartbeat
	// of its expiry.
	sweep := time.NewTicker(max(h.cfg.PresenceEvery/4, time.Millisecond))
	defer sweep.Stop()
	send := func() {
		// One deadline for the whole round, not so long that a stalled
		// database holds the heartbeats and the sweep back until the
		// others drop the people here.
		ctx, cancel := context.WithTimeout(h.ctx, min(h.cfg.BackendTimeout, h.cfg.PresenceEvery/2))
		defer cancel()
		for _, p := range q.take() {
			h.cfg.SharePresence(ctx, p)
		}
	}
	for {
		select {
		case <-q.stop:
			send()
			return
		case <-h.ctx.Done():
			return
		case <-q.wake:
		case now := <-sweep.C:
			for _, name := range h.remote.expire(now) {
				h.remoteChanged(name, false)
			}
		case <-t.C:
			for _, r := range h.roomList() {
				r.mu.Lock()
				if !r.closed && r.shared {
					r.shareLocked()
				}
				r.mu.Unlock()
			}
		}
		send()
	}
}

// RemotePresence records another process's part of a room's presence, as
// that process's Config.SharePresence gave it (from names the process),
// and updates the room's presence here. A Count of 0 says the process has
// no one in the room. What a process does not say again within three
// PresenceEvery is dropped, as from a process that is gone, within a
// quarter PresenceEvery more (when Config.SharePresence is set: its
// goroutine drops it).
func (h *Hub) RemotePresence(from string, p Presence) {
	changed, newcomer := h.remote.set(from, p, time.Now())
	if changed || newcomer {
		h.remoteChanged(p.Room, newcomer)
	}
}

// remoteChanged broadcasts room's presence to its members here after the
// other processes' part changed; tell also shares this process's part, for
// a process that has just come to the room.
func (h *Hub) remoteChanged(name string, tell bool) {
	r := h.room(name)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tell && r.shared {
		r.unshared = true
	}
	r.presenceDueLocked()
}
