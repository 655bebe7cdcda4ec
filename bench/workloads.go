package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// config is the parsed command line of one workload run.
type config struct {
	Workload string
	Addr     string
	N        int64
	Conns    int
	Window   int
	Workers  int
	Grabs    int
	Split    bool // workers write each packet on its own, as libgearman does
	Size     int
	Fn       string
	Unique   bool
	Queued   bool // drain: skip the fill
	Timeout  time.Duration
	Idle     int
	PID      int
	Perf     string // perf(1) to count the server's system calls with; "" = do not count
	DataDir  string
	Settle   time.Duration
	Label    string
	Case     string

	// The lifecycle workloads (lifecycle.go).
	Lead       time.Duration // epoch-accuracy: the due second is at least this far ahead
	Poll       time.Duration // epoch-accuracy: idle workers GRAB_JOB this often instead of PRE_SLEEP (0 = sleep)
	Wait       time.Duration // epoch-accuracy: how long after the due second to wait for every job
	Ahead      time.Duration // epoch-fill: the jobs' run time from now
	Start      int64         // recovery: unix ns at which the server was exec'd
	SchedFn    string        // recovery: count this function's schedules
	Schedules  int64         // recovery: want this many schedules of SchedFn (0 = do not check)
	ResultSize int           // submit-complete: bytes of each WORK_COMPLETE's result
	ShowResult bool          // submit-complete: ask "show result" for a completed job afterwards
	NoList     bool          // sched-fill: do not count the schedules with "show schedules" afterwards
	EpochAt    int64         // submitters send SUBMIT_JOB_EPOCH at this unix time (0 = SUBMIT_JOB_BG)

	CPUProfile string
}

// Result is what one run reports; with -json it is printed as one JSON object.
type Result struct {
	Workload   string           `json:"workload"`
	Case       string           `json:"case,omitempty"`
	Label      string           `json:"label,omitempty"`
	Addr       string           `json:"addr"`
	N          int64            `json:"n"`
	Conns      int              `json:"conns"`
	Workers    int              `json:"workers,omitempty"`
	Window     int              `json:"window"`
	Grabs      int              `json:"grabs,omitempty"`
	Split      bool             `json:"split_writes,omitempty"`
	Size       int              `json:"size"`
	Unique     bool             `json:"unique,omitempty"`
	Idle       int              `json:"idle,omitempty"`
	Done       int64            `json:"done"`
	Seconds    float64          `json:"seconds"`
	Rate       float64          `json:"jobs_per_sec"`
	Errors     int64            `json:"errors"`
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"`
	TimedOut   bool             `json:"timed_out,omitempty"`
	OK         bool             `json:"ok"`
	Failure    string           `json:"failure,omitempty"`
	Latency    *Latency         `json:"latency_us,omitempty"`
	Server     *ServerStats     `json:"server,omitempty"`
	ClientCPU  float64          `json:"client_cpu_us_per_job"`
	Memory     *MemStats        `json:"memory,omitempty"`
	Accuracy   *AccuracyStats   `json:"accuracy,omitempty"`
	Fill       *FillStats       `json:"fill,omitempty"`
	Recovery   *RecoveryStats   `json:"recovery,omitempty"`
	// ResultStored: submit-complete with -show-result: whether the server kept the result of
	// a completed job.
	ResultStored *bool `json:"result_stored,omitempty"`
}

// Latency percentiles in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// ServerStats is the server process's accounting over the timed phase (-pid). The system
// call fields are absent (nil), not zero, when perf could not count them.
type ServerStats struct {
	PID            int      `json:"pid"`
	CPUSeconds     float64  `json:"cpu_seconds"`
	CPUPerJob      float64  `json:"cpu_us_per_job"`
	Syscalls       *int64   `json:"syscalls,omitempty"`
	SyscallsPerJob *float64 `json:"syscalls_per_job,omitempty"`
	VmHWMKB        int64    `json:"vm_hwm_kb"`
	VmRSSKB        int64    `json:"vm_rss_kb"`
}

// MemStats is the memory workload's report. Data-dir sizes are -1 without -datadir.
type MemStats struct {
	RSSBeforeKB        int64   `json:"rss_before_kb"`
	RSSAfterFillKB     int64   `json:"rss_after_fill_kb"`
	RSSPerJobBytes     float64 `json:"rss_per_job_bytes"`
	DataDirBefore      int64   `json:"datadir_before_bytes"`
	DataDirAfterFill   int64   `json:"datadir_after_fill_bytes"`
	FillRate           float64 `json:"fill_jobs_per_sec"`
	RSSAfterDrainKB    int64   `json:"rss_after_drain_kb"`
	DataDirAfterDrain  int64   `json:"datadir_after_drain_bytes"`
	SettleSeconds      float64 `json:"settle_seconds"`
	RSSAfterSettleKB   int64   `json:"rss_after_settle_kb"`
	DataDirAfterSettle int64   `json:"datadir_after_settle_bytes"`
	VmHWMKB            int64   `json:"vm_hwm_kb"`
}

// meter measures one timed phase: wall time, the server's CPU and system calls (with -pid)
// and our own CPU.
type meter struct {
	pid        int
	start      time.Time
	srvCPU     float64
	cliCPU     float64
	srvErr     error
	elapsed    time.Duration
	srvCPUUsed float64
	cliCPUUsed float64

	counter  *syscallCounter // nil when not counting
	syscalls int64
	sysErr   error // why syscalls were not counted (perf missing or failed)
}

// startMeter starts measuring; with cfg.PID and cfg.Perf it first waits until perf counts the
// server's system calls.
func startMeter(cfg *config) *meter {
	m := &meter{pid: cfg.PID}
	if m.pid > 0 {
		if cfg.Perf == "" {
			m.sysErr = errors.New("-perf is empty")
		} else {
			m.counter, m.sysErr = startSyscallCounter(cfg.Perf, m.pid)
		}
		m.srvCPU, m.srvErr = procCPU(m.pid)
	}
	m.cliCPU = selfCPU()
	m.start = time.Now()
	return m
}

func (m *meter) stop() {
	m.elapsed = time.Since(m.start)
	m.cliCPUUsed = selfCPU() - m.cliCPU
	if m.pid > 0 && m.srvErr == nil {
		var after float64
		after, m.srvErr = procCPU(m.pid)
		m.srvCPUUsed = after - m.srvCPU
	}
	if m.counter != nil {
		m.syscalls, m.sysErr = m.counter.stop()
		m.counter = nil
	}
}

// fill records the phase's numbers into res for jobs units of work.
func (m *meter) fill(res *Result, jobs int64) error {
	res.Done = jobs
	res.Seconds = m.elapsed.Seconds()
	if res.Seconds > 0 {
		res.Rate = float64(jobs) / res.Seconds
	}
	if jobs > 0 {
		res.ClientCPU = m.cliCPUUsed * 1e6 / float64(jobs)
	}
	if m.pid <= 0 {
		return nil
	}
	if m.srvErr != nil {
		return fmt.Errorf("server accounting for pid %d: %w", m.pid, m.srvErr)
	}
	s := &ServerStats{PID: m.pid, CPUSeconds: m.srvCPUUsed}
	if jobs > 0 {
		s.CPUPerJob = m.srvCPUUsed * 1e6 / float64(jobs)
	}
	if m.sysErr != nil {
		warnNoSyscalls(m.sysErr)
	} else {
		n := m.syscalls
		s.Syscalls = &n
		if jobs > 0 {
			per := float64(n) / float64(jobs)
			s.SyscallsPerJob = &per
		}
	}
	res.Server = s
	return nil
}

// serverMem fills the server's VmHWM/VmRSS into res (after the run).
func serverMem(res *Result, pid int) {
	if pid <= 0 || res.Server == nil {
		return
	}
	res.Server.VmHWMKB, res.Server.VmRSSKB, _ = procMem(pid)
}

// dialAll opens n connections.
func dialAll(addrs string, n int) ([]*conn, error) {
	cs := make([]*conn, 0, n)
	list := strings.Split(addrs, ",") // the nodes of a cluster: connections go round them
	for i := 0; i < n; i++ {
		c, err := dial(list[i%len(list)])
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeAll(cs []*conn) {
	for _, c := range cs {
		c.close()
	}
}

// driveAll runs every handler on its connection in its own goroutine and waits for them.
func driveAll(cs []*conn, hs []handler, r *run) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i := range cs {
		r.add(cs[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = drive(cs[i], hs[i], r)
			if errs[i] != nil {
				r.stop() // a broken connection ends the phase for everyone
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// submitResult is what a batch of submitters achieved.
type submitResult struct {
	acked int64
	errs  errCount
}

// submitBG pipelines n SUBMIT_JOB_BG over conns connections. m, if not nil, is started after
// the connections are open and stopped when the last acknowledgement has arrived.
func submitBG(cfg *config, n int64, timed bool) (submitResult, *meter, bool, error) {
	var out submitResult
	cs, err := dialAll(cfg.Addr, cfg.Conns)
	if err != nil {
		return out, nil, false, err
	}
	defer closeAll(cs)
	fn, payload := []byte(cfg.Fn), makePayload(cfg.Size, 1)
	r := newRun(n, cfg.Timeout)
	defer r.end()
	subs := make([]*submitter, len(cs))
	hs := make([]handler, len(cs))
	run36 := strconv.FormatInt(time.Now().UnixNano(), 36)
	var when []byte
	if cfg.EpochAt != 0 {
		when = strconv.AppendInt(nil, cfg.EpochAt, 10)
	}
	for i := range cs {
		subs[i] = &submitter{r: r, fn: fn, payload: payload, window: cfg.Window, when: when}
		if cfg.Unique {
			subs[i].withUnique(fmt.Sprintf("%s-%d-", run36, i))
		}
		hs[i] = subs[i]
	}
	var m *meter
	if timed {
		m = startMeter(cfg)
	}
	err = driveAll(cs, hs, r)
	if m != nil {
		m.stop()
	}
	for _, s := range subs {
		out.acked += s.acked
		out.errs.merge(&s.errs)
	}
	return out, m, r.timedOut.Load(), err
}

// drainResult is what a batch of workers achieved.
type drainResult struct {
	completed int64
	extra     int64
	errs      errCount
}

// drainJobs runs cfg.Workers workers with cfg.Grabs grabs each until n jobs are completed and
// every worker has fenced.
func drainJobs(cfg *config, n int64) (drainResult, *meter, bool, error) {
	var out drainResult
	cs, err := dialAll(cfg.Addr, cfg.Workers)
	if err != nil {
		return out, nil, false, err
	}
	defer closeAll(cs)
	r := newRun(0, cfg.Timeout)
	defer r.end()
	var completed atomic.Int64
	ws := make([]*worker, len(cs))
	hs := make([]handler, len(cs))
	for i, c := range cs {
		ws[i] = newWorker(r, []byte(cfg.Fn), cfg.Grabs, false)
		ws[i].split = cfg.Split
		ws[i].completed, ws[i].target = &completed, n
		ws[i].register(c)
		hs[i] = ws[i]
	}
	if n == 0 {
		r.stop()
	}
	m := startMeter(cfg)
	err = driveAll(cs, hs, r)
	m.stop()
	for _, w := range ws {
		out.completed += w.jobs
		out.extra += w.extra
		out.errs.merge(&w.errs)
	}
	return out, m, r.timedOut.Load(), err
}

// holdIdle opens k idle connections and checks each is served with one ECHO round trip.
func holdIdle(addr string, k int) ([]net.Conn, error) {
	if k <= 0 {
		return nil, nil
	}
	if lim, err := raiseNoFile(); err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	} else if uint64(k)+256 > lim {
		return nil, fmt.Errorf("-idle %d needs more file descriptors than RLIMIT_NOFILE allows (%d)", k, lim)
	}
	cs := make([]net.Conn, 0, k)
	fail := func(err error) ([]net.Conn, error) {
		for _, c := range cs {
			c.Close()
		}
		return nil, err
	}
	for i := 0; i < k; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return fail(fmt.Errorf("idle connection %d: %w", i, err))
		}
		cs = append(cs, c)
	}
	echo := codec.AppendRequest(nil, codec.EchoReq, []byte("idle"))
	reply := make([]byte, len(echo))
	deadline := time.Now().Add(60 * time.Second)
	for i, c := range cs {
		_ = c.SetDeadline(deadline)
		if _, err := c.Write(echo); err != nil {
			return fail(fmt.Errorf("idle connection %d: %w", i, err))
		}
	}
	for i, c := range cs {
		if _, err := readFull(c, reply); err != nil {
			return fail(fmt.Errorf("idle connection %d: no ECHO_RES: %w", i, err))
		}
		_ = c.SetDeadline(time.Time{})
	}
	return cs, nil
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// runWorkload runs cfg's workload and returns its result; res.OK says whether it passed.
func runWorkload(cfg *config) *Result {
	res := &Result{Workload: cfg.Workload, Case: cfg.Case, Label: cfg.Label, Addr: cfg.Addr,
		N: cfg.N, Conns: cfg.Conns, Window: cfg.Window, Size: cfg.Size, Idle: cfg.Idle}
	if cfg.Workload == "submit-bg" || cfg.Workload == "drain" || cfg.Workload == "memory" {
		res.Unique = cfg.Unique
	}
	idle, err := holdIdle(cfg.Addr, cfg.Idle)
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	switch cfg.Workload {
	case "submit-bg":
		err = runSubmitBG(cfg, res)
	case "drain":
		err = runDrain(cfg, res)
	case "roundtrip":
		err = runRoundtrip(cfg, res)
	case "echo":
		err = runEcho(cfg, res)
	case "memory":
		err = runMemory(cfg, res)
	case "epoch-accuracy":
		err = runEpochAccuracy(cfg, res)
	case "sched-fill", "epoch-fill":
		err = runFill(cfg, res)
	case "recovery":
		err = runRecovery(cfg, res)
	case "submit-complete":
		err = runSubmitComplete(cfg, res)
	default:
		err = fmt.Errorf("unknown workload %q", cfg.Workload)
	}
	if err != nil {
		res.Failure = err.Error()
	} else {
		res.OK = true
	}
	return res
}

func setErrors(res *Result, e *errCount) {
	res.Errors = e.total
	if len(e.codes) > 0 {
		res.ErrorCodes = e.codes
	}
}

func runSubmitBG(cfg *config, res *Result) error {
	out, m, timedOut, err := submitBG(cfg, cfg.N, true)
	res.TimedOut = timedOut
	setErrors(res, &out.errs)
	if m != nil {
		if ferr := m.fill(res, out.acked); ferr != nil && err == nil {
			err = ferr
		}
		serverMem(res, cfg.PID)
	}
	if err == nil && !timedOut && out.acked+out.errs.total != cfg.N {
		err = fmt.Errorf("%d acknowledged + %d errors, want %d", out.acked, out.errs.total, cfg.N)
	}
	return err
}

// fillQueue queues n background jobs (untimed) and checks that the server holds exactly n.
func fillQueue(cfg *config, n int64, timed bool) (*meter, error) {
	if total, _, err := adminStatus(cfg.Addr, cfg.Fn); err != nil {
		return nil, fmt.Errorf("admin status: %w", err)
	} else if total != 0 {
		return nil, fmt.Errorf("the server already holds %d jobs of %q: use a fresh server or another -fn", total, cfg.Fn)
	}
	out, m, timedOut, err := submitBG(cfg, n, timed)
	if err != nil {
		return m, fmt.Errorf("fill: %w", err)
	}
	if timedOut || out.acked != n {
		return m, fmt.Errorf("fill: %d of %d jobs acknowledged (%d errors %v, timed out %v)",
			out.acked, n, out.errs.total, out.errs.codes, timedOut)
	}
	total, _, err := adminStatus(cfg.Addr, cfg.Fn)
	if err != nil {
		return m, fmt.Errorf("fill: admin status: %w", err)
	}
	if total != n {
		return m, fmt.Errorf("fill: server holds %d jobs of %q after queueing %d", total, cfg.Fn, n)
	}
	return m, nil
}

// drainAndCheck drains n jobs and checks the queue is empty afterwards.
func drainAndCheck(cfg *config, res *Result, n int64) error {
	out, m, timedOut, err := drainJobs(cfg, n)
	res.TimedOut = timedOut
	setErrors(res, &out.errs)
	if m != nil {
		if ferr := m.fill(res, out.completed-out.extra); ferr != nil && err == nil {
			err = ferr
		}
	}
	if err != nil {
		return err
	}
	if timedOut {
		return nil // bounded by time: the rate stands, the count cannot be checked
	}
	if out.completed != n {
		return fmt.Errorf("drain: %d jobs completed, want %d", out.completed, n)
	}
	total, found, err := adminStatus(cfg.Addr, cfg.Fn)
	if err != nil {
		return fmt.Errorf("drain: admin status: %w", err)
	}
	if found && total != 0 {
		return fmt.Errorf("drain: server still holds %d jobs of %q", total, cfg.Fn)
	}
	return nil
}

func runDrain(cfg *config, res *Result) error {
	res.Workers, res.Grabs, res.Split = cfg.Workers, cfg.Grabs, cfg.Split
	if !cfg.Queued {
		if _, err := fillQueue(cfg, cfg.N, false); err != nil {
			return err
		}
	}
	err := drainAndCheck(cfg, res, cfg.N)
	serverMem(res, cfg.PID)
	return err
}

func runEcho(cfg *config, res *Result) error {
	cs, err := dialAll(cfg.Addr, cfg.Conns)
	if err != nil {
		return err
	}
	defer closeAll(cs)
	payload := makePayload(cfg.Size, 2)
	r := newRun(cfg.N, cfg.Timeout)
	defer r.end()
	es := make([]*echoer, len(cs))
	hs := make([]handler, len(cs))
	for i := range cs {
		es[i] = newEchoer(r, payload, cfg.Window)
		hs[i] = es[i]
	}
	m := startMeter(cfg)
	err = driveAll(cs, hs, r)
	m.stop()
	var echoed int64
	var errs errCount
	hist := newHistogram()
	for _, e := range es {
		echoed += e.echoed
		errs.merge(&e.errs)
		hist.merge(e.hist)
	}
	res.TimedOut = r.timedOut.Load()
	setErrors(res, &errs)
	res.Latency = hist.latency()
	if ferr := m.fill(res, echoed); ferr != nil && err == nil {
		err = ferr
	}
	serverMem(res, cfg.PID)
	if err == nil && errs.codes["ECHO_MISMATCH"] > 0 {
		err = fmt.Errorf("%d echoes differ from what was sent", errs.codes["ECHO_MISMATCH"])
	}
	if err == nil && !res.TimedOut && echoed+errs.total != cfg.N {
		err = fmt.Errorf("%d echoes + %d errors, want %d", echoed, errs.total, cfg.N)
	}
	return err
}

func runRoundtrip(cfg *config, res *Result) error {
	res.Workers, res.Grabs, res.Split = cfg.Workers, cfg.Grabs, cfg.Split
	wcs, ccs, err := dialPools(cfg)
	if err != nil {
		return err
	}
	defer closeAll(wcs)
	defer closeAll(ccs)
	fn := []byte(cfg.Fn)

	// Workers run until the clients are done; their own time limit leaves room for that.
	wr := newRun(0, cfg.Timeout+2*grace)
	defer wr.end()
	// Let the workers register (and go to sleep) before the first job is submitted.
	ws, waitWorkers, err := sleepingWorkers(wcs, wr, fn, cfg, true, nil)
	if err != nil {
		return err
	}

	cr := newRun(cfg.N, cfg.Timeout)
	defer cr.end()
	ks := make([]*rtClient, len(ccs))
	chs := make([]handler, len(ccs))
	for i := range ccs {
		ks[i] = newRTClient(cr, fn, uint64(i+1), cfg.Window, cfg.Size)
		chs[i] = ks[i]
	}
	m := startMeter(cfg)
	cerr := driveAll(ccs, chs, cr)
	m.stop()
	wr.stop()
	werr := waitWorkers()

	var done int64
	var errs errCount
	hist := newHistogram()
	for _, k := range ks {
		done += k.done_
		errs.merge(&k.errs)
		hist.merge(k.hist)
	}
	for _, w := range ws {
		errs.merge(&w.errs)
	}
	res.TimedOut = cr.timedOut.Load()
	setErrors(res, &errs)
	res.Latency = hist.latency()
	err = errors.Join(cerr, werr)
	if ferr := m.fill(res, done); ferr != nil && err == nil {
		err = ferr
	}
	serverMem(res, cfg.PID)
	if err == nil && errs.total > 0 {
		err = fmt.Errorf("%d errors: %v", errs.total, errs.codes)
	}
	if err == nil && !res.TimedOut && done != cfg.N {
		err = fmt.Errorf("%d results, want %d", done, cfg.N)
	}
	return err
}

// dialPools dials the -workers worker connections and the -conns client connections.
func dialPools(cfg *config) (workers, clients []*conn, err error) {
	if workers, err = dialAll(cfg.Addr, cfg.Workers); err != nil {
		return nil, nil, err
	}
	if clients, err = dialAll(cfg.Addr, cfg.Conns); err != nil {
		closeAll(workers)
		return nil, nil, err
	}
	return workers, clients, nil
}

// sleepingWorkers registers a worker on each of wcs (setup, if not nil, adjusts each one
// first), drives them under wr on a goroutine of their own, and returns once every one
// sleeps: the pool the jobs then wake. wait returns, once the workers are done (after
// wr.stop, or when they reach their target), what driving them returned.
func sleepingWorkers(wcs []*conn, wr *run, fn []byte, cfg *config, grabAgain bool, setup func(*worker)) (ws []*worker, wait func() error, err error) {
	ws = make([]*worker, len(wcs))
	whs := make([]handler, len(wcs))
	var asleep atomic.Int64
	for i, c := range wcs {
		ws[i] = newWorker(wr, fn, cfg.Grabs, grabAgain)
		ws[i].split = cfg.Split
		ws[i].asleep = &asleep
		if setup != nil {
			setup(ws[i])
		}
		ws[i].register(c)
		whs[i] = ws[i]
	}
	var werr error
	wdone := make(chan struct{})
	go func() {
		werr = driveAll(wcs, whs, wr)
		close(wdone)
	}()
	wait = func() error { <-wdone; return werr }
	if err := waitAsleep(&asleep, len(ws), wdone); err != nil {
		wr.stop()
		return nil, nil, errors.Join(err, wait())
	}
	return ws, wait, nil
}

func waitAsleep(asleep *atomic.Int64, n int, wdone <-chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	for asleep.Load() < int64(n) {
		select {
		case <-wdone:
			return errors.New("workers stopped before the clients started")
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("workers did not register within 15s")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func runMemory(cfg *config, res *Result) error {
	res.Workers, res.Grabs, res.Split = cfg.Workers, cfg.Grabs, cfg.Split
	if cfg.PID <= 0 {
		return errors.New("memory needs -pid (the server's process id)")
	}
	mem := &MemStats{DataDirBefore: -1, DataDirAfterFill: -1, DataDirAfterDrain: -1, DataDirAfterSettle: -1}
	res.Memory = mem
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
	var err error
	if _, mem.RSSBeforeKB, err = procMem(cfg.PID); err != nil {
		return err
	}
	mem.DataDirBefore = size()
	fm, err := fillQueue(cfg, cfg.N, true)
	if err != nil {
		return err
	}
	if fm.elapsed > 0 {
		mem.FillRate = float64(cfg.N) / fm.elapsed.Seconds()
	}
	_, mem.RSSAfterFillKB, _ = procMem(cfg.PID)
	mem.DataDirAfterFill = size()
	if cfg.N > 0 {
		mem.RSSPerJobBytes = float64(mem.RSSAfterFillKB-mem.RSSBeforeKB) * 1024 / float64(cfg.N)
	}
	if err := drainAndCheck(cfg, res, cfg.N); err != nil {
		return err
	}
	_, mem.RSSAfterDrainKB, _ = procMem(cfg.PID)
	mem.DataDirAfterDrain = size()
	time.Sleep(cfg.Settle)
	mem.SettleSeconds = cfg.Settle.Seconds()
	mem.VmHWMKB, mem.RSSAfterSettleKB, _ = procMem(cfg.PID)
	mem.DataDirAfterSettle = size()
	serverMem(res, cfg.PID)
	return nil
}
