package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAnUnknownPageSaysSo: a path no route has, or a page's path with
// another method, is answered with the 404 message page, not the mux's
// plain text; under /api/ it is a problem response.
func TestAnUnknownPageSaysSo(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	for _, c := range []struct{ method, path, ctype string }{
		{"GET", "/nope", "text/html"},
		{"POST", "/events/" + f.event.Slug, "text/html"},
		{"DELETE", "/auth/logout", "text/html"},
		{"PUT", "/signin/x", "text/html"},
		{"DELETE", "/api/events/" + f.event.Slug, "application/problem+json"},
	} {
		req, err := http.NewRequest(c.method, f.srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) {
			t.Errorf("%s %s: %d %s %.200s, want 404 %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.ctype)
		}
	}
}
