package engine

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
)

// Error codes and texts, as gearmand sends them.
const (
	errInvalidCommand = "Command not expected"
	errJobNotFound    = "Job does not exist on server"
	errWorkNotFound   = "Job given in work result not found"
	errExcNotFound    = "An exception was received for a job that does not exist"
	errUniqueTooLarge = "Unique value too large"
	errQueueFull      = "Job queue is full"
	errUnknownOption  = "Server does not recognize given option"
)

// dispatch executes one binary packet.
func (s *Session) dispatch(p *codec.Packet) {
	if p.Response {
		s.sendError("INVALID_MAGIC", "Request magic expected")
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
			s.sendError("UNKNOWN_OPTION", errUnknownOption)
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
		// Response-only types, ALL_YOURS, the unused type 5 and SUBMIT_JOB_SCHED.
		s.sendError("INVALID_COMMAND", errInvalidCommand)
	}
}

// submit handles the nine SUBMIT_JOB variants.
func (s *Session) submit(p *codec.Packet, prio queue.Priority, background bool) {
	fn, unique, data := p.Args[0], p.Args[1], p.Args[p.NArgs-1]
	var reducer []byte
	var runAt int64
	switch p.Type {
	case codec.SubmitJobEpoch:
		var ok bool
		if runAt, ok = parseEpoch(p.Args[2]); !ok {
			s.sendError("INVALID_ARGUMENT", "Epoch time out of range")
			return
		}
	case codec.SubmitReduceJob, codec.SubmitReduceJobBackground:
		reducer = p.Args[2]
	}
	if len(unique) > codec.MaxUniqueSize {
		s.sendError("ARGUMENT_TOO_LARGE", errUniqueTooLarge)
		return
	}
	if len(reducer) > codec.MaxUniqueSize {
		s.sendError("ARGUMENT_TOO_LARGE", "Reducer name too large")
		return
	}

	e := s.e
	if e.draining.Load() {
		s.sendError("QUEUE_ERROR", "Server is shutting down")
		return
	}
	sh := e.reg.ShardFor(fn)
	sh.Lock()
	defer sh.Unlock()
	if e.store != nil && background {
		if err := e.store.Writable(); err != nil {
			s.sendError("QUEUE_ERROR", err.Error())
			return
		}
	}
	f := sh.Ensure(fn)
	if j := f.Coalesce(unique, data); j != nil && !j.Refused.Load() {
		switch {
		case !background:
			e.attach(j, s)
		case !j.Background:
			// A background submit joining a foreground job makes it a background job: it
			// must now outlive its foreground clients, and be durable before this
			// submitter is told it exists.
			j.Background = true
			e.persist(s, j)
			return
		case j.Persisted && e.store != nil:
			// The job's own record may still be on its way to disk: answer after it.
			e.answerWhenDurable(s, j)
			return
		}
		s.sendJobCreated(j)
		return
	}
	if limit := f.MaxQueue[prio]; limit > 0 && f.Total >= limit {
		s.sendError("QUEUE_ERROR", errQueueFull)
		return
	}
	seq := e.nextSeq()
	var hbuf [64]byte
	j := queue.NewJob(e.appendHandle(hbuf[:0], seq), unique, reducer, data)
	j.Seq, j.Priority, j.Background, j.RunAt = seq, prio, background, runAt
	var t int64 // the clock is read only for a scheduled job: it was 8% of a submit burst
	if runAt > 0 {
		t = now()
	}
	f.Enqueue(j, t)
	if background {
		e.persist(s, j) // JOB_CREATED goes out once the job is durable
	} else {
		e.attach(j, s)
		// Buffered before the shard is released, so no WORK_* packet of this job can reach
		// the client ahead of it.
		s.sendJobCreated(j)
	}
	e.jobQueued(f, j)
}

func (s *Session) sendJobCreated(j *queue.Job) {
	s.send(func(b []byte) []byte { return appendJobCreated(b, j) })
}

// grab hands the worker its next job: its registrations are walked newest first and the
// first function with a ready job serves its best one (gearmand 1.1's per-function priority).
func (s *Session) grab(kind codec.Type) {
	s.sleeping.Store(false)
	s.noopSent.Store(false)
	regs := s.snapshotRegs()
	if s.e.draining.Load() {
		regs = nil // shutting down: queued jobs stay queued for the next start
	}
	var t int64 // read only when a function has scheduled jobs
	for i, r := range regs {
		sh := r.fn.Shard()
		sh.Lock()
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
			sh.Unlock()
			continue
		}
		r.fn.Start(j, s)
		s.assign(j)
		s.sendAssign(kind, j)
		if r.timeout > 0 {
			s.e.armTimeout(j, s, r.timeout)
		}
		sh.Unlock()
		if s.e.cfg.RoundRobin && len(regs) > 1 {
			s.rotate(i)
		}
		return
	}
	s.send(func(b []byte) []byte { return codec.AppendEmpty(b, codec.NoJob) })
}

// rotate moves registration i to the end of the list (-R).
func (s *Session) rotate(i int) {
	regs := s.snapshotRegs()
	if i >= len(regs) {
		return
	}
	next := make([]registration, 0, len(regs))
	next = append(next, regs[:i]...)
	next = append(next, regs[i+1:]...)
	next = append(next, regs[i])
	s.setRegs(next)
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
// race gearmand also closes); otherwise the worker sleeps until a job arrives.
func (s *Session) preSleep() {
	regs := s.snapshotRegs()
	if len(regs) == 0 {
		return
	}
	// Each PRE_SLEEP may earn one NOOP, even if one went out since the last grab: the worker
	// is asking again (gearmand checks no flag here). Sleeping is published before looking,
	// so a job queued meanwhile either sees the flag and sends the NOOP or is seen here; the
	// compare-and-swap lets only one of the two send it.
	s.noopSent.Store(false)
	s.sleeping.Store(true)
	var t int64 // read only when a function has scheduled jobs
	for _, r := range regs {
		sh := r.fn.Shard()
		sh.Lock()
		if t == 0 && r.fn.HasDelayed() {
			t = now()
		}
		ready := r.fn.HasReady(t)
		sh.Unlock()
		if ready {
			if s.noopSent.CompareAndSwap(false, true) {
				s.send(appendNoop)
			}
			return
		}
	}
}

func (s *Session) canDo(fn []byte, timeout time.Duration) {
	sh := s.e.reg.ShardFor(fn)
	sh.Lock()
	f := sh.Ensure(fn)
	f.AddWorker(s)
	sh.Unlock()
	old := s.snapshotRegs()
	regs := make([]registration, 0, len(old)+1)
	regs = append(regs, registration{fn: f, timeout: timeout})
	s.setRegs(append(regs, old...))
}

func (s *Session) cantDo(fn []byte) {
	sh := s.e.reg.ShardFor(fn)
	sh.Lock()
	f := sh.Get(fn)
	sh.Unlock()
	if f == nil {
		return
	}
	s.dropRegistrations(func(r registration) bool { return r.fn == f })
}

func (s *Session) resetAbilities() {
	s.dropRegistrations(func(registration) bool { return true })
}

// dropRegistrations removes the registrations matching drop and requeues the jobs of those
// functions that the worker holds.
func (s *Session) dropRegistrations(drop func(registration) bool) {
	old := s.snapshotRegs()
	kept := make([]registration, 0, len(old))
	dropped := map[*queue.Function]bool{}
	for _, r := range old {
		if drop(r) {
			dropped[r.fn] = true
		} else {
			kept = append(kept, r)
		}
	}
	s.setRegs(kept)
	for f := range dropped {
		sh := f.Shard()
		sh.Lock()
		f.RemoveWorker(s)
		for _, j := range s.assignedOf(f) {
			if j.State == queue.Running && j.Worker == queue.Peer(s) {
				s.unassign(j)
				s.e.requeue(j, "worker gave up the function")
			}
		}
		sh.Unlock()
	}
}

func (s *Session) assignedOf(f *queue.Function) []*queue.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*queue.Job
	for _, j := range s.assigned {
		if j.Fn == f {
			out = append(out, j)
		}
	}
	return out
}

// work handles the WORK_* packets a worker sends about a job it holds.
func (s *Session) work(p *codec.Packet) {
	h := p.Args[0]
	j := s.assignedJob(h)
	if j == nil {
		s.sendError("JOB_NOT_FOUND", workNotFoundText(p.Type))
		return
	}
	e := s.e
	sh := j.Fn.Shard()
	sh.Lock()
	defer sh.Unlock()
	if j.State != queue.Running || j.Worker != queue.Peer(s) {
		s.sendError("JOB_NOT_FOUND", workNotFoundText(p.Type))
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
		e.finish(j, func(b []byte, _ *Session) []byte { return codec.AppendPacket(b, codec.WorkComplete, h, data) })
	case codec.WorkFail:
		e.finish(j, workFail(h))
	case codec.WorkException:
		// Listeners without the exceptions option get a plain WORK_FAIL (gearmand adds a
		// stray NUL to it: spec weakness 14).
		data := p.Args[1]
		e.finish(j, func(b []byte, l *Session) []byte {
			if l.exceptions.Load() {
				return codec.AppendPacket(b, codec.WorkException, h, data)
			}
			return codec.AppendPacket(b, codec.WorkFail, h)
		})
	}
}

func workNotFoundText(t codec.Type) string {
	switch t {
	case codec.WorkData, codec.WorkWarning:
		return errJobNotFound
	case codec.WorkException:
		return errExcNotFound
	}
	return errWorkNotFound
}

func (s *Session) getStatus(h []byte) {
	var known, running bool
	var num, den uint64
	if j := s.e.reg.Lookup(h); j != nil {
		sh := j.Fn.Shard()
		sh.Lock()
		if j.State != queue.Done {
			known, running = true, j.State == queue.Running
			num, den = j.Status()
		}
		sh.Unlock()
	}
	s.send(func(b []byte) []byte { return codec.AppendStatusRes(b, h, known, running, num, den) })
}

// getStatusUnique looks a unique id up across all functions; the first live match wins.
func (s *Session) getStatusUnique(u []byte) {
	var known, running bool
	var num, den, clients uint64
	if len(u) > 0 {
		s.e.reg.EachShard(func(sh *queue.Shard) {
			if known {
				return
			}
			for _, f := range sh.Functions() {
				if j := f.Coalesce(u, nil); j != nil && j.Unique != "-" {
					known, running, clients = true, j.State == queue.Running, uint64(len(j.Listeners()))
					num, den = j.Status()
					return
				}
			}
		})
	}
	s.send(func(b []byte) []byte { return codec.AppendStatusResUnique(b, u, known, running, num, den, clients) })
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
