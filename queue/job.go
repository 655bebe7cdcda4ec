// Package queue holds the server's jobs and functions: per-function priority FIFOs, the
// coalescing indexes, a heap of scheduled (epoch) jobs and a handle index. State is sharded
// by function name so that different functions never contend for a lock.
//
//	Registry
//	├── shards[64]   Shard: mu, funcs name -> *Function, unique id -> *Job of any of its
//	│     │          functions, idle list                               (by hash of the name)
//	│     └── Function: ready FIFOs[3], delay heap, "-" index by data, Workers set, settings
//	└── index[64]    handle index: Seq -> *Job, chunked table + sparse map  (by Seq)
//
// # Lock order
//
// engine/locksordering.txt is the server's one written lock order. For this package: a
// goroutine holds at most one Shard lock at a time; the index locks are leaves taken inside
// the package only, briefly. Nothing writes to a socket while holding a shard lock: replies
// are appended to per-connection buffers, which the connection's own event loop flushes.
//
// # Invariants (under the shard lock)
//
//   - A job is in exactly one place: a priority FIFO or the delay heap (State Queued or
//     Delayed), assigned to a worker (Running), or gone (Done).
//   - Function.Total counts every job of the function that is not Done, ignored ones included
//     until they are reaped; Running and Queued[p] split it.
//   - Each live job is in the handle index. A job is in its coalescing index (its shard's
//     unique index, or for a "-" job its function's data index) exactly while keyed is set:
//     from Enqueue until it is ignored or forgotten, so the indexes point only at live,
//     non-ignored jobs, and LookupUnique finds a job exactly as long as a submission can
//     coalesce onto it.
//   - Function.Workers holds each worker connection at most once; workerSlot is each one's
//     position in it; WakeCursor is a valid position, or 0.
//   - An idle function (Function.Idle: no job, no worker, no settings) is in its shard's idle
//     list, so SweepIdle deletes it after the grace period; the engine must call
//     NoteSettingsChanged after clearing a function's settings for this to hold.
//   - Nothing a job holds is shared with another job: its bytes travel in its own allocation
//     (see NewJob), so memory follows the live jobs, however few outlive their neighbours.
//     The indexes give back emptied space too (see shrinkMap, the handle index's chunks, the
//     delay heap's array).
//
// # Function records and the engine
//
// SweepIdle deletes idle function records. The engine may therefore keep a *Function beyond
// the shard lock only while the function has jobs (a job's Fn) or workers (a registration),
// which keep it from being idle; a pointer kept past that may name a deleted record, fine to
// compare but not to use. Shard.Get and Ensure match names exactly.
package queue

import (
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"
)

// Priority of a job; lower values run first.
type Priority uint8

// Priorities, numbered as gearmand's persistent queues number them.
const (
	High Priority = iota
	Normal
	Low
	NumPriorities
)

func (p Priority) String() string {
	switch p {
	case High:
		return "high"
	case Normal:
		return "normal"
	case Low:
		return "low"
	}
	return "invalid"
}

// State is where a job is.
type State uint8

// Job states.
const (
	Queued  State = iota // in its function's FIFO for its priority
	Delayed              // in its function's delay heap until RunAt
	Running              // assigned to a worker
	Done                 // completed, failed, cancelled and reaped: gone from every index
)

// Peer is a connection as the queue sees it: the worker holding a job or a client listening
// to it. The queue only stores peers; the engine gives them meaning.
type Peer interface{ PeerID() uint64 }

// Job is one unit of work. Its fields are guarded by its function's shard lock, except the
// immutable identity fields (Handle, Seq, Fn, Unique, Priority and the reducer), which may be
// read without it. Data is immutable too but only while the job is live: once it is
// Done, a pooled data buffer goes back to its pool and Data is nil. Jobs made by NewJob carry
// their handle, unique id, reducer and data in the same allocation (see jobWith).
//
// A server may hold millions of queued jobs, so the struct is kept small: fields most jobs
// never use live in a separate jobMore allocated on first use.
type Job struct {
	Handle string
	Fn     *Function
	Unique string
	Data   []byte
	RunAt  int64  // unix milliseconds; 0 = as soon as possible; a retry sets it anew
	Seq    uint64 // the handle's number: submission order, unique across restarts
	// QueuedAt is when the job last joined a queue (unix nanoseconds; see Enqueue and
	// Requeue): the start of the wait Stats.QueueWait measures.
	QueuedAt int64

	Worker Peer // holder while Running

	// more is set once, on first use, and never changes after. It is atomic because the
	// registry-wide unique index, under its own leaf lock, may create it for a job of another
	// shard (to link it to a newer job with the same unique id); every field behind it has
	// one guard, see jobMore.
	more atomic.Pointer[jobMore]

	heapIndex int32 // position in the delay heap while Delayed
	Priority  Priority
	State     State

	// Background: some submitter did not wait for the result, so the job must not be dropped
	// when its foreground clients leave; such jobs are the durable ones.
	Background bool
	Ignore     bool // cancelled or abandoned: dropped when a grab reaches it, result discarded
	Persisted  bool // a write-ahead-log record exists for it
	keyed      bool // filed in its function's coalescing index (and the registry's, by unique)

	// Refused is set, from the job log's goroutine, when the job's record could not be
	// written: its submitter got an error, so the job must not be coalesced onto or run.
	Refused atomic.Bool
}

// jobMore holds what only some jobs need: foreground listeners (most foreground jobs), a
// reducer, a WORK_STATUS, a retry count, a CAN_DO_TIMEOUT timer; and behind rare what very
// few do. Its fields are guarded by the job's shard lock; rare, like Job.more, is set once by
// whichever side needs it first.
type jobMore struct {
	listeners []Peer // foreground clients attached (duplicates allowed, as gearmand)
	reducer   string
	num, den  uint64 // last WORK_STATUS; reset on requeue
	retries   uint32 // assignments that ended without a result (worker gone, timeout)
	failures  uint32 // failed assignments counted by a retry policy; durable (wal.Record.Attempts)
	timer     *time.Timer
	rare      atomic.Pointer[jobRare]
}

// jobRare holds what very few jobs need, so that jobMore stays in its 80-byte size class.
type jobRare struct {
	dataBuf  *bytebufferpool.ByteBuffer // Data's pooled buffer, if it has one (see NewJob); shard lock
	sameHash *Job                       // next job filed under the same hash in keyIndex; shard lock
	// firstFailed is when the job first failed under a retry policy (unix nanoseconds), for
	// its dead letter; shard lock.
	firstFailed int64
}

// moreFields returns j's jobMore, creating it if needed.
func (j *Job) moreFields() *jobMore {
	if m := j.more.Load(); m != nil {
		return m
	}
	j.more.CompareAndSwap(nil, &jobMore{})
	return j.more.Load()
}

// rare returns j's jobRare, or nil.
func (j *Job) rare() *jobRare {
	if m := j.more.Load(); m != nil {
		return m.rare.Load()
	}
	return nil
}

// rareFields returns j's jobRare, creating it (and its jobMore) if needed.
func (j *Job) rareFields() *jobRare {
	m := j.moreFields()
	if r := m.rare.Load(); r != nil {
		return r
	}
	m.rare.CompareAndSwap(nil, &jobRare{})
	return m.rare.Load()
}

// Listeners returns the foreground clients attached to j; the slice must not be modified.
func (j *Job) Listeners() []Peer {
	if m := j.more.Load(); m != nil {
		return m.listeners
	}
	return nil
}

// AddListener attaches p (again, if it already is).
func (j *Job) AddListener(p Peer) { m := j.moreFields(); m.listeners = append(m.listeners, p) }

// ClearListeners detaches every listener.
func (j *Job) ClearListeners() {
	if m := j.more.Load(); m != nil {
		m.listeners = nil
	}
}

// RemoveListenerAll detaches every attachment of p in one pass (a client that coalesced many
// submits onto the job is detached in time proportional to them, not their square) and
// reports how many there were.
func (j *Job) RemoveListenerAll(p Peer) int {
	m := j.more.Load()
	if m == nil {
		return 0
	}
	ls := m.listeners
	kept := ls[:0]
	for _, l := range ls {
		if l != p {
			kept = append(kept, l)
		}
	}
	clear(ls[len(kept):])
	m.listeners = kept
	return len(ls) - len(kept)
}

// RemoveListener detaches one attachment of p and reports whether one was found.
func (j *Job) RemoveListener(p Peer) bool {
	m := j.more.Load()
	if m == nil {
		return false
	}
	ls := m.listeners
	for i, l := range ls {
		if l == p {
			last := len(ls) - 1
			copy(ls[i:], ls[i+1:])
			ls[last] = nil
			m.listeners = ls[:last]
			return true
		}
	}
	return false
}

// Reducer returns the reducer name of a SUBMIT_REDUCE_JOB job, or "".
func (j *Job) Reducer() string {
	if m := j.more.Load(); m != nil {
		return m.reducer
	}
	return ""
}

// Status returns the numerator and denominator of the job's last WORK_STATUS.
func (j *Job) Status() (num, den uint64) {
	if m := j.more.Load(); m != nil {
		return m.num, m.den
	}
	return 0, 0
}

// SetStatus records a WORK_STATUS.
func (j *Job) SetStatus(num, den uint64) {
	if j.more.Load() != nil || num != 0 || den != 0 {
		m := j.moreFields()
		m.num, m.den = num, den
	}
}

// Retries returns how many assignments of the job ended without a result.
func (j *Job) Retries() uint32 {
	if m := j.more.Load(); m != nil {
		return m.retries
	}
	return 0
}

// AddRetry counts one more assignment that ended without a result and returns the total.
func (j *Job) AddRetry() uint32 { m := j.moreFields(); m.retries++; return m.retries }

// Failures returns how many assignments of the job failed under a retry policy.
func (j *Job) Failures() uint32 {
	if m := j.more.Load(); m != nil {
		return m.failures
	}
	return 0
}

// SetFailures records how many assignments of the job failed under a retry policy.
func (j *Job) SetFailures(n uint32) {
	if j.more.Load() != nil || n != 0 {
		j.moreFields().failures = n
	}
}

// FirstFailed returns when the job first failed under a retry policy (unix nanoseconds), or 0.
func (j *Job) FirstFailed() int64 {
	if r := j.rare(); r != nil {
		return r.firstFailed
	}
	return 0
}

// SetFirstFailed records when the job first failed under a retry policy.
func (j *Job) SetFirstFailed(t int64) {
	if j.rare() != nil || t != 0 {
		j.rareFields().firstFailed = t
	}
}

// Timer returns the CAN_DO_TIMEOUT timer of the current assignment, or nil.
func (j *Job) Timer() *time.Timer {
	if m := j.more.Load(); m != nil {
		return m.timer
	}
	return nil
}

// SetTimer records (or with nil forgets) the current assignment's timer; it is the engine's.
func (j *Job) SetTimer(t *time.Timer) {
	if j.more.Load() != nil || t != nil {
		j.moreFields().timer = t
	}
}

// StopTimer stops and forgets the current assignment's timer, if any.
func (j *Job) StopTimer() {
	if m := j.more.Load(); m != nil && m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}
