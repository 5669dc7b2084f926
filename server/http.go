package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
)

// statusOf is the one table mapping error codes to HTTP statuses.
func statusOf(code domain.Code) int {
	switch code {
	case domain.Invalid:
		return http.StatusBadRequest
	case domain.NotFound:
		return http.StatusNotFound
	case domain.Conflict:
		return http.StatusConflict
	case domain.Unauthorized:
		return http.StatusUnauthorized
	case domain.Forbidden, domain.BadCSRF:
		return http.StatusForbidden
	case domain.Unavailable, domain.NotReady:
		return http.StatusServiceUnavailable
	case domain.TooLarge:
		return http.StatusRequestEntityTooLarge
	case domain.RateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// problem is the JSON body of every API error.
type problem struct {
	Status  int         `json:"status"`
	Code    domain.Code `json:"code"`
	Message string      `json:"message"`
	Detail  any         `json:"detail,omitempty"`
}

// asDomain turns errors of the auth package into the application's Error.
func asDomain(err error) error {
	if _, ok := err.(*domain.Error); ok {
		return err // said already: the auth error it may wrap is its cause, for the log
	}
	var ae *auth.AuthError
	if errors.As(err, &ae) {
		code := domain.Unauthorized
		switch ae.Code {
		case auth.CodeCSRF:
			code = domain.BadCSRF
		case auth.CodeTooMany:
			code = domain.RateLimited
		case auth.CodeInternal: // the server's failure (its database), not the person's
			code = domain.Internal
		}
		return &domain.Error{Code: code, Message: ae.Message, Err: err}
	}
	return err
}

// fail writes err as a problem response and logs internal errors.
func (a *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	err = asDomain(err)
	code := domain.ErrorCode(err)
	status := statusOf(code)
	if status >= 500 && code != domain.Unavailable && code != domain.NotReady {
		a.logger.Error("request failed", "method", r.Method, "path", logPath(r), "err", err)
	}
	p := problem{Status: status, Code: code, Message: domain.ErrorMessage(err)}
	var de *domain.Error
	if errors.As(err, &de) {
		p.Detail = de.Detail
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	if code == domain.Unavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// writeJSON writes v as a 200 JSON response.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// page renders an HTML page, or a problem when rendering fails. Pages
// are not kept in the browser's cache or history: on a shared tablet, the
// back button after a sign-out must not show the last person's findings,
// contacts or people list. (The tablet page's offline copy is the service
// worker's, which signing out clears.)
func (a *app) page(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	if m, ok := data.(map[string]any); ok {
		m["Session"] = a.sessionView(r) // who is signed in, for the layout (server/authz.go)
	}
	var buf bytes.Buffer
	if err := a.pages.Render(&buf, name, data); err != nil {
		a.logger.Error("render page", "page", name, "err", err)
		a.fail(w, r, domain.Errorf(domain.Internal, "This page could not be shown."))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

// logPath is r's path as logs may keep it: a sign-in link's token is
// left out (a log line must not sign anyone in).
func logPath(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/signin/") {
		return "/signin/…"
	}
	return r.URL.Path
}

// message renders a short page that tells a person what happened.
func (a *app) message(w http.ResponseWriter, r *http.Request, err error) {
	err = asDomain(err)
	code := domain.ErrorCode(err)
	if statusOf(code) >= 500 {
		a.logger.Error("request failed", "method", r.Method, "path", logPath(r), "err", err)
	}
	a.page(w, r, statusOf(code), "message.html", map[string]any{"Title": "Sorry", "Message": domain.ErrorMessage(err)})
}
