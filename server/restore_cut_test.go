package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// A restore of the database that one process announces while another is
// cut off from Postgres: the announcement (a NOTIFY) is lost to it, and
// the room's new log grows past what it had sent before it is back. It
// must still tell the logs apart, by the entry it sent last. (Found by a
// review: it sent the new log's entries on top of the old one's, and its
// cache served the old one's to new joins, for good.)

// cutProxy forwards TCP to Postgres; cut drops every connection through it
// and refuses new ones until mended: a network blip between one server
// process and the database.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, to string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			s, err := net.Dial("tcp", to)
			if p.cut || err != nil {
				p.mu.Unlock()
				c.Close()
				if s != nil {
					s.Close()
				}
				continue
			}
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close(); c.Close() }()
			go func() { io.Copy(c, s); s.Close(); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// restoreWhileCutOff starts process A (the fixture) and process B behind
// a cutProxy; b, on B, reads six entries A's client makes. Then B is cut
// off, the log is restored to the second of them, A finds it (a join from
// the old head), and its client writes six entries past the old head.
// before is called once b has read the six, before the cut. It returns
// with B mended; keep is the restored head.
func restoreWhileCutOff(t *testing.T, before func(b *client)) (f *fixture, other *server, bm member, b *client, room string, keep int64) {
	dsn := pg.NewDB(t)
	f = MustFixture(t, map[string]string{"DATABASE_URL": dsn})
	hostport := strings.SplitN(strings.SplitN(dsn, "@", 2)[1], "/", 2)[0]
	px := newCutProxy(t, hostport)
	other = MustStart(t, map[string]string{"DATABASE_URL": strings.Replace(dsn, hostport, px.ln.Addr().String(), 1), "NO_DEMO": "1"})
	w := &f.ws[3]
	room = store.WorkshopRoom(w.ID)
	am := f.MustMember(t, domain.RoleParticipant, w, "FI", "police")
	bm = f.MustMember(t, domain.RoleParticipant, w, "FI", "ngo")
	a := am.Dial(t, f.srv.URL)
	s0 := a.join(t, room, 0).Seq
	b = bm.Dial(t, other.URL)
	if j := b.join(t, room, s0); j.Seq != s0 {
		t.Fatalf("b joined at %d, want %d", j.Seq, s0)
	}
	made := a.createAll(t, room, "before", 6)
	for i := range 6 { // B reads them from the log, and caches them
		b.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == fmt.Sprintf("before-%d", i+1) })
	}
	before(b)
	px.setCut(true)
	keep = restoreAndGoOn(t, f, am, room, s0, made)
	time.Sleep(time.Second) // A's announcement is long gone
	px.setCut(false)
	return f, other, bm, b, room, keep
}

// TestAProcessThatMissedARestoreFindsIt: b, holding the replaced log, is
// closed with 4009 once B is back, and sent none of the new log's entries
// before.
func TestAProcessThatMissedARestoreFindsIt(t *testing.T) {
	_, _, _, b, _, keep := restoreWhileCutOff(t, func(*client) {})
	deadline := time.After(20 * time.Second) // B's poll runs every 5 s
	for {
		select {
		case fr, ok := <-b.frames:
			if !ok {
				err := <-b.closed
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != hub.CloseLogRestored {
					t.Fatalf("b closed with %v, want %d", err, hub.CloseLogRestored)
				}
				return
			}
			if fr.Type == "entry" {
				t.Fatalf("b, holding the replaced log, was sent entry %d (op %q) of the log restored to %d", fr.Seq, fr.OpID, keep)
			}
		case <-deadline:
			t.Fatalf("b never closed with %d", hub.CloseLogRestored)
		}
	}
}

// TestAJoinAfterAMissedRestoreGetsTheNewLog: b left before the cut, so B
// has no room to poll, only its cache of the replaced log. A new join on
// B from the restored head gets the new log's entries.
func TestAJoinAfterAMissedRestoreGetsTheNewLog(t *testing.T) {
	_, other, bm, _, room, keep := restoreWhileCutOff(t, func(b *client) { b.ws.Close() })
	var d *client
	for try := 0; ; try++ { // until B's pool is back
		var err error
		if d, err = bm.dial(other.URL); err == nil {
			break
		} else if try > 50 {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer d.ws.Close()
	d.send(t, map[string]any{"type": "join", "room": room, "since": keep})
	for i := range 6 {
		fr := d.next(t, func(f frame) bool { return f.Type == "entry" || f.Type == "snapshot" || f.Type == "joined" })
		if fr.Type != "entry" || fr.Seq != keep+int64(i)+1 || fr.OpID != fmt.Sprintf("after-%d", i+1) {
			t.Fatalf("join on B from the restored head %d, frame %d: %s %d %q, want the entry of after-%d", keep, i, fr.Type, fr.Seq, fr.OpID, i+1)
		}
	}
}
