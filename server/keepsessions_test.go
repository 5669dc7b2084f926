package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
	"github.com/rapporteur/rapporteur/web"
)

// mustUnfollowedApp serves the app of a process that hears nothing from
// the others (no Follow runs), over the demo event.
func mustUnfollowedApp(t *testing.T) (st *store.Store, ev domain.Event, ws []domain.Workshop, a *app, base string) {
	t.Helper()
	st = pg.MustStore(t)
	ev, ws = mustDemoEvent(t, st)
	pages, err := web.Parse()
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := hub.New(&live{store: st}, hub.Config{Logger: quiet})
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	srv := httptest.NewUnstartedServer(nil)
	base = "http://" + srv.Listener.Addr().String()
	a = newApp(appDeps{store: st, logger: quiet, baseURL: base, pages: pages, hub: h})
	srv.Config.Handler = a.routes()
	srv.Start()
	t.Cleanup(srv.Close)
	return st, ev, ws, a, base
}

// TestOpenSocketsFollowTheirSessions: the session of each open WebSocket
// is checked. A session that ended meanwhile (here deleted, as an expired
// one is) has its connection closed with 4001; a live one stays open, and
// the connection counts as use of its session.
func TestOpenSocketsFollowTheirSessions(t *testing.T) {
	ctx := context.Background()
	st, ev, ws, a, base := mustUnfollowedApp(t)

	signIn := func(name string) (member, int64) {
		t.Helper()
		p, token := mustInvite(t, st, ev.ID, store.PersonInput{Name: name}, domain.RoleParticipant, ws[0].ID)
		return mustSignIn(t, base, token, p.ID), p.ID
	}
	stay, stayID := signIn("Stays signed in")
	gone, goneID := signIn("Signed out elsewhere")
	stayConn, goneConn := stay.Dial(t, base), gone.Dial(t, base)

	if _, err := st.DB().ExecContext(ctx, "DELETE FROM sessions WHERE person_id = ?", goneID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, "UPDATE sessions SET last_seen = now() - interval '2 minutes' WHERE person_id = ?", stayID); err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go a.keepSessions(cctx, 20*time.Millisecond)

	goneConn.mustCloseWith(t, hub.CloseUnauthenticated, 10*time.Second, "the socket of a session that ended")
	stayConn.send(t, map[string]any{"type": "ping"})
	stayConn.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed
	// The pass that closed the other connection may check this one's
	// session after it (the hub lists sessions in no order): look until
	// a pass has, for a while.
	var seen time.Time
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := st.DB().NewRaw("SELECT last_seen FROM sessions WHERE person_id = ?", stayID).Scan(ctx, &seen); err != nil {
			t.Fatal(err)
		}
		if time.Since(seen) <= time.Minute || time.Now().After(deadline) {
			break
		}
	}
	if time.Since(seen) > time.Minute {
		t.Errorf("the open connection did not count as use: last seen %v ago", time.Since(seen))
	}
}

// TestOpenSocketsFollowTheirRoles: a process that did not hear that a
// person's roles or details changed (no Follow runs here, as when a
// notification is lost) finds out at its next check and closes their
// connections with 4003, to be checked again; a person whose roles did not
// change keeps theirs.
func TestOpenSocketsFollowTheirRoles(t *testing.T) {
	ctx := context.Background()
	st, ev, ws, a, base := mustUnfollowedApp(t)

	in := func(name string) store.PersonInput { return store.PersonInput{Name: name, Country: "FI"} }
	signIn := func(name, role string) (*client, int64) {
		t.Helper()
		p, token := mustInvite(t, st, ev.ID, in(name), role, ws[0].ID)
		return mustSignIn(t, base, token, p.ID).Dial(t, base), p.ID
	}
	stays, _ := signIn("Stays a participant", domain.RoleParticipant)
	demoted, demotedID := signIn("Rapporteur no more", domain.RoleRapporteur)
	renamed, renamedID := signIn("Renamed", domain.RoleParticipant)
	removed, removedID := signIn("Removed", domain.RoleParticipant)
	if _, _, err := st.UpdateMember(ctx, nil, ev.ID, demotedID, in("Rapporteur no more"), domain.RoleParticipant, ws[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.UpdateMember(ctx, nil, ev.ID, renamedID, in("Renamed again"), domain.RoleParticipant, ws[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RemoveMember(ctx, nil, ev.ID, removedID); err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go a.keepSessions(cctx, 20*time.Millisecond)

	demoted.mustCloseWith(t, hub.CloseAccessChanged, 10*time.Second, "the socket of a rapporteur made a participant")
	renamed.mustCloseWith(t, hub.CloseAccessChanged, 10*time.Second, "the socket of a person renamed")
	removed.mustCloseWith(t, hub.CloseAccessChanged, 10*time.Second, "the socket of a person removed from the event")
	time.Sleep(100 * time.Millisecond) // several checks
	stays.send(t, map[string]any{"type": "ping"})
	stays.next(t, func(f frame) bool { return f.Type == "pong" }) // fails if it was closed
}
