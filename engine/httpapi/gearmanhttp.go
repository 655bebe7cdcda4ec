package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/queue"
)

// GearmanHandler serves gearmand's HTTP protocol plugin (`-r http`, `--http-port`), for
// users of it who move to Spur without changing their callers:
//
//	POST|PUT|GET /FN               the body (POST, PUT) is the job's data; GET submits none
//	X-Gearman-Unique: U            the unique id; default "-" (coalesce on identical data), as gearmand
//	X-Gearman-Background: true     a background job: answered at once with its handle
//	X-Gearman-Priority: high|low   default normal
//
// answered 200 with X-Gearman-Job-Handle and X-Gearman-Command (JOB_CREATED for a
// background job; WORK_COMPLETE, WORK_FAIL or WORK_EXCEPTION for a foreground one, whose
// data is the body). A foreground request waits for its job as long as its client does.
//
// What gearmand gets wrong here (gearman-spec.md, weakness 18) it does not: the WORK_DATA
// of a job comes before its final data in the body instead of overwriting the status
// line; a failed job's handle is whole; HTTP/1.1 with keep-alive is spoken (net/http);
// HEAD, TRACE and other methods get 405 rather than a made-up handle or a hang; a refusal
// is an HTTP error with a text body (403 not authorized, 503 queue full or shutting down,
// 400 bad arguments, 404 without a function). The identity and bearer tokens are the
// JSON API's (see Identity).
func GearmanHandler(e *engine.Engine, opts Options) http.Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	return &gearmanHTTP{e: e, opts: opts}
}

type gearmanHTTP struct {
	e    *engine.Engine
	opts Options
}

func (g *gearmanHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "Spur/"+engine.Version)
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodGet:
	default:
		w.Header().Set("Allow", "GET, POST, PUT")
		textError(w, http.StatusMethodNotAllowed, r.Method+" is not a Gearman submit (GET, POST or PUT /FUNCTION)")
		return
	}
	if crossSite(r) { // every method submits here, GET too (an <img> could)
		textError(w, http.StatusForbidden, errCrossSite.message)
		return
	}
	fn := strings.TrimLeft(r.URL.Path, "/")
	if fn == "" {
		textError(w, http.StatusNotFound, "no function: submit to /FUNCTION")
		return
	}
	who, err := Identity(r, g.opts.Tokens)
	if err != nil {
		gearmanError(w, err)
		return
	}
	var data []byte
	if r.Method != http.MethodGet {
		if data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.MaxBody)); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				textError(w, http.StatusRequestEntityTooLarge, "the body is larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
			}
			return
		}
	}
	unique := "-"
	if vs, ok := r.Header[http.CanonicalHeaderKey("X-Gearman-Unique")]; ok && len(vs) > 0 {
		unique = vs[0]
	}
	j := &job{fn: []byte(fn), unique: []byte(unique), data: data, prio: queue.Normal}
	switch strings.ToLower(r.Header.Get("X-Gearman-Priority")) {
	case "high":
		j.prio = queue.High
	case "low":
		j.prio = queue.Low
	}
	if strings.EqualFold(r.Header.Get("X-Gearman-Background"), "true") {
		h, err := submitBackground(g.e, &who, j)
		if err != nil {
			gearmanError(w, err)
			return
		}
		w.Header().Set("X-Gearman-Job-Handle", h)
		w.Header().Set("X-Gearman-Command", "JOB_CREATED")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	// As gearmand: a foreground request waits for its job as long as its client waits.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	out, err := submitForeground(r.Context(), g.e, &who, j)
	if err != nil {
		gearmanError(w, err)
		return
	}
	w.Header().Set("X-Gearman-Job-Handle", out.handle)
	w.Header().Set("X-Gearman-Command", out.command.String())
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(out.data)))
	w.WriteHeader(http.StatusOK)
	w.Write(out.data)
}

// gearmanError answers a refusal as a text error; a client that went away gets nothing.
func gearmanError(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		textError(w, ae.status, ae.code+": "+ae.message)
	}
}

func textError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}
