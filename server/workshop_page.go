package main

import (
	"net/http"
	"strconv"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// scopeOfWorkshop finds the workshop {id} of the event {slug}.
func (a *app) scopeOfWorkshop(r *http.Request) (scope, error) {
	ev, err := a.eventOf(r)
	if err != nil {
		return scope{}, err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return scope{}, domain.Errorf(domain.NotFound, "There is no workshop %q.", r.PathValue("id"))
	}
	w, err := a.store.Workshop(r.Context(), id)
	if err != nil || w.EventID != ev.ID {
		return scope{}, domain.Errorf(domain.NotFound, "There is no workshop %d in %s.", id, ev.Title)
	}
	return scope{event: ev, workshopID: w.ID}, nil
}

// handleWorkshopPage is a group's live page on the tablets: record
// findings, see the others' edits, support findings (web/static/live.js).
func (a *app) handleWorkshopPage(w http.ResponseWriter, r *http.Request) {
	sc := authOf(r).scope
	ws, err := a.store.Workshop(r.Context(), sc.workshopID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	tax, err := a.store.Taxonomy(r.Context(), sc.event.ID)
	if err != nil {
		a.message(w, r, err)
		return
	}
	var person int64 // the page keeps unsent changes per person (live.js)
	if id := actor(r); id != nil {
		person = *id
	}
	v, err := authOf(r).viewer(r.Context())
	if err != nil {
		a.message(w, r, err)
		return
	}
	// Curate offers the rapporteur's (and organizers') controls: marking
	// key findings and ordering them. The hub checks every such op again.
	// Release: only organizers change a released finding.
	curate := auth.Allowed(v.principal(sc.event.ID), auth.ActKeyCurate, ws.ID)
	release := auth.Allowed(v.principal(sc.event.ID), auth.ActReleaseManage, ws.ID)
	// KMLocked: a released workshop's key messages are public; only
	// organizers change them (store.SetKeyMessages).
	a.page(w, r, http.StatusOK, "workshop.html", map[string]any{
		"Event": sc.event, "Workshop": ws, "Room": store.WorkshopRoom(ws.ID), "Taxonomy": tax, "Person": person,
		"Curate": curate, "Release": release, "KMLocked": ws.ReleaseState == domain.Released && !release,
	})
}

// handleMyVotes lists the findings of a workshop the signed-in person
// supports, for the tablet's Support buttons: {"person_id": "7",
// "finding_ids": [...]} (the id as the hub's joined frame gives it).
func (a *app) handleMyVotes(w http.ResponseWriter, r *http.Request) {
	v, err := authOf(r).viewer(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ids, err := a.store.VotedIn(r.Context(), v.Person.ID, authOf(r).scope.workshopID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, map[string]any{"person_id": strconv.FormatInt(v.Person.ID, 10), "finding_ids": ids})
}
