package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// Checkpoint keys the indexer stores in the index, in the same batch as
// the documents they describe.
const (
	// cpRooms holds the last seq indexed of every room, as a JSON object.
	cpRooms = "rooms"
	// cpOwner names the database the index was built from.
	cpOwner = "owner"
	// cpMarks holds, for every room of cpRooms, the op id of its entry at
	// that seq (see diverged).
	cpMarks = "marks"
)

// Indexer tuning.
const (
	indexBatchEntries  = 500                    // log entries per index batch
	rebuildBatch       = 1000                   // findings per batch of a rebuild
	indexPoll          = 5 * time.Second        // slow poll, in case a notification is lost
	indexGatherMin     = 50 * time.Millisecond  // least time between two catch-ups
	indexGatherMax     = 500 * time.Millisecond // most time between two catch-ups
	indexHold          = 300 * time.Millisecond // least time between two indexings of one finding
	indexRetry         = 10 * time.Second       // wait after an error before trying again
	searchRetryAfter   = 5                      // seconds, for 503 answers
	indexLockTimeout   = 2 * time.Second
	maxIndexedComments = 200
)

// indexer keeps the search index a projection of Postgres: it follows the
// event log, re-reads each changed finding from the database and writes
// documents and its checkpoint in one batch. When the index is missing,
// damaged, from an older mapping or from another database it rebuilds it
// from the findings table in the background; searches meanwhile answer
// Unavailable.
type indexer struct {
	store  *store.Store
	dir    string
	opts   search.Options
	logger *slog.Logger
	poll   time.Duration
	wake   chan struct{}

	mu     sync.RWMutex
	ix     *search.Index // nil while opening or rebuilding
	status string        // why there is no index, for people

	cancel context.CancelFunc
	done   chan struct{}
}

func newIndexer(st *store.Store, dir string, opts search.Options, logger *slog.Logger) *indexer {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = indexLockTimeout
	}
	return &indexer{store: st, dir: dir, opts: opts, logger: logger, poll: indexPoll,
		wake: make(chan struct{}, 1), status: "Search is starting: try again in a moment.", done: make(chan struct{})}
}

// start runs the indexer in the background until stop.
func (x *indexer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	go func() {
		defer close(x.done)
		x.run(ctx)
	}()
}

// stop ends the indexer and closes the index; it may be called more than once.
func (x *indexer) stop() {
	if x.cancel == nil {
		return
	}
	x.cancel()
	<-x.done
}

// Notify is the store.Follow hint that room has new entries up to seq.
func (x *indexer) Notify(room string, seq int64) {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// setStatus records why search is unavailable.
func (x *indexer) setStatus(s string) {
	x.mu.Lock()
	x.status = s
	x.mu.Unlock()
}

// index returns the open index, or an Unavailable error saying why there is none.
func (x *indexer) index() (*search.Index, func(), error) {
	x.mu.RLock()
	if x.ix == nil {
		msg := x.status
		x.mu.RUnlock()
		return nil, nil, domain.Errorf(domain.Unavailable, "%s", msg)
	}
	return x.ix, x.mu.RUnlock, nil
}

// Search runs q on the index; a bad query is Invalid, no index Unavailable.
func (x *indexer) Search(ctx context.Context, q search.Query) (*search.Result, error) {
	ix, release, err := x.index()
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := ix.Search(ctx, q)
	var qe *search.QueryError
	if errors.As(err, &qe) {
		return nil, &domain.Error{Code: domain.Invalid, Message: "The search cannot be run: " + qe.Msg + ".", Err: err}
	}
	return res, err
}

// run opens (or rebuilds) the index, then follows the log until ctx ends.
func (x *indexer) run(ctx context.Context) {
	defer func() {
		x.mu.Lock()
		if x.ix != nil {
			if err := x.ix.Close(); err != nil {
				x.logger.Error("close search index", "err", err)
			}
			x.ix = nil
		}
		x.status = "Search is stopped."
		x.mu.Unlock()
	}()
	rebuild := false
	for ctx.Err() == nil {
		cp, err := x.open(ctx, rebuild)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			x.logger.Error("search index unavailable", "dir", x.dir, "err", err)
			if errors.Is(err, search.ErrLocked) {
				x.setStatus(fmt.Sprintf("Search is unavailable: its index (%s) is in use by another process; each server process needs its own DATA_DIR.", x.dir))
			} else {
				x.setStatus("Search is unavailable: its index could not be opened or rebuilt; the server log says why.")
			}
			sleep(ctx, indexRetry)
			continue
		}
		rebuild = x.follow(ctx, cp)
		if ctx.Err() == nil {
			// It stopped for a rebuild: open takes the folder again.
			x.mu.Lock()
			ix := x.ix
			x.ix, x.status = nil, "Search is rebuilding the index."
			x.mu.Unlock()
			if err := ix.Close(); err != nil {
				x.logger.Error("close search index", "err", err)
			}
		}
	}
}

// follow catches the index up with the log on every wake and slow poll,
// and when a finding held back is due. It returns when ctx ends, or when
// the index must be rebuilt; rebuild is true when only a rebuild will do,
// whatever the checkpoint saved says (see errLogBehind).
func (x *indexer) follow(ctx context.Context, cp map[string]int64) (rebuild bool) {
	t := time.NewTicker(x.poll)
	defer t.Stop()
	f := newFollowing(cp)
	for {
		start := time.Now()
		if err := x.catchUp(ctx, f); errors.Is(err, errLogBehind) {
			x.logger.Warn("search index must be rebuilt", "why", err)
			// The checkpoint saved may be before what was read (findings
			// held back), where the log may still look as the index read it.
			return true
		} else if err != nil && ctx.Err() == nil {
			x.logger.Error("search indexer", "err", err)
		}
		took := time.Since(start)
		var due <-chan time.Time
		var timer *time.Timer
		if at, ok := f.nextDue(); ok {
			timer = time.NewTimer(time.Until(at))
			due = timer.C
		}
		byDue, polled := false, false
		select {
		case <-ctx.Done():
		case <-due:
			byDue = true
		case <-x.wake:
		case <-t.C:
			polled = true
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		if byDue {
			continue // the held finding's change is in already: no need to gather
		}
		if polled {
			x.mu.RLock()
			ix := x.ix
			x.mu.RUnlock()
			if why, err := x.diverged(ctx, ix); err != nil && ctx.Err() == nil {
				x.logger.Error("search indexer: check the index against the log", "err", err)
			} else if why != "" {
				x.logger.Warn("search index must be rebuilt", "why", why)
				return true
			}
		}
		// Let a burst of commits gather into one index batch, the longer
		// the busier: one-entry batches make many small segments whose
		// merging costs more than the indexing, and waiting as long as
		// the last catch-up took keeps the indexer to about half a core,
		// leaving the rest to the people typing. Findings stay searchable
		// within a second.
		sleep(ctx, min(max(indexGatherMin, took), indexGatherMax))
	}
}

// open opens the index, rebuilding it when needed (or asked to), publishes
// it for searches and returns its checkpoint.
func (x *indexer) open(ctx context.Context, rebuild bool) (map[string]int64, error) {
	owner, err := x.store.SearchIndexOwner(ctx)
	if err != nil {
		return nil, err
	}
	ix, err := search.Open(x.dir, x.opts)
	if errors.Is(err, search.ErrNeedsRebuild) {
		x.logger.Warn("search index needs a rebuild", "dir", x.dir, "err", err)
	} else if err != nil {
		return nil, err
	} else {
		cp, why, err := readCheckpoint(ix, owner)
		if err == nil && why == "" && rebuild {
			why = "the log went back under the index as it followed it"
		}
		if err == nil && why == "" {
			why, err = x.diverged(ctx, ix)
		}
		if err != nil {
			_ = ix.Close()
			return nil, err
		}
		if why == "" {
			x.publish(ix)
			return cp, nil
		}
		x.logger.Warn("search index needs a rebuild", "dir", x.dir, "why", why)
		if err := ix.Close(); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	x.setStatus("Search is rebuilding the index: 0% done.")
	ix, err = rebuildIndex(ctx, x.store, x.dir, x.opts, func(done, total int) {
		x.setStatus(fmt.Sprintf("Search is rebuilding the index: %d%% done.", percent(done, total)))
	})
	if err != nil {
		return nil, err
	}
	x.logger.Info("search index rebuilt", "dir", x.dir, "took", time.Since(start).Round(time.Millisecond))
	cp, why, err := readCheckpoint(ix, owner)
	if err != nil || why != "" {
		_ = ix.Close()
		return nil, fmt.Errorf("rebuilt index unusable: %v%s", err, why)
	}
	x.publish(ix)
	return cp, nil
}

func (x *indexer) publish(ix *search.Index) {
	x.mu.Lock()
	x.ix = ix
	x.mu.Unlock()
	// The first search would otherwise read the filter columns itself.
	if err := ix.Warm(); err != nil {
		x.logger.Warn("search index: warm-up failed", "err", err)
	}
}

func percent(done, total int) int {
	if total <= 0 {
		return 0
	}
	return min(99, done*100/total)
}

// errLogBehind stops following when the log is behind what the index has
// read: the database was restored from a backup, or rolled back in time,
// under an index that stayed. Its new entries reuse seqs the index has
// passed; only a rebuild (see open) catches them.
var errLogBehind = errors.New("the log is behind the search index (database restored?)")

// diverged tells why the index no longer follows the log ("" when it
// does): a room's checkpoint is past its head, or the log has another op at
// a checkpoint's seq. Both mean the database was restored from a backup,
// or rolled back in time, under an index that stayed: its new entries
// reuse seqs the index has passed, and only a rebuild catches them. Rooms
// are never deleted. An index without marks (made before them) is checked
// by heads alone.
func (x *indexer) diverged(ctx context.Context, ix *search.Index) (string, error) {
	raw, err := ix.Checkpoint(cpRooms)
	if err != nil {
		return "", err
	}
	cp := map[string]int64{}
	if err := json.Unmarshal(raw, &cp); err != nil {
		return "damaged checkpoint", nil
	}
	heads, err := x.store.RoomHeads(ctx)
	if err != nil {
		return "", err
	}
	for room, seq := range cp {
		if seq > heads[room] {
			return fmt.Sprintf("ahead of the database in %s (%d, the log's head is %d): restored from a backup?", room, seq, heads[room]), nil
		}
	}
	raw, err = ix.Checkpoint(cpMarks)
	if err != nil || raw == nil {
		return "", err
	}
	marks := map[string]string{}
	if err := json.Unmarshal(raw, &marks); err != nil {
		return "damaged checkpoint", nil
	}
	now, err := x.store.OpsAt(ctx, cp)
	if err != nil {
		return "", err
	}
	for room, op := range marks {
		if now[room] != op {
			return fmt.Sprintf("the log of %s holds another entry at %d than the index read: restored from a backup?", room, cp[room]), nil
		}
	}
	return "", nil
}

// checkpoint is the index's checkpoint for cp: the rooms' seqs and the
// op ids of their entries there.
func checkpoint(ctx context.Context, st *store.Store, cp map[string]int64) (map[string][]byte, error) {
	marks, err := st.OpsAt(ctx, cp)
	if err != nil {
		return nil, err
	}
	rooms, err := json.Marshal(cp)
	if err != nil {
		return nil, err
	}
	m, err := json.Marshal(marks)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{cpRooms: rooms, cpMarks: m}, nil
}

// readCheckpoint reads the rooms checkpoint; why is non-empty when the
// index cannot be caught up and must be rebuilt.
func readCheckpoint(ix *search.Index, owner string) (cp map[string]int64, why string, err error) {
	o, err := ix.Checkpoint(cpOwner)
	if err != nil {
		return nil, "", err
	}
	if o == nil {
		return nil, "new or never filled", nil
	}
	if string(o) != owner {
		return nil, "built from another database", nil
	}
	raw, err := ix.Checkpoint(cpRooms)
	if err != nil {
		return nil, "", err
	}
	cp = map[string]int64{}
	if err := json.Unmarshal(raw, &cp); err != nil {
		return nil, "damaged checkpoint", nil
	}
	return cp, "", nil
}

// catchUp reads the log after f's read position in batches and indexes
// the findings each batch changed, save those f holds back, and those f
// holds that are due; each batch's checkpoint goes with its documents.
func (x *indexer) catchUp(ctx context.Context, f *following) error {
	x.mu.RLock()
	ix := x.ix
	x.mu.RUnlock()
	for ctx.Err() == nil {
		heads, err := x.store.RoomHeads(ctx)
		if err != nil {
			return err
		}
		var behind []string
		for room, head := range heads {
			if head > f.read[room] {
				behind = append(behind, room)
			}
		}
		for room, read := range f.read {
			if read > heads[room] {
				return errLogBehind
			}
		}
		slices.Sort(behind)
		if err := x.stillThere(ctx, f, behind); err != nil {
			return err
		}
		var entries []domain.LogEntry
		read, ops := maps.Clone(f.read), maps.Clone(f.ops)
		for _, room := range behind {
			if len(entries) >= indexBatchEntries {
				break
			}
			es, err := x.store.EntriesAfter(ctx, room, f.read[room], indexBatchEntries-len(entries))
			if err != nil {
				return err
			}
			if len(es) > 0 {
				read[room], ops[room] = es[len(es)-1].Seq, es[len(es)-1].OpID
				entries = append(entries, es...)
			}
		}
		now := time.Now()
		if len(entries) == 0 && !f.anyDue(now) {
			return nil
		}
		changed, made, err := touchedFindings(ctx, x.store, entries)
		if err != nil {
			return err
		}
		ids, cp := f.take(changed, read, now)
		if err := indexFindings(ctx, x.store, ix, ids, made, cp); err != nil {
			return err
		}
		f.done(ids, read, now)
		f.ops = ops
		if len(entries) == 0 {
			return nil
		}
	}
	return ctx.Err()
}

// stillThere checks that the log still holds, in the rooms behind, the
// entry f read last there: a log rolled back (a restore) and written
// again past the read position reuses its seq with another op, and
// reading on from there would skip the new entries below it (the slow
// poll's check, diverged, comes too late for that).
func (x *indexer) stillThere(ctx context.Context, f *following, behind []string) error {
	at := map[string]int64{}
	for _, room := range behind {
		if f.ops[room] != "" {
			at[room] = f.read[room]
		}
	}
	if len(at) == 0 {
		return nil
	}
	now, err := x.store.OpsAt(ctx, at)
	if err != nil {
		return err
	}
	for room, seq := range at {
		if now[room] != f.ops[room] {
			return fmt.Errorf("%w: the log of %s holds another entry at %d than the index read", errLogBehind, room, seq)
		}
	}
	return nil
}

// following is where the indexer stands in the log. In a busy room every
// finding changes several times a second, and indexing each one every
// time cost a third of the server's CPU; a finding indexed less than
// indexHold ago is held back until then, one indexing taking all its
// changes meanwhile. The checkpoint stays before the first change of a
// held finding, so a restart indexes it again.
type following struct {
	read  map[string]int64    // per room, the last entry read
	ops   map[string]string   // per room, that entry's op id (once read here)
	until map[int64]time.Time // finding → when it may be indexed again
	held  map[int64]logPos    // finding held back → its first change not indexed
}

// logPos is an entry's place in the log.
type logPos struct {
	room string
	seq  int64
}

func newFollowing(cp map[string]int64) *following {
	return &following{read: maps.Clone(cp), ops: map[string]string{}, until: map[int64]time.Time{}, held: map[int64]logPos{}}
}

// take splits the findings changed (with the entry of each one's first
// change) into those to index now, with any held finding now due, and
// those to hold; it returns the first and the checkpoint to write with
// them, given that the log has been read up to read.
func (f *following) take(changed map[int64]logPos, read map[string]int64, now time.Time) (map[int64]bool, map[string]int64) {
	ids := map[int64]bool{}
	for id, pos := range changed {
		if now.Before(f.until[id]) {
			if old, ok := f.held[id]; !ok || pos.seq < old.seq {
				f.held[id] = pos
			}
			continue
		}
		ids[id] = true
	}
	for id := range f.held {
		if !now.Before(f.until[id]) {
			ids[id] = true
		}
	}
	cp := maps.Clone(read)
	for id, pos := range f.held {
		if !ids[id] && pos.seq-1 < cp[pos.room] {
			cp[pos.room] = pos.seq - 1
		}
	}
	return ids, cp
}

// done records that ids were indexed, the log having been read up to read.
func (f *following) done(ids map[int64]bool, read map[string]int64, now time.Time) {
	for id := range ids {
		delete(f.held, id)
		f.until[id] = now.Add(indexHold)
	}
	for id, t := range f.until {
		if _, held := f.held[id]; !held && !now.Before(t) {
			delete(f.until, id)
		}
	}
	f.read = read
}

// nextDue is when the first held finding may be indexed.
func (f *following) nextDue() (time.Time, bool) {
	var first time.Time
	for id := range f.held {
		if t := f.until[id]; first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first, !first.IsZero()
}

// anyDue reports whether a held finding may be indexed now.
func (f *following) anyDue(now time.Time) bool {
	t, ok := f.nextDue()
	return ok && !now.Before(t)
}

// touchedFindings returns the findings entries changed, each with the
// entry of its first change, and those of them that entries created and
// changed in no other way (nor their workshop's key messages), as their
// creation entries hold them: the indexer need not read those back. (A
// later change is in a later catch-up, which indexes the finding again.)
// Reading every new finding back cost Postgres about a quarter of its time
// in the throughput load run.
func touchedFindings(ctx context.Context, st *store.Store, entries []domain.LogEntry) (map[int64]logPos, map[int64]store.IndexFinding, error) {
	changed := map[int64]logPos{}
	touches := map[int64]int{}
	add := func(id int64, e domain.LogEntry) {
		touches[id]++
		if old, ok := changed[id]; !ok || (old.room == e.Room && e.Seq < old.seq) {
			changed[id] = logPos{e.Room, e.Seq}
		}
	}
	made := map[int64]store.IndexFinding{}
	workshops := map[int64]domain.LogEntry{} // workshop → its first entry
	var order []int64
	for _, e := range entries {
		var fid, wid int64
		if e.Kind == "finding.create" {
			f := store.IndexFinding{Comments: []string{}}
			if json.Unmarshal(e.Payload, &f.Finding) == nil && f.ID > 0 {
				fid, made[f.ID] = f.ID, f
			}
		} else {
			fid, wid = touched(e)
		}
		if fid > 0 {
			add(fid, e)
		}
		if _, ok := workshops[wid]; wid > 0 && !ok {
			workshops[wid] = e
			order = append(order, wid)
		}
	}
	for id, f := range made {
		if _, wide := workshops[ptrOr(f.WorkshopID)]; touches[id] != 1 || wide {
			delete(made, id)
		}
	}
	for _, wid := range order {
		more, err := st.FindingIDsOfWorkshops(ctx, []int64{wid})
		if err != nil {
			return nil, nil, err
		}
		for _, id := range more {
			add(id, workshops[wid])
		}
	}
	return changed, made, nil
}

// ptrOr is *p, or 0 for nil.
func ptrOr(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// indexFindings writes the findings ids (or, for those gone, their
// deletion) and checkpoint cp in one batch. It takes those in made as
// they are there and reads the others back.
func indexFindings(ctx context.Context, st *store.Store, ix *search.Index, ids map[int64]bool, made map[int64]store.IndexFinding, cp map[string]int64) error {
	docs := make([]search.Document, 0, len(ids))
	var read []int64
	for id := range ids {
		if f, ok := made[id]; ok {
			docs = append(docs, findingDocument(f))
		} else {
			read = append(read, id)
		}
	}
	fs, err := st.FindingsForIndex(ctx, read)
	if err != nil {
		return err
	}
	gone := make(map[int64]bool, len(read))
	for _, id := range read {
		gone[id] = true
	}
	for _, f := range fs {
		docs = append(docs, findingDocument(f))
		delete(gone, f.ID)
	}
	var deletes []string
	for id := range gone {
		deletes = append(deletes, strconv.FormatInt(id, 10))
	}
	cps, err := checkpoint(ctx, st, cp)
	if err != nil {
		return err
	}
	return ix.Apply(docs, deletes, cps)
}

// touched returns the finding a log entry changed, or the workshop all of
// whose findings it changed (key messages are part of each key finding).
func touched(e domain.LogEntry) (findingID, workshopID int64) {
	switch e.Kind {
	case "vote", "unvote":
		return 0, 0 // votes are not in the index
	}
	if e.Kind == "keymessages.set" {
		if id, ok := strings.CutPrefix(e.Room, "workshop:"); ok {
			n, _ := strconv.ParseInt(id, 10, 64)
			return 0, n
		}
		return 0, 0
	}
	var p struct {
		ID        int64 `json:"id"`
		FindingID int64 `json:"finding_id"`
		Finding   *struct {
			ID int64 `json:"id"`
		} `json:"finding"`
	}
	if json.Unmarshal(e.Payload, &p) != nil {
		return 0, 0
	}
	switch {
	case p.FindingID > 0:
		return p.FindingID, 0
	case p.Finding != nil && p.Finding.ID > 0:
		return p.Finding.ID, 0
	case strings.HasPrefix(e.Kind, "finding."):
		return p.ID, 0
	}
	return 0, 0
}

// findingDocument is the index's view of a finding.
func findingDocument(f store.IndexFinding) search.Document {
	d := search.Document{
		ID:              strconv.FormatInt(f.ID, 10),
		Event:           strconv.FormatInt(f.EventID, 10),
		Lang:            f.Language,
		Title:           f.Title,
		Done:            f.WhatDone,
		Results:         f.Results,
		Transferability: f.Transferability,
		Proposal:        f.NordicProposal,
		Countries:       f.Countries,
		Themes:          f.Themes,
		Ps:              f.Ps,
		Forms:           f.Forms,
		VictimGroups:    f.VictimGroups,
		Actors:          f.ActorTypes,
		Release:         f.ReleaseState,
		Audience:        findingAudience(f.Finding),
		Created:         f.CreatedAt,
		Updated:         f.UpdatedAt,
	}
	if f.WorkshopID != nil {
		d.Workshop = strconv.FormatInt(*f.WorkshopID, 10)
	}
	// Comments are the group's discussion: a release makes the finding
	// public, not what was said about it, so a released finding's document
	// (read by anyone) has none.
	if f.ReleaseState != domain.Released {
		d.Comments = strings.Join(f.Comments[:min(len(f.Comments), maxIndexedComments)], "\n")
	}
	// The group's key messages sum up its key findings: found with those.
	if f.IsKey {
		d.KeyMessages = f.KeyMessages
	}
	return d
}

// rebuildIndex builds a new index of every finding beside dir and swaps it
// in (the index in dir must be closed); it returns the new index, open.
// progress is told how far it got.
func rebuildIndex(ctx context.Context, st *store.Store, dir string, opts search.Options, progress func(done, total int)) (*search.Index, error) {
	owner, err := st.SearchIndexOwner(ctx)
	if err != nil {
		return nil, err
	}
	// The log position first: every change up to it is in the findings
	// read after; later ones are caught up from it (re-reading is harmless).
	heads, err := st.RoomHeads(ctx)
	if err != nil {
		return nil, err
	}
	total, err := st.CountLiveFindings(ctx)
	if err != nil {
		return nil, err
	}
	defer search.BulkGC()()
	tmp := strings.TrimRight(dir, `/\`) + ".rebuild"
	nx, err := search.Create(tmp, opts)
	if err != nil {
		return nil, err
	}
	load := nx.NewLoader(0)
	fail := func(err error) (*search.Index, error) {
		_ = load.Wait()
		_ = nx.Close()
		return nil, err
	}
	done := 0
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		fs, err := st.AllFindingsForIndex(ctx, after, rebuildBatch)
		if err != nil {
			return fail(err)
		}
		if len(fs) == 0 {
			break
		}
		docs := make([]search.Document, len(fs))
		for i, f := range fs {
			docs[i] = findingDocument(f)
		}
		if err := load.Add(docs); err != nil {
			return fail(err)
		}
		after = fs[len(fs)-1].ID
		done += len(fs)
		progress(done, max(total, done))
	}
	if err := load.Wait(); err != nil {
		return fail(err)
	}
	cps, err := checkpoint(ctx, st, heads)
	if err != nil {
		return fail(err)
	}
	cps[cpOwner] = []byte(owner)
	if err := nx.Apply(nil, nil, cps); err != nil {
		return fail(err)
	}
	if err := nx.Compact(ctx); err != nil {
		return fail(err)
	}
	if err := nx.Close(); err != nil {
		return nil, err
	}
	if err := search.Replace(tmp, dir); err != nil {
		return nil, err
	}
	return search.Open(dir, opts)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
