package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spur-gearman/spur/engine"
)

// newEngine returns an engine with n functions, each holding one background job.
func newEngine(tb testing.TB, n int) *engine.Engine {
	e := engine.New(engine.Config{HandlePrefix: "H:m", NodeName: "n1"})
	who := &engine.Identity{IP: "test", Loopback: true}
	for i := 0; i < n; i++ {
		done := make(chan error, 1)
		e.SubmitBackground(engine.SubmitRequest{Function: []byte(fmt.Sprint("fn", i)), Data: []byte("x")}, who,
			func(_ string, err error) { done <- err })
		if err := <-done; err != nil {
			tb.Fatal(err)
		}
	}
	return e
}

// newEngine's jobs are high priority (the zero Priority). Every series carries the node's name.
func TestGathererReportsEveryFunction(t *testing.T) {
	e := newEngine(t, 3)
	g, err := Gatherer(e, nil, collectors.NewGoCollector())
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP gearman_jobs Jobs of the function, queued and running (gearman-exporter's series).
# TYPE gearman_jobs gauge
gearman_jobs{function="fn0",node="n1"} 1
gearman_jobs{function="fn1",node="n1"} 1
gearman_jobs{function="fn2",node="n1"} 1
# HELP spur_function_jobs_queued Jobs of the function waiting to run (scheduled ones included), by priority.
# TYPE spur_function_jobs_queued gauge
spur_function_jobs_queued{function="fn0",node="n1",priority="high"} 1
spur_function_jobs_queued{function="fn0",node="n1",priority="low"} 0
spur_function_jobs_queued{function="fn0",node="n1",priority="normal"} 0
spur_function_jobs_queued{function="fn1",node="n1",priority="high"} 1
spur_function_jobs_queued{function="fn1",node="n1",priority="low"} 0
spur_function_jobs_queued{function="fn1",node="n1",priority="normal"} 0
spur_function_jobs_queued{function="fn2",node="n1",priority="high"} 1
spur_function_jobs_queued{function="fn2",node="n1",priority="low"} 0
spur_function_jobs_queued{function="fn2",node="n1",priority="normal"} 0
`
	if err := testutil.GatherAndCompare(g, strings.NewReader(want), "gearman_jobs", "spur_function_jobs_queued"); err != nil {
		t.Fatal(err)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			node := ""
			for _, l := range m.Label {
				if l.GetName() == "node" {
					node = l.GetValue()
				}
			}
			if node != "n1" {
				t.Fatalf("%s: a series without node=\"n1\": %v", mf.GetName(), m.Label)
			}
		}
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(New(e, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("a pedantic registry refuses the server's families: %v", err)
	}
}

// The per-function families are built without a registry's checks: they must be what a
// registry would give, every family's series unique and in label order, and no family twice.
func TestFunctionFamiliesAreWellFormed(t *testing.T) {
	e := newEngine(t, 50)
	g, err := Gatherer(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		if seen[mf.GetName()] {
			t.Fatalf("family %s twice", mf.GetName())
		}
		seen[mf.GetName()] = true
		prev := ""
		for _, m := range mf.Metric {
			var key strings.Builder
			for i, l := range m.Label {
				if i > 0 && l.GetName() <= m.Label[i-1].GetName() {
					t.Fatalf("%s: labels out of order: %v", mf.GetName(), m.Label)
				}
				key.WriteString(l.GetName() + "=" + l.GetValue() + "\x00")
			}
			if prev != "" && key.String() <= prev {
				t.Fatalf("%s: series %q after %q", mf.GetName(), key.String(), prev)
			}
			prev = key.String()
		}
	}
	for _, name := range FunctionFamilies() {
		// Nothing is paused or limited, no job was handed out: those families have no series.
		switch name {
		case "spur_function_paused", "spur_function_limit", "spur_function_queue_wait_seconds", "spur_function_run_seconds":
			if seen[name] {
				t.Errorf("family %s without a series to show", name)
			}
		default:
			if !seen[name] {
				t.Errorf("no family %s", name)
			}
		}
	}
}

// BenchmarkScrape10kFunctions is a scrape of 10,000 functions: the whole gather, and
// (FunctionStats) what it spends under shard locks, 64 shards one after another.
func BenchmarkScrape10kFunctions(b *testing.B) {
	e := newEngine(b, 10000)
	g, err := Gatherer(e, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("gather", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := g.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FunctionStats", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = e.FunctionStats()
		}
	})
}
