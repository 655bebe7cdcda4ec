package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spur-gearman/spur/engine"
)

// newEngine returns an engine with n functions, each holding one background job.
func newEngine(tb testing.TB, n int) *engine.Engine {
	e := engine.New(engine.Config{HandlePrefix: "H:m"})
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

func TestCollectorReportsEveryFunction(t *testing.T) {
	e := newEngine(t, 3)
	c := New(e, nil)
	want := `
# HELP gearman_jobs Jobs of the function, queued and running (gearman-exporter's series).
# TYPE gearman_jobs gauge
gearman_jobs{function="fn0"} 1
gearman_jobs{function="fn1"} 1
gearman_jobs{function="fn2"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "gearman_jobs"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "spur_function_jobs_queued"); n != 9 {
		t.Fatalf("%d spur_function_jobs_queued series, want 3 functions x 3 priorities", n)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("a pedantic registry refuses the families: %v", err)
	}
}

// BenchmarkScrape10kFunctions is a scrape of 10,000 functions: the whole cost, and
// (FunctionStats) what it spends under shard locks, 64 shards one after another.
func BenchmarkScrape10kFunctions(b *testing.B) {
	e := newEngine(b, 10000)
	c := New(e, nil)
	b.Run("collect", func(b *testing.B) {
		ch := make(chan prometheus.Metric, 1<<10)
		go func() {
			for range ch {
			}
		}()
		for range b.N {
			c.Collect(ch)
		}
		close(ch)
	})
	b.Run("FunctionStats", func(b *testing.B) {
		for range b.N {
			_ = e.FunctionStats()
		}
	})
}
