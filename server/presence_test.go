package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/store"
)

// A note fits in a Postgres notification: too many people to list are
// left out, and the count still says how many there are.
func TestPresenceNoteFitsANotification(t *testing.T) {
	p := hub.Presence{Room: "workshop:1", Count: 300}
	for i := range 300 {
		p.People = append(p.People, hub.Person{ID: strconv.Itoa(i), Name: strings.Repeat("å", 20), Editing: "f-" + strconv.Itoa(i)})
	}
	note, ok := encodePresence("proc", p)
	if !ok || len(note) > store.MaxNote {
		t.Fatalf("note of %d bytes (ok %v), want at most %d", len(note), ok, store.MaxNote)
	}
	from, got, ok := decodePresence(note)
	if !ok || from != "proc" || got.Room != p.Room || got.Count != 300 {
		t.Fatalf("decoded %q %+v (ok %v)", from, got, ok)
	}
	if len(got.People) == 0 || len(got.People) == 300 || !slices.Equal(got.People, p.People[:len(got.People)]) {
		t.Errorf("listed %d people, want the first of the 300, not none or all", len(got.People))
	}

	small := hub.Presence{Room: "workshop:2", Count: 1, People: p.People[:1]}
	note, ok = encodePresence("proc", small)
	if _, got, _ := decodePresence(note); !ok || !slices.Equal(got.People, small.People) {
		t.Errorf("a small note lost people: %+v", got)
	}
	for _, bad := range []string{"", "{", `{"f":"x","n":1}`, `{"r":"workshop:1","n":1}`, `{"f":"x","r":"workshop:1","n":-1}`} {
		if _, _, ok := decodePresence(bad); ok {
			t.Errorf("decoded %q", bad)
		}
	}
}
