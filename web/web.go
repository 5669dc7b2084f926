// Package web holds the pages and static files of the browser UI, embedded
// in the binary; templates are parsed once at start.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Static returns the static files (CSS, scripts), served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the folder is embedded; it exists
	}
	return sub
}

// Pages renders the HTML pages.
type Pages struct {
	byName map[string]*template.Template
	// versions holds each static file's version: the start of its
	// SHA-256 in hex, which pages put in its URL (see Asset).
	versions map[string]string
}

// versionLen is how many hex digits of a file's SHA-256 name its version.
const versionLen = 16

// fileVersions returns the version of every file in fsys.
func fileVersions(fsys fs.FS) (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[path] = hex.EncodeToString(sum[:])[:versionLen]
		return nil
	})
	return out, err
}

// Asset returns the URL of static file name, versioned by its content:
// a page names the exact files it was made with, so a device that keeps
// pages and files (web/static/sw.js) never pairs a page with a script
// of another version of the server.
func (p *Pages) Asset(name string) (string, error) {
	v, ok := p.versions[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + name + "?v=" + v, nil
}

// Current tells whether version v is static file name's content now.
func (p *Pages) Current(name, v string) bool {
	have, ok := p.versions[name]
	return ok && v == have
}

// Parse parses every page with the shared layout.
func Parse() (*Pages, error) {
	versions, err := fileVersions(Static())
	if err != nil {
		return nil, err
	}
	p := &Pages{byName: map[string]*template.Template{}, versions: versions}
	funcs := template.FuncMap{
		"asset": p.Asset,
		// session returns what the server put under "Session" in map data
		// (who is signed in, the CSRF token), nil for other data.
		"session": func(data any) any {
			if m, ok := data.(map[string]any); ok {
				return m["Session"]
			}
			return nil
		},
		"localtime": func(t *time.Time, tz string) string {
			if t == nil {
				return ""
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				loc = time.UTC
			}
			return t.In(loc).Format("15:04")
		},
		"localdate": func(t *time.Time, tz string) string {
			if t == nil {
				return ""
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				loc = time.UTC
			}
			return t.In(loc).Format("Monday 2 January 2006")
		},
	}
	pages, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, page := range pages {
		name := page[len("templates/"):]
		if name == "layout.html" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", page)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// Render writes page name with data; it renders into a buffer first so a
// failing template never sends half a page.
func (p *Pages) Render(w io.Writer, name string, data any) error {
	t, ok := p.byName[name]
	if !ok {
		return fmt.Errorf("no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}
