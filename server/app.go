package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
	"github.com/rapporteur/rapporteur/web"
)

// appDeps is everything the HTTP application is built from.
type appDeps struct {
	store   *store.Store
	logger  *slog.Logger
	baseURL string
	pages   *web.Pages
	hub     *hub.Hub
	live    *live      // the hub's Backend (nil: none to tell of a restore)
	search  *indexer   // the search index, fed from the log
	auth    authConfig // staff OIDC and invite settings (server/signin.go)
	proc    string     // this process's name in what it tells the others ("": a new one)
	now     func() time.Time
}

// app is the HTTP application: handlers and what they share.
type app struct {
	appDeps
	sessions   *auth.Sessions
	baseOrigin string
	oidc       *oidcClient         // nil when staff sign-in by OIDC is not configured
	upgrader   *websocket.Upgrader // for /ws; checks Origin against BASE_URL
	draining   atomic.Bool         // set once shutdown begins: /readyz says so
}

func newApp(d appDeps) *app {
	if d.now == nil {
		d.now = time.Now
	}
	if d.proc == "" {
		d.proc = rand.Text()
	}
	u, _ := url.Parse(d.baseURL)
	return &app{
		appDeps:    d,
		sessions:   auth.NewSessions(d.store, auth.SessionConfig{Secure: u != nil && u.Scheme == "https", Now: d.now}),
		baseOrigin: strings.TrimRight(d.baseURL, "/"),
		upgrader:   newUpgrader(strings.TrimRight(d.baseURL, "/")),
		oidc:       newOIDCClient(d.auth, strings.TrimRight(d.baseURL, "/"), d.store),
	}
}

// endSessions closes the connections opened in the sessions ids, on this
// process at once and on the others through Postgres (within a minute
// when the announcement is lost: see keepSessions).
func (a *app) endSessions(ctx context.Context, ids ...string) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		a.hub.EndSession(id)
		a.announce(ctx, store.AccessSession, id)
	}
}

// reauthorize makes the person's connections, on every process, reconnect
// to be checked against their new roles (within a minute when the
// announcement is lost: see keepAccess).
func (a *app) reauthorize(ctx context.Context, personID int64) {
	id := strconv.FormatInt(personID, 10)
	a.personChanged(id)
	a.announce(ctx, store.AccessPerson, id)
}

// personChanged makes the person's connections here reconnect, and drops
// the cached entries, whose actor labels may carry their old country or
// actor type (PROTOCOL.md: an entry's actor is the one when it is sent).
func (a *app) personChanged(id string) {
	if a.live != nil {
		a.live.recent.forgetAll()
	}
	a.hub.Reauthorize(id)
}

func (a *app) announce(ctx context.Context, kind, id string) {
	// Announced even when the request that made the change is gone, but
	// not waited for long.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.store.AnnounceAccess(ctx, a.proc, kind, id); err != nil {
		a.logger.Warn("tell the other processes of an access change", "kind", kind, "err", err)
	}
}

// onAccess acts on an access change another process announced.
func (a *app) onAccess(from, kind, id string) {
	if from == a.proc {
		return // acted on already
	}
	switch kind {
	case store.AccessSession:
		a.hub.EndSession(id)
	case store.AccessPerson:
		a.personChanged(id)
	case store.AccessRestored:
		if room, head, ok := store.ParseRestored(id); ok && a.live != nil {
			a.live.recent.forget(room) // entries of the log replaced
			a.hub.Restored(room, head)
		}
	}
}

// close releases what the app holds once the HTTP server has stopped.
func (a *app) close() {}

// organizerLink makes a fresh one-time sign-in link for the first event's
// bootstrap organizer ("" when there is no event yet).
func (a *app) organizerLink(ctx context.Context) (string, error) {
	ev, err := a.store.FirstEvent(ctx)
	if domain.ErrorCode(err) == domain.NotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	p, err := a.store.EnsureOrganizer(ctx, ev.ID)
	if err != nil {
		return "", err
	}
	token, hash := auth.NewInviteToken()
	if _, err := a.store.CreateInvite(ctx, store.Invite{EventID: ev.ID, PersonID: p.ID, TokenHash: hash, Once: true,
		ExpiresAt: a.now().Add(24 * time.Hour)}); err != nil {
		return "", err
	}
	return a.baseURL + "/signin/" + token, nil
}
