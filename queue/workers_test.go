package queue

import (
	"testing"
	"time"
)

// Registering and unregistering a worker costs the same with a thousand workers as with a
// hundred thousand: the set is a slice plus a map of positions, not a list to scan. Timed as
// a ratio of per-operation costs (never an absolute time); each size takes its best of five
// runs, so that a slow moment of a shared machine does not decide.
func TestWorkerSetCostIsFlat(t *testing.T) {
	perOp := func(n int) time.Duration {
		fx := newFixture(t)
		f := fx.fn("f")
		for i := range n {
			f.AddWorker(peer(i))
		}
		const ops = 20000
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			for i := range ops {
				w := peer(i * 7919 % n) // spread over the set: the middle, not only the end
				if !f.RemoveWorker(w) || !f.AddWorker(w) || f.AddWorker(w) {
					t.Fatal("set operations lost track of a worker")
				}
			}
			best = min(best, time.Since(start)/ops)
		}
		if len(f.Workers) != n {
			t.Fatalf("%d workers, want %d", len(f.Workers), n)
		}
		return best
	}
	small, large := perOp(1000), perOp(100_000)
	ratio := float64(large) / float64(max(small, 1))
	t.Logf("remove+add+add again: %v per op with 1k workers, %v with 100k (ratio %.2f)", small, large, ratio)
	if ratio > 5 {
		t.Fatalf("per-operation cost grows with the set: %v with 1k workers, %v with 100k", small, large)
	}
}
