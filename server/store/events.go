package store

import (
	"context"
	"fmt"

	"github.com/rapporteur/rapporteur/server/domain"
)

// Events returns every event, newest first.
func (s *Store) Events(ctx context.Context) ([]domain.Event, error) {
	var es []domain.Event
	if err := s.db.NewSelect().Model(&es).Order("starts_at DESC NULLS LAST", "id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return es, nil
}

// FirstEvent returns the event made first: the one the server was set up
// with, whatever events were added since and whenever they are held.
func (s *Store) FirstEvent(ctx context.Context) (domain.Event, error) {
	var e domain.Event
	if err := s.db.NewSelect().Model(&e).Order("id").Limit(1).Scan(ctx); err != nil {
		return e, notFound(err, "There is no event yet.")
	}
	return e, nil
}

// EventBySlug returns the event with slug.
func (s *Store) EventBySlug(ctx context.Context, slug string) (domain.Event, error) {
	var e domain.Event
	if !storable(slug) { // "slug\x00" would be slug
		return e, domain.Errorf(domain.NotFound, "There is no event %q.", slug)
	}
	err := s.db.NewSelect().Model(&e).Where("slug = ?", slug).Scan(ctx)
	if err != nil {
		return e, notFound(err, "There is no event %q.", slug)
	}
	return e, nil
}

// Event returns the event with id.
func (s *Store) Event(ctx context.Context, id int64) (domain.Event, error) {
	var e domain.Event
	err := s.db.NewSelect().Model(&e).Where("id = ?", id).Scan(ctx)
	if err != nil {
		return e, notFound(err, "There is no event %d.", id)
	}
	return e, nil
}

// Parts returns the parts of an event in programme order.
func (s *Store) Parts(ctx context.Context, eventID int64) ([]domain.Part, error) {
	ps := []domain.Part{}
	if err := s.db.NewSelect().Model(&ps).Where("event_id = ?", eventID).Order("position").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list parts: %w", err)
	}
	return ps, nil
}

// Workshops returns the workshops of an event, by part and position.
func (s *Store) Workshops(ctx context.Context, eventID int64) ([]domain.Workshop, error) {
	ws := []domain.Workshop{}
	if err := s.db.NewSelect().Model(&ws).Where("event_id = ?", eventID).Order("part_id", "position").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list workshops: %w", err)
	}
	return ws, nil
}

// Workshop returns one workshop.
func (s *Store) Workshop(ctx context.Context, id int64) (domain.Workshop, error) {
	var w domain.Workshop
	if err := s.db.NewSelect().Model(&w).Where("id = ?", id).Scan(ctx); err != nil {
		return w, notFound(err, "There is no workshop %d.", id)
	}
	return w, nil
}

// SideEvents returns the side events of an event.
func (s *Store) SideEvents(ctx context.Context, eventID int64) ([]domain.SideEvent, error) {
	ss := []domain.SideEvent{}
	if err := s.db.NewSelect().Model(&ss).Where("event_id = ?", eventID).Order("position").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list side events: %w", err)
	}
	return ss, nil
}

// Taxonomy returns the event's taxonomy terms by dimension, in order.
func (s *Store) Taxonomy(ctx context.Context, eventID int64) (map[string][]domain.Term, error) {
	var ts []domain.Term
	if err := s.db.NewSelect().Model(&ts).Where("event_id = ?", eventID).Order("dimension", "position").Scan(ctx); err != nil {
		return nil, fmt.Errorf("read taxonomy: %w", err)
	}
	out := map[string][]domain.Term{}
	for _, d := range domain.Dimensions() {
		out[d] = []domain.Term{}
	}
	for _, t := range ts {
		out[t.Dimension] = append(out[t.Dimension], t)
	}
	return out, nil
}
