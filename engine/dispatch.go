package engine

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// dispatch executes one binary packet.
func (s *Session) dispatch(p *codec.Packet) {
	if p.Response {
		s.sendReply(codec.ReplyInvalidMagic)
		return
	}
	if r := codec.CheckArgs(p); r != nil {
		s.sendReply(r)
		return
	}
	switch p.Type {
	case codec.EchoReq:
		s.sendPacket(codec.EchoRes, p.Args[0])
	case codec.SubmitJob, codec.SubmitReduceJob:
		s.submit(p, queue.Normal, false)
	case codec.SubmitJobHigh:
		s.submit(p, queue.High, false)
	case codec.SubmitJobLow:
		s.submit(p, queue.Low, false)
	case codec.SubmitJobBg, codec.SubmitJobEpoch, codec.SubmitReduceJobBackground:
		s.submit(p, queue.Normal, true)
	case codec.SubmitJobSched:
		s.submitSched(p)
	case codec.SubmitJobHighBg:
		s.submit(p, queue.High, true)
	case codec.SubmitJobLowBg:
		s.submit(p, queue.Low, true)
	case codec.GrabJob, codec.GrabJobUniq, codec.GrabJobAll:
		s.grab(p.Type)
	case codec.PreSleep:
		s.preSleep()
	case codec.CanDo:
		s.canDo(p.Args[0], 0)
	case codec.CanDoTimeout:
		s.canDo(p.Args[0], parseTimeout(p.Args[1]))
	case codec.CantDo:
		s.cantDo(p.Args[0])
	case codec.ResetAbilities:
		s.resetAbilities()
	case codec.WorkStatus, codec.WorkData, codec.WorkWarning, codec.WorkComplete, codec.WorkFail, codec.WorkException:
		s.work(p)
	case codec.GetStatus:
		s.getStatus(p.Args[0])
	case codec.GetStatusUnique:
		s.getStatusUnique(p.Args[0])
	case codec.OptionReq:
		if name := p.Args[0]; len(name) <= codec.MaxOptionSize && bytes.EqualFold(name, []byte("exceptions")) {
			s.exceptions.Store(true)
			s.sendPacket(codec.OptionRes, name)
		} else {
			s.sendReply(codec.ReplyUnknownOption)
		}
	case codec.SetClientID:
		id := p.Args[0]
		if len(id) > codec.MaxClientIDSize {
			id = id[:codec.MaxClientIDSize]
		}
		s.mu.Lock()
		s.clientID = string(id)
		s.mu.Unlock()
	default:
		// Response-only types, ALL_YOURS and the unused type 5.
		s.sendReply(codec.ReplyInvalidCommand)
	}
}

// submit handles the nine SUBMIT_JOB variants.
func (s *Session) submit(p *codec.Packet, prio queue.Priority, background bool) {
	req := SubmitRequest{
		Function:   p.Args[0],
		Unique:     p.Args[1],
		Data:       p.Args[p.NArgs-1],
		Priority:   prio,
		Background: background,
		received:   s.fedAt,
	}
	switch p.Type {
	case codec.SubmitJobEpoch:
		var ok bool
		if req.RunAt, ok = parseEpoch(p.Args[2]); !ok {
			s.sendReply(codec.ReplyEpochOutOfRange)
			return
		}
	case codec.SubmitReduceJob, codec.SubmitReduceJobBackground:
		req.Reducer = p.Args[2]
	}
	if !s.permitted(ActSubmit, req.Function) {
		return
	}
	e := s.e
	if e.draining.Load() {
		s.sendReply(codec.ReplyShuttingDown)
		return
	}
	f, j, how, err := e.lockAndPlace(&req)
	defer f.Shard().Unlock()
	switch how {
	case refused:
		s.send(queueError(err))
	case joined:
		if !background {
			e.attach(j, s)
		}
		s.sendJobCreated(j)
	case joinedDurable:
		e.answerWhenDurable(s, j)
	case promoted:
		e.persist(s, j)
	case offered:
		e.offer(s, j, nil)
	case placedNew:
		if background {
			e.persist(s, j) // JOB_CREATED goes out once the job is durable
		} else {
			e.attach(j, s)
			// Buffered before the shard is released, so no WORK_* packet of this job can
			// reach the client ahead of it.
			s.sendJobCreated(j)
		}
		e.jobQueued(f, j)
	}
}

func (s *Session) sendJobCreated(j *queue.Job) {
	s.send(func(b []byte) []byte { return appendJobCreated(b, j) })
}

// grab hands the worker its next job: its registrations are walked newest first and the
// first function with a ready job serves its best one (gearmand 1.1's per-function priority).
func (s *Session) grab(kind codec.Type) {
	// The wake-up this grab answers ends once the grab is done, and tops up the function
	// the NOOP was for (this worker may take a job of another function, or none). It is
	// taken before the flags are reset, so that one noted meanwhile stays for the next.
	prev := s.wokeFor.Swap(nil)
	defer s.e.endWake(s, prev)
	s.sleeping.Store(false)
	s.noopSent.Store(false)
	if s.e.draining.Load() || s.draining.Load() {
		// Shutting down (queued jobs stay queued for the next start), or this worker is
		// being drained.
		s.send(func(b []byte) []byte { return codec.AppendEmpty(b, codec.NoJob) })
		return
	}
	var t int64 // read only when a function has scheduled jobs
	var served *queue.Function
	s.abilities.newestFirst(func(r registration) bool {
		sh := r.fn.Shard()
		sh.Lock()
		defer sh.Unlock()
		if !r.fn.Startable() {
			return true // paused, or at its concurrency limit: its jobs wait
		}
		if t == 0 && r.fn.HasDelayed() {
			t = now()
		}
		s.e.promoteDue(r.fn, t)
		j := r.fn.Pop(t)
		// A refused job that foreground clients wait for is not reaped: it was theirs before
		// a background submit joined it, and withdraw keeps it for them. Reaping it would
		// leave them waiting forever for a result (found by FuzzEngine).
		for j != nil && (j.Ignore || (j.Refused.Load() && len(j.Listeners()) == 0)) {
			s.e.unpersist(j)
			r.fn.Forget(j) // cancelled, abandoned or never acknowledged: reaped here
			j = r.fn.Pop(t)
		}
		if j == nil {
			return true
		}
		r.fn.Start(j, s, s.fedAt)
		s.assign(j, s.fedAt)
		s.sendAssign(kind, j)
		if r.timeout > 0 {
			s.e.armTimeout(j, s, r.timeout)
		}
		served = r.fn
		return false
	})
	if served == nil {
		s.send(func(b []byte) []byte { return codec.AppendEmpty(b, codec.NoJob) })
		s.e.askClaims(s)
		return
	}
	if s.e.cfg.RoundRobin && s.abilities.len() > 1 {
		s.mu.Lock()
		s.abilities.toBack(served)
		s.mu.Unlock()
	}
}

func (s *Session) sendAssign(kind codec.Type, j *queue.Job) {
	h, fn, u, r, d := []byte(j.Handle), []byte(j.Fn.Name), []byte(j.Unique), []byte(j.Reducer()), j.Data
	switch {
	case kind == codec.GrabJob:
		s.sendPacket(codec.JobAssign, h, fn, d)
	case kind == codec.GrabJobAll && len(r) > 0:
		s.sendPacket(codec.JobAssignAll, h, fn, u, r, d)
	default:
		s.sendPacket(codec.JobAssignUniq, h, fn, u, d)
	}
}

// preSleep answers NOOP at once when one of the worker's functions has a ready job (the
// race gearmand also closes); otherwise the worker sleeps until a job arrives. While the
// server drains for shutdown nothing is handed out, so nothing wakes the worker either.
func (s *Session) preSleep() {
	if s.abilities.len() == 0 {
		return
	}
	// Back to sleep without grabbing: a wake-up it had ends once it has looked for work
	// itself (and maybe woken itself for the same job). It is taken before noopSent is
	// reset, so that a wake-up noted from then on stays for the worker's next answer.
	e := s.e
	prev := s.wokeFor.Swap(nil)
	defer e.endWake(s, prev)
	// Each PRE_SLEEP may earn one NOOP, even if one went out since the last grab: the worker
	// is asking again (gearmand checks no flag here). Sleeping is published before looking,
	// so a job queued meanwhile either sees the flag and sends the NOOP or is seen here; the
	// compare-and-swap lets only one of the two send it.
	s.noopSent.Store(false)
	s.sleeping.Store(true)
	if e.draining.Load() || s.draining.Load() {
		return
	}
	var t int64 // read only when a function has scheduled jobs
	looking := true
	s.abilities.newestFirst(func(r registration) bool {
		sh := r.fn.Shard()
		sh.Lock()
		defer sh.Unlock()
		r.fn.NoSleeper = false // it has a sleeper again: s
		if !looking || !r.fn.Startable() {
			return true
		}
		if t == 0 && r.fn.HasDelayed() {
			t = now()
		}
		if !r.fn.HasReady(t) {
			return true
		}
		looking = false
		if s.noopSent.CompareAndSwap(false, true) {
			if e.countsWakes() {
				e.noteWoken(r.fn, s)
			}
			s.send(appendNoop)
		}
		return true
	})
	if looking {
		e.askClaims(s) // nothing here: maybe in the shared store
	}
}

func (s *Session) canDo(fn []byte, timeout time.Duration) {
	if !s.permitted(ActWork, fn) {
		return
	}
	if !s.wasWorker.Load() {
		s.wasWorker.Store(true)
	}
	sh := s.e.reg.ShardFor(fn)
	sh.Lock()
	f := sh.Ensure(fn)
	if _, again := s.abilities.index[f]; !again {
		f.AddWorker(s)
	}
	sh.Unlock()
	s.mu.Lock()
	s.abilities.add(f, timeout)
	s.mu.Unlock()
}

func (s *Session) cantDo(fn []byte) {
	sh := s.e.reg.ShardFor(fn)
	sh.Lock()
	f := sh.Get(fn)
	sh.Unlock()
	if f != nil {
		s.dropAbilities([]*queue.Function{f})
	}
}

func (s *Session) resetAbilities() {
	s.dropAbilities(s.abilities.functions())
}

// dropAbilities unregisters fns and requeues the jobs of those functions that the worker
// holds.
func (s *Session) dropAbilities(fns []*queue.Function) {
	for _, f := range fns {
		s.mu.Lock()
		registered := s.abilities.remove(f)
		s.mu.Unlock()
		if !registered {
			continue
		}
		sh := f.Shard()
		sh.Lock()
		f.RemoveWorker(s)
		s.e.replaceWoken(f)
		for _, j := range s.assignedOf(f) {
			if j.State == queue.Running && j.Worker == queue.Peer(s) {
				s.unassign(j)
				s.e.requeue(j, "worker gave up the function", false)
			}
		}
		sh.Unlock()
	}
}

func (s *Session) assignedOf(f *queue.Function) []*queue.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*queue.Job
	for _, a := range s.assigned {
		if a.job.Fn == f {
			out = append(out, a.job)
		}
	}
	return out
}

// work handles the WORK_* packets a worker sends about a job it holds.
func (s *Session) work(p *codec.Packet) {
	h := p.Args[0]
	j := s.assignedJob(h)
	if j == nil {
		if s.heldBefore(h) {
			s.lateResult(p)
			return
		}
		s.sendReply(codec.WorkNotFound(p.Type))
		return
	}
	e := s.e
	sh := j.Fn.Shard()
	sh.Lock()
	defer sh.Unlock()
	if j.State != queue.Running || j.Worker != queue.Peer(s) {
		s.lateResult(p)
		return
	}
	switch p.Type {
	case codec.WorkData, codec.WorkWarning:
		data := p.Args[1]
		e.notifyAll(j, func(b []byte, _ *Session) []byte { return codec.AppendPacket(b, p.Type, h, data) })
	case codec.WorkStatus:
		num, den := p.Args[1], p.Args[2]
		j.SetStatus(atou(num), atou(den))
		e.notifyAll(j, func(b []byte, _ *Session) []byte { return codec.AppendPacket(b, codec.WorkStatus, h, num, den) })
	case codec.WorkComplete:
		data := p.Args[1]
		e.conclude(j, wal.OutcomeComplete, data, func(b []byte, _ *Session) []byte { return codec.AppendPacket(b, codec.WorkComplete, h, data) })
	case codec.WorkFail:
		e.failed(j, wal.OutcomeFail, nil, workFail(h))
	case codec.WorkException:
		// Listeners without the exceptions option get a plain WORK_FAIL (gearmand adds a
		// stray NUL to it: spec weakness 14).
		data := p.Args[1]
		e.failed(j, wal.OutcomeException, data, func(b []byte, l *Session) []byte {
			if l.exceptions.Load() {
				return codec.AppendPacket(b, codec.WorkException, h, data)
			}
			return codec.AppendPacket(b, codec.WorkFail, h)
		})
	}
}

// lateResult drops a WORK_* packet about a job this worker held once but no longer does: it
// ended (a WORK_FAIL after the worker's own WORK_EXCEPTION, as Perl's Gearman::Worker sends
// for a function that dies), timed out, was requeued or cancelled. The worker had every
// right to send it, and many worker libraries die on an ERROR they did not expect.
func (s *Session) lateResult(p *codec.Packet) {
	s.e.log.Debug("dropped a result for a job this worker no longer holds", "conn", s.id,
		"type", p.Type.String(), "handle", string(p.Args[0]))
}

func (s *Session) getStatus(h []byte) {
	st := s.e.Status(h)
	if !st.Known && s.e.remoteStatus(s, h) {
		return
	}
	if st.Known && s.allow(ActStatus, viewBytes(st.Function)) != nil {
		// Answered as unknown: a refusal would tell that the job exists.
		s.logRefusal(ActStatus, viewBytes(st.Function), ErrHidden)
		st = JobStatus{}
	}
	s.send(func(b []byte) []byte {
		return codec.AppendStatusRes(b, h, st.Known, st.Running, st.Numerator, st.Denominator)
	})
}

func (s *Session) getStatusUnique(u []byte) {
	st := s.e.StatusUnique(u)
	if !st.Known && s.e.remoteStatusUnique(s, u) {
		return
	}
	if st.Known && s.allow(ActStatus, viewBytes(st.Function)) != nil {
		s.logRefusal(ActStatus, viewBytes(st.Function), ErrHidden)
		st = JobStatus{}
	}
	s.send(func(b []byte) []byte {
		return codec.AppendStatusResUnique(b, u, st.Known, st.Running, st.Numerator, st.Denominator, uint64(st.Clients))
	})
}

// parseTimeout reads a CAN_DO_TIMEOUT value in milliseconds like gearmand: non-numeric text
// is 0 (no timeout), 1..999 is raised to one second, and huge values are clamped instead of
// crashing the server (spec 1.4).
func parseTimeout(b []byte) time.Duration {
	ms := atoi(b)
	switch {
	case ms <= 0:
		return 0
	case ms < 1000:
		ms = 1000
	case ms > int64(math.MaxInt64/time.Millisecond):
		ms = int64(math.MaxInt64 / time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond
}

// parseEpoch reads SUBMIT_JOB_EPOCH's run-at time like strtoll: leading digits count,
// non-numeric text is 0 (run now); ok is false when the value does not fit.
func parseEpoch(b []byte) (int64, bool) {
	b = bytes.TrimLeft(b, " \t")
	end := 0
	if end < len(b) && (b[end] == '-' || b[end] == '+') {
		end++
	}
	for end < len(b) && b[end] >= '0' && b[end] <= '9' {
		end++
	}
	v, err := strconv.ParseInt(string(b[:end]), 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, false
		}
		return 0, true
	}
	return v, true
}

// atoi reads a leading decimal integer like C's atoi, saturating instead of overflowing.
func atoi(b []byte) int64 {
	b = bytes.TrimLeft(b, " \t")
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		if v > (math.MaxInt64-9)/10 {
			v = math.MaxInt64
			break
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		return -v
	}
	return v
}

// atou is atoi for counters that cannot be negative.
func atou(b []byte) uint64 {
	if v := atoi(b); v > 0 {
		return uint64(v)
	}
	return 0
}
