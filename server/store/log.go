package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/rapporteur/rapporteur/server/domain"
)

// Change is what one client operation does inside its transaction: it
// writes its rows and returns the entry's kind and payload.
type Change func(ctx context.Context, tx bun.Tx) (kind string, payload any, err error)

// Applied is the result of one logged change.
type Applied struct {
	Entry domain.LogEntry
	// Replayed is true when the op id was seen before: nothing was applied
	// and Entry is the original entry.
	Replayed bool
}

// Apply runs change and appends its log entry in one transaction. The
// room's row lock is taken first and held until commit, so the room's
// entries commit in seq order and seq > n readers skip none; under that
// lock a repeated op id is found and answered with its original entry
// instead of being applied again. Ops of a busy room share transactions
// (see committer); each still applies all or nothing.
func (s *Store) Apply(ctx context.Context, room, opID string, actor *int64, change Change) (Applied, error) {
	if err := checkOpID(opID); err != nil {
		return Applied{}, err
	}
	return s.com.submit(ctx, room, &pendingOp{opID: opID, actor: actor, change: change})
}

// heldWrite is what a finding write op holds back to the end of a batch.
type heldWrite int

const (
	heldUpdate  heldWrite = iota // the finding, with saveFinding
	heldComment                  // a comment, with addComment
	heldVote                     // a vote given or taken back, with setVote
)

// applyFindingWrite is Apply for a single write (see pendingOp.singleWrite)
// that reads finding id with lockedFindingInRoom and writes what held says: in a
// group commit it needs no savepoint, and the findings are locked together
// first and written together last.
func (s *Store) applyFindingWrite(ctx context.Context, room, opID string, actor *int64, id int64, held heldWrite, change Change) (Applied, error) {
	if err := checkOpID(opID); err != nil {
		return Applied{}, err
	}
	return s.com.submit(ctx, room, &pendingOp{opID: opID, actor: actor, change: change, singleWrite: true,
		lockFinding: id, held: held})
}

// Queued returns how many ops of room wait for its next transaction.
func (s *Store) Queued(room string) int { return s.com.queued(room) }

// storable tells whether s is UTF-8 with no control character: a string
// that the database keeps as it was sent, told apart from every other
// (it drops a NUL, so "a\x00b" would be stored as "ab").
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// checkOpID checks that an op id has 1 to 100 characters, counted as the
// hub and the log's CHECK count them (not bytes).
func checkOpID(opID string) error {
	// One that is not storable could be taken for another op's id.
	if opID == "" || utf8.RuneCountInString(opID) > 100 || !storable(opID) {
		return domain.Errorf(domain.Invalid, "An op id of 1 to 100 characters, none of them a control character, is required.")
	}
	return nil
}

// nextSeq takes the room's row lock (held to commit) and returns its next seq.
func nextSeq(ctx context.Context, tx bun.Tx, room string) (int64, error) {
	var seq int64
	if err := tx.NewRaw(`INSERT INTO rooms (id, seq) VALUES (?, 1)
		ON CONFLICT (id) DO UPDATE SET seq = rooms.seq + 1 RETURNING seq`, room).Scan(ctx, &seq); err != nil {
		return 0, fmt.Errorf("next seq of %s: %w", room, err)
	}
	return seq, nil
}

func insertEntry(ctx context.Context, tx bun.Tx, room string, seq int64, opID string, actor *int64, kind string, payload any) (domain.LogEntry, error) {
	e, err := newEntry(room, seq, opID, actor, kind, payload)
	if err != nil {
		return e, err
	}
	if _, err := tx.NewInsert().Model(&e).Returning("at").Exec(ctx); err != nil {
		return e, fmt.Errorf("append log entry: %w", err)
	}
	return e, nil
}

// newEntry makes the log entry of an op, to be inserted.
func newEntry(room string, seq int64, opID string, actor *int64, kind string, payload any) (domain.LogEntry, error) {
	raw, err := marshalEntry(payload)
	if err != nil {
		return domain.LogEntry{}, fmt.Errorf("encode %s payload: %w", kind, err)
	}
	return domain.LogEntry{Room: room, Seq: seq, OpID: opID, ActorID: actor, Kind: kind, Payload: raw}, nil
}

// marshalEntry is json.Marshal for what goes in entries, without its
// escapes of "<", ">" and "&" (for HTML, which entries are not put in
// unescaped): each made six bytes of one, and a text full of them an
// entry six times the op that sent it, to every member of the room.
func marshalEntry(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// NotifyChannel is the Postgres channel on which "room seq" is announced
// after log entries commit. It is only a wake-up: listeners read the log.
const NotifyChannel = "rapporteur_log"

func notifyPayload(room string, seq int64) string { return fmt.Sprintf("%s %d", room, seq) }

// announcer sends the NOTIFY of committed entries outside their
// transactions, coalesced per room: a NOTIFY inside each op's transaction
// would serialise every commit on Postgres's notify queue lock, and a
// burst of commits needs only one wake-up per room. A notification lost
// when a process dies between commit and announcement is covered by the
// listeners' slow polls of the log.
type announcer struct {
	db      *bun.DB
	mu      sync.Mutex
	pending map[string]int64
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

func newAnnouncer(db *bun.DB) *announcer {
	a := &announcer{db: db, pending: map[string]int64{}, wake: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

// add queues "room has entries up to seq" for announcement; seq 0 stands
// for the room's head as the log has it when announced (addHead), which
// covers every seq added before.
func (a *announcer) add(room string, seq int64) {
	a.mu.Lock()
	if cur, ok := a.pending[room]; !ok || cur != 0 && seq > cur {
		a.pending[room] = seq
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// addHead queues room's head, read when it is announced, for a commit
// whose seq is not known (see runBatch). The read is the announcer's, off
// the room's queue of ops.
func (a *announcer) addHead(room string) {
	a.mu.Lock()
	a.pending[room] = 0
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *announcer) run() {
	defer close(a.done)
	for {
		select {
		case <-a.wake:
		case <-a.quit:
			a.flush()
			return
		}
		time.Sleep(time.Millisecond) // let a burst gather
		a.flush()
	}
}

func (a *announcer) flush() {
	a.mu.Lock()
	batch := a.pending
	a.pending = map[string]int64{}
	a.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	var payloads, heads []string
	for room, seq := range batch {
		if seq == 0 {
			heads = append(heads, room)
		} else {
			payloads = append(payloads, notifyPayload(room, seq))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Best effort: a failed announcement only delays the listeners to their next poll.
	if len(payloads) > 0 {
		_, _ = a.db.ExecContext(ctx, "SELECT pg_notify(?, p) FROM unnest(?::text[]) AS p", NotifyChannel, pgdialect.Array(payloads))
	}
	if len(heads) > 0 {
		_, _ = a.db.ExecContext(ctx, "SELECT pg_notify(?, id || ' ' || seq) FROM rooms WHERE id = ANY(?::text[]) AND seq > 0", NotifyChannel, pgdialect.Array(heads))
	}
}

// close announces what is pending and stops.
func (a *announcer) close() {
	close(a.quit)
	<-a.done
}

// ParseNotify reads a NotifyChannel payload.
func ParseNotify(payload string) (room string, seq int64, ok bool) {
	room, n, ok := strings.Cut(payload, " ")
	if !ok {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(n, 10, 64)
	return room, seq, err == nil
}

// appendEntry logs a change made outside Apply (seeding, administration).
func appendEntry(ctx context.Context, tx bun.Tx, room, opID string, actor *int64, kind string, payload any) (domain.LogEntry, error) {
	seq, err := nextSeq(ctx, tx, room)
	if err != nil {
		return domain.LogEntry{}, err
	}
	return insertEntry(ctx, tx, room, seq, opID, actor, kind, payload)
}

// errReplayed rolls back the seq bump of a repeated op.
var errReplayed = &domain.Error{Code: domain.Conflict, Message: "op replayed"}

// OpSeq returns the seq of the entry op opID made in room (NotFound when
// it was never applied).
func (s *Store) OpSeq(ctx context.Context, room, opID string) (int64, error) {
	var seq int64
	err := s.db.NewRaw("SELECT seq FROM log_entries WHERE room = ? AND op_id = ?", room, opID).Scan(ctx, &seq)
	if err != nil {
		return 0, notFound(err, "Op %s was not applied in %s.", opID, room)
	}
	return seq, nil
}

// OpSeqSettled is OpSeq for a resend that is to be refused unless its
// op was applied before: it answers once no copy of the op can still be
// applied. A copy waiting in this process's queue, or in its transaction,
// makes it Unavailable (ask again later); a room transaction under way on
// another process is waited for. (A copy queued on another process and
// not yet in its transaction is not seen: see PROTOCOL.md.)
func (s *Store) OpSeqSettled(ctx context.Context, room, opID string) (int64, error) {
	if s.com.flying(room, opID) {
		return 0, domain.Errorf(domain.Unavailable, "Op %s is still being saved; send it again shortly.", opID)
	}
	// Prepared before the transaction (see txStmt).
	if _, err := s.prepared(ctx, lockRoomSQL); err != nil {
		return 0, err
	}
	var seq int64
	err := s.inTx(ctx, func(tx bun.Tx) error {
		// The lock every room transaction takes first and holds to its
		// commit, taken as they take it: this also waits for one that is
		// making the room's row.
		lock, err := s.txStmt(ctx, tx, lockRoomSQL)
		if err == nil {
			var head int64
			err = lock.QueryRowContext(ctx, room).Scan(&head)
		}
		if err != nil {
			return fmt.Errorf("wait for the transactions of %s: %w", room, err)
		}
		return tx.NewRaw("SELECT seq FROM log_entries WHERE room = ? AND op_id = ?", room, opID).Scan(ctx, &seq)
	})
	if err != nil {
		return 0, notFound(err, "Op %s was not applied in %s.", opID, room)
	}
	return seq, nil
}

// EntriesAfter returns the room's entries with seq > after, in order, at most limit.
func (s *Store) EntriesAfter(ctx context.Context, room string, after int64, limit int) ([]domain.LogEntry, error) {
	var es []domain.LogEntry
	err := s.db.NewSelect().Model(&es).ColumnExpr("log_entry.*").
		ColumnExpr("coalesce(concat_ws(' · ', nullif(p.country, ''), nullif(p.actor_type, '')), '') AS actor_label").
		Join("LEFT JOIN people AS p ON p.id = log_entry.actor_id").
		Where("room = ? AND seq > ?", room, after).
		Order("seq").Limit(limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read log of %s: %w", room, err)
	}
	return es, nil
}

// HeadWithdrawn returns the last seq of room and the seq of its newest
// finding.delete entry, each 0 when it has none. What a deleted finding's
// entries carried is withdrawn: a join from before its deletion is
// answered with a snapshot, not with them.
func (s *Store) HeadWithdrawn(ctx context.Context, room string) (head, withdrawn int64, err error) {
	err = s.db.NewRaw(`SELECT coalesce((SELECT seq FROM rooms WHERE id = ?0), 0),
		coalesce((SELECT max(seq) FROM log_entries WHERE room = ?0 AND kind = 'finding.delete'), 0)`, room).
		Scan(ctx, &head, &withdrawn)
	if err != nil {
		return 0, 0, fmt.Errorf("head of %s: %w", room, err)
	}
	return head, withdrawn, nil
}

// Head returns the last seq of room, 0 when it has none.
func (s *Store) Head(ctx context.Context, room string) (int64, error) {
	var seq int64
	err := s.db.NewRaw("SELECT coalesce((SELECT seq FROM rooms WHERE id = ?), 0)", room).Scan(ctx, &seq)
	if err != nil {
		return 0, fmt.Errorf("head of %s: %w", room, err)
	}
	return seq, nil
}

// Audit records an administrative change in the audit trail.
func (s *Store) Audit(ctx context.Context, db bun.IDB, actor, event *int64, action, target string, detail any) error {
	if db == nil {
		db = s.db
	}
	raw, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("encode audit detail: %w", err)
	}
	if detail == nil {
		raw = []byte("{}")
	}
	_, err = db.NewInsert().Model(&domain.AuditEntry{ActorID: actor, EventID: event, Action: action, Target: target, Detail: raw}).Exec(ctx)
	if err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	return nil
}

// Followers are what Follow calls.
type Followers struct {
	Wake      func(room string, seq int64) // entries of room are committed up to seq
	Access    func(from, kind, id string)  // an access change was announced (see AnnounceAccess)
	Presence  func(note string)            // a process said who is in its part of a room (see AnnouncePresence); may be nil
	Listening func()                       // Postgres listens now: nothing announced from here on is missed
}

// Follow calls f.Wake for every log entry committed by any process on
// this database, f.Access for every access change announced, and
// f.Presence for every presence note, until ctx ends. Notifications can
// be lost (a full buffer, a reconnect): Wake is a hint, and the caller
// reads the log; sessions and roles are also checked now and then.
func (s *Store) Follow(ctx context.Context, f Followers) error {
	ln := pgdriver.NewListener(s.db)
	defer ln.Close()
	if err := ln.Listen(ctx, NotifyChannel, AccessChannel, PresenceChannel); err != nil {
		return fmt.Errorf("listen for log entries: %w", err)
	}
	ch := ln.Channel(pgdriver.WithChannelSize(4096))
	// Listen does not wait for Postgres to take the LISTEN: a notification
	// to ourselves, once heard, tells that it did (see Listening). One sent
	// before is not heard; it is sent again until one is.
	hello := rand.Text()
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	tick := retry.C // nil once heard
	say := func() error { return s.AnnounceAccess(ctx, hello, accessListening, "-") }
	if err := say(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if err := say(); err != nil && ctx.Err() == nil {
				return err
			}
		case n, ok := <-ch:
			if !ok {
				return nil
			}
			switch n.Channel {
			case PresenceChannel:
				if f.Presence != nil {
					f.Presence(n.Payload)
				}
			case AccessChannel:
				from, kind, id, ok := parseAccess(n.Payload)
				switch {
				case !ok:
				case kind != accessListening:
					f.Access(from, kind, id)
				case from == hello && tick != nil:
					retry.Stop()
					tick = nil
					if f.Listening != nil {
						f.Listening()
					}
				}
			default:
				if room, seq, ok := ParseNotify(n.Payload); ok {
					f.Wake(room, seq)
				}
			}
		}
	}
}
