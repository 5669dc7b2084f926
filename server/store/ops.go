package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/rapporteur/rapporteur/server/domain"
)

// findingInRoom loads and locks a live finding of the workshop.
func findingInRoom(ctx context.Context, tx bun.Tx, workshopID, id int64) (domain.Finding, error) {
	return getFindingOf(ctx, tx, workshopID, id, true)
}

// Vote records that person supports a finding (once per person).
func (s *Store) Vote(ctx context.Context, person int64, workshopID int64, opID string, findingID int64) (Applied, error) {
	return s.applyFindingWrite(ctx, WorkshopRoom(workshopID), opID, &person, findingID, heldVote, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		// The count reads the statement's snapshot, before the insert.
		n, err := vote(ctx, tx, `WITH f AS (
				SELECT id FROM findings WHERE id = ?0 AND workshop_id = ?1 AND deleted_at IS NULL
			), ins AS (
				INSERT INTO votes (finding_id, person_id) SELECT id, ?2 FROM f ON CONFLICT DO NOTHING RETURNING 1
			)
			SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM votes WHERE finding_id = ?0) + (SELECT count(*) FROM ins)`,
			workshopID, findingID, person, true)
		return "vote", map[string]any{"finding_id": findingID, "votes": n}, err
	})
}

// VotedIn returns the findings of a workshop that person supports, by id
// (the room's entries do not say who voted).
func (s *Store) VotedIn(ctx context.Context, person, workshopID int64) ([]int64, error) {
	ids := []int64{}
	err := s.db.NewRaw(`SELECT v.finding_id FROM votes v JOIN findings f ON f.id = v.finding_id
		WHERE v.person_id = ? AND f.workshop_id = ? AND f.deleted_at IS NULL ORDER BY v.finding_id`, person, workshopID).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("read the votes of person %d: %w", person, err)
	}
	return ids, nil
}

// Unvote withdraws person's vote on a finding.
func (s *Store) Unvote(ctx context.Context, person int64, workshopID int64, opID string, findingID int64) (Applied, error) {
	return s.applyFindingWrite(ctx, WorkshopRoom(workshopID), opID, &person, findingID, heldVote, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		n, err := vote(ctx, tx, `WITH f AS (
				SELECT id FROM findings WHERE id = ?0 AND workshop_id = ?1 AND deleted_at IS NULL
			), del AS (
				DELETE FROM votes WHERE finding_id = (SELECT id FROM f) AND person_id = ?2 RETURNING 1
			)
			SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM votes WHERE finding_id = ?0) - (SELECT count(*) FROM del)`,
			workshopID, findingID, person, false)
		return "unvote", map[string]any{"finding_id": findingID, "votes": n}, err
	})
}

// vote gives (on) or takes back person's vote on finding findingID of
// workshop workshopID and returns the finding's vote count after it.
// Alone it runs query, a vote or unvote statement on ?0 (finding), ?1
// (workshop) and ?2 (person); in a batch the vote waits for the batch's end.
func vote(ctx context.Context, tx bun.Tx, query string, workshopID, findingID, person int64, on bool) (int, error) {
	if batchStateOf(ctx) == nil {
		return voteStatement(ctx, tx, query, workshopID, findingID, person)
	}
	if _, err := lockedFindingInRoom(ctx, tx, workshopID, findingID); err != nil {
		return 0, err
	}
	return setVote(ctx, tx, findingID, person, on)
}

// voteStatement runs a vote or unvote statement on finding ?0 of workshop
// ?1 for person ?2 and returns the finding's vote count after it.
func voteStatement(ctx context.Context, tx bun.Tx, query string, workshopID, findingID, person int64) (int, error) {
	var found, n int
	if err := tx.NewRaw(query, findingID, workshopID, person).Scan(ctx, &found, &n); err != nil {
		return 0, fmt.Errorf("vote: %w", err)
	}
	if found == 0 {
		return 0, domain.Errorf(domain.NotFound, "There is no finding %d in this workshop.", findingID)
	}
	return n, nil
}

// Comment is a remark on a finding.
type Comment struct {
	bun.BaseModel `bun:"table:comments"`
	ID            int64  `bun:",pk,autoincrement" json:"id"`
	FindingID     int64  `json:"finding_id"`
	PersonID      *int64 `json:"-"`
	Body          string `json:"body"`
}

// AddComment adds a comment to a finding.
func (s *Store) AddComment(ctx context.Context, person int64, workshopID int64, opID string, findingID int64, body string) (Applied, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return Applied{}, domain.Errorf(domain.Invalid, "A comment needs text.")
	}
	if err := checkText("comment", body, 5000); err != nil {
		return Applied{}, err
	}
	return s.applyFindingWrite(ctx, WorkshopRoom(workshopID), opID, &person, findingID, heldComment, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		c := Comment{FindingID: findingID, PersonID: &person, Body: body}
		if batchStateOf(ctx) == nil {
			// Alone: check and insert in one statement.
			err := tx.NewRaw(`INSERT INTO comments (finding_id, person_id, body)
				SELECT id, ?, ? FROM findings WHERE id = ? AND workshop_id = ? AND deleted_at IS NULL RETURNING id`,
				person, body, findingID, workshopID).Scan(ctx, &c.ID)
			if err != nil {
				return "", nil, notFound(err, "There is no finding %d in this workshop.", findingID)
			}
		} else {
			// In a batch: the finding was locked with the batch's others,
			// and the comment is written with them.
			if _, err := lockedFindingInRoom(ctx, tx, workshopID, findingID); err != nil {
				return "", nil, err
			}
			if err := addComment(ctx, tx, &c); err != nil {
				return "", nil, err
			}
		}
		return "comment", map[string]any{"id": c.ID, "finding_id": findingID, "body": body}, nil
	})
}

// MarkKey makes a finding one of its workshop's key findings (last in
// order). base, when not 0, is the finding's version the sender saw: if
// someone else took it out of the key findings since, it is a Conflict.
func (s *Store) MarkKey(ctx context.Context, actor *int64, workshopID int64, opID string, findingID int64, base int) (Applied, error) {
	return s.setKey(ctx, actor, workshopID, opID, findingID, base, true)
}

// UnmarkKey takes a finding out of its workshop's key findings; base as
// for MarkKey.
func (s *Store) UnmarkKey(ctx context.Context, actor *int64, workshopID int64, opID string, findingID int64, base int) (Applied, error) {
	return s.setKey(ctx, actor, workshopID, opID, findingID, base, false)
}

// setKey marks (key) or unmarks a finding. One that already is as asked
// is left as it is, and answered as applied. A change records its
// version and actor in field_versions (see keyBy).
func (s *Store) setKey(ctx context.Context, actor *int64, workshopID int64, opID string, findingID int64, base int, key bool) (Applied, error) {
	kind, msg := "key.mark", "%s took this finding out of the key findings since version %d; mark it again if it should be one."
	if !key {
		kind, msg = "key.unmark", "%s made this finding a key finding since version %d; unmark it again if it should not be one."
	}
	client, room := clientOf(ctx), WorkshopRoom(workshopID)
	return s.Apply(ctx, room, opID, actor, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		f, err := findingInRoom(ctx, tx, workshopID, findingID)
		if err != nil {
			return "", nil, err
		}
		if err := checkBase(f, base, 0); err != nil {
			return "", nil, err
		}
		changed := f.IsKey != key
		if changed {
			if base > 0 {
				who, err := keyChangedBy(ctx, tx, room, f, base, actor, client)
				if err != nil {
					return "", nil, err
				}
				if who != byNone {
					f.Votes = batchVotes(ctx, f.ID, f.Votes)
					var yours []string
					if who == bySelfElsewhere {
						yours = []string{"is_key"}
					}
					return "", nil, &domain.Error{Code: domain.Conflict, Message: fmt.Sprintf(msg, conflictsBy(who), base),
						Detail: ConflictDetail{Fields: []string{"is_key"}, Yours: yours, Current: f}}
				}
			}
			position := "NULL"
			if key {
				position = "(SELECT coalesce(max(key_position), 0) + 1 FROM findings WHERE workshop_id = ?1 AND is_key AND deleted_at IS NULL)"
			}
			if err := tx.NewRaw(`UPDATE findings SET is_key = ?0, key_position = `+position+`, version = version + 1,
				field_versions = field_versions || jsonb_build_object('is_key', version + 1, '`+keyBy+`', coalesce(?3::bigint, 0)), `+touchUpdatedAt+`
				WHERE id = ?2 RETURNING version, updated_at`, key, workshopID, findingID, actor).Scan(ctx, &f.Version, &f.UpdatedAt); err != nil {
				return "", nil, fmt.Errorf("%s: %w", kind, err)
			}
		}
		order, err := keyOrder(ctx, tx, workshopID)
		if err != nil {
			return "", nil, err
		}
		if u := batchChangesOf(ctx); changed && u != nil { // see keyChangedBy
			u[findingID] = append(u[findingID], fieldChange{"is_key", actor, f.Version, client})
		}
		return kind, map[string]any{"finding_id": findingID, "order": order, "version": f.Version, "updated_at": f.UpdatedAt}, nil
	})
}

// ReorderKey sets the order of a workshop's key findings; ids must be
// exactly its key findings. from, when not nil, is the order the client
// reordered: if someone else reordered them since, it is a Conflict
// carrying the current order, not a silent overwrite.
func (s *Store) ReorderKey(ctx context.Context, actor *int64, workshopID int64, opID string, ids, from []int64) (Applied, error) {
	return s.Apply(ctx, WorkshopRoom(workshopID), opID, actor, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		current, err := keyOrder(ctx, tx, workshopID)
		if err != nil {
			return "", nil, err
		}
		a, b := slices.Clone(current), slices.Clone(ids)
		slices.Sort(a)
		slices.Sort(b)
		if len(slices.Compact(slices.Clone(b))) != len(b) {
			return "", nil, domain.Errorf(domain.Invalid, "The list names a key finding more than once.")
		}
		if from != nil && !slices.Equal(from, current) {
			return "", nil, &domain.Error{Code: domain.Conflict,
				Message: "The key findings' order changed meanwhile; review it.",
				Detail:  map[string]any{"current": map[string]any{"order": current}}}
		}
		if !slices.Equal(a, b) {
			return "", nil, &domain.Error{Code: domain.Conflict,
				Message: "The list must name exactly the workshop's key findings; they changed meanwhile.",
				Detail:  map[string]any{"current": map[string]any{"order": current}}}
		}
		for i, id := range ids {
			if _, err := tx.NewRaw("UPDATE findings SET key_position = ? WHERE id = ?", i+1, id).Exec(ctx); err != nil {
				return "", nil, fmt.Errorf("reorder key findings: %w", err)
			}
		}
		return "key.reorder", map[string]any{"order": ids}, nil
	})
}

func keyOrder(ctx context.Context, tx bun.Tx, workshopID int64) ([]int64, error) {
	ids := []int64{}
	err := tx.NewRaw("SELECT id FROM findings WHERE workshop_id = ? AND is_key AND deleted_at IS NULL ORDER BY key_position, id", workshopID).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("read key findings: %w", err)
	}
	return ids, nil
}

// SetKeyMessages replaces a workshop's key messages. base is the version
// the client edited; if someone saved since, it is a Conflict carrying the
// current text.
func (s *Store) SetKeyMessages(ctx context.Context, actor *int64, workshopID int64, opID string, base int, text string) (Applied, error) {
	if err := checkText("key messages' text", text, maxText); err != nil {
		return Applied{}, err
	}
	right := hasRight(ctx, releaseRight)
	return s.Apply(ctx, WorkshopRoom(workshopID), opID, actor, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		var w domain.Workshop
		if err := tx.NewSelect().Model(&w).Where("id = ?", workshopID).For("UPDATE").Scan(ctx); err != nil {
			return "", nil, notFound(err, "There is no workshop %d.", workshopID)
		}
		// A released workshop's key messages are public: a new text would
		// go out without the review a release is, as a released finding's.
		if w.ReleaseState == domain.Released && !right {
			return "", nil, domain.Errorf(domain.Forbidden, "The key messages of %s are released and may be public; only an organizer can change them now.", w.Name)
		}
		if base > w.KeyMessagesVersion {
			return "", nil, domain.Errorf(domain.Invalid, "The key messages have no version %d: they are at version %d.", base, w.KeyMessagesVersion)
		}
		if base != w.KeyMessagesVersion {
			return "", nil, &domain.Error{Code: domain.Conflict,
				Message: fmt.Sprintf("The key messages were saved again since version %d; review the current text.", base),
				Detail:  map[string]any{"current": map[string]any{"version": w.KeyMessagesVersion, "text": w.KeyMessages}}}
		}
		if _, err := tx.NewRaw("UPDATE workshops SET key_messages = ?, key_messages_version = key_messages_version + 1 WHERE id = ?", text, workshopID).Exec(ctx); err != nil {
			return "", nil, fmt.Errorf("set key messages: %w", err)
		}
		return "keymessages.set", map[string]any{"text": text, "version": w.KeyMessagesVersion + 1}, nil
	})
}

// SetFindingRelease moves a finding between draft, shared and released.
func (s *Store) SetFindingRelease(ctx context.Context, actor *int64, workshopID int64, opID string, findingID int64, state string) (Applied, error) {
	if !slices.Contains([]string{domain.Draft, domain.Shared, domain.Released}, state) {
		return Applied{}, domain.Errorf(domain.Invalid, "Unknown release state %q: use draft, shared or released.", state)
	}
	return s.setRelease(ctx, actor, workshopID, opID, findingID, state, false)
}

// ShareFinding shares a draft with the whole event. A finding shared or
// released already stays as it is (the op is acked with its state): a
// share never takes back an organizer's release.
func (s *Store) ShareFinding(ctx context.Context, actor *int64, workshopID int64, opID string, findingID int64) (Applied, error) {
	return s.setRelease(ctx, actor, workshopID, opID, findingID, domain.Shared, true)
}

// setRelease sets a finding's release state; fromDraft only a draft's.
func (s *Store) setRelease(ctx context.Context, actor *int64, workshopID int64, opID string, findingID int64, state string, fromDraft bool) (Applied, error) {
	return s.Apply(ctx, WorkshopRoom(workshopID), opID, actor, func(ctx context.Context, tx bun.Tx) (string, any, error) {
		f, err := findingInRoom(ctx, tx, workshopID, findingID)
		if err != nil {
			return "", nil, err
		}
		// The entry says the finding's version and time of change, as a
		// snapshot has them; a state it has already changes nothing.
		entry := func() map[string]any {
			return map[string]any{"finding_id": findingID, "release_state": f.ReleaseState, "version": f.Version, "updated_at": f.UpdatedAt}
		}
		if fromDraft && f.ReleaseState != domain.Draft || f.ReleaseState == state {
			return "finding.release", entry(), nil
		}
		if err := tx.NewRaw("UPDATE findings SET release_state = ?, version = version + 1, "+touchUpdatedAt+" WHERE id = ? RETURNING version, updated_at",
			state, findingID).Scan(ctx, &f.Version, &f.UpdatedAt); err != nil {
			return "", nil, fmt.Errorf("set release state: %w", err)
		}
		f.ReleaseState = state
		if err := s.Audit(ctx, tx, actor, nil, "finding.release", fmt.Sprintf("finding:%d", findingID), map[string]string{"state": state}); err != nil {
			return "", nil, err
		}
		return "finding.release", entry(), nil
	})
}

// WorkshopState is a workshop room's current state: the snapshot a client
// far behind gets instead of the entries it missed. The workshop holds the
// key messages, each finding its vote count and key position.
type WorkshopState struct {
	Workshop domain.Workshop  `json:"workshop"`
	Findings []domain.Finding `json:"findings"`
	Comments []CommentState   `json:"comments"`
	// At is the at of the entry at the snapshot's seq, read with the rest
	// (zero when the room has none): a client names it when it joins
	// again, to tell this log from another.
	At time.Time `json:"-"`
}

// CommentState is a comment in a snapshot, as its "comment" entry has it.
type CommentState struct {
	ID        int64  `json:"id"`
	FindingID int64  `json:"finding_id"`
	Body      string `json:"body"`
}

// WorkshopSnapshot returns a workshop's state and the room seq it is at,
// read in one repeatable-read transaction so the two agree.
func (s *Store) WorkshopSnapshot(ctx context.Context, workshopID int64) (WorkshopState, int64, error) {
	var st WorkshopState
	var seq int64
	err := s.db.RunInTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&st.Workshop).Where("id = ?", workshopID).Scan(ctx); err != nil {
			return notFound(err, "There is no workshop %d.", workshopID)
		}
		st.Findings = []domain.Finding{}
		if err := tx.NewSelect().Model(&st.Findings).
			ColumnExpr("finding.*").ColumnExpr("(SELECT count(*) FROM votes v WHERE v.finding_id = finding.id) AS votes").
			Where("workshop_id = ? AND deleted_at IS NULL", workshopID).Order("id").Scan(ctx); err != nil {
			return fmt.Errorf("read findings: %w", err)
		}
		st.Comments = []CommentState{}
		if err := tx.NewRaw(`SELECT c.id, c.finding_id, c.body FROM comments c JOIN findings f ON f.id = c.finding_id
			WHERE f.workshop_id = ? AND f.deleted_at IS NULL AND c.deleted_at IS NULL ORDER BY c.id`, workshopID).Scan(ctx, &st.Comments); err != nil {
			return fmt.Errorf("read comments: %w", err)
		}
		var at *time.Time
		if err := tx.NewRaw(`SELECT coalesce(r.seq, 0), e.at FROM (SELECT 1) AS one
			LEFT JOIN rooms r ON r.id = ?0 LEFT JOIN log_entries e ON e.room = ?0 AND e.seq = r.seq`,
			WorkshopRoom(workshopID)).Scan(ctx, &seq, &at); err != nil {
			return err
		}
		if at != nil {
			st.At = *at
		}
		return nil
	})
	return st, seq, err
}
