package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/web"
)

// handleHome lists the events; with exactly one it shows that event.
func (a *app) handleHome(w http.ResponseWriter, r *http.Request) {
	es, err := a.store.Events(r.Context())
	if err != nil {
		a.message(w, r, err)
		return
	}
	if len(es) == 1 {
		a.renderEvent(w, r, es[0])
		return
	}
	a.page(w, r, http.StatusOK, "home.html", map[string]any{"Events": es})
}

func (a *app) handleEventPage(w http.ResponseWriter, r *http.Request) {
	ev, err := a.eventOf(r)
	if err != nil {
		a.message(w, r, err)
		return
	}
	a.renderEvent(w, r, ev)
}

// renderEvent shows an event's programme: parts with their workshops, side events.
func (a *app) renderEvent(w http.ResponseWriter, r *http.Request, ev domain.Event) {
	ctx := r.Context()
	parts, err := a.store.Parts(ctx, ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	ws, err := a.store.Workshops(ctx, ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	se, err := a.store.SideEvents(ctx, ev.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	type partView struct {
		Part      domain.Part
		Workshops []domain.Workshop
	}
	var pv []partView
	for _, p := range parts {
		v := partView{Part: p}
		for _, w := range ws {
			if w.PartID == p.ID {
				v.Workshops = append(v.Workshops, w)
			}
		}
		pv = append(pv, v)
	}
	a.page(w, r, http.StatusOK, "event.html", map[string]any{"Event": ev, "Parts": pv, "SideEvents": se})
}

// handleSignInLink signs the person of a personal link in on this device.
// A link opened from another site asks first (see linkNeedsQuestion),
// naming the person, with a button that posts back here: otherwise a link
// planted on a web page would sign the visitor's tablet in as whoever
// made it, and their findings would go in under that name. The post must
// come from this site's page.
func (a *app) handleSignInLink(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !auth.WellFormedToken(token) {
		a.message(w, r, domain.Errorf(domain.Unauthorized, "This sign-in link is not valid. Ask an organizer for a new one."))
		return
	}
	if r.Method == http.MethodGet && linkNeedsQuestion(r) {
		p, err := a.store.CheckInvite(r.Context(), auth.HashToken(token), a.now())
		if err != nil {
			a.message(w, r, err)
			return
		}
		a.page(w, r, http.StatusOK, "signin.html", map[string]any{"Token": token, "Name": p.Name})
		return
	}
	if r.Method != http.MethodGet && !auth.SameOrigin(r, a.baseOrigin) {
		a.message(w, r, domain.Errorf(domain.Forbidden, "This sign-in was sent from another site and is refused. Open your sign-in link again."))
		return
	}
	inv, err := a.store.RedeemInvite(r.Context(), auth.HashToken(token), a.now())
	if err != nil {
		a.message(w, r, err)
		return
	}
	sess, replaced, err := a.sessions.Start(r.Context(), w, r, inv.PersonID)
	a.endSessions(r.Context(), replaced) // the browser's former session: perhaps another person's
	if err != nil {
		if inv.Once {
			if uerr := a.store.UnuseInvite(context.WithoutCancel(r.Context()), inv.ID); uerr != nil {
				a.logger.Warn("give back a one-time link", "err", uerr)
			}
		}
		a.message(w, r, err)
		return
	}
	// Redeeming the link and starting the session are two transactions:
	// a sign-out everywhere, or the person's first organisation sign-in,
	// may have revoked the link in between, too early to end this session.
	if revoked, err := a.store.InviteRevoked(r.Context(), inv.ID); err != nil || revoked {
		if derr := a.store.DeleteSession(context.WithoutCancel(r.Context()), sess.ID); derr != nil {
			a.logger.Error("end a session whose link was revoked meanwhile", "err", derr)
		}
		if err == nil {
			err = domain.Errorf(domain.Unauthorized, "This sign-in link was revoked. Ask an organizer for a new one.")
		}
		a.message(w, r, err)
		return
	}
	ev, err := a.store.Event(r.Context(), inv.EventID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	http.Redirect(w, r, "/events/"+ev.Slug, http.StatusSeeOther)
}

// linkNeedsQuestion tells whether a sign-in link was opened from another
// site, or by a browser that cannot say where from (Safari before 16.4
// sends no Sec-Fetch-Site; its navigations accept HTML). Scanned or typed
// (none), opened from our own pages, or by a program, it signs in at once.
func linkNeedsQuestion(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "none", "same-origin":
		return false
	case "":
		return strings.Contains(r.Header.Get("Accept"), "text/html")
	}
	return true
}

// handleStatic serves the static files (CSS, scripts). A file asked for
// by its current version (the URL pages name, see web.Pages.Asset) never
// changes, so browsers may keep it for good; any other request is
// checked each time, so a copy of another version is not kept as this one.
func (a *app) handleStatic() http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(web.Static()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("v"); v != "" && a.pages.Current(strings.TrimPrefix(r.URL.Path, "/static/"), v) {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}

// handleServiceWorker serves the tablet page's service worker (see
// web/static/sw.js). Browsers check it for a new version on every load
// when it is not cached.
func handleServiceWorker(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, web.Static(), "sw.js")
}
