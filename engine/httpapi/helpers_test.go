package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine"
)

// newEngine is an in-memory engine that keeps results, quiet in tests.
func newEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = "H:api"
	}
	if cfg.ResultTTL == 0 {
		cfg.ResultTTL = time.Hour
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return engine.New(cfg)
}

// call is one request to h from remote (host:port) with the given bearer token ("" none).
type call struct {
	method, path string
	body         any // marshalled to JSON unless a string
	remote       string
	token        string
	header       map[string]string // more request headers
}

// reply is an answer: its status and its body decoded.
type reply struct {
	code int
	body map[string]any
	raw  string
	hdr  http.Header
}

func do(t testing.TB, h http.Handler, c call) reply {
	t.Helper()
	var body io.Reader
	switch b := c.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	r := httptest.NewRequest(c.method, c.path, body)
	r.RemoteAddr = c.remote
	if r.RemoteAddr == "" {
		r.RemoteAddr = "127.0.0.1:40000"
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	rep := reply{code: rec.Code, raw: rec.Body.String(), hdr: rec.Header()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && c.path != "/api/openapi.json" {
		if err := json.Unmarshal(rec.Body.Bytes(), &rep.body); err != nil {
			t.Fatalf("%s %s: not JSON: %v: %q", c.method, c.path, err, rec.Body.String())
		}
	}
	return rep
}

// want checks the status, and for an error its code.
func (r reply) want(t testing.TB, code int, errCode string) reply {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.raw)
	}
	if errCode != "" {
		if got := r.get("error", "code"); got != errCode {
			t.Fatalf("error code %v, want %s: %s", got, errCode, r.raw)
		}
	}
	return r
}

// get walks the decoded body by keys (strings) and indexes (ints).
func (r reply) get(path ...any) any {
	var v any = r.body
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func (r reply) list(path ...any) []any {
	l, _ := r.get(path...).([]any)
	return l
}

// peer is a Gearman connection inside the process: a session the test drives as its event
// loop (worker, admin or client).
type peer struct {
	t   testing.TB
	s   *engine.Session
	tr  *loopback
	buf []byte
}

func newPeer(t testing.TB, e *engine.Engine, fd int) *peer {
	p := &peer{t: t, tr: &loopback{wake: make(chan struct{}, 1)}}
	p.s = e.NewSessionAs(p.tr, fd, engine.Identity{IP: "127.0.0.1", Loopback: true})
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	if p.s != nil {
		p.s.Close()
		p.s = nil
	}
}

func (p *peer) send(typ codec.Type, args ...string) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	p.s.Feed(codec.AppendRequest(nil, typ, bs...))
}

// packet is a reply read back, its arguments copied.
type packet struct {
	typ  codec.Type
	args []string
}

// recv reads the next packet, waiting up to d; ok false when none came.
func (p *peer) recv(d time.Duration) (packet, bool) {
	deadline := time.After(d)
	for {
		b, _ := p.s.TakeOutput()
		if b != nil {
			p.buf = append(p.buf, b.B...)
			p.s.ReleaseOutput(b)
		}
		if pk, n, err := codec.Parse(p.buf, 0); err != nil {
			p.t.Fatalf("parse: %v", err)
		} else if n > 0 {
			out := packet{typ: pk.Type}
			for i := 0; i < pk.NArgs; i++ {
				out.args = append(out.args, string(pk.Args[i]))
			}
			p.buf = p.buf[n:]
			return out, true
		}
		select {
		case <-p.tr.wake:
		case <-deadline:
			return packet{}, false
		}
	}
}

func (p *peer) must(typ codec.Type) packet {
	p.t.Helper()
	pk, ok := p.recv(5 * time.Second)
	if !ok || pk.typ != typ {
		p.t.Fatalf("got %v %q (ok %v), want %v", pk.typ, pk.args, ok, typ)
	}
	return pk
}

// admin runs a text admin command and returns its answer (up to ".\n" or one line).
func (p *peer) admin(line string) string {
	p.t.Helper()
	p.s.Feed([]byte(line + "\n"))
	var out []byte
	deadline := time.After(5 * time.Second)
	for {
		b, _ := p.s.TakeOutput()
		if b != nil {
			out = append(out, b.B...)
			p.s.ReleaseOutput(b)
		}
		if bytes.HasSuffix(out, []byte(".\n")) || bytes.HasSuffix(out, []byte("\r\n")) {
			return string(out)
		}
		select {
		case <-p.tr.wake:
		case <-deadline:
			p.t.Fatalf("admin %q: no answer, got %q", line, out)
		}
	}
}

// worker registers for fns.
func worker(t testing.TB, e *engine.Engine, fd int, fns ...string) *peer {
	w := newPeer(t, e, fd)
	for _, fn := range fns {
		w.send(codec.CanDo, fn)
	}
	return w
}

// grab waits (up to 5 s) for a job: JOB_ASSIGN_UNIQ's handle, function, unique, data.
func (p *peer) grab() packet {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.send(codec.GrabJobUniq)
		pk, ok := p.recv(5 * time.Second)
		if ok && pk.typ == codec.JobAssignUniq {
			return pk
		}
		if !ok || pk.typ != codec.NoJob {
			p.t.Fatalf("grab: %v %q", pk.typ, pk.args)
		}
		p.send(codec.PreSleep)
		p.recv(200 * time.Millisecond) // a NOOP, or nothing
	}
	p.t.Fatal("grab: no job within 5s")
	return packet{}
}
