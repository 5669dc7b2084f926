package main

import (
	"net/http"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
)

// handleHealthz answers while the process is alive.
func (a *app) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 once the database is reachable and migrated.
func (a *app) handleReadyz(w http.ResponseWriter, r *http.Request) {
	// Shutting down, the process takes no new connections (its /ws answers
	// 503): a load balancer should send clients elsewhere.
	if a.draining.Load() {
		a.fail(w, r, domain.Errorf(domain.Unavailable, "The server is shutting down."))
		return
	}
	if err := a.store.Ready(r.Context()); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]string{"status": "ready"})
}

func (a *app) handleEvents(w http.ResponseWriter, r *http.Request) {
	es, err := a.store.Events(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if es == nil {
		es = []domain.Event{}
	}
	writeJSON(w, es)
}

// eventOf returns the event named by the request's {slug}.
func (a *app) eventOf(r *http.Request) (domain.Event, error) {
	return a.store.EventBySlug(r.Context(), r.PathValue("slug"))
}

func (a *app) handleEvent(w http.ResponseWriter, r *http.Request) {
	ev, err := a.eventOf(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, ev)
}

func (a *app) handleParts(w http.ResponseWriter, r *http.Request) {
	ev, err := a.eventOf(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ps, err := a.store.Parts(r.Context(), ev.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, ps)
}

func (a *app) handleWorkshops(w http.ResponseWriter, r *http.Request) {
	ev, err := a.eventOf(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ws, err := a.store.Workshops(r.Context(), ev.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := authOf(r).viewer(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Key messages are the group's drafts for the plenary: only those who
	// may read the group's drafts see them before they are released.
	p := v.principal(ev.ID)
	for i := range ws {
		if ws[i].ReleaseState != domain.Released && !auth.Allowed(p, auth.ActReadDrafts, ws[i].ID) {
			ws[i].KeyMessages, ws[i].KeyMessagesVersion = "", 0
		}
	}
	writeJSON(w, ws)
}

func (a *app) handleSideEvents(w http.ResponseWriter, r *http.Request) {
	ev, err := a.eventOf(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ss, err := a.store.SideEvents(r.Context(), ev.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, ss)
}

func (a *app) handleTaxonomy(w http.ResponseWriter, r *http.Request) {
	ev, err := a.eventOf(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tax, err := a.store.Taxonomy(r.Context(), ev.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, tax)
}
