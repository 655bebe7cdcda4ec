// Package queue holds the server's jobs and functions: per-function priority FIFOs, the unique
// index used for coalescing, a heap of scheduled (epoch) jobs, and a handle index. State is
// sharded by function name so that different functions never contend for a lock.
//
// # Lock order
//
// Locks are always taken in this order, and a goroutine holds at most one lock of each level:
//
//  1. Shard.mu          (one shard at a time; never two shards at once)
//  2. Index shard locks (taken inside the package only, briefly, as a leaf)
//  3. the engine's per-connection lock (a leaf: nothing is locked while holding it)
//
// Nothing writes to a socket while holding a shard lock: replies are appended to per-connection
// buffers, which the connection's own event loop flushes.
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
// immutable identity fields (Handle, Seq, Fn, Unique, Reducer, Data, Priority, RunAt), which
// may be read without it.
type Job struct {
	Handle   string
	Fn       *Function
	Unique   string
	Reducer  string
	Data     []byte
	Priority Priority
	RunAt    int64  // unix seconds; 0 = as soon as possible
	Seq      uint64 // the handle's number: submission order, unique across restarts

	// Background: some submitter did not wait for the result, so the job must not be dropped
	// when its foreground clients leave; such jobs are the durable ones.
	Background bool

	State     State
	Ignore    bool   // cancelled or abandoned: dropped when a grab reaches it, result discarded
	Persisted bool   // a write-ahead-log record exists for it
	Retries   uint32 // assignments that ended without a result (worker gone, timeout)
	Num, Den  uint64 // last WORK_STATUS; reset on requeue

	Worker    Peer   // holder while Running
	Listeners []Peer // foreground clients attached (duplicates allowed, as gearmand)

	// Refused is set, from the job log's goroutine, when the job's record could not be
	// written: its submitter got an error, so the job must not be coalesced onto or run.
	Refused atomic.Bool

	Assignment uint64      // counts assignments; lets a stale timeout recognise itself
	Timer      *time.Timer // CAN_DO_TIMEOUT timer of the current assignment, owned by the engine

	heapIndex int // position in the delay heap while Delayed
}

// RemoveListener detaches one attachment of p and reports whether one was found.
func (j *Job) RemoveListener(p Peer) bool {
	for i, l := range j.Listeners {
		if l == p {
			last := len(j.Listeners) - 1
			copy(j.Listeners[i:], j.Listeners[i+1:])
			j.Listeners[last] = nil
			j.Listeners = j.Listeners[:last]
			return true
		}
	}
	return false
}
