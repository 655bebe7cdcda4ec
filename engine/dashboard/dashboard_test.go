package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// Every file is served with its type, the same-origin-only policy and a content ETag that
// a revalidation answers with 304.
func TestHandlerServesEmbeddedFiles(t *testing.T) {
	h := Handler()
	for path, ctype := range map[string]string{
		"/":           "text/html; charset=utf-8",
		"/index.html": "text/html; charset=utf-8",
		"/app.js":     "text/javascript; charset=utf-8",
		"/style.css":  "text/css; charset=utf-8",
	} {
		res := get(t, h, http.MethodGet, path, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s: %d, %d bytes", path, res.StatusCode, len(body))
		}
		if got := res.Header.Get("Content-Type"); got != ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, ctype)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", path)
		}
		if res := get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d, want 304", path, res.StatusCode)
		}
		if res := get(t, h, http.MethodHead, path, nil); res.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d", path, res.StatusCode)
		}
	}
}

func TestHandlerRefusesOthers(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/nope", "/app.js/x", "/dashboard.go", "/../go.mod"} {
		if res := get(t, h, http.MethodGet, path, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	res := get(t, h, http.MethodPost, "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow %q, want 405 GET, HEAD", res.StatusCode, res.Header.Get("Allow"))
	}
}

// Nothing is loaded from elsewhere: no absolute URL in any file, and the page loads exactly
// the two files served beside it.
func TestNothingFromElsewhere(t *testing.T) {
	abs := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(`)
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := abs.Find(b); m != nil {
			t.Errorf("%s refers to %q: the dashboard must load nothing from elsewhere", name, m)
		}
	}
	index, _ := files.ReadFile("index.html")
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllSubmatch(index, -1)
	var got []string
	for _, r := range refs {
		got = append(got, string(r[1]))
	}
	if strings.Join(got, " ") != "data:, style.css app.js" {
		t.Errorf("index.html loads %q, want exactly data:, style.css and app.js", got)
	}
}
