package acl

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/engine"
)

// records keeps what a logger wrote.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.list = append(h.list, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

func attr(r slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// newTestRefusals is a Refusals on a fake clock whose goroutine never ticks by itself.
func newTestRefusals(perSecond int) (*Refusals, *records, *fakeClock) {
	h := &records{}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := newRefusals(slog.New(h), perSecond, clk.now)
	go r.run(time.Hour)
	return r, h, clk
}

func TestRefusalsRateLimit(t *testing.T) {
	rules := mustParse(t, "[loopback]\nsubmit *\n")
	r, h, clk := newTestRefusals(10)
	a := NewAuthorizer(rules, r)
	// A flood of 100 refusals within one instant: the first 10 are logged.
	for range 100 {
		a.Allow(&web, engine.ActSubmit, []byte("payments"))
	}
	// A second later 10 more tokens: the next line carries the count of the 90 suppressed.
	clk.t = clk.t.Add(time.Second)
	a.Allow(&office4, engine.ActWork, []byte("billing.a"))
	// Then 5 more suppressed after the bucket empties, and the flood stops: the periodic
	// flush reports them once the rate allows.
	for range 14 {
		a.Allow(&web, engine.ActSubmit, []byte("payments"))
	}
	clk.t = clk.t.Add(200 * time.Millisecond)
	r.flush()
	r.Close()
	a.Allow(&web, engine.ActSubmit, []byte("after close")) // dropped, and no panic

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.list) != 10+1+9+1 {
		for _, rec := range h.list {
			t.Log(rec.Message)
		}
		t.Fatalf("%d lines logged, want 21", len(h.list))
	}
	first := h.list[0]
	if first.Message != "request refused" || first.Level != slog.LevelWarn {
		t.Errorf("first line %q at %v", first.Message, first.Level)
	}
	for key, want := range map[string]string{
		"identity": "cert:web-1 from 203.0.113.10", "remote": "203.0.113.10", "action": "submit",
		"name": "payments", "reason": `not granted submit on "payments" to cert:web-1 from 203.0.113.10`,
	} {
		if v, ok := attr(first, key); !ok || v.String() != want {
			t.Errorf("first line %s = %v, want %q", key, v, want)
		}
	}
	if _, ok := attr(first, "suppressed"); ok {
		t.Error("the first line reports suppressed lines")
	}
	resumed := h.list[10]
	if v, ok := attr(resumed, "suppressed"); !ok || v.Uint64() != 90 {
		t.Errorf("the line after the flood: suppressed = %v, want 90", v)
	}
	if v, _ := attr(resumed, "identity"); v.String() != "10.1.2.3" {
		t.Errorf("identity without a certificate = %q", v.String())
	}
	last := h.list[len(h.list)-1]
	if v, ok := attr(last, "suppressed"); last.Message != "refusals not logged" || !ok || v.Uint64() != 5 {
		t.Errorf("last line %q suppressed=%v, want the count 5", last.Message, v)
	}
}

func TestRefusalsCloseReportsTheRest(t *testing.T) {
	r, h, _ := newTestRefusals(1)
	id := &engine.Identity{IP: "10.0.0.1"}
	for range 3 {
		r.Note(id, engine.ActAdmin, []byte("shutdown"), ErrDenied)
	}
	r.Close()
	r.Close() // twice is harmless
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.list) != 2 {
		t.Fatalf("%d lines, want 2", len(h.list))
	}
	if v, _ := attr(h.list[0], "name"); v.String() != "shutdown" {
		t.Errorf("a foreign error's line names %q", v.String())
	}
	if v, _ := attr(h.list[1], "suppressed"); h.list[1].Message != "refusals not logged" || v.Uint64() != 2 {
		t.Errorf("close: %q suppressed %v, want 2", h.list[1].Message, v)
	}
}

// A logger that blocks (a stuck disk) never blocks Note.
type stuck struct{ release chan struct{} }

func (h stuck) Enabled(context.Context, slog.Level) bool  { return true }
func (h stuck) Handle(context.Context, slog.Record) error { <-h.release; return nil }
func (h stuck) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h stuck) WithGroup(string) slog.Handler             { return h }

func TestRefusalsNeverBlock(t *testing.T) {
	h := stuck{release: make(chan struct{})}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := newRefusals(slog.New(h), 10, clk.now)
	go r.run(time.Hour)
	id := &engine.Identity{IP: "10.0.0.1"}
	finished := make(chan struct{})
	go func() {
		for range 1000 {
			r.mu.Lock()
			clk.t = clk.t.Add(time.Second) // every Note finds a fresh token
			r.mu.Unlock()
			r.Note(id, engine.ActSubmit, []byte("x"), ErrDenied)
		}
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("Note blocked behind a stuck logger")
	}
	r.mu.Lock()
	suppressed := r.suppressed
	r.mu.Unlock()
	if suppressed == 0 {
		t.Error("lines the stuck logger could not take were not counted")
	}
	close(h.release)
	r.Close()
}

func TestAllocs(t *testing.T) {
	rules := mustParse(t, sample)
	r, _, _ := newTestRefusals(1)
	defer r.Close()
	a := NewAuthorizer(rules, r)
	fn := []byte("billing.charge")
	cases := []struct {
		what string
		id   *engine.Identity
		act  engine.Action
		name []byte
	}{
		{"allowed by a cert prefix", &billing, engine.ActSubmit, fn},
		{"allowed by an exact name", &billing, engine.ActSubmit, []byte("invoice")},
		{"allowed by a network", &office6, engine.ActSubmit, fn},
		{"allowed by a class pattern", &thumbs, engine.ActWork, []byte("resize-3")},
		{"allowed admin on loopback", &local, engine.ActAdmin, []byte("shutdown")},
		{"refused, repeated and not logged", &web, engine.ActSubmit, []byte("payments")},
	}
	for _, c := range cases {
		a.Allow(c.id, c.act, c.name) // warm the refusal cache and spend the one token
		a.Allow(c.id, c.act, c.name)
		if n := testing.AllocsPerRun(1000, func() { a.Allow(c.id, c.act, c.name) }); n != 0 {
			t.Errorf("%s: %v allocations per check", c.what, n)
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	rules := mustParse(b, sample)
	r := NewRefusals(slog.New(slog.DiscardHandler), 10)
	defer r.Close()
	a := NewAuthorizer(rules, r)
	for _, c := range []struct {
		what string
		id   *engine.Identity
		act  engine.Action
		name []byte
	}{
		{"cert-prefix", &billing, engine.ActSubmit, []byte("billing.charge")},
		{"cert-exact", &billing, engine.ActSubmit, []byte("invoice")},
		{"net-v4", &office4, engine.ActSubmit, []byte("billing.charge")},
		{"net-v6", &office6, engine.ActStatus, []byte("billing.charge")},
		{"admin-loopback", &local, engine.ActAdmin, []byte("shutdown")},
		{"refused", &web, engine.ActSubmit, []byte("payments")},
	} {
		b.Run(c.what, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Allow(c.id, c.act, c.name)
			}
		})
	}
}
