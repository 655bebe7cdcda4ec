package engine

import (
	"context"
	"sync"
	"time"
)

// Unclaimed jobs: with a shared store, a background job no node holds (offered, or left by
// a node whose lease lapsed) is in no node's memory, so no node's `queued` counts it. Each
// node reports the store's count of them (`show node`'s unclaimed, NodeInfo.Unclaimed):
// the same figure on every node of one store, which the cluster view takes once rather
// than summing it. The count is a query over the store's unclaimed rows, made when read
// and kept unclaimedFresh, so that a dashboard polling every node costs the database one
// count per node per unclaimedFresh at most.

const (
	unclaimedFresh = time.Second            // a count this young is answered as it is
	unclaimedWait  = 500 * time.Millisecond // a count may take this long, else none is given
)

// unclaimed is the last count. counting serializes the counts; mu, a leaf, guards the
// figures.
type unclaimed struct {
	counting sync.Mutex
	mu       sync.Mutex
	byFn     map[string]int
	at       time.Time
}

// unclaimedOf returns the shared store's unclaimed jobs by function, at most unclaimedFresh
// old; nil without a shared store or when they cannot be counted now (the database slow
// or unreachable). It may wait for the database (up to unclaimedWait): never call it on an
// event loop.
func (e *Engine) unclaimedOf(ctx context.Context) map[string]int {
	if e.shared == nil {
		return nil
	}
	u := &e.unclaimed
	fresh := func() (map[string]int, bool) {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.byFn, u.byFn != nil && time.Since(u.at) < unclaimedFresh
	}
	if byFn, ok := fresh(); ok {
		return byFn
	}
	u.counting.Lock()
	defer u.counting.Unlock()
	if byFn, ok := fresh(); ok {
		return byFn // counted while this call waited
	}
	ctx, cancel := context.WithTimeout(ctx, unclaimedWait)
	defer cancel()
	byFn, err := e.shared.Unclaimed(ctx)
	if err != nil {
		e.log.Debug("cannot count the shared store's unclaimed jobs", "error", err)
		return nil
	}
	if byFn == nil {
		byFn = map[string]int{}
	}
	u.mu.Lock()
	u.byFn, u.at = byFn, time.Now()
	u.mu.Unlock()
	return byFn
}

// unclaimedFor sums the unclaimed jobs of the functions readable allows (nil: all); known
// is false when they could not be counted.
func (e *Engine) unclaimedFor(ctx context.Context, readable func(string) bool) (n int, known bool) {
	byFn := e.unclaimedOf(ctx)
	if byFn == nil {
		return 0, false
	}
	for fn, c := range byFn {
		if visible(readable, fn) {
			n += c
		}
	}
	return n, true
}
