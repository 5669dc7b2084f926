package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/rapporteur/rapporteur/server/domain"
)

// batchState lets the finding updates of one group-commit transaction
// lock their findings together, in one statement, and write them together
// at the end, in another, instead of two statements each. Comments are
// held back likewise, with ids taken for all of them in one statement, and
// votes, with the voters of their findings read in one statement.
//
// Only single-write ops (update, vote, unvote, comment) run while writes
// are held back: they read no finding column an update changes except
// through lockedFindingInRoom. Before any other op, applyBatch writes what is
// held back and forgets the findings it read (flushAndForget).
type batchState struct {
	findings   map[int64]*domain.Finding // locked live findings, as changed so far
	dirty      []int64                   // findings changed but not yet written
	commentIDs []int64                   // ids taken for the batch's comments
	comments   []Comment                 // comments not yet written
	votes      map[int64]*voteSet        // by finding: its voters, as changed so far
	// updated is, by finding, who changed which field in the batch; their
	// entries are not in the log until its end (see changedByOthers).
	updated map[int64][]fieldChange
}

// fieldChange is one field of a finding changed by actor from client
// ("" for none named; see WithClient), making version.
type fieldChange struct {
	field   string
	actor   *int64
	version int
	client  string
}

// voteSet is who votes for a finding: as stored, and as the batch leaves it.
type voteSet struct {
	stored, now map[int64]bool
}

type batchStateKey struct{}

func newBatchState() *batchState {
	return &batchState{findings: map[int64]*domain.Finding{}, votes: map[int64]*voteSet{}, updated: map[int64][]fieldChange{}}
}

func withBatchState(ctx context.Context, bs *batchState) context.Context {
	return context.WithValue(ctx, batchStateKey{}, bs)
}

// batchChangesKey carries a batch's field changes (batchState.updated) to
// the ops of the batch that read the database itself, not the batch's
// copies: the changes' entries are not in the log until the batch's end,
// and a delete over an older version asks who changed what since.
type batchChangesKey struct{}

func withBatchChanges(ctx context.Context, updated map[int64][]fieldChange) context.Context {
	return context.WithValue(ctx, batchChangesKey{}, updated)
}

// batchChangesOf returns the field changes of the batch ctx runs in, by
// finding; nil outside a batch.
func batchChangesOf(ctx context.Context) map[int64][]fieldChange {
	if bs := batchStateOf(ctx); bs != nil {
		return bs.updated
	}
	u, _ := ctx.Value(batchChangesKey{}).(map[int64][]fieldChange)
	return u
}

func batchStateOf(ctx context.Context) *batchState {
	bs, _ := ctx.Value(batchStateKey{}).(*batchState)
	return bs
}

// lock loads and locks the live findings among ids that belong to room's
// workshop; an op naming another finding finds out on its own.
func (bs *batchState) lock(ctx context.Context, tx bun.Tx, room string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var fs []domain.Finding
	if err := tx.NewSelect().Model(&fs).ColumnExpr("finding.*").ColumnExpr(votesColumn).
		Where("id IN (?) AND deleted_at IS NULL AND workshop_id IS NOT NULL AND ? = 'workshop:' || workshop_id", bun.In(ids), room).
		Order("id").For("UPDATE").Scan(ctx); err != nil {
		return fmt.Errorf("lock findings: %w", err)
	}
	for i := range fs {
		bs.findings[fs[i].ID] = &fs[i]
	}
	return nil
}

// lockedFindingInRoom returns live finding id of the workshop, locked
// until commit: in a batch, as the batch's earlier ops left it.
func lockedFindingInRoom(ctx context.Context, tx bun.Tx, workshopID, id int64) (domain.Finding, error) {
	bs := batchStateOf(ctx)
	if bs != nil {
		if f, ok := bs.findings[id]; ok {
			if f.WorkshopID == nil || *f.WorkshopID != workshopID {
				return *f, domain.Errorf(domain.NotFound, "There is no finding %d in this workshop.", id)
			}
			return *f, nil
		}
	}
	f, err := getFindingOf(ctx, tx, workshopID, id, true)
	if err == nil && bs != nil {
		c := f
		bs.findings[id] = &c
	}
	return f, err
}

// saveFinding writes the changeable columns of f (see fieldPtr) with its
// version, field versions and update time; in a batch, at its end.
func saveFinding(ctx context.Context, tx bun.Tx, f *domain.Finding) error {
	if bs := batchStateOf(ctx); bs != nil {
		c := *f
		bs.findings[f.ID] = &c
		if !slices.Contains(bs.dirty, f.ID) {
			bs.dirty = append(bs.dirty, f.ID)
		}
		return nil
	}
	return writeFindings(ctx, tx, []*domain.Finding{f})
}

// flushAndForget writes the held-back findings and forgets the ones read,
// so that an op that is not a single write finds the database current.
func (bs *batchState) flushAndForget(ctx context.Context, tx bun.Tx) error {
	if err := bs.flush(ctx, tx); err != nil {
		return err
	}
	clear(bs.findings)
	clear(bs.votes)
	return nil
}

// loadVotes reads the voters of findings ids (one statement).
func (bs *batchState) loadVotes(ctx context.Context, tx bun.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var rows []struct {
		FindingID int64
		PersonID  int64
	}
	if err := tx.NewRaw("SELECT finding_id, person_id FROM votes WHERE finding_id IN (?)", bun.In(ids)).Scan(ctx, &rows); err != nil {
		return fmt.Errorf("read votes: %w", err)
	}
	for _, id := range ids {
		bs.votes[id] = &voteSet{stored: map[int64]bool{}, now: map[int64]bool{}}
	}
	for _, r := range rows {
		bs.votes[r.FindingID].stored[r.PersonID] = true
		bs.votes[r.FindingID].now[r.PersonID] = true
	}
	return nil
}

// setVote records that person votes (on) or not for finding id, in a
// batch at its end, and returns the finding's vote count after it.
func setVote(ctx context.Context, tx bun.Tx, id, person int64, on bool) (int, error) {
	bs := batchStateOf(ctx)
	vs := bs.votes[id]
	if vs == nil {
		if err := bs.loadVotes(ctx, tx, []int64{id}); err != nil {
			return 0, err
		}
		vs = bs.votes[id]
	}
	if on {
		vs.now[person] = true
	} else {
		delete(vs.now, person)
	}
	return len(vs.now), nil
}

// batchVotes is finding id's vote count: as the batch's earlier votes
// left it when it has them, else stored (as read with the finding).
func batchVotes(ctx context.Context, id int64, stored int) int {
	if bs := batchStateOf(ctx); bs != nil {
		if vs := bs.votes[id]; vs != nil {
			return len(vs.now)
		}
	}
	return stored
}

// takeCommentIDs takes n comment ids for the batch's comments.
func (bs *batchState) takeCommentIDs(ctx context.Context, tx bun.Tx, n int) error {
	if n == 0 {
		return nil
	}
	if err := tx.NewRaw("SELECT nextval('comments_id_seq') FROM generate_series(1, ?)", n).Scan(ctx, &bs.commentIDs); err != nil {
		return fmt.Errorf("take comment ids: %w", err)
	}
	return nil
}

// addComment inserts c and sets its id; in a batch, at its end.
func addComment(ctx context.Context, tx bun.Tx, c *Comment) error {
	if bs := batchStateOf(ctx); bs != nil && len(bs.commentIDs) > 0 {
		c.ID, bs.commentIDs = bs.commentIDs[0], bs.commentIDs[1:]
		bs.comments = append(bs.comments, *c)
		return nil
	}
	if err := tx.NewInsert().Model(c).Returning("id").Scan(ctx, &c.ID); err != nil {
		return fmt.Errorf("add comment: %w", err)
	}
	return nil
}

// flushVotes writes the votes the batch gave and took back.
func (bs *batchState) flushVotes(ctx context.Context, tx bun.Tx) error {
	type pair struct {
		FindingID int64 `json:"finding_id"`
		PersonID  int64 `json:"person_id"`
	}
	var add, remove []pair
	for id, vs := range bs.votes {
		for p := range vs.now {
			if !vs.stored[p] {
				add = append(add, pair{id, p})
			}
		}
		for p := range vs.stored {
			if !vs.now[p] {
				remove = append(remove, pair{id, p})
			}
		}
		vs.stored = maps.Clone(vs.now)
	}
	if len(add) > 0 {
		raw, err := json.Marshal(add)
		if err != nil {
			return fmt.Errorf("write votes: %w", err)
		}
		if _, err := tx.NewRaw(`INSERT INTO votes (finding_id, person_id)
			SELECT finding_id, person_id FROM jsonb_to_recordset(?::jsonb) AS d(finding_id bigint, person_id bigint)
			ON CONFLICT DO NOTHING`, string(raw)).Exec(ctx); err != nil {
			return fmt.Errorf("write votes: %w", err)
		}
	}
	if len(remove) > 0 {
		raw, err := json.Marshal(remove)
		if err != nil {
			return fmt.Errorf("withdraw votes: %w", err)
		}
		if _, err := tx.NewRaw(`DELETE FROM votes v USING jsonb_to_recordset(?::jsonb) AS d(finding_id bigint, person_id bigint)
			WHERE v.finding_id = d.finding_id AND v.person_id = d.person_id`, string(raw)).Exec(ctx); err != nil {
			return fmt.Errorf("withdraw votes: %w", err)
		}
	}
	return nil
}

// flush writes the held-back findings, comments and votes.
func (bs *batchState) flush(ctx context.Context, tx bun.Tx) error {
	if err := bs.flushVotes(ctx, tx); err != nil {
		return err
	}
	if len(bs.comments) > 0 {
		type commentWrite struct {
			ID        int64  `json:"id"`
			FindingID int64  `json:"finding_id"`
			PersonID  *int64 `json:"person_id"`
			Body      string `json:"body"`
		}
		rows := make([]commentWrite, len(bs.comments))
		for i, c := range bs.comments {
			rows[i] = commentWrite{c.ID, c.FindingID, c.PersonID, c.Body}
		}
		raw, err := json.Marshal(rows)
		if err != nil {
			return fmt.Errorf("add comments: %w", err)
		}
		if _, err := tx.NewRaw(`INSERT INTO comments (id, finding_id, person_id, body)
			SELECT id, finding_id, person_id, body FROM jsonb_to_recordset(?::jsonb)
			AS d(id bigint, finding_id bigint, person_id bigint, body text)`, string(raw)).Exec(ctx); err != nil {
			return fmt.Errorf("add comments: %w", err)
		}
		bs.comments = bs.comments[:0]
	}
	if len(bs.dirty) == 0 {
		return nil
	}
	fs := make([]*domain.Finding, len(bs.dirty))
	for i, id := range bs.dirty {
		fs[i] = bs.findings[id]
	}
	if err := writeFindings(ctx, tx, fs); err != nil {
		return err
	}
	bs.dirty = bs.dirty[:0]
	return nil
}

// findingWrite is the JSON of one row of updateFindingsSQL.
type findingWrite struct {
	ID int64 `json:"id"`
	FindingInput
	Version       int            `json:"version"`
	FieldVersions map[string]int `json:"field_versions"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// updateFindingsSQL writes the rows of a JSON array of findingWrite (?0).
const updateFindingsSQL = `
UPDATE findings AS f SET title = d.title, what_done = d.what_done, results = d.results,
    transferability = d.transferability, nordic_proposal = d.nordic_proposal,
    countries = d.countries, themes = d.themes, ps = d.ps, forms = d.forms,
    victim_groups = d.victim_groups, actor_types = d.actor_types, language = d.language,
    contact_name = d.contact_name, contact_email = d.contact_email, contact_consent = d.contact_consent,
    attribution = d.attribution, version = d.version, field_versions = d.field_versions, updated_at = d.updated_at
FROM jsonb_to_recordset(?0::jsonb) AS d(id bigint, title text, what_done text, results text,
    transferability text, nordic_proposal text, countries text[], themes text[], ps text[], forms text[],
    victim_groups text[], actor_types text[], language text, contact_name text, contact_email text,
    contact_consent boolean, attribution text, version int, field_versions jsonb, updated_at timestamptz)
WHERE f.id = d.id`

// writeFindings writes the changeable columns of fs in one statement.
func writeFindings(ctx context.Context, tx bun.Tx, fs []*domain.Finding) error {
	rows := make([]findingWrite, len(fs))
	for i, f := range fs {
		rows[i] = findingWrite{ID: f.ID, FindingInput: inputOf(f), Version: f.Version,
			FieldVersions: f.FieldVersions, UpdatedAt: f.UpdatedAt}
		if rows[i].FieldVersions == nil {
			rows[i].FieldVersions = map[string]int{}
		}
	}
	raw, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("update findings: %w", err)
	}
	res, err := tx.NewRaw(updateFindingsSQL, string(raw)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update findings: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || int(n) != len(fs) {
		return fmt.Errorf("update findings: %d of %d rows written (%v)", n, len(fs), err)
	}
	return nil
}
