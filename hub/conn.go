package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Server frames.
type (
	snapshotOut struct {
		Type  string          `json:"type"`
		Room  string          `json:"room"`
		Seq   int64           `json:"seq"`
		At    *time.Time      `json:"at,omitempty"`
		State json.RawMessage `json:"state"`
	}
	joinedOut struct {
		Type     string   `json:"type"`
		Room     string   `json:"room"`
		Seq      int64    `json:"seq"`
		Me       string   `json:"me"`
		MaxFrame int64    `json:"max_frame"`
		Presence []Person `json:"presence"`
		Count    int      `json:"count"`
	}
	presenceOut struct {
		Type   string   `json:"type"`
		Room   string   `json:"room"`
		People []Person `json:"people"`
		Count  int      `json:"count"`
	}
	ackOut struct {
		Type   string          `json:"type"`
		OpID   string          `json:"op_id"`
		Room   string          `json:"room"`
		Seq    int64           `json:"seq"`
		Result json.RawMessage `json:"result,omitempty"`
	}
	errorOut struct {
		Type    string `json:"type"`
		ReplyTo string `json:"reply_to,omitempty"`
		Room    string `json:"room,omitempty"`
		OpID    string `json:"op_id,omitempty"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	leftOut struct {
		Type string `json:"type"`
		Room string `json:"room"`
	}
	pongOut struct {
		Type string          `json:"type"`
		T    json.RawMessage `json:"t,omitempty"`
	}
)

// conn is one WebSocket connection. The read pump (the goroutine running
// Serve) handles client frames one at a time, in order (an op is applied on
// a goroutine of its own once its order is fixed: see op); the write pump
// is the only writer to ws.
type conn struct {
	h      *Hub
	ws     *websocket.Conn
	id     Identity
	q      *sendQueue
	ctx    context.Context // canceled when the connection ends
	cancel context.CancelFunc

	// Used by the read pump only.
	rooms  map[string]*member
	ops    bucket
	abuse  bucket
	frames bucket // every frame read (see framesPerOp)
	// owed is what the connection's applied ops owe the ops bucket for
	// their entries' size (see entryBytesPerOp); the read pump takes it.
	owed atomic.Int64

	// chain places the ops sent since the last one that broke (see
	// OpOrder and holdOrder); the pointer is read pump only.
	chain *opChain
	// Ops in flight: up to maxInFlight ops of one room are applied while
	// the read pump goes on (see op). flightRoom is read pump only.
	flight     chan struct{}
	flightRoom string
	flightWG   sync.WaitGroup

	readDone   chan struct{} // closed when the read pump returns
	writerDone chan struct{}

	alive alive // the read deadline
}

// alive keeps a connection's read deadline: PongWait after the client was
// last heard from. A client cannot answer pings that are not sent, so
// while a write is under way (the write pump sends no ping during it) the
// deadline waits for the write too, and a write that blocked longer than
// a ping interval and then went through counts as hearing from the client:
// its data was read. A dead client is still found: writes to it block
// until their deadline, and small ones that do not block extend nothing.
type alive struct {
	mu      sync.Mutex
	ws      *websocket.Conn
	wait    time.Duration // PongWait
	heard   time.Time
	writing time.Time // the write under way must end by then; zero: none
}

// setLocked applies the deadline.
func (a *alive) setLocked() {
	d := a.heard.Add(a.wait)
	if !a.writing.IsZero() && a.writing.Add(a.wait).After(d) {
		d = a.writing.Add(a.wait)
	}
	a.ws.SetReadDeadline(d)
}

// heardNow restarts the deadline: a frame or a pong came, or the read
// pump is back from handling a frame (it read no pong meanwhile).
func (a *alive) heardNow() {
	a.mu.Lock()
	a.heard = time.Now()
	a.setLocked()
	a.mu.Unlock()
}

// writeStart tells that a write that must end by deadline begins. The
// deadline moves only when the write could outlast it (a busy room's
// writes mostly cannot: they leave it alone).
func (a *alive) writeStart(deadline time.Time) {
	a.mu.Lock()
	if deadline.After(a.heard.Add(a.wait)) {
		a.writing = deadline
		a.setLocked()
	}
	a.mu.Unlock()
}

// writeEnd tells that the write begun at start ended, and whether it went
// through; one that went through after blocking longer than slow counts as
// hearing from the client.
func (a *alive) writeEnd(start time.Time, ok bool, slow time.Duration) {
	a.mu.Lock()
	changed := !a.writing.IsZero()
	a.writing = time.Time{}
	if now := time.Now(); ok && now.Sub(start) > slow {
		a.heard, changed = now, true
	}
	if changed {
		a.setLocked()
	}
	a.mu.Unlock()
}

func newConn(h *Hub, ws *websocket.Conn, id Identity) *conn {
	ctx, cancel := context.WithCancel(h.ctx)
	return &conn{
		h:          h,
		ws:         ws,
		id:         id,
		q:          newSendQueue(h.cfg.SendQueueBytes),
		ctx:        ctx,
		cancel:     cancel,
		rooms:      make(map[string]*member),
		chain:      &opChain{},
		ops:        newBucket(h.cfg.OpsPerSecond, h.cfg.OpsBurst),
		abuse:      newBucket(abuseRate, abuseBurst),
		frames:     newBucket(framesPerOp*h.cfg.OpsPerSecond, framesPerOp*h.cfg.OpsBurst),
		flight:     make(chan struct{}, maxInFlight),
		readDone:   make(chan struct{}),
		writerDone: make(chan struct{}),
		alive:      alive{ws: ws, wait: h.cfg.PongWait},
	}
}

// enqueue queues a frame without blocking; on overflow the connection is
// dropped as too slow. Fan-out uses it.
func (c *conn) enqueue(b []byte) {
	if !c.q.push(b) {
		c.dropSlow()
	}
}

// dropSlow closes the connection with 4008, discarding what is queued.
func (c *conn) dropSlow() {
	if c.q.close(CloseTooSlow, "too slow: reconnect and resume", true) {
		c.h.dropped.Add(1)
		c.h.log.Info("hub: dropped slow connection", "identity", c.id.ID)
	}
}

// send queues a frame for this connection without waiting; a full queue
// drops the connection as too slow. For goroutines other than the read pump.
func (c *conn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.h.log.Error("hub: encoding frame", "err", err)
		return
	}
	c.enqueue(b)
}

// reply queues a frame for this connection, waiting while its queue is full.
// Only the read pump uses it.
func (c *conn) reply(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		c.h.log.Error("hub: encoding frame", "err", err)
		return err
	}
	return c.q.pushWait(b)
}

// writePump writes queued frames and pings until the queue is closed or a
// write fails, then closes the socket.
func (c *conn) writePump() {
	defer close(c.writerDone)
	defer c.cancel()
	defer c.ws.Close()
	ping := time.NewTicker(c.h.cfg.PingInterval)
	defer ping.Stop()
	for {
		batch, closed, code, reason := c.q.take()
		for i := 0; i < len(batch); {
			// Several queued frames go out as one message, a frame a line
			// (PROTOCOL.md): one write instead of one per frame when a
			// room is busy.
			buf := c.h.packs.Get().(*[]byte)
			msg, n := pack((*buf)[:0], batch[i:], packLimit)
			start := time.Now()
			deadline := start.Add(writeDeadline(c.h.cfg.WriteWait, len(msg)))
			c.ws.SetWriteDeadline(deadline)
			c.alive.writeStart(deadline)
			err := c.ws.WriteMessage(websocket.TextMessage, msg)
			c.alive.writeEnd(start, err == nil, c.h.cfg.PingInterval)
			if n > 1 {
				*buf = msg[:0] // keep what the buffer grew to
			}
			c.h.packs.Put(buf)
			if err != nil {
				c.q.close(0, "", true)
				c.waitDrained(err)
				return
			}
			done := batch[i : i+n]
			i += n
			if c.q.written(done) {
				break
			}
		}
		if closed {
			if code != 0 {
				// Closing handshake: give the client a moment to read the
				// close frame and answer it before the socket goes, so that
				// frames it is still sending do not turn into a TCP reset
				// that hides the close code.
				msg := websocket.FormatCloseMessage(code, reason)
				if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.h.cfg.WriteWait)) == nil {
					t := time.NewTimer(closeGrace)
					select {
					case <-c.readDone:
					case <-t.C:
					}
					t.Stop()
				}
			}
			return
		}
		if len(batch) > 0 {
			// Busy: ping too when one is due, since a client that only
			// receives proves it is alive by its pongs alone.
			select {
			case <-ping.C:
				if !c.ping() {
					return
				}
			default:
			}
			continue
		}
		select {
		case <-c.q.ready:
		case <-ping.C:
			if !c.ping() {
				return
			}
		}
	}
}

// waitDrained waits, after a write failed because the WebSocket layer
// sent a close frame itself (1009 for a huge frame), for the read pump to
// drain what the client still sends (see drain): closing the socket
// before would reset the connection, and the client would not read the
// close code.
func (c *conn) waitDrained(err error) {
	if !errors.Is(err, websocket.ErrCloseSent) {
		return
	}
	t := time.NewTimer(2 * closeGrace)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
}

// ping sends a WebSocket ping; on failure it closes the queue and reports false.
func (c *conn) ping() bool {
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.cfg.WriteWait)); err != nil {
		c.q.close(0, "", true)
		c.waitDrained(err)
		return false
	}
	return true
}

// readPump reads and handles client frames until the connection ends. Once
// the connection is closing it only reads (and drops) frames until the
// client's close frame arrives or the write pump closes the socket.
func (c *conn) readPump() {
	defer close(c.readDone)
	c.ws.SetReadLimit(hardFrameFactor * c.h.cfg.MaxFrameBytes)
	c.alive.heardNow()
	c.ws.SetPongHandler(func(string) error {
		c.alive.heardNow()
		return nil
	})
	// WebSocket pings are frames the server answers too (see framesPerOp);
	// otherwise answered as gorilla/websocket's own handler does.
	c.ws.SetPingHandler(func(data string) error {
		if ok, _ := c.frames.take(time.Now()); !ok {
			c.tooManyFrames()
			return nil
		}
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
			return nil
		}
		return err
	})
	for {
		mt, r, err := c.ws.NextReader()
		var data []byte
		var over bool
		var env Frame
		if err == nil {
			data, over, env, err = readFrame(r, c.h.cfg.MaxFrameBytes)
		}
		if err != nil {
			c.h.log.Debug("hub: connection ended", "identity", c.id.ID, "err", err)
			if errors.Is(err, websocket.ErrReadLimit) {
				c.drain()
			}
			return
		}
		c.alive.heardNow()
		if c.q.isClosed() {
			continue
		}
		if ok, _ := c.frames.take(time.Now()); !ok {
			c.tooManyFrames()
			continue
		}
		if over {
			c.bad(env, &OpError{Code: CodeTooLarge, Message: fmt.Sprintf("frame over the %d-byte limit", c.h.cfg.MaxFrameBytes)})
			continue
		}
		if mt != websocket.TextMessage {
			c.bad(envelopeOf(data), badFrame("frames must be text (JSON)"))
			continue
		}
		if !utf8.Valid(data) {
			// Decoding would take the bad bytes as U+FFFD, changing what
			// the sender wrote, and echoing a field would send them back.
			c.bad(Frame{}, badFrame("the frame is not UTF-8 text"))
			continue
		}
		f, oe := DecodeFrame(data)
		if oe != nil {
			c.bad(f, oe)
			continue
		}
		start := time.Now()
		c.handle(f) // an error means the connection is closing: see above
		if time.Since(start) > time.Second {
			// A join waited long for room in the send queue (a catch-up to
			// a slow link), or an op for a slot, reading no pong meanwhile.
			c.alive.heardNow()
		}
	}
}

// tooManyFrames closes the connection of a client over its frames' rate
// (see framesPerOp): pings and leaves cost the server an answer each, and
// are no ops, so a client sending them without end is closed.
func (c *conn) tooManyFrames() {
	if c.q.isClosed() {
		return
	}
	c.h.log.Info("hub: closing connection for protocol abuse", "identity", c.id.ID, "why", "too many frames")
	c.q.close(CloseProtocolAbuse, "too many frames", false)
}

// drain reads and drops what the client still sends for a moment, after
// gorilla/websocket has sent close 1009 for an oversized frame, so that
// closing the socket with unread data does not reset the connection before
// the client has read the close frame.
func (c *conn) drain() {
	nc := c.ws.UnderlyingConn()
	nc.SetReadDeadline(time.Now().Add(closeGrace))
	io.Copy(io.Discard, nc)
}

// finish leaves every room and stops the write pump. It runs on the read
// pump's goroutine after readPump returns.
func (c *conn) finish() {
	c.q.close(0, "", true) // no-op when already closing with a code
	c.flightWG.Wait()      // the write pump's end cancels their context
	for name, m := range c.rooms {
		m.r.mu.Lock()
		m.r.removeLocked(c)
		m.r.mu.Unlock()
		delete(c.rooms, name)
	}
	<-c.writerDone
}

// bad answers a frame that failed envelope validation and closes the
// connection with 4002 when bad frames keep coming.
func (c *conn) bad(f Frame, oe *OpError) {
	if m := c.rooms[f.Room]; m != nil && f.Type == TypeJoin {
		c.leave(m) // as every refused join of a joined room does
	}
	c.sendError(f, oe)
	if ok, _ := c.abuse.take(time.Now()); !ok {
		c.h.log.Info("hub: closing connection for protocol abuse", "identity", c.id.ID)
		c.q.close(CloseProtocolAbuse, "too many bad frames", false)
	}
}

// sendError sends an error frame about f.
func (c *conn) sendError(f Frame, oe *OpError) error {
	return c.reply(errorFrame(f, oe))
}

// errorFrame is the error frame about f.
func errorFrame(f Frame, oe *OpError) errorOut {
	return errorOut{
		Type: "error", ReplyTo: f.Type, Room: f.Room, OpID: f.OpID,
		Code: oe.Code, Message: oe.Message, Detail: oe.Detail,
	}
}

// backendError turns an error from the Backend into an error frame's content;
// anything that is not an *OpError is logged and reported as internal.
func (c *conn) backendError(f Frame, err error) *OpError {
	var oe *OpError
	if errors.As(err, &oe) {
		return oe
	}
	var ne net.Error
	if c.ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		// Too slow (the Backend's own I/O timed out, say): the op may go
		// through when sent again.
		c.h.log.Warn("hub: backend timed out", "identity", c.id.ID, "type", f.Type, "room", f.Room, "op_id", f.OpID, "err", err)
		return &OpError{Code: CodeUnavailable, Message: "the server is busy; try again"}
	}
	if c.ctx.Err() == nil {
		c.h.log.Error("hub: backend failed", "identity", c.id.ID, "type", f.Type, "room", f.Room, "op_id", f.OpID, "err", err)
	}
	return &OpError{Code: CodeInternal, Message: "internal error"}
}

// failBackend sends the error frame for a backend error and closes the
// connection with 4001 when the backend says the session is not valid.
// The read pump waits for room in the send queue; other goroutines do not.
func (c *conn) failBackend(f Frame, err error, wait bool) error {
	return c.failOp(f, c.backendError(f, err), wait)
}

// failOp is failBackend for an error already turned into oe.
func (c *conn) failOp(f Frame, oe *OpError, wait bool) error {
	if !wait {
		c.send(errorFrame(f, oe))
	} else if e := c.sendError(f, oe); e != nil {
		return e
	}
	if oe.Code == CodeUnauthenticated {
		c.q.close(CloseUnauthenticated, "session ended", false)
		return errClosed
	}
	return nil
}

// handle acts on one valid frame. A non-nil error means the connection is closing.
func (c *conn) handle(f Frame) error {
	switch f.Type {
	case TypePing:
		return c.reply(pongOut{Type: "pong", T: f.T})
	case TypeJoin:
		return c.join(f)
	case TypeLeave:
		m := c.rooms[f.Room]
		if m == nil {
			return c.sendError(f, &OpError{Code: CodeNotJoined, Message: "room not joined"})
		}
		c.leave(m)
		return c.reply(leftOut{Type: "left", Room: f.Room})
	case TypeOp:
		return c.op(f)
	case TypePresence:
		m := c.rooms[f.Room]
		if m == nil {
			return c.sendError(f, &OpError{Code: CodeNotJoined, Message: "room not joined"})
		}
		if oe := c.rateLimit(); oe != nil {
			return c.sendError(f, oe)
		}
		m.r.mu.Lock()
		// A count-only room shows no one's editing: a change is no change.
		if m.editing != f.Editing && !m.r.countOnly {
			m.editing, m.editAt = f.Editing, time.Now()
			m.r.presenceChangedLocked()
		}
		m.r.mu.Unlock()
		return nil
	}
	return c.sendError(f, &OpError{Code: CodeUnknownType, Message: "unknown frame type"})
}

func (c *conn) rateLimit() *OpError {
	// Refilled first: a charge taken before the refill's cap would be
	// forgiven when the bucket was full.
	now := time.Now()
	c.ops.wait(now)
	if n := c.owed.Swap(0); n > 0 {
		c.ops.tokens -= float64(n)
	}
	ok, wait := c.ops.take(now)
	if ok {
		return nil
	}
	return &OpError{
		Code:    CodeRateLimited,
		Message: "too many operations; slow down",
		Detail:  map[string]int64{"retry_after_ms": retryAfterMS(wait)},
	}
}

// retryAfterMS is a wait in whole milliseconds, rounded up (at least 1):
// a client that waits that long, as PROTOCOL.md says, is not too early.
func retryAfterMS(wait time.Duration) int64 {
	return max((wait + time.Millisecond - 1).Milliseconds(), 1)
}

// orderHold bounds how long a connection's ops wait for the resend of an
// op refused before them.
const orderHold = 10 * time.Second

// holdOrder rate-limits an op and keeps a connection's ops in order around
// the limit and around failures: once an op is refused as rate_limited,
// or failed as unavailable or internal in the Backend (see OpOrder), the
// ops after it are refused too until it comes again (PROTOCOL.md: the
// client resends it and every later op, in order), so none of them is
// applied before it. Without this, a later op arriving once the bucket
// had refilled was applied first: a vote refused, then an unvote applied,
// then the vote resent, left the finding voted. An op that never comes
// again holds the others for orderHold at most.
func (c *conn) holdOrder(key string) *OpError {
	if broken, _, _ := c.chain.brokenBy(); broken != "" {
		// The ops sent before the broken one may fail yet: wait for them
		// (rarely more than a moment), then look again.
		c.flightWG.Wait()
		broken, code, at := c.chain.brokenBy()
		now := time.Now()
		if broken != "" && key != broken && now.Before(at.Add(orderHold)) {
			if code == CodeRateLimited {
				return &OpError{
					Code:    CodeRateLimited,
					Message: "an earlier operation was refused for the rate; send it again first, then this one",
					Detail:  map[string]any{"retry_after_ms": retryAfterMS(c.ops.wait(now)), "held_back": true},
				}
			}
			return &OpError{Code: CodeUnavailable, Message: "an earlier operation failed; send it again first, then this one",
				Detail: map[string]bool{"held_back": true}}
		}
		c.chain = &opChain{}
	}
	if oe := c.rateLimit(); oe != nil {
		c.chain.place(key).breakAs(CodeRateLimited)
		return oe
	}
	return nil
}

func (c *conn) leave(m *member) {
	m.r.mu.Lock()
	m.r.removeLocked(c)
	m.r.mu.Unlock()
	delete(c.rooms, m.r.name)
}

// entryBytesPerOp is how many bytes of an op's entry count as one more op
// against the connection's rate: the members of a room are sent each
// entry, so its bytes, not the op's, are what the room pays for.
const entryBytesPerOp = 4096

// maxInFlight is how many ops of one connection may be applied at once
// (PROTOCOL.md asks clients to keep at most about 16 unacked).
const maxInFlight = 16

// op applies a client operation through the Backend and acks it.
//
// The Backend applies it on an op worker (see workers). The read pump waits
// only until the op's place in its room's order is fixed (Op.Queued) or
// it is done, so a busy connection's ops share the room's transactions
// instead of waiting one transaction each. Ops of one connection keep
// their order: an op for another room than the ops in flight first waits
// for all of them.
func (c *conn) op(f Frame) error {
	m := c.rooms[f.Room]
	if m == nil {
		return c.sendError(f, &OpError{Code: CodeNotJoined, Message: "room not joined"})
	}
	// An op is known in the connection's order by room and op id: op ids
	// are unique per room only (and hold no control character).
	key := f.Room + "\x00" + f.OpID
	if oe := c.holdOrder(key); oe != nil {
		return c.sendError(f, oe)
	}
	if f.Room != c.flightRoom {
		c.flightWG.Wait()
		c.flightRoom = f.Room
	}
	select {
	case c.flight <- struct{}{}:
	case <-c.ctx.Done():
		return errClosed
	}
	queued, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	op := Op{Room: f.Room, OpID: f.OpID, Kind: f.Kind, Base: f.Base, Client: f.Client, Body: f.Body,
		Queued: func() { once.Do(func() { close(queued) }) }, Committed: m.r.offer,
		Order: c.chain.place(key)}
	c.flightWG.Add(1)
	c.h.ops.run(func() {
		defer c.flightWG.Done()
		defer func() { <-c.flight }()
		defer close(done)
		defer func() {
			// A Backend that panics on an op (a bug its body sets off)
			// fails that op, not the whole server.
			if p := recover(); p != nil {
				c.h.log.Error("hub: backend panicked", "identity", c.id.ID, "room", f.Room, "op_id", f.OpID, "panic", p, "stack", string(debug.Stack()))
				op.Order.Break()
				c.send(errorFrame(f, &OpError{Code: CodeInternal, Message: "internal error"}))
			}
		}()
		ctx, cancel := c.backendCtx()
		defer cancel()
		e, err := c.h.b.Apply(ctx, c.id, op)
		if err != nil {
			oe := c.backendError(f, err)
			if oe.Code == CodeInternal || oe.Code == CodeUnavailable {
				// The ops read after it wait for its resend. (A Backend
				// using op.Order has already held back those it had.)
				op.Order.Break()
			}
			c.failOp(f, oe, false)
			return
		}
		// A big entry counts as that many ops: every member is sent it,
		// and a small op can make one (a one-word edit of a finding whose
		// texts are long).
		c.owed.Add(int64(len(e.Payload) / entryBytesPerOp))
		if e.Room == "" || e.Room == f.Room {
			e.Room = f.Room // the entry frame names its room
			m.r.offer(e, false)
		} else {
			c.h.log.Error("hub: backend applied op to another room", "room", f.Room, "entry_room", e.Room, "op_id", f.OpID)
		}
		c.send(ackOut{Type: "ack", OpID: f.OpID, Room: f.Room, Seq: e.Seq, Result: e.Result})
	})
	select {
	case <-queued:
	case <-done:
	}
	return nil
}

// join makes the connection a member of a room: it sends the entries after
// f.Since (or a snapshot), then "joined", after which the room's follower
// sends new entries directly. See PROTOCOL.md for the order of frames.
//
// Gap- and duplicate-freedom: the member is registered (not live) under the
// room lock before the log is read, so every entry the follower fans out from
// then on lands in its pending list, unless the catch-up covers it (seq at
// or below the head it reads, member.covered); the catch-up reads up to at
// least the room's lastSeq at registration (Head and Snapshot are read after
// it). The pending list is then drained, and the member made live under the
// lock, with every frame filtered by seq > sent.
func (c *conn) join(f Frame) error {
	if m := c.rooms[f.Room]; m != nil {
		c.leave(m) // a join of a joined room resynchronises it (refused, it leaves it unjoined)
	}
	// A join costs a catch-up or a snapshot of the room: it spends a token
	// of the connection's bucket, as ops do.
	if oe := c.rateLimit(); oe != nil {
		return c.sendError(f, oe)
	}
	if len(c.rooms) >= c.h.cfg.MaxRoomsPerConn {
		return c.sendError(f, &OpError{Code: CodeTooManyRooms, Message: "too many rooms joined on this connection"})
	}
	ctx, cancel := c.backendCtx()
	defer cancel()
	if err := c.h.b.CanJoin(ctx, c.id, f.Room); err != nil {
		return c.failBackend(f, err, true)
	}
	noNames := c.h.cfg.SeesNames != nil && !c.h.cfg.SeesNames(c.id, f.Room)
	r, err := c.h.acquireRoom(ctx, f.Room)
	if err != nil {
		return c.failBackend(f, err, true)
	}
	m := &member{c: c, r: r, noNames: noNames}
	r.members[c] = m
	r.mu.Unlock()
	c.rooms[f.Room] = m

	sent, err := c.catchUp(f, m, false)
	err = m.checkCovered(sent, err)
	reread, rounds := false, 0
	for {
		if err != nil {
			c.leave(m)
			if errors.Is(err, errClosed) {
				return err
			}
			return c.failBackend(f, err, true)
		}
		r.mu.Lock()
		if m.overflowed {
			// What the follower fanned out meanwhile went over the
			// queue's size and was dropped: it is in the log. After a
			// slow database's answer it is read from there once; a
			// second time, the client reads slower than the room
			// writes, and is dropped as a live member would be. What
			// piled up since the drop is read again too.
			m.overflowed, m.pending, m.pendB = false, nil, 0
			r.mu.Unlock()
			if reread {
				c.dropSlow()
				err = errClosed
				continue
			}
			reread, rounds = true, 0
			before := sent
			sent, err = c.catchUp(Frame{Type: TypeJoin, Room: f.Room, Since: sent}, m, true)
			if err = m.checkCovered(sent, err); err == nil && sent < before {
				// A snapshot below what was sent (a restored log).
				err = fmt.Errorf("room %s: snapshot at %d below the %d sent", f.Room, sent, before)
			}
			continue
		}
		if len(m.pending) == 0 {
			m.live, m.sent = true, sent // listed in its own presence
			people, n := r.peopleLocked()
			if m.noNames {
				people = []Person{}
			}
			b, err := json.Marshal(joinedOut{Type: "joined", Room: r.name, Seq: sent, Me: c.id.ID, MaxFrame: c.h.cfg.MaxFrameBytes, Presence: people, Count: n})
			// joined, and the presence broadcast that the join sets off
			// (about as long), must both fit: after a slow reader's
			// catch-up the queue is full, and it waits for room (not
			// holding the room, whose new entries pend meanwhile) rather
			// than be dropped for frames the catch-up left no room for.
			if err == nil && !c.q.pushSpare(b, len(b)) {
				m.live = false
				r.mu.Unlock()
				if err := c.q.waitRoom(2 * len(b)); err != nil {
					return err
				}
				continue
			}
			r.presenceChangedLocked()
			r.mu.Unlock()
			return nil
		}
		// A client reading about as fast as the room writes never
		// empties its pending list: past maxJoinRounds of draining it
		// counts as overflowed.
		if rounds++; rounds > maxJoinRounds {
			m.overflowed = true
			r.mu.Unlock()
			continue
		}
		pending := m.pending
		m.pending, m.pendB = nil, 0
		r.mu.Unlock()
		// An entry that withdrew what earlier ones carried, committed
		// while the catch-up read the log: a snapshot instead of what it
		// withdrew, as in catchUp.
		if slices.ContainsFunc(pending, func(p frame) bool { return p.withdraws && p.seq > sent }) {
			before := sent // at or past the head covered (checkCovered)
			if sent, err = c.snapshot(r); err == nil && sent < before {
				// Below what was sent (a restored log): what the client
				// replaces would not come again.
				err = fmt.Errorf("room %s: snapshot at %d below the %d sent", f.Room, sent, before)
			}
			if err != nil {
				continue
			}
		}
		for _, p := range pending {
			if p.seq <= sent {
				continue
			}
			if err := c.pushCatchUp(p.b); err != nil {
				return err // closing; finish() removes the membership
			}
			sent = p.seq
		}
	}
}

// checkCovered fails a join whose catch-up ended below the head it
// covered (a snapshot of a log restored while it was read): the entries
// in between are neither sent nor pending. The client joins again.
func (m *member) checkCovered(sent int64, err error) error {
	m.r.mu.Lock()
	covered := m.covered
	m.r.mu.Unlock()
	if err == nil && sent < covered {
		err = fmt.Errorf("room %s: snapshot at %d below the head %d", m.r.name, sent, covered)
	}
	return err
}

// maxJoinRounds bounds the rounds a join drains its pending list in
// before it is live (see join).
const maxJoinRounds = 64

// backendCtx is the context of one Backend call for this connection.
func (c *conn) backendCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.h.cfg.BackendTimeout)
}

// pushCatchUp queues a frame of a join's catch-up, waiting while the
// queue is over half full: the other half is for what the connection
// gets meanwhile without waiting (its other rooms' entries, acks).
func (c *conn) pushCatchUp(b []byte) error {
	return c.q.pushWaitSpare(b, c.h.cfg.SendQueueBytes/2)
}

// catchUp sends what a joining client misses: the entries after f.Since, or a
// snapshot when that is too far back, before an entry that withdrew what
// earlier ones carried, or not a position in the log. It returns the seq
// the client then holds.
//
// Each Backend call has its own timeout: the catch-up as a whole also
// waits for the client to read, which a slow link makes long. A second
// catch-up of a join (again: see join) ends with 4008 as soon as entries
// pile up for m again.
func (c *conn) catchUp(f Frame, m *member, again bool) (int64, error) {
	b := c.h.b
	m.r.mu.Lock()
	before, rewinds := m.r.lastSeq, m.r.rewinds // committed before Head is read: at or below its head
	m.r.mu.Unlock()
	ctx, cancel := c.backendCtx()
	head, withdrawn, err := b.Head(ctx, f.Room)
	cancel()
	if err != nil {
		return 0, err
	}
	// What is fanned out up to head is sent from the log (or a snapshot
	// at or past it), not held pending: from now on, and what is pending
	// already (fanned out while Head was read). An overflow that dropped
	// only such entries is none.
	m.r.mu.Lock()
	m.r.rewindBelowLocked(head, before, rewinds, m)
	m.covered = max(m.covered, head)
	kept, size := m.pending[:0], 0
	for _, p := range m.pending {
		if p.seq > m.covered {
			kept, size = append(kept, p), size+len(p.b)
		}
	}
	clear(m.pending[len(kept):])
	m.pending, m.pendB = kept, size
	if m.overflowed && m.droppedTo <= m.covered {
		m.overflowed = false
	}
	m.r.mu.Unlock()
	if f.Since < 0 || f.Since > head || head-f.Since > int64(c.h.cfg.HistoryLimit) || f.Since < withdrawn {
		return c.snapshot(m.r)
	}
	if f.Since > 0 && !f.SinceAt.IsZero() {
		// The client's copy ends with an entry of another log when the
		// log's entry there has another time (a database restored from a
		// backup, and grown past it): a snapshot of this one instead.
		ctx, cancel := c.backendCtx()
		at, err := c.h.entryAt(ctx, f.Room, f.Since)
		cancel()
		if err != nil {
			return 0, err
		}
		if !at.Equal(f.SinceAt) {
			return c.snapshot(m.r)
		}
	}
	// Each read is held while the client reads it: it is sized to about
	// catchUpBytes by the size of the entries read before, so a join
	// behind entries of big findings holds little more than that.
	// A short page is no end before head (After promises at most limit).
	// What was committed after Head is the pending list's (see join).
	sent, limit := f.Since, catchUpFirst
	for sent < head {
		ctx, cancel := c.backendCtx()
		es, err := b.After(ctx, f.Room, sent, limit)
		cancel()
		if err != nil {
			return 0, err
		}
		// An entry that withdrew earlier ones, committed since Head was
		// read: a snapshot instead of what it withdrew (which may be on
		// this page). After a long catch-up's first pages, the client
		// replaces what they gave it.
		if slices.ContainsFunc(es, func(e Entry) bool { return e.Withdraws && e.Seq > sent }) {
			return c.snapshot(m.r)
		}
		size := 0
		for _, e := range es {
			size += len(e.Payload)
			if e.Seq <= sent {
				continue
			}
			if err := c.pushCatchUp(c.h.encodeEntry(e).b); err != nil {
				return 0, err
			}
			sent = e.Seq
		}
		if len(es) == 0 {
			// The log ends below the head it gave: not the log the
			// client's copy came from (a restore).
			return c.snapshot(m.r)
		}
		if again {
			m.r.mu.Lock()
			over := m.overflowed
			m.r.mu.Unlock()
			if over {
				c.dropSlow()
				return 0, errClosed
			}
		}
		limit = max(catchUpLeast, min(followBatch, catchUpBytes*len(es)/max(size, 1)))
	}
	if sent > f.Since {
		// A deletion committed after the pages were read, which the
		// follower may not have fanned out yet (its notification late):
		// a snapshot instead of what it withdrew, as above. An up-to-date
		// join reads nothing more.
		ctx, cancel := c.backendCtx()
		_, withdrawn, err := b.Head(ctx, f.Room)
		cancel()
		if err != nil {
			return 0, err
		}
		if withdrawn > sent {
			return c.snapshot(m.r)
		}
	}
	return sent, nil
}

// snapshot sends r's state as a join's catch-up and returns its seq. It
// takes the identity's turn for a snapshot first, refused past its budget
// of snapshot bytes (see awaitSnapshot), and charges the budget once read.
func (c *conn) snapshot(r *room) (int64, error) {
	done, err := c.h.awaitSnapshot(c.ctx, c.id.ID)
	if err != nil {
		return 0, err
	}
	ctx, cancel := c.backendCtx()
	state, seq, at, err := c.h.b.Snapshot(ctx, r.name)
	cancel()
	if err != nil {
		done(0)
		return 0, err
	}
	if len(state) == 0 {
		state = json.RawMessage("null")
	}
	out := snapshotOut{Type: "snapshot", Room: r.name, Seq: seq, State: state}
	if !at.IsZero() {
		out.At = &at // for the client's next join (see Frame.SinceAt)
	}
	b, err := json.Marshal(out)
	done(len(b))
	if err != nil {
		return 0, err
	}
	return seq, c.pushCatchUp(r.shareSnapshot(b))
}

// A join's catch-up reads catchUpFirst entries, then as many as come to
// about catchUpBytes (catchUpLeast to followBatch). The first read knows
// no sizes yet: catchUpFirst entries of the biggest kind (a finding of
// about a frame, 64 KiB) come to about catchUpBytes.
const (
	catchUpFirst = 16
	catchUpLeast = 8
	catchUpBytes = 1 << 20
)

// slowLink is the rate, in bytes per second, a write of a big message
// (a snapshot) is given time for beyond WriteWait: a slow link then gets
// it, where under one fixed deadline it would fail it, reconnect, and be
// sent the same snapshot again, forever.
const slowLink = 64 << 10

// writeDeadline is how long a write of n bytes may take.
func writeDeadline(wait time.Duration, n int) time.Duration {
	return wait + time.Duration(n)*time.Second/slowLink
}

// packLimit is the size up to which queued frames are packed into one message.
const packLimit = 32 << 10

// pack joins the first frames of batch with newlines into one message of at
// most limit bytes (or the first frame alone, whatever its size) and
// reports how many frames it took. Frames are compact JSON, so they hold
// no raw newline. A joined message is appended to dst.
func pack(dst []byte, batch [][]byte, limit int) ([]byte, int) {
	if len(batch) == 1 || len(batch[0]) >= limit {
		return batch[0], 1
	}
	size, n := len(batch[0]), 1
	for n < len(batch) && size+1+len(batch[n]) <= limit {
		size += 1 + len(batch[n])
		n++
	}
	if n == 1 {
		return batch[0], 1
	}
	msg := dst
	for i, b := range batch[:n] {
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, b...)
	}
	return msg, n
}
