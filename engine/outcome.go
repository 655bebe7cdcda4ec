package engine

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// What becomes of a job whose assignment ends (every function here is called with the job's
// shard locked):
//
//	WORK_COMPLETE ─────────────────────────────────────────────► conclude: ended
//	WORK_FAIL, WORK_EXCEPTION, and for a background job of a
//	function with a retry policy also its worker gone or timed out ─► failed:
//	   ├─ no policy, a foreground job, or cancelled ─────────────► conclude: ended
//	   ├─ attempts left ─► retryLater: queued again after a backoff, its record
//	   │                   rewritten with the count (delayed, like an epoch job)
//	   └─ attempts used up ─► a dead letter (dead.go), and ended
//
// A background job that ends leaves its result (Config.ResultTTL), written in the same
// batch as the delete of its record, so that a crash never shows a job both gone and
// without an outcome. Without a retry policy nothing differs from gearmand: a lost worker
// requeues the job (requeue, -j), and a WORK_FAIL ends it.

// notifier builds the packet one listener of a job gets.
type notifier func(b []byte, l *Session) []byte

// conclude ends j for good with outcome (and data, a WORK_COMPLETE's or WORK_EXCEPTION's,
// which may alias a packet: it is copied): its listeners are told by notify and detached,
// and a background job's result is kept.
func (e *Engine) conclude(j *queue.Job, outcome wal.Outcome, data []byte, notify notifier) {
	e.endJob(j, notify, outcome, data, nil)
}

// failed handles an assignment of j that failed: it is retried, buried or ended, as drawn
// at the top of this file.
func (e *Engine) failed(j *queue.Job, outcome wal.Outcome, data []byte, notify notifier) {
	p := j.Fn.Retry
	if p.Attempts == 0 || !j.Background || j.Ignore {
		e.conclude(j, outcome, data, notify)
		return
	}
	n := j.Failures() + 1
	if j.FirstFailed() == 0 {
		j.SetFirstFailed(time.Now().UnixNano())
	}
	if int(n) < p.Attempts {
		e.retryLater(j, n, notify)
		return
	}
	dead := &wal.DeadLetter{
		Job:         e.recordOf(j),
		LastOutcome: outcome,
		LastError:   data, // copied by dead.add and the store
		FirstFailed: j.FirstFailed(),
		LastFailed:  time.Now().UnixNano(),
	}
	dead.Job.Attempts = n
	e.log.Warn("background job is dead: its attempts are used up", "handle", j.Handle, "function", j.Fn.Name, "attempts", n)
	e.endJob(j, notify, outcome, data, dead)
}

// retryLater queues j again after the backoff of its n-th failure. Foreground clients that
// joined it get this attempt's answer now: they wait for one answer, not for the retries.
func (e *Engine) retryLater(j *queue.Job, n uint32, notify notifier) {
	f := j.Fn
	e.releaseListeners(j, notify)
	if w, ok := j.Worker.(*Session); ok {
		started, ended := w.unassign(j)
		observeRun(f, started, ended)
	}
	j.StopTimer()
	j.SetFailures(n)
	f.Stats.Retried++
	t := now()
	delay := backoff(f.Retry, n)
	j.RunAt = t + max(1, delay.Milliseconds())
	f.Requeue(j, t)
	if j.Persisted && e.store != nil {
		e.applyRecord(func(t *wal.Txn) { t.PutJob(e.recordOf(j)) })
	}
	e.log.Info("background job failed; it runs again after a backoff", "handle", j.Handle,
		"function", f.Name, "attempt", n, "of", f.Retry.Attempts, "backoff", delay)
	e.jobQueued(f, j)
	if f.Limit > 0 {
		e.wakeWorkers(f) // a slot under its concurrency limit is free again
	}
}

// backoff is the wait before the retry that follows the n-th failure: Base·2^(n−1), capped
// at Max, then ±10% of jitter so that jobs that failed together do not all come back in the
// same instant.
func backoff(p queue.RetryPolicy, n uint32) time.Duration {
	d := p.Max
	if n-1 < 62 && p.Base <= p.Max>>(n-1) {
		d = p.Base << (n - 1)
	}
	jitter := time.Duration(rand.Int64N(int64(d/5)+1)) - d/10
	return max(0, d+jitter)
}

// endJob removes j for good: its listeners get notify's packet and are detached, its worker
// lets go of it, and its record is deleted — in one batch with its result (a background job,
// when results are kept) and its dead letter (dead, if not nil).
func (e *Engine) endJob(j *queue.Job, notify notifier, outcome wal.Outcome, data []byte, dead *wal.DeadLetter) {
	e.releaseListeners(j, notify)
	var started, ended int64
	if w, ok := j.Worker.(*Session); ok {
		started, ended = w.unassign(j)
	}
	if ended == 0 {
		ended = time.Now().UnixNano()
	}
	countEnd(j, outcome, dead != nil, started, ended)
	var res *wal.Result
	var kept wal.Result
	if j.Background && e.cfg.ResultTTL > 0 {
		kept = e.resultOf(j, outcome, data, started, ended)
		res = &kept
	}
	e.closeRecord(j, res, dead)
	f, wasRunning := j.Fn, j.State == queue.Running
	f.Finish(j)
	if wasRunning && f.Limit > 0 {
		e.wakeWorkers(f) // a slot under its concurrency limit is free again
	}
}

// countEnd counts the end of j in its function's Stats: its outcome, and how long it ran if
// a worker held it from started to ended (unix nanoseconds; started 0 = it was not running).
func countEnd(j *queue.Job, outcome wal.Outcome, buried bool, started, ended int64) {
	st := &j.Fn.Stats
	if outcome == wal.OutcomeComplete {
		st.Completed++
	} else {
		st.Failed++
	}
	if buried {
		st.DeadLettered++
	}
	observeRun(j.Fn, started, ended)
}

// observeRun counts in f's run-time histogram an attempt a worker got at started and let go
// at ended (unix nanoseconds; started 0 = none; ended 0 = now).
func observeRun(f *queue.Function, started, ended int64) {
	if started == 0 {
		return
	}
	if ended == 0 {
		ended = time.Now().UnixNano()
	}
	f.Stats.RunTime.Observe(time.Duration(ended - started))
}

// closeRecord deletes j's record, and writes res and dead (either may be nil) in the same
// batch. Without a store, or with one that keeps no results, they go to memory.
func (e *Engine) closeRecord(j *queue.Job, res *wal.Result, dead *wal.DeadLetter) {
	if res != nil && e.resultLog == nil {
		e.memResults.put(res)
		res = nil
	}
	if dead != nil {
		e.dead.add(e, dead)
	}
	if e.store == nil || (res == nil && dead == nil) {
		e.unpersist(j)
		return
	}
	if err := e.store.Writable(); err != nil {
		// A nearly full disk refuses a batch that writes anything, and with it the delete:
		// the job would run again after a restart. The delete goes alone.
		e.log.Warn("a job's result or dead letter is not kept: the disk is nearly full", "handle", j.Handle, "error", err)
		e.unpersist(j)
		return
	}
	persisted := j.Persisted
	j.Persisted = false
	e.applyRecord(func(t *wal.Txn) {
		if persisted {
			t.DeleteJob(j.Seq)
		}
		if res != nil {
			t.PutResult(*res)
		}
		if dead != nil {
			t.PutDead(*dead)
		}
	})
}

// txnPool recycles the transactions of job ends: Apply copies a Txn, so one can be reused
// as soon as it returns.
var txnPool = sync.Pool{New: func() any { return new(wal.Txn) }}

// applyRecord commits the writes build makes, without waiting: a failure is logged (the
// store refuses everything after one anyway, and submits learn it from their own writes).
func (e *Engine) applyRecord(build func(t *wal.Txn)) {
	t := txnPool.Get().(*wal.Txn)
	t.Reset()
	build(t)
	if err := e.store.Apply(t, nil); err != nil {
		e.log.Error("cannot write a job's end to the job log", "error", err)
	}
	txnPool.Put(t)
}

// resultOf is the result a background job that ended at t (unix nanoseconds) leaves,
// expiring ResultTTL after that.
func (e *Engine) resultOf(j *queue.Job, outcome wal.Outcome, data []byte, started, t int64) wal.Result {
	return wal.Result{
		Seq:      j.Seq,
		Handle:   j.Handle,
		Function: j.Fn.Name,
		Unique:   j.Unique,
		Outcome:  outcome,
		Data:     data,
		Attempts: j.Failures() + j.Retries() + 1,
		Started:  started,
		Finished: t,
		Expires:  t + int64(e.cfg.ResultTTL),
	}
}
