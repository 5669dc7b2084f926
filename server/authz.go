package main

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
)

// maxFormBody bounds the body of a state-changing request read for its
// CSRF field (and CSV uploads, which are read through the same limit).
const maxFormBody = 4 << 20

// scope is where a route's target lives: its event and, for targets of
// one group, the workshop (0 otherwise).
type scope struct {
	event      domain.Event
	workshopID int64
}

// access is what a route declares it needs: an action of the permission
// table, checked in the scope its resolver finds; no action means public.
type access struct {
	action  auth.Action
	resolve func(*http.Request) (scope, error)
}

// public is the access of routes anyone may use; state-changing requests
// of a signed-in browser still need the CSRF token.
func public() access { return access{} }

// need is the access of routes under /…/{slug}: the action in that event.
func (a *app) need(act auth.Action) access {
	return access{action: act, resolve: a.scopeOfSlug}
}

// needIn is need with another way to find the target's scope.
func needIn(act auth.Action, resolve func(*http.Request) (scope, error)) access {
	return access{action: act, resolve: resolve}
}

func (a *app) scopeOfSlug(r *http.Request) (scope, error) {
	ev, err := a.eventOf(r)
	return scope{event: ev}, err
}

// scopeOfInvite finds the event of the invite named by {id}.
func (a *app) scopeOfInvite(r *http.Request) (scope, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return scope{}, domain.Errorf(domain.NotFound, "There is no sign-in link %q.", r.PathValue("id"))
	}
	inv, err := a.store.InviteByID(r.Context(), id)
	if err != nil {
		return scope{}, err
	}
	ev, err := a.store.Event(r.Context(), inv.EventID)
	return scope{event: ev}, err
}

// reqAuth is who is asking, loaded once per request by guard.
type reqAuth struct {
	app        *app
	req        *http.Request
	at         time.Time // when guard took the request: the session and roles are read after it
	sessLoaded bool
	session    *auth.Session // use sess(): loaded on first use
	sessErr    error         // why the session could not be read (not: there is none)
	scope      scope
	loaded     bool
	v          *viewer
}

// sess returns the request's live session (nil when signed out), loaded
// on first use so public files and pages cost no query without a cookie.
func (ra *reqAuth) sess() *auth.Session {
	if !ra.sessLoaded && ra.app != nil {
		ra.sessLoaded = true
		s, err := ra.app.sessions.Read(ra.req)
		if err == nil {
			ra.session = &s
		} else if !errors.Is(err, auth.ErrNoSession) {
			ra.sessErr = err
		}
	}
	return ra.session
}

// viewer returns the signed-in person (nil for the public), loaded on first use.
func (ra *reqAuth) viewer(ctx context.Context) (*viewer, error) {
	if ra.sess() == nil && ra.sessErr != nil {
		// Not signed out: unknown. A 401 would have the tablet's service
		// worker forget the page it keeps (sw.js).
		ra.app.logger.Warn("read a session", "err", ra.sessErr)
		return nil, domain.Errorf(domain.Unavailable, "The sign-in cannot be checked just now: try again in a moment.")
	}
	if ra.loaded || ra.sess() == nil {
		return ra.v, nil
	}
	v, err := ra.app.loadViewer(ctx, ra.session.PersonID)
	if err != nil {
		return nil, err
	}
	ra.v, ra.loaded = v, true
	return v, nil
}

// csrf is the session's CSRF token for pages to embed ("" when signed out).
func (ra *reqAuth) csrf() string {
	if ra.sess() == nil {
		return ""
	}
	return ra.session.CSRF
}

type reqAuthKey struct{}

// authOf returns what guard learned about the request (a public,
// signed-out reqAuth for requests that did not pass through guard).
func authOf(r *http.Request) *reqAuth {
	if ra, ok := r.Context().Value(reqAuthKey{}).(*reqAuth); ok {
		return ra
	}
	return &reqAuth{}
}

// guard wraps every route: it loads the session, refuses state-changing
// requests of a signed-in browser without a valid CSRF token, and, for
// routes that name an action, checks the permission table for the viewer
// in the route's scope: 401 when signed out, 403 when the role does not
// allow it.
func (a *app) guard(ac access, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ra := &reqAuth{app: a, req: r, at: time.Now()}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
			if s := ra.sess(); s != nil {
				r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
				if err := parseFormBody(r); errors.As(err, new(*http.MaxBytesError)) {
					// Else the token, in a body cut short, reads as missing.
					a.refuse(w, r, tooLarge())
					return
				}
				if err := auth.CheckCSRF(r, *s, a.baseOrigin); err != nil {
					a.refuse(w, r, err)
					return
				}
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), reqAuthKey{}, ra))
		if ac.action != "" {
			sc, err := ac.resolve(r)
			if err != nil {
				a.refuse(w, r, err)
				return
			}
			ra.scope = sc
			v, err := ra.viewer(r.Context())
			if err != nil {
				a.refuse(w, r, err)
				return
			}
			if !auth.Allowed(v.principal(sc.event.ID), ac.action, sc.workshopID) {
				if v == nil {
					a.refuse(w, r, domain.Errorf(domain.Unauthorized, "Sign in first: this needs a personal sign-in link or an organisation account."))
				} else {
					a.refuse(w, r, domain.Errorf(domain.Forbidden, "Your role in %s does not allow this.", sc.event.Title))
				}
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// parseFormBody reads a form's body (what CheckCSRF would read for its
// token field), so that a body over the limit can be told apart. Other
// bodies are left for their handler.
func parseFormBody(r *http.Request) error {
	if r.Header.Get(auth.CSRFHeader) != "" {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		return r.ParseMultipartForm(maxFormBody)
	case "application/x-www-form-urlencoded":
		return r.ParseForm()
	}
	return nil
}

// tooLarge is the error of a request body over maxFormBody.
func tooLarge() error {
	return domain.Errorf(domain.TooLarge, "The request is larger than %d MiB; for a participant list, import it in parts.", maxFormBody>>20)
}

// refuse answers an API request with a problem and a page request with a
// message page. A form of one of our pages posting to the API is a page
// request: the browser shows what comes back.
func (a *app) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if (strings.HasPrefix(r.URL.Path, "/api/") && !isForm(r)) || r.URL.Path == "/ws" {
		a.fail(w, r, err)
		return
	}
	a.message(w, r, err)
}

// actor is the signed-in person's id for audit entries (nil when signed out).
func actor(r *http.Request) *int64 {
	if s := authOf(r).sess(); s != nil {
		id := s.PersonID
		return &id
	}
	return nil
}

// sessionView is what the layout shows about who is signed in.
type sessionView struct {
	Name        string // "" when signed out
	CSRF        string // the session's CSRF token for forms and scripts
	StaffSignIn bool   // OIDC is configured: offer "Staff sign-in"
}

func (a *app) sessionView(r *http.Request) sessionView {
	ra := authOf(r)
	sv := sessionView{CSRF: ra.csrf(), StaffSignIn: a.oidc != nil}
	if v, err := ra.viewer(r.Context()); err == nil && v != nil {
		sv.Name = v.Person.Name
	}
	return sv
}
