// Package hub keeps the screens of a room in sync over WebSocket.
//
// A room's state lives in the server's event log (Postgres); the hub is a
// projection of that log: every room that has members in this process has one
// follower that reads new log entries through Backend.After and fans them out,
// in seq order, to the room's connections. The wire protocol is documented in
// PROTOCOL.md next to this file.
package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Entry is one committed entry of a room's event log.
type Entry struct {
	Room    string          `json:"room"`
	Seq     int64           `json:"seq"`
	OpID    string          `json:"op_id,omitempty"`
	Actor   string          `json:"actor,omitempty"` // display attribution, already Chatham-House filtered by the server
	Kind    string          `json:"kind"`            // e.g. "finding.create"
	Payload json.RawMessage `json:"payload"`
	At      time.Time       `json:"at"`
	// Withdraws is set on an entry that withdrew what earlier ones
	// carried (a deleted finding's): a catch-up is not sent across it
	// (see Backend.Head). It is not sent to clients.
	Withdraws bool `json:"-"`
	// Result, set by Backend.Apply on the entry of the op it applied, is
	// what the op's ack carries as "result" (a JSON value; nil for none).
	// It is not sent in entry frames.
	Result json.RawMessage `json:"-"`
}

// Identity is the signed-in person behind a connection, as the server's auth decided.
type Identity struct {
	ID      string
	Name    string // shown to the other members of a room in presence lists
	Session string // the sign-in session the connection was opened in, for EndSession; may be ""
	Data    any    // opaque to the hub, passed back to the Backend
	// Since is when the server read the identity's session and roles
	// (zero: not known). A Reauthorize or EndSession of it made after
	// Since but before its connection was registered closes the
	// connection as soon as it is: it would act on what was taken back.
	Since time.Time
}

// Op is a client operation: the envelope is decoded by the hub, Body is
// validated by the Backend.
type Op struct {
	Room string
	OpID string
	Kind string
	Base int64 // version the update is based on; 0 when not given
	// Client names the client the op comes from (one browser of a
	// device, say), "" when not given: the Backend judges conflicts by it.
	Client string
	Body   json.RawMessage
	// Queued, when the Backend calls it, tells the hub that the op's place
	// in its room's order is fixed (e.g. it waits in the room's commit
	// queue): any op the connection sends after it will be applied after
	// it. The hub then reads the connection's next op while this one is
	// applied. A Backend that never calls it gets a connection's ops one
	// at a time. Calling it more than once is harmless.
	Queued func()
	// Committed, when the Backend calls it with the op's entry as soon as
	// that is durable, fans the entry out at once. more tells that the
	// Backend calls it again at once, from the same goroutine, with the
	// next entry of the same commit; the entries then go out together.
	// Called for a room's entries in log order, it saves the room reading
	// them back from the log; an entry out of order only makes the room
	// read its log. Apply's result is fanned out too, so a Backend need
	// not call it.
	Committed func(e Entry, more bool)
	// Order is the op's place among the connection's ops, for a Backend
	// that applies them while the next are read to keep them in order
	// when one fails (see OpOrder).
	Order *OpOrder
}

// OpError is an error a Backend returns to be sent to the client as an error frame.
type OpError struct {
	Code    string
	Message string
	Detail  any // e.g. the current value on conflict
}

func (e *OpError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Error codes sent in error frames. A Backend may return others.
const (
	CodeBadFrame        = "bad_frame"       // malformed JSON, wrong field types, missing fields
	CodeUnknownType     = "unknown_type"    // frame type not known
	CodeTooLarge        = "too_large"       // a frame over MaxFrameBytes (the connection stays open)
	CodeNotJoined       = "not_joined"      // frame for a room the connection has not joined
	CodeRateLimited     = "rate_limited"    // too many ops; detail.retry_after_ms
	CodeTooManyRooms    = "too_many_rooms"  // join over MaxRoomsPerConn
	CodeForbidden       = "forbidden"       // not allowed (backend)
	CodeNotFound        = "not_found"       // no such room or object (backend)
	CodeConflict        = "conflict"        // update based on a stale version (backend); detail holds the current value
	CodeInvalid         = "invalid"         // body failed validation (backend)
	CodeInternal        = "internal"        // anything unexpected; details are only logged
	CodeUnauthenticated = "unauthenticated" // session no longer valid (backend); the connection is closed with 4001
	CodeUnavailable     = "unavailable"     // server shutting down or backend timed out; retry later
)

// WebSocket close codes used by the hub.
const (
	CloseGoingAway       = websocket.CloseGoingAway     // 1001: Shutdown
	CloseTooBig          = websocket.CloseMessageTooBig // 1009: frame over 16 times MaxFrameBytes (sent by gorilla/websocket)
	CloseUnauthenticated = 4001                         // session ended or not valid: sign in again
	CloseProtocolAbuse   = 4002                         // too many bad frames
	CloseAccessChanged   = 4003                         // the person's roles, name or details changed: reconnect and resume
	CloseTooSlow         = 4008                         // send queue overflowed: reconnect and resume
	CloseLogRestored     = 4009                         // the room's log is below what was sent (a restored database): join again with a snapshot
)

// Rewinder is a Backend told when a room finds its log is not the one it
// sent (a database restored from a backup): what the Backend keeps of the
// room's log above head is another log's. With announce set the log went
// below what was sent, and the other processes serving the room should
// hear of it (see Hub.Restored): one that sent past head holds the other
// log. Without it the log has another entry at head+1, and a head tells
// the others nothing of which log they hold (each finds it by the entry
// it sent last). Rewound is called with the room's lock held: it must not
// call the Hub.
type Rewinder interface {
	Rewound(room string, head int64, announce bool)
}

// Backend is what the server plugs in: store, auth and the log.
type Backend interface {
	// CanJoin returns nil when id may join room, or an *OpError with code
	// "forbidden" or "not_found".
	CanJoin(ctx context.Context, id Identity, room string) error
	// Apply validates, authorizes and applies op in one transaction with its
	// log entry and returns that entry. It is idempotent by (room, op id): an op
	// id seen before returns its original entry and no error. The returned
	// entry must be the entry as After returns it: the hub may broadcast it
	// directly instead of reading it back.
	Apply(ctx context.Context, id Identity, op Op) (Entry, error)
	// After returns the entries of room with seq > after, ascending, at
	// most limit; fewer only when there are no more (a room's follower
	// takes a short page as the end, until its next wake-up). An entry's
	// At is the same however it is read: a room's follower tells a
	// restored log from the one it sent by the At of its last entry.
	After(ctx context.Context, room string, after int64, limit int) ([]Entry, error)
	// Snapshot returns the current state of room and the seq it reflects,
	// read consistently, with the At of the entry at seq when it is known
	// from the same read (zero otherwise).
	Snapshot(ctx context.Context, room string) (state json.RawMessage, seq int64, at time.Time, err error)
	// Head returns the latest seq of room (0 if none), and the seq of its
	// newest entry that withdrew what earlier ones carried (0 if none),
	// such as a deleted finding's: a join from before that one gets a
	// snapshot, so that what was withdrawn is not sent again.
	Head(ctx context.Context, room string) (head, withdrawn int64, err error)
}

// Config tunes a Hub. Zero fields get the defaults noted.
type Config struct {
	HistoryLimit    int           // entries; a client further behind gets a snapshot (1000)
	MaxFrameBytes   int64         // largest client frame (64 KiB)
	SendQueueBytes  int           // per connection; overflow closes it with 4008 (1 MiB)
	OpsPerSecond    float64       // per connection token bucket rate, ops, joins and presence frames (20)
	OpsBurst        int           // per connection token bucket size (100); every frame, pings too, counts against framesPerOp times both (else 4002)
	MaxRoomsPerConn int           // (8)
	ConnsPerID      int           // open connections of one identity; more are refused with HTTP 429 (32)
	PingInterval    time.Duration // (25 s; kept below PongWait)
	PongWait        time.Duration // read deadline, extended by every pong or frame (60 s)
	WriteWait       time.Duration // deadline of one write (10 s), plus a second per 64 KiB of it
	PollInterval    time.Duration // slow safety poll of the log of each room with members (15 s)
	BackendTimeout  time.Duration // one Backend call (15 s); a join's catch-up gives each of its calls this long
	// The snapshots sent to one identity's joins, all its connections
	// together, are paid at SnapshotBytesPerSecond (1 MiB) beyond
	// SnapshotBurstBytes (16 MiB); a join past that is refused with
	// rate_limited. Each is a read of a room's whole state, made and sent for
	// one join: one person's joins asking for them one after another, on
	// all their connections, would take the database and the process
	// from everyone else.
	SnapshotBytesPerSecond int
	SnapshotBurstBytes     int
	// CountOnly tells whether the presence of room lists only how many
	// are there, not who (for a room where names are not for everyone,
	// such as a plenary anyone may watch). Nil: every room lists people.
	CountOnly func(room string) bool
	// SeesNames tells whether id, joining room, is shown who is there
	// and what each edits; if not, only how many (for someone who may
	// follow a room but is not of it, under the Chatham House rule). It
	// is asked once per join, outside any lock. Nil: everyone sees them.
	SeesNames func(id Identity, room string) bool
	// SharePresence, when set, is given this process's part of a room's
	// presence whenever it changes (at most every presenceThrottle), again
	// every PresenceEvery while the room has people here, and with Count 0
	// once it has none, for the server to pass on to the other processes
	// serving the room, which give it to their Hub.RemotePresence. It is
	// called from one goroutine, never with a lock held.
	SharePresence func(ctx context.Context, p Presence)
	PresenceEvery time.Duration // (10 s) see SharePresence; another process's part not said again within 3 times this is dropped
	Logger        *slog.Logger  // (slog.Default())
}

func (c Config) withDefaults() Config {
	if c.HistoryLimit <= 0 {
		c.HistoryLimit = 1000
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = 1 << 20
	}
	if c.OpsPerSecond <= 0 {
		c.OpsPerSecond = 20
	}
	if c.OpsBurst <= 0 {
		c.OpsBurst = 100
	}
	if c.MaxRoomsPerConn <= 0 {
		c.MaxRoomsPerConn = 8
	}
	if c.SnapshotBytesPerSecond <= 0 {
		c.SnapshotBytesPerSecond = 1 << 20
	}
	if c.SnapshotBurstBytes <= 0 {
		c.SnapshotBurstBytes = 16 << 20
	}
	if c.ConnsPerID <= 0 {
		c.ConnsPerID = 32
	}
	if c.BackendTimeout <= 0 {
		c.BackendTimeout = 15 * time.Second
	}
	if c.PongWait <= 0 {
		c.PongWait = 60 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PingInterval >= c.PongWait {
		c.PingInterval = c.PongWait * 9 / 10
	}
	if c.WriteWait <= 0 {
		c.WriteWait = 10 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 15 * time.Second
	}
	if c.PresenceEvery <= 0 {
		c.PresenceEvery = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Internal tuning that need not be configurable.
const (
	followBatch = 256             // entries per After call
	closeGrace  = 2 * time.Second // wait for the client's answer to a close frame
	// presenceThrottle is the least time between two presence broadcasts of
	// a room; changes in between are sent together at its end.
	presenceThrottle = 100 * time.Millisecond
	maxPresence      = 200 // people listed in a presence frame; "count" has the total
	abuseBurst       = 20  // bad frames tolerated in a burst before 4002
	abuseRate        = 0.5 // bad frames per second tolerated in the long run
	framesPerOp      = 4   // frames of any kind per op allowed (see Config.OpsBurst)
	// snapBudgets is how many identities' snapshot budgets are kept
	// before those paid up are let go of (a new one is full).
	snapBudgets = 256
)

// Hub owns the rooms and connections of one server process.
type Hub struct {
	b   guarded
	cfg Config
	log *slog.Logger

	ctx    context.Context // canceled when Shutdown gives up waiting
	cancel context.CancelFunc

	mu    sync.RWMutex
	rooms map[string]*room
	conns map[*conn]struct{}
	perID map[string]int // open connections (and upgrades under way) by identity
	// snapBudget is each identity's budget of snapshot bytes (see
	// awaitSnapshot); guarded by snapMu.
	snapMu     sync.Mutex
	snapBudget map[string]*snapBudget
	closing    bool
	// revoked holds when each identity ("p:" ID) was last reauthorized and
	// each session ("s:" ID) ended, for revokedMemory (see Identity.Since).
	revoked map[string]time.Time

	connWG  sync.WaitGroup // one per Serve call
	roomWG  sync.WaitGroup // one per room follower
	dropped atomic.Int64
	entries atomic.Int64

	// packs are the buffers (*[]byte) write pumps join queued frames in,
	// shared so that an idle connection holds none.
	packs sync.Pool
	// ops runs the connections' ops (see workers).
	ops *workers
	// remote is the other processes' part of each room's presence.
	remote *remotePresence
	// shares is this process's presence waiting for Config.SharePresence;
	// nil when that is not set.
	shares *shareQueue
	// sharedLast is set once a shutdown out of time said no one is here
	// (see shareNoOne): nothing is shared after that.
	sharedLast atomic.Bool
}

// Stats is a point-in-time view of a Hub, for tests and metrics.
type Stats struct {
	Rooms       int   // rooms with members in this process
	Connections int   // open connections
	DroppedSlow int64 // connections closed with 4008 since New
	Broadcast   int64 // log entries fanned out since New (each counted once per room)
}

// New returns a Hub that serves rooms through b.
func New(b Backend, cfg Config) *Hub {
	cfg = guardConfig(cfg.withDefaults())
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		ops:     newWorkers(ctx, workerIdle),
		b:       guarded{b: b, log: cfg.Logger},
		cfg:     cfg,
		log:     cfg.Logger,
		ctx:     ctx,
		cancel:  cancel,
		rooms:   make(map[string]*room),
		conns:   make(map[*conn]struct{}),
		perID:   make(map[string]int),
		revoked: make(map[string]time.Time),

		snapBudget: make(map[string]*snapBudget),
		packs:      sync.Pool{New: func() any { return new([]byte) }},
		remote:     &remotePresence{ttl: 3 * cfg.PresenceEvery, rooms: make(map[string]map[string]heard)},
	}
	if cfg.SharePresence != nil {
		h.shares = newShareQueue()
		go h.share()
	}
	return h
}

// Serve upgrades the request to a WebSocket with up (whose CheckOrigin the
// server sets) and starts the connection for id; it returns once the
// connection runs. The read pump runs on a goroutine of its own, not on
// the HTTP handler's, whose stack grew while serving the request: an idle
// connection then holds two small stacks.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, id Identity, up *websocket.Upgrader) {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		http.Error(w, "server going away", http.StatusServiceUnavailable)
		return
	}
	// Every limit of a connection would count as many times as one
	// person opened connections.
	if h.perID[id.ID] >= h.cfg.ConnsPerID {
		h.mu.Unlock()
		http.Error(w, "too many open connections of this person", http.StatusTooManyRequests)
		return
	}
	h.perID[id.ID]++
	h.connWG.Add(1)
	h.mu.Unlock()

	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		h.release(id)
		h.log.Debug("hub: upgrade failed", "err", err)
		return // the Upgrader has answered
	}
	go h.run(ws, id)
}

// release ends what Serve began for a connection of id.
func (h *Hub) release(id Identity) {
	h.mu.Lock()
	if h.perID[id.ID]--; h.perID[id.ID] <= 0 {
		delete(h.perID, id.ID)
	}
	h.mu.Unlock()
	h.connWG.Done()
}

// run runs one connection until it ends.
func (h *Hub) run(ws *websocket.Conn, id Identity) {
	defer h.release(id)
	c := newConn(h, ws, id)
	h.mu.Lock()
	h.conns[c] = struct{}{}
	closing := h.closing
	code, reason := h.revokedLocked(id)
	h.mu.Unlock()
	if closing {
		c.q.close(CloseGoingAway, "server going away", false)
	} else if code != 0 {
		c.q.close(code, reason, true)
	}
	go c.writePump()
	c.readPump()
	c.finish()
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// room returns the room called name, or nil when it has no members here.
func (h *Hub) room(name string) *room {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.rooms[name]
}

// Notify tells the hub that room has log entries up to seq. The hub reads
// them itself through Backend.After. It is cheap, never blocks and coalesces:
// call it after local applies and on every Postgres NOTIFY. Rooms without
// members in this process are ignored; seq <= 0 always wakes the follower.
func (h *Hub) Notify(room string, seq int64) {
	r := h.room(room)
	if r == nil {
		return
	}
	if seq > 0 && seq <= r.broadcast.Load() {
		return
	}
	r.wake()
}

// Restored handles a restore of room's log found by another process, whose
// log head was head then (the Backend heard it from that process's
// Rewinder): if this process sent the room's members entries past head,
// they came from the log that was replaced, and the members are closed to
// join again with a snapshot, as when the restore is found here. The
// Backend, which passed this on, is not told back.
func (h *Hub) Restored(room string, head int64) {
	r := h.room(room)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed && head < r.lastSeq {
		r.rewoundLocked(head, nil, false, false)
	}
}

// EndSession closes every connection opened in the sign-in session
// session with close code 4001 (e.g. after sign-out) and reports how many
// it closed. The person's connections of other sessions (another device)
// stay open.
func (h *Hub) EndSession(session string) int {
	if session == "" {
		return 0
	}
	h.revoke("s:" + session)
	return h.closeWhere(func(id Identity) bool { return id.Session == session }, CloseUnauthenticated, "session ended")
}

// revokedMemory is how long a Reauthorize or EndSession is remembered for
// connections being opened meanwhile (see Identity.Since).
const revokedMemory = time.Minute

// revoke records that key's access was taken back now, before the
// connections registered are closed: one registered after sees it.
func (h *Hub) revoke(key string) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, at := range h.revoked {
		if now.Sub(at) > revokedMemory {
			delete(h.revoked, k)
		}
	}
	h.revoked[key] = now
}

// revokedLocked returns the close code for a connection of id whose access
// was taken back after id.Since, or 0; the caller holds mu.
func (h *Hub) revokedLocked(id Identity) (int, string) {
	if id.Since.IsZero() {
		return 0, ""
	}
	if at, ok := h.revoked["s:"+id.Session]; ok && id.Session != "" && at.After(id.Since) {
		return CloseUnauthenticated, "session ended"
	}
	if at, ok := h.revoked["p:"+id.ID]; ok && at.After(id.Since) {
		return CloseAccessChanged, "access changed"
	}
	return 0, ""
}

// Identities returns the identity of each open connection, for a server
// that checks now and then that what they carry still holds.
func (h *Hub) Identities() []Identity {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]Identity, 0, len(h.conns))
	for c := range h.conns {
		out = append(out, c.id)
	}
	return out
}

// Sessions returns the sign-in sessions of the open connections, each once.
func (h *Hub) Sessions() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for c := range h.conns {
		if s := c.id.Session; s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// closeIdentity closes the identity's connections with code.
func (h *Hub) closeIdentity(identityID string, code int, reason string) int {
	return h.closeWhere(func(id Identity) bool { return id.ID == identityID }, code, reason)
}

// closeWhere closes the connections whose identity matches with code.
func (h *Hub) closeWhere(match func(Identity) bool, code int, reason string) int {
	h.mu.RLock()
	var cs []*conn
	for c := range h.conns {
		if match(c.id) {
			cs = append(cs, c)
		}
	}
	h.mu.RUnlock()
	for _, c := range cs {
		c.q.close(code, reason, true)
	}
	return len(cs)
}

// Reauthorize closes the identity's connections with CloseAccessChanged,
// after the server changed what the person may do: the clients reconnect
// and join again, and each join and op is checked against the new roles.
// It returns how many connections it closed.
func (h *Hub) Reauthorize(identityID string) int {
	h.revoke("p:" + identityID)
	return h.closeIdentity(identityID, CloseAccessChanged, "access changed")
}

// Shutdown closes every connection with close code 1001 (server going away)
// and waits for them to end. If ctx ends first it cuts the remaining
// connections and in-flight backend calls and returns ctx's error.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	cs := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.q.close(CloseGoingAway, "server going away", false)
	}
	done := make(chan struct{})
	go func() {
		h.connWG.Wait()
		h.roomWG.Wait()
		if h.shares != nil {
			// The rooms' last shares say that no one is here now.
			h.shares.end()
		}
		close(done)
	}()
	select {
	case <-done:
		h.cancel()
		return nil
	case <-ctx.Done():
		h.shareNoOne(time.Second)
		h.cancel()
		for _, c := range cs {
			c.ws.Close()
		}
		return ctx.Err()
	}
}

// roomList returns the rooms open now, to visit each under its own lock
// (which comes before Hub.mu).
func (h *Hub) roomList() []*room {
	h.mu.RLock()
	defer h.mu.RUnlock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// shareNoOne tells the other processes, when a shutdown runs out of time
// with connections left, that no one is here now in each room they heard
// of, waiting for it at most wait: they would otherwise list the people
// here until three heartbeats went unsaid.
func (h *Hub) shareNoOne(wait time.Duration) {
	if h.shares == nil {
		return
	}
	h.sharedLast.Store(true) // a member leaving meanwhile must not say otherwise
	for _, r := range h.roomList() {
		r.mu.Lock()
		if r.shared {
			r.shared = false
			h.shares.put(Presence{Room: r.name})
		}
		r.mu.Unlock()
	}
	ended := make(chan struct{})
	go func() {
		h.shares.end()
		close(ended)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
	}
}

// Stats returns current counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return Stats{
		Rooms:       len(h.rooms),
		Connections: len(h.conns),
		DroppedSlow: h.dropped.Load(),
		Broadcast:   h.entries.Load(),
	}
}

// snapBudget is one identity's budget of snapshot bytes (see
// Config.SnapshotBytesPerSecond).
type snapBudget struct {
	bytes bucket        // guarded by Hub.snapMu
	users int           // joins holding or awaiting it; guarded by Hub.snapMu
	turn  chan struct{} // cap 1: held by the join whose snapshot is read
}

// awaitSnapshot takes identity id's turn to be read a snapshot, or
// refuses it as rate_limited (with retry_after_ms) while the snapshots it
// was sent are not paid for (see Config.SnapshotBytesPerSecond). A
// person's snapshots are read one at a time: each is charged once its
// size is known, and joins asking together would otherwise all go at
// once. The join calls done with the bytes it sent (0 for none) once it
// has read its snapshot. A join past the budget is refused, not held:
// held, it would wait on the read pump, where nothing notices its client
// leave.
func (h *Hub) awaitSnapshot(ctx context.Context, id string) (done func(n int), err error) {
	h.snapMu.Lock()
	s := h.snapBudget[id]
	if s == nil {
		if len(h.snapBudget) >= snapBudgets {
			now := time.Now()
			for k, o := range h.snapBudget {
				if o.bytes.wait(now); o.users == 0 && o.bytes.tokens >= o.bytes.size {
					delete(h.snapBudget, k) // paid up: as a new one
				}
			}
		}
		s = &snapBudget{bytes: newBucket(float64(h.cfg.SnapshotBytesPerSecond), h.cfg.SnapshotBurstBytes), turn: make(chan struct{}, 1)}
		h.snapBudget[id] = s
	}
	s.users++
	h.snapMu.Unlock()
	leave := func(n int, held bool) {
		h.snapMu.Lock()
		s.bytes.tokens -= float64(n)
		s.users--
		h.snapMu.Unlock()
		if held {
			<-s.turn
		}
	}
	select {
	case s.turn <- struct{}{}: // another join's snapshot read, at most
	case <-ctx.Done():
		leave(0, false)
		return nil, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		leave(0, true)
		return nil, err
	}
	h.snapMu.Lock()
	wait := s.bytes.wait(time.Now())
	h.snapMu.Unlock()
	if wait > 0 {
		leave(0, true)
		return nil, &OpError{Code: CodeRateLimited, Message: "too many snapshots of rooms sent to you lately; join again later",
			Detail: map[string]int64{"retry_after_ms": retryAfterMS(wait)}}
	}
	return func(n int) { leave(n, true) }, nil
}
