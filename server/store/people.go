package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"golang.org/x/text/unicode/norm"
)

// LoadOnce runs load unless the setting key says it ran before, and then
// records that it did; it reports whether load ran. The two are not one
// transaction: load must take having run already (a start that died
// before the record, another process starting at the same time).
func (s *Store) LoadOnce(ctx context.Context, key string, load func(ctx context.Context) error) (bool, error) {
	var done bool
	if err := s.db.NewRaw("SELECT EXISTS (SELECT 1 FROM settings WHERE key = ?)", key).Scan(ctx, &done); err != nil {
		return false, fmt.Errorf("read setting %s: %w", key, err)
	}
	if done {
		return false, nil
	}
	if err := load(ctx); err != nil {
		return false, err
	}
	if _, err := s.db.NewRaw("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", key, time.Now().UTC().Format(time.RFC3339)).Exec(ctx); err != nil {
		return false, fmt.Errorf("record setting %s: %w", key, err)
	}
	return true, nil
}

// Person returns one person.
func (s *Store) Person(ctx context.Context, id int64) (domain.Person, error) {
	var p domain.Person
	if err := s.db.NewSelect().Model(&p).Where("id = ?", id).Scan(ctx); err != nil {
		return p, notFound(err, "There is no person %d.", id)
	}
	return p, nil
}

// Memberships returns a person's memberships in an event.
func (s *Store) Memberships(ctx context.Context, personID, eventID int64) ([]domain.Membership, error) {
	ms := []domain.Membership{}
	if err := s.db.NewSelect().Model(&ms).Where("person_id = ? AND event_id = ?", personID, eventID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("read memberships: %w", err)
	}
	return ms, nil
}

// EnsureOrganizer returns the event's bootstrap organizer (the person the
// printed sign-in link is for), creating them on first use.
func (s *Store) EnsureOrganizer(ctx context.Context, eventID int64) (domain.Person, error) {
	var p domain.Person
	err := s.inTx(ctx, func(tx bun.Tx) error {
		// Processes starting together make one organizer, not one each.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('rapporteur.bootstrap-organizer:' || ?::text))", eventID); err != nil {
			return fmt.Errorf("lock the bootstrap organizer: %w", err)
		}
		// Never one who signs in with an organisation account: they get no
		// link (see linkRefusals).
		err := tx.NewSelect().Model(&p).
			Where("id = (SELECT m.person_id FROM memberships m JOIN people x ON x.id = m.person_id WHERE m.event_id = ? AND m.role = 'organizer' AND x.oidc_subject IS NULL ORDER BY m.id LIMIT 1)", eventID).
			Scan(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		p = domain.Person{Name: "Organizer"}
		if _, err := tx.NewInsert().Model(&p).Returning("id, created_at").Exec(ctx); err != nil {
			return fmt.Errorf("create organizer: %w", err)
		}
		m := domain.Membership{EventID: eventID, PersonID: p.ID, Role: domain.RoleOrganizer, Attribution: "chatham"}
		if _, err := tx.NewInsert().Model(&m).Exec(ctx); err != nil {
			return fmt.Errorf("make organizer: %w", err)
		}
		return s.Audit(ctx, tx, nil, &eventID, "membership.create", fmt.Sprintf("person:%d", p.ID), map[string]any{"role": domain.RoleOrganizer, "why": "bootstrap organizer"})
	})
	return p, err
}

// Invite is a personal sign-in link as stored (its token only as a hash).
type Invite struct {
	bun.BaseModel `bun:"table:invites"`
	ID            int64 `bun:",pk,autoincrement"`
	EventID       int64
	PersonID      int64
	TokenHash     string
	Once          bool      `bun:",notnull"`
	CreatedAt     time.Time `bun:",nullzero,default:now()"`
	ExpiresAt     time.Time
	UsedAt        *time.Time
	RevokedAt     *time.Time
}

// CreateInvite stores a sign-in link for a person in an event.
func (s *Store) CreateInvite(ctx context.Context, inv Invite) (Invite, error) {
	if _, err := s.db.NewInsert().Model(&inv).Returning("id, created_at").Exec(ctx); err != nil {
		return inv, fmt.Errorf("create invite: %w", err)
	}
	return inv, nil
}

// RedeemInvite checks the link with tokenHash at now and returns it; a
// one-use link is used up. Unknown, revoked, expired and used links are
// refused with Unauthorized and a message that says which.
func (s *Store) RedeemInvite(ctx context.Context, tokenHash string, now time.Time) (Invite, error) {
	var inv Invite
	err := s.inTx(ctx, func(tx bun.Tx) error {
		var err error
		if inv, err = usableInvite(ctx, tx, tokenHash, now, true); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(&inv).Set("used_at = ?", now).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.Audit(ctx, tx, &inv.PersonID, &inv.EventID, "signin.link", fmt.Sprintf("invite:%d", inv.ID), nil)
	})
	return inv, err
}

// UnuseInvite gives back a one-time link whose sign-in failed before a
// session began, so that a database error does not use it up.
func (s *Store) UnuseInvite(ctx context.Context, id int64) error {
	if _, err := s.db.NewRaw("UPDATE invites SET used_at = NULL WHERE id = ? AND once", id).Exec(ctx); err != nil {
		return fmt.Errorf("give back link %d: %w", id, err)
	}
	return nil
}

// InviteRevoked tells whether link id is revoked.
func (s *Store) InviteRevoked(ctx context.Context, id int64) (bool, error) {
	var revoked bool
	if err := s.db.NewRaw("SELECT revoked_at IS NOT NULL FROM invites WHERE id = ?", id).Scan(ctx, &revoked); err != nil {
		return false, notFound(err, "There is no sign-in link %d.", id)
	}
	return revoked, nil
}

// CheckInvite tells whether the link with tokenHash would sign someone in
// now, without using it, and whom.
func (s *Store) CheckInvite(ctx context.Context, tokenHash string, now time.Time) (domain.Person, error) {
	var p domain.Person
	err := s.inTx(ctx, func(tx bun.Tx) error {
		inv, err := usableInvite(ctx, tx, tokenHash, now, false)
		if err != nil {
			return err
		}
		return tx.NewSelect().Model(&p).Where("id = ?", inv.PersonID).Scan(ctx)
	})
	return p, err
}

// usableInvite reads the link with tokenHash (locked when lock) and
// refuses, as Unauthorized, one that cannot sign anyone in now.
func usableInvite(ctx context.Context, tx bun.Tx, tokenHash string, now time.Time, lock bool) (Invite, error) {
	var inv Invite
	q := tx.NewSelect().Model(&inv).Where("token_hash = ?", tokenHash)
	if lock {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return inv, domain.Errorf(domain.Unauthorized, "This sign-in link is not valid. Ask an organizer for a new one.")
		}
		return inv, err
	}
	switch {
	case inv.RevokedAt != nil:
		return inv, domain.Errorf(domain.Unauthorized, "This sign-in link was revoked. Ask an organizer for a new one.")
	case !now.Before(inv.ExpiresAt):
		return inv, domain.Errorf(domain.Unauthorized, "This sign-in link expired on %s. Ask an organizer for a new one.", inv.ExpiresAt.UTC().Format("2 Jan 2006 15:04 MST"))
	case inv.Once && inv.UsedAt != nil:
		return inv, domain.Errorf(domain.Unauthorized, "This one-time sign-in link was used already. Ask an organizer for a new one.")
	}
	return inv, nil
}

// CreateSession stores a session (auth.SessionStore).
func (s *Store) CreateSession(ctx context.Context, sess auth.Session) error {
	_, err := s.db.NewRaw("INSERT INTO sessions (id, person_id, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)",
		sess.ID, sess.PersonID, sess.CSRF, sess.Created, sess.LastSeen).Exec(ctx)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession reads a session (auth.SessionStore).
func (s *Store) GetSession(ctx context.Context, id string) (auth.Session, error) {
	var sess auth.Session
	err := s.db.NewRaw("SELECT id, person_id, csrf, created_at, last_seen FROM sessions WHERE id = ?", id).
		Scan(ctx, &sess.ID, &sess.PersonID, &sess.CSRF, &sess.Created, &sess.LastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, auth.ErrNoSession
	}
	if err != nil {
		return sess, fmt.Errorf("read session: %w", err)
	}
	return sess, nil
}

// TouchSession records use of a session (auth.SessionStore).
func (s *Store) TouchSession(ctx context.Context, id string, seen time.Time) error {
	if _, err := s.db.NewRaw("UPDATE sessions SET last_seen = ? WHERE id = ?", seen, id).Exec(ctx); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session (auth.SessionStore).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.NewRaw("DELETE FROM sessions WHERE id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PersonInput describes a person to add to an event.
type PersonInput struct {
	Name         string
	Email        string
	Organisation string
	Country      string
	ActorType    string
}

// person is the person in describes, its texts in Unicode NFC: a name
// typed on one device and exported from another (a Mac's NFD "Å" is two
// code points) is then one name, to the eye and to a comparison.
func (in PersonInput) person() domain.Person {
	p := domain.Person{Name: norm.NFC.String(in.Name), Organisation: norm.NFC.String(in.Organisation), Country: in.Country, ActorType: in.ActorType}
	if in.Email != "" {
		email := norm.NFC.String(in.Email)
		p.Email = &email
	}
	return p
}

// AddMember creates a person with one membership in an event, in one
// transaction, and records it in the audit trail. workshopID is 0 for
// event-wide roles. A person of other events with in's email (an expert
// who comes back) is given the membership instead, as they are, and the
// Joining says what else that did (see joinPerson); it is nil for a new
// person. Such a person is Forbidden unless the actor organizes every
// event they are in; one of this event already is a Conflict.
func (s *Store) AddMember(ctx context.Context, actor *int64, eventID int64, in PersonInput, role string, workshopID int64) (domain.Person, *Joining, error) {
	p := in.person()
	var joined *Joining
	err := s.inTx(ctx, func(tx bun.Tx) error {
		if err := lockPeopleOf(ctx, tx, eventID); err != nil {
			return err
		}
		if p.Email != nil {
			key := Fold(*p.Email)
			var here bool
			if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM people WHERE lower(email) = ? AND id IN (SELECT person_id FROM memberships WHERE event_id = ?))", key, eventID).Scan(ctx, &here); err != nil {
				return fmt.Errorf("look the email up: %w", err)
			}
			if here {
				return domain.Errorf(domain.Conflict, "A person of this event has the email %q already.", *p.Email)
			}
			found, refusals, err := peopleElsewhere(ctx, tx, actor, eventID, []string{key})
			if err != nil {
				return err
			}
			if n := refusals[key]; n > 0 {
				return domain.Errorf(domain.Forbidden, "%s.", notOrganized(*p.Email, n))
			}
			if k := found[key]; k != nil {
				j, err := s.joinPerson(ctx, tx, actor, eventID, *k, role, workshopID)
				p, joined = *k, &j
				return err
			}
		}
		if err := addMember(ctx, tx, &p, eventID, role, workshopID); err != nil {
			return err
		}
		return s.Audit(ctx, tx, actor, &eventID, "membership.create", fmt.Sprintf("person:%d", p.ID), map[string]any{"role": role, "workshop_id": workshopID})
	})
	if err != nil {
		return domain.Person{}, nil, err
	}
	return p, joined, nil
}

func addMember(ctx context.Context, tx bun.Tx, p *domain.Person, eventID int64, role string, workshopID int64) error {
	if err := checkPerson(p); err != nil {
		return err
	}
	if _, err := tx.NewInsert().Model(p).Returning("id, created_at").Exec(ctx); err != nil {
		var pgErr pgdriver.Error
		if errors.As(err, &pgErr) && pgErr.IntegrityViolation() {
			return domain.Errorf(domain.Conflict, "A person with the email %q exists already.", deref(p.Email))
		}
		return fmt.Errorf("create person: %w", err)
	}
	return addMembership(ctx, tx, p.ID, eventID, role, workshopID)
}

// addMembership gives a person a role in an event (in workshopID, or
// event-wide when 0).
func addMembership(ctx context.Context, tx bun.Tx, person, eventID int64, role string, workshopID int64) error {
	m := domain.Membership{EventID: eventID, PersonID: person, Role: role, Attribution: "chatham"}
	if workshopID != 0 {
		var ok bool
		if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM workshops WHERE id = ? AND event_id = ?)", workshopID, eventID).Scan(ctx, &ok); err != nil {
			return err
		}
		if !ok {
			return domain.Errorf(domain.Invalid, "There is no workshop %d in this event.", workshopID)
		}
		m.WorkshopID = &workshopID
	}
	if _, err := tx.NewInsert().Model(&m).Exec(ctx); err != nil {
		var pgErr pgdriver.Error
		if errors.As(err, &pgErr) && pgErr.IntegrityViolation() {
			return domain.Errorf(domain.Invalid, "Role %q needs a workshop (participants and rapporteurs belong to one), or is not a role.", role)
		}
		return fmt.Errorf("create membership: %w", err)
	}
	return nil
}

// checkPerson refuses a person without a name, or with a text that cannot
// be stored as given: not UTF-8, with a NUL (which the driver would drop
// without a word) or too long.
func checkPerson(p *domain.Person) error {
	if p.Name == "" {
		return domain.Errorf(domain.Invalid, "A person needs a name.")
	}
	for _, f := range []struct {
		what, value string
		limit       int
	}{
		{"name", p.Name, domain.MaxPersonName}, {"email", deref(p.Email), domain.MaxEmail},
		{"organisation", p.Organisation, domain.MaxPersonText}, {"country", p.Country, domain.MaxPersonText},
		{"actor type", p.ActorType, domain.MaxPersonText},
	} {
		if err := checkText(f.what, f.value, f.limit); err != nil {
			return err
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// AllMemberships returns every membership of a person, in all events.
func (s *Store) AllMemberships(ctx context.Context, personID int64) ([]domain.Membership, error) {
	ms := []domain.Membership{}
	if err := s.db.NewSelect().Model(&ms).Where("person_id = ?", personID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("read memberships: %w", err)
	}
	return ms, nil
}

// PeopleWithMemberships returns the people of ids (those that exist) and
// all their memberships, by person, in one read.
func (s *Store) PeopleWithMemberships(ctx context.Context, ids []int64) (map[int64]domain.Person, map[int64][]domain.Membership, error) {
	var ps []domain.Person
	if err := s.db.NewSelect().Model(&ps).Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("read people: %w", err)
	}
	var ms []domain.Membership
	if err := s.db.NewSelect().Model(&ms).Where("person_id IN (?)", bun.In(ids)).Order("id").Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("read memberships: %w", err)
	}
	people, byPerson := make(map[int64]domain.Person, len(ps)), make(map[int64][]domain.Membership, len(ps))
	for _, p := range ps {
		people[p.ID] = p
	}
	for _, m := range ms {
		byPerson[m.PersonID] = append(byPerson[m.PersonID], m)
	}
	return people, byPerson, nil
}

// MemberVersion names the state of a person as an edit of them in an
// event sees it (their name, details and roles there): an edit that names
// the version it was made on is refused when the person changed since.
func MemberVersion(p domain.Person, ms []domain.Membership) string {
	roles := roleNames(ms)
	slices.Sort(roles)
	h := sha256.New()
	for _, v := range append([]string{p.Name, deref(p.Email), p.Organisation, p.Country, p.ActorType}, roles...) {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// UpdateMember sets a person's name and details, and their role in an
// event (in workshopID, or event-wide when 0), in one transaction, and
// records what changed in the audit trail: a typo in an imported list, a
// participant moved to another group, a new rapporteur. A new role
// replaces the person's roles in the event and keeps their attribution
// choice. A person is one across events, so their name and details may
// be changed only by an organizer of every event they are in (Forbidden
// otherwise; their role here may still be changed). With a base (see
// MemberVersion), a person changed since is a Conflict and nothing is
// written. Roles granted by an
// organisation account's claims (see syncClaimRoles) are changed there,
// not here (Conflict). It tells whether anything changed: the person's
// open connections, which carry their name, label and roles, must then
// be checked again. A person of no role in the event is NotFound;
// another person's email, or taking the event's last organizer away, is
// a Conflict.
func (s *Store) UpdateMember(ctx context.Context, actor *int64, eventID, personID int64, in PersonInput, role string, workshopID int64, base string) (domain.Person, bool, error) {
	var p domain.Person
	roleChanged := false
	var changed []string
	err := s.inTx(ctx, func(tx bun.Tx) error {
		var ms []domain.Membership
		var err error
		if p, ms, err = lockedMember(ctx, tx, eventID, personID); err != nil {
			return err
		}
		was := roleNames(ms)
		if base != "" && base != MemberVersion(p, ms) {
			return domain.Errorf(domain.Conflict, "Someone changed %s since this form was loaded (their roles here now: %s). Nothing was saved: load the page again and make the change there.",
				p.Name, strings.Join(was, ", "))
		}
		next := in.person()
		for _, f := range []struct {
			name     string
			old, new string
		}{
			{"name", p.Name, next.Name}, {"email", deref(p.Email), deref(next.Email)}, {"organisation", p.Organisation, next.Organisation},
			{"country", p.Country, next.Country}, {"actor_type", p.ActorType, next.ActorType},
		} {
			if f.old != f.new {
				changed = append(changed, f.name)
			}
		}
		if len(changed) > 0 {
			other, err := eventsNotOrganized(ctx, tx, actor, eventID, []int64{personID})
			if err != nil {
				return err
			}
			if n := other[personID]; n > 0 {
				return domain.Errorf(domain.Forbidden, "%s is also in %d other event(s) that you do not organize, which show the same name and details; only an organizer of every event they are in can change them. Their role here can still be changed.", p.Name, n)
			}
			if err := checkPerson(&next); err != nil {
				return err
			}
			p.Name, p.Email, p.Organisation, p.Country, p.ActorType = next.Name, next.Email, next.Organisation, next.Country, next.ActorType
			if _, err := tx.NewUpdate().Model(&p).Column("name", "email", "organisation", "country", "actor_type").WherePK().Exec(ctx); err != nil {
				var pgErr pgdriver.Error
				if errors.As(err, &pgErr) && pgErr.IntegrityViolation() {
					return domain.Errorf(domain.Conflict, "A person with the email %q exists already.", deref(p.Email))
				}
				return fmt.Errorf("update person: %w", err)
			}
		}
		wid := &workshopID
		if workshopID == 0 {
			wid = nil
		}
		if len(ms) != 1 || roleName(role, wid) != was[0] {
			roleChanged = true
			if err := refuseClaimRoles(ctx, tx, p, ms); err != nil {
				return err
			}
			if err := keepAnOrganizer(ctx, tx, eventID, personID, role); err != nil {
				return err
			}
			if _, err := tx.NewDelete().Model((*domain.Membership)(nil)).Where("event_id = ? AND person_id = ?", eventID, personID).Exec(ctx); err != nil {
				return fmt.Errorf("replace roles: %w", err)
			}
			if err := addMembership(ctx, tx, personID, eventID, role, workshopID); err != nil {
				return err
			}
			if _, err := tx.NewRaw("UPDATE memberships SET attribution = ? WHERE event_id = ? AND person_id = ?", ms[0].Attribution, eventID, personID).Exec(ctx); err != nil {
				return fmt.Errorf("keep attribution: %w", err)
			}
		}
		if len(changed) == 0 && !roleChanged {
			return nil
		}
		detail := map[string]any{"changed": changed}
		if roleChanged {
			detail["roles_before"], detail["role"] = was, roleName(role, wid)
		}
		return s.Audit(ctx, tx, actor, &eventID, "person.update", fmt.Sprintf("person:%d", personID), detail)
	})
	if err != nil {
		return domain.Person{}, false, err
	}
	return p, roleChanged || len(changed) > 0, nil
}

// lockedMember takes the lock on eventID's people and the person's row,
// and returns the person with their roles in the event, read after the
// lock (a sign-in may change them until then: syncClaimRoles). A person
// of no role in the event is NotFound.
func lockedMember(ctx context.Context, tx bun.Tx, eventID, personID int64) (domain.Person, []domain.Membership, error) {
	var p domain.Person
	if err := lockPeopleOf(ctx, tx, eventID); err != nil {
		return p, nil, err
	}
	if err := tx.NewSelect().Model(&p).Where("id = ?", personID).For("NO KEY UPDATE").Scan(ctx); err != nil { // see peopleElsewhere
		return p, nil, notFound(err, "Person %d has no role in this event.", personID)
	}
	var ms []domain.Membership
	if err := tx.NewSelect().Model(&ms).Where("event_id = ? AND person_id = ?", eventID, personID).Order("id").Scan(ctx); err != nil {
		return p, nil, fmt.Errorf("read roles: %w", err)
	}
	if len(ms) == 0 {
		return p, nil, domain.Errorf(domain.NotFound, "Person %d has no role in this event.", personID)
	}
	return p, ms, nil
}

// refuseClaimRoles is a Conflict when one of ms was granted by p's
// organisation account's claims: their next sign-in would set it again,
// so it is changed at the identity provider.
func refuseClaimRoles(ctx context.Context, tx bun.Tx, p domain.Person, ms []domain.Membership) error {
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	var granted bool
	if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM oidc_role_grants WHERE membership_id IN (?))", bun.In(ids)).Scan(ctx, &granted); err != nil {
		return fmt.Errorf("read role grants: %w", err)
	}
	if granted {
		return domain.Errorf(domain.Conflict, "%s has roles here from their organisation account's groups (OIDC_ROLE_MAP), which their next sign-in would set again: change their groups there.", p.Name)
	}
	return nil
}

// roleNames names each of ms as roleName does, in their order.
func roleNames(ms []domain.Membership) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = roleName(m.Role, m.WorkshopID)
	}
	return names
}

// roleName is a role as the audit trail names it: "participant@12", or
// "organizer" for an event-wide one.
func roleName(role string, workshopID *int64) string {
	if workshopID == nil {
		return role
	}
	return fmt.Sprintf("%s@%d", role, *workshopID)
}

// keepAnOrganizer refuses to take the event's organizer role (any
// organizer manages its people: auth's ActPeopleManage) from personID,
// who is to have role now, when no one else has it: no one could manage
// the event's people any more.
func keepAnOrganizer(ctx context.Context, tx bun.Tx, eventID, personID int64, role string) error {
	if role == domain.RoleOrganizer {
		return nil
	}
	var others, theirs int
	if err := tx.NewRaw(`SELECT count(*) FILTER (WHERE person_id <> ?), count(*) FILTER (WHERE person_id = ?)
		FROM memberships WHERE event_id = ? AND role = 'organizer'`, personID, personID, eventID).Scan(ctx, &others, &theirs); err != nil {
		return fmt.Errorf("count organizers: %w", err)
	}
	if theirs > 0 && others == 0 {
		return domain.Errorf(domain.Conflict, "This is the event's only organizer: make someone else an organizer first.")
	}
	return nil
}

// RemoveMember takes all of a person's roles in an event away (someone
// imported by mistake, or who did not come), revokes the links given for
// the event (the event's cards), and records it in the audit trail. The
// person stays on the server: their findings keep their author, and
// their other events are theirs still. It returns the person. A person
// of no role in the event is NotFound; roles from an organisation
// account's claims, or the event's only organizer, are a Conflict.
func (s *Store) RemoveMember(ctx context.Context, actor *int64, eventID, personID int64) (domain.Person, error) {
	var p domain.Person
	err := s.inTx(ctx, func(tx bun.Tx) error {
		var ms []domain.Membership
		var err error
		if p, ms, err = lockedMember(ctx, tx, eventID, personID); err != nil {
			return err
		}
		if err := refuseClaimRoles(ctx, tx, p, ms); err != nil {
			return err
		}
		if err := keepAnOrganizer(ctx, tx, eventID, personID, ""); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*domain.Membership)(nil)).Where("event_id = ? AND person_id = ?", eventID, personID).Exec(ctx); err != nil {
			return fmt.Errorf("remove roles: %w", err)
		}
		res, err := tx.NewRaw("UPDATE invites SET revoked_at = now() WHERE event_id = ? AND person_id = ? AND revoked_at IS NULL", eventID, personID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("revoke the event's links: %w", err)
		}
		revoked, _ := res.RowsAffected()
		return s.Audit(ctx, tx, actor, &eventID, "person.remove", fmt.Sprintf("person:%d", personID), map[string]any{"roles_before": roleNames(ms), "links_revoked": revoked})
	})
	if err != nil {
		return domain.Person{}, err
	}
	return p, nil
}
