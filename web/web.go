// Package web holds the pages and static files of the browser UI, embedded
// in the binary; templates are parsed once at start.
package web

import (
	"bytes"
	"embed"
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
}

// Parse parses every page with the shared layout.
func Parse() (*Pages, error) {
	funcs := template.FuncMap{
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
	p := &Pages{byName: map[string]*template.Template{}}
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
