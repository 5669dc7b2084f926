package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", 404) })
	withWS, err := SecurityHeadersFor("https://seminar.example.org")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		h  http.Handler
		ws string
	}{
		"plain":    {SecurityHeaders(ok), ""},
		"base URL": {withWS(ok), " wss://seminar.example.org"},
	} {
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		h := rec.Header()
		csp := h.Get("Content-Security-Policy")
		want := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'" + tc.ws +
			"; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
		if csp != want {
			t.Errorf("%s: CSP %q\nwant %q", name, csp, want)
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline script", name)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", name, k, h.Get(k), v)
			}
		}
	}
	if _, err := SecurityHeadersFor("seminar.example.org"); err == nil {
		t.Error("a URL without scheme accepted")
	}
	h, _ := SecurityHeadersFor("http://localhost:8080")
	rec := httptest.NewRecorder()
	h(ok).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "connect-src 'self' ws://localhost:8080;") {
		t.Errorf("http base: %s", rec.Header().Get("Content-Security-Policy"))
	}
}
