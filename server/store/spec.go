package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/rapporteur/rapporteur/server/domain"
)

// EventSpec describes a whole event to create at once: its programme,
// groups, side events, taxonomy and optional example findings. The demo
// event is one; organizers can import their own the same way.
type EventSpec struct {
	Slug        string          `json:"slug"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Venue       string          `json:"venue"`
	Timezone    string          `json:"timezone"`
	Language    string          `json:"language"`
	StartsAt    *time.Time      `json:"starts_at"`
	EndsAt      *time.Time      `json:"ends_at"`
	Parts       []PartSpec      `json:"parts"`
	SideEvents  []SideEventSpec `json:"side_events"`
	// Taxonomy maps a dimension to its terms as [key, label] pairs.
	Taxonomy map[string][][2]string `json:"taxonomy"`
	Findings []FindingSpec          `json:"findings"`
}

// PartSpec is one part of an EventSpec.
type PartSpec struct {
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Kind        string     `json:"kind"`
	StartsAt    *time.Time `json:"starts_at"`
	EndsAt      *time.Time `json:"ends_at"`
	Streamed    bool       `json:"streamed"`
	Workshops   []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		RoomName    string `json:"room_name"`
	} `json:"workshops"`
}

// SideEventSpec is one side event of an EventSpec.
type SideEventSpec struct {
	Title       string     `json:"title"`
	Organiser   string     `json:"organiser"`
	Description string     `json:"description"`
	StartsAt    *time.Time `json:"starts_at"`
	EndsAt      *time.Time `json:"ends_at"`
}

// FindingSpec is an example finding of an EventSpec; Workshop is the
// 1-based number of the workshop among the event's workshops.
type FindingSpec struct {
	Workshop int `json:"workshop"`
	FindingInput
	ReleaseState string `json:"release_state"`
}

// CreateEvent creates the event described by spec in one transaction and
// returns it. It fails with Conflict when the slug is taken.
func (s *Store) CreateEvent(ctx context.Context, spec EventSpec) (domain.Event, error) {
	ev := domain.Event{Slug: spec.Slug, Title: spec.Title, Description: spec.Description, Venue: spec.Venue,
		Timezone: spec.Timezone, Language: spec.Language, StartsAt: spec.StartsAt, EndsAt: spec.EndsAt}
	if ev.Timezone == "" {
		ev.Timezone = "UTC"
	}
	if ev.Language == "" {
		ev.Language = "en"
	}
	if _, err := time.LoadLocation(ev.Timezone); err != nil {
		return ev, domain.Errorf(domain.Invalid, "Unknown time zone %q.", ev.Timezone)
	}
	err := s.inTx(ctx, func(tx bun.Tx) error {
		var taken bool
		if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM events WHERE slug = ?)", spec.Slug).Scan(ctx, &taken); err != nil {
			return err
		}
		if taken {
			return domain.Errorf(domain.Conflict, "An event %q exists already.", spec.Slug)
		}
		if _, err := tx.NewInsert().Model(&ev).Returning("*").Exec(ctx); err != nil {
			var pgErr pgdriver.Error
			if errors.As(err, &pgErr) && pgErr.IntegrityViolation() {
				// Made meanwhile, by another process.
				return domain.Errorf(domain.Conflict, "An event %q exists already.", spec.Slug)
			}
			return fmt.Errorf("insert event: %w", err)
		}
		var workshops []domain.Workshop
		for i, ps := range spec.Parts {
			p := domain.Part{EventID: ev.ID, Position: i + 1, Title: ps.Title, Description: ps.Description,
				Kind: ps.Kind, StartsAt: ps.StartsAt, EndsAt: ps.EndsAt, Streamed: ps.Streamed}
			if _, err := tx.NewInsert().Model(&p).Returning("id").Exec(ctx); err != nil {
				return fmt.Errorf("insert part %q: %w", ps.Title, err)
			}
			for j, ws := range ps.Workshops {
				w := domain.Workshop{EventID: ev.ID, PartID: p.ID, Position: j + 1, Name: ws.Name,
					Description: ws.Description, RoomName: ws.RoomName, ReleaseState: domain.Draft}
				if _, err := tx.NewInsert().Model(&w).Returning("id").Exec(ctx); err != nil {
					return fmt.Errorf("insert workshop %q: %w", ws.Name, err)
				}
				workshops = append(workshops, w)
			}
		}
		for i, ss := range spec.SideEvents {
			se := domain.SideEvent{EventID: ev.ID, Position: i + 1, Title: ss.Title, Organiser: ss.Organiser,
				Description: ss.Description, StartsAt: ss.StartsAt, EndsAt: ss.EndsAt, ReleaseState: domain.Draft}
			if _, err := tx.NewInsert().Model(&se).Exec(ctx); err != nil {
				return fmt.Errorf("insert side event %q: %w", ss.Title, err)
			}
		}
		var terms []domain.Term
		for dim, pairs := range spec.Taxonomy {
			for i, kv := range pairs {
				terms = append(terms, domain.Term{EventID: ev.ID, Dimension: dim, Key: kv[0], Label: kv[1], Position: i + 1})
			}
		}
		if len(terms) > 0 {
			if _, err := tx.NewInsert().Model(&terms).Exec(ctx); err != nil {
				return fmt.Errorf("insert taxonomy: %w", err)
			}
		}
		tax, err := loadTaxonomy(ctx, tx, ev.ID)
		if err != nil {
			return err
		}
		for i, fs := range spec.Findings {
			if fs.Workshop < 1 || fs.Workshop > len(workshops) {
				return domain.Errorf(domain.Invalid, "Example finding %d names workshop %d of %d.", i+1, fs.Workshop, len(workshops))
			}
			w := workshops[fs.Workshop-1]
			f, err := fs.FindingInput.finding(tax)
			if err != nil {
				return err
			}
			f.EventID, f.WorkshopID = ev.ID, &w.ID
			if fs.ReleaseState != "" {
				f.ReleaseState = fs.ReleaseState
			}
			if _, err := tx.NewInsert().Model(&f).Returning("id, created_at, updated_at").Exec(ctx); err != nil {
				return fmt.Errorf("insert example finding %d: %w", i+1, err)
			}
			if _, err := appendEntry(ctx, tx, WorkshopRoom(w.ID), fmt.Sprintf("seed-%d", i+1), nil, "finding.create", f); err != nil {
				return err
			}
		}
		return nil
	})
	return ev, err
}
