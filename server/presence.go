package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/store"
)

// presenceNote is a process's part of a room's presence as it goes to the
// other processes on store.PresenceChannel.
type presenceNote struct {
	From   string       `json:"f"`
	Room   string       `json:"r"`
	Count  int          `json:"n"`
	People []hub.Person `json:"p,omitempty"`
}

// encodePresence makes the note proc sends of p, listing fewer people
// (Count still says how many) when all would not fit in a notification.
func encodePresence(proc string, p hub.Presence) (string, bool) {
	n := presenceNote{From: proc, Room: p.Room, Count: p.Count, People: p.People}
	for {
		b, err := json.Marshal(n)
		if err != nil {
			return "", false
		}
		if len(b) <= store.MaxNote {
			return string(b), true
		}
		if len(n.People) == 0 {
			return "", false
		}
		n.People = n.People[:len(n.People)*3/4]
	}
}

// decodePresence reads a note that encodePresence made.
func decodePresence(note string) (proc string, p hub.Presence, ok bool) {
	var n presenceNote
	if json.Unmarshal([]byte(note), &n) != nil || n.From == "" || n.Room == "" || n.Count < 0 {
		return "", hub.Presence{}, false
	}
	return n.From, hub.Presence{Room: n.Room, Count: n.Count, People: n.People}, true
}

// presenceSharer is the hub's Config.SharePresence: it tells the other
// processes on st who is in proc's part of a room.
func presenceSharer(st *store.Store, proc string, log *slog.Logger) func(context.Context, hub.Presence) {
	return func(ctx context.Context, p hub.Presence) {
		note, ok := encodePresence(proc, p)
		if !ok {
			log.Warn("presence too big to tell the other processes", "room", p.Room)
			return
		}
		if err := st.AnnouncePresence(ctx, note); err != nil {
			log.Warn("tell the other processes who is in a room", "room", p.Room, "err", err)
		}
	}
}

// onPresence passes what another process said of its part of a room to
// the hub.
func (a *app) onPresence(note string) {
	proc, p, ok := decodePresence(note)
	if !ok {
		a.logger.Warn("unreadable presence note from another process", "note", note)
		return
	}
	if proc != a.proc {
		a.hub.RemotePresence(proc, p)
	}
}
