package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// loadConfig is what `rapporteur loadtest` is told.
type loadConfig struct {
	URL, DatabaseURL, Scenario string
	Clients, Rooms, ServerPID  int
	Serve                      bool // the server and Postgres are this run's own (-serve)
	Rate                       float64
	Duration                   time.Duration
	Behind                     int
	Mix                        string
	Window                     int // ops in flight per client (throughput)
	Writers                    int // the plain INSERT's writers (throughput)
}

// loadtest starts real WebSocket clients against a running server and
// prints latency percentiles. It signs its clients in by creating people
// and invites in the server's database (DATABASE_URL), so point it at a
// test deployment, never at a real event.
func loadtest(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	// The load generator shares the machine with the server in a test run:
	// it collects garbage as sparingly as the server does.
	defer startGCFloor(gcHeadroom, getenv("GOGC"))()
	var c loadConfig
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "the server's BASE_URL")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "the server's database, to create test people (DATABASE_URL, or a file named by DATABASE_URL_FILE)")
	fs.StringVar(&c.Scenario, "scenario", "room", "room | idle | throughput | reconnect | disk")
	fs.IntVar(&c.Clients, "clients", 80, "WebSocket clients")
	fs.IntVar(&c.Rooms, "rooms", 1, "rooms the clients are spread over (throughput)")
	fs.Float64Var(&c.Rate, "rate", 10, "ops per second per client (room); total ops/s in the room when -rate-total")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long to send")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "server process id, to read its memory (idle)")
	fs.IntVar(&c.Window, "window", 8, "ops a client has in flight, sent before their acks (throughput)")
	fs.IntVar(&c.Writers, "writers", 0, "connections writing the plain INSERTs the durable rate is set beside, 1 to 40 (throughput; default the clients, at most 32)")
	fs.IntVar(&c.Behind, "behind", 50, "entries made while the clients are away (reconnect)")
	fs.StringVar(&c.Mix, "mix", "mixed", "ops of the room scenario: mixed (updates, comments, votes, some creates) or create (creates only)")
	rateTotal := fs.Bool("rate-total", false, "-rate is the room's total, spread over the clients")
	dir := fs.String("dir", "", "the folder whose disk the disk scenario measures (default DATA_DIR, else ./data)")
	serve := fs.Bool("serve", false, "start a fresh server and private Postgres in a temporary folder for this run, and remove them after (in place of -url, -database-url, -server-pid)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Window < 1 {
		return fmt.Errorf("-window %d: a client needs at least one op in flight", c.Window)
	}
	if c.Writers < 0 || c.Writers > 40 {
		return fmt.Errorf("-writers %d: use 1 to 40 (the store's connections), or 0 for the default", c.Writers)
	}
	if c.Scenario == "disk" {
		// A property of the host: no server, no database.
		if *serve {
			return errors.New("the disk scenario starts no server: leave out -serve")
		}
		if *dir == "" {
			*dir = cmp.Or(getenv("DATA_DIR"), "./data")
		}
		return diskCheck(ctx, *dir, c.Duration, stdout)
	}
	getenv, err := withSecretFiles(getenv)
	if err != nil {
		return err
	}
	given := false // -database-url, even empty, wins over the environment
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "database-url" })
	if !given {
		c.DatabaseURL = getenv("DATABASE_URL")
	}
	if *serve {
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "url" || f.Name == "database-url" || f.Name == "server-pid" {
				clash = append(clash, "-"+f.Name)
			}
		})
		if clash != nil {
			return fmt.Errorf("-serve starts its own server: leave out %s", strings.Join(clash, " and "))
		}
		srv, err := startLoadServer(ctx, getenv, stdout)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintln(stdout, err)
			}
		}()
		c.URL, c.DatabaseURL, c.ServerPID, c.Serve = srv.URL, srv.DSN, srv.PID, true
	}
	if c.DatabaseURL == "" {
		return errors.New("loadtest needs the server's DATABASE_URL (or -database-url) to create its test people, or -serve")
	}
	if c.Mix != "mixed" && c.Mix != "create" {
		return fmt.Errorf("unknown -mix %q: use mixed or create", c.Mix)
	}
	if *rateTotal {
		c.Rate /= float64(c.Clients)
	}
	st, err := store.Open(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	lt := &loadRun{cfg: c, st: st, out: stdout}
	switch c.Scenario {
	case "room":
		return lt.room(ctx)
	case "idle":
		return lt.idle(ctx)
	case "throughput":
		return lt.throughput(ctx)
	case "reconnect":
		return lt.reconnect(ctx)
	}
	return fmt.Errorf("unknown scenario %q: use room, idle, throughput, reconnect or disk", c.Scenario)
}

type loadRun struct {
	cfg   loadConfig
	st    *store.Store
	out   io.Writer
	event domain.Event
}

// ltClient is one load-test WebSocket client.
type ltClient struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	person int64
	cookie string
	last   atomic.Int64
	rbuf   []byte // see readFrames
	// In the mixed room scenario: the client's own finding and its
	// version as far as the client's acked updates took it.
	finding int64
	version atomic.Int64
}

func (c *ltClient) send(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteJSON(v)
}

// sendRaw sends a frame already encoded.
func (c *ltClient) sendRaw(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// workshops makes n new workshops in the first event, one per room the
// run uses, so every run starts from empty rooms (small joins, no snapshot
// of an earlier run's findings).
func (lt *loadRun) workshops(ctx context.Context, n int) ([]int64, error) {
	evs, err := lt.st.Events(ctx)
	if err != nil || len(evs) == 0 {
		return nil, fmt.Errorf("the server's database has no event: %v", err)
	}
	lt.event = evs[len(evs)-1]
	var ids []int64
	for i := 0; i < n; i++ {
		var id int64
		err := lt.st.DB().NewRaw(`INSERT INTO workshops (event_id, part_id, position, name)
			SELECT ?, part_id, 1000 + coalesce((SELECT max(position) FROM workshops WHERE event_id = ?), 0), ?
			FROM workshops WHERE event_id = ? LIMIT 1 RETURNING id`,
			lt.event.ID, lt.event.ID, fmt.Sprintf("Load test room %d", i+1), lt.event.ID).Scan(ctx, &id)
		if err != nil {
			return nil, fmt.Errorf("make load-test workshop: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// connect signs n participants of workshop wid in and opens their connections.
func (lt *loadRun) connect(ctx context.Context, n int, wids []int64) ([]*ltClient, error) {
	clients := make([]*ltClient, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := lt.newClient(ctx, i, wids[i%len(wids)])
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return clients, nil
}

func (lt *loadRun) newClient(ctx context.Context, i int, wid int64) (*ltClient, error) {
	p, _, err := lt.st.AddMember(ctx, nil, lt.event.ID, store.PersonInput{Name: fmt.Sprintf("Load test %d-%d", time.Now().UnixNano(), i), Country: "FI", ActorType: "police"}, domain.RoleParticipant, wid)
	if err != nil {
		return nil, err
	}
	token, hash := auth.NewInviteToken()
	if _, err := lt.st.CreateInvite(ctx, store.Invite{EventID: lt.event.ID, PersonID: p.ID, TokenHash: hash, ExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := hc.Get(lt.cfg.URL + "/signin/" + token)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", lt.cfg.URL+"/", nil)
	var cookies []string
	for _, ck := range jar.Cookies(req.URL) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	c := &ltClient{person: p.ID, cookie: strings.Join(cookies, "; ")}
	return c, c.dial(lt.cfg.URL)
}

func (c *ltClient) dial(base string) error {
	h := http.Header{"Origin": {base}, "Cookie": {c.cookie}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", h)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	c.ws = ws
	return nil
}

// readFrames reads one message from the server: one frame or several,
// a frame a line. It reads into the client's buffer, kept from one message
// to the next (each client has one reader); frames copy what they keep.
func (c *ltClient) readFrames() ([]ltFrame, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	b := c.rbuf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	c.rbuf = b
	frames := make([]ltFrame, 0, bytes.Count(b, []byte("\n"))+1)
	for l := range bytes.SplitSeq(b, []byte("\n")) {
		frames = append(frames, scanFrame(l))
	}
	return frames, nil
}

// scanFrame picks the fields the load test reads out of one frame without
// decoding it all: on a shared machine, decoding every delivery in full
// took the load generator more CPU than the server spent sending it. The
// server writes these fields before any payload, so the first occurrence
// of each key is the frame's own.
func scanFrame(l []byte) ltFrame {
	if i := bytes.Index(l, []byte(`,"payload":`)); i >= 0 {
		l = l[:i] // the fields come first; a payload is most of an entry
	}
	str := func(key string) string { // key is `"name":"`
		i := bytes.Index(l, []byte(key))
		if i < 0 {
			return ""
		}
		v := l[i+len(key):]
		if j := bytes.IndexByte(v, '"'); j >= 0 {
			return string(v[:j])
		}
		return ""
	}
	f := ltFrame{Type: str(`"type":"`), Room: str(`"room":"`), OpID: str(`"op_id":"`), Code: str(`"code":"`)}
	if i := bytes.Index(l, []byte(`"seq":`)); i >= 0 {
		v := l[i+6:]
		j := 0
		for j < len(v) && v[j] >= '0' && v[j] <= '9' {
			j++
		}
		f.Seq, _ = strconv.ParseInt(string(v[:j]), 10, 64)
	}
	return f
}

// ltFrame is the part of a server frame the load test reads.
type ltFrame struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Seq  int64  `json:"seq"`
	OpID string `json:"op_id"`
	Code string `json:"code"`
}

// updateSuffix ends the op ids of the room scenario's updates, so that
// their acks advance the client's version of its finding.
const updateSuffix = "-u"

// ownFindings gives each client a finding of its own to edit.
func (lt *loadRun) ownFindings(ctx context.Context, wid int64, clients []*ltClient) error {
	for i, c := range clients {
		a, err := lt.st.CreateFinding(ctx, &c.person, wid, fmt.Sprintf("lt-own-%d-%d", c.person, i),
			store.FindingInput{Title: fmt.Sprintf("Practice of client %d", i), Countries: []string{"FI"}})
		if err != nil {
			return err
		}
		var f struct {
			ID      int64 `json:"id"`
			Version int64 `json:"version"`
		}
		if err := json.Unmarshal(a.Entry.Payload, &f); err != nil {
			return err
		}
		c.finding = f.ID
		c.version.Store(f.Version)
	}
	return nil
}

// roomOp is op k of client c: with -mix create always a create; mixed,
// like people at a table: 4 in 10 edits of the client's own finding (one
// of three fields in turn, so a slow ack rarely makes a conflict), 3
// comments and 2 votes or unvotes on the next client's finding, 1 create.
func (lt *loadRun) roomOp(room, id string, k int, c, next *ltClient) map[string]any {
	op := map[string]any{"type": "op", "room": room, "op_id": id}
	if lt.cfg.Mix == "create" || k%10 == 0 {
		op["kind"] = "finding.create"
		op["body"] = map[string]any{"title": "Load test finding " + id, "countries": []string{"FI"}}
		return op
	}
	switch k % 10 {
	case 1, 3, 5, 7:
		field := []string{"title", "what_done", "results"}[(k/2)%3]
		op["op_id"] = id + updateSuffix
		op["kind"], op["base"] = "finding.update", c.version.Load()
		op["body"] = map[string]any{"id": c.finding, "fields": map[string]any{field: fmt.Sprintf("Edit %d of the %s", k, field)}}
	case 2, 6, 9:
		op["kind"] = "comment"
		op["body"] = map[string]any{"finding_id": next.finding, "text": "Load test comment " + id}
	case 4:
		op["kind"] = "vote"
		op["body"] = map[string]any{"finding_id": next.finding}
	case 8:
		op["kind"] = "unvote"
		op["body"] = map[string]any{"finding_id": next.finding}
	}
	return op
}

// room: clients in one room send ops at a rate; ack and fan-out latencies.
func (lt *loadRun) room(ctx context.Context) error {
	wids, err := lt.workshops(ctx, 1)
	if err != nil {
		return err
	}
	room := store.WorkshopRoom(wids[0])
	clients, err := lt.connect(ctx, lt.cfg.Clients, wids)
	if err != nil {
		return err
	}
	var sent sync.Map // op id → *sentOp
	var mu sync.Mutex
	var perScreen []time.Duration
	var errMu sync.Mutex
	errFrames := map[string]int{}
	if lt.cfg.Mix == "mixed" {
		if err := lt.ownFindings(ctx, wids[0], clients); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		head, _ := lt.st.Head(ctx, room)
		c.send(map[string]any{"type": "join", "room": room, "since": head})
		wg.Add(1)
		go func(c *ltClient) {
			defer wg.Done()
			var f []time.Duration
			for {
				frames, err := c.readFrames()
				if err != nil {
					break
				}
				now := time.Now()
				for _, fr := range frames {
					o, _ := sent.Load(fr.OpID)
					op, _ := o.(*sentOp)
					switch fr.Type {
					case "ack":
						if op != nil {
							op.acked.Store(max(int64(now.Sub(op.at)), 1))
						}
						if strings.HasSuffix(fr.OpID, updateSuffix) {
							c.version.Add(1)
						}
					case "entry":
						if op != nil {
							f = append(f, op.delivered(now))
						}
					case "error":
						if op != nil {
							op.refused.Store(true)
						}
						errMu.Lock()
						errFrames[fr.Code]++
						errMu.Unlock()
					}
				}
			}
			mu.Lock()
			perScreen = append(perScreen, f...)
			mu.Unlock()
		}(c)
	}
	time.Sleep(time.Second) // joins settle
	fmt.Fprintf(lt.out, "room %s: %d clients, %.3g ops/s each (%.4g in all), %s, %s ops\n", room, len(clients), lt.cfg.Rate, lt.cfg.Rate*float64(len(clients)), lt.cfg.Duration, lt.cfg.Mix)
	if _, err := lt.st.DB().ExecContext(ctx, "CREATE TABLE IF NOT EXISTS loadtest_canary (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return fmt.Errorf("commit canary: %w", err)
	}
	var ops []*sentOp
	var sendFailed atomic.Int64
	start := time.Now()
	deadline := start.Add(lt.cfg.Duration)
	canary := lt.commitCanary(ctx, deadline)
	var sendWG sync.WaitGroup
	for i, c := range clients {
		sendWG.Add(1)
		go func(i int, c *ltClient) {
			defer sendWG.Done()
			interval := time.Duration(float64(time.Second) / lt.cfg.Rate)
			// Open loop: op k is due at a fixed time, however late the last was.
			first := start.Add(time.Duration(i) * interval / time.Duration(len(clients)))
			for k := 0; ; k++ {
				due := first.Add(time.Duration(k) * interval)
				if due.After(deadline) {
					return
				}
				time.Sleep(time.Until(due))
				op := lt.roomOp(room, fmt.Sprintf("lt-%d-%d-%d", c.person, i, k), k, c, clients[(i+1)%len(clients)])
				o := &sentOp{at: time.Now()}
				sent.Store(op["op_id"], o)
				mu.Lock()
				ops = append(ops, o)
				mu.Unlock()
				if c.send(op) != nil {
					sendFailed.Add(1) // never acked: counted as such below
				}
			}
		}(i, c)
	}
	sendWG.Wait()
	// The last entries arrive: wait until every op is answered and every
	// acked one has reached every screen, or 10 s have passed.
	settled := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range ops {
			if !o.refused.Load() && (o.acked.Load() == 0 || int(o.screens.Load()) < len(clients)) {
				return false
			}
		}
		return true
	}
	for end := time.Now().Add(roomDrain); !settled() && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range clients {
		c.ws.Close()
	}
	wg.Wait()
	r := roomOutcome(ops, len(clients))
	fmt.Fprintf(lt.out, "sent %d ops (%.0f/s), %d failed to send, %d refused, error frames by code: %v\n", len(ops), float64(len(ops))/lt.cfg.Duration.Seconds(), sendFailed.Load(), r.refused, errFrames)
	fmt.Fprintf(lt.out, "ack             %s\n", percentiles(r.acks))
	fmt.Fprintf(lt.out, "fan-out to all  %s (op sent → its entry read by the last of %d screens)\n", percentiles(r.toAll), len(clients))
	fmt.Fprintf(lt.out, "fan-out         %s (%d deliveries; expected %d: op sent → its entry read by a screen)\n", percentiles(perScreen), len(perScreen), (len(ops)-r.refused)*len(clients))
	commits, err := canary()
	if err != nil {
		return err
	}
	stalled, _ := stalls(commits)
	fmt.Fprintf(lt.out, "commits         %s (a one-row INSERT every %s meanwhile; %d over %s)\n", percentiles(commits), canaryEvery, stalled, diskStall)
	if r.unacked > 0 || r.short > 0 {
		return fmt.Errorf("of %d ops sent, %d were never acked and %d acked ones did not reach every screen within %s of the end (counted as never above)", len(ops), r.unacked, r.short, roomDrain)
	}
	return nil
}

// roomFigures are the room scenario's samples, one per op sent but for
// the refused ones: an op never acked, or whose entry did not reach
// every screen, is a sample of never, so no percentile can leave it out.
type roomFigures struct {
	acks, toAll             []time.Duration
	refused, unacked, short int // short: acked, but its entry missed a screen
}

func roomOutcome(ops []*sentOp, screens int) roomFigures {
	var r roomFigures
	for _, o := range ops {
		if o.refused.Load() {
			r.refused++
			continue
		}
		a, l := time.Duration(o.acked.Load()), time.Duration(o.last.Load())
		switch {
		case a == 0:
			a, l = never, never
			r.unacked++
		case int(o.screens.Load()) < screens:
			l = never
			r.short++
		}
		r.acks, r.toAll = append(r.acks, a), append(r.toAll, l)
	}
	return r
}

// roomDrain is how long the room scenario waits, once it has sent its
// last op, for the answers and entries still on their way.
const roomDrain = 10 * time.Second

// sentOp is what the room scenario learns of one op it sent: when it was
// sent, how long until its ack or refusal, and each delivery of its entry.
type sentOp struct {
	at      time.Time
	acked   atomic.Int64 // ns from sending to the ack; 0 until then
	refused atomic.Bool  // answered with an error frame
	last    atomic.Int64 // ns from sending to the latest delivery of its entry
	screens atomic.Int32 // deliveries of its entry
}

// delivered counts one delivery of the op's entry, read at now, and
// returns how long it took.
func (o *sentOp) delivered(now time.Time) time.Duration {
	d := max(int64(now.Sub(o.at)), 1)
	o.screens.Add(1)
	for {
		l := o.last.Load()
		if d <= l || o.last.CompareAndSwap(l, d) {
			return time.Duration(d)
		}
	}
}

// canaryEvery is how often the room scenario's commit canary commits.
const canaryEvery = 50 * time.Millisecond

// commitCanary commits a one-row INSERT into loadtest_canary (made by
// the caller) every canaryEvery until deadline, timing each, and returns
// a function that waits for the end, drops the table and returns the
// times. An ack waits for its op's commit: a room's ack tail with slow
// canary commits beside it is the database's (most often its disk's),
// not the server's.
func (lt *loadRun) commitCanary(ctx context.Context, deadline time.Time) func() ([]time.Duration, error) {
	done := make(chan error, 1)
	var ds []time.Duration
	go func() {
		db := lt.st.DB()
		err := func() error {
			t := time.NewTicker(canaryEvery)
			defer t.Stop()
			for time.Now().Before(deadline) {
				start := time.Now()
				if _, err := db.ExecContext(ctx, "INSERT INTO loadtest_canary DEFAULT VALUES"); err != nil {
					return fmt.Errorf("commit canary: %w", err)
				}
				ds = append(ds, time.Since(start))
				select {
				case <-t.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}()
		// Dropped before the wait ends: the run may end right after it.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, derr := db.ExecContext(dctx, "DROP TABLE IF EXISTS loadtest_canary"); err == nil && derr != nil {
			err = fmt.Errorf("commit canary: drop its table: %w", derr)
		}
		done <- err
	}()
	return func() ([]time.Duration, error) {
		err := <-done // ds is the goroutine's until then
		return ds, err
	}
}

// idle: many idle connections; the server's memory per connection.
func (lt *loadRun) idle(ctx context.Context) error {
	if lt.cfg.ServerPID == 0 {
		return errors.New("idle needs -server-pid to read the server's memory")
	}
	wids, err := lt.workshops(ctx, 1)
	if err != nil {
		return err
	}
	before, err := rssKiB(lt.cfg.ServerPID)
	if err != nil {
		return err
	}
	start := time.Now()
	clients, err := lt.connect(ctx, lt.cfg.Clients, wids)
	if err != nil {
		return err
	}
	room := store.WorkshopRoom(wids[0])
	for _, c := range clients {
		c.send(map[string]any{"type": "join", "room": room, "since": 0})
		go func(c *ltClient) {
			for {
				if _, err := c.readFrames(); err != nil {
					return
				}
			}
		}(c)
	}
	time.Sleep(5 * time.Second)
	after, err := rssKiB(lt.cfg.ServerPID)
	if err != nil {
		return err
	}
	fmt.Fprintf(lt.out, "%d idle connections (joined, connected in %s): server RSS %d → %d KiB, %.1f KiB per connection\n",
		len(clients), time.Since(start).Round(time.Millisecond), before, after, float64(after-before)/float64(len(clients)))
	for _, c := range clients {
		c.ws.Close()
	}
	return nil
}

// throughput: clients over many rooms send as fast as acks come back
// (a window of ops in flight each); durable ops/s, next to a plain
// one-row INSERT per transaction on the same database, measured before
// and after (a shared host's speed drifts within minutes: the two say by
// how much).
func (lt *loadRun) throughput(ctx context.Context) error {
	writers := cmp.Or(lt.cfg.Writers, min(lt.cfg.Clients, 32))
	// Unless told the writers, the one-writer rate is measured too: each
	// commit waited for alone, the rate that committing several ops in one
	// transaction is to beat; many writers let Postgres group their commits.
	alone := lt.cfg.Writers == 0 && writers > 1
	var aloneBefore, aloneAfter float64
	var err error
	if alone {
		if aloneBefore, err = plainInsertRate(ctx, lt.st, 1, lt.cfg.Duration/4); err != nil {
			return err
		}
	}
	cpu0, cpuErr := readProcTimes()
	before, err := plainInsertRate(ctx, lt.st, writers, lt.cfg.Duration/4)
	if err != nil {
		return err
	}
	cpu1, _ := readProcTimes()
	wids, err := lt.workshops(ctx, lt.cfg.Rooms)
	if err != nil {
		return err
	}
	clients, err := lt.connect(ctx, lt.cfg.Clients, wids)
	if err != nil {
		return err
	}
	var acked, dropped atomic.Int64
	cpu2, _ := readProcTimes()
	deadline := time.Now().Add(lt.cfg.Duration)
	cpuEnd := make(chan procTimes, 1)
	time.AfterFunc(lt.cfg.Duration, func() { pt, _ := readProcTimes(); cpuEnd <- pt })
	var wg sync.WaitGroup
	for i, c := range clients {
		room := store.WorkshopRoom(wids[i%len(wids)])
		c.send(map[string]any{"type": "join", "room": room, "since": -1})
		wg.Add(1)
		go func(i int, c *ltClient) {
			defer wg.Done()
			window := make(chan struct{}, lt.cfg.Window)
			head := fmt.Sprintf(`{"type":"op","room":%q,"op_id":"tp-%d-`, room, c.person)
			const tail = `","kind":"finding.create","body":{"title":"Throughput finding","countries":["FI"]}}`
			var frame []byte
			gone := make(chan struct{})
			go func() {
				defer close(gone)
				for {
					frames, err := c.readFrames()
					if err != nil {
						return
					}
					for _, fr := range frames {
						if fr.Type == "ack" || (fr.Type == "error" && fr.Code != "") {
							if fr.Type == "ack" && time.Now().Before(deadline) {
								acked.Add(1)
							}
							select {
							case <-window:
							default:
							}
						}
					}
				}
			}()
			for k := 0; time.Now().Before(deadline); k++ {
				select {
				case window <- struct{}{}:
				case <-gone:
					dropped.Add(1)
					return
				case <-time.After(time.Until(deadline)):
					continue
				}
				// Encoded by hand: a map through encoding/json cost the
				// load generator a tenth of its CPU, which it takes from the
				// server and Postgres on a shared machine.
				frame = append(append(append(frame[:0], head...), strconv.Itoa(k)...), tail...)
				c.sendRaw(frame)
			}
			c.ws.Close()
		}(i, c)
	}
	wg.Wait()
	cpu3 := <-cpuEnd
	// The server still indexes what it was sent: measured meanwhile, the
	// plain rate would be lower than it is.
	quiet := lt.waitQuiet(30 * time.Second)
	cpu4, _ := readProcTimes()
	after, err := plainInsertRate(ctx, lt.st, writers, lt.cfg.Duration/4)
	if err != nil {
		return err
	}
	cpu5, _ := readProcTimes()
	if alone {
		if aloneAfter, err = plainInsertRate(ctx, lt.st, 1, lt.cfg.Duration/4); err != nil {
			return err
		}
	}
	plain := (before + after) / 2
	rate := float64(acked.Load()) / lt.cfg.Duration.Seconds()
	fmt.Fprintf(lt.out, "durable ops/s over %d rooms, %d clients, %d ops in flight each: %.0f acked/s (%d clients dropped)\n", len(wids), len(clients), lt.cfg.Window, rate, dropped.Load())
	who := fmt.Sprintf("%d writers", writers)
	if writers == 1 {
		who = "1 writer"
	}
	fmt.Fprintf(lt.out, "plain one-row INSERT per transaction, %s: %.0f/s (%.0f before, %.0f after, once the server was quiet: %s)\nratio: %.2f\n",
		who, plain, before, after, quiet.Round(100*time.Millisecond), rate/plain)
	if alone {
		one := (aloneBefore + aloneAfter) / 2
		fmt.Fprintf(lt.out, "plain one-row INSERT per transaction, 1 writer: %.0f/s (%.0f before, %.0f after)\nratio against 1 writer: %.2f\n",
			one, aloneBefore, aloneAfter, rate/one)
	}
	if cpuErr != nil {
		fmt.Fprintf(lt.out, "(no CPU split: %v)\n", cpuErr)
		return nil
	}
	lt.printCPU("durable op", cpuSince(cpu2, cpu3, lt.cfg.ServerPID, lt.cfg.Serve), rate*lt.cfg.Duration.Seconds(), lt.cfg.Duration)
	b, a := cpuSince(cpu0, cpu1, lt.cfg.ServerPID, lt.cfg.Serve), cpuSince(cpu4, cpu5, lt.cfg.ServerPID, lt.cfg.Serve)
	both := cpuSplit{Load: b.Load + a.Load, Server: b.Server + a.Server, Postgres: b.Postgres + a.Postgres}
	lt.printCPU("plain INSERT", both, plain*(lt.cfg.Duration/2).Seconds(), lt.cfg.Duration/2)
	return nil
}

// waitQuiet waits until the server and its Postgres (as far as they are
// known) use under a twentieth of a core, for at most limit, and returns how
// long that took; without either known it waits two seconds.
func (lt *loadRun) waitQuiet(limit time.Duration) time.Duration {
	start := time.Now()
	const window = 250 * time.Millisecond
	if lt.cfg.ServerPID <= 0 && !lt.cfg.Serve {
		time.Sleep(2 * time.Second)
		return time.Since(start)
	}
	for time.Since(start) < limit {
		a, err := readProcTimes()
		time.Sleep(window)
		b, err2 := readProcTimes()
		if err != nil || err2 != nil {
			break
		}
		if s := cpuSince(a, b, lt.cfg.ServerPID, lt.cfg.Serve); s.Server+s.Postgres < window/20 {
			break
		}
	}
	return time.Since(start)
}

// printCPU prints the CPU time per op of each part of the run that is
// known, and the cores they kept busy: on a shared machine, the figure
// that says where a rate's limit is.
func (lt *loadRun) printCPU(what string, s cpuSplit, ops float64, d time.Duration) {
	if ops <= 0 {
		return
	}
	per := func(t time.Duration) string {
		return fmt.Sprintf("%.0f µs", float64(t.Microseconds())/ops)
	}
	line := "CPU per " + what + ": "
	if lt.cfg.ServerPID > 0 {
		line += "server " + per(s.Server) + ", "
	}
	if lt.cfg.Serve {
		line += "Postgres " + per(s.Postgres) + ", "
	}
	all := s.Load + s.Server + s.Postgres
	fmt.Fprintf(lt.out, "%sload generator %s (%.2f cores busy of %d)\n", line, per(s.Load), all.Seconds()/d.Seconds(), runtime.NumCPU())
}

// plainInsertRate is the physical limit: one-row INSERTs, each its own transaction.
func plainInsertRate(ctx context.Context, st *store.Store, writers int, d time.Duration) (float64, error) {
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE IF NOT EXISTS loadtest_plain (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"); err != nil {
		return 0, err
	}
	defer st.DB().ExecContext(ctx, "DROP TABLE IF EXISTS loadtest_plain")
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := st.DB().ExecContext(ctx, "INSERT INTO loadtest_plain (payload) VALUES (?)", `{"title":"x"}`); err != nil {
					errs <- err // a failed insert would lower the rate the durable one is set beside
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("plain INSERT: %w", err)
	}
	return float64(n.Load()) / d.Seconds(), nil
}

// reconnect: clients joined, all drop, the room moves on, all reconnect at
// once and resume; the time until every one has caught up.
func (lt *loadRun) reconnect(ctx context.Context) error {
	wids, err := lt.workshops(ctx, 1)
	if err != nil {
		return err
	}
	room := store.WorkshopRoom(wids[0])
	clients, err := lt.connect(ctx, lt.cfg.Clients, wids)
	if err != nil {
		return err
	}
	head, _ := lt.st.Head(ctx, room)
	for _, c := range clients {
		c.ws.Close()
	}
	for i := 0; i < lt.cfg.Behind; i++ {
		if _, err := lt.st.CreateFinding(ctx, &clients[0].person, wids[0], fmt.Sprintf("rc-%d-%d", time.Now().UnixNano(), i), store.FindingInput{Title: "While away"}); err != nil {
			return err
		}
	}
	target := head + int64(lt.cfg.Behind)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, c := range clients {
		wg.Add(1)
		go func(c *ltClient) {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				if err := c.dial(lt.cfg.URL); err == nil {
					break
				}
				if attempt > 50 {
					failed.Add(1)
					return
				}
				time.Sleep(time.Duration(10+attempt*20) * time.Millisecond)
			}
			c.send(map[string]any{"type": "join", "room": room, "since": head})
			for {
				frames, err := c.readFrames()
				if err != nil {
					failed.Add(1)
					return
				}
				for _, fr := range frames {
					if (fr.Type == "joined" || fr.Type == "entry") && fr.Seq >= target {
						c.ws.Close()
						return
					}
				}
			}
		}(c)
	}
	wg.Wait()
	fmt.Fprintf(lt.out, "%d clients reconnected and caught up %d entries in %s (%d failed)\n",
		len(clients), lt.cfg.Behind, time.Since(start).Round(time.Millisecond), failed.Load())
	return nil
}

// never is the time of something that did not happen by the end of a
// run (an op never acked): a sample that sorts last and prints as "never".
const never = time.Duration(math.MaxInt64)

// percentiles formats p50/p95/p99/max of ds.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	slices.Sort(ds)
	show := func(d time.Duration) string {
		if d == never {
			return "never"
		}
		return d.Round(10 * time.Microsecond).String()
	}
	p := func(q float64) string { return show(ds[min(len(ds)-1, int(q*float64(len(ds))))]) }
	n := fmt.Sprintf("n=%d", len(ds))
	if k := len(ds) - sort.Search(len(ds), func(i int) bool { return ds[i] == never }); k > 0 {
		n += fmt.Sprintf(", %d never", k)
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (%s)", p(0.50), p(0.95), p(0.99), show(ds[len(ds)-1]), n)
}

// rssKiB reads a process's resident memory from /proc.
func rssKiB(pid int) (int64, error) {
	if runtime.GOOS != "linux" {
		return 0, errors.New("reading another process's memory needs Linux /proc")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read server memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
