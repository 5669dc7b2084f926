package auth

import (
	"fmt"
	"net/http"
	"net/url"
)

// baseCSP forbids inline script and style, framing, foreign forms and
// foreign connections. Inline SVG (QR codes) is markup, not script, and is
// allowed.
const baseCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'%s; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// SecurityHeaders sets the security headers on every response, with
// connect-src 'self' only. CSP Level 3 lets 'self' match ws:/wss: on the
// same host (checked with headless Chromium 156: a same-origin WebSocket
// connects under 'self' and is blocked under 'none'), but older WebKit
// (Safari before 15.4) does not; SecurityHeadersFor names the WebSocket
// origin explicitly and is the one to use in production.
func SecurityHeaders(next http.Handler) http.Handler {
	return withHeaders(next, cspWith(""))
}

// SecurityHeadersFor is SecurityHeaders for a server reached at baseURL
// (e.g. "https://seminar.example.org"): connect-src also allows that
// host's WebSocket origin (wss: for https, ws: for http).
func SecurityHeadersFor(baseURL string) (func(http.Handler) http.Handler, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, newErr(CodeConfig, "the base URL "+oneLine(baseURL)+" is not an absolute http(s) URL", err)
	}
	ws := "ws"
	if u.Scheme == "https" {
		ws = "wss"
	}
	csp := cspWith(" " + ws + "://" + u.Host)
	return func(next http.Handler) http.Handler { return withHeaders(next, csp) }, nil
}

func cspWith(extra string) string {
	return fmt.Sprintf(baseCSP, extra)
}

// withHeaders sets the headers before the handler runs, so they are on
// every response, errors included. Referrer-Policy is same-origin: invite
// tokens in URLs never reach another site in a Referer, while same-origin
// form posts keep their real Origin header (under no-referrer browsers
// send "Origin: null" on POST, which would break the CSRF origin check).
func withHeaders(next http.Handler, csp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
