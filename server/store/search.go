package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/rapporteur/rapporteur/server/domain"
)

// IndexFinding is a finding with what the search index needs besides its
// own columns: its live comments and its workshop's key messages.
type IndexFinding struct {
	bun.BaseModel  `bun:"table:findings,alias:finding"`
	domain.Finding `bun:",extend"`
	Comments       []string `bun:"comment_bodies,array,scanonly"`
	KeyMessages    string   `bun:"key_messages,scanonly"`
}

// indexColumns selects a finding with its comments and workshop's key
// messages. The key messages are the group's drafts: they come with a
// finding only when they are released, or when the finding is a draft
// too (its document is then for the same readers), never with a finding
// shared or released before them.
const indexColumns = `finding.*,
	coalesce((SELECT array_agg(c.body ORDER BY c.id) FROM comments c WHERE c.finding_id = finding.id AND c.deleted_at IS NULL), '{}') AS comment_bodies,
	coalesce((SELECT w.key_messages FROM workshops w WHERE w.id = finding.workshop_id
		AND (w.release_state = 'released' OR finding.release_state = 'draft')), '') AS key_messages`

// OpsAt returns, for each room of at with a seq above 0, the op id of its
// entry at that seq (rooms without one are left out): what tells one log
// from another that reuses its seqs, as a database restored from a backup
// does once new entries come.
func (s *Store) OpsAt(ctx context.Context, at map[string]int64) (map[string]string, error) {
	rooms, seqs := make([]string, 0, len(at)), make([]int64, 0, len(at))
	for room, seq := range at {
		if seq > 0 {
			rooms, seqs = append(rooms, room), append(seqs, seq)
		}
	}
	out := make(map[string]string, len(rooms))
	if len(rooms) == 0 {
		return out, nil
	}
	var rows []struct {
		Room string
		OpID string
	}
	if err := s.db.NewRaw(`SELECT e.room, e.op_id FROM log_entries e
		JOIN unnest(?::text[], ?::bigint[]) AS c(room, seq) ON e.room = c.room AND e.seq = c.seq`,
		pgdialect.Array(rooms), pgdialect.Array(seqs)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read the log's ops at the index checkpoint: %w", err)
	}
	for _, r := range rows {
		out[r.Room] = r.OpID
	}
	return out, nil
}

// RoomHeads returns the last seq of every room of the event log.
func (s *Store) RoomHeads(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		ID  string
		Seq int64
	}
	if err := s.db.NewRaw("SELECT id, seq FROM rooms").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read room heads: %w", err)
	}
	heads := make(map[string]int64, len(rows))
	for _, r := range rows {
		heads[r.ID] = r.Seq
	}
	return heads, nil
}

// FindingsForIndex returns the live (not deleted) findings among ids; an
// id missing from the result is deleted or never existed.
func (s *Store) FindingsForIndex(ctx context.Context, ids []int64) ([]IndexFinding, error) {
	fs := []IndexFinding{}
	if len(ids) == 0 {
		return fs, nil
	}
	err := s.db.NewSelect().Model(&fs).ColumnExpr(indexColumns).
		Where("finding.id = ANY(?) AND finding.deleted_at IS NULL", pgdialect.Array(ids)).
		Order("finding.id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read findings to index: %w", err)
	}
	return fs, nil
}

// ExportFinding is a finding with how it is credited (see domain.Credit).
type ExportFinding struct {
	bun.BaseModel  `bun:"table:findings,alias:finding"`
	domain.Finding `bun:",extend"`
	Credit         string `bun:"-"`
}

// FindingsForExport returns the live findings among ids with their
// credits, in one read (a finding's attribution and its credit agree).
func (s *Store) FindingsForExport(ctx context.Context, ids []int64) ([]ExportFinding, error) {
	var rows []struct {
		bun.BaseModel  `bun:"table:findings,alias:finding"`
		domain.Finding `bun:",extend"`
		AuthorName     string `bun:"author_name,scanonly"`
		AuthorOrg      string `bun:"author_org,scanonly"`
		AuthorCountry  string `bun:"author_country,scanonly"`
		AuthorActor    string `bun:"author_actor,scanonly"`
	}
	if len(ids) == 0 {
		return []ExportFinding{}, nil
	}
	err := s.db.NewSelect().Model(&rows).ColumnExpr("finding.*").
		ColumnExpr("coalesce(p.name, '') AS author_name, coalesce(p.organisation, '') AS author_org").
		ColumnExpr("coalesce(p.country, '') AS author_country, coalesce(p.actor_type, '') AS author_actor").
		Join("LEFT JOIN people AS p ON p.id = finding.author_id").
		Where("finding.id = ANY(?) AND finding.deleted_at IS NULL", pgdialect.Array(ids)).
		Order("finding.id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read findings to export: %w", err)
	}
	out := make([]ExportFinding, len(rows))
	for i, r := range rows {
		out[i] = ExportFinding{Finding: r.Finding, Credit: domain.Credit(r.Attribution,
			domain.Person{Name: r.AuthorName, Organisation: r.AuthorOrg, Country: r.AuthorCountry, ActorType: r.AuthorActor})}
	}
	return out, nil
}

// FindingsAudience returns, of the live findings among ids, what says who
// may read them (ids, event, workshop, release state): the database's
// truth to check search hits against.
func (s *Store) FindingsAudience(ctx context.Context, ids []int64) ([]domain.Finding, error) {
	fs := []domain.Finding{}
	if len(ids) == 0 {
		return fs, nil
	}
	err := s.db.NewSelect().Model(&fs).Column("id", "event_id", "workshop_id", "side_event_id", "release_state").
		Where("id = ANY(?) AND deleted_at IS NULL", pgdialect.Array(ids)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read who may read findings: %w", err)
	}
	return fs, nil
}

// AllFindingsForIndex returns up to limit live findings with id > afterID,
// in id order: a rebuild pages through all findings with it.
func (s *Store) AllFindingsForIndex(ctx context.Context, afterID int64, limit int) ([]IndexFinding, error) {
	fs := []IndexFinding{}
	err := s.db.NewSelect().Model(&fs).ColumnExpr(indexColumns).
		Where("finding.id > ? AND finding.deleted_at IS NULL", afterID).
		Order("finding.id").Limit(limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read findings to index: %w", err)
	}
	return fs, nil
}

// CountLiveFindings returns the number of findings that are not deleted.
func (s *Store) CountLiveFindings(ctx context.Context) (int, error) {
	var n int
	if err := s.db.NewRaw("SELECT count(*) FROM findings WHERE deleted_at IS NULL").Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("count findings: %w", err)
	}
	return n, nil
}

// FindingIDsOfWorkshops returns the ids of the live findings of the workshops.
func (s *Store) FindingIDsOfWorkshops(ctx context.Context, workshopIDs []int64) ([]int64, error) {
	ids := []int64{}
	if len(workshopIDs) == 0 {
		return ids, nil
	}
	err := s.db.NewRaw("SELECT id FROM findings WHERE workshop_id = ANY(?) AND deleted_at IS NULL ORDER BY id",
		pgdialect.Array(workshopIDs)).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("read findings of workshops: %w", err)
	}
	return ids, nil
}

// searchIndexOwnerKey is the setting naming this database to the search
// index, so an index built from another database is never used.
const searchIndexOwnerKey = "search_index_owner"

// SearchIndexOwner returns this database's random identity for the search
// index, made on first use.
func (s *Store) SearchIndexOwner(ctx context.Context) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	if _, err := s.db.NewRaw("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
		searchIndexOwnerKey, hex.EncodeToString(b[:])).Exec(ctx); err != nil {
		return "", fmt.Errorf("record search index owner: %w", err)
	}
	var id string
	if err := s.db.NewRaw("SELECT value FROM settings WHERE key = ?", searchIndexOwnerKey).Scan(ctx, &id); err != nil {
		return "", fmt.Errorf("read search index owner: %w", err)
	}
	return id, nil
}
