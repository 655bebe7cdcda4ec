package httpapi

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/cluster"
	"github.com/spur-gearman/spur/engine/tlsserver"
)

// TokenResolver names the bearer token whose secret a request presented; *acl.Authorizer
// is one. It must compare in constant time.
type TokenResolver interface {
	Token(secret string) (name string, ok bool)
}

// Options configure the handler.
type Options struct {
	// Tokens resolves `Authorization: Bearer` secrets; nil means no token is known, so that
	// every request presenting one is refused (401).
	Tokens TokenResolver
	// Started is when the server started, for /api/status; zero = when New was called.
	Started time.Time
	// MaxBody bounds a request body; default DefaultMaxBody.
	MaxBody int64
	Logger  *slog.Logger
	// Cluster names the other nodes that /api/cluster/... shows beside this one; zero =
	// this node alone.
	Cluster ClusterOptions
}

// DefaultMaxBody is the default bound of a request body: a job's data of 64 MiB (the
// Gearman port's default packet size) in base64, with room for the rest.
const DefaultMaxBody = 90 << 20

// api is the handler's state.
type api struct {
	e    *engine.Engine
	opts Options
	mux  *http.ServeMux
	// patterns are the routes the mux serves, as "METHOD /path", for the OpenAPI test.
	patterns []string
}

//go:embed openapi.json
var openapiDoc []byte

// New returns the handler of /api/... (the routes are in the package documentation). It
// uses only the engine's exported operations; it never runs on an event loop.
func New(e *engine.Engine, opts Options) http.Handler {
	return newAPI(e, opts)
}

func newAPI(e *engine.Engine, opts Options) *api {
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Cluster.Reader == nil {
		opts.Cluster.Reader = cluster.New(cluster.Options{})
	}
	a := &api{e: e, opts: opts, mux: http.NewServeMux()}
	a.routes()
	return a
}

// handle registers h for pattern ("METHOD /path").
func (a *api) handle(pattern string, h func(w http.ResponseWriter, r *http.Request, who *engine.Identity)) {
	a.patterns = append(a.patterns, pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && crossSite(r) {
			writeError(w, errCrossSite)
			return
		}
		who, err := a.identity(r)
		if err != nil {
			writeError(w, err)
			return
		}
		h(w, r, who)
	})
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Answer unknown paths and wrong methods in the API's own JSON, not net/http's text.
	if _, pattern := a.mux.Handler(r); pattern == "" {
		rec := &probe{header: http.Header{}}
		a.mux.ServeHTTP(rec, r)
		if rec.code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, &apiError{http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method + " is not allowed on " + r.URL.Path})
			return
		}
		writeError(w, notFound("no such endpoint: "+r.URL.Path))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// crossSite reports whether a browser sent r for a page of another origin (a form or a
// script of any web site the viewer has open). Without it, that page could pause functions or
// submit jobs through a dashboard user's browser, with the loopback or client-certificate
// identity of its connection (CSRF). Browsers say so in Sec-Fetch-Site and, for a POST, in
// Origin; curl and scripts send neither and are not affected.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none": // none: typed in the address bar, or no browser
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host // "null" (an opaque origin) has no host
}

// errCrossSite refuses a request crossSite caught.
var errCrossSite = &apiError{http.StatusForbidden, "PERMISSION_DENIED", "a browser request from another web site may not change anything here"}

// probe captures what the mux answers a request no route matches (404, or 405 with Allow).
type probe struct {
	header http.Header
	code   int
}

func (p *probe) Header() http.Header         { return p.header }
func (p *probe) Write(b []byte) (int, error) { return len(b), nil }
func (p *probe) WriteHeader(code int)        { p.code = code }

// Identity returns who the request is from: its connection's address and verified TLS
// client certificate names, and the name of the bearer token it presented. An unknown
// token is an error (401): it is never served as anonymous.
func Identity(r *http.Request, tokens TokenResolver) (engine.Identity, error) {
	id := engine.Identity{IP: "-"}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		id = engine.IdentityOf(net.TCPAddrFromAddrPort(ap)) // as the Gearman port's
	}
	if r.TLS != nil {
		if names := tlsserver.PeerNames(*r.TLS); len(names) > 0 {
			id.Name, id.Names = names[0], names
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			return id, &apiError{http.StatusUnauthorized, "UNAUTHORIZED", "the Authorization header must be `Bearer TOKEN`"}
		}
		var name string
		ok := false
		if tokens != nil {
			name, ok = tokens.Token(strings.TrimSpace(secret))
		}
		if !ok {
			return id, &apiError{http.StatusUnauthorized, "UNAUTHORIZED", "unknown bearer token"}
		}
		id.Token = name
	}
	return id, nil
}

func (a *api) identity(r *http.Request) (*engine.Identity, error) {
	id, err := Identity(r, a.opts.Tokens)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// apiError is an answer other than 2xx: {"error": {"code", "message"}}.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(msg string) *apiError { return &apiError{http.StatusBadRequest, "BAD_REQUEST", msg} }
func notFound(msg string) *apiError   { return &apiError{http.StatusNotFound, "NOT_FOUND", msg} }
func conflict(msg string) *apiError   { return &apiError{http.StatusConflict, "CONFLICT", msg} }
func denied(err error) *apiError {
	return &apiError{http.StatusForbidden, "PERMISSION_DENIED", err.Error()}
}

// engineError maps an error of an engine operation to its answer.
func engineError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, engine.ErrShuttingDown):
		return &apiError{http.StatusServiceUnavailable, "SHUTTING_DOWN", err.Error()}
	case errors.Is(err, engine.ErrQueueFull):
		return &apiError{http.StatusServiceUnavailable, "QUEUE_FULL", err.Error()}
	}
	return &apiError{http.StatusServiceUnavailable, "QUEUE_ERROR", err.Error()}
}

// writeError answers err; an error that is not an *apiError is INTERNAL.
func writeError(w http.ResponseWriter, err error) {
	writeErrorWith(w, err, nil)
}

// writeErrorWith is writeError with more fields beside code and message (TIMEOUT's handle).
func writeErrorWith(w http.ResponseWriter, err error, extra map[string]any) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, "INTERNAL", err.Error()}
	}
	body := map[string]any{"code": ae.code, "message": ae.message}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, ae.status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"INTERNAL","message":"cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func ok(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) }

// readJSON decodes the request body into v, refusing unknown fields and more than one value.
func (a *api) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.opts.MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, "TOO_LARGE", "the request body is larger than " + itoa(tooLarge.Limit) + " bytes"}
	case errors.Is(err, io.EOF):
		return badRequest("the request needs a JSON body")
	}
	return badRequest("the request body: " + err.Error())
}

// allowAdmin checks that who may run the admin command whose first word is word.
func (a *api) allowAdmin(who *engine.Identity, word string) error {
	if err := a.e.Allow(who, engine.ActAdmin, []byte(word)); err != nil {
		return denied(err)
	}
	return nil
}

// payload is job data as JSON carries it: "data" when it is valid UTF-8, else "data_base64".
type payload struct {
	Data       *string `json:"data,omitempty"`
	DataBase64 *string `json:"data_base64,omitempty"`
}

func payloadOf(b []byte) payload {
	if utf8.Valid(b) {
		s := string(b)
		return payload{Data: &s}
	}
	s := base64.StdEncoding.EncodeToString(b)
	return payload{DataBase64: &s}
}

// bytes returns the data a request gave, either way; both at once is a mistake.
func (p payload) bytes() ([]byte, error) {
	switch {
	case p.Data != nil && p.DataBase64 != nil:
		return nil, badRequest(`give "data" or "data_base64", not both`)
	case p.DataBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*p.DataBase64)
		if err != nil {
			return nil, badRequest(`"data_base64" is not base64: ` + err.Error())
		}
		return b, nil
	case p.Data != nil:
		return []byte(*p.Data), nil
	}
	return nil, nil
}

// jtime is a time as the API writes it: RFC 3339, milliseconds, UTC; null when zero.
type jtime time.Time

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func (t jtime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Time(t).UTC().Format(timeLayout) + `"`), nil
}

// nanoTime is a unix-nanosecond time as a jtime (0 = unknown).
func nanoTime(ns int64) jtime {
	if ns == 0 {
		return jtime{}
	}
	return jtime(time.Unix(0, ns))
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
