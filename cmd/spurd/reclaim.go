package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"
)

// jobCounter is what the reclaimer reads from the engine.
type jobCounter interface {
	PeakJobs() (peak, now int) // a high-water mark since the last call, and the count now
}

// compactor is what the reclaimer asks of the job log.
type compactor interface {
	Compact(ctx context.Context) error
}

// reclaimer runs reclaimMemory in its own goroutine until Stop.
type reclaimer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startReclaimer starts reclaiming memory (and with a store, disk) every interval. store may
// be nil (an untyped nil: -q builtin).
func startReclaimer(e jobCounter, store compactor, every time.Duration, logger *slog.Logger) *reclaimer {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reclaimer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		reclaimMemory(ctx, e, store, every, logger)
	}()
	return r
}

// Stop interrupts a compaction under way and returns once the reclaimer has ended: after
// Stop nothing of it touches the store, which may then be closed.
func (r *reclaimer) Stop() {
	r.cancel()
	<-r.done
}

// reclaimMemory gives freed heap back to the operating system once a large backlog has
// drained (gearman/gearmand#284). Go's background scavenger returns memory gradually; after a
// queue of a million jobs drains that takes minutes, so spurd forces it when the number of
// jobs has fallen far below its recent peak. It runs until ctx is done.
// With a store, the job log's deleted records are compacted away at the same moment.
func reclaimMemory(ctx context.Context, e jobCounter, store compactor, every time.Duration, logger *slog.Logger) {
	const minDrop = 50_000 // jobs; below this a forced GC is not worth its pause
	t := time.NewTicker(every)
	defer t.Stop()
	peak := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, n := e.PeakJobs() // a high-water mark: a backlog may fill and drain within a tick
		peak = max(peak, p)
		if peak-n >= minDrop && n <= peak/2 {
			start := time.Now()
			if store != nil {
				if err := store.Compact(ctx); err != nil && ctx.Err() == nil {
					logger.Warn("compacting the job log", "error", err)
				}
			}
			debug.FreeOSMemory()
			logger.Info("reclaimed memory and disk after a backlog drained",
				"jobs_peak", peak, "jobs_now", n, "took", time.Since(start))
			peak = n
		}
	}
}
