package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/rapporteur/rapporteur/server/domain"
	"golang.org/x/text/unicode/norm"
)

// ImportRow is one person of a participant list, with the workshop resolved.
type ImportRow struct {
	Line       int // the row's line in the file, for error reports
	Person     PersonInput
	Role       string
	WorkshopID int64 // 0 for event-wide roles
}

// RowProblem is one bad row of an import, the detail of an Invalid error.
type RowProblem struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// ImportResult is what an import did: the people it added, those of
// them who were people of other events (Joined, by row), and the rows it
// left out as people of the event already.
type ImportResult struct {
	Added   []domain.Person
	Joined  []RowProblem
	Already []RowProblem
	// Joinings are what the joins did besides the roles: their ended
	// sessions' connections are the caller's to close, and the open
	// connections of people who keep theirs to check again.
	Joinings []Joining `json:"-"`
}

// ImportPeople adds the rows' people, each with one membership, in one
// transaction. People of the event already are left out, so that a list
// imported again (with late registrations added, say) adds only its new
// people: a row with the email of a person of the event, and a row whose
// name is that of a person of the event who has no email (as many such
// rows of one name as the event has people of it without an email: a
// list that gives her email now is still her). Nothing of theirs is
// changed; Already lists those rows, saying when the row's name is not
// the person's. A row with the email of a person of other events (an
// expert who comes back) gives that person the row's role here, as
// joinPerson does; Joined lists those rows. Unless the actor organizes
// every event such a person is in, the whole import is refused with a
// RowProblem per such row, and nothing is stored. Imports of one event
// run one at a time (a form sent twice adds its people once).
func (s *Store) ImportPeople(ctx context.Context, actor *int64, eventID int64, rows []ImportRow) (ImportResult, error) {
	out := ImportResult{Added: []domain.Person{}, Joined: []RowProblem{}, Already: []RowProblem{}}
	err := s.inTx(ctx, func(tx bun.Tx) error {
		if err := lockPeopleOf(ctx, tx, eventID); err != nil {
			return err
		}
		var here []struct {
			Email sql.NullString
			Name  string
		}
		if err := tx.NewRaw("SELECT email, name FROM people WHERE id IN (SELECT person_id FROM memberships WHERE event_id = ?)", eventID).Scan(ctx, &here); err != nil {
			return fmt.Errorf("read the event's people: %w", err)
		}
		byEmail, noEmail := map[string]string{}, map[string]int{} // lower-case email: name; name key: people without an email
		for _, p := range here {
			if p.Email.Valid {
				byEmail[Fold(p.Email.String)] = p.Name
			} else {
				noEmail[nameKey(p.Name)]++
			}
		}
		var emails []string
		for _, r := range rows {
			if e := Fold(r.Person.Email); e != "" {
				if _, ok := byEmail[e]; !ok {
					emails = append(emails, e)
				}
			}
		}
		elsewhere, refusals, err := peopleElsewhere(ctx, tx, actor, eventID, emails)
		if err != nil {
			return err
		}
		var probs []RowProblem
		var add, join []ImportRow
		lineOf := map[string]int{} // folded email → the first row with it
		for _, r := range rows {
			email, name := Fold(r.Person.Email), nameKey(r.Person.Name)
			known, isHere := byEmail[email]
			first, repeated := lineOf[email]
			if email != "" && !repeated {
				lineOf[email] = r.Line
			}
			switch {
			case email != "" && repeated:
				// The parser refuses an email given twice, but compares
				// without Unicode normalisation.
				probs = append(probs, RowProblem{Line: r.Line, Field: "email", Message: fmt.Sprintf("%s is the email of line %d too", r.Person.Email, first)})
			case email != "" && isHere && nameKey(known) != name:
				out.Already = append(out.Already, RowProblem{Line: r.Line, Field: "email", Message: fmt.Sprintf("%s is the email of %s, who is in the event already; the row (%s) was left out", r.Person.Email, known, r.Person.Name)})
			case email != "" && isHere:
				out.Already = append(out.Already, RowProblem{Line: r.Line, Field: "email", Message: fmt.Sprintf("%s (%s) is in the event already; the row was left out", r.Person.Name, r.Person.Email)})
			case email != "" && refusals[email] > 0:
				probs = append(probs, RowProblem{Line: r.Line, Field: "email", Message: notOrganized(r.Person.Email, refusals[email]) + "; or give the row another email"})
			case email != "" && elsewhere[email] != nil:
				join = append(join, r)
			case noEmail[name] > 0:
				noEmail[name]--
				out.Already = append(out.Already, RowProblem{Line: r.Line, Field: "name", Message: fmt.Sprintf("%s is in the event already (without an email); the row was left out. Someone else of this name is added on the people page", r.Person.Name)})
			default:
				add = append(add, r)
			}
		}
		if len(probs) > 0 {
			return &domain.Error{Code: domain.Invalid, Message: fmt.Sprintf("%d row(s) cannot be imported; nothing was imported.", len(probs)), Detail: probs}
		}
		rowErr := func(r ImportRow, err error) error {
			var de *domain.Error
			if errors.As(err, &de) {
				return &domain.Error{Code: de.Code, Message: fmt.Sprintf("Line %d: %s Nothing was imported.", r.Line, de.Message),
					Detail: []RowProblem{{Line: r.Line, Message: de.Message}}}
			}
			return err
		}
		for _, r := range add {
			p := r.Person.person()
			if err := addMember(ctx, tx, &p, eventID, r.Role, r.WorkshopID); err != nil {
				return rowErr(r, err)
			}
			out.Added = append(out.Added, p)
		}
		for _, r := range join {
			p := *elsewhere[Fold(r.Person.Email)]
			j, err := s.joinPerson(ctx, tx, actor, eventID, p, r.Role, r.WorkshopID)
			if err != nil {
				return rowErr(r, err)
			}
			out.Added = append(out.Added, p)
			out.Joined = append(out.Joined, RowProblem{Line: r.Line, Field: "email", Message: j.Say(p)})
			out.Joinings = append(out.Joinings, j)
		}
		return s.Audit(ctx, tx, actor, &eventID, "people.import", fmt.Sprintf("event:%d", eventID), map[string]any{"people": len(add), "joined": len(join), "already": len(out.Already)})
	})
	if err != nil {
		return ImportResult{}, err
	}
	return out, nil
}

// peopleElsewhere finds the people who have the emails (each Fold-ed;
// the callers ask only for emails of no one in eventID), by that form, their rows locked until tx ends (see
// joinPerson); and, by email, in how many events the actor does not
// organize each is: only an organizer of every event a person is in may
// join them to eventID (a nil actor, the server itself, may join
// anyone).
func peopleElsewhere(ctx context.Context, tx bun.Tx, actor *int64, eventID int64, emails []string) (map[string]*domain.Person, map[string]int, error) {
	found, refusals := map[string]*domain.Person{}, map[string]int{}
	if len(emails) == 0 {
		return found, refusals, nil
	}
	// NO KEY UPDATE, not UPDATE: it excludes IssueInvites' FOR SHARE, but
	// not the key-share locks of foreign keys to the person, which a
	// sign-in holding a link's row takes for its audit record while the
	// join waits to revoke that link (a deadlock with FOR UPDATE).
	var ps []domain.Person
	if err := tx.NewSelect().Model(&ps).Where("lower(email) IN (?)", bun.In(emails)).Order("id").For("NO KEY UPDATE").Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("find people by email: %w", err)
	}
	ids := make([]int64, len(ps))
	for i := range ps {
		ids[i] = ps[i].ID
	}
	other := map[int64]int{}
	if len(ids) > 0 {
		var err error
		if other, err = eventsNotOrganized(ctx, tx, actor, eventID, ids); err != nil {
			return nil, nil, err
		}
	}
	for i := range ps {
		key := Fold(*ps[i].Email)
		found[key] = &ps[i]
		if n := other[ps[i].ID]; n > 0 {
			refusals[key] = n
		}
	}
	return found, refusals, nil
}

// notOrganized refuses to join the person with email, who is in n events
// the actor does not organize.
func notOrganized(email string, n int) string {
	return fmt.Sprintf("%s is the email of a person of %d other event(s) that you do not organize. Only an organizer of every event they are in can add them here", email, n)
}

// Joining is what giving a person already on the server a role in an
// event did besides the role (see joinPerson).
type Joining struct {
	PersonID     int64
	Sessions     []string // the sessions it ended: their connections are the caller's to close
	LinksRevoked int64
	// Staff is set for a person who signs in with an organisation
	// account: their sessions go on, and their open connections are the
	// caller's to check again, for the new role.
	Staff bool
}

// Say tells an organizer what joining p did.
func (j Joining) Say(p domain.Person) string {
	head := fmt.Sprintf("%s is %s, a person already on this server: added to this event as they are (their name and details are kept)", *p.Email, p.Name)
	if j.Staff {
		return head + "; they sign in with their organisation account"
	}
	return head + fmt.Sprintf("; their earlier sign-in links were revoked (%d) and they were signed out on every device, so give them a new link", j.LinksRevoked)
}

// joinPerson gives p, a person of other events (or of none) whose row
// the caller has locked (peopleElsewhere), a role in eventID. p keeps
// their name and details: a person is one across events. A sign-in link
// starts a session with every role of its person, so a link issued
// before, by an organizer of one of p's other events, would now reach
// this event too, and so would a session begun with one: joinPerson
// revokes all of p's links and ends all of p's sessions. Row locks keep
// a link from being issued meanwhile (IssueInvites locks the people it
// links). A person who signs in with an organisation account has no
// links (see linkRefusals), and sessions begun by that account only, so
// theirs go on. It records the join in the audit trail. The caller holds
// the event's people lock and checks that the actor may join p
// (peopleElsewhere).
func (s *Store) joinPerson(ctx context.Context, tx bun.Tx, actor *int64, eventID int64, p domain.Person, role string, workshopID int64) (Joining, error) {
	j := Joining{PersonID: p.ID, Sessions: []string{}, Staff: p.OIDCSubject != nil}
	if err := addMembership(ctx, tx, p.ID, eventID, role, workshopID); err != nil {
		return j, err
	}
	if j.Staff {
		return j, s.Audit(ctx, tx, actor, &eventID, "person.join", fmt.Sprintf("person:%d", p.ID),
			map[string]any{"role": role, "workshop_id": workshopID, "staff": true})
	}
	if err := tx.NewRaw("DELETE FROM sessions WHERE person_id = ? RETURNING id", p.ID).Scan(ctx, &j.Sessions); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("end sessions: %w", err)
	}
	res, err := tx.NewRaw("UPDATE invites SET revoked_at = now() WHERE person_id = ? AND revoked_at IS NULL", p.ID).Exec(ctx)
	if err != nil {
		return j, fmt.Errorf("revoke links: %w", err)
	}
	j.LinksRevoked, _ = res.RowsAffected()
	return j, s.Audit(ctx, tx, actor, &eventID, "person.join", fmt.Sprintf("person:%d", p.ID),
		map[string]any{"role": role, "workshop_id": workshopID, "sessions": len(j.Sessions), "links_revoked": j.LinksRevoked})
}

// lockPeopleOf waits for, and holds until tx ends, the lock on changes
// to an event's people: imports, additions, edits and removals run one at a time,
// so that a check of who is in the event holds until its change commits
// (a form sent twice adds its people once; two organizers cannot take
// the organizer role from each other at once).
func lockPeopleOf(ctx context.Context, tx bun.Tx, eventID int64) error {
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('rapporteur.import:' || ?::text))", eventID); err != nil {
		return fmt.Errorf("wait for other changes to the event's people: %w", err)
	}
	return nil
}

// Fold is a text as an import compares it (an email, a taxonomy term, a
// workshop's name): in NFC (a Mac's export may write "Å" as two code
// points) and lower case.
func Fold(s string) string { return strings.ToLower(norm.NFC.String(s)) }

// nameKey is a name as an import compares it: folded, its words one
// space apart.
func nameKey(name string) string {
	return strings.Join(strings.Fields(Fold(name)), " ")
}

// EventPerson is a person of an event with their roles there and their
// newest personal link.
type EventPerson struct {
	Person      domain.Person
	Memberships []domain.Membership
	Invite      *Invite // newest link, nil when none was made
}

// EventPeople lists the people with a role in an event, by name.
func (s *Store) EventPeople(ctx context.Context, eventID int64) ([]EventPerson, error) {
	var ps []domain.Person
	if err := s.db.NewSelect().Model(&ps).
		Where("id IN (SELECT person_id FROM memberships WHERE event_id = ?)", eventID).Order("name", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	var ms []domain.Membership
	if err := s.db.NewSelect().Model(&ms).Where("event_id = ?", eventID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list memberships: %w", err)
	}
	var invs []Invite
	if err := s.db.NewSelect().Model(&invs).
		DistinctOn("person_id").Where("event_id = ?", eventID).Order("person_id", "id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	out := make([]EventPerson, len(ps))
	for i, p := range ps {
		out[i].Person = p
		for _, m := range ms {
			if m.PersonID == p.ID {
				out[i].Memberships = append(out[i].Memberships, m)
			}
		}
		for j := range invs {
			if invs[j].PersonID == p.ID {
				out[i].Invite = &invs[j]
			}
		}
	}
	return out, nil
}

// IssueInvites stores a new link for each person (person id → token
// hash) in one transaction and revokes every earlier unrevoked link of
// theirs in the event, so only the newest printed card works. A person
// without a role in the event is NotFound; one the actor may not give a
// link to (see LinkRefusals) is Forbidden, and nothing is issued.
func (s *Store) IssueInvites(ctx context.Context, actor *int64, eventID int64, hashes map[int64]string, expires time.Time) (map[int64]Invite, error) {
	out := map[int64]Invite{}
	err := s.inTx(ctx, func(tx bun.Tx) error {
		ids := make([]int64, 0, len(hashes))
		for id := range hashes {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		// Locked against a join to another event meanwhile, which revokes
		// their links: one issued after its check, before its commit, would
		// escape it (see joinPerson).
		if len(ids) > 0 {
			if _, err := tx.NewRaw("SELECT id FROM people WHERE id IN (?) ORDER BY id FOR SHARE", bun.In(ids)).Exec(ctx); err != nil {
				return fmt.Errorf("lock people to link: %w", err)
			}
		}
		refused, err := linkRefusals(ctx, tx, actor, eventID, ids)
		if err != nil {
			return err
		}
		for _, pid := range ids {
			if err := checkMember(ctx, tx, eventID, pid); err != nil {
				return err
			}
			if why, ok := refused[pid]; ok {
				return domain.Errorf(domain.Forbidden, "%s", why)
			}
			res, err := tx.NewRaw("UPDATE invites SET revoked_at = now() WHERE event_id = ? AND person_id = ? AND revoked_at IS NULL", eventID, pid).Exec(ctx)
			if err != nil {
				return fmt.Errorf("revoke earlier links: %w", err)
			}
			inv := Invite{EventID: eventID, PersonID: pid, TokenHash: hashes[pid], ExpiresAt: expires}
			if _, err := tx.NewInsert().Model(&inv).Returning("id, created_at").Exec(ctx); err != nil {
				return fmt.Errorf("create invite: %w", err)
			}
			revoked, _ := res.RowsAffected()
			if err := s.Audit(ctx, tx, actor, &eventID, "invite.issue", fmt.Sprintf("person:%d", pid),
				map[string]any{"invite": inv.ID, "revoked_earlier": revoked, "expires_at": expires.UTC()}); err != nil {
				return err
			}
			out[pid] = inv
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SignOutEverywhere ends every session of a person of the event and
// revokes their sign-in links, in every event: for a lost tablet, whose browser
// keeps both its session and the link it was opened with. It returns the
// ended sessions' ids (their open connections are the caller's to close)
// and how many links it revoked. Sessions are a person's, not an event's:
// the person is signed out of every event, so an actor must organize
// every event the person is in (Forbidden otherwise).
func (s *Store) SignOutEverywhere(ctx context.Context, actor *int64, eventID, personID int64) ([]string, int64, error) {
	ids := []string{}
	var revoked int64
	err := s.inTx(ctx, func(tx bun.Tx) error {
		if err := checkMember(ctx, tx, eventID, personID); err != nil {
			return err
		}
		// A session is the person's, not the event's: it ends in every
		// event they are in, so the actor must organize each of them.
		other, err := eventsNotOrganized(ctx, tx, actor, eventID, []int64{personID})
		if err != nil {
			return err
		}
		if n := other[personID]; n > 0 {
			return domain.Errorf(domain.Forbidden, "This person is also in %d other event(s) that you do not organize; signing out everywhere would sign them out there too. An organizer of every event they are in can do it.", n)
		}
		if err := tx.NewRaw("DELETE FROM sessions WHERE person_id = ? RETURNING id", personID).Scan(ctx, &ids); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("end sessions: %w", err)
		}
		// Every link of theirs, in every event: each signs in with all
		// their roles (the actor organizes every event they are in).
		res, err := tx.NewRaw("UPDATE invites SET revoked_at = now() WHERE person_id = ? AND revoked_at IS NULL", personID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("revoke links: %w", err)
		}
		revoked, _ = res.RowsAffected()
		return s.Audit(ctx, tx, actor, &eventID, "person.signout_everywhere", fmt.Sprintf("person:%d", personID),
			map[string]any{"sessions": len(ids), "links_revoked": revoked})
	})
	if err != nil {
		return nil, 0, err
	}
	return ids, revoked, nil
}

// checkMember is NotFound unless the person has a role in the event.
// LinkRefusals tells, for each of the people of the event the actor may
// not give a sign-in link to, why (person id → message). A link starts a
// session with every role of the person, in every event, so:
//   - the actor must organize every event the person is in, or a link
//     would let them act as the person where they have no say;
//   - a person who signs in with an organisation account gets no link: it
//     would bypass that account's sign-in, and a session begun with one
//     would carry the roles the account's claims grant.
//
// A nil actor (the server itself) may link anyone.
func (s *Store) LinkRefusals(ctx context.Context, actor *int64, eventID int64, personIDs []int64) (map[int64]string, error) {
	var out map[int64]string
	err := s.inTx(ctx, func(tx bun.Tx) (err error) {
		out, err = linkRefusals(ctx, tx, actor, eventID, personIDs)
		return err
	})
	return out, err
}

func linkRefusals(ctx context.Context, tx bun.Tx, actor *int64, eventID int64, personIDs []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if actor == nil || len(personIDs) == 0 {
		return out, nil
	}
	other, err := eventsNotOrganized(ctx, tx, actor, eventID, personIDs)
	if err != nil {
		return nil, err
	}
	var ps []struct {
		ID    int64
		Name  string
		Staff bool
	}
	if err := tx.NewRaw("SELECT id, name, oidc_subject IS NOT NULL AS staff FROM people WHERE id IN (?)", bun.In(personIDs)).Scan(ctx, &ps); err != nil {
		return nil, fmt.Errorf("people to link: %w", err)
	}
	for _, p := range ps {
		switch {
		case p.Staff:
			out[p.ID] = fmt.Sprintf("%s signs in with their organisation account, so they get no sign-in link.", p.Name)
		case other[p.ID] > 0:
			out[p.ID] = fmt.Sprintf("%s is also in %d other event(s) that you do not organize, and a sign-in link would let its holder act for them there too. An organizer of every event they are in can give them a link.", p.Name, other[p.ID])
		}
	}
	return out, nil
}

// eventsNotOrganized counts, for each person, the events other than
// eventID that they are in and the actor does not organize (none for a
// nil actor, the server itself).
func eventsNotOrganized(ctx context.Context, tx bun.Tx, actor *int64, eventID int64, personIDs []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if actor == nil {
		return out, nil
	}
	var rows []struct {
		PersonID int64
		Other    int
	}
	if err := tx.NewRaw(`SELECT m.person_id, count(DISTINCT m.event_id) AS other FROM memberships m
		WHERE m.person_id IN (?) AND m.event_id <> ? AND NOT EXISTS (SELECT 1 FROM memberships o
			WHERE o.person_id = ? AND o.event_id = m.event_id AND o.role = 'organizer')
		GROUP BY m.person_id`, bun.In(personIDs), eventID, *actor).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("other events of people: %w", err)
	}
	for _, r := range rows {
		out[r.PersonID] = r.Other
	}
	return out, nil
}

func checkMember(ctx context.Context, tx bun.Tx, eventID, personID int64) error {
	var member bool
	if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM memberships WHERE event_id = ? AND person_id = ?)", eventID, personID).Scan(ctx, &member); err != nil {
		return err
	}
	if !member {
		return domain.Errorf(domain.NotFound, "Person %d has no role in this event.", personID)
	}
	return nil
}

// InviteByID returns one invite.
func (s *Store) InviteByID(ctx context.Context, id int64) (Invite, error) {
	var inv Invite
	if err := s.db.NewSelect().Model(&inv).Where("id = ?", id).Scan(ctx); err != nil {
		return inv, notFound(err, "There is no sign-in link %d.", id)
	}
	return inv, nil
}

// RevokeInvite revokes a link so it signs no one in any more; revoking a
// revoked link is a no-op. Sessions it already started are not ended.
func (s *Store) RevokeInvite(ctx context.Context, actor *int64, id int64) (Invite, error) {
	var inv Invite
	err := s.inTx(ctx, func(tx bun.Tx) error {
		if err := tx.NewSelect().Model(&inv).Where("id = ?", id).For("UPDATE").Scan(ctx); err != nil {
			return notFound(err, "There is no sign-in link %d.", id)
		}
		if inv.RevokedAt != nil {
			return nil
		}
		now := time.Now()
		inv.RevokedAt = &now
		if _, err := tx.NewUpdate().Model(&inv).Column("revoked_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("revoke invite: %w", err)
		}
		return s.Audit(ctx, tx, actor, &inv.EventID, "invite.revoke", fmt.Sprintf("invite:%d", inv.ID), map[string]any{"person": inv.PersonID})
	})
	return inv, err
}
