package engine

import (
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
)

// Waking sleeping workers
//
// A worker with nothing to do sends PRE_SLEEP and waits for a NOOP before it asks for work
// again. gearmand sends a NOOP to every sleeping worker of a function for every job queued
// (-w 0), so with 50 idle workers each job costs 50 NOOPs, 50 GRAB_JOBs, 49 NO_JOBs and 49
// PRE_SLEEPs: the thundering herd. Spur's default wakes only as many workers as there are
// ready jobs that no woken worker will take:
//
//	ready jobs of f  ──►  need = f.Ready() - len(f.Woken)  ──►  NOOP `need` sleepers of f
//
// f.Woken holds the workers sent a NOOP on f's behalf that have not answered yet. An entry
// ends when its worker answers (GRAB_JOB, or PRE_SLEEP again without grabbing), gives up the
// function or disconnects, or when it has not answered within Config.WakeTimeout; each end
// tops f up again, so a job never waits for a worker while one sleeps:
//
//   - a woken worker that grabbed a job of another function, or none, is replaced;
//   - a woken worker that died or went silent is replaced (at once, or after WakeTimeout);
//   - a worker going to sleep looks for ready jobs itself (preSleep) and wakes at once.
//
// Every moment a job becomes ready (submit, requeue, a scheduled job coming due) tops its
// function up. A worker woken for one function may take the job of another it also does;
// the function it was woken for is topped up when it answers, so sharing workers costs at
// most an extra wake, never a stranded job.
//
// Config.WorkerWakeup > 0 (-w N) keeps gearmand's meaning: N NOOPs per queued job, rotating
// across the function's workers, without the bookkeeping; WakeAll (-w 0 given) wakes every
// sleeping worker as gearmand's default does.

// WakeAll is Config.WorkerWakeup for gearmand's -w 0: every sleeping worker is woken for
// every job.
const WakeAll = -1

// DefaultWakeTimeout is how long a woken worker has to answer its NOOP before another is
// woken in its place. A sleeping worker answers within a network round trip; the bound only
// matters for one that died without its connection closing, or never reads.
const DefaultWakeTimeout = 500 * time.Millisecond

func appendNoop(b []byte) []byte { return codec.AppendEmpty(b, codec.Noop) }

// countsWakes reports whether wake-ups are counted per function (Spur's default) rather than
// sent per job as gearmand's -w does.
func (e *Engine) countsWakes() bool { return e.cfg.WorkerWakeup == 0 }

// wakeWorkers wakes sleeping workers of f for its ready jobs. Call with f's shard locked.
func (e *Engine) wakeWorkers(f *queue.Function) {
	if e.countsWakes() {
		e.topUp(f)
		return
	}
	if e.draining.Load() || !f.Startable() {
		return // nothing is handed out while the server drains for shutdown, or of f now
	}
	n := len(f.Workers)
	sent := 0
	for k := 0; k < n; k++ {
		i := (f.WakeCursor + k) % n
		w := f.Workers[i].(*Session)
		if !w.sleeping.Load() || !w.noopSent.CompareAndSwap(false, true) {
			continue
		}
		w.send(appendNoop)
		sent++
		if e.cfg.WorkerWakeup > 0 && sent >= e.cfg.WorkerWakeup {
			f.WakeCursor = (i + 1) % n
			return
		}
	}
}

// topUp wakes sleeping workers of f, starting at its rotating cursor, until every ready job
// that may start has a woken worker to take it or no sleeper is left; nothing while the
// server drains or f is paused or at its limit. Call with f's shard locked.
func (e *Engine) topUp(f *queue.Function) {
	ready := f.Ready()
	if f.Limit > 0 {
		ready = min(ready, f.Limit-f.Running) // no more than the limit lets start
	}
	need := ready - len(f.Woken)
	if need <= 0 || f.NoSleeper || !f.Startable() || e.draining.Load() {
		return
	}
	n := len(f.Workers)
	for k := 0; k < n && need > 0; k++ {
		i := (f.WakeCursor + k) % n
		w := f.Workers[i].(*Session)
		if !w.sleeping.Load() || w.draining.Load() || !w.noopSent.CompareAndSwap(false, true) {
			continue // awake, being drained, or woken already (for f or another function)
		}
		e.noteWoken(f, w)
		w.send(appendNoop)
		need--
		f.WakeCursor = (i + 1) % n
	}
	if need > 0 {
		// Until a worker of f goes to sleep (and clears this), walking its workers again for
		// the next job would find nobody: they are all busy or already woken.
		f.NoSleeper = true
	}
}

// noteWoken records that w was sent a NOOP on f's behalf. Call with f's shard locked, after
// w.noopSent was won.
func (e *Engine) noteWoken(f *queue.Function, w *Session) {
	if f.Woken == nil {
		f.Woken = make(map[queue.Peer]int64)
	}
	f.Woken[w] = time.Now().UnixNano()
	w.wokeFor.Store(f)
	if f.WakeCheck == nil {
		f.WakeCheck = time.AfterFunc(e.cfg.WakeTimeout, func() { e.checkWakes(f) })
	} else if len(f.Woken) == 1 {
		f.WakeCheck.Reset(e.cfg.WakeTimeout)
	}
}

// endWake ends w's claim on a job of f, the function its last NOOP was for (taken from
// w.wokeFor when it grabbed or went back to sleep), and tops f up: the job it was woken for
// may still be waiting. A claim w got again for f meanwhile stands. Call with no shard lock
// held.
func (e *Engine) endWake(w *Session, f *queue.Function) {
	if f == nil {
		return
	}
	sh := f.Shard()
	sh.Lock()
	if _, ok := f.Woken[w]; ok && w.wokeFor.Load() != f {
		delete(f.Woken, w)
		e.topUp(f)
	}
	sh.Unlock()
}

// replaceWoken wakes another sleeper of f if a worker that just left f (gave it up or
// disconnected) had been woken for it. Call with f's shard locked, after RemoveWorker.
func (e *Engine) replaceWoken(f *queue.Function) {
	if e.countsWakes() {
		e.topUp(f)
	}
}

// checkWakes runs WakeTimeout after a wake-up: workers that have not answered by now lose
// their claim on f's jobs and others are woken in their place. Their own NOOP stands; if they
// answer later they simply find a job or NO_JOB.
func (e *Engine) checkWakes(f *queue.Function) {
	sh := f.Shard()
	sh.Lock()
	defer sh.Unlock()
	if len(f.Woken) == 0 {
		return
	}
	deadline := time.Now().UnixNano() - int64(e.cfg.WakeTimeout)
	oldest := int64(0)
	for w, at := range f.Woken {
		switch {
		case at <= deadline:
			delete(f.Woken, w)
			e.log.Debug("woken worker did not answer its NOOP: waking another", "conn", w.(*Session).id, "function", f.Name)
		case oldest == 0 || at < oldest:
			oldest = at
		}
	}
	e.topUp(f)
	if oldest != 0 {
		f.WakeCheck.Reset(time.Duration(oldest - deadline))
	}
}

// promoteDue moves f's scheduled jobs that have come due into their queues and wakes
// sleeping workers for them as a submit of each would. Call with f's shard locked.
func (e *Engine) promoteDue(f *queue.Function, t int64) {
	n := f.PromoteDue(t)
	if n == 0 {
		return
	}
	if e.countsWakes() || e.cfg.WorkerWakeup == WakeAll {
		e.wakeWorkers(f) // one pass serves them all
		return
	}
	for ; n > 0; n-- {
		e.wakeWorkers(f)
	}
}
