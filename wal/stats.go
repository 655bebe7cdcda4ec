package wal

import (
	"syscall"
	"time"
)

// CommitStats describes the log's group commits since it was opened, for metrics: how many
// ops each batch carried, how long a batch took from leaving the queue to being durable,
// and how long the acknowledger waited for its fsync. Histograms count per bucket (not
// cumulatively); the last bucket has no upper bound.
type CommitStats struct {
	Batches   uint64
	Ops       uint64
	BatchOps  [len(BatchOpsBounds) + 1]uint64
	Commit    [len(LatencyBounds) + 1]uint64
	CommitSum time.Duration
	Sync      [len(LatencyBounds) + 1]uint64 // batches that waited for an fsync (--sync always)
	SyncSum   time.Duration
}

// BatchOpsBounds are the upper bounds of CommitStats.BatchOps' buckets.
var BatchOpsBounds = [...]int{1, 4, 16, 64, 256, 1024, 4096}

// LatencyBounds are the upper bounds of CommitStats' latency buckets.
var LatencyBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// CommitStats returns a copy of the commit statistics.
func (l *Log) CommitStats() CommitStats {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return l.stats
}

// countBatch records a batch of n ops that took commit from leaving the queue to durable,
// of which sync waiting for its fsync (synced says it had one). ackLoop only.
func (l *Log) countBatch(n int, commit, sync time.Duration, synced bool) {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	st := &l.stats
	st.Batches++
	st.Ops += uint64(n)
	i := 0
	for i < len(BatchOpsBounds) && n > BatchOpsBounds[i] {
		i++
	}
	st.BatchOps[i]++
	st.Commit[latencyBucket(commit)]++
	st.CommitSum += commit
	if synced {
		st.Sync[latencyBucket(sync)]++
		st.SyncSum += sync
	}
}

func latencyBucket(d time.Duration) int {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	return i
}

// DiskSpace returns the bytes free in the data dir's file system (for this process) and the
// reserve below which writes are refused. ok is false when the file system cannot tell.
func (l *Log) DiskSpace() (free, reserve uint64, ok bool) {
	if l.opts.fs != nil {
		return 0, l.opts.MinFreeBytes, false // a test's file system has no free-space figure
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.opts.Dir, &st); err != nil {
		return 0, l.opts.MinFreeBytes, false
	}
	return st.Bavail * uint64(st.Bsize), l.opts.MinFreeBytes, true
}
