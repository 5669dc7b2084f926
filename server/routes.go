package main

import (
	"net/http"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
)

// routes registers every route of the server, in one place. Each is
// wrapped by guard with the access it needs (server/authz.go): public(), or
// an action of the permission table in the route's event.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()

	mux.Handle("GET /healthz", a.guard(public(), http.HandlerFunc(a.handleHealthz)))
	mux.Handle("GET /readyz", a.guard(public(), http.HandlerFunc(a.handleReadyz)))

	mux.Handle("GET /api/events", a.guard(public(), http.HandlerFunc(a.handleEvents)))
	mux.Handle("GET /api/events/{slug}", a.guard(a.need(auth.ActEventRead), http.HandlerFunc(a.handleEvent)))
	mux.Handle("GET /api/events/{slug}/parts", a.guard(a.need(auth.ActEventRead), http.HandlerFunc(a.handleParts)))
	mux.Handle("GET /api/events/{slug}/workshops", a.guard(a.need(auth.ActEventRead), http.HandlerFunc(a.handleWorkshops)))
	mux.Handle("GET /api/events/{slug}/side-events", a.guard(a.need(auth.ActEventRead), http.HandlerFunc(a.handleSideEvents)))
	mux.Handle("GET /api/events/{slug}/taxonomy", a.guard(a.need(auth.ActEventRead), http.HandlerFunc(a.handleTaxonomy)))
	mux.Handle("GET /api/search", a.guard(public(), http.HandlerFunc(a.handleSearch))) // results filtered by the viewer's audience
	mux.Handle("GET /api/search.csv", a.guard(public(), http.HandlerFunc(a.handleSearchCSV)))
	mux.Handle("GET /api/events/{slug}/workshops/{id}/my-votes", a.guard(needIn(auth.ActReadDrafts, a.scopeOfWorkshop), http.HandlerFunc(a.handleMyVotes)))
	mux.Handle("POST /api/events/{slug}/people/import", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handleImportPeople)))
	mux.Handle("POST /api/events/{slug}/people", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handleAddPerson)))
	mux.Handle("POST /api/events/{slug}/people/{id}", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handleEditPerson)))
	mux.Handle("POST /api/events/{slug}/people/{id}/remove", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handleRemovePerson)))
	mux.Handle("POST /api/events/{slug}/people/{id}/invite", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handleNewInvite)))
	mux.Handle("POST /api/events/{slug}/people/{id}/signout", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handleSignOutEverywhere)))
	mux.Handle("POST /api/invites/{id}/revoke", a.guard(needIn(auth.ActPeopleManage, a.scopeOfInvite), http.HandlerFunc(a.handleRevokeInvite)))
	mux.Handle("/api/", a.guard(public(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, domain.Errorf(domain.NotFound, "There is no API route %s %s.", r.Method, r.URL.Path))
	})))

	mux.Handle("GET /{$}", a.guard(public(), http.HandlerFunc(a.handleHome)))
	mux.Handle("GET /events/{slug}", a.guard(a.need(auth.ActEventRead), http.HandlerFunc(a.handleEventPage)))
	mux.Handle("GET /events/{slug}/workshops/{id}", a.guard(needIn(auth.ActReadDrafts, a.scopeOfWorkshop), http.HandlerFunc(a.handleWorkshopPage)))
	mux.Handle("GET /events/{slug}/search", a.guard(a.need(auth.ActFindingReadRelease), http.HandlerFunc(a.handleSearchPage)))
	mux.Handle("GET /events/{slug}/findings/{id}", a.guard(a.need(auth.ActFindingReadRelease), http.HandlerFunc(a.handleFindingPage))) // and the finding's own audience
	mux.Handle("GET /events/{slug}/people", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handlePeoplePage)))
	mux.Handle("GET /events/{slug}/cards", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handleCardsPage)))
	mux.Handle("POST /events/{slug}/cards", a.guard(a.need(auth.ActPeopleManage), http.HandlerFunc(a.handlePrintCards)))
	mux.Handle("GET /signin/{token}", a.guard(public(), http.HandlerFunc(a.handleSignInLink)))
	mux.Handle("POST /signin/{token}", a.guard(public(), http.HandlerFunc(a.handleSignInLink)))
	mux.Handle("GET /auth/login", a.guard(public(), http.HandlerFunc(a.handleLogin)))
	mux.Handle("GET /auth/callback", a.guard(public(), http.HandlerFunc(a.handleCallback)))
	mux.Handle("POST /auth/logout", a.guard(public(), http.HandlerFunc(a.handleLogout)))
	mux.Handle("GET /auth/signed-out", a.guard(public(), http.HandlerFunc(a.handleSignedOut)))
	mux.Handle("GET /ws", a.guard(public(), http.HandlerFunc(a.handleWS))) // Origin and session checked there, every join and op by the hub Backend
	mux.Handle("GET /static/", a.guard(public(), a.handleStatic()))
	mux.Handle("GET /sw.js", a.guard(public(), http.HandlerFunc(handleServiceWorker))) // at the root: its scope is the whole site
	// Any other path, or a page's path with another method: a page that
	// says so (not the mux's plain-text 404 or 405).
	mux.Handle("/", a.guard(public(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.message(w, r, domain.Errorf(domain.NotFound, "There is no page %s %s.", r.Method, r.URL.Path))
	})))

	headers, err := auth.SecurityHeadersFor(a.baseURL)
	if err != nil { // BASE_URL is checked by parseConfig; this is a fallback
		return auth.SecurityHeaders(mux)
	}
	return headers(mux)
}
