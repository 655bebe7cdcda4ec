package engine

import (
	"errors"
	"sort"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// The engine's typed operations: what the binary dispatcher does for a packet, as plain Go
// methods that doors without Gearman packets (the HTTP API, the CLI) call as well.

// SubmitRequest is one job submission, whatever door it came through. Its slices may alias
// the caller's buffers: the engine copies what it keeps.
type SubmitRequest struct {
	Function []byte
	Unique   []byte // coalescing key: "" never coalesces, "-" coalesces on identical data
	Data     []byte
	Reducer  []byte // SUBMIT_REDUCE_JOB's reducer, or nil
	Priority queue.Priority
	// Background: nobody waits for the result; the job is durable before it is
	// acknowledged, and outlives every foreground client that joins it.
	Background bool
	RunAt      int64 // unix seconds; 0 = as soon as possible
	// received is when the request came (unix nanoseconds; 0 = now): the start of the job's
	// queue wait. The binary door gives the time its batch of packets was read.
	received int64
}

// Why a submit is refused.
var (
	ErrShuttingDown = errors.New(codec.ReplyShuttingDown.Text)
	ErrQueueFull    = errors.New(codec.ReplyQueueFull.Text)
)

// placement is what place did with a submit; its caller answers the submitter accordingly.
type placement uint8

const (
	refused       placement = iota // nothing changed; the error says why
	placedNew                      // a new job, queued; a background one needs its record written
	joined                         // coalesced onto a live job: answer at once
	joinedDurable                  // coalesced onto a background job whose record may still be on its way
	promoted                       // a background submit joined a foreground job, which now needs a record
	offered                        // a new background job for any node of a shared store: write it unheld (shared.go)
)

// place applies a submit to f's queues: it coalesces it onto a live job or queues a new one.
// Call with f's shard locked, after authorization.
func (e *Engine) place(f *queue.Function, req *SubmitRequest) (*queue.Job, placement, error) {
	if j := f.Coalesce(req.Unique, req.Data); j != nil && !j.Refused.Load() {
		switch {
		case !req.Background:
			return j, joined, nil
		case !j.Background:
			// A background submit joining a foreground job makes it a background job: it
			// must now outlive its foreground clients, and be durable before this
			// submitter is told it exists.
			if err := e.writable(); err != nil {
				return nil, refused, err
			}
			j.Background = true
			return j, promoted, nil
		case j.Persisted && e.store != nil:
			// Its record may still be on its way to disk: answer after it. No new write, so
			// a nearly full disk does not refuse this one.
			return j, joinedDurable, nil
		}
		return j, joined, nil
	}
	if limit := f.MaxQueue[req.Priority]; limit > 0 && f.Total >= limit {
		return nil, refused, ErrQueueFull
	}
	if req.Background {
		if err := e.writable(); err != nil {
			return nil, refused, err
		}
	}
	seq, err := e.nextSeq()
	if err != nil {
		return nil, refused, err
	}
	var hbuf [64]byte
	if e.offerable(f, req) {
		f.Stats.Submitted++
		return offerOf(f, e.appendHandle(hbuf[:0], seq), seq, req), offered, nil
	}
	j := queue.NewJob(e.appendHandle(hbuf[:0], seq), req.Unique, req.Reducer, req.Data)
	j.Seq, j.Priority, j.Background, j.RunAt = seq, req.Priority, req.Background, milliOf(req.RunAt)
	var t int64 // the clock is read only for a scheduled job: it was 8% of a submit burst
	if req.RunAt > 0 {
		t = now()
	}
	j.QueuedAt = req.received
	f.Enqueue(j, t)
	f.Stats.Submitted++
	return j, placedNew, nil
}

// lockAndPlace locks the shard of req's function, which the caller unlocks once it has
// answered, and places req there (see place).
func (e *Engine) lockAndPlace(req *SubmitRequest) (*queue.Function, *queue.Job, placement, error) {
	sh := e.reg.ShardFor(req.Function)
	sh.Lock()
	f := sh.Ensure(req.Function)
	j, how, err := e.place(f, req)
	return f, j, how, err
}

// writable reports why the store would refuse a new record now, or nil.
func (e *Engine) writable() error {
	if e.store == nil {
		return nil
	}
	return e.store.Writable()
}

// admit checks a typed submit before anything is made: its sizes, who may submit to the
// function (unless who is nil: the engine's own submit of a run of a schedule, authorized
// when the schedule was made), and that the engine is not shutting down.
func (e *Engine) admit(who *Identity, fn, unique, reducer []byte) error {
	if r := codec.CheckSubmit(fn, unique, reducer); r != nil {
		return errors.New(r.Text)
	}
	if who != nil {
		if err := e.auth.Allow(who, ActSubmit, fn); err != nil {
			return err
		}
	}
	if e.draining.Load() {
		return ErrShuttingDown
	}
	return nil
}

// SubmitBackground queues a background job for who and calls done once with its handle when
// it is durable (at once without a store), or with why it was refused. done runs on the
// calling goroutine or on the store's; it must not block.
func (e *Engine) SubmitBackground(req SubmitRequest, who *Identity, done func(handle string, err error)) {
	if who == nil {
		done("", errNoIdentity)
		return
	}
	e.submitBackground(req, who, done)
}

// errNoIdentity refuses a typed request made for nobody.
var errNoIdentity = errors.New("a request needs the identity it is made for")

// submitBackground is SubmitBackground; a nil who is the engine itself (see admit).
func (e *Engine) submitBackground(req SubmitRequest, who *Identity, done func(handle string, err error)) {
	req.Background = true
	if err := e.admit(who, req.Function, req.Unique, req.Reducer); err != nil {
		done("", err)
		return
	}
	f, j, how, err := e.lockAndPlace(&req)
	defer f.Shard().Unlock()
	switch how {
	case refused:
		done("", err)
	case joined:
		done(j.Handle, nil)
	case joinedDurable:
		r := &createdReply{e: e, j: j, done: done}
		if err := e.store.Barrier(r); err != nil {
			done("", err)
		}
	case offered:
		e.offer(nil, j, done)
	case promoted, placedNew:
		e.writeJob(j, &createdReply{e: e, j: j, own: true, done: done})
		if how == placedNew {
			e.jobQueued(f, j)
		}
	}
}

// JobStatus is what GET_STATUS and GET_STATUS_UNIQUE report of a job.
type JobStatus struct {
	Known       bool // the job is queued, scheduled or running
	Running     bool
	Numerator   uint64 // the last WORK_STATUS
	Denominator uint64
	Clients     int    // foreground clients waiting for it
	Function    string // "" when unknown
}

// Status returns the status of the job with this handle.
func (e *Engine) Status(handle []byte) JobStatus {
	j := e.reg.Lookup(handle)
	if j == nil {
		return JobStatus{}
	}
	sh := j.Fn.Shard()
	sh.Lock()
	defer sh.Unlock()
	return statusOf(j)
}

// StatusUnique returns the status of the newest live job with this unique id, in any
// function (as gearmand, which ignores the function); "" and "-" never match.
func (e *Engine) StatusUnique(unique []byte) JobStatus {
	j := e.reg.LookupUnique(unique)
	if j == nil {
		return JobStatus{}
	}
	sh := j.Fn.Shard()
	sh.Lock()
	defer sh.Unlock()
	if j.Ignore {
		return JobStatus{}
	}
	return statusOf(j)
}

// statusOf reads j's status. Call with its shard locked.
func statusOf(j *queue.Job) JobStatus {
	if j.State == queue.Done {
		return JobStatus{}
	}
	num, den := j.Status()
	return JobStatus{Known: true, Running: j.State == queue.Running, Numerator: num, Denominator: den,
		Clients: len(j.Listeners()), Function: j.Fn.Name}
}

// cancelled is the data of a cancelled background job's result.
var cancelled = []byte("cancelled")

// Cancel is `cancel job HANDLE`: foreground clients get WORK_FAIL, once; a background job's
// record is deleted. A queued job is dropped when a grab reaches it. A running one is freed
// at once: the protocol has no way to stop its worker, which is not told and works on, and
// whatever it sends about the job afterwards is dropped without a reply (as a timed-out
// job's is), because many worker libraries die on an ERROR they did not expect. It reports
// whether there was a live job to cancel.
func (e *Engine) Cancel(handle []byte) bool {
	j := e.reg.Lookup(handle)
	if j == nil {
		// A schedule's handle: the schedule is deleted.
		return e.DeleteSchedule(string(handle), func(error) {}) == nil
	}
	sh := j.Fn.Shard()
	sh.Lock()
	defer sh.Unlock()
	if j.State == queue.Done || j.Ignore {
		return false
	}
	e.log.Info("job cancelled", "handle", j.Handle, "function", j.Fn.Name, "running", j.State == queue.Running)
	fail := workFail([]byte(j.Handle))
	if j.State == queue.Running || j.State == queue.Delayed {
		e.conclude(j, wal.OutcomeFail, cancelled, fail)
		return true
	}
	e.releaseListeners(j, fail)
	t := time.Now().UnixNano()
	countEnd(j, wal.OutcomeFail, false, 0, t)
	j.Fn.Ignore(j)
	var res *wal.Result
	if j.Background && e.cfg.ResultTTL > 0 {
		r := e.resultOf(j, wal.OutcomeFail, cancelled, 0, t)
		res = &r
	}
	e.closeRecord(j, res, nil)
	return true
}

// ScheduledJob is a job waiting for the run-at time its SUBMIT_JOB_EPOCH gave.
type ScheduledJob struct {
	Handle   string
	Function string
	Unique   string
	RunAt    time.Time
	Priority queue.Priority
	Schedule string // a recurring schedule's cron spec (RunAt its next firing); "" for a job
	seq      uint64 // submission order, for jobs due at the same time
}

// Scheduled lists the jobs waiting for their run-at time (epoch jobs, retries waiting out
// their backoff) and the next firing of every active recurring schedule, soonest first
// (submission order within the same time). It visits the shards one at a time and sorts outside their locks.
func (e *Engine) Scheduled() []ScheduledJob {
	var jobs []ScheduledJob
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			f.EachDelayed(func(j *queue.Job) {
				jobs = append(jobs, ScheduledJob{j.Handle, f.Name, j.Unique, time.UnixMilli(j.RunAt), j.Priority, "", j.Seq})
			})
		})
	})
	for _, sc := range e.Schedules() {
		if !sc.Next.IsZero() {
			seq, _ := queue.HandleSeq([]byte(sc.Handle))
			jobs = append(jobs, ScheduledJob{sc.Handle, sc.Function, sc.Unique, sc.Next, sc.Priority, sc.Spec, seq})
		}
	}
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].RunAt.Equal(jobs[b].RunAt) {
			return jobs[a].RunAt.Before(jobs[b].RunAt)
		}
		return jobs[a].seq < jobs[b].seq
	})
	return jobs
}

// FunctionStat is what `status` and `prioritystatus` report of one function, and what the
// metrics and the HTTP API show of it.
type FunctionStat struct {
	Name      string
	Queued    [queue.NumPriorities]int // queued or waiting for their time, by priority
	Scheduled int                      // of those, waiting for their run-at time
	Running   int
	Total     int // queued, delayed and running
	Workers   int
	Paused    bool      // `pause`: its jobs are not handed out
	Limit     int       // `limit`: most of its jobs running at once; 0 = none
	Oldest    time.Time // when the longest-waiting ready job was queued; zero when none
	Stats     queue.Stats
}

// FunctionStats returns every function's counts, sorted by name. It visits the shards one
// at a time, each briefly (a scrape never holds two locks nor one for long).
func (e *Engine) FunctionStats() []FunctionStat {
	// Sized first, so that no shard lock is held while the slice grows (and copies).
	out := make([]FunctionStat, 0, e.Functions()+16)
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			st := FunctionStat{Name: f.Name, Queued: f.Queued, Scheduled: f.NumDelayed(), Running: f.Running,
				Total: f.Total, Workers: len(f.Workers), Paused: f.Paused, Limit: f.Limit, Stats: f.Stats}
			if t := f.OldestQueued(); t != 0 {
				st.Oldest = time.Unix(0, t)
			}
			out = append(out, st)
		})
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// TotalStats is the sum of every function's Stats since start, those deleted since
// included: server totals that never go backwards.
func (e *Engine) TotalStats() queue.Stats {
	var total queue.Stats
	e.reg.EachShard(func(sh *queue.Shard) {
		total.Add(sh.RetiredStats())
		sh.EachFunction(func(f *queue.Function) { total.Add(&f.Stats) })
	})
	return total
}
