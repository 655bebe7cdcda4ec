package queue

import "time"

// Stats counts what became of a function's jobs since its record was made, and how long
// they waited and ran. It lives in the Function, guarded by its shard lock like every other
// field there: counting is a plain increment under a lock the caller already holds, never an
// atomic shared across event loops. When the sweeper deletes an idle function its Stats are
// added to its shard's retired ones, so that server totals never go backwards (a function's
// own series restart from zero when it comes back, which Prometheus reads as a counter
// reset).
type Stats struct {
	Submitted    uint64 // new jobs queued (a submit coalesced onto a live job is not one)
	Completed    uint64 // ended with WORK_COMPLETE
	Failed       uint64 // ended otherwise: WORK_FAIL, WORK_EXCEPTION, cancelled, retries used up
	Retried      uint64 // failed attempts queued again by the function's retry policy
	DeadLettered uint64 // ended in the dead-letter list
	QueueWait    Histogram
	RunTime      Histogram
}

// Add adds o's counts to s.
func (s *Stats) Add(o *Stats) {
	s.Submitted += o.Submitted
	s.Completed += o.Completed
	s.Failed += o.Failed
	s.Retried += o.Retried
	s.DeadLettered += o.DeadLettered
	s.QueueWait.Add(&o.QueueWait)
	s.RunTime.Add(&o.RunTime)
}

// HistogramBounds are the upper bounds of a Histogram's buckets but the last, which has
// none: from a millisecond (a job handed to a sleeping worker at once) to ten minutes.
var HistogramBounds = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second,
	2 * time.Minute, 10 * time.Minute,
}

// Histogram counts durations in the buckets of HistogramBounds (not cumulative: Counts[i]
// holds those above bound i-1 up to bound i; the last those above every bound).
type Histogram struct {
	Counts [len(HistogramBounds) + 1]uint64
	Sum    time.Duration
}

// Observe counts d (a negative one, from a clock that stepped back, as zero).
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(HistogramBounds) && d > HistogramBounds[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += d
}

// Count is how many durations h holds.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Add adds o's counts to h.
func (h *Histogram) Add(o *Histogram) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.Sum += o.Sum
}

// OldestQueued is when the longest-waiting ready job was queued (unix nanoseconds, see
// Job.QueuedAt), or 0 when none is ready. Jobs waiting for their run-at time are not
// waiting for a worker and do not count. Cancelled jobs still in a FIFO (they leave at the
// next grab) are skipped, up to oldestScan of them at the head of each FIFO, so that a scrape
// of a paused function with many cancelled jobs stays short.
func (f *Function) OldestQueued() int64 {
	var oldest int64
	for p := range f.ready {
		j := f.ready[p].firstLive(oldestScan)
		if j != nil && !j.Ignore && (oldest == 0 || j.QueuedAt < oldest) {
			oldest = j.QueuedAt
		}
	}
	return oldest
}

// oldestScan bounds the cancelled jobs OldestQueued looks past at the head of a FIFO.
const oldestScan = 64

// RetiredStats is the sum of the Stats of the shard's functions deleted by the sweeper.
func (s *Shard) RetiredStats() *Stats { return &s.retired }
