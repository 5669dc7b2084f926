package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// TestAssetNamesTheFilesVersion: a page names a static file by the start
// of its content's SHA-256, so another content is another URL.
func TestAssetNamesTheFilesVersion(t *testing.T) {
	p, err := Parse()
	if err != nil {
		t.Fatal(err)
	}
	script, err := fs.ReadFile(Static(), "live.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	want := "/static/live.js?v=" + hex.EncodeToString(sum[:])[:16]
	if got, err := p.Asset("live.js"); err != nil || got != want {
		t.Fatalf("Asset(live.js) = %q, %v; want %q", got, err, want)
	}
	if !p.Current("live.js", want[len("/static/live.js?v="):]) || p.Current("live.js", "0123456789abcdef") || p.Current("nope.js", "") {
		t.Fatal("Current does not tell the file's version from others")
	}
	if _, err := p.Asset("nope.js"); err == nil {
		t.Fatal("Asset of a file that does not exist gave a URL")
	}
	a, _ := fileVersions(fstest.MapFS{"a.js": {Data: []byte("one")}, "b.js": {Data: []byte("one")}})
	b, _ := fileVersions(fstest.MapFS{"a.js": {Data: []byte("two")}, "b.js": {Data: []byte("one")}})
	if a["a.js"] == b["a.js"] || a["b.js"] != b["b.js"] || len(a["a.js"]) != 16 {
		t.Fatalf("versions %v and %v: a change of content must change its file's version only", a, b)
	}
	var page strings.Builder
	if err := p.Render(&page, "workshop.html", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `src="`+want+`"`) {
		t.Fatalf("the workshop page does not name its script by version:\n%s", page.String())
	}
}
