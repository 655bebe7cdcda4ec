package engine

import (
	"fmt"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// The functions in this file change job state. Each is called with the job's function shard
// locked (see queue's lock order) and never writes to a socket: packets go to the sessions'
// outbound buffers.

// attach makes s a listener of j: it will receive j's WORK_* packets.
func (e *Engine) attach(j *queue.Job, s *Session) {
	j.AddListener(s)
	s.listen(j)
}

// detach removes every attachment of s from j. A foreground job nobody waits for any more is
// abandoned (gearmand's "ignore"). A background job is never abandoned, even when a
// foreground client that coalesced onto it goes away (gearmand drops it: spec 3.9).
func (e *Engine) detach(j *queue.Job, s *Session) {
	if j.State == queue.Done {
		return
	}
	j.RemoveListenerAll(s)
	if len(j.Listeners()) == 0 && !j.Background && !j.Ignore {
		j.Fn.Ignore(j)
	}
}

// notifyAll sends the packet built by build to every listener of j.
func (e *Engine) notifyAll(j *queue.Job, build func(b []byte, l *Session) []byte) {
	for _, p := range j.Listeners() {
		l := p.(*Session)
		l.send(func(b []byte) []byte { return build(b, l) })
	}
}

// persist makes background job j durable and answers its submitter s with JOB_CREATED once
// it is, or with ERROR QUEUE_ERROR if it cannot be written (the job is then withdrawn).
// Without a store the job is acknowledged at once; `show jobs` still reports it persisted,
// as gearmand's builtin queue does.
func (e *Engine) persist(s *Session, j *queue.Job) {
	if e.store == nil {
		j.Persisted = true
		s.sendJobCreated(j)
		return
	}
	r := &createdReply{e: e, s: s, j: j, own: true}
	s.holdReply(&r.slot)
	e.writeJob(j, r)
}

// writeJob writes background job j's record; r is told once it is durable or refused.
// Without a store it is acknowledged at once.
func (e *Engine) writeJob(j *queue.Job, r *createdReply) {
	j.Persisted = true
	if e.store == nil {
		r.answer(nil)
		return
	}
	if err := e.store.Put(e.recordOf(j), r); err != nil {
		j.Persisted = false
		e.withdraw(j)
		r.answer(err)
	}
}

// recordOf is j's durable record.
func (e *Engine) recordOf(j *queue.Job) wal.Record {
	return wal.Record{
		Seq:         j.Seq,
		Handle:      j.Handle,
		Function:    j.Fn.Name,
		Unique:      j.Unique,
		Reducer:     j.Reducer(),
		Priority:    uint8(j.Priority),
		RunAt:       secondsOf(j.RunAt),
		Attempts:    j.Failures(),
		FirstFailed: j.FirstFailed(),
		Data:        j.Data,
	}
}

// answerWhenDurable sends s the JOB_CREATED of an existing persisted job once everything
// written so far, that job's record included, is durable.
func (e *Engine) answerWhenDurable(s *Session, j *queue.Job) {
	r := &createdReply{e: e, s: s, j: j}
	s.holdReply(&r.slot)
	if err := e.store.Barrier(r); err != nil {
		r.answer(err)
	}
}

// createdReply is a background submit's answer, waiting for the store: for a connection, a
// place held in its session's replies for the JOB_CREATED; for a typed submit, its done
// callback. It is also the store's acknowledgement, so that a durable submit costs this one
// object rather than a record, a callback and a reply buffer.
type createdReply struct {
	slot replySlot
	e    *Engine
	s    *Session                       // the connection to answer, or nil
	done func(handle string, err error) // the typed submit's callback, when s is nil
	j    *queue.Job
	own  bool // acknowledges the job's own record, not a barrier behind it
}

// Acked runs on the store's goroutine when the record (or barrier) is durable or refused.
func (r *createdReply) Acked(err error) {
	if err == nil && !r.own && r.j.Refused.Load() {
		// A barrier behind the job's own record, which was refused (its acknowledgement ran
		// first, in store order): this submitter gets the same error, not a JOB_CREATED for
		// a job that is being withdrawn.
		err = r.e.refusal(r.j)
	}
	if err != nil && r.own {
		r.e.refused(r.j, err)
	}
	r.answer(err)
}

// answer tells the submitter the job's handle, or err.
func (r *createdReply) answer(err error) {
	j := r.j
	switch {
	case r.s != nil && err == nil:
		r.s.fillReply(&r.slot, func(b []byte) []byte { return appendJobCreated(b, j) })
	case r.s != nil:
		r.s.fillReply(&r.slot, queueError(err))
	case err == nil:
		r.done(j.Handle, nil)
	default:
		r.done("", err)
	}
}

// refused takes back a job whose record the store could not write.
func (e *Engine) refused(j *queue.Job, err error) {
	e.log.Error("background job refused: cannot write it to the job log", "handle", j.Handle, "error", err)
	e.lastRefusal.Store(&err)
	j.Refused.Store(true) // before the reply: a retry must not coalesce onto it
	// Store callbacks must not take a shard lock (see Store).
	go func() {
		sh := j.Fn.Shard()
		sh.Lock()
		defer sh.Unlock()
		if j.Persisted {
			j.Persisted = false
			e.withdraw(j)
		}
	}()
}

// refusal is the error a refused job's record got, for the submitters that coalesced onto it.
func (e *Engine) refusal(j *queue.Job) error {
	if err := e.lastRefusal.Load(); err != nil {
		return *err
	}
	return fmt.Errorf("job %s could not be written to the job log", j.Handle)
}

// withdraw takes back a job whose acknowledgement failed, unless a worker already runs it or
// a foreground client waits for it (then it simply stops being a background job).
func (e *Engine) withdraw(j *queue.Job) {
	switch {
	case j.State == queue.Done:
	case len(j.Listeners()) > 0:
		// Checked before Running: a running foreground job must not stay marked background
		// without a record, or the next background submit joining it would be acknowledged
		// at once, not durable (found by FuzzEngine).
		j.Background = false
	case j.State == queue.Running:
	default:
		j.Fn.Ignore(j)
	}
}

// unpersist deletes j's record from the store, if it has one.
func (e *Engine) unpersist(j *queue.Job) {
	if j.Persisted && e.store != nil {
		if err := e.store.Delete(j.Seq); err != nil {
			e.log.Error("cannot delete a finished job from the job log", "handle", j.Handle, "error", err)
		}
	}
	j.Persisted = false
}

func appendJobCreated(b []byte, j *queue.Job) []byte {
	b = codec.AppendHeader(b, codec.JobCreated, len(j.Handle))
	return append(b, j.Handle...)
}

func queueError(err error) func([]byte) []byte {
	text := err.Error()
	return func(b []byte) []byte { return codec.AppendError(b, "QUEUE_ERROR", text) }
}

// releaseListeners sends every listener of j its last packet (if notify is set) and detaches
// them all.
func (e *Engine) releaseListeners(j *queue.Job, notify func(b []byte, l *Session) []byte) {
	if notify != nil {
		e.notifyAll(j, notify)
	}
	for _, p := range j.Listeners() {
		p.(*Session).unlisten(j)
	}
	j.ClearListeners()
}

// workFail builds WORK_FAIL handle for every listener.
func workFail(h []byte) func(b []byte, _ *Session) []byte {
	return func(b []byte, _ *Session) []byte { return codec.AppendPacket(b, codec.WorkFail, h) }
}

// requeue returns a running job whose worker let go of it without a result (CANT_DO) to
// the back of its queue, or fails it once --job-retries is reached. lost says the worker
// failed it (disconnected, timed out): under a retry policy that is a failed attempt. The
// caller has already removed it from the worker's assigned set.
func (e *Engine) requeue(j *queue.Job, why string, lost bool) {
	j.StopTimer()
	if j.Ignore {
		e.conclude(j, wal.OutcomeFail, nil, nil) // cancelled or abandoned: nobody wants it any more
		return
	}
	if lost && j.Background && j.Fn.Retry.Attempts > 0 {
		e.failed(j, wal.OutcomeFail, []byte(why), workFail([]byte(j.Handle)))
		return
	}
	retries := j.AddRetry()
	if e.cfg.JobRetries > 0 && int(retries) >= e.cfg.JobRetries {
		e.log.Warn("job failed: retries exhausted", "handle", j.Handle, "function", j.Fn.Name, "retries", retries, "reason", why)
		e.conclude(j, wal.OutcomeFail, []byte(why), workFail([]byte(j.Handle)))
		return
	}
	e.log.Info("job requeued", "handle", j.Handle, "function", j.Fn.Name, "retries", retries, "reason", why)
	j.Fn.Requeue(j, now())
	e.jobQueued(j.Fn, j)
}

// jobQueued wakes sleeping workers for a job that became ready, or arms the function's timer
// for a job scheduled later.
func (e *Engine) jobQueued(f *queue.Function, j *queue.Job) {
	if j.State == queue.Delayed {
		e.armDueTimer(f)
		return
	}
	e.wakeWorkers(f)
}

// armDueTimer makes sure f's timer fires when its earliest scheduled job comes due, so that
// sleeping workers are woken then (gearmand 1.1 never wakes them: spec 3.8).
func (e *Engine) armDueTimer(f *queue.Function) {
	due, ok := f.NextDue()
	if !ok || (f.WakeTimer != nil && f.WakeAt != 0 && f.WakeAt <= due) {
		return
	}
	// Run-at times are clamped (milliOf): time.Unix overflows near MaxInt64 and would fire
	// at once, forever. Far in the future, time.Until saturates at the largest Duration.
	d := time.Until(time.UnixMilli(due))
	f.WakeAt = due
	if f.WakeTimer == nil {
		f.WakeTimer = time.AfterFunc(d, func() { e.onDue(f) })
		return
	}
	f.WakeTimer.Reset(d)
}

// maxTimerEpoch is far beyond any real schedule (year ~36800) yet safe for time.Unix.
const maxTimerEpoch = 1 << 40

func (e *Engine) onDue(f *queue.Function) {
	sh := f.Shard()
	sh.Lock()
	defer sh.Unlock()
	f.WakeAt = 0
	e.promoteDue(f, now())
	e.armDueTimer(f)
}

// armTimeout starts the CAN_DO_TIMEOUT clock of one assignment. On expiry the job is
// requeued as if the worker had disconnected (gearmand's behaviour, spec 3.7); completion
// stops the timer.
func (e *Engine) armTimeout(j *queue.Job, w *Session, d time.Duration) {
	var t *time.Timer
	// t is set below before the shard lock (held by our caller) is released, so the callback,
	// which takes that lock first, always sees it; a stale timer is no longer j's.
	t = time.AfterFunc(d, func() {
		sh := j.Fn.Shard()
		sh.Lock()
		defer sh.Unlock()
		if j.State != queue.Running || j.Worker != queue.Peer(w) || j.Timer() != t {
			return
		}
		w.unassign(j)
		j.SetTimer(nil)
		e.requeue(j, "worker timeout", true)
	})
	j.SetTimer(t)
}
