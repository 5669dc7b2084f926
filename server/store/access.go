package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// AccessChannel is the Postgres channel on which a change of access is
// announced to every server process, for the connections each holds
// (see Follow): a sign-in session ended (AccessSession), or a person's
// roles changed (AccessPerson).
const AccessChannel = "rapporteur_access"

// Kinds of access change.
const (
	AccessSession = "session" // the id is a session's: close its connections
	AccessPerson  = "person"  // the id is a person's: their connections reconnect, to be checked against the new roles
	// AccessRestored: a process found a room's log restored from a backup
	// (see RestoredID); the others' members of the room join again.
	AccessRestored = "restored"
	// accessListening is a process's note to itself that it listens
	// (see Follow); the others pass over it.
	accessListening = "listening"
)

// AnnounceAccess announces a change of kind about id to every process.
// from names the announcing process, which has acted on it already.
func (s *Store) AnnounceAccess(ctx context.Context, from, kind, id string) error {
	if _, err := s.db.ExecContext(ctx, "SELECT pg_notify(?, ?)", AccessChannel, kind+" "+id+" "+from); err != nil {
		return fmt.Errorf("announce %s %s: %w", kind, id, err)
	}
	return nil
}

// PresenceChannel is the Postgres channel on which each server process
// says who is in its part of a room (a note the server encodes; see
// Follow). It is never stored.
const PresenceChannel = "rapporteur_presence"

// MaxNote is the largest note AnnouncePresence takes: Postgres takes
// notifications under 8000 bytes.
const MaxNote = 7900

// AnnouncePresence passes note to every process's Followers.Presence. A
// note over MaxNote bytes is refused.
func (s *Store) AnnouncePresence(ctx context.Context, note string) error {
	if len(note) > MaxNote {
		return fmt.Errorf("announce presence: %d bytes, over %d", len(note), MaxNote)
	}
	if _, err := s.db.ExecContext(ctx, "SELECT pg_notify(?, ?)", PresenceChannel, note); err != nil {
		return fmt.Errorf("announce presence: %w", err)
	}
	return nil
}

// RestoredID is the id of an AccessRestored announcement: room, whose log
// had head head when its restore was found. Room names hold no space.
func RestoredID(room string, head int64) string {
	return room + "@" + strconv.FormatInt(head, 10)
}

// ParseRestored reads a RestoredID.
func ParseRestored(id string) (room string, head int64, ok bool) {
	i := strings.LastIndexByte(id, '@')
	if i <= 0 {
		return "", 0, false
	}
	head, err := strconv.ParseInt(id[i+1:], 10, 64)
	return id[:i], head, err == nil && head >= 0
}

// parseAccess reads an AccessChannel payload.
func parseAccess(payload string) (from, kind, id string, ok bool) {
	f := strings.Fields(payload)
	if len(f) != 3 {
		return "", "", "", false
	}
	return f[2], f[0], f[1], true
}
