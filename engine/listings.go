package engine

import (
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/spur-gearman/spur/queue"
)

// Typed listings and operations for the doors without Gearman packets (the HTTP API, the
// CLI): what `workers`, `show jobs` and `drain worker` give as text, as Go values. Each
// takes the identity it is made for and leaves out what that identity may not read
// (ActStatus on the function), as the admin listings do for their connection.

// Allow asks the engine's authorizer whether who may do act on name (a function, or an
// admin command's first word in lower case), and logs a refusal as the Gearman doors do.
// Safe from any goroutine; name is not kept.
func (e *Engine) Allow(who *Identity, act Action, name []byte) error {
	if who == nil {
		return errNoIdentity
	}
	err := e.auth.Allow(who, act, name)
	if err != nil {
		e.logRefusal(0, who, act, name, err)
	}
	return err
}

// Permits is Allow without logging a refusal, for a door that asks what who may do
// before anything is asked for (the dashboard's buttons).
func (e *Engine) Permits(who *Identity, act Action, name string) bool {
	return who != nil && e.auth.Allow(who, act, viewBytes(name)) == nil
}

// Readable returns whether who may read the jobs of function fn (ActStatus), without
// logging a refusal: listings use it to leave functions out.
func (e *Engine) Readable(who *Identity, fn string) bool {
	return visible(e.readableFor(who), fn)
}

// readableFor is the filter of the listings made for who: nil (everything) under
// gearmand's rules, which let everyone read everything.
func (e *Engine) readableFor(who *Identity) func(fn string) bool {
	if _, ok := e.auth.(gearmandRules); ok {
		return nil
	}
	return func(fn string) bool { return e.auth.Allow(who, ActStatus, viewBytes(fn)) == nil }
}

// WorkerInfo is one connection as `workers` lists it, with the jobs it is running.
type WorkerInfo struct {
	ID        int    // the first column of `workers`: the connection's file descriptor; -1 for in-process ones
	IP        string // "-" when unknown
	Identity  string // the verified name of the peer (TLS client certificate); "" for none
	ClientID  string // SET_CLIENT_ID; "-" when not set
	Functions []string
	Sleeping  bool // sent PRE_SLEEP and has not asked for a job since
	Draining  bool // `drain worker` was given for it
	Running   []RunningJob
}

// RunningJob is a job a worker holds.
type RunningJob struct {
	Handle   string
	Function string
	Started  time.Time
}

// Workers lists the open connections in the order they connected, as `workers` does:
// functions newest registration first, those who may not read left out; running jobs by
// when they started. Connections that are neither workers nor running anything are listed
// too (gearmand's `workers` lists every connection).
func (e *Engine) Workers(who *Identity) []WorkerInfo {
	if who == nil {
		return nil
	}
	return e.workers(e.readableFor(who))
}

func (e *Engine) workers(readable func(string) bool) []WorkerInfo {
	sessions := e.sessionList()
	out := make([]WorkerInfo, 0, len(sessions))
	for _, s := range sessions {
		w := WorkerInfo{ID: s.fd, IP: s.who.IP, Identity: s.who.Name, Sleeping: s.sleeping.Load(), Draining: s.draining.Load()}
		s.mu.Lock()
		w.ClientID = s.clientID
		s.abilities.newestFirst(func(r registration) bool {
			if visible(readable, r.fn.Name) {
				w.Functions = append(w.Functions, r.fn.Name)
			}
			return true
		})
		for _, a := range s.assigned {
			if visible(readable, a.job.Fn.Name) {
				w.Running = append(w.Running, RunningJob{Handle: a.job.Handle, Function: a.job.Fn.Name, Started: time.Unix(0, a.started)})
			}
		}
		s.mu.Unlock()
		sort.Slice(w.Running, func(a, b int) bool { return w.Running[a].Started.Before(w.Running[b].Started) })
		out = append(out, w)
	}
	return out
}

// ErrUnknownWorker answers DrainWorker for an id no worker connection has.
var ErrUnknownWorker = errors.New("no worker connection has this id")

// DrainWorker is `drain worker ID`: the worker connection whose id (WorkerInfo.ID) this is
// gets no more jobs, finishes what it holds and is then disconnected.
func (e *Engine) DrainWorker(id int) error {
	for _, s := range e.sessionList() {
		if s.fd == id && s.drain() {
			return nil
		}
	}
	return ErrUnknownWorker
}

// JobState is where a listed job is.
type JobState uint8

const (
	JobQueued    JobState = iota // waiting for a worker
	JobScheduled                 // waiting for its run-at time (an epoch job, a retry's backoff)
	JobRunning                   // a worker holds it
)

func (s JobState) String() string {
	switch s {
	case JobQueued:
		return "queued"
	case JobScheduled:
		return "scheduled"
	case JobRunning:
		return "running"
	}
	return "unknown"
}

// JobInfo is one live job of a function (Jobs).
type JobInfo struct {
	Handle      string
	Function    string
	Unique      string
	Priority    queue.Priority
	State       JobState
	Background  bool
	RunAt       time.Time // zero unless it was given one
	Started     time.Time // when its worker got it; zero unless running
	Worker      int       // WorkerInfo.ID of its worker; -1 unless running
	Numerator   uint64    // its last WORK_STATUS
	Denominator uint64
	Clients     int // foreground clients waiting for it
}

// Jobs lists the live jobs of function fn, at most limit of them (0 = all): running ones
// first (by when they started), then queued ones in the order a worker would get them
// (priority, then submission), then scheduled ones by run-at time. nil when there is no
// such function or who may not read it. It holds fn's shard lock once, while it copies.
func (e *Engine) Jobs(who *Identity, fn string, limit int) []JobInfo {
	if who == nil || !visible(e.readableFor(who), fn) {
		return nil
	}
	type holder struct {
		fd      int
		started int64
	}
	held := map[*queue.Job]holder{}
	for _, s := range e.sessionList() {
		s.mu.Lock()
		for _, a := range s.assigned {
			if a.job.Fn.Name == fn {
				held[a.job] = holder{s.fd, a.started}
			}
		}
		s.mu.Unlock()
	}
	sh := e.reg.ShardFor(viewBytes(fn))
	sh.Lock()
	f := sh.Get(viewBytes(fn))
	if f == nil {
		sh.Unlock()
		return nil
	}
	info := func(j *queue.Job, st JobState) JobInfo {
		num, den := j.Status()
		ji := JobInfo{Handle: j.Handle, Function: f.Name, Unique: j.Unique, Priority: j.Priority, State: st,
			Background: j.Background, Worker: -1, Numerator: num, Denominator: den, Clients: len(j.Listeners())}
		if j.RunAt != 0 {
			ji.RunAt = time.UnixMilli(j.RunAt)
		}
		return ji
	}
	var running, queued, scheduled []JobInfo
	for j, h := range held {
		if j.Fn == f && j.State == queue.Running && !j.Ignore {
			ji := info(j, JobRunning)
			ji.Worker, ji.Started = h.fd, time.Unix(0, h.started)
			running = append(running, ji)
		}
	}
	f.EachWaiting(func(j *queue.Job, _ queue.Priority, delayed bool) {
		switch {
		case j.Ignore || j.State == queue.Done:
		case delayed:
			scheduled = append(scheduled, info(j, JobScheduled)) // in heap order: sorted below
		case limit <= 0 || len(queued) < limit:
			queued = append(queued, info(j, JobQueued))
		}
	})
	sh.Unlock()
	sort.Slice(running, func(a, b int) bool { return running[a].Started.Before(running[b].Started) })
	sort.Slice(scheduled, func(a, b int) bool { return scheduled[a].RunAt.Before(scheduled[b].RunAt) })
	out := append(append(append(make([]JobInfo, 0, len(running)+len(queued)+len(scheduled)), running...), queued...), scheduled...)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// workersText renders `workers`: FD IP CLIENT-ID [draining] : FN... per connection.
func (e *Engine) workersText(readable func(string) bool) string {
	var b []byte
	for _, w := range e.workers(readable) {
		b = strconv.AppendInt(b, int64(w.ID), 10)
		b = append(b, ' ')
		b = append(b, w.IP...)
		b = append(b, ' ')
		b = append(b, w.ClientID...)
		if w.Draining {
			b = append(b, " draining"...)
		}
		b = append(b, " :"...)
		for _, fn := range w.Functions {
			b = append(b, ' ')
			b = append(b, fn...)
		}
		b = append(b, '\n')
	}
	return string(append(b, ".\n"...))
}

// ResultsStored returns how many job results are kept.
func (e *Engine) ResultsStored() int {
	if e.resultLog != nil {
		n, _ := e.resultLog.ResultStats()
		return n
	}
	e.memResults.mu.Lock()
	defer e.memResults.mu.Unlock()
	return len(e.memResults.byHandle)
}
