package engine

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/cron"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Recurring schedules (SUBMIT_JOB_SCHED, admin `schedule add`): a cron Spec that queues an
// ordinary background job each time it comes due.
//
//   - A firing queues the schedule's function, data and priority with a new handle, under
//     the schedule's unique — or, when it has none, its own handle — so that a firing whose
//     previous run is still queued or running coalesces onto it: runs never overlap.
//   - Firing times come from the wall clock, in the schedule's time zone (the server's
//     when it names none), never from uptime: the timer is re-armed at least every
//     maxScheduleSleep, and a firing is decided by reading the wall clock again.
//   - Missed runs: a schedule that came due while the server was down runs once when it
//     starts (RestoreSchedules), not once per missed firing.
//   - A schedule is durable (the job log's 's' records) with its last run; a paused one
//     keeps its place but does not fire.
//
// scheduler.mu is taken with no other lock held, and no lock is taken under it: a firing
// collects what is due, releases it, then submits.

// maxScheduleSleep bounds the scheduler's sleep, so that a wall clock set forward (or back)
// is noticed within it.
const maxScheduleSleep = 30 * time.Second

// ErrNoSchedule answers an operation on a handle that names no schedule.
var ErrNoSchedule = errors.New("no such schedule")

type scheduler struct {
	// syncing is held across a whole syncSchedules: two of them interleaved (the periodic
	// read and the one on taking the lead) each found the schedules gone from byHandle,
	// took them for new and filed them both, so the due heap held a schedule twice and it
	// fired twice.
	syncing  sync.Mutex
	mu       sync.Mutex
	byHandle map[string]*schedule
	due      scheduleHeap // the active ones, soonest first
	timer    *time.Timer
	armedFor time.Time // when timer fires; zero when it is not armed
}

// schedule is one recurring job in memory.
type schedule struct {
	rec  wal.Schedule
	spec *cron.Spec
	loc  *time.Location
	next time.Time // the next firing; zero when paused or when the Spec never matches again
	pos  int       // index in scheduler.due, -1 when not in it
}

// ScheduleRequest asks for a recurring job.
type ScheduleRequest struct {
	Function []byte
	Unique   []byte // runs coalesce on it; "" = the schedule's own handle
	Data     []byte
	Priority queue.Priority
	Spec     *cron.Spec
	Zone     string // IANA time zone name; "" = the server's
}

// ScheduleInfo describes one schedule (Schedules).
type ScheduleInfo struct {
	Handle   string
	Function string
	Unique   string
	Spec     string // canonical 5-field form
	Zone     string // "" = the server's
	Priority queue.Priority
	Paused   bool
	Next     time.Time // zero when paused or never again
	LastRun  time.Time // zero when it never ran
}

// zoneOf loads a schedule's time zone; "" is the server's.
func zoneOf(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

// clock is the wall clock schedules run on (Config.Clock, or time.Now).
func (e *Engine) clock() time.Time {
	if e.cfg.Clock != nil {
		return e.cfg.Clock()
	}
	return time.Now()
}

// AddSchedule creates a recurring schedule for who and calls done once with its handle when
// it is durable, or with why it was refused. done runs on the calling goroutine or the
// store's; it must not block.
func (e *Engine) AddSchedule(req ScheduleRequest, who *Identity, done func(handle string, err error)) {
	if who == nil {
		done("", errNoIdentity)
		return
	}
	if err := e.admit(who, req.Function, req.Unique, nil); err != nil {
		done("", err)
		return
	}
	loc, err := zoneOf(req.Zone)
	if err != nil {
		done("", err)
		return
	}
	if err := e.writable(); err != nil {
		done("", err)
		return
	}
	seq, err := e.nextSeq()
	if err != nil {
		done("", err)
		return
	}
	t := e.clock()
	sc := &schedule{spec: req.Spec, loc: loc, pos: -1, rec: wal.Schedule{
		Seq:      seq,
		Handle:   string(e.appendHandle(nil, seq)),
		Function: string(req.Function),
		Unique:   string(req.Unique),
		Spec:     req.Spec.String(),
		Location: req.Zone,
		Priority: uint8(req.Priority),
		Created:  t.Unix(),
		Data:     append([]byte{}, req.Data...),
	}}
	sc.next = sc.spec.Next(t.In(loc))
	added := func(err error) {
		if err != nil {
			done("", err)
			return
		}
		// Logged before it is filed: from then on the scheduler's timer may change it.
		e.log.Info("schedule added", "handle", sc.rec.Handle, "function", sc.rec.Function, "spec", sc.rec.Spec, "zone", sc.rec.Location, "next", sc.next)
		handle := sc.rec.Handle
		e.sched.add(e, sc)
		done(handle, nil)
	}
	if e.store == nil {
		added(nil)
		return
	}
	var txn wal.Txn
	txn.PutSchedule(sc.rec)
	if err := e.store.Apply(&txn, ackFunc(added)); err != nil {
		done("", err)
	}
}

// RestoreSchedules brings back the schedules the store recovered; each that came due while
// the server was down (its next firing after its last run, or its creation, has passed)
// runs once now. Call before serving, after Restore.
func (e *Engine) RestoreSchedules(recs []wal.Schedule) error { return e.syncSchedules(recs, true) }

// syncSchedules makes recs the schedules in memory: the recovered ones at start, or a shared
// store's when this node takes its lead and then on each poll (schedules other nodes added,
// changed or deleted). A schedule known already keeps the later of the two last runs. With
// catchUp (at start, or on taking the lead from a node that died) each that came due and
// did not run since runs once now; never on a poll, which may read a last run that this
// node's own write has not yet reached.
func (e *Engine) syncSchedules(recs []wal.Schedule, catchUp bool) error {
	s := &e.sched
	s.syncing.Lock()
	defer s.syncing.Unlock()
	s.mu.Lock()
	t := e.clock()
	type armed struct { // a schedule in memory, as it stands now
		rec  wal.Schedule
		next time.Time
	}
	known := make(map[string]armed, len(s.byHandle))
	for h, sc := range s.byHandle {
		known[h] = armed{sc.rec, sc.next}
	}
	s.byHandle, s.due = nil, nil
	s.mu.Unlock()
	for _, r := range recs {
		old, isKnown := known[r.Handle]
		r.LastRun = max(r.LastRun, old.rec.LastRun)
		spec, err := cron.Parse(r.Spec)
		if err != nil {
			return fmt.Errorf("schedule %s: %w", r.Handle, err)
		}
		loc, err := zoneOf(r.Location)
		if err != nil {
			return fmt.Errorf("schedule %s: %w", r.Handle, err)
		}
		sc := &schedule{rec: r, spec: spec, loc: loc, pos: -1}
		first := spec.Next(time.Unix(max(r.LastRun, r.Created), 0).In(loc))
		missed := !r.Paused && !first.IsZero() && !first.After(t)
		switch {
		case r.Paused:
		case isKnown && !old.rec.Paused && old.rec.Spec == r.Spec && old.rec.Location == r.Location:
			// Known here, unchanged: its firing stays as armed. Computed again from t, a
			// firing whose timer runs late (t past it, not fired yet) would be skipped.
			sc.next = old.next
		default:
			// After its last run too: the schedule may have fired a moment ago elsewhere.
			sc.next = spec.Next(laterOf(t, time.Unix(r.LastRun, 0)).In(loc))
		}
		e.sched.add(e, sc)
		if missed && catchUp && e.leads() {
			e.log.Info("schedule missed a run while the server was down: it runs once now", "handle", r.Handle)
			e.fire(sc, t)
		}
	}
	return nil
}

// add files sc and re-arms the timer if sc comes first.
func (s *scheduler) add(e *Engine, sc *schedule) {
	s.mu.Lock()
	if s.byHandle == nil {
		s.byHandle = make(map[string]*schedule)
	}
	s.byHandle[sc.rec.Handle] = sc
	if !sc.next.IsZero() {
		heap.Push(&s.due, sc)
	}
	s.mu.Unlock()
	e.armScheduler()
}

// armScheduler sets the timer for the soonest firing (at most maxScheduleSleep away).
func (e *Engine) armScheduler() {
	s := &e.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.due) == 0 {
		return
	}
	at := s.due[0].next
	t := e.clock()
	if limit := t.Add(maxScheduleSleep); at.After(limit) {
		at = limit
	}
	if !s.armedFor.IsZero() && !s.armedFor.After(at) {
		return // already armed for then or sooner
	}
	s.armedFor = at
	d := at.Sub(t)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, e.onScheduleTimer)
		return
	}
	s.timer.Reset(d)
}

func (e *Engine) onScheduleTimer() {
	e.sched.mu.Lock()
	e.sched.armedFor = time.Time{}
	e.sched.mu.Unlock()
	e.fireDue(e.clock())
	e.armScheduler()
}

// fireDue fires every active schedule due at t, each once, and moves it to its next firing.
func (e *Engine) fireDue(t time.Time) {
	s := &e.sched
	var due []*schedule
	s.mu.Lock()
	for len(s.due) > 0 && !s.due[0].next.After(t) {
		sc := s.due[0]
		due = append(due, sc)
		sc.next = sc.spec.Next(t.In(sc.loc))
		if sc.next.IsZero() {
			heap.Pop(&s.due)
		} else {
			heap.Fix(&s.due, 0)
		}
	}
	s.mu.Unlock()
	if e.draining.Load() {
		return // shutting down: the missed run happens at the next start
	}
	if !e.leads() {
		return // another node of the shared store fires them
	}
	for _, sc := range due {
		e.fire(sc, t)
	}
}

// fire queues one run of sc and records it as its last run, durably.
func (e *Engine) fire(sc *schedule, t time.Time) {
	e.sched.mu.Lock()
	sc.rec.LastRun = t.Unix()
	rec := sc.rec
	e.sched.mu.Unlock()
	unique := rec.Unique
	if unique == "" {
		unique = rec.Handle
	}
	req := SubmitRequest{
		Function:   []byte(rec.Function),
		Unique:     []byte(unique),
		Data:       rec.Data,
		Priority:   queue.Priority(rec.Priority),
		Background: true,
	}
	e.submitBackground(req, nil, func(handle string, err error) { // authorized when it was made
		if err != nil {
			e.log.Error("a schedule's run could not be queued", "schedule", rec.Handle, "function", rec.Function, "error", err)
			return
		}
		e.log.Debug("schedule fired", "schedule", rec.Handle, "job", handle)
	})
	if e.store != nil {
		e.applyRecord(func(t *wal.Txn) { t.PutSchedule(rec) })
	}
}

// changeSchedule applies op ("pause", "resume", "run", "delete") to the schedule with this
// handle, durably; done is told when the change is committed.
func (e *Engine) changeSchedule(handle, op string, done func(error)) error {
	s := &e.sched
	s.mu.Lock()
	sc := s.byHandle[handle]
	if sc == nil {
		s.mu.Unlock()
		return ErrNoSchedule
	}
	t := e.clock()
	switch op {
	case "run":
		s.mu.Unlock()
		e.fire(sc, t)
		done(nil)
		return nil
	case "pause":
		sc.rec.Paused = true
		sc.next = time.Time{}
		if sc.pos >= 0 {
			heap.Remove(&s.due, sc.pos)
		}
	case "resume":
		if sc.rec.Paused {
			sc.rec.Paused = false
			sc.next = sc.spec.Next(t.In(sc.loc))
			if !sc.next.IsZero() {
				heap.Push(&s.due, sc)
			}
		}
	case "delete":
		delete(s.byHandle, handle)
		if sc.pos >= 0 {
			heap.Remove(&s.due, sc.pos)
		}
	default:
		s.mu.Unlock()
		return fmt.Errorf("unknown schedule operation %q", op)
	}
	rec := sc.rec
	s.mu.Unlock()
	e.log.Info("schedule changed", "handle", handle, "operation", op)
	if op == "resume" {
		e.armScheduler()
	}
	if e.store == nil {
		done(nil)
		return nil
	}
	var txn wal.Txn
	if op == "delete" {
		txn.DeleteSchedule(rec.Seq)
	} else {
		txn.PutSchedule(rec)
	}
	if err := e.store.Apply(&txn, ackFunc(done)); err != nil {
		done(err)
	}
	return nil
}

// PauseSchedule, ResumeSchedule, RunSchedule and DeleteSchedule change the schedule with
// this handle (ErrNoSchedule if there is none); done is told once the change is durable.
func (e *Engine) PauseSchedule(handle string, done func(error)) error {
	return e.changeSchedule(handle, "pause", done)
}

func (e *Engine) ResumeSchedule(handle string, done func(error)) error {
	return e.changeSchedule(handle, "resume", done)
}

func (e *Engine) RunSchedule(handle string, done func(error)) error {
	return e.changeSchedule(handle, "run", done)
}

func (e *Engine) DeleteSchedule(handle string, done func(error)) error {
	return e.changeSchedule(handle, "delete", done)
}

// Schedules lists the schedules, soonest next firing first (paused ones last), by handle
// number within.
func (e *Engine) Schedules() []ScheduleInfo {
	s := &e.sched
	s.mu.Lock()
	out := make([]ScheduleInfo, 0, len(s.byHandle))
	seqs := make(map[string]uint64, len(s.byHandle))
	for _, sc := range s.byHandle {
		r := &sc.rec
		info := ScheduleInfo{Handle: r.Handle, Function: r.Function, Unique: r.Unique, Spec: r.Spec,
			Zone: r.Location, Priority: queue.Priority(r.Priority), Paused: r.Paused, Next: sc.next}
		if r.LastRun != 0 {
			info.LastRun = time.Unix(r.LastRun, 0).In(sc.loc)
		}
		out = append(out, info)
		seqs[r.Handle] = r.Seq
	}
	s.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		na, nb := out[a].Next, out[b].Next
		if na.IsZero() != nb.IsZero() {
			return nb.IsZero()
		}
		if !na.Equal(nb) {
			return na.Before(nb)
		}
		return seqs[out[a].Handle] < seqs[out[b].Handle]
	})
	return out
}

// scheduleHeap orders active schedules by next firing.
type scheduleHeap []*schedule

func (h scheduleHeap) Len() int           { return len(h) }
func (h scheduleHeap) Less(a, b int) bool { return h[a].next.Before(h[b].next) }
func (h scheduleHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].pos, h[b].pos = a, b
}
func (h *scheduleHeap) Push(x any) { sc := x.(*schedule); sc.pos = len(*h); *h = append(*h, sc) }
func (h *scheduleHeap) Pop() any {
	old := *h
	sc := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	sc.pos = -1
	return sc
}

// adminSchedule handles `schedule add ...` and `schedule pause|resume|run|delete HANDLE`.
//
//	schedule add FN MIN HOUR DOM MON DOW [tz=ZONE] [unique=U] [priority=high|normal|low] [data=TEXT...]
//	schedule add FN @daily [options as above]
//
// The five fields are a standard cron expression (day-of-week 0 or 7 = Sunday); data= takes
// the rest of the line as it is, spaces included. The answer is "OK HANDLE\n".
func (s *Session) adminSchedule(line []byte, w *codec.AdminWords) {
	if w.N == 3 && !w.Is(1, "add") {
		op := strings.ToLower(string(w.Word(1)))
		r := &adminReply{s: s, ok: codec.AdminOK}
		s.holdReply(&r.slot)
		switch err := s.e.changeSchedule(string(w.Word(2)), op, r.Acked); {
		case errors.Is(err, ErrNoSchedule):
			r.ok = codec.AdminUnknownJob
			r.Acked(nil)
		case err != nil:
			r.ok = codec.AdminErr(codec.AdminCodeInvalidArguments, err.Error())
			r.Acked(nil)
		}
		return
	}
	if w.N < 4 || !w.Is(1, "add") {
		s.sendText(codec.AdminIncompleteArgs("schedule"))
		return
	}
	req, err := parseScheduleAdd(line, w)
	if err != nil {
		s.sendText(codec.AdminErr(codec.AdminCodeInvalidArguments, "schedule: "+err.Error()))
		return
	}
	r := &adminReply{s: s}
	s.holdReply(&r.slot)
	s.e.AddSchedule(req, &s.who, func(handle string, err error) {
		if err != nil {
			r.ok = codec.AdminErr(codec.CodeQueueError, err.Error())
		} else {
			r.ok = codec.AdminValue(handle)
		}
		r.Acked(nil)
	})
}

func parseScheduleAdd(line []byte, w *codec.AdminWords) (ScheduleRequest, error) {
	req := ScheduleRequest{Function: append([]byte{}, w.Word(2)...), Priority: queue.Normal}
	i := 3
	var err error
	if strings.HasPrefix(string(w.Word(3)), "@") {
		req.Spec, err = cron.Parse(string(w.Word(3)))
		i = 4
	} else {
		if w.N < 8 {
			return req, errors.New("want five cron fields (MIN HOUR DOM MON DOW) or a @macro")
		}
		fields := make([]string, 5)
		for k := range fields {
			fields[k] = string(w.Word(3 + k))
		}
		req.Spec, err = cron.Parse(strings.Join(fields, " "))
		i = 8
	}
	if err != nil {
		return req, err
	}
	for ; i < w.N; i++ {
		word := string(w.Word(i))
		key, val, ok := strings.Cut(word, "=")
		switch strings.ToLower(key) {
		case "tz":
			req.Zone = val
		case "unique":
			req.Unique = []byte(val)
		case "priority":
			switch strings.ToLower(val) {
			case "high":
				req.Priority = queue.High
			case "normal":
				req.Priority = queue.Normal
			case "low":
				req.Priority = queue.Low
			default:
				return req, fmt.Errorf("priority %q: want high, normal or low", val)
			}
		case "data":
			// The rest of the line as it is, spaces included: the words alias line.
			start := cap(line) - cap(w.Word(i)) + len("data=")
			req.Data = bytes.TrimRight(append([]byte{}, line[start:]...), "\r\n")
			i = w.N
		default:
			if !ok {
				return req, fmt.Errorf("%q: want tz=, unique=, priority= or data=", word)
			}
			return req, fmt.Errorf("unknown option %q", key)
		}
	}
	return req, nil
}

// schedulesText renders `show schedules`, soonest first:
//
//	HANDLE \t FUNCTION \t UNIQUE \t SPEC \t ZONE \t NEXT \t LAST \t PRIORITY \t STATE
//
// NEXT and LAST in RFC 3339 in the schedule's zone ("-" for none), ZONE "-" for the
// server's, STATE active or paused.
func (e *Engine) schedulesText(readable func(string) bool) string {
	var b strings.Builder
	for _, sc := range e.Schedules() {
		if !visible(readable, sc.Function) {
			continue
		}
		writeJobColumns(&b, sc.Handle, sc.Function, sc.Unique)
		b.WriteString(sc.Spec + "\t")
		if sc.Zone == "" {
			b.WriteByte('-')
		} else {
			b.WriteString(sc.Zone)
		}
		b.WriteString("\t" + wallTime(sc.Next) + "\t" + wallTime(sc.LastRun) + "\t" + sc.Priority.String() + "\t")
		if sc.Paused {
			b.WriteString("paused\n")
		} else {
			b.WriteString("active\n")
		}
	}
	b.WriteString(".\n")
	return b.String()
}

func wallTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// submitSched handles SUBMIT_JOB_SCHED: fn, unique, minute, hour, day of month, month, day
// of week (0 = Monday, as gearmand's PROTOCOL numbers it), data. It answers JOB_CREATED with
// the schedule's handle once the schedule is durable.
func (s *Session) submitSched(p *codec.Packet) {
	spec, err := cron.ParseFields(string(p.Args[2]), string(p.Args[3]), string(p.Args[4]), string(p.Args[5]), string(p.Args[6]), true)
	if err != nil {
		text := err.Error()
		s.send(func(b []byte) []byte { return codec.AppendError(b, codec.CodeInvalidArgument, text) })
		return
	}
	req := ScheduleRequest{Function: p.Args[0], Unique: p.Args[1], Data: p.Args[7], Priority: queue.Normal, Spec: spec}
	if !s.permitted(ActSubmit, req.Function) {
		return
	}
	r := &adminReply{s: s}
	s.holdReply(&r.slot)
	s.e.AddSchedule(req, &s.who, func(handle string, err error) {
		if err != nil {
			text := err.Error()
			s.fillReply(&r.slot, func(b []byte) []byte { return codec.AppendError(b, codec.CodeQueueError, text) })
			return
		}
		s.fillReply(&r.slot, func(b []byte) []byte {
			b = codec.AppendHeader(b, codec.JobCreated, len(handle))
			return append(b, handle...)
		})
	})
}

// ScheduleCount returns how many recurring schedules there are.
func (e *Engine) ScheduleCount() int {
	e.sched.mu.Lock()
	defer e.sched.mu.Unlock()
	return len(e.sched.byHandle)
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
