package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/wal"
)

// reclaimMemory gives freed heap back to the operating system once a large backlog has
// drained (gearman/gearmand#284). Go's background scavenger returns memory gradually; after a
// queue of a million jobs drains that takes minutes, so spurd forces it when the number of
// jobs has fallen far below its recent peak. It runs until stop is closed.
// With a store, the job log's deleted records are compacted away at the same moment.
func reclaimMemory(e *engine.Engine, store *wal.Log, every time.Duration, logger *slog.Logger, stop <-chan struct{}) {
	const minDrop = 50_000 // jobs; below this a forced GC is not worth its pause
	t := time.NewTicker(every)
	defer t.Stop()
	peak := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p, n := e.PeakJobs() // a high-water mark: a backlog may fill and drain within a tick
		peak = max(peak, p)
		if peak-n >= minDrop && n <= peak/2 {
			start := time.Now()
			if store != nil {
				if err := store.Compact(context.Background()); err != nil {
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
