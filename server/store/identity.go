package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"golang.org/x/text/unicode/norm"
)

// MaxAttempts bounds the OIDC sign-ins in progress a server keeps: each
// unauthenticated visit of /auth/login starts one, and without a bound
// anyone could fill the database with them.
const MaxAttempts = 10000

// PutAttempt stores an OIDC sign-in in progress (auth.AttemptStore) and
// drops expired ones. The state is kept only as a hash. With MaxAttempts
// in progress already it is auth.ErrTooManyAttempts.
func (s *Store) PutAttempt(ctx context.Context, a auth.Attempt) error {
	if _, err := s.db.NewRaw("DELETE FROM oidc_attempts WHERE expires_at < now() - interval '1 hour'").Exec(ctx); err != nil {
		return fmt.Errorf("drop expired sign-in attempts: %w", err)
	}
	var full bool
	if err := s.db.NewRaw("SELECT count(*) >= ? FROM (SELECT 1 FROM oidc_attempts LIMIT ?) a", MaxAttempts, MaxAttempts).Scan(ctx, &full); err != nil {
		return fmt.Errorf("count sign-in attempts: %w", err)
	}
	if full {
		return auth.ErrTooManyAttempts
	}
	_, err := s.db.NewRaw("INSERT INTO oidc_attempts (state_hash, nonce, verifier, return_to, expires_at) VALUES (?, ?, ?, ?, ?)",
		auth.HashToken(a.State), a.Nonce, a.Verifier, a.ReturnTo, a.Expires).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record sign-in attempt: %w", err)
	}
	return nil
}

// TakeAttempt returns and deletes the attempt for state in one statement
// (auth.AttemptStore), so a state is used once even across processes.
func (s *Store) TakeAttempt(ctx context.Context, state string) (auth.Attempt, error) {
	a := auth.Attempt{State: state}
	err := s.db.NewRaw("DELETE FROM oidc_attempts WHERE state_hash = ? RETURNING nonce, verifier, return_to, expires_at", auth.HashToken(state)).
		Scan(ctx, &a.Nonce, &a.Verifier, &a.ReturnTo, &a.Expires)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Attempt{}, auth.ErrNoAttempt
	}
	if err != nil {
		return auth.Attempt{}, fmt.Errorf("take sign-in attempt: %w", err)
	}
	return a, nil
}

// OIDCSignIn is a verified staff member as the provider describes them,
// and what their roles claim grants in one event.
type OIDCSignIn struct {
	Issuer, Subject string
	Email           string
	EmailVerified   bool
	Name            string
	// EventID is the event the roles claim applies to; with SyncRoles the
	// person's claim-granted memberships there are made to equal Roles
	// (event-wide roles only), and those in other events become those
	// events' own; roles given by hand are never touched.
	EventID   int64
	SyncRoles bool
	Roles     map[string]string // our role → the claim value that grants it
}

// OIDCOutcome is what a sign-in with an organisation account did.
type OIDCOutcome struct {
	Person       domain.Person
	RolesChanged bool     // the claim granted or took back a role
	NameChanged  bool     // the claim renamed a person known before
	Ended        []string // sessions ended (their connections are the caller's to close)
}

// SignInOIDC finds the person by issuer and subject (or, the first time,
// by a verified email of a person not yet linked to any provider), creates
// them otherwise, takes name and email from the claims, syncs the roles the
// claim grants, and records the sign-in, all in one transaction.
//
// A person found by email was made by someone else (an organizer, an
// import), who may hold a session of theirs from a link: their sessions
// end and their links are revoked, so that the roles the account brings
// reach only sessions the account itself starts.
func (s *Store) SignInOIDC(ctx context.Context, in OIDCSignIn) (OIDCOutcome, error) {
	var out OIDCOutcome
	err := s.inTx(ctx, func(tx bun.Tx) error {
		out = OIDCOutcome{}
		var p domain.Person
		rolesChanged, byEmail := false, false
		// In NFC, as people are stored (see PersonInput.person).
		email, name := norm.NFC.String(strings.TrimSpace(in.Email)), cleanClaim(norm.NFC.String(in.Name), domain.MaxPersonName)
		if checkText("email", email, domain.MaxEmail) != nil {
			email = "" // an address we cannot store is no address to find or keep
		}
		err := tx.NewSelect().Model(&p).Where("oidc_issuer = ? AND oidc_subject = ?", in.Issuer, in.Subject).For("UPDATE").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) && in.EmailVerified && email != "" {
			// NO KEY UPDATE: a sign-in with one of the person's links may
			// hold the link's row and need a key-share lock on the person
			// for its audit record, while this one waits to revoke that
			// link (FOR UPDATE would deadlock with it).
			err = tx.NewSelect().Model(&p).Where("lower(email) = lower(?) AND oidc_subject IS NULL", email).For("NO KEY UPDATE").Scan(ctx)
			byEmail = err == nil
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			p = domain.Person{Name: firstNonEmpty(name, email, "Staff member")}
		case err != nil:
			return fmt.Errorf("find person by identity: %w", err)
		}
		detail := map[string]any{"issuer": in.Issuer, "subject": in.Subject}
		// Before the person's row is updated (setting oidc_subject, a key,
		// takes the strongest lock on it).
		if byEmail {
			out.Ended = []string{}
			if err := tx.NewRaw("DELETE FROM sessions WHERE person_id = ? RETURNING id", p.ID).Scan(ctx, &out.Ended); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("end sessions: %w", err)
			}
			res, err := tx.NewRaw("UPDATE invites SET revoked_at = now() WHERE person_id = ? AND revoked_at IS NULL", p.ID).Exec(ctx)
			if err != nil {
				return fmt.Errorf("revoke links: %w", err)
			}
			revoked, _ := res.RowsAffected()
			detail["linked_by_email"], detail["sessions_ended"], detail["links_revoked"] = true, len(out.Ended), revoked
		}
		if name != "" {
			out.NameChanged = p.ID != 0 && p.Name != name
			p.Name = name
		}
		p.OIDCIssuer, p.OIDCSubject = &in.Issuer, &in.Subject
		switch {
		case !in.EmailVerified:
			// An address the provider does not vouch for is not kept: an
			// organizer adding someone by email would give its claimer
			// their roles (AddMember and imports find people by email).
			// The same address kept from before (an earlier version kept
			// it) goes too; one an organizer gave is kept.
			if p.Email != nil && email != "" && strings.EqualFold(norm.NFC.String(*p.Email), email) {
				p.Email = nil
				detail["unverified_email_dropped"] = true
			}
		case email != "":
			var taken bool
			if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM people WHERE lower(email) = lower(?) AND id <> ?)", email, p.ID).Scan(ctx, &taken); err != nil {
				return err
			}
			if !taken { // someone else's address stays theirs
				p.Email = &email
			}
		}
		if p.ID == 0 {
			if _, err := tx.NewInsert().Model(&p).Returning("id, created_at").Exec(ctx); err != nil {
				var pgErr pgdriver.Error
				if errors.As(err, &pgErr) && pgErr.IntegrityViolation() {
					return domain.Errorf(domain.Conflict, "Another sign-in of this account is under way; please try again.")
				}
				return fmt.Errorf("create person: %w", err)
			}
		} else if _, err := tx.NewUpdate().Model(&p).Column("name", "email", "oidc_issuer", "oidc_subject").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update person: %w", err)
		}
		if in.SyncRoles && in.EventID != 0 {
			changed, err := s.syncClaimRoles(ctx, tx, p.ID, in.EventID, in.Roles)
			if err != nil {
				return err
			}
			rolesChanged = changed
		}
		var ev *int64
		if in.EventID != 0 {
			ev = &in.EventID
		}
		out.Person, out.RolesChanged = p, rolesChanged
		return s.Audit(ctx, tx, &p.ID, ev, "signin.oidc", fmt.Sprintf("person:%d", p.ID), detail)
	})
	if err != nil {
		return OIDCOutcome{}, err
	}
	return out, nil
}

// syncClaimRoles makes the person's claim-granted event-wide memberships
// equal want, auditing each grant and revocation; changed tells whether
// it granted or revoked any.
func (s *Store) syncClaimRoles(ctx context.Context, tx bun.Tx, personID, eventID int64, want map[string]string) (changed bool, err error) {
	type held struct {
		ID      int64
		Role    string
		Granted bool
	}
	var hs []held
	err = tx.NewRaw(`SELECT m.id, m.role, g.membership_id IS NOT NULL AS granted
		FROM memberships m LEFT JOIN oidc_role_grants g ON g.membership_id = m.id
		WHERE m.person_id = ? AND m.event_id = ? AND m.workshop_id IS NULL`, personID, eventID).Scan(ctx, &hs)
	if err != nil {
		return false, fmt.Errorf("read memberships: %w", err)
	}
	target := fmt.Sprintf("person:%d", personID)
	// Roles the claim granted in another event (OIDC_EVENT was another
	// then) are the claim's no longer: they become that event's own, which
	// its organizers may change or take away (they could not while the
	// claim held them). Not taken back here: they may be all the
	// organizers that event has.
	var stale []struct {
		EventID int64
		Role    string
	}
	err = tx.NewRaw(`DELETE FROM oidc_role_grants g USING memberships m
		WHERE g.membership_id = m.id AND m.person_id = ? AND m.event_id <> ?
		RETURNING m.event_id, m.role`, personID, eventID).Scan(ctx, &stale)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("release roles of other events: %w", err)
	}
	for _, st := range stale {
		if err := s.Audit(ctx, tx, nil, &st.EventID, "role.unclaim", target, map[string]any{"role": st.Role,
			"why": "granted by the OIDC roles claim while OIDC_EVENT was this event; now the event's own"}); err != nil {
			return false, err
		}
	}
	for _, h := range hs {
		if _, keep := want[h.Role]; h.Granted && !keep {
			if _, err := tx.NewRaw("DELETE FROM memberships WHERE id = ?", h.ID).Exec(ctx); err != nil {
				return false, fmt.Errorf("revoke role: %w", err)
			}
			if err := s.Audit(ctx, tx, nil, &eventID, "role.revoke", target, map[string]any{"role": h.Role, "why": "no longer in the OIDC roles claim"}); err != nil {
				return false, err
			}
			changed = true
		}
	}
	roles := make([]string, 0, len(want))
	for r := range want {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	for _, role := range roles {
		if slices.ContainsFunc(hs, func(h held) bool { return h.Role == role }) {
			continue
		}
		m := domain.Membership{EventID: eventID, PersonID: personID, Role: role, Attribution: "chatham"}
		if _, err := tx.NewInsert().Model(&m).Returning("id").Exec(ctx); err != nil {
			return false, fmt.Errorf("grant role %s: %w", role, err)
		}
		if _, err := tx.NewRaw("INSERT INTO oidc_role_grants (membership_id, claim_value) VALUES (?, ?)", m.ID, want[role]).Exec(ctx); err != nil {
			return false, fmt.Errorf("record role grant: %w", err)
		}
		if err := s.Audit(ctx, tx, nil, &eventID, "role.grant", target, map[string]any{"role": role, "claim": want[role]}); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// RecordSignOut writes the audit entry of a sign-out.
func (s *Store) RecordSignOut(ctx context.Context, personID int64, at time.Time) error {
	return s.Audit(ctx, nil, &personID, nil, "signout", fmt.Sprintf("person:%d", personID), map[string]any{"at": at.UTC()})
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// cleanClaim makes a name an identity provider sent storable: invalid
// UTF-8 and NULs are dropped and it is cut to limit characters. A sign-in
// is not refused for the provider's spelling of a name.
func cleanClaim(s string, limit int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit])
	}
	return strings.TrimSpace(s)
}
