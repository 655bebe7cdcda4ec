// Package queue holds the server's jobs and functions: per-function priority FIFOs, the unique
// index used for coalescing, a heap of scheduled (epoch) jobs, and a handle index. State is
// sharded by function name so that different functions never contend for a lock.
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
//   - Each live job is in the handle index; the unique index points only at live, non-ignored
//     jobs.
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
// immutable identity fields (Handle, Seq, Fn, Unique, Priority, RunAt and the reducer), which
// may be read without it. Data is immutable too but only while the job is live: once it is
// Done, a pooled data buffer goes back to its pool and Data is nil.
//
// A server may hold millions of queued jobs, so the struct is kept small: fields most jobs
// never use live in a separate jobMore allocated on first use.
type Job struct {
	Handle string
	Fn     *Function
	Unique string
	Data   []byte
	RunAt  int64  // unix seconds; 0 = as soon as possible
	Seq    uint64 // the handle's number: submission order, unique across restarts

	Worker  Peer // holder while Running
	more    *jobMore
	dataBuf *bytebufferpool.ByteBuffer // Data's pooled buffer, if it has one (see SetData)

	heapIndex int32 // position in the delay heap while Delayed
	Priority  Priority
	State     State

	// Background: some submitter did not wait for the result, so the job must not be dropped
	// when its foreground clients leave; such jobs are the durable ones.
	Background bool
	Ignore     bool // cancelled or abandoned: dropped when a grab reaches it, result discarded
	Persisted  bool // a write-ahead-log record exists for it

	// Refused is set, from the job log's goroutine, when the job's record could not be
	// written: its submitter got an error, so the job must not be coalesced onto or run.
	Refused atomic.Bool
}

// jobMore holds what only some jobs need: foreground listeners, a reducer, a WORK_STATUS, a
// retry count, a CAN_DO_TIMEOUT timer.
type jobMore struct {
	listeners []Peer // foreground clients attached (duplicates allowed, as gearmand)
	reducer   string
	num, den  uint64 // last WORK_STATUS; reset on requeue
	retries   uint32 // assignments that ended without a result (worker gone, timeout)
	timer     *time.Timer
	sameHash  *Job // next job filed under the same coalescing-key hash (see keyIndex)
}

func (j *Job) moreFields() *jobMore {
	if j.more == nil {
		j.more = &jobMore{}
	}
	return j.more
}

// Listeners returns the foreground clients attached to j; the slice must not be modified.
func (j *Job) Listeners() []Peer {
	if j.more == nil {
		return nil
	}
	return j.more.listeners
}

// AddListener attaches p (again, if it already is).
func (j *Job) AddListener(p Peer) { m := j.moreFields(); m.listeners = append(m.listeners, p) }

// ClearListeners detaches every listener.
func (j *Job) ClearListeners() {
	if j.more != nil {
		j.more.listeners = nil
	}
}

// RemoveListenerAll detaches every attachment of p in one pass (a client that coalesced many
// submits onto the job is detached in time proportional to them, not their square) and
// reports how many there were.
func (j *Job) RemoveListenerAll(p Peer) int {
	if j.more == nil {
		return 0
	}
	ls := j.more.listeners
	kept := ls[:0]
	for _, l := range ls {
		if l != p {
			kept = append(kept, l)
		}
	}
	clear(ls[len(kept):])
	j.more.listeners = kept
	return len(ls) - len(kept)
}

// RemoveListener detaches one attachment of p and reports whether one was found.
func (j *Job) RemoveListener(p Peer) bool {
	if j.more == nil {
		return false
	}
	ls := j.more.listeners
	for i, l := range ls {
		if l == p {
			last := len(ls) - 1
			copy(ls[i:], ls[i+1:])
			ls[last] = nil
			j.more.listeners = ls[:last]
			return true
		}
	}
	return false
}

// Reducer returns the reducer name of a SUBMIT_REDUCE_JOB job, or "".
func (j *Job) Reducer() string {
	if j.more == nil {
		return ""
	}
	return j.more.reducer
}

// SetReducer records the reducer name; call before the job is enqueued.
func (j *Job) SetReducer(r string) {
	if r != "" {
		j.moreFields().reducer = r
	}
}

// Status returns the numerator and denominator of the job's last WORK_STATUS.
func (j *Job) Status() (num, den uint64) {
	if j.more == nil {
		return 0, 0
	}
	return j.more.num, j.more.den
}

// SetStatus records a WORK_STATUS.
func (j *Job) SetStatus(num, den uint64) {
	if j.more != nil || num != 0 || den != 0 {
		m := j.moreFields()
		m.num, m.den = num, den
	}
}

// Retries returns how many assignments of the job ended without a result.
func (j *Job) Retries() uint32 {
	if j.more == nil {
		return 0
	}
	return j.more.retries
}

// AddRetry counts one more assignment that ended without a result and returns the total.
func (j *Job) AddRetry() uint32 { m := j.moreFields(); m.retries++; return m.retries }

// Timer returns the CAN_DO_TIMEOUT timer of the current assignment, or nil.
func (j *Job) Timer() *time.Timer {
	if j.more == nil {
		return nil
	}
	return j.more.timer
}

// SetTimer records (or with nil forgets) the current assignment's timer; it is the engine's.
func (j *Job) SetTimer(t *time.Timer) {
	if j.more != nil || t != nil {
		j.moreFields().timer = t
	}
}

// StopTimer stops and forgets the current assignment's timer, if any.
func (j *Job) StopTimer() {
	if t := j.Timer(); t != nil {
		t.Stop()
		j.more.timer = nil
	}
}
