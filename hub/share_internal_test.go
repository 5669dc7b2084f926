package hub

import (
	"testing"
	"time"
)

// A process's part that expired but was not yet swept may still be on
// the screens: its count-0 note is a change, or the people would stay.
func TestRemotePresenceGoneAfterExpiryIsAChange(t *testing.T) {
	rp := &remotePresence{ttl: time.Second, rooms: make(map[string]map[string]heard)}
	t0 := time.Now()
	p := Presence{Room: "workshop:1", Count: 1, People: []Person{{ID: "7", Name: "Anna"}}}
	if changed, newcomer := rp.set("A", p, t0); !changed || !newcomer {
		t.Fatalf("first note: changed %v, newcomer %v; want both", changed, newcomer)
	}
	if changed, newcomer := rp.set("A", p, t0.Add(100*time.Millisecond)); changed || newcomer {
		t.Fatalf("the same note again: changed %v, newcomer %v; want neither", changed, newcomer)
	}
	if changed, _ := rp.set("A", Presence{Room: p.Room}, t0.Add(2*time.Second)); !changed {
		t.Fatal("count 0 after expiry, before a sweep: not a change")
	}
	if got := rp.of(p.Room, t0.Add(2*time.Second)); len(got) != 0 {
		t.Fatalf("after count 0: %+v", got)
	}
}
