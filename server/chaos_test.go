package main

// A randomized chaos test, written from hub/PROTOCOL.md alone (by a
// review, which found nothing with it): clients that queue ops, drop their
// connection abruptly (also mid-frame, or right after an op), hop between
// two server processes, rejoin with their last seq and resend every
// unsettled op with the same op id, while the database fails some log
// writes. Nothing acked may be lost, nothing applied twice, and every
// client must end with the database's state.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/pgtest"
	"github.com/rapporteur/rapporteur/server/store"
)

type chaosOp struct {
	id       string
	kind     string
	base     int64
	body     map[string]any
	needSend bool
	out      int // copies sent on the current connection, unanswered
	settled  bool
	ackSeq   int64 // 0 when settled by its entry only
	rejected string
	sends    int
	answers  []string
}

type chaosClient struct {
	t        *testing.T
	name     string
	idx      int
	m        member
	bases    []string
	room     string
	rng      *rand.Rand
	rap      bool
	clientID string
	tally    *chaosTally

	c        *client
	joined   bool
	joinAt   time.Time
	lastSeq  int64
	state    liveState
	seen     []frame // entries applied, in order
	queue    []*chaosOp
	byID     map[string]*chaosOp
	resendAt time.Time
	paceTil  time.Time
	lastSend time.Time
	n        int
	problems []string
	drops    int
	dupes    int
	snaps    int
	log      []string
}

func (cc *chaosClient) problem(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	cc.problems = append(cc.problems, s)
}

func (cc *chaosClient) note(format string, args ...any) {
	cc.log = append(cc.log, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

func (cc *chaosClient) connect() {
	for attempt := 0; ; attempt++ {
		base := cc.bases[cc.rng.IntN(len(cc.bases))]
		c, err := cc.m.dial(base)
		if err == nil {
			cc.c = c
			cc.joined = false
			for _, o := range cc.queue {
				o.out = 0
				if !o.settled && o.rejected == "" {
					o.needSend = true
				}
			}
			cc.resendAt = time.Time{}
			cc.note("connected to %s, join since %d", base, cc.lastSeq)
			cc.write(map[string]any{"type": "join", "room": cc.room, "since": cc.lastSeq})
			cc.joinAt = time.Now()
			return
		}
		cc.note("dial: %v", err)
		time.Sleep(time.Duration(50+cc.rng.IntN(200)) * time.Millisecond)
		if attempt > 200 {
			cc.problem("cannot connect: %v", err)
			return
		}
	}
}

// write sends v; a failed write is a dropped connection, seen by the reader.
func (cc *chaosClient) write(v any) bool {
	if cc.c == nil {
		return false
	}
	cc.c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return cc.c.ws.WriteJSON(v) == nil
}

// drop closes the connection without a close frame, sometimes in the
// middle of a frame, sometimes right after an op.
func (cc *chaosClient) drop() {
	if cc.c == nil {
		return
	}
	cc.drops++
	raw := cc.c.ws.UnderlyingConn()
	switch cc.rng.IntN(3) {
	case 0: // mid-frame: a header promising more than comes
		o := cc.newOp()
		payload, _ := json.Marshal(cc.frameOf(o))
		// The op is kept as unsent: its frame never fully arrived.
		cut := 1 + cc.rng.IntN(len(payload)-1)
		raw.Write(maskedFrameHead(payload, cut))
		cc.note("drop mid-frame (op %s cut at %d/%d)", o.id, cut, len(payload))
	case 1: // right after a whole op: its answer is lost
		o := cc.newOp()
		if cc.joined {
			cc.sendOp(o)
		}
		cc.note("drop after op %s", o.id)
	default:
		cc.note("drop")
	}
	raw.Close()
	// Frames received before the drop are handled, as a client would.
	for fr := range cc.c.frames {
		cc.handle(fr)
	}
	cc.c = nil
}

// maskedFrameHead is a masked text frame of payload, cut after cut
// payload bytes.
func maskedFrameHead(payload []byte, cut int) []byte {
	var b []byte
	b = append(b, 0x81)
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	b = append(b, mask...)
	for i := 0; i < cut; i++ {
		b = append(b, payload[i]^mask[i%4])
	}
	return b
}

func (cc *chaosClient) frameOf(o *chaosOp) map[string]any {
	m := map[string]any{"type": "op", "room": cc.room, "op_id": o.id, "kind": o.kind, "body": o.body, "client": cc.clientID}
	if o.base > 0 {
		m["base"] = o.base
	}
	return m
}

func (cc *chaosClient) sendOp(o *chaosOp) {
	o.needSend = false
	o.out++
	o.sends++
	cc.lastSend = time.Now()
	cc.write(cc.frameOf(o))
}

// newOp makes an op from the client's state and queues it.
func (cc *chaosClient) newOp() *chaosOp {
	cc.n++
	o := &chaosOp{id: fmt.Sprintf("%s-%d-%x", cc.name, cc.n, cc.rng.Uint64()), needSend: true}
	var ids []int64
	for id := range cc.state.findings {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	r := cc.rng.Float64()
	if len(ids) == 0 || r < 0.12 {
		o.kind, o.body = "finding.create", map[string]any{"title": "Made by " + o.id}
	} else {
		fid := ids[cc.rng.IntN(len(ids))]
		if cc.rng.IntN(10) < 7 { // hot findings: the newest few
			fid = ids[len(ids)-1-cc.rng.IntN(min(3, len(ids)))]
		}
		fnd := cc.state.findings[fid]
		version := int64(fnd["version"].(float64))
		switch {
		case r < 0.45:
			field := []string{"title", "results", "what_done"}[cc.rng.IntN(3)]
			o.kind, o.base = "finding.update", version
			o.body = map[string]any{"id": fid, "fields": map[string]any{field: field + " by " + o.id}}
		case r < 0.6:
			o.kind, o.body = "vote", map[string]any{"finding_id": fid}
		case r < 0.68:
			o.kind, o.body = "unvote", map[string]any{"finding_id": fid}
		case r < 0.70 && os.Getenv("CHAOS_DELETE") != "":
			o.kind, o.base = "finding.delete", version
			o.body = map[string]any{"finding_id": fid}
		case r < 0.85 || !cc.rap:
			o.kind, o.body = "comment", map[string]any{"finding_id": fid, "text": "Comment " + o.id}
		default:
			o.kind, o.base = "key.mark", version
			if fnd["is_key"] == true {
				o.kind = "key.unmark"
			}
			o.body = map[string]any{"finding_id": fid}
		}
	}
	cc.queue = append(cc.queue, o)
	cc.byID[o.id] = o
	return o
}

func (cc *chaosClient) inFlight() int {
	n := 0
	for _, o := range cc.queue {
		n += o.out
	}
	return n
}

// pump sends, in queue order, the ops that need sending.
func (cc *chaosClient) pump() {
	if cc.c == nil || !cc.joined || time.Now().Before(cc.resendAt) {
		return
	}
	fl := cc.inFlight()
	for _, o := range cc.queue {
		if o.settled || o.rejected != "" || !o.needSend {
			continue
		}
		if o.out > 0 || fl >= 16 {
			return // keep order: wait
		}
		if time.Now().Before(cc.paceTil) && time.Since(cc.lastSend) < 70*time.Millisecond {
			return
		}
		cc.sendOp(o)
		fl++
	}
}

func (cc *chaosClient) settle(o *chaosOp, seq int64, how string) {
	if o.settled {
		if how == "ack" && o.ackSeq != 0 && o.ackSeq != seq {
			cc.problem("op %s acked twice with different seqs %d and %d", o.id, o.ackSeq, seq)
		}
		if how == "ack" {
			o.ackSeq = seq
		}
		if how == "entry" && o.ackSeq != 0 && o.ackSeq != seq {
			cc.problem("op %s acked at %d, its entry at %d", o.id, o.ackSeq, seq)
		}
		return
	}
	if o.rejected != "" {
		cc.note("op %s settled by %s after it was refused %s", o.id, how, o.rejected)
		o.rejected = ""
	}
	o.settled = true
	if how == "ack" {
		o.ackSeq = seq
	}
}

func (cc *chaosClient) handle(fr frame) {
	switch fr.Type {
	case "entry":
		if fr.Room != cc.room {
			return
		}
		if fr.Seq <= cc.lastSeq {
			cc.dupes++
			return
		}
		if fr.Seq != cc.lastSeq+1 {
			cc.problem("gap: entry seq %d after %d (joined=%v)", fr.Seq, cc.lastSeq, cc.joined)
			// rejoin, as the protocol says
			cc.joined = false
			cc.write(map[string]any{"type": "join", "room": cc.room, "since": cc.lastSeq})
			return
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					cc.problem("entry %d cannot be applied: %v", fr.Seq, r)
				}
			}()
			if fr.Kind == "finding.delete" {
				var p struct {
					ID int64 `json:"id"`
				}
				json.Unmarshal(fr.Payload, &p)
				delete(cc.state.findings, p.ID)
				for id, c := range cc.state.comments {
					if strings.HasPrefix(c, fmt.Sprintf("%d: ", p.ID)) {
						delete(cc.state.comments, id)
					}
				}
				return
			}
			cc.state.apply(panicTB{cc.t}, fr)
		}()
		cc.lastSeq = fr.Seq
		cc.seen = append(cc.seen, fr)
		if o := cc.byID[fr.OpID]; o != nil {
			cc.settle(o, fr.Seq, "entry")
		}
	case "snapshot":
		if fr.Room != cc.room {
			return
		}
		cc.snaps++
		if fr.Seq < cc.lastSeq {
			cc.problem("snapshot at %d below the seq held %d", fr.Seq, cc.lastSeq)
		}
		var st struct {
			Findings []json.RawMessage `json:"findings"`
			Comments []struct {
				ID        int64  `json:"id"`
				FindingID int64  `json:"finding_id"`
				Body      string `json:"body"`
			} `json:"comments"`
		}
		if err := json.Unmarshal(fr.State, &st); err != nil {
			cc.problem("snapshot: %v", err)
			return
		}
		ns := liveState{findings: map[int64]map[string]any{}, comments: map[int64]string{}}
		for _, raw := range st.Findings {
			m := jsonObject(panicTB{cc.t}, raw)
			ns.findings[int64(m["id"].(float64))] = m
		}
		for _, c := range st.Comments {
			ns.comments[c.ID] = fmt.Sprintf("%d: %s", c.FindingID, c.Body)
		}
		cc.state = ns
		cc.lastSeq = fr.Seq
		cc.seen = append(cc.seen, fr)
	case "joined":
		if fr.Seq != cc.lastSeq {
			cc.problem("joined at %d but holds %d", fr.Seq, cc.lastSeq)
		}
		cc.joined = true
		cc.note("joined at %d", fr.Seq)
	case "ack":
		o := cc.byID[fr.OpID]
		if o == nil {
			cc.problem("ack for unknown op %s", fr.OpID)
			return
		}
		if o.out > 0 {
			o.out--
		}
		o.answers = append(o.answers, fmt.Sprintf("ack@%d", fr.Seq))
		cc.settle(o, fr.Seq, "ack")
	case "error":
		if fr.OpID == "" {
			cc.note("error without op id: %s %s", fr.Code, fr.Message)
			if !cc.joined && (fr.Code == "unavailable" || fr.Code == "rate_limited" || fr.Code == "internal") {
				time.Sleep(300 * time.Millisecond)
				cc.write(map[string]any{"type": "join", "room": cc.room, "since": cc.lastSeq})
			} else if !cc.joined {
				cc.problem("join refused: %s %s", fr.Code, fr.Message)
			}
			return
		}
		o := cc.byID[fr.OpID]
		if o == nil {
			cc.problem("error for unknown op %s", fr.OpID)
			return
		}
		if o.out > 0 {
			o.out--
		}
		var d struct {
			HeldBack   bool  `json:"held_back"`
			RetryAfter int64 `json:"retry_after_ms"`
		}
		json.Unmarshal(fr.Detail, &d)
		o.answers = append(o.answers, fr.Code+map[bool]string{true: "/held", false: ""}[d.HeldBack])
		cc.tally.code(fr.Code + map[bool]string{true: "/held", false: ""}[d.HeldBack])
		if o.settled {
			return
		}
		switch fr.Code {
		case "unavailable", "internal", "rate_limited":
			// resend it and every later unsettled op, in order
			found := false
			for _, q := range cc.queue {
				if q == o {
					found = true
				}
				if found && !q.settled && q.rejected == "" {
					q.needSend = true
				}
			}
			wait := time.Duration(100+cc.rng.IntN(200)) * time.Millisecond
			if d.RetryAfter > 0 {
				wait = time.Duration(d.RetryAfter)*time.Millisecond + 20*time.Millisecond
			}
			if fr.Code == "rate_limited" {
				cc.paceTil = time.Now().Add(3 * time.Second)
			}
			if t := time.Now().Add(wait); t.After(cc.resendAt) {
				cc.resendAt = t
			}
		case "conflict", "invalid", "forbidden", "not_found":
			if o.out == 0 {
				o.rejected = fr.Code + ": " + fr.Message
			} else {
				o.rejected = fr.Code + " (another copy out): " + fr.Message
			}
		default:
			cc.problem("op %s: unexpected error %s %s", o.id, fr.Code, fr.Message)
			o.rejected = fr.Code
		}
	}
}

// run is the client's loop until stop; then it settles everything.
func (cc *chaosClient) run(stop <-chan struct{}, chaos bool) {
	cc.connect()
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		if cc.c == nil {
			cc.connect()
			if cc.c == nil {
				return
			}
		}
		select {
		case fr, ok := <-cc.c.frames:
			if !ok {
				cc.note("connection closed by server: %v", <-cc.c.closed)
				cc.c = nil
				time.Sleep(time.Duration(cc.rng.IntN(100)) * time.Millisecond)
				continue
			}
			cc.handle(fr)
			cc.pump()
		case <-tick.C:
			if !cc.joined && time.Since(cc.joinAt) > 10*time.Second {
				cc.problem("join not answered in 10 s")
				cc.joinAt = time.Now()
			}
			if chaos {
				switch r := cc.rng.Float64(); {
				case r < 0.006:
					cc.drop()
					time.Sleep(time.Duration(cc.rng.IntN(150)) * time.Millisecond)
					continue
				case r < 0.009: // a burst
					for range 10 + cc.rng.IntN(30) {
						cc.newOp()
					}
				case r < 0.2:
					cc.newOp()
				}
			}
			cc.pump()
		case <-stop:
			return
		}
	}
}

func (cc *chaosClient) unsettled() []*chaosOp {
	var u []*chaosOp
	for _, o := range cc.queue {
		if !o.settled && o.rejected == "" {
			u = append(u, o)
		}
	}
	return u
}

// finish keeps the client connected until its ops are all answered and
// it holds the log up to head.
func (cc *chaosClient) finish(head func() int64, deadline time.Time) {
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if cc.c == nil {
			cc.connect()
			if cc.c == nil {
				return
			}
		}
		if cc.joined && len(cc.unsettled()) == 0 && cc.inFlight() == 0 && cc.lastSeq >= head() {
			return
		}
		select {
		case fr, ok := <-cc.c.frames:
			if !ok {
				cc.c = nil
				continue
			}
			cc.handle(fr)
			cc.pump()
		case <-tick.C:
			cc.pump()
		}
	}
	cc.problem("not settled by the deadline: %d unsettled, %d in flight, holds %d of %d", len(cc.unsettled()), cc.inFlight(), cc.lastSeq, head())
	for _, o := range cc.unsettled() {
		cc.problem("  unsettled %s %s sends=%d answers=%v", o.id, o.kind, o.sends, o.answers)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

// TestChaosClientsLoseNothing: see the top of the file. A short run by
// default; longer and harder by hand, with CHAOS_ROUNDS, CHAOS_MS (a
// round's chaos, ms), CHAOS_CLIENTS, CHAOS_SEED (printed by every run),
// CHAOS_FAIL and CHAOS_SLOW (per cent of log writes that fail, or wait
// CHAOS_SLOW_MS), CHAOS_TIMEOUT (the database's read timeout, e.g. 2s),
// CHAOS_DELETE (deletes too: snapshot resumes), CHAOS_KILL (the second
// process is killed with SIGKILL every 1–3.5 s and started again) and
// CHAOS_ONE (one process). E.g. CHAOS_KILL=1 CHAOS_DELETE=1 CHAOS_FAIL=10
// CHAOS_SLOW=2 CHAOS_TIMEOUT=2s CHAOS_ROUNDS=3 CHAOS_MS=10000.
func TestChaosClientsLoseNothing(t *testing.T) {
	ctx := context.Background()
	tally := &chaosTally{codes: map[string]int{}}
	dsn := pg.NewDB(t)
	if os.Getenv("CHAOS_TIMEOUT") != "" {
		dsn = pgtest.WithParams(dsn, "read_timeout="+os.Getenv("CHAOS_TIMEOUT"))
	}
	f := MustFixture(t, map[string]string{"DATABASE_URL": dsn})
	w := &f.ws[3]
	var otherURL string
	var killer func(stop <-chan struct{})
	if os.Getenv("CHAOS_KILL") != "" {
		bin := mustBuild(t)
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		proc := mustRunProcess(t, bin, addr, dsn)
		otherURL = proc.URL
		var mu sync.Mutex
		killer = func(stop <-chan struct{}) {
			rng := rand.New(rand.NewPCG(1, 2))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(1000+rng.IntN(2500)) * time.Millisecond):
				}
				mu.Lock()
				proc.cmd.Process.Signal(syscall.SIGKILL)
				proc.cmd.Wait()
				time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
				proc = mustRunProcess(t, bin, addr, dsn)
				tally.kills.Add(1)
				mu.Unlock()
			}
		}
	} else {
		otherURL = MustStart(t, map[string]string{"DATABASE_URL": dsn, "NO_DEMO": "1"}).URL
	}
	room := store.WorkshopRoom(w.ID)
	// Injected failures: a log insert fails (an error) or is slow, at random.
	failPct, slowPct := envInt("CHAOS_FAIL", 5), envInt("CHAOS_SLOW", 0)
	slowMS := envInt("CHAOS_SLOW_MS", 2500)
	if failPct > 0 || slowPct > 0 {
		for _, q := range []string{
			fmt.Sprintf(`CREATE FUNCTION test_chaos() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF random() < %f THEN RAISE EXCEPTION 'test: chaos failure'; END IF;
				IF random() < %f THEN PERFORM pg_sleep(%f); END IF;
				RETURN NEW;
			END $$`, float64(failPct)/100, float64(slowPct)/100, float64(slowMS)/1000),
			`CREATE TRIGGER test_chaos BEFORE INSERT ON log_entries FOR EACH ROW EXECUTE FUNCTION test_chaos()`,
		} {
			if _, err := f.store.DB().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	disarm := func() {
		f.store.DB().ExecContext(ctx, `DROP TRIGGER IF EXISTS test_chaos ON log_entries`)
	}
	seed := uint64(envInt("CHAOS_SEED", int(time.Now().UnixNano()%1000000)))
	rounds := envInt("CHAOS_ROUNDS", 1)
	dur := time.Duration(envInt("CHAOS_MS", 6000)) * time.Millisecond
	nClients := envInt("CHAOS_CLIENTS", 5)
	bases := []string{f.srv.URL, otherURL}
	if os.Getenv("CHAOS_ONE") != "" {
		bases = bases[:1]
	}
	t.Logf("seed %d, %d rounds of %v, %d clients", seed, rounds, dur, nClients)
	headOf := func() int64 { h, _ := f.store.Head(ctx, room); return h }
	for round := range rounds {
		head0 := headOf()
		start := roomState(t, f, w.ID)
		// people: a rapporteur with two devices, participants (one with two devices)
		rap := f.MustMember(t, domain.RoleRapporteur, w, "FI", "police")
		p1 := f.MustMember(t, domain.RoleParticipant, w, "SE", "ngo")
		people := []member{rap, rap, p1, p1}
		for len(people) < nClients {
			people = append(people, f.MustMember(t, domain.RoleParticipant, w, "NO", "ngo"))
		}
		clients := make([]*chaosClient, nClients)
		for i := range clients {
			clients[i] = &chaosClient{t: t, name: fmt.Sprintf("r%dc%d", round, i), idx: i, m: people[i], bases: bases, room: room,
				rng: rand.New(rand.NewPCG(seed, uint64(round*100+i))), rap: i < 2, clientID: fmt.Sprintf("dev-%d-%d", round, i), tally: tally,
				lastSeq: head0, state: start.clone(), byID: map[string]*chaosOp{}}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, cc := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cc.run(stop, true)
			}()
		}
		killStop := make(chan struct{})
		killDone := make(chan struct{})
		go func() {
			defer close(killDone)
			if killer != nil {
				killer(killStop)
			}
		}()
		time.Sleep(dur)
		close(killStop)
		<-killDone
		close(stop)
		wg.Wait()
		if os.Getenv("CHAOS_KEEP_FAILING") == "" {
			disarm()
		}
		deadline := time.Now().Add(60 * time.Second)
		for _, cc := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cc.finish(headOf, deadline)
			}()
		}
		wg.Wait()
		// every client must hold the final head
		head := headOf()
		for _, cc := range clients {
			cc.finish(func() int64 { return head }, time.Now().Add(20*time.Second))
		}

		// The log.
		log, err := f.store.EntriesAfter(ctx, room, head0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		bySeq := map[string]domain.LogEntry{}
		for i, e := range log {
			if e.Seq != head0+int64(i)+1 {
				t.Errorf("round %d: log seq %d at %d, want %d", round, e.Seq, i, head0+int64(i)+1)
			}
			if _, dup := bySeq[e.OpID]; dup {
				t.Errorf("round %d: op id %s twice in the log", round, e.OpID)
			}
			bySeq[e.OpID] = e
		}
		owned := map[string]bool{}
		want := roomState(t, f, w.ID)
		want.keyRanks()
		total, settled, rejected, drops, acked := 0, 0, 0, 0, 0
		for _, cc := range clients {
			for _, p := range cc.problems {
				t.Errorf("round %d client %s: %s", round, cc.name, p)
			}
			drops += cc.drops
			for _, o := range cc.queue {
				total++
				owned[o.id] = true
				e, inLog := bySeq[o.id]
				if o.settled {
					settled++
				}
				if o.rejected != "" {
					rejected++
				}
				if o.ackSeq != 0 {
					acked++
				}
				switch {
				case o.settled && !inLog:
					t.Errorf("round %d: op %s (%s) settled (ack %d) but not in the log; answers %v", round, o.id, o.kind, o.ackSeq, o.answers)
				case !o.settled && inLog:
					t.Errorf("round %d: op %s (%s) in the log at %d but the client did not settle it (refused %q); answers %v", round, o.id, o.kind, e.Seq, o.rejected, o.answers)
				case o.ackSeq != 0 && e.Seq != o.ackSeq:
					t.Errorf("round %d: op %s acked at %d, logged at %d", round, o.id, o.ackSeq, e.Seq)
				case inLog && (e.ActorID == nil || *e.ActorID != cc.m.id):
					t.Errorf("round %d: op %s logged for actor %v, want %d", round, o.id, e.ActorID, cc.m.id)
				}
			}
			if cc.lastSeq != head {
				t.Errorf("round %d client %s holds %d, head %d", round, cc.name, cc.lastSeq, head)
				continue
			}
			if cc.snaps > 0 {
				// entries compared after the last snapshot only
				last := 0
				for k, e := range cc.seen {
					if e.Type == "snapshot" {
						last = k
					}
				}
				for k, g := range cc.seen[last+1:] {
					want := cc.seen[last].Seq + int64(k) + 1
					if g.Seq != want || bySeq[g.OpID].Seq != g.Seq {
						t.Errorf("round %d client %s: entry after snapshot %d:%s, want seq %d", round, cc.name, g.Seq, g.OpID, want)
						break
					}
				}
			} else if len(cc.seen) != len(log) {
				t.Errorf("round %d client %s: saw %d entries, log %d", round, cc.name, len(cc.seen), len(log))
			} else {
				for k, e := range log {
					if g := cc.seen[k]; g.Seq != e.Seq || g.OpID != e.OpID {
						t.Errorf("round %d client %s: entry %d is %d:%s, log %d:%s", round, cc.name, k, g.Seq, g.OpID, e.Seq, e.OpID)
						break
					}
				}
			}
			got := cc.state.clone()
			got.keyRanks()
			if diff := got.diff(want); diff != "" {
				t.Errorf("round %d client %s: state differs from the database: %s", round, cc.name, diff)
			}
		}
		for id := range bySeq {
			if !owned[id] {
				t.Errorf("round %d: log has op %s no client made", round, id)
			}
		}
		// Effects: comments in the database equal comment entries.
		var comments int
		f.store.DB().NewRaw("SELECT count(*) FROM comments c JOIN findings f ON f.id = c.finding_id WHERE f.workshop_id = ?", w.ID).Scan(ctx, &comments)
		var centries int
		f.store.DB().NewRaw("SELECT count(*) FROM log_entries WHERE room = ? AND kind = 'comment'", room).Scan(ctx, &centries)
		if comments != centries {
			t.Errorf("round %d: %d comments, %d comment entries", round, comments, centries)
		}
		var findings, fentries int
		f.store.DB().NewRaw("SELECT count(*) FROM findings WHERE workshop_id = ?", w.ID).Scan(ctx, &findings)
		f.store.DB().NewRaw("SELECT count(*) FROM log_entries WHERE room = ? AND kind = 'finding.create'", room).Scan(ctx, &fentries)
		snaps := 0
		for _, cc := range clients {
			snaps += cc.snaps
		}
		t.Logf("round %d: %d snapshots", round, snaps)
		t.Logf("round %d: %d ops (%d settled, %d acked, %d refused), %d log entries, %d drops; findings %d / create entries %d",
			round, total, settled, acked, rejected, len(log), drops, findings, fentries)
		t.Logf("round %d, so far: %v", round, tally)
		if failPct > 0 || slowPct > 0 {
			for _, q := range []string{`CREATE TRIGGER test_chaos BEFORE INSERT ON log_entries FOR EACH ROW EXECUTE FUNCTION test_chaos()`} {
				if _, err := f.store.DB().ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
		}
		if t.Failed() {
			for _, cc := range clients {
				if len(cc.problems) > 0 {
					t.Logf("client %s log:\n%s", cc.name, strings.Join(cc.log[max(0, len(cc.log)-40):], "\n"))
				}
			}
			return
		}
	}
}

// chaosTally counts, over a run, the error codes the clients got and the
// times the second process was killed: what the chaos reached.
type chaosTally struct {
	mu    sync.Mutex
	codes map[string]int
	kills atomic.Int64
}

func (c *chaosTally) code(code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes[code]++
}

func (c *chaosTally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("error codes %v; kills %d", c.codes, c.kills.Load())
}

// panicTB turns a helper's Fatalf into a panic, recoverable in a client's goroutine.
type panicTB struct{ testing.TB }

func (p panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (p panicTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (p panicTB) Helper()                           {}
