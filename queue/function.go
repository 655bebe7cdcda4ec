package queue

import (
	"fmt"
	"time"
	"unsafe"
)

// Function is everything the server knows about one function name: its queued jobs by
// priority, its scheduled jobs, its coalescing index and its registered workers. All fields
// are guarded by the owning shard's lock.
//
// A function that has nothing (see Idle) is deleted by Registry.SweepIdle after a grace
// period; the engine keeps a *Function only while the function has jobs (Job.Fn) or workers
// (registrations), which keep it from being idle.
type Function struct {
	Name  string
	shard *Shard

	ready   [NumPriorities]fifo
	delayed delayHeap
	byData  keyIndex // "-" jobs by their data; jobs with a unique id are in the shard's uniques

	// Workers holds each worker connection registered for the function once (CAN_DO twice
	// is one entry), in registration order until a removal moves the last entry into the
	// gap; WakeCursor rotates NOOPs across them (-w). workerSlot is each one's position.
	Workers    []Peer
	WakeCursor int
	workerSlot map[Peer]int

	// The engine's wake-up bookkeeping (engine/wake.go). Woken holds the workers sent a NOOP
	// for this function's jobs that have not answered it yet, with when (unix nanoseconds);
	// RemoveWorker drops a worker's entry. WakeCheck expires answers that do not come.
	// NoSleeper says the last wake-up found no worker to wake; a PRE_SLEEP clears it.
	Woken     map[Peer]int64
	WakeCheck *time.Timer
	NoSleeper bool

	// The function's own settings: while it has any (HasSettings) it is never swept.
	MaxQueue [NumPriorities]int // 0 = unlimited
	Declared bool               // made by `create function`
	Paused   bool               // `pause`: its jobs queue but are not handed out
	Limit    int                // `limit`: most of its jobs running at once; 0 = no limit
	Retry    RetryPolicy        // `retry`: failed background jobs run again

	Total   int                // live jobs: queued, delayed and running
	Running int                // jobs assigned to a worker
	Queued  [NumPriorities]int // queued or delayed jobs by priority
	Stats   Stats              // what became of its jobs, for metrics (stats.go)

	// WakeTimer fires when the earliest delayed job comes due; owned by the engine, stopped
	// when the function is swept.
	WakeTimer *time.Timer
	WakeAt    int64

	idleListed  bool  // in its shard's idle list
	idleSince   int64 // unix nanoseconds the sweeper first saw it idle; 0 = not yet
	roomyListed bool  // in its shard's roomy list: a coalescing index to shrink
}

// RetryPolicy makes a failed background job run again after a backoff instead of ending:
// up to Attempts assignments in all, the n-th retry Base·2^(n−1) later, capped at Max. The
// zero value is no policy (gearmand's behaviour).
type RetryPolicy struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

// Shard returns the shard whose lock guards f.
func (f *Function) Shard() *Shard { return f.shard }

// Coalesce returns the live job a submission with unique and data joins, or nil when it
// makes a new job: an empty unique never coalesces, "-" coalesces on identical non-empty data,
// anything else on the same unique.
func (f *Function) Coalesce(unique, data []byte) *Job {
	// Views, not copies: the key is only compared and hashed.
	x, key := f.keyIndexFor(unsafe.String(unsafe.SliceData(unique), len(unique)), unsafe.String(unsafe.SliceData(data), len(data)))
	if x == nil || x.len() == 0 {
		return nil
	}
	return x.find(f.KeyHash(key), key, f)
}

// keyIndexFor returns the coalescing index a job with this unique id and data belongs in,
// and its key there; nil when such a job never coalesces.
func (f *Function) keyIndexFor(unique, data string) (*keyIndex, string) {
	switch {
	case unique == "":
		return nil, ""
	case unique == "-":
		if data == "" {
			return nil, ""
		}
		return &f.byData, data
	}
	return &f.shard.uniques, unique
}

// jobKey is keyIndexFor for a job: its data is viewed, not copied (it is immutable while the
// job is indexed).
func (f *Function) jobKey(j *Job) (*keyIndex, string) {
	return f.keyIndexFor(j.Unique, unsafe.String(unsafe.SliceData(j.Data), len(j.Data)))
}

// Enqueue adds a new job, ready or scheduled, and indexes its handle and unique id. It sets
// the job's QueuedAt to now unless the caller did (with a time it had at hand).
func (f *Function) Enqueue(j *Job, now int64) {
	j.Fn = f
	f.shard.reg.addJob(j)
	f.Total++
	f.Queued[j.Priority]++
	if j.QueuedAt == 0 {
		j.QueuedAt = time.Now().UnixNano()
	}
	f.place(j, now)
	if x, key := f.jobKey(j); x != nil {
		x.add(f.KeyHash(key), j)
		j.keyed = true
	}
}

// place puts a queued job at the back of its FIFO, or in the delay heap until it is due.
func (f *Function) place(j *Job, now int64) {
	if j.RunAt > now {
		j.State = Delayed
		f.delayed.push(j)
		return
	}
	j.State = Queued
	f.ready[j.Priority].push(j)
}

// PromoteDue moves delayed jobs whose time has come to the back of their FIFOs and reports
// how many moved.
func (f *Function) PromoteDue(now int64) int {
	n := 0
	for j := f.delayed.peek(); j != nil && j.RunAt <= now; j = f.delayed.peek() {
		f.delayed.remove(0)
		j.State = Queued
		f.ready[j.Priority].push(j)
		n++
	}
	return n
}

// NextDue returns the run-at time of the earliest delayed job.
func (f *Function) NextDue() (int64, bool) {
	if j := f.delayed.peek(); j != nil {
		return j.RunAt, true
	}
	return 0, false
}

// Pop removes the best ready job (high before normal before low, FIFO within) and returns it,
// ignored jobs included: the caller reaps those with Forget. Due delayed jobs are promoted
// first. The job stays counted in Total until Start or Forget.
func (f *Function) Pop(now int64) *Job {
	f.PromoteDue(now)
	for p := range f.ready {
		if j := f.ready[p].pop(); j != nil {
			f.Queued[p]--
			return j
		}
	}
	return nil
}

// NumDelayed is how many jobs wait in the delay heap for their run-at time.
func (f *Function) NumDelayed() int { return len(f.delayed) }

// HasDelayed reports whether f has scheduled jobs, that is, whether Pop and HasReady need
// the current time.
func (f *Function) HasDelayed() bool { return len(f.delayed) > 0 }

// HasReady reports whether a job is ready to run now.
func (f *Function) HasReady(now int64) bool {
	if j := f.delayed.peek(); j != nil && j.RunAt <= now {
		return true
	}
	for p := range f.ready {
		if f.ready[p].len() > 0 {
			return true
		}
	}
	return false
}

// Startable reports whether one more of the function's jobs may be handed out now: it is
// not paused and under its concurrency limit.
func (f *Function) Startable() bool {
	return !f.Paused && (f.Limit == 0 || f.Running < f.Limit)
}

// Ready returns how many jobs wait in the ready FIFOs (ignored ones included, which Pop
// reaps); scheduled jobs count once PromoteDue has moved them there.
func (f *Function) Ready() int {
	n := 0
	for p := range f.ready {
		n += f.ready[p].len()
	}
	return n
}

// Start marks a popped job as assigned to worker at t (unix nanoseconds), and counts how
// long it waited: since it was queued, or since it came due if it waited for a run-at time.
func (f *Function) Start(j *Job, worker Peer, t int64) {
	j.State = Running
	j.Worker = worker
	f.Running++
	f.Stats.QueueWait.Observe(time.Duration(t - max(j.QueuedAt, j.RunAt*int64(time.Millisecond))))
}

// Requeue puts a running job back at the back of its FIFO (or into the delay heap), as
// gearmand does when its worker goes away.
func (f *Function) Requeue(j *Job, now int64) {
	f.Running--
	j.Worker = nil
	j.SetStatus(0, 0)
	f.Queued[j.Priority]++
	j.QueuedAt = time.Now().UnixNano()
	f.place(j, now)
}

// Finish removes a running or delayed job for good (completed, failed, cancelled). A job
// still in a FIFO cannot be finished directly: Ignore it and let Pop hand it to Forget.
func (f *Function) Finish(j *Job) {
	switch j.State {
	case Running:
		f.Running--
		j.Worker = nil
	case Delayed:
		f.delayed.remove(int(j.heapIndex))
		f.Queued[j.Priority]--
	case Queued:
		panic("queue: Finish of a job still in a FIFO")
	case Done:
		return
	}
	f.Forget(j)
}

// Forget drops a job that is no longer in any FIFO or heap: it leaves the counts, the unique
// index and the handle index, and its timeout timer is stopped.
func (f *Function) Forget(j *Job) {
	if j.State == Done {
		return
	}
	j.State = Done
	f.Total--
	f.unindex(j)
	f.shard.reg.removeJob(j)
	j.StopTimer()
	j.releaseData() // after unindex: the coalescing index may key on the data
	if f.Total == 0 {
		f.noteIfIdle()
	}
}

// Ignore flags a job as cancelled or abandoned: it stops coalescing at once, a delayed one is
// removed at once, a queued one when a Pop reaches it, a running one when its worker reports.
// It reports whether the job is gone already.
func (f *Function) Ignore(j *Job) bool {
	j.Ignore = true
	f.unindex(j)
	if j.State == Delayed {
		f.Finish(j)
		return true
	}
	return j.State == Done
}

// unindex takes j out of its coalescing index, if it is in one.
func (f *Function) unindex(j *Job) {
	if !j.keyed {
		return
	}
	j.keyed = false
	x, key := f.jobKey(j)
	x.remove(f.KeyHash(key), j)
	if x == &f.byData && !f.roomyListed && x.roomy() {
		f.roomyListed = true
		f.shard.roomy = append(f.shard.roomy, f)
	}
}

// EachDelayed calls fn for every job waiting in the delay heap for its run-at time, in no
// particular order.
func (f *Function) EachDelayed(fn func(*Job)) {
	for _, j := range f.delayed {
		fn(j)
	}
}

// EachQueued calls fn for every live job that is waiting (ready FIFOs in priority order, then the
// delay heap). Running jobs are not included.
func (f *Function) EachQueued(fn func(*Job)) {
	for p := range f.ready {
		f.ready[p].each(fn)
	}
	for _, j := range f.delayed {
		fn(j)
	}
}

// AddWorker adds w to the function's workers unless it is there already, and reports
// whether it was new. O(1).
func (f *Function) AddWorker(w Peer) bool {
	if _, ok := f.workerSlot[w]; ok {
		return false
	}
	if f.workerSlot == nil {
		f.workerSlot = make(map[Peer]int)
	}
	f.workerSlot[w] = len(f.Workers)
	f.Workers = append(f.Workers, w)
	return true
}

// HasWorker reports whether w is registered for the function.
func (f *Function) HasWorker(w Peer) bool {
	_, ok := f.workerSlot[w]
	return ok
}

// RemoveWorker removes w from the function's workers and reports whether it was there. The
// last worker takes w's place, and WakeCursor follows it there, so the rotation goes on
// where it was. O(1).
func (f *Function) RemoveWorker(w Peer) bool {
	i, ok := f.workerSlot[w]
	if !ok {
		return false
	}
	delete(f.workerSlot, w)
	delete(f.Woken, w)
	last := len(f.Workers) - 1
	if i != last {
		moved := f.Workers[last]
		f.Workers[i] = moved
		f.workerSlot[moved] = i
	}
	f.Workers[last] = nil
	f.Workers = f.Workers[:last]
	if f.WakeCursor == last {
		f.WakeCursor = i
	}
	if f.WakeCursor >= len(f.Workers) {
		f.WakeCursor = 0
	}
	if last == 0 {
		// The last worker left: drop the set's storage, which a map keeps at its peak.
		f.Workers, f.workerSlot, f.Woken = nil, nil, nil
		f.noteIfIdle()
	}
	return true
}

// The accessors below are read-only views for invariant checks (engine.CheckInvariants,
// tests, fuzzing). They walk every job of the function, so keep them off hot paths. Call them
// with f's shard locked.

// EachWaiting calls fn for every job in f's ready FIFOs (delayed false, p the FIFO's
// priority), in priority then queue order, and then for every job in its delay heap
// (delayed true, p the job's priority), in heap order.
func (f *Function) EachWaiting(fn func(j *Job, p Priority, delayed bool)) {
	for p := range f.ready {
		f.ready[p].each(func(j *Job) { fn(j, Priority(p), false) })
	}
	for _, j := range f.delayed {
		fn(j, j.Priority, true)
	}
}

// CheckHeap reports the first broken delay-heap invariant: a job whose stored heap index is
// not its position, or that runs before its parent (by RunAt, then Seq).
func (f *Function) CheckHeap() error {
	for i, j := range f.delayed {
		if int(j.heapIndex) != i {
			return fmt.Errorf("delay heap slot %d holds %s whose stored index is %d", i, j.Handle, j.heapIndex)
		}
		if i > 0 && f.delayed.less(i, (i-1)/2) {
			return fmt.Errorf("delay heap order broken: %s at slot %d runs before its parent %s", j.Handle, i, f.delayed[(i-1)/2].Handle)
		}
	}
	return nil
}

// EachUnique calls fn for every entry of f's coalescing index: the hash the job is filed
// under, and whether it is filed by its data ("-" jobs) rather than its unique id.
func (f *Function) EachUnique(fn func(filedUnder uint64, byData bool, j *Job)) {
	f.shard.uniques.each(func(h uint64, j *Job) {
		if j.Fn == f {
			fn(h, false, j)
		}
	})
	f.byData.each(func(h uint64, j *Job) { fn(h, true, j) })
}
