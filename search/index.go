// Package search is Rapporteur's full-text index of findings: a Bleve index
// on local disk with a multilingual mapping, filters, multi-select facets,
// highlighting and an audience (visibility) filter.
//
// The index is a projection of Postgres. The server writes to it with Apply,
// which commits upserts, deletes and checkpoint values (e.g. the last event
// log sequence number indexed) in one Bleve batch, so after a crash the
// checkpoint always describes what the index holds.
//
// # Rebuilding
//
// Open creates an index in an empty or missing folder. It returns an error
// wrapping ErrNeedsRebuild when the folder holds an index it cannot use:
// files missing or damaged, or an index built with another MappingVersion.
// The server then rebuilds beside the live folder and swaps:
//
//	ix, err := search.Open(dir, opts)
//	if errors.Is(err, search.ErrNeedsRebuild) {
//		tmp := dir + ".rebuild"
//		nx, err := search.Create(tmp, opts) // removes any leftover tmp
//		// ... fill nx from Postgres in batches of ~500-1000 with a
//		// Loader (or Apply); after its Wait, Apply the log position
//		// the fill read at as the checkpoint ...
//		nx.Compact(ctx) // optional: one segment, faster searches
//		nx.Close()
//		err = search.Replace(tmp, dir) // moves tmp into place, removes the old folder
//		ix, err = search.Open(dir, opts)
//	}
//
// While it rebuilds, the server has no index to search (answer "search is
// being rebuilt"). A crash during the fill leaves only tmp, which the next
// rebuild removes; the live folder is replaced only by a complete index.
// Replace needs tmp and dir on the same file system (use a sibling folder).
//
// # Query syntax
//
// Query.Text takes a subset of Bleve's query string syntax:
//
//	word          must occur (words are ANDed), stemmed per language
//	"a phrase"    these words in this order
//	pref*         a word starting with pref (at least 2 letters)
//	-x, NOT x     must not occur; +x is the same as x
//	a OR b        either
//	( ... )       grouping
//	field:x       x in one text field (title, done, results,
//	              transferability, proposal, comments, keymessages) or
//	              one filter dimension (country:FI, theme:..., see
//	              Query.Filters); x is a word, prefix, phrase or, for
//	              text fields, a (group)
//
// Documents are analyzed in their own language. Every query word is
// analyzed in each language, and a document matches when it holds one of
// those forms: a Swedish query word finds Swedish findings by its Swedish
// stem and English ones by its English stem. (A form may also turn up in a
// document of another language; such collisions are rare and harmless.)
// Phrases match the same way, within one text field. A word that is a
// stop word in a language ("the", "och") is ignored for documents in that
// language. Prefixes match indexed stems, and every document a prefix
// matches scores the same. Errors in the text come back as *QueryError.
package search

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
)

// ErrNeedsRebuild is wrapped by Open's error when the index folder cannot be
// used as is and must be rebuilt from the source of truth.
var ErrNeedsRebuild = errors.New("search index needs rebuild")

// ErrLocked is wrapped by Open's error when another process (or another
// Index in this one) holds the index open.
var ErrLocked = errors.New("search index is locked by another user")

// Options tune an Index. The zero value is ready to use.
type Options struct {
	// MappingVersion overrides the MappingVersion stored in and expected
	// from the index; 0 means MappingVersion. For tests.
	MappingVersion int
	// DefaultLang is the language of documents whose Lang is empty or
	// unsupported and whose language cannot be detected; "" means "en".
	DefaultLang string
	// LockTimeout is how long Open waits for an index held by another
	// process before returning ErrLocked; 0 means 5 seconds.
	LockTimeout time.Duration
	// Async makes Apply return once its batch is searchable, while Bleve
	// writes it to disk in the background, merging batches into fewer
	// writes and syncs. After a crash or Close the index holds an earlier
	// batch, with that batch's checkpoint, so a follower of a log catches
	// up from there. Create ignores it: a filled index must be complete
	// when closed. An Async index is fed small batches, and merges small
	// segments among themselves (see liveFloorSegment).
	Async bool
}

func (o Options) withDefaults() Options {
	if o.MappingVersion == 0 {
		o.MappingVersion = MappingVersion
	}
	if _, ok := analyzerFor[o.DefaultLang]; !ok {
		o.DefaultLang = "en"
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	return o
}

// Internal keys. Checkpoint keys get their own prefix so they can never
// overwrite the version key.
const (
	versionKey       = "rapporteur:mapping_version"
	batchKey         = "rapporteur:batch" // random id of the last Apply
	checkpointPrefix = "cp:"
)

// Index is an open search index. It is safe for concurrent use.
type Index struct {
	bi   bleve.Index
	opts Options
	cols *colCache
	pos  *posCache // decoded postings of words and phrases

	closeOnce sync.Once
	closeErr  error
}

// Open opens the index in dir, creating it when dir is missing or empty.
// An index it cannot use gives an error wrapping ErrNeedsRebuild; see the
// package documentation for how to rebuild.
func Open(dir string, opts Options) (*Index, error) {
	opts = opts.withDefaults()
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0):
		return create(dir, opts)
	case err != nil:
		return nil, fmt.Errorf("search: open %s: %w", dir, err)
	}

	// Scorch silently falls back to an older snapshot when the newest one
	// cannot be loaded (e.g. a damaged segment file). Read the newest
	// snapshot's batch id before opening, and compare it with what loads.
	latest, err := latestBatchID(dir, opts.LockTimeout)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("search: open %s: %w", dir, err)
		}
		return nil, fmt.Errorf("search: open %s: %w: %w", dir, ErrNeedsRebuild, err)
	}
	bi, err := openBleve(dir, opts)
	if err != nil {
		if isLockTimeout(err) {
			return nil, fmt.Errorf("search: open %s: %w: %w", dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("search: open %s: %w: %w", dir, ErrNeedsRebuild, err)
	}
	ix := &Index{bi: bi, opts: opts, cols: newColCache(), pos: newPosCache(posCacheBudget)}
	if err := ix.check(latest); err != nil {
		_ = ix.Close()
		return nil, fmt.Errorf("search: open %s: %w: %w", dir, ErrNeedsRebuild, err)
	}
	return ix, nil
}

// check verifies the stored mapping version, that the newest snapshot was
// loaded (its batch id is latest) and that the index answers.
func (ix *Index) check(latest []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged index: %v", r)
		}
	}()
	v, err := ix.bi.GetInternal([]byte(versionKey))
	if err != nil {
		return fmt.Errorf("read mapping version: %w", err)
	}
	if v == nil {
		return errors.New("no mapping version stored")
	}
	got, err := strconv.Atoi(string(v))
	if err != nil {
		return fmt.Errorf("bad mapping version %q", v)
	}
	if got != ix.opts.MappingVersion {
		return fmt.Errorf("mapping version %d, want %d", got, ix.opts.MappingVersion)
	}
	loaded, err := ix.bi.GetInternal([]byte(batchKey))
	if err != nil {
		return fmt.Errorf("read batch id: %w", err)
	}
	if !bytes.Equal(loaded, latest) {
		return errors.New("newest snapshot could not be loaded (damaged segment files)")
	}
	if _, err := ix.bi.DocCount(); err != nil {
		return fmt.Errorf("count documents: %w", err)
	}
	return nil
}

// latestBatchID reads the batch id stored in the newest persisted
// snapshot of the index in dir (nil when there is none) without opening
// the index. It gives up with ErrLocked after timeout when another process
// holds the index (the read then finishes in the background once the
// lock is released).
func latestBatchID(dir string, timeout time.Duration) ([]byte, error) {
	store := filepath.Join(dir, "store")
	if _, err := os.Stat(filepath.Join(store, "root.bolt")); err != nil {
		return nil, nil // not a scorch index (or gone): opening will tell
	}
	type out struct {
		id  []byte
		err error
	}
	ch := make(chan out, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- out{err: fmt.Errorf("damaged index: %v", r)}
			}
		}()
		points, err := scorch.RollbackPoints(store)
		if err != nil {
			ch <- out{err: fmt.Errorf("read snapshots: %w", err)}
			return
		}
		if len(points) == 0 {
			ch <- out{}
			return
		}
		ch <- out{id: points[0].GetInternal([]byte(batchKey))}
	}()
	select {
	case o := <-ch:
		return o.id, o.err
	case <-time.After(timeout):
		return nil, ErrLocked
	}
}

// openBleve opens an existing Bleve index, turning panics from damaged
// files into errors.
func openBleve(dir string, opts Options) (bi bleve.Index, err error) {
	defer func() {
		if r := recover(); r != nil {
			bi, err = nil, fmt.Errorf("damaged index: %v", r)
		}
	}()
	return bleve.OpenUsing(dir, scorchConfig(opts))
}

// scorchConfig is Bleve's runtime configuration for opts.
func scorchConfig(opts Options) map[string]interface{} {
	c := map[string]interface{}{
		"bolt_timeout": opts.LockTimeout.String(),
		"unsafe_batch": opts.Async,
	}
	if opts.Async {
		// Bleve treats every segment under 2,000 documents as that size,
		// which in an index of a few thousand findings allows about two
		// segments: each batch of a busy room then set off a merge that
		// rewrote the whole index, 29% of the server's CPU. Sized by what
		// they hold, small batch segments merge among themselves.
		c["scorchMergePlanOptions"] = map[string]interface{}{"FloorSegmentSize": liveFloorSegment}
	}
	return c
}

// liveFloorSegment is the size, in documents, under which Bleve's merge
// planner counts a segment of a live (Async) index as that size.
const liveFloorSegment = 100

// isLockTimeout reports whether err is bbolt's timeout waiting for the file
// lock of root.bolt, i.e. the index is open elsewhere.
func isLockTimeout(err error) bool {
	return err != nil && err.Error() == "timeout"
}

// Create makes a new, empty index in dir, first removing whatever index
// (or remains of one) is there. It refuses to remove a non-empty folder
// that does not look like a search index.
func Create(dir string, opts Options) (*Index, error) {
	opts = opts.withDefaults()
	opts.Async = false
	// An index being built there by another process (a server's rebuild
	// and an offline reindex both build next to the live index) is never
	// removed from under it: ErrLocked, as Open.
	if looksLikeIndex(dir) {
		if _, err := latestBatchID(dir, opts.LockTimeout); errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("search: create %s: %w", dir, ErrLocked)
		}
	}
	if err := removeIndexDir(dir); err != nil {
		return nil, fmt.Errorf("search: create %s: %w", dir, err)
	}
	return create(dir, opts)
}

func create(dir string, opts Options) (*Index, error) {
	m, err := newMapping()
	if err != nil {
		return nil, fmt.Errorf("search: mapping: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, fmt.Errorf("search: create %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("search: create %s: %w", dir, err)
	}
	bi, err := bleve.NewUsing(dir, m, bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, scorchConfig(opts))
	if err != nil {
		return nil, fmt.Errorf("search: create %s: %w", dir, err)
	}
	if err := bi.SetInternal([]byte(versionKey), []byte(strconv.Itoa(opts.MappingVersion))); err != nil {
		_ = bi.Close()
		return nil, fmt.Errorf("search: create %s: store version: %w", dir, err)
	}
	return &Index{bi: bi, opts: opts, cols: newColCache(), pos: newPosCache(posCacheBudget)}, nil
}

// Replace moves the closed index in src to dst, replacing the index that
// is there (which must be closed too). Both must be on one file system.
func Replace(src, dst string) error {
	if !looksLikeIndex(src) {
		return fmt.Errorf("search: replace: %s is not a search index", src)
	}
	old := ""
	if _, err := os.Stat(dst); err == nil {
		if !looksLikeIndex(dst) && !isEmptyDir(dst) {
			return fmt.Errorf("search: replace: refusing to replace %s: not a search index", dst)
		}
		old = fmt.Sprintf("%s.old-%d", strings.TrimRight(dst, string(os.PathSeparator)), time.Now().UnixNano())
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("search: replace: %w", err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return fmt.Errorf("search: replace: %w", err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("search: replace: remove old index: %w", err)
		}
	}
	return nil
}

// removeIndexDir removes dir if it is missing, empty or looks like a
// (possibly damaged) search index, and refuses otherwise.
func removeIndexDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if !isEmptyDir(dir) && !looksLikeIndex(dir) {
		return fmt.Errorf("refusing to remove %s: not a search index", dir)
	}
	return os.RemoveAll(dir)
}

// looksLikeIndex reports whether dir holds what a Bleve index leaves
// behind, even when damaged.
func looksLikeIndex(dir string) bool {
	for _, name := range []string{"index_meta.json", "store"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

func isEmptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) == 0
}

// Apply writes one atomic batch: it upserts docs, deletes the ids in
// deletes (after the upserts, so an id in both ends up deleted) and sets
// the checkpoint values (a nil value deletes the key). It returns once the
// batch is persisted on disk (with Options.Async, once it is searchable).
// Put the checkpoint in every batch: after a crash the index holds exactly
// the batches up to the checkpoint it shows.
func (ix *Index) Apply(docs []Document, deletes []string, checkpoint map[string][]byte) error {
	if len(docs) == 0 && len(deletes) == 0 && len(checkpoint) == 0 {
		return nil
	}
	b := ix.bi.NewBatch()
	for i := range docs {
		d := &docs[i]
		if d.ID == "" {
			return fmt.Errorf("search: apply: document %d has no id", i)
		}
		if err := b.Index(d.ID, bleveDoc(d, docLang(d, ix.opts.DefaultLang))); err != nil {
			return fmt.Errorf("search: apply: index %s: %w", d.ID, err)
		}
	}
	for _, id := range deletes {
		b.Delete(id)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	b.SetInternal([]byte(batchKey), []byte(hex.EncodeToString(id[:])))
	for k, v := range checkpoint {
		if v == nil {
			b.DeleteInternal([]byte(checkpointPrefix + k))
		} else {
			b.SetInternal([]byte(checkpointPrefix+k), v)
		}
	}
	if err := ix.bi.Batch(b); err != nil {
		return fmt.Errorf("search: apply: %w", err)
	}
	return nil
}

// BulkGC lets the garbage collector's heap target grow four times as far
// (GOGC × 4) until restore is called. Bulk indexing allocates much
// short-lived memory; collecting it less often builds an index about a
// fifth faster, for a larger heap meanwhile, which a GOMEMLIMIT still
// caps. The setting is the whole process's: use it around one bulk load
// at a time.
func BulkGC() (restore func()) {
	old := debug.SetGCPercent(100)
	if old <= 0 {
		debug.SetGCPercent(old)
		return func() {}
	}
	debug.SetGCPercent(old * 4)
	return func() { debug.SetGCPercent(old) }
}

// Loader fills an index with many batches, as a rebuild does. It applies
// several batches at once, so that one batch's analysis overlaps another's
// segment building and disk writes: on two cores, three at once build
// about two thirds faster than one after another.
type Loader struct {
	ix    *Index
	slots chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

// NewLoader returns a Loader that applies up to workers batches at once;
// 0 means one more than the number of CPUs.
func (ix *Index) NewLoader(workers int) *Loader {
	if workers <= 0 {
		workers = runtime.NumCPU() + 1
	}
	return &Loader{ix: ix, slots: make(chan struct{}, workers)}
}

// Add applies docs as one batch in the background, waiting while the
// Loader is busy. The caller must not change docs afterwards. It returns
// the first error any batch has had so far.
func (l *Loader) Add(docs []Document) error {
	if err := l.failed(); err != nil {
		return err
	}
	l.slots <- struct{}{}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.slots }()
		if err := l.ix.Apply(docs, nil, nil); err != nil {
			l.mu.Lock()
			if l.err == nil {
				l.err = err
			}
			l.mu.Unlock()
		}
	}()
	return nil
}

// Wait waits for every batch added and returns the first error.
func (l *Loader) Wait() error {
	l.wg.Wait()
	return l.failed()
}

func (l *Loader) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Compact merges the index into one segment, which makes searches faster
// after a bulk fill (e.g. a rebuild). It blocks until done; searches and
// Apply keep working meanwhile.
func (ix *Index) Compact(ctx context.Context) error {
	adv, err := ix.bi.Advanced()
	if err != nil {
		return fmt.Errorf("search: compact: %w", err)
	}
	s, ok := adv.(*scorch.Scorch)
	if !ok {
		return fmt.Errorf("search: compact: index type %T cannot merge", adv)
	}
	if err := s.ForceMerge(ctx, nil); err != nil {
		return fmt.Errorf("search: compact: %w", err)
	}
	return nil
}

// Checkpoint returns the value last stored under key by Apply, or nil.
func (ix *Index) Checkpoint(key string) ([]byte, error) {
	v, err := ix.bi.GetInternal([]byte(checkpointPrefix + key))
	if err != nil {
		return nil, fmt.Errorf("search: checkpoint %s: %w", key, err)
	}
	return v, nil
}

// Count returns the number of documents in the index.
func (ix *Index) Count() (uint64, error) {
	n, err := ix.bi.DocCount()
	if err != nil {
		return 0, fmt.Errorf("search: count: %w", err)
	}
	return n, nil
}

// Close closes the index; later calls return the first call's result.
func (ix *Index) Close() error {
	ix.closeOnce.Do(func() {
		ix.closeErr = ix.bi.Close()
	})
	return ix.closeErr
}
