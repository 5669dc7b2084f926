package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rapporteur/rapporteur/hub"
)

// memBackend is an in-memory hub.Backend: rooms of entries, op-id dedupe.
//
// Rooms named "secret:*" may not be joined; op kinds "forbidden.op", "boom"
// and "logout" fail with forbidden, a plain error and unauthenticated;
// "panic" panics. Its reads fail once their context ends, as a
// database's do.
type memBackend struct {
	mu      sync.Mutex
	rooms   map[string]*memRoom
	applied atomic.Int64 // ops actually applied (not deduplicated)

	// Set before use, for pipelining tests: started gets the op id of every
	// Apply call as it starts; an op of kind "held" calls Queued, then
	// waits for hold to close before it is applied ("held.boom": before
	// it fails).
	started chan string
	hold    chan struct{}
	// snapshotPad is how many bytes of padding a snapshot's state has.
	snapshotPad int
	// snapshots counts Snapshot calls (each a read of a room's whole
	// state, in the server).
	snapshots atomic.Int64
	// panicked is the context of the last op of kind "panic".
	panicked atomic.Pointer[context.Context]
	// mostRead is the most payload bytes one After call returned.
	mostRead atomic.Int64
	// beforeAfter, when set, is called once, at the start of the next
	// After call of a join's catch-up (not the room follower's, which
	// could take it first and fail the test for no fault of the join).
	beforeAfter atomic.Pointer[func()]
	// pageCap, when set, is the most entries one After call returns, as
	// After's "at most limit" allows.
	pageCap atomic.Int64
	// emptyLog, when set, has After return nothing, as a log restored
	// below the head it gave would.
	emptyLog atomic.Bool
	// panicIn, when set, names the call (CanJoin, Head, After, Snapshot)
	// that panics, as a bug of the server's would.
	panicIn atomic.Pointer[string]
}

// maybePanic panics when call is the one panicIn names.
func (b *memBackend) maybePanic(call string) {
	if p := b.panicIn.Load(); p != nil && *p == call {
		panic("a bug in " + call)
	}
}

type memRoom struct {
	entries []hub.Entry
	ops     map[string]hub.Entry
}

func newMemBackend() *memBackend { return &memBackend{rooms: make(map[string]*memRoom)} }

func (b *memBackend) roomLocked(name string) *memRoom {
	r := b.rooms[name]
	if r == nil {
		r = &memRoom{ops: make(map[string]hub.Entry)}
		b.rooms[name] = r
	}
	return r
}

func (b *memBackend) CanJoin(_ context.Context, _ hub.Identity, room string) error {
	b.maybePanic("CanJoin")
	if strings.HasPrefix(room, "secret:") {
		return &hub.OpError{Code: hub.CodeForbidden, Message: "not a member of this group"}
	}
	return nil
}

func (b *memBackend) Apply(ctx context.Context, id hub.Identity, op hub.Op) (hub.Entry, error) {
	if b.started != nil {
		b.started <- op.OpID
	}
	switch op.Kind {
	case "held":
		op.Queued()
		<-b.hold
	case "panic":
		b.panicked.Store(&ctx)
		panic("a bug the op's body sets off")
	case "held.boom": // as held, then fails
		op.Queued()
		<-b.hold
		return hub.Entry{}, errors.New("db exploded after a wait")
	case "forbidden.op":
		return hub.Entry{}, &hub.OpError{Code: hub.CodeForbidden, Message: "rapporteurs only"}
	case "boom":
		return hub.Entry{}, errors.New("db exploded with secret details")
	case "logout":
		return hub.Entry{}, &hub.OpError{Code: hub.CodeUnauthenticated, Message: "session expired"}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roomLocked(op.Room)
	if e, ok := r.ops[op.OpID]; ok {
		return e, nil
	}
	body := op.Body
	if body == nil {
		body = json.RawMessage(`{}`)
	}
	e := hub.Entry{Room: op.Room, Seq: int64(len(r.entries)) + 1, OpID: op.OpID, Actor: id.Name,
		Kind: op.Kind, Payload: body, At: time.Now().UTC()}
	r.entries = append(r.entries, e)
	r.ops[op.OpID] = e
	b.applied.Add(1)
	return e, nil
}

// restore cuts room's log to its first n entries, as a database restored
// from a backup would leave it.
func (b *memBackend) restore(room string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roomLocked(room)
	for _, e := range r.entries[n:] {
		delete(r.ops, e.OpID)
	}
	r.entries = r.entries[:n]
}

// mustLog fails the test unless room's log holds the op ids want, in order.
func (b *memBackend) mustLog(t *testing.T, room string, want ...string) {
	t.Helper()
	es, _ := b.After(context.Background(), room, 0, 1000)
	var got []string
	for _, e := range es {
		got = append(got, e.OpID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("log holds %v, want %v", got, want)
	}
}

// Append adds an entry as another server process would.
func (b *memBackend) Append(room, kind string, payload any) hub.Entry {
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roomLocked(room)
	e := hub.Entry{Room: room, Seq: int64(len(r.entries)) + 1, Kind: kind, Payload: p, At: time.Now().UTC(), Withdraws: kind == "withdraw"}
	r.entries = append(r.entries, e)
	return e
}

func (b *memBackend) After(ctx context.Context, room string, after int64, limit int) ([]hub.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if inCatchUp() {
		if f := b.beforeAfter.Swap(nil); f != nil {
			(*f)()
		}
	}
	b.maybePanic("After")
	if b.emptyLog.Load() {
		return nil, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roomLocked(room)
	if after < 0 {
		after = 0
	}
	if after >= int64(len(r.entries)) {
		return nil, nil
	}
	es := r.entries[after:]
	if c := int(b.pageCap.Load()); c > 0 {
		limit = min(limit, c)
	}
	if len(es) > limit {
		es = es[:limit]
	}
	n := 0
	for _, e := range es {
		n += len(e.Payload)
	}
	if int64(n) > b.mostRead.Load() {
		b.mostRead.Store(int64(n))
	}
	return append([]hub.Entry(nil), es...), nil
}

func (b *memBackend) Snapshot(_ context.Context, room string) (json.RawMessage, int64, time.Time, error) {
	b.snapshots.Add(1)
	b.maybePanic("Snapshot")
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.roomLocked(room)
	var at time.Time
	if n := len(r.entries); n > 0 {
		at = r.entries[n-1].At
	}
	if b.snapshotPad > 0 {
		return json.RawMessage(fmt.Sprintf(`{"entries":%d,"pad":%q}`, len(r.entries), strings.Repeat("x", b.snapshotPad))), int64(len(r.entries)), at, nil
	}
	return json.RawMessage(fmt.Sprintf(`{"entries":%d}`, len(r.entries))), int64(len(r.entries)), at, nil
}

// Head counts an entry of kind "withdraw" as one that withdrew what
// earlier ones carried.
func (b *memBackend) Head(_ context.Context, room string) (int64, int64, error) {
	b.maybePanic("Head")
	b.mu.Lock()
	defer b.mu.Unlock()
	var withdrawn int64
	es := b.roomLocked(room).entries
	for _, e := range es {
		if e.Kind == "withdraw" {
			withdrawn = e.Seq
		}
	}
	return int64(len(es)), withdrawn, nil
}

// testHub is a Hub behind an httptest server. The identity is taken from the
// "id" query parameter (a test stand-in for cookie auth).
type testHub struct {
	*hub.Hub
	b   *memBackend
	srv *httptest.Server
	url string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestHub(tb testing.TB, cfg hub.Config) *testHub {
	tb.Helper()
	return newTestHubOn(tb, cfg, false)
}

// smallBufferListener gives accepted connections a small kernel send buffer,
// so that a client that stops reading backs up quickly.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

func newTestHubOn(tb testing.TB, cfg hub.Config, smallBuffers bool) *testHub {
	tb.Helper()
	b := newMemBackend()
	return serveTestHub(tb, cfg, smallBuffers, b, b)
}

// serveTestHub serves a hub over backend be, whose log is b's.
func serveTestHub(tb testing.TB, cfg hub.Config, smallBuffers bool, be hub.Backend, b *memBackend) *testHub {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	h := hub.New(be, cfg)
	up := &websocket.Upgrader{} // nil CheckOrigin: same origin only; the test dialer sends no Origin
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		var since time.Time
		if n, err := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64); err == nil {
			since = time.Unix(0, n)
		}
		h.Serve(w, r, hub.Identity{ID: id, Name: "Name " + id, Session: r.URL.Query().Get("session"), Since: since}, up)
	}))
	if smallBuffers {
		srv.Listener = smallBufferListener{srv.Listener}
	}
	srv.Start()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	return &testHub{Hub: h, b: b, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

// srvFrame is any server frame.
type srvFrame struct {
	Type     string          `json:"type"`
	Room     string          `json:"room"`
	Seq      int64           `json:"seq"`
	Me       string          `json:"me"`
	MaxFrame int64           `json:"max_frame"`
	OpID     string          `json:"op_id"`
	Actor    string          `json:"actor"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload"`
	At       time.Time       `json:"at"`
	State    json.RawMessage `json:"state"`
	ReplyTo  string          `json:"reply_to"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	Detail   json.RawMessage `json:"detail"`
	Presence []personFrame   `json:"presence"`
	People   []personFrame   `json:"people"`
	Count    int             `json:"count"`
	T        json.RawMessage `json:"t"`
}

type personFrame struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Editing string `json:"editing"`
}

// client is a real gorilla/websocket client of a testHub.
type client struct {
	tb           testing.TB
	ws           *websocket.Conn
	skipPresence bool     // do not decode presence frames (cheaper with many clients)
	lines        [][]byte // frames of the last message not read yet
}

func (th *testHub) dial(tb testing.TB, id string) *client {
	return th.dialWith(tb, id, websocket.DefaultDialer)
}

// dialSession connects as id in the sign-in session session.
func (th *testHub) dialSession(tb testing.TB, id, session string) *client {
	return th.dialWith(tb, id+"&session="+url.QueryEscape(session), websocket.DefaultDialer)
}

func (th *testHub) dialWith(tb testing.TB, id string, d *websocket.Dialer) *client {
	tb.Helper()
	ws, _, err := d.Dial(th.url+"/ws?id="+id, nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { ws.Close() })
	return &client{tb: tb, ws: ws}
}

// answer returns the ack or error frame that answers op opID, skipping
// other frames.
func (c *client) answer(opID string) srvFrame {
	c.tb.Helper()
	for {
		if f := c.next(); f.OpID == opID && (f.Type == "ack" || f.Type == "error") {
			return f
		}
	}
}

// readSlowly reads c's messages at rate bytes per second, 4 KiB at a
// time, until one holds want, and fails the test on an error frame or a
// read error.
func (c *client) readSlowly(rate int, want string) {
	c.tb.Helper()
	chunk := make([]byte, 4096)
	for read := 0; ; {
		c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, r, err := c.ws.NextReader()
		var msg []byte
		for err == nil {
			var n int
			n, err = r.Read(chunk)
			msg = append(msg, chunk[:n]...)
			read += n
			time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
		}
		if err != io.EOF {
			c.tb.Fatalf("after %d bytes: %v", read, err)
		}
		if i := bytes.Index(msg, []byte(`{"type":"error"`)); i >= 0 {
			c.tb.Fatalf("after %d bytes: %s", read, msg[i:])
		}
		if bytes.Contains(msg, []byte(want)) {
			return
		}
	}
}

func (c *client) sendRaw(s string) {
	c.tb.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

func (c *client) send(f hub.Frame) {
	c.tb.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.sendRaw(string(b))
}

// next reads the next frame that is not a presence broadcast (with a
// deadline), failing the test on error. Presence frames may come at any time.
func (c *client) next() srvFrame {
	c.tb.Helper()
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			c.tb.Fatalf("read: %v", err)
		}
		if f.Type != "presence" {
			return f
		}
	}
}

func (c *client) read(timeout time.Duration) (srvFrame, error) {
	if len(c.lines) == 0 {
		c.ws.SetReadDeadline(time.Now().Add(timeout))
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return srvFrame{}, err
		}
		c.lines = bytes.Split(msg, []byte("\n")) // a message may hold several frames, a frame a line
	}
	b := c.lines[0]
	c.lines = c.lines[1:]
	if c.skipPresence && strings.HasPrefix(string(b), `{"type":"presence"`) {
		return srvFrame{Type: "presence"}, nil
	}
	var f srvFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return srvFrame{}, fmt.Errorf("decode %s: %w", b, err)
	}
	return f, nil
}

// nextOf reads the next frame of type typ (presence included), failing on
// any other frame but presence.
func (c *client) nextOf(typ string) srvFrame {
	c.tb.Helper()
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			c.tb.Fatalf("read: %v", err)
		}
		if f.Type == typ {
			return f
		}
		if f.Type != "presence" {
			c.tb.Fatalf("got frame %+v, want type %q", f, typ)
		}
	}
}

// join joins room from since and returns the catch-up frames and the joined frame.
func (c *client) join(room string, since int64) (catchUp []srvFrame, joined srvFrame) {
	c.tb.Helper()
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: since})
	for {
		f := c.next()
		switch f.Type {
		case "entry", "snapshot":
			catchUp = append(catchUp, f)
		case "joined":
			return catchUp, f
		default:
			c.tb.Fatalf("joining: unexpected frame %+v", f)
		}
	}
}

func (c *client) op(room, opID, kind string, body string) {
	c.tb.Helper()
	c.send(hub.Frame{Type: hub.TypeOp, Room: room, OpID: opID, Kind: kind, Body: json.RawMessage(body)})
}

// closeCode reads until the connection ends and returns the close code.
func (c *client) closeCode(timeout time.Duration) int {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := c.read(time.Until(deadline))
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.tb.Fatalf("connection ended without a close frame: %v", err)
	}
}

// smallBufferDialer makes clients with a tiny kernel receive buffer, so that a
// client that stops reading backs up quickly.
func smallBufferDialer() *websocket.Dialer { return bufferDialer(4096) }

// bufferDialer dials with a kernel read buffer of n bytes.
func bufferDialer(n int) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(n)
			}
			return c, nil
		},
	}
}

func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
