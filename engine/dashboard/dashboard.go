// Package dashboard serves Spur's live web dashboard: three static files embedded in the
// binary (go:embed), nothing fetched from elsewhere, that poll the JSON API under /api/
// (package engine/httpapi) and draw what they read.
//
//	index.html  the page: summary, throughput and failure-rate charts, functions, workers,
//	            scheduled jobs, schedules, result lookup, dead letters
//	app.js      plain JavaScript, no framework and no build step: polls /api/status and
//	            /api/workers every second (every 15 s while the tab is hidden, backing off
//	            on errors), the lists when their counts change or every 10 s, and renders
//	            each table with one innerHTML per poll; charts are hand-written SVG
//	style.css   the looks
//
// The Content-Security-Policy sent with them allows only this origin, so a page that tried
// to load a script, style or font from a CDN would fail in the browser, not in production
// by surprise. Action buttons are shown only where GET /api/me says the viewer may act; the
// API checks again on every request, so hiding them is a courtesy, not the access control.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

//go:embed index.html app.js style.css
var files embed.FS

// contentSecurityPolicy allows nothing but this origin: no inline script, no CDN, no frames.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string // of the content, so a browser revalidates cheaply and never runs stale code
}

// Handler serves the dashboard: GET or HEAD of /, /index.html, /app.js and /style.css; 404
// for any other path, 405 for other methods. Mount it at "/" (no method in the pattern, so
// that it does not conflict with the API's patterns); more specific patterns win over it.
func Handler() http.Handler {
	assets := make(map[string]asset, 4)
	for name, ctype := range map[string]string{
		"index.html": "text/html; charset=utf-8",
		"app.js":     "text/javascript; charset=utf-8",
		"style.css":  "text/css; charset=utf-8",
	} {
		body, err := files.ReadFile(name)
		if err != nil {
			panic("dashboard: embedded " + name + " missing: " + err.Error()) // go:embed guarantees it
		}
		sum := sha256.Sum256(body)
		assets[name] = asset{body: body, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	assets[""] = assets["index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
