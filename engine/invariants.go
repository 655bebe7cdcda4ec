package engine

import (
	"fmt"
	"slices"

	"github.com/spur-gearman/spur/queue"
)

// CheckInvariants verifies the engine's bookkeeping and returns an error naming the function
// and job handle of the first violation it finds, or nil.
//
// It is meant for tests and fuzzing only: it takes every shard lock in turn (and session
// locks under them, as leaves), walks every job and allocates freely. Never call it from a
// production path.
//
// Checked for every function, with its shard locked (so each check sees a consistent view of
// that shard even while other goroutines work on other shards):
//
//   - Total == Running + Queued[high] + Queued[normal] + Queued[low];
//   - Queued[p] is the number of priority-p jobs in the ready FIFOs plus the delay heap;
//   - every job in a FIFO is Queued, of that FIFO's priority, and every job in the delay heap
//     is Delayed, at the heap position it records, in heap order; both belong to the
//     function, have no worker and no timeout timer, and sit in exactly one place;
//   - the handle index holds exactly the live jobs (State != Done): each waiting job is in
//     it, each indexed job of the function is either in a FIFO or the heap (Queued, Delayed)
//     or Running with a worker and in no queue, Running matches the running ones and Total
//     all of them; an indexed job's function is still registered;
//   - the unique index points only at live, non-ignored jobs of the function under their own
//     key, and every live job with a coalescing key that is neither ignored nor refused by
//     the store is the one it points at;
//   - a function with scheduled jobs has its wake timer armed no later than the earliest;
//   - a live foreground job that is not ignored has a listener (else nobody wants its result
//     and it should have been abandoned);
//   - the sessions agree (unless closed): a running job is in its worker's assigned set and a
//     job is in each listener's listening set; conversely an assigned job is running on that
//     session and a listened-to job is live with that session among its listeners; a
//     session's registration for a function is among the function's workers.
func (e *Engine) CheckInvariants() error {
	sessions := e.sessionList()
	// One snapshot of the handle index, by shard. It may be stale by the time a shard is
	// locked; checkShard copes with that.
	snapshot := map[*queue.Shard][]*queue.Job{}
	for _, j := range e.reg.Jobs() {
		if j.Fn == nil {
			return fmt.Errorf("job %s is in the handle index without a function", j.Handle)
		}
		snapshot[j.Fn.Shard()] = append(snapshot[j.Fn.Shard()], j)
	}
	var err error
	e.reg.EachShard(func(sh *queue.Shard) {
		if err == nil {
			err = e.checkShard(sh, snapshot[sh], sessions)
		}
	})
	return err
}

// checkShard checks sh's functions and the jobs and sessions that refer to them. Call with
// sh locked. snap is sh's part of a handle-index snapshot taken before the lock.
func (e *Engine) checkShard(sh *queue.Shard, snap []*queue.Job, sessions []*Session) error {
	// The index entries of this shard's jobs change only under sh's lock, which we hold, so
	// the jobs of snap still indexed are exact unless one was added before we got the lock.
	// Should anything disagree, look again at the index itself before reporting.
	indexed := make([]*queue.Job, 0, len(snap))
	for _, j := range snap {
		if e.reg.Lookup([]byte(j.Handle)) == j {
			indexed = append(indexed, j)
		}
	}
	if err := e.checkShardWith(sh, indexed, sessions); err == nil {
		return nil
	}
	indexed = indexed[:0]
	for _, j := range e.reg.Jobs() {
		if j.Fn != nil && j.Fn.Shard() == sh {
			indexed = append(indexed, j)
		}
	}
	return e.checkShardWith(sh, indexed, sessions)
}

// checkShardWith checks sh given the jobs of its functions in the handle index.
func (e *Engine) checkShardWith(sh *queue.Shard, indexed []*queue.Job, sessions []*Session) error {
	if sh.NumFunctions() == 0 && len(indexed) == 0 {
		return nil
	}
	fns := sh.Functions()
	byFn := make(map[*queue.Function][]*queue.Job, len(fns))
	for _, j := range indexed {
		if sh.Get([]byte(j.Fn.Name)) != j.Fn {
			return fmt.Errorf("job %s is indexed but its function %q is no longer registered", j.Handle, j.Fn.Name)
		}
		byFn[j.Fn] = append(byFn[j.Fn], j)
	}
	for _, f := range fns {
		if err := e.checkFunction(f, byFn[f]); err != nil {
			return err
		}
	}
	return checkSessions(sh, sessions)
}

// checkFunction checks one function against the jobs of it that the handle index holds.
func (e *Engine) checkFunction(f *queue.Function, indexed []*queue.Job) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("function %q: %s", f.Name, fmt.Sprintf(format, args...))
	}
	if sum := f.Running + f.Queued[queue.High] + f.Queued[queue.Normal] + f.Queued[queue.Low]; f.Total != sum {
		return fail("Total %d != Running %d + Queued %v", f.Total, f.Running, f.Queued)
	}
	for w := range f.Woken {
		if !f.HasWorker(w) {
			return fail("connection %d is counted as woken for it but is not one of its workers", w.PeerID())
		}
	}

	// The ready FIFOs and the delay heap.
	where := map[*queue.Job]string{}
	var waiting [queue.NumPriorities]int
	var err error
	f.EachWaiting(func(j *queue.Job, p queue.Priority, delayed bool) {
		if err != nil {
			return
		}
		place := p.String() + " FIFO"
		if delayed {
			place = "delay heap"
		}
		if prev, dup := where[j]; dup {
			err = fail("job %s is both in the %s and the %s", j.Handle, prev, place)
			return
		}
		where[j] = place
		waiting[j.Priority]++
		switch {
		case j.Fn != f:
			err = fail("job %s in its %s belongs to function %q", j.Handle, place, fnName(j.Fn))
		case !delayed && j.Priority != p:
			err = fail("job %s of priority %v is in the %s", j.Handle, j.Priority, place)
		case !delayed && j.State != queue.Queued, delayed && j.State != queue.Delayed:
			err = fail("job %s is in the %s in state %s", j.Handle, place, stateName(j.State))
		case j.Worker != nil:
			err = fail("job %s is in the %s and also has a worker", j.Handle, place)
		case j.Timer() != nil:
			err = fail("job %s is in the %s with a timeout timer running", j.Handle, place)
		case e.reg.Lookup([]byte(j.Handle)) != j:
			err = fail("job %s is in the %s but not in the handle index", j.Handle, place)
		}
	})
	if err != nil {
		return err
	}
	if err := f.CheckHeap(); err != nil {
		return fail("%v", err)
	}
	if waiting != f.Queued {
		return fail("Queued %v but the FIFOs and delay heap hold %v", f.Queued, waiting)
	}

	// The indexed jobs: each live, in exactly one place.
	running := 0
	for _, j := range indexed {
		switch j.State {
		case queue.Queued, queue.Delayed:
			if where[j] == "" {
				return fail("job %s is %s but in no FIFO or heap", j.Handle, stateName(j.State))
			}
		case queue.Running:
			running++
			if where[j] != "" {
				return fail("job %s is Running but also in the %s", j.Handle, where[j])
			}
			if j.Worker == nil {
				return fail("job %s is Running without a worker", j.Handle)
			}
			w, ok := j.Worker.(*Session)
			if !ok {
				return fail("job %s is held by a %T, not a session", j.Handle, j.Worker)
			}
			w.mu.Lock()
			lost := !w.closed && w.assigned[j.Seq].job != j
			w.mu.Unlock()
			if lost {
				return fail("job %s is Running on session %d, which does not know it holds it", j.Handle, w.id)
			}
		default:
			return fail("job %s is %s but still in the handle index", j.Handle, stateName(j.State))
		}
		for _, p := range j.Listeners() {
			l, ok := p.(*Session)
			if !ok {
				return fail("job %s has a %T listener, not a session", j.Handle, p)
			}
			l.mu.Lock()
			_, listening := l.listening[j]
			lost := !l.closed && !listening
			l.mu.Unlock()
			if lost {
				return fail("job %s lists session %d as a listener, which does not know it", j.Handle, l.id)
			}
		}
		if !j.Background && !j.Ignore && len(j.Listeners()) == 0 {
			return fail("foreground job %s has no listener left but is not abandoned", j.Handle)
		}
		if j.Unique != "" && !(j.Unique == "-" && len(j.Data) == 0) && !j.Ignore && !j.Refused.Load() {
			if c := f.Coalesce([]byte(j.Unique), j.Data); c != j {
				return fail("live job %s (unique %q) is not the one its coalescing key finds (%s)", j.Handle, j.Unique, handleOf(c))
			}
		}
	}
	if f.Running != running {
		return fail("Running %d but %d indexed jobs are running", f.Running, running)
	}
	if f.Total != len(indexed) {
		return fail("Total %d but the handle index holds %d of its jobs", f.Total, len(indexed))
	}

	// The coalescing index.
	f.EachUnique(func(h uint64, byData bool, j *queue.Job) {
		key := j.Unique
		if byData {
			key = string(j.Data)
		}
		switch {
		case err != nil:
		case j.Fn != f:
			err = fail("unique key %q points at job %s of function %q", key, j.Handle, fnName(j.Fn))
		case j.State == queue.Done:
			err = fail("unique key %q points at finished job %s", key, j.Handle)
		case j.Ignore:
			err = fail("unique key %q points at ignored job %s", key, j.Handle)
		case byData && j.Unique != "-":
			err = fail("data key %q points at job %s (unique %q)", key, j.Handle, j.Unique)
		case f.KeyHash(key) != h:
			err = fail("key %q of job %s is filed under another key's hash", key, j.Handle)
		case e.reg.Lookup([]byte(j.Handle)) != j:
			err = fail("unique key %q points at job %s, which is not in the handle index", key, j.Handle)
		}
	})
	if err != nil {
		return err
	}

	// Scheduled jobs must wake their workers when due.
	if due, ok := f.NextDue(); ok && (f.WakeTimer == nil || f.WakeAt == 0 || f.WakeAt > due) {
		return fail("earliest scheduled job is due at %d but the wake timer is set for %d (timer %v)", due, f.WakeAt, f.WakeTimer != nil)
	}
	return nil
}

// checkSessions checks what each open session believes about the jobs and functions of sh
// against the queues. Call with sh locked; session locks are leaves below it.
func checkSessions(sh *queue.Shard, sessions []*Session) error {
	for _, s := range sessions {
		s.mu.Lock()
		err := checkSession(sh, s)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// checkSession does checkSessions for one session. Call with sh and s.mu locked.
func checkSession(sh *queue.Shard, s *Session) error {
	if s.closed {
		return nil // Close is releasing what it held
	}
	for h, a := range s.assigned {
		j := a.job
		if j.Fn.Shard() != sh {
			continue
		}
		if h != j.Seq || j.State != queue.Running || j.Worker != queue.Peer(s) {
			return fmt.Errorf("function %q: session %d holds job %s (as %d), which is %s on %v",
				j.Fn.Name, s.id, j.Handle, h, stateName(j.State), peerID(j.Worker))
		}
	}
	for j := range s.listening {
		if j.Fn.Shard() != sh {
			continue
		}
		if j.State == queue.Done || !slices.Contains(j.Listeners(), queue.Peer(s)) {
			return fmt.Errorf("function %q: session %d listens to job %s (%s), which does not list it",
				j.Fn.Name, s.id, j.Handle, stateName(j.State))
		}
	}
	if len(s.abilities.index) != len(s.abilities.list)-s.abilities.holes {
		return fmt.Errorf("session %d: %d registrations indexed, %d listed with %d holes", s.id,
			len(s.abilities.index), len(s.abilities.list), s.abilities.holes)
	}
	for _, f := range s.abilities.functions() {
		if r := s.abilities.list[s.abilities.index[f]]; r.fn != f {
			return fmt.Errorf("function %q: session %d indexes it at a slot holding another", f.Name, s.id)
		}
		if f.Shard() != sh {
			continue
		}
		if sh.Get([]byte(f.Name)) != f {
			return fmt.Errorf("function %q: session %d is registered for it but it is no longer registered", f.Name, s.id)
		}
		if n := countPeer(f.Workers, s); n != 1 {
			return fmt.Errorf("function %q: session %d is registered for it and among its workers %d times", f.Name, s.id, n)
		}
	}
	return nil
}

func countPeer(ps []queue.Peer, p queue.Peer) int {
	n := 0
	for _, q := range ps {
		if q == p {
			n++
		}
	}
	return n
}

func stateName(s queue.State) string {
	switch s {
	case queue.Queued:
		return "Queued"
	case queue.Delayed:
		return "Delayed"
	case queue.Running:
		return "Running"
	case queue.Done:
		return "Done"
	}
	return fmt.Sprintf("State(%d)", s)
}

func fnName(f *queue.Function) string {
	if f == nil {
		return "<nil>"
	}
	return f.Name
}

func handleOf(j *queue.Job) string {
	if j == nil {
		return "nothing"
	}
	return j.Handle
}

func peerID(p queue.Peer) string {
	if p == nil {
		return "no worker"
	}
	return fmt.Sprintf("session %d", p.PeerID())
}
