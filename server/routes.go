package main

import (
	"net/http"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/web"
)

// routes registers every route of the server, in one place.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /healthz", a.handleHealthz)
	mux.HandleFunc("GET /readyz", a.handleReadyz)

	mux.HandleFunc("GET /api/events", a.handleEvents)
	mux.HandleFunc("GET /api/events/{slug}", a.handleEvent)
	mux.HandleFunc("GET /api/events/{slug}/parts", a.handleParts)
	mux.HandleFunc("GET /api/events/{slug}/workshops", a.handleWorkshops)
	mux.HandleFunc("GET /api/events/{slug}/side-events", a.handleSideEvents)
	mux.HandleFunc("GET /api/events/{slug}/taxonomy", a.handleTaxonomy)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, domain.Errorf(domain.NotFound, "There is no API route %s %s.", r.Method, r.URL.Path))
	})

	mux.HandleFunc("GET /{$}", a.handleHome)
	mux.HandleFunc("GET /events/{slug}", a.handleEventPage)
	mux.HandleFunc("GET /signin/{token}", a.handleSignInLink)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web.Static())))

	return auth.SecurityHeaders(mux)
}
