package main

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/domain"
)

// loadViewer reads a person with their memberships in every event.
func (a *app) loadViewer(ctx context.Context, personID int64) (*viewer, error) {
	p, err := a.store.Person(ctx, personID)
	if err != nil {
		return nil, err
	}
	ms, err := a.store.AllMemberships(ctx, personID)
	if err != nil {
		return nil, err
	}
	return &viewer{Person: p, Memberships: ms}, nil
}

// handleWS upgrades a signed-in browser's request to the hub's WebSocket.
// The Origin must be our BASE_URL: with cookie sign-in, anything else
// would let another site act as the person (cross-site WebSocket hijacking).
func (a *app) handleWS(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != a.baseOrigin {
		a.fail(w, r, domain.Errorf(domain.Forbidden, "WebSocket connections are accepted only from %s.", a.baseOrigin))
		return
	}
	v, err := authOf(r).viewer(r.Context()) // loaded once per request by guard
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if v == nil {
		a.fail(w, r, domain.Errorf(domain.Unauthorized, "Sign in first: the live connection needs a session."))
		return
	}
	id := hub.Identity{ID: strconv.FormatInt(v.Person.ID, 10), Name: v.Person.Name, Data: v, Since: authOf(r).at}
	if s := authOf(r).sess(); s != nil {
		id.Session = s.ID
	}
	a.hub.Serve(w, r, id, a.upgrader)
}

// newUpgrader makes the one Upgrader of the server. Write buffers come from
// a pool shared by all connections, so an idle connection holds none;
// reads reuse the HTTP server's buffer.
func newUpgrader(baseOrigin string) *websocket.Upgrader {
	return &websocket.Upgrader{
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(r *http.Request) bool { return r.Header.Get("Origin") == baseOrigin },
	}
}
