package auth

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// CSRFHeader and CSRFField carry the session's CSRF token on
// state-changing requests.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// safeMethod reports methods that must not change state and so need no
// CSRF token. Every other method (POST, PUT, PATCH, DELETE, anything
// unknown) is treated as state-changing.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// CheckCSRF checks a request authenticated by session s. For state-
// changing methods it refuses: Sec-Fetch-Site other than same-origin or
// none (cross-site and same-site alike, as net/http's CrossOriginProtection
// does); an Origin header that is not baseOrigin (e.g.
// "https://seminar.example.org"; when baseOrigin is empty, the request's
// Host is compared instead); and a token, from header X-CSRF-Token or else
// the body's csrf_token field, that is not s.CSRF (constant-time). Safe
// methods pass. Failures are *AuthError with Code "csrf". Without the
// header it parses a form body, so limit large bodies (http.MaxBytesReader)
// before calling.
func CheckCSRF(r *http.Request, s Session, baseOrigin string) error {
	if safeMethod(r.Method) {
		return nil
	}
	if err := checkOrigin(r, baseOrigin); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField) // body only: tokens must not travel in URLs
	}
	if got == "" {
		return newErr(CodeCSRF, "the request carries no CSRF token; reload the page and try again", nil)
	}
	if s.CSRF == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		return newErr(CodeCSRF, "the CSRF token does not match this session; reload the page and try again", nil)
	}
	return nil
}

// SameOrigin tells whether a request comes from this site's own pages
// (or from no browser page at all), by the first two checks of CheckCSRF:
// for a request that has no session to hold a token yet.
func SameOrigin(r *http.Request, baseOrigin string) bool {
	return checkOrigin(r, baseOrigin) == nil
}

// checkOrigin refuses a request that Sec-Fetch-Site or Origin says came
// from another site.
func checkOrigin(r *http.Request, baseOrigin string) error {
	switch sfs := r.Header.Get("Sec-Fetch-Site"); sfs {
	case "", "same-origin", "none":
	default:
		return newErr(CodeCSRF, "refused a "+oneLine(sfs)+" request: changes must come from this site's own pages", nil)
	}
	if origin := r.Header.Get("Origin"); origin != "" && !originMatches(origin, baseOrigin, r.Host) {
		return newErr(CodeCSRF, "refused a request from another origin ("+oneLine(origin)+")", nil)
	}
	return nil
}

// originMatches compares an Origin header with the configured base origin
// (scheme, host and port; default ports and case ignored).
func originMatches(origin, baseOrigin, host string) bool {
	o, ok := normOrigin(origin)
	if !ok {
		return false // includes "null"
	}
	if baseOrigin == "" {
		u, _ := url.Parse(origin)
		return strings.EqualFold(u.Host, host)
	}
	b, ok := normOrigin(baseOrigin)
	return ok && o == b
}

func normOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

type sessionKey struct{}

// SessionFromContext returns the session that Protect put in the context.
func SessionFromContext(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(Session)
	return s, ok
}

// Protect is middleware: it loads the request's session (if any) into the
// context for SessionFromContext and, when there is one, refuses
// state-changing requests that fail CheckCSRF with 403. Requests without a
// session pass through unchanged; the handlers decide whether they need one.
func (m *Sessions) Protect(baseOrigin string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, ok := m.Load(r)
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			if err := CheckCSRF(r, s, baseOrigin); err != nil {
				http.Error(w, err.(*AuthError).Message, http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
		})
	}
}
