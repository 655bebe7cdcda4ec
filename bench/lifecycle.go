package main

// The job-lifecycle workloads: how punctually epoch jobs fire, what schedules and future epoch
// jobs cost in memory and at start-up, and what storing the results of background jobs costs.
//
//	epoch-accuracy   -workers workers register and sleep (PRE_SLEEP, or with -poll D they send
//	                 GRAB_JOB every D instead); then -n SUBMIT_JOB_EPOCH background jobs are
//	                 submitted, all due at the same whole second (at least -lead ahead). Each
//	                 JOB_ASSIGN's arrival minus that second is one sample; the run waits up to
//	                 -wait after the due second for all of them.
//	sched-fill       -n SUBMIT_JOB_SCHED schedules (minute 0-59 and an hour that is neither the
//	                 current nor the next local hour, so none fires during a run), pipelined;
//	                 server RSS before and after (-settle later), bytes per schedule
//	epoch-fill       -n SUBMIT_JOB_EPOCH background jobs due -ahead from now, pipelined; RSS
//	                 before and after, bytes per job
//	recovery         the server was exec'd at -start (unix ns): poll its port until it accepts,
//	                 then until "status" answers; report both times, the RSS, the jobs of -fn
//	                 and the schedules of -sched-fn it lists
//	submit-complete  -workers workers (each -grabs GRAB_JOBs, default 1) complete with a
//	                 -result-size result what -conns clients submit with SUBMIT_JOB_BG (-window
//	                 in flight each) until -n jobs are completed; the rate is completed jobs/s

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// AccuracyStats is epoch-accuracy's report. Times are milliseconds relative to the due second;
// a job assigned before it counts as 0 in the percentiles and as Early.
type AccuracyStats struct {
	DueUnix       int64   `json:"due_unix"`
	PollSeconds   float64 `json:"poll_seconds"` // 0: workers sleep with PRE_SLEEP and wait for NOOP
	WaitSeconds   float64 `json:"wait_seconds"`
	SubmitSeconds float64 `json:"submit_seconds"`
	SubmitLeadMs  float64 `json:"submit_lead_ms"` // how long before the due second the last submit was acknowledged
	Assigned      int64   `json:"assigned"`
	Early         int64   `json:"early"`
	FirstMs       float64 `json:"first_ms"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"` // the last job's assignment
	NeverWoken    bool    `json:"never_woken"`
}

// FillStats is the report of sched-fill and epoch-fill. Data-dir sizes are -1 without -datadir.
type FillStats struct {
	Kind          string  `json:"kind"` // "schedules" or "epoch jobs"
	RSSBeforeKB   int64   `json:"rss_before_kb"`
	RSSAfterKB    int64   `json:"rss_after_kb"`
	PerEntryBytes float64 `json:"rss_per_entry_bytes"`
	DataDirBefore int64   `json:"datadir_before_bytes"`
	DataDirAfter  int64   `json:"datadir_after_bytes"`
	Listed        int64   `json:"listed"`          // entries of -fn the server lists afterwards; -1 = not asked (-no-list)
	Fired         int64   `json:"fired,omitempty"` // sched-fill: jobs of -fn queued (a schedule fired)
	Hours         string  `json:"hours,omitempty"` // sched-fill: the hour values used
	AheadSeconds  float64 `json:"ahead_seconds,omitempty"`
}

// RecoveryStats is the recovery workload's report.
type RecoveryStats struct {
	AcceptSeconds float64 `json:"accept_seconds"` // exec to the first accepted connection
	StatusSeconds float64 `json:"status_seconds"` // exec to the first complete "status" answer
	RSSKB         int64   `json:"rss_kb"`
	HWMKB         int64   `json:"vm_hwm_kb"`
	Jobs          int64   `json:"jobs"`      // jobs of -fn in "status"
	Schedules     int64   `json:"schedules"` // schedules of -sched-fn in "show schedules"; -1 = not asked
}

// lifecycleWorkloads are the workloads of this file, for the flag defaults.
func isLifecycleWorkload(w string) bool {
	switch w {
	case "epoch-accuracy", "sched-fill", "epoch-fill", "recovery", "submit-complete":
		return true
	}
	return false
}

// dueSecond is the first whole second at least lead after now.
func dueSecond(now time.Time, lead time.Duration) time.Time {
	t := now.Add(lead)
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}

// accWorker is epoch-accuracy's worker: one GRAB_JOB at a time, PRE_SLEEP after NO_JOB (or a
// new GRAB_JOB -poll later), WORK_COMPLETE with no result at once. It runs its own loop, not
// drive, because polling needs reads bounded by the next poll.
type accWorker struct {
	r        *run
	fn       []byte
	poll     time.Duration
	due      *atomic.Int64 // unix ns of the due second; set once the workers are idle
	assigned *atomic.Int64
	target   int64
	idle     *atomic.Int64 // counts workers told NO_JOB once

	idleOnce bool
	hist     *histogram
	early    int64
	minNs    int64
	jobs     int64
	errs     errCount
}

func (a *accWorker) loop(c *conn) error {
	c.wbuf = codec.AppendRequest(c.wbuf, codec.CanDo, a.fn)
	c.wbuf = codec.AppendRequest(c.wbuf, codec.GrabJob)
	var nextPoll time.Time
	for {
		if a.r.stopped.Load() {
			return nil
		}
		if err := c.flush(); err != nil {
			return err
		}
		dl := a.r.deadline
		if !nextPoll.IsZero() && nextPoll.Before(dl) {
			dl = nextPoll
		}
		_ = c.nc.SetReadDeadline(dl)
		if a.r.stopped.Load() { // stop's wake-up may have come before this deadline
			return nil
		}
		if err := c.fill(); err != nil {
			if !isTimeout(err) {
				return err
			}
			if a.r.stopped.Load() || !time.Now().Before(a.r.deadline) {
				return nil
			}
			if !nextPoll.IsZero() && !time.Now().Before(nextPoll) {
				nextPoll = time.Time{}
				c.wbuf = codec.AppendRequest(c.wbuf, codec.GrabJob)
			}
			continue
		}
		for {
			ok, err := c.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			p := &c.pkt
			switch p.Type {
			case codec.JobAssign:
				d := time.Now().UnixNano() - a.due.Load()
				a.minNs = min(a.minNs, d)
				if d < 0 {
					a.early++
					d = 0
				}
				a.hist.record(d)
				a.jobs++
				c.wbuf = codec.AppendRequest(c.wbuf, codec.WorkComplete, p.Args[0], nil)
				c.wbuf = codec.AppendRequest(c.wbuf, codec.GrabJob)
				if a.assigned.Add(1) == a.target {
					a.r.stop()
				}
			case codec.NoJob:
				if a.poll > 0 {
					nextPoll = time.Now().Add(a.poll)
				} else {
					c.wbuf = codec.AppendRequest(c.wbuf, codec.PreSleep)
				}
				if !a.idleOnce {
					a.idleOnce = true
					a.idle.Add(1)
				}
			case codec.Noop:
				c.wbuf = codec.AppendRequest(c.wbuf, codec.GrabJob)
			case codec.Error:
				a.errs.addError(p)
			default:
				return fmt.Errorf("epoch-accuracy worker: unexpected %v", p.Type)
			}
		}
	}
}

func runEpochAccuracy(cfg *config, res *Result) error {
	res.Workers, res.Grabs = cfg.Workers, 1
	acc := &AccuracyStats{PollSeconds: cfg.Poll.Seconds(), WaitSeconds: cfg.Wait.Seconds()}
	res.Accuracy = acc
	wcs, err := dialAll(cfg.Addr, cfg.Workers)
	if err != nil {
		return err
	}
	defer closeAll(wcs)

	// The workers' run is capped by the worst case of every phase; a timer set once the due
	// second is known stops it -wait after that second.
	r := newRun(0, 15*time.Second+cfg.Timeout+cfg.Lead+cfg.Wait)
	defer r.end()
	var due, assigned, idle atomic.Int64
	due.Store(math.MaxInt64) // a job assigned before the submission counts as early
	ws := make([]*accWorker, len(wcs))
	errs := make([]error, len(wcs))
	var wg sync.WaitGroup
	for i, c := range wcs {
		ws[i] = &accWorker{r: r, fn: []byte(cfg.Fn), poll: cfg.Poll, due: &due, assigned: &assigned,
			target: cfg.N, idle: &idle, hist: newHistogram(), minNs: math.MaxInt64}
		r.add(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = ws[i].loop(c); errs[i] != nil {
				r.stop()
			}
		}()
	}
	werrc := make(chan error, 1)
	go func() { wg.Wait(); werrc <- errors.Join(errs...) }()
	abort := func(err error) error {
		r.stop()
		return errors.Join(err, <-werrc)
	}

	// Every worker registered and idle (asleep, or polling) before the first submit.
	limit := time.Now().Add(15 * time.Second)
	for idle.Load() < int64(len(ws)) {
		if time.Now().After(limit) || r.stopped.Load() {
			return abort(errors.New("workers did not go idle within 15s"))
		}
		time.Sleep(time.Millisecond)
	}

	dueAt := dueSecond(time.Now(), cfg.Lead)
	acc.DueUnix = dueAt.Unix()
	due.Store(dueAt.UnixNano())
	var waitOver atomic.Bool
	timer := time.AfterFunc(time.Until(dueAt)+cfg.Wait, func() {
		waitOver.Store(true)
		r.stop()
	})
	defer timer.Stop()

	m := startMeter(cfg)
	scfg := *cfg
	scfg.EpochAt = dueAt.Unix()
	submitStart := time.Now()
	out, _, timedOut, serr := submitBG(&scfg, cfg.N, false)
	submitEnd := time.Now()
	acc.SubmitSeconds = submitEnd.Sub(submitStart).Seconds()
	acc.SubmitLeadMs = float64(dueAt.Sub(submitEnd)) / 1e6
	if serr != nil || timedOut || out.acked != cfg.N {
		setErrors(res, &out.errs)
		return abort(errors.Join(fmt.Errorf("submit: %d of %d acknowledged (%d errors %v, timed out %v)",
			out.acked, cfg.N, out.errs.total, out.errs.codes, timedOut), serr))
	}
	werr := <-werrc
	m.stop()

	hist := newHistogram()
	minNs := int64(math.MaxInt64)
	var ec errCount
	for _, w := range ws {
		hist.merge(w.hist)
		acc.Early += w.early
		acc.Assigned += w.jobs
		minNs = min(minNs, w.minNs)
		ec.merge(&w.errs)
	}
	ec.merge(&out.errs)
	setErrors(res, &ec)
	if acc.Assigned > 0 {
		acc.FirstMs = float64(minNs) / 1e6
		acc.P50Ms = float64(hist.quantile(0.50)) / 1e6
		acc.P99Ms = float64(hist.quantile(0.99)) / 1e6
		acc.MaxMs = float64(hist.max) / 1e6
	}
	acc.NeverWoken = acc.Assigned == 0
	res.TimedOut = waitOver.Load() && acc.Assigned < cfg.N
	if ferr := m.fill(res, acc.Assigned); ferr != nil && werr == nil {
		werr = ferr
	}
	serverMem(res, cfg.PID)
	switch {
	case werr != nil:
		return werr
	case acc.SubmitLeadMs < 0:
		return fmt.Errorf("the last submit was acknowledged %.0f ms after the due second: raise -lead", -acc.SubmitLeadMs)
	case acc.Early > 0:
		return fmt.Errorf("%d jobs assigned before their due second (earliest %.1f ms before)", acc.Early, -acc.FirstMs)
	case acc.NeverWoken:
		return fmt.Errorf("never woken: none of %d jobs assigned within %v after the due second", cfg.N, cfg.Wait)
	case acc.Assigned < cfg.N:
		return fmt.Errorf("only %d of %d jobs assigned within %v after the due second", acc.Assigned, cfg.N, cfg.Wait)
	}
	return nil
}

// decimals are the field values "0" .. "59" of SUBMIT_JOB_SCHED's minute and hour.
var decimals = func() [60][]byte {
	var d [60][]byte
	for i := range d {
		d[i] = []byte(strconv.Itoa(i))
	}
	return d
}()

var star = []byte("*")

// schedFields makes a submitter's requests SUBMIT_JOB_SCHED (fn, unique "", minute, hour,
// "*", "*", "*", data), each with a pseudo-random minute and one of the quiet hours.
type schedFields struct {
	hours []int
	x     uint64 // xorshift state
}

func (f *schedFields) append(b, fn, payload []byte) []byte {
	f.x ^= f.x << 13
	f.x ^= f.x >> 7
	f.x ^= f.x << 17
	minute := decimals[f.x%60]
	hour := decimals[f.hours[(f.x>>8)%uint64(len(f.hours))]]
	return codec.AppendRequest(b, codec.SubmitJobSched, fn, nil, minute, hour, star, star, star, payload)
}

// quietHours are the hours a schedule may name without firing within the next hour: all but
// the current and the next hour of now (the server's zone must be the generator's: both
// run on this machine with the same TZ).
func quietHours(now time.Time) []int {
	h := now.Hour()
	var hs []int
	for i := 0; i < 24; i++ {
		if i != h && i != (h+1)%24 {
			hs = append(hs, i)
		}
	}
	return hs
}

// addSchedules pipelines n SUBMIT_JOB_SCHED over cfg.Conns connections, timed.
func addSchedules(cfg *config, n int64, hours []int) (submitResult, *meter, bool, error) {
	var out submitResult
	cs, err := dialAll(cfg.Addr, cfg.Conns)
	if err != nil {
		return out, nil, false, err
	}
	defer closeAll(cs)
	r := newRun(n, cfg.Timeout)
	defer r.end()
	ss := make([]*submitter, len(cs))
	hs := make([]handler, len(cs))
	payload := makePayload(cfg.Size, 4)
	for i := range cs {
		ss[i] = &submitter{r: r, fn: []byte(cfg.Fn), payload: payload, window: cfg.Window,
			sched: &schedFields{hours: hours, x: (uint64(time.Now().UnixNano()) + uint64(i)<<32) | 1}}
		hs[i] = ss[i]
	}
	m := startMeter(cfg)
	err = driveAll(cs, hs, r)
	m.stop()
	for _, s := range ss {
		out.acked += s.acked
		out.errs.merge(&s.errs)
	}
	return out, m, r.timedOut.Load(), err
}

// runFill is sched-fill and epoch-fill: RSS (and -datadir size) before, the timed fill, RSS
// after -settle, and what the server lists afterwards.
func runFill(cfg *config, res *Result) error {
	if cfg.PID <= 0 {
		return fmt.Errorf("%s needs -pid (the server's process id)", cfg.Workload)
	}
	st := &FillStats{Kind: "epoch jobs", DataDirBefore: -1, DataDirAfter: -1}
	res.Fill = st
	size := func() int64 {
		if cfg.DataDir == "" {
			return -1
		}
		n, err := dirSize(cfg.DataDir)
		if err != nil {
			return -1
		}
		return n
	}
	if total, _, err := adminStatus(cfg.Addr, cfg.Fn); err != nil {
		return fmt.Errorf("admin status: %w", err)
	} else if total != 0 {
		return fmt.Errorf("the server already holds %d jobs of %q: use a fresh server or another -fn", total, cfg.Fn)
	}
	var err error
	if _, st.RSSBeforeKB, err = procMem(cfg.PID); err != nil {
		return err
	}
	st.DataDirBefore = size()
	var out submitResult
	var m *meter
	var timedOut bool
	if cfg.Workload == "sched-fill" {
		st.Kind = "schedules"
		hours := quietHours(time.Now())
		hs := make([]string, len(hours))
		for i, h := range hours {
			hs[i] = strconv.Itoa(h)
		}
		st.Hours = strings.Join(hs, ",")
		out, m, timedOut, err = addSchedules(cfg, cfg.N, hours)
	} else {
		st.AheadSeconds = cfg.Ahead.Seconds()
		scfg := *cfg
		scfg.EpochAt = time.Now().Add(cfg.Ahead).Unix()
		out, m, timedOut, err = submitBG(&scfg, cfg.N, true)
	}
	res.TimedOut = timedOut
	setErrors(res, &out.errs)
	if m != nil {
		if ferr := m.fill(res, out.acked); ferr != nil && err == nil {
			err = ferr
		}
	}
	if err != nil {
		return err
	}
	if timedOut || out.acked != cfg.N {
		return fmt.Errorf("%d of %d acknowledged (%d errors %v, timed out %v)", out.acked, cfg.N, out.errs.total, out.errs.codes, timedOut)
	}
	time.Sleep(cfg.Settle)
	_, st.RSSAfterKB, _ = procMem(cfg.PID)
	st.DataDirAfter = size()
	if cfg.N > 0 {
		st.PerEntryBytes = float64(st.RSSAfterKB-st.RSSBeforeKB) * 1024 / float64(cfg.N)
	}
	serverMem(res, cfg.PID)
	jobs, _, err := adminStatus(cfg.Addr, cfg.Fn)
	if err != nil {
		return fmt.Errorf("admin status: %w", err)
	}
	if cfg.Workload == "sched-fill" {
		st.Fired = jobs
		if st.Fired != 0 {
			return fmt.Errorf("%d jobs of %q queued: a schedule fired during the run", st.Fired, cfg.Fn)
		}
		if cfg.NoList {
			st.Listed = -1
			return nil
		}
		if st.Listed, err = countSchedules(cfg.Addr, cfg.Fn); err != nil {
			return fmt.Errorf("show schedules: %w", err)
		}
	} else {
		st.Listed = jobs
	}
	if st.Listed != cfg.N {
		return fmt.Errorf("the server lists %d %s of %q, want %d", st.Listed, st.Kind, cfg.Fn, cfg.N)
	}
	return nil
}

// adminLines sends one admin command and returns the lines of its answer up to the final ".",
// or the one "ERR ..." line that answers a refused command.
func adminLines(addr, cmd string, timeout time.Duration) ([]string, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write([]byte(cmd + "\n")); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(nc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var lines []string
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "." {
			return lines, nil
		}
		if len(lines) == 0 && strings.HasPrefix(line, "ERR ") {
			return []string{line}, nil
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: connection closed before the final \".\"", cmd)
}

// countSchedules counts the schedules of fn in "show schedules" (HANDLE TAB FUNCTION TAB ...).
func countSchedules(addr, fn string) (int64, error) {
	lines, err := adminLines(addr, "show schedules", time.Minute)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range lines {
		if f := strings.SplitN(l, "\t", 3); len(f) >= 2 && f[1] == fn {
			n++
		}
	}
	return n, nil
}

// runRecovery waits for a server exec'd at -start to accept connections and answer "status".
func runRecovery(cfg *config, res *Result) error {
	if cfg.Start <= 0 {
		return errors.New("recovery needs -start (unix nanoseconds when the server was exec'd)")
	}
	rec := &RecoveryStats{Schedules: -1}
	res.Recovery = rec
	start := time.Unix(0, cfg.Start)
	deadline := time.Now().Add(cfg.Timeout)
	alive := func() bool {
		if cfg.PID <= 0 {
			return true
		}
		_, err := os.Stat(fmt.Sprintf("/proc/%d", cfg.PID))
		return err == nil
	}
	for {
		c, err := net.DialTimeout("tcp", cfg.Addr, 100*time.Millisecond)
		if err == nil {
			rec.AcceptSeconds = time.Since(start).Seconds()
			c.Close()
			break
		}
		if !alive() {
			return fmt.Errorf("server pid %d exited before accepting connections", cfg.PID)
		}
		if time.Now().After(deadline) {
			res.TimedOut = true
			return fmt.Errorf("%s not accepting within %v: %v", cfg.Addr, cfg.Timeout, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for {
		jobs, _, err := adminStatus(cfg.Addr, cfg.Fn)
		if err == nil {
			rec.StatusSeconds = time.Since(start).Seconds()
			rec.Jobs = jobs
			break
		}
		if time.Now().After(deadline) {
			res.TimedOut = true
			return fmt.Errorf("status: %w", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if cfg.PID > 0 {
		rec.HWMKB, rec.RSSKB, _ = procMem(cfg.PID)
	}
	if cfg.SchedFn != "" {
		n, err := countSchedules(cfg.Addr, cfg.SchedFn)
		if err != nil {
			return fmt.Errorf("show schedules: %w", err)
		}
		rec.Schedules = n
	}
	res.Done, res.Seconds = rec.Jobs, rec.StatusSeconds
	if cfg.N > 0 && rec.Jobs != cfg.N {
		return fmt.Errorf("status lists %d jobs of %q after the restart, want %d", rec.Jobs, cfg.Fn, cfg.N)
	}
	if cfg.Schedules > 0 && rec.Schedules != cfg.Schedules {
		return fmt.Errorf("show schedules lists %d schedules of %q after the restart, want %d", rec.Schedules, cfg.SchedFn, cfg.Schedules)
	}
	return nil
}

// runSubmitComplete: workers complete background jobs while clients submit them.
func runSubmitComplete(cfg *config, res *Result) error {
	res.Workers, res.Grabs, res.Split = cfg.Workers, cfg.Grabs, cfg.Split
	if total, _, err := adminStatus(cfg.Addr, cfg.Fn); err != nil {
		return fmt.Errorf("admin status: %w", err)
	} else if total != 0 {
		return fmt.Errorf("the server already holds %d jobs of %q: use a fresh server or another -fn", total, cfg.Fn)
	}
	wcs, ccs, err := dialPools(cfg)
	if err != nil {
		return err
	}
	defer closeAll(wcs)
	defer closeAll(ccs)
	fn := []byte(cfg.Fn)

	wr := newRun(0, cfg.Timeout+2*grace)
	defer wr.end()
	var completed atomic.Int64
	result := makePayload(cfg.ResultSize, 3)
	ws, waitWorkers, err := sleepingWorkers(wcs, wr, fn, cfg, false, func(w *worker) {
		w.result, w.completed, w.target = result, &completed, cfg.N
	})
	if err != nil {
		return err
	}

	cr := newRun(cfg.N, cfg.Timeout)
	defer cr.end()
	subs := make([]*submitter, len(ccs))
	chs := make([]handler, len(ccs))
	payload := makePayload(cfg.Size, 1)
	for i := range ccs {
		subs[i] = &submitter{r: cr, fn: fn, payload: payload, window: cfg.Window}
		chs[i] = subs[i]
	}
	m := startMeter(cfg)
	cerr := driveAll(ccs, chs, cr)
	var acked int64
	var errs errCount
	for _, s := range subs {
		acked += s.acked
		errs.merge(&s.errs)
	}
	if cerr != nil || acked < cfg.N {
		wr.stop() // the workers' target cannot be reached
	}
	werr := waitWorkers()
	m.stop()
	var done, extra int64
	for _, w := range ws {
		done += w.jobs
		extra += w.extra
		errs.merge(&w.errs)
	}
	res.TimedOut = cr.timedOut.Load() || wr.timedOut.Load()
	setErrors(res, &errs)
	err = errors.Join(cerr, werr)
	if ferr := m.fill(res, done-extra); ferr != nil && err == nil {
		err = ferr
	}
	serverMem(res, cfg.PID)
	if err != nil {
		return err
	}
	if errs.total > 0 {
		return fmt.Errorf("%d errors: %v", errs.total, errs.codes)
	}
	if !res.TimedOut && done != cfg.N {
		return fmt.Errorf("%d jobs completed, want %d", done, cfg.N)
	}
	if cfg.ShowResult {
		// The last job a worker completed: is its result stored?
		for _, w := range ws {
			if w.hlen == 0 {
				continue
			}
			lines, err := adminLines(cfg.Addr, "show result "+string(w.handle[:w.hlen]), 30*time.Second)
			if err != nil {
				return fmt.Errorf("show result: %w", err)
			}
			stored := len(lines) > 0 && !strings.HasPrefix(lines[0], "ERR ")
			res.ResultStored = &stored
			break
		}
	}
	return nil
}
