package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/rapporteur/rapporteur/server/domain"
)

// maxBatch caps the ops in one room transaction. Ops may run in their own
// savepoints, and Postgres keeps up to 64 subtransactions per transaction
// in its fast cache; staying under that keeps snapshots cheap.
const maxBatch = 48

// batchTimeout bounds one room transaction; callers' contexts do not end
// it, as it carries other callers' ops too.
const batchTimeout = 30 * time.Second

// committer is the group commit of the event log. Ops of one room run one
// transaction at a time (the room row's lock serialises them anyway);
// the ops that arrive while a room's transaction runs wait and then go
// together in the next one, so a busy room pays one commit for many ops;
// an op that fails takes back only its own writes (see applyBatch). An op
// that finds the room idle runs alone.
type committer struct {
	s     *Store
	mu    sync.Mutex
	rooms map[string]*roomQueue
	// inFlight counts the ops submitted and not yet through their
	// transaction, by room and op id (see OpSeqSettled).
	inFlight map[flight]int
	wg       sync.WaitGroup
}

// flight is an op's key in committer.inFlight: op ids are unique per room.
type flight struct{ room, opID string }

// roomQueue is one room's waiting ops; running tells that a goroutine is
// draining it.
type roomQueue struct {
	pending []*pendingOp
	running bool
}

// pendingOp is one op waiting for its room's transaction.
type pendingOp struct {
	opID   string
	actor  *int64
	change Change
	// alone, if set, is a cheaper path for when the op is the only one in
	// its transaction; ok false means "use change instead".
	alone func(ctx context.Context) (a Applied, ok bool, err error)
	// create, if set, is the finding this op creates: the new creates of
	// a transaction are written together in one statement.
	create *createRow
	// singleWrite tells that change writes with at most one statement, its
	// last, and returns a domain error only when it wrote nothing, so it
	// needs no savepoint in a shared transaction; and that it reads the
	// columns of findings that updates change only through lockedFindingInRoom
	// (see batchState).
	singleWrite bool
	// lockFinding, if set, is the finding change reads with lockedFindingInRoom,
	// and held what it holds back to the batch's end (see batchState).
	lockFinding int64
	held        heldWrite

	// committed, if set, is handed the op's new entry right after its
	// transaction commits (see WithCommitted).
	committed func(e domain.LogEntry, more bool)
	// order, if set, is the op's place among its client's ops (see WithOrder).
	order Order
	// client names the client the op came from (see WithClient), "" for none.
	client string
	// handed tells that committed was called (see handOver).
	handed bool

	queued time.Time // when it was submitted
	done   chan struct{}
	res    Applied
	err    error
}

func newCommitter(s *Store) *committer {
	return &committer{s: s, rooms: map[string]*roomQueue{}, inFlight: map[flight]int{}}
}

// submit queues op for room and waits for its outcome. When ctx ends first
// the op may still be applied; a retry with the same op id is answered
// with its entry.
func (c *committer) submit(ctx context.Context, room string, op *pendingOp) (Applied, error) {
	op.client = clientOf(ctx)
	if op.client != "" {
		if err := checkClient(op.client); err != nil {
			return Applied{}, err
		}
	}
	op.done = make(chan struct{})
	op.queued = time.Now()
	op.committed, _ = ctx.Value(committedKey{}).(func(domain.LogEntry, bool))
	op.order, _ = ctx.Value(orderKey{}).(Order)
	op.change = guarded(op.change)
	c.mu.Lock()
	q := c.rooms[room]
	if q == nil {
		q = &roomQueue{}
		c.rooms[room] = q
	}
	q.pending = append(q.pending, op)
	c.inFlight[flight{room, op.opID}]++
	start := !q.running
	if start {
		q.running = true
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if start {
		go c.drain(room, q)
	}
	if queued, _ := ctx.Value(queuedKey{}).(func()); queued != nil {
		queued()
	}
	select {
	case <-op.done:
		return op.res, op.err
	case <-ctx.Done():
		return Applied{}, ctx.Err()
	}
}

type queuedKey struct{}

// WithQueued returns ctx carrying fn, which an op submitted with it calls
// once it waits in its room's queue: an op submitted after that call is
// applied after it. (The hub then goes on reading the connection's next
// op while this one is applied.)
func WithQueued(ctx context.Context, fn func()) context.Context {
	if fn == nil {
		return ctx
	}
	return context.WithValue(ctx, queuedKey{}, fn)
}

// rightKey marks a context with one of the rights an op is checked
// against inside its transaction. Rights are read when an op is
// submitted: a batch runs ops under a context of its own.
type rightKey int

const (
	releaseRight rightKey = iota // may change released content
	curateRight                  // curates the group's findings
)

func withRight(ctx context.Context, r rightKey) context.Context {
	return context.WithValue(ctx, r, true)
}

func hasRight(ctx context.Context, r rightKey) bool {
	ok, _ := ctx.Value(r).(bool)
	return ok
}

// WithReleaseRight returns ctx marking an op as made by someone who may
// change released content (an organizer). Without it, an update or delete
// of a released finding is Forbidden: its new text would go public
// without the review a release is.
func WithReleaseRight(ctx context.Context) context.Context { return withRight(ctx, releaseRight) }

// WithCurateRight returns ctx saying that its op's actor curates the
// group's findings (its rapporteur, an organizer): only they may delete a
// key finding or one shared with the event.
func WithCurateRight(ctx context.Context) context.Context { return withRight(ctx, curateRight) }

// checkNotReleased refuses a change to a released finding without the release right.
func checkNotReleased(f domain.Finding, right bool) error {
	if f.ReleaseState == domain.Released && !right {
		return domain.Errorf(domain.Forbidden, "Finding %d is released and may be public; only an organizer can change it now.", f.ID)
	}
	return nil
}

type clientKey struct{}

// maxClientLen is the most characters a client's name may have (see
// WithClient), as log_clients keeps it.
const maxClientLen = 64

// WithClient returns ctx naming the client (one browser of a device, say)
// that an op submitted with it comes from. Of a finding update, mark or
// unmark, the log keeps it (in log_clients, never sent); an update,
// delete, mark or unmark that names a client is a conflict with a change
// of the same person since its base made from another client, or from
// none named, as with anyone else's. Without it, every change of the same
// person is the op's own. An empty name names none.
func WithClient(ctx context.Context, client string) context.Context {
	if client == "" {
		return ctx
	}
	return context.WithValue(ctx, clientKey{}, client)
}

// clientOf is the client ctx names (see WithClient), "" for none.
func clientOf(ctx context.Context) string {
	c, _ := ctx.Value(clientKey{}).(string)
	return c
}

// checkClient checks a client's name as log_clients keeps it: one that
// is not storable could be taken for another.
func checkClient(client string) error {
	if utf8.RuneCountInString(client) > maxClientLen || !storable(client) {
		return domain.Errorf(domain.Invalid, "A client name of 1 to %d characters, none of them a control character, is required.", maxClientLen)
	}
	return nil
}

type committedKey struct{}

// WithCommitted returns ctx carrying fn, to which an op submitted with it
// hands its new entry as soon as its transaction commits, before the op's
// call returns. One goroutine per room makes these calls, in log order, a
// transaction's entries one right after another, with more set on all but
// the last: a listener that passes them on can send a room's entries in
// order and together, without reading the log back. A replayed op's entry
// is not handed over: it was long ago.
func WithCommitted(ctx context.Context, fn func(e domain.LogEntry, more bool)) context.Context {
	if fn == nil {
		return ctx
	}
	return context.WithValue(ctx, committedKey{}, fn)
}

// guarded returns change with a panic turned into an error: an op whose
// body sets off a bug fails alone, as if its statement had failed, and
// the other ops of its transaction go on (see applyBatch).
func guarded(change Change) Change {
	if change == nil {
		return nil
	}
	return func(ctx context.Context, tx bun.Tx) (kind string, payload any, err error) {
		defer func() {
			if p := recover(); p != nil {
				kind, payload, err = "", nil, fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		return change(ctx, tx)
	}
}

// Order is an op's place among the ops one client sent (the hub's
// OpOrder). An op that fails for a reason a retry may cure (Internal,
// Unavailable) breaks it; an op sent after one that broke is refused as
// Unavailable instead of applied, so that the client's resend of the
// failed op and of those after it lands in the order they were sent.
// (In a shared transaction the new findings are written first, but only
// those sent before any other op of their client in it.)
type Order interface {
	// Broken tells whether an op sent before this one broke the order.
	Broken() bool
	// Break records that this op failed for a reason a retry may cure.
	Break()
	// Mend undoes this op's Break: it broke in a transaction that did not
	// commit, and runs again.
	Mend()
}

type orderKey struct{}

// WithOrder returns ctx carrying o, the place of an op submitted with it
// among its client's ops (see Order).
func WithOrder(ctx context.Context, o Order) context.Context {
	if o == nil {
		return ctx
	}
	return context.WithValue(ctx, orderKey{}, o)
}

// errOrderBroken refuses an op sent after one that failed (see Order).
var errOrderBroken = &domain.Error{Code: domain.Unavailable, Message: "An earlier operation failed; send it again first, then this one.",
	Detail: map[string]bool{"held_back": true}}

// heldBack tells whether an op that op's client sent before it broke
// their order: op is then refused with errOrderBroken.
func heldBack(op *pendingOp) bool {
	return op.order != nil && op.order.Broken()
}

// breakOrder breaks op's order when err is a failure a retry may cure,
// and tells so: the ops its client sent after it must wait for its resend.
func breakOrder(op *pendingOp, err error) bool {
	if op.order == nil || err == nil {
		return false
	}
	if c := domain.ErrorCode(err); c == domain.Internal || c == domain.Unavailable {
		op.order.Break()
		return true
	}
	return false
}

// queued returns how many ops of room wait for a transaction.
func (c *committer) queued(room string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if q := c.rooms[room]; q != nil {
		return len(q.pending)
	}
	return 0
}

// drain runs the room's waiting ops, up to maxBatch per transaction, until
// none are left.
func (c *committer) drain(room string, q *roomQueue) {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		batch := q.pending
		if len(batch) > maxBatch {
			batch = batch[:maxBatch:maxBatch]
			q.pending = append([]*pendingOp(nil), q.pending[maxBatch:]...)
		} else {
			q.pending = nil
		}
		if len(batch) == 0 {
			q.running = false
			delete(c.rooms, room)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.s.runBatch(room, batch)
		c.mu.Lock()
		for _, op := range batch {
			k := flight{room, op.opID}
			if c.inFlight[k]--; c.inFlight[k] <= 0 {
				delete(c.inFlight, k)
			}
		}
		c.mu.Unlock()
	}
}

// flying tells whether an op of room with op id opID waits for or is in
// its transaction.
func (c *committer) flying(room, opID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight[flight{room, opID}] > 0
}

// runBatch applies ops in one transaction and tells each its outcome.
func (s *Store) runBatch(room string, all []*pendingOp) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	defer func() {
		for _, op := range all {
			close(op.done)
		}
	}()
	// Counted before the ops are told their outcome (defers run last
	// first), so a caller that sees its op done sees it counted.
	defer s.slow.add(room, all, start)
	defer func() {
		// A bug of the store's own (an op's body cannot panic: see
		// guarded) fails the ops without an outcome yet, not the whole
		// server; those that committed before are handed over.
		if p := recover(); p != nil {
			err := fmt.Errorf("panic applying ops of %s: %v\n%s", room, p, debug.Stack())
			var head int64
			for _, op := range all {
				if op.err == nil && op.res.Entry.Seq == 0 {
					op.res, op.err = Applied{}, err
					breakOrder(op, err)
				} else if op.err == nil && !op.res.Replayed {
					head = max(head, op.res.Entry.Seq)
				}
			}
			if head > 0 {
				handOverRecovering(all)
				s.ann.add(room, head)
			}
		}
	}()
	ops := make([]*pendingOp, 0, len(all))
	for _, op := range all {
		if heldBack(op) {
			op.err = errOrderBroken
		} else {
			ops = append(ops, op)
		}
	}
	var head, replayed int64
	if len(ops) == 1 {
		op := ops[0]
		ok := false
		if op.alone != nil {
			op.res, ok, op.err = op.alone(ctx)
			ok = ok || op.err != nil
		}
		if !ok {
			op.res, op.err = s.applyOne(ctx, room, op)
		}
		breakOrder(op, op.err)
		if op.err == nil && !op.res.Replayed {
			head = op.res.Entry.Seq
		}
	} else if len(ops) > 1 {
		var err error
		head, err = s.applyBatch(ctx, room, ops, false)
		if repeatedOp(err) {
			head, err = s.applyBatch(ctx, room, ops, true)
		}
		if err != nil {
			// Nothing of the batch committed. Run its ops one by one, so an
			// op that broke the transaction fails alone and holds back the
			// ops its client sent after it (see Order).
			for _, op := range ops {
				if heldBack(op) {
					op.res, op.err = Applied{}, errOrderBroken
					continue
				}
				if ctx.Err() != nil {
					op.res, op.err = Applied{}, err
				} else {
					op.res, op.err = s.applyOne(ctx, room, op)
				}
				breakOrder(op, op.err)
				if op.err == nil && !op.res.Replayed {
					head = max(head, op.res.Entry.Seq)
				} else if op.err == nil {
					replayed = max(replayed, op.res.Entry.Seq)
				}
			}
		}
	}
	if head > 0 {
		handOver(ops)
		s.ann.add(room, head)
	}
	if replayed > head {
		// The batch may have committed after all, its COMMIT's answer
		// lost: its entries were handed to no one, so the room's
		// followers are told to read them from the log.
		s.ann.add(room, replayed)
	}
	if slices.ContainsFunc(ops, func(op *pendingOp) bool {
		return op.err != nil && domain.ErrorCode(op.err) == domain.Internal
	}) {
		// An op failed in a way that may hide its commit (a COMMIT
		// whose answer was lost): the room's followers are told of the
		// log's head as it is then, so that such an entry reaches the
		// screens before the next slow poll.
		s.ann.addHead(room)
	}
}

// handOver gives each op's new entry to its committed listener, in log order.
func handOver(ops []*pendingOp) {
	var made []*pendingOp
	for _, op := range ops {
		if op.committed != nil && !op.handed && op.err == nil && !op.res.Replayed && op.res.Entry.Seq > 0 {
			made = append(made, op)
		}
	}
	slices.SortFunc(made, func(a, b *pendingOp) int { return cmp.Compare(a.res.Entry.Seq, b.res.Entry.Seq) })
	for i, op := range made {
		// Marked first: when a callback panics, runBatch's recovery hands
		// over the rest, not this one again.
		op.handed = true
		op.committed(op.res.Entry, i < len(made)-1)
	}
}

// handOverRecovering is handOver for runBatch's recovery from a panic,
// which may be a listener's: each further listener that panics is
// skipped, not let out of the deferred function (which would take the
// process down).
func handOverRecovering(ops []*pendingOp) {
	for {
		done := func() (done bool) {
			defer func() {
				if recover() != nil {
					done = false
				}
			}()
			handOver(ops)
			return true
		}()
		if done {
			return
		}
	}
}

// applyOne runs one op in its own transaction.
func (s *Store) applyOne(ctx context.Context, room string, op *pendingOp) (Applied, error) {
	opID, actor, change := op.opID, op.actor, op.change
	var out Applied
	err := s.inTx(ctx, func(tx bun.Tx) error {
		seq, err := nextSeq(ctx, tx, room)
		if err != nil {
			return err
		}
		var prev domain.LogEntry
		err = tx.NewSelect().Model(&prev).Where("room = ? AND op_id = ?", room, opID).Limit(1).Scan(ctx)
		if err == nil {
			out = Applied{Entry: prev, Replayed: true}
			return errReplayed
		}
		if err := notFound(err, ""); domain.ErrorCode(err) != domain.NotFound {
			return fmt.Errorf("look up op %s: %w", opID, err)
		}
		kind, payload, err := change(ctx, tx)
		if err != nil {
			return err
		}
		e, err := insertEntry(ctx, tx, room, seq, opID, actor, kind, payload)
		out = Applied{Entry: e}
		if err == nil && keepsClient(kind, op.client) {
			err = logClients(ctx, tx, room, []int64{seq}, []string{op.client})
		}
		return err
	})
	if err == errReplayed {
		return out, nil
	}
	if err != nil {
		return Applied{}, err
	}
	return out, nil
}

// keepsClient tells whether an entry of kind logs the client it came
// from: only an update's, a mark's and an unmark's are read (see
// changedByOthers, keyChangedBy).
func keepsClient(kind, client string) bool {
	return client != "" && (kind == "finding.update" || kind == "key.mark" || kind == "key.unmark")
}

// logClients keeps, in log_clients, the client of each of room's entries
// seqs (after those entries are written).
func logClients(ctx context.Context, tx bun.Tx, room string, seqs []int64, clients []string) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := tx.NewRaw("INSERT INTO log_clients (room, seq, client) SELECT ?, unnest(?::bigint[]), unnest(?::text[])",
		room, pgdialect.Array(seqs), pgdialect.Array(clients)).Exec(ctx); err != nil {
		return fmt.Errorf("log the clients of entries: %w", err)
	}
	return nil
}

// lockRoomSQL takes the room row's lock, held to commit, as nextSeq does,
// and returns the room's head; a batch runs it prepared (see txStmt).
const lockRoomSQL = `INSERT INTO rooms (id, seq) VALUES ($1, 0)
	ON CONFLICT (id) DO UPDATE SET seq = rooms.seq RETURNING seq`

// txStmt returns query, prepared once per connection, for use in tx: a
// batch's fixed statements cost Postgres more to plan at every run than
// to run. Only statements whose plan cannot go stale as tables grow are
// fit for it (their plan is made once, while the tables may be small).
// The query must have been prepared (see prepared) before tx began:
// preparing takes a connection of its own, and transactions that each
// hold one while they wait for another can take the whole pool and wait
// for ever.
func (s *Store) txStmt(ctx context.Context, tx bun.Tx, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st, ok := s.stmts[query]
	s.stmtMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("statement not prepared before its transaction: %.40s", query)
	}
	return tx.StmtContext(ctx, st), nil
}

// loggedOps returns the entries room has logged of the op ids ids, by op id.
func loggedOps(ctx context.Context, tx bun.Tx, room string, ids []string) (map[string]domain.LogEntry, error) {
	var prev []domain.LogEntry
	if err := tx.NewSelect().Model(&prev).Where("room = ? AND op_id IN (?)", room, bun.In(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("look up ops: %w", err)
	}
	seen := make(map[string]domain.LogEntry, len(ids))
	for _, e := range prev {
		seen[e.OpID] = e
	}
	return seen, nil
}

// repeatedOp tells whether err is (or may be) a unique violation: an op
// id the room has logged already, which the log's unique (room, op_id)
// refused.
func repeatedOp(err error) bool {
	var pgErr pgdriver.Error
	return errors.As(err, &pgErr) && pgErr.IntegrityViolation()
}

// applyBatch runs several ops of room in one transaction, each in a
// savepoint: an op that fails is rolled back to its savepoint and gets its
// error; the others commit together. It sets each op's outcome unless the
// transaction itself fails, and returns the room's new head seq (0 when
// nothing new was logged).
//
// Without lookup it does not look the op ids up first: a repeated op is
// rare (a client resending after a reconnect), and the log's unique
// (room, op_id) refuses it, failing the transaction; the caller then runs
// the batch again with lookup, which answers it with its entry. Looking
// every batch up cost a statement per batch whose plan, for a room newer
// than the planner's statistics, read the room's whole log.
func (s *Store) applyBatch(ctx context.Context, room string, ops []*pendingOp, lookup bool) (int64, error) {
	res := make([]Applied, len(ops))
	errs := make([]error, len(ops))
	var head int64
	var broke []*pendingOp // ops that broke their order in the transaction
	// Prepared before the transaction (see txStmt).
	if _, err := s.prepared(ctx, lockRoomSQL); err != nil {
		return 0, err
	}
	if slices.ContainsFunc(ops, func(op *pendingOp) bool { return op.create != nil }) {
		if _, err := s.prepared(ctx, createFindingsSQL); err != nil {
			return 0, err
		}
	}
	err := s.inTx(ctx, func(tx bun.Tx) error {
		broke = broke[:0]
		// The room row's lock, held to commit, as nextSeq takes it.
		var seq int64
		lockRoom, err := s.txStmt(ctx, tx, lockRoomSQL)
		if err == nil {
			err = lockRoom.QueryRowContext(ctx, room).Scan(&seq)
		}
		if err != nil {
			return fmt.Errorf("lock room %s: %w", room, err)
		}
		seen := make(map[string]domain.LogEntry, len(ops))
		if lookup {
			ids := make([]string, len(ops))
			for i, op := range ops {
				ids[i] = op.opID
			}
			if seen, err = loggedOps(ctx, tx, room, ids); err != nil {
				return err
			}
		}
		first := seq
		// New creates first, all in one statement. Ops of different people
		// are free in their order; one person's ops (a connection's, sent
		// one after another) keep theirs: a create after another op of its
		// author stays in its place and runs on its own below.
		owner := map[string]int{} // op id → the op whose create is in the statement
		var creates []*createRow
		after := map[int64]bool{} // authors with an op before, not hoisted
		kept := map[string]bool{} // op ids of the ops not hoisted
		for i, op := range ops {
			if _, ok := seen[op.opID]; ok {
				continue
			}
			// A create whose op id an earlier op has stays behind it, so
			// that the earlier op is the one applied, as one by one.
			if op.create == nil || op.actor != nil && after[*op.actor] || kept[op.opID] {
				if op.actor != nil {
					after[*op.actor] = true
				}
				kept[op.opID] = true
				continue
			}
			if _, dup := owner[op.opID]; !dup {
				owner[op.opID] = i
				creates = append(creates, op.create)
			}
		}
		if len(creates) > 0 {
			made, err := s.createFindings(ctx, tx, room, seq, creates)
			if err != nil {
				return err
			}
			for id, e := range made {
				seen[id] = e
				res[owner[id]] = Applied{Entry: e}
				seq = max(seq, e.Seq)
			}
		}
		// The findings that updates change are locked together, and their
		// writes held back to one statement at the end.
		bs := newBatchState()
		var lock, voted []int64
		comments := 0
		for i, op := range ops {
			if _, replay := seen[op.opID]; replay || res[i].Entry.Seq != 0 || op.lockFinding == 0 {
				continue
			}
			lock = append(lock, op.lockFinding)
			switch op.held {
			case heldComment:
				comments++
			case heldVote:
				voted = append(voted, op.lockFinding)
			}
		}
		slices.Sort(lock)
		if err := bs.lock(ctx, tx, room, slices.Compact(lock)); err != nil {
			return err
		}
		if err := bs.takeCommentIDs(ctx, tx, comments); err != nil {
			return err
		}
		slices.Sort(voted)
		if err := bs.loadVotes(ctx, tx, slices.Compact(voted)); err != nil {
			return err
		}
		bctx := withBatchState(ctx, bs)
		octx := withBatchChanges(ctx, bs.updated) // the other ops'
		// replayed looks up an op the batch refused, when it did not look
		// its ops up first: a resend of an op committed before is refused
		// by the state it made itself (a delete of the finding it deleted,
		// a conflict with its own save), and is answered with its entry.
		replayed := func(i int, op *pendingOp) (bool, error) {
			if lookup {
				return false, nil // looked up already: seen had it
			}
			found, err := loggedOps(ctx, tx, room, []string{op.opID})
			if e, ok := found[op.opID]; ok && err == nil {
				res[i], seen[op.opID] = Applied{Entry: e, Replayed: true}, e
				return true, nil
			}
			return false, err
		}
		// The other ops' entries are written together at the end.
		var entries []domain.LogEntry
		var entryOf []int
		for i, op := range ops {
			if res[i].Entry.Seq != 0 {
				continue
			}
			if e, ok := seen[op.opID]; ok {
				res[i] = Applied{Entry: e, Replayed: true}
				continue
			}
			if heldBack(op) {
				errs[i] = errOrderBroken
				continue
			}
			if !op.singleWrite {
				if err := bs.flushAndForget(ctx, tx); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
					return err
				}
			}
			// Only single writes see the batch's copies (see batchState).
			cctx := octx
			if op.singleWrite {
				cctx = bctx
			}
			kind, payload, err := op.change(cctx, tx)
			var e domain.LogEntry
			if err == nil {
				e, err = newEntry(room, seq+1, op.opID, op.actor, kind, payload)
			}
			if err != nil && op.singleWrite {
				if domain.ErrorCode(err) == domain.Internal {
					return err // it may have written: the batch is retried op by op
				}
				// Refused before it wrote anything.
				if ok, lerr := replayed(i, op); lerr != nil {
					return lerr
				} else if ok {
					continue
				}
				errs[i] = err
				continue
			}
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT op"); rerr != nil {
					return fmt.Errorf("roll back a failed op: %w (after %v)", rerr, err)
				}
				if ok, lerr := replayed(i, op); lerr != nil {
					return lerr
				} else if ok {
					continue
				}
				errs[i] = err
				// The ops its client sent after it wait for its resend.
				if breakOrder(op, err) {
					broke = append(broke, op)
				}
				continue
			}
			seq++
			seen[op.opID] = e
			res[i] = Applied{Entry: e}
			entries, entryOf = append(entries, e), append(entryOf, i)
		}
		if err := bs.flush(ctx, tx); err != nil {
			return err
		}
		if seq == first {
			return nil
		}
		head = seq
		advance := tx.NewRaw("UPDATE rooms SET seq = ? WHERE id = ?", seq, room)
		if len(entries) == 0 { // only creates, whose statement wrote their entries
			if _, err := advance.Exec(ctx); err != nil {
				return fmt.Errorf("advance room %s: %w", room, err)
			}
			return nil
		}
		// The entries and the room's new head in one statement.
		if _, err := tx.NewInsert().With("advance", advance).Model(&entries).Returning("at").Exec(ctx); err != nil {
			return fmt.Errorf("append log entries: %w", err)
		}
		var seqs []int64
		var clients []string
		for k, i := range entryOf {
			if keepsClient(entries[k].Kind, ops[i].client) {
				seqs, clients = append(seqs, entries[k].Seq), append(clients, ops[i].client)
			}
		}
		if err := logClients(ctx, tx, room, seqs, clients); err != nil {
			return err
		}
		for k, i := range entryOf {
			res[i].Entry.At = entries[k].At
		}
		return nil
	})
	if err != nil {
		// Its failures are not final: the ops run again op by op.
		for _, op := range broke {
			op.order.Mend()
		}
		return 0, err
	}
	for i, op := range ops {
		op.res, op.err = res[i], errs[i]
	}
	return head, nil
}
