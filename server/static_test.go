package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"testing"

	"github.com/rapporteur/rapporteur/web"
)

// TestStaticFilesByVersion: a file asked for by its current version may
// be kept by browsers for good; asked for otherwise (a page of another
// version, or none), it must be checked each time, so a copy of this
// version is never kept under another's name.
func TestStaticFilesByVersion(t *testing.T) {
	s := MustStart(t, map[string]string{"DATABASE_URL": pg.NewDB(t)})
	script, err := fs.ReadFile(web.Static(), "live.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	current := hex.EncodeToString(sum[:])[:16]
	for _, c := range []struct{ query, cache string }{
		{"?v=" + current, "public, max-age=31536000, immutable"},
		{"?v=0123456789abcdef", "no-cache"},
		{"", "no-cache"},
	} {
		resp, err := http.Get(s.URL + "/static/live.js" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != string(script) {
			t.Fatalf("/static/live.js%s: %s, %d bytes; want the script", c.query, resp.Status, len(body))
		}
		if got := resp.Header.Get("Cache-Control"); got != c.cache {
			t.Fatalf("/static/live.js%s: Cache-Control %q, want %q", c.query, got, c.cache)
		}
	}
}
