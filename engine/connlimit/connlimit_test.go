package connlimit

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	l := New(3, 2, slog.New(slog.DiscardHandler))
	if !l.Acquire("a") || !l.Acquire("a") {
		t.Fatal("first two from a refused")
	}
	if l.Acquire("a") {
		t.Fatal("a third from a let in past the per-source cap")
	}
	if !l.Acquire("b") {
		t.Fatal("b refused")
	}
	if l.Acquire("c") {
		t.Fatal("a fourth in all let in past the total cap")
	}
	l.Release("a")
	if !l.Acquire("c") {
		t.Fatal("c refused after a release")
	}
	if l.Open() != 3 {
		t.Fatalf("open %d, want 3", l.Open())
	}
	l.Release("a")
	l.Release("b")
	l.Release("c")
	if l.Open() != 0 || len(l.bySource) != 0 {
		t.Fatalf("after releasing everything: open %d, sources %v", l.Open(), l.bySource)
	}
	unlimited := New(0, 0, nil)
	for i := 0; i < 1000; i++ {
		if !unlimited.Acquire("x") {
			t.Fatal("a limiter without limits refused")
		}
	}
}

// A flood of refusals writes one line per second, with the count of those it left out.
func TestRefusalsAreLoggedAtABoundedRate(t *testing.T) {
	var buf bytes.Buffer
	l := New(1, 0, slog.New(slog.NewTextHandler(&buf, nil)))
	clock := time.Unix(1000, 0)
	l.now = func() time.Time { return clock }
	l.Acquire("a")
	for i := 0; i < 500; i++ {
		l.Acquire("flood")
	}
	if n := strings.Count(buf.String(), "connection refused"); n != 1 {
		t.Fatalf("%d lines for 500 refusals within a second", n)
	}
	clock = clock.Add(time.Second)
	l.Acquire("flood")
	out := buf.String()
	if n := strings.Count(out, "connection refused"); n != 2 || !strings.Contains(out, `"refusals not logged since the last line"=499`) {
		t.Fatalf("after a second: %q", out)
	}
}

func TestConcurrentUse(t *testing.T) {
	l := New(50, 0, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if l.Acquire("s") {
					l.Release("s")
				}
			}
		}()
	}
	wg.Wait()
	if l.Open() != 0 {
		t.Fatalf("open %d after balanced use", l.Open())
	}
}
