package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

var (
	spurdBin string // built once by TestMain
	buildErr error
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "spur-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	spurdBin = filepath.Join(tmp, "spurd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", spurdBin, "github.com/spur-gearman/spur/cmd/spurd")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/spurd: %v\n%s", err, out)
	}
	cancel()
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// startSpurd starts "spurd -q builtin" on a free loopback port; it is stopped by PID when the
// test ends. It returns the address and the PID.
func startSpurd(t *testing.T) (string, int) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var out bytes.Buffer
		cmd := exec.Command(spurdBin, "-p", strconv.Itoa(port), "-L", "127.0.0.1", "-q", "builtin",
			"--data-dir", t.TempDir())
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				t.Cleanup(stop)
				return addr, cmd.Process.Pid
			}
			select {
			case err := <-exited:
				if attempt < 3 {
					break // port taken in between: try another
				}
				t.Fatalf("spurd exited: %v\n%s", err, out.String())
			default:
				if time.Now().After(deadline) {
					stop()
					t.Fatalf("spurd not accepting on %s\n%s", addr, out.String())
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			break
		}
	}
}

func testConfig(addr, workload string, n int64) *config {
	cfg := &config{Workload: workload, Addr: addr, N: n, Conns: 3, Window: 16, Workers: 3, Grabs: 16,
		Size: 100, Fn: "bench-test-" + workload, Timeout: time.Minute, Settle: 10 * time.Millisecond}
	if workload == "roundtrip" {
		cfg.Window, cfg.Grabs, cfg.Size = 1, 1, 16
	}
	return cfg
}

// TestWorkloads runs every workload with a tiny count against a fresh spurd and checks the
// counts, the absence of errors and the server accounting.
func TestWorkloads(t *testing.T) {
	started := time.Now()
	addr, pid := startSpurd(t)
	cases := []struct {
		name   string
		cfg    *config
		expect int64 // Done
	}{
		{"submit-bg", testConfig(addr, "submit-bg", 3000), 3000},
		{"drain", testConfig(addr, "drain", 3000), 3000},
		{"roundtrip", testConfig(addr, "roundtrip", 500), 500},
		{"roundtrip-window-4", func() *config {
			c := testConfig(addr, "roundtrip", 500)
			c.Window, c.Fn = 4, "bench-test-rt4"
			return c
		}(), 500},
		{"roundtrip-split-writes", func() *config {
			c := testConfig(addr, "roundtrip", 500)
			c.Split, c.Fn = true, "bench-test-rt-split"
			return c
		}(), 500},
		{"roundtrip-64KiB", func() *config {
			c := testConfig(addr, "roundtrip", 50)
			c.Size, c.Fn = 64<<10, "bench-test-rt64k"
			return c
		}(), 50},
		{"drain-unique", func() *config {
			c := testConfig(addr, "drain", 3000)
			c.Unique, c.Fn = true, "bench-test-drain-unique"
			return c
		}(), 3000},
		{"echo", testConfig(addr, "echo", 5000), 5000},
		{"echo-idle", func() *config {
			c := testConfig(addr, "echo", 1000)
			c.Idle = 50
			return c
		}(), 1000},
		{"memory", func() *config {
			c := testConfig(addr, "memory", 2000)
			c.DataDir = t.TempDir()
			return c
		}(), 2000},
		{"epoch-accuracy", func() *config {
			c := testConfig(addr, "epoch-accuracy", 300)
			c.Workers, c.Lead, c.Wait = 4, 500*time.Millisecond, 10*time.Second
			return c
		}(), 300},
		{"epoch-accuracy-poll", func() *config {
			c := testConfig(addr, "epoch-accuracy", 300)
			c.Workers, c.Lead, c.Wait, c.Poll, c.Fn = 4, 500*time.Millisecond, 10*time.Second, 50*time.Millisecond, "bench-test-acc-poll"
			return c
		}(), 300},
		{"sched-fill", testConfig(addr, "sched-fill", 500), 500},
		{"epoch-fill", func() *config {
			c := testConfig(addr, "epoch-fill", 2000)
			c.Ahead = 24 * time.Hour
			return c
		}(), 2000},
		{"recovery", func() *config {
			c := testConfig(addr, "recovery", 2000)
			c.Start, c.Fn, c.SchedFn, c.Schedules = started.UnixNano(), "bench-test-epoch-fill", "bench-test-sched-fill", 500
			return c
		}(), 2000},
		{"submit-complete", func() *config {
			c := testConfig(addr, "submit-complete", 3000)
			c.Grabs, c.ResultSize, c.ShowResult = 1, 16, true
			return c
		}(), 3000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.PID = pid
			res := runWorkload(tc.cfg)
			t.Log(humanLine(res))
			if !res.OK {
				t.Fatalf("run failed: %s", res.Failure)
			}
			if res.Done != tc.expect || res.Errors != 0 || res.TimedOut {
				t.Fatalf("done %d errors %d timed out %v, want %d, 0, false", res.Done, res.Errors, res.TimedOut, tc.expect)
			}
			switch tc.cfg.Workload {
			case "recovery":
				// Started before the server, so both times are positive and in order.
				if rc := res.Recovery; rc == nil || rc.AcceptSeconds <= 0 || rc.StatusSeconds < rc.AcceptSeconds || rc.Jobs != 2000 || rc.Schedules != 500 || rc.RSSKB <= 0 {
					t.Fatalf("recovery %+v", rc)
				}
				return
			case "epoch-accuracy":
				// Due at a whole second: nothing before it, everything within the wait.
				a := res.Accuracy
				if a == nil || a.Assigned != tc.expect || a.Early != 0 || a.FirstMs < 0 || a.P50Ms < a.FirstMs || a.MaxMs < a.P99Ms || a.MaxMs > 10e3 || a.SubmitLeadMs <= 0 {
					t.Fatalf("accuracy %+v", a)
				}
				if a.PollSeconds > 0 && a.FirstMs > 5*a.PollSeconds*1e3 {
					t.Fatalf("polling every %gs, the first job came %.1f ms late", a.PollSeconds, a.FirstMs)
				}
			case "sched-fill", "epoch-fill":
				if f := res.Fill; f == nil || f.Listed != tc.expect || f.Fired != 0 || f.RSSAfterKB <= 0 {
					t.Fatalf("fill %+v", f)
				}
			case "submit-complete":
				if res.ResultStored == nil || !*res.ResultStored {
					t.Fatalf("result stored %v, want true (spurd keeps results by default)", res.ResultStored)
				}
			}
			if res.Server == nil || res.Server.VmRSSKB <= 0 || res.Server.VmHWMKB < res.Server.VmRSSKB {
				t.Fatalf("server accounting missing: %+v", res.Server)
			}
			if res.Rate <= 0 {
				t.Fatalf("rate %v", res.Rate)
			}
			if w := tc.cfg.Workload; (w == "roundtrip" || w == "echo") && (res.Latency == nil || res.Latency.P50 <= 0 || res.Latency.P999 < res.Latency.P50 || res.Latency.Max < res.Latency.P999) {
				t.Fatalf("latency %+v", res.Latency)
			}
			if m := res.Memory; tc.cfg.Workload == "memory" && (m == nil || m.RSSAfterFillKB <= 0 || m.DataDirAfterFill < 0) {
				t.Fatalf("memory %+v", m)
			}
		})
	}
}

// TestTimeLimit checks that a run bounded by time stops by itself and reports what completed.
func TestTimeLimit(t *testing.T) {
	addr, _ := startSpurd(t)
	cfg := testConfig(addr, "roundtrip", 1<<40)
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	res := runWorkload(cfg)
	if !res.OK || !res.TimedOut || res.Done == 0 || res.Errors != 0 {
		t.Fatalf("%s", humanLine(res))
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
}

// TestResultMismatchFails checks that a worker returning the wrong bytes fails a roundtrip.
func TestResultMismatchFails(t *testing.T) {
	addr, _ := startSpurd(t)
	r := newRun(1, time.Minute)
	defer r.end()
	wc, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.close()
	cc, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.close()
	for _, c := range []*conn{wc, cc} {
		_ = c.nc.SetDeadline(time.Now().Add(time.Minute))
	}
	w := newWorker(r, []byte("mismatch"), 1, true)
	w.register(wc)
	k := newRTClient(r, []byte("mismatch"), 1, 1, 32)
	pump(t, cc, k, func() bool { return len(k.free) == 0 })
	pump(t, wc, corrupter{w}, func() bool { return w.jobs == 1 })
	pump(t, cc, k, func() bool { return len(k.free) == 1 })
	if k.done_ != 0 || k.errs.codes["RESULT_MISMATCH"] != 1 {
		t.Fatalf("done %d errors %v, want a RESULT_MISMATCH", k.done_, k.errs.codes)
	}
}

// corrupter is a worker whose WORK_COMPLETE carries a flipped last byte.
type corrupter struct{ *worker }

func (c corrupter) packet(cn *conn) error {
	assign := cn.pkt.Type == codec.JobAssign
	if err := c.worker.packet(cn); err != nil {
		return err
	}
	if assign {
		cn.wbuf[len(cn.wbuf)-1] ^= 0xff
	}
	return nil
}

// pump drives h on c until until() holds: queue requests, flush, check, read, dispatch.
// The caller bounds c with a deadline.
func pump(t testing.TB, c *conn, h handler, until func() bool) {
	for {
		h.request(c)
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		if until() {
			return
		}
		if err := c.fill(); err != nil {
			t.Fatal(err)
		}
		if err := c.dispatch(h); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSteadyStateAllocs proves the per-packet send/receive path allocates nothing: one
// pipelined SUBMIT_JOB_BG batch, one ECHO round trip, and one whole foreground job (client
// submit, worker NOOP/GRAB_JOB/JOB_ASSIGN/WORK_COMPLETE, client JOB_CREATED/WORK_COMPLETE
// with its byte-for-byte check and latency record), each over real sockets.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	addr, _ := startSpurd(t)
	r := newRun(1<<62, time.Hour)
	defer r.end()
	conns := make([]*conn, 4)
	for i := range conns {
		c, err := dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		_ = c.nc.SetDeadline(time.Now().Add(time.Minute))
		conns[i] = c
	}
	sc, ec, wc, cc := conns[0], conns[1], conns[2], conns[3]

	sub := &submitter{r: r, fn: []byte("allocs-bg"), payload: makePayload(100, 1), window: 32}
	subIdle := func() bool { return sub.outstanding == 0 }
	subBatch := func() {
		sub.noMore = false
		sub.request(sc) // a window of 32 SUBMIT_JOB_BG
		sub.noMore = true
		pump(t, sc, sub, subIdle)
	}
	usub := (&submitter{r: r, fn: []byte("allocs-bg-unique"), payload: makePayload(100, 1), window: 32}).withUnique("u-")
	usubIdle := func() bool { return usub.outstanding == 0 }
	usubBatch := func() {
		usub.noMore = false
		usub.request(sc)
		usub.noMore = true
		pump(t, sc, usub, usubIdle)
	}
	echo := newEchoer(r, makePayload(100, 2), 1)
	echoIdle := func() bool { return echo.outstanding == 0 }
	echoOnce := func() {
		echo.noMore = false
		echo.request(ec)
		echo.noMore = true
		pump(t, ec, echo, echoIdle)
	}
	var asleep atomic.Int64
	w := newWorker(r, []byte("allocs-rt"), 1, true)
	w.asleep = &asleep
	w.register(wc)
	k := newRTClient(r, []byte("allocs-rt"), 1, 1, 16)
	pump(t, wc, w, func() bool { return asleep.Load() == 1 }) // registered and asleep
	var wantJobs, wantDone int64
	workerDone := func() bool { return w.jobs == wantJobs }
	clientDone := func() bool { return k.done_ == wantDone }
	roundTrip := func() {
		wantJobs, wantDone = w.jobs+1, k.done_+1
		k.noMore = false
		k.request(cc)
		k.noMore = true
		if err := cc.flush(); err != nil {
			t.Fatal(err)
		}
		pump(t, wc, w, workerDone)
		pump(t, cc, k, clientDone)
	}

	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"submit-bg batch of 32", subBatch},
		{"submit-bg batch of 32 with unique ids", usubBatch},
		{"echo round trip", echoOnce},
		{"foreground job round trip", roundTrip},
		{"foreground job round trip, worker writes split", func() { w.split = true; roundTrip() }},
	} {
		tc.fn() // warm up: buffers reach their steady size
		if got := testing.AllocsPerRun(300, tc.fn); got != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, got)
		} else {
			t.Logf("%s: 0 allocations", tc.name)
		}
	}
	if sub.errs.total+usub.errs.total+echo.errs.total+k.errs.total+w.errs.total != 0 {
		t.Fatalf("errors: %v %v %v %v", sub.errs.codes, echo.errs.codes, k.errs.codes, w.errs.codes)
	}
}

// TestDueSecondAndQuietHours: the due second is whole and at least the lead ahead; the
// schedules' hours leave out the current and the next hour, across midnight too.
func TestDueSecondAndQuietHours(t *testing.T) {
	base := time.Date(2025, 3, 1, 23, 59, 58, 0, time.UTC)
	for _, c := range []struct {
		now  time.Time
		lead time.Duration
		want time.Time
	}{
		{base, 3 * time.Second, base.Add(3 * time.Second)},
		{base.Add(time.Millisecond), 3 * time.Second, base.Add(4 * time.Second)},
		{base.Add(999 * time.Millisecond), time.Second, base.Add(2 * time.Second)},
	} {
		if got := dueSecond(c.now, c.lead); !got.Equal(c.want) {
			t.Errorf("dueSecond(%v, %v) = %v, want %v", c.now, c.lead, got, c.want)
		}
	}
	hs := quietHours(base) // 23:59: neither 23 nor 0
	if len(hs) != 22 || hs[0] != 1 || hs[len(hs)-1] != 22 {
		t.Fatalf("quiet hours at 23:59: %v", hs)
	}
	hs = quietHours(base.Add(10 * time.Hour)) // 09:59 the next day: neither 9 nor 10
	for _, h := range hs {
		if h == 9 || h == 10 {
			t.Fatalf("quiet hours at 09:59: %v", hs)
		}
	}
}

// TestHistogram checks bucket bounds and quantiles.
func TestHistogram(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1µs .. 100ms
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		got := float64(h.quantile(q))
		want := q * 100000 * 1000
		if got < want*0.98 || got > want*1.02 {
			t.Errorf("q%v = %v, want about %v", q, got, want)
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, 129, 1 << 20, 1<<63 - 1, 1<<64 - 1} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("index %d of %d out of range", i, v)
		}
		if v < 1<<62 {
			if mid := histValue(i); float64(mid) < float64(v)*0.98 || float64(mid) > float64(v)*1.02+1 {
				t.Errorf("value %d -> bucket %d -> %d", v, i, mid)
			}
		}
	}
}

// TestParseFlags checks the command-line forms and defaults.
func TestParseFlags(t *testing.T) {
	var discard bytes.Buffer
	for _, args := range [][]string{
		{"roundtrip", "-n", "5"},
		{"-n", "5", "roundtrip"},
		{"-workload", "roundtrip", "-n", "5"},
	} {
		cfg, _, err := parseFlags(args, &discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if cfg.Workload != "roundtrip" || cfg.N != 5 || cfg.Window != 1 || cfg.Grabs != 1 || cfg.Size != 16 {
			t.Fatalf("%v: %+v", args, cfg)
		}
	}
	cfg, _, err := parseFlags([]string{"drain", "-window", "8"}, &discard)
	if err != nil || cfg.Grabs != 8 || cfg.N != 100000 {
		t.Fatalf("drain: %+v %v", cfg, err)
	}
	if _, _, err := parseFlags([]string{"nosuch"}, &discard); err == nil {
		t.Fatal("unknown workload accepted")
	}
}

// TestWorkerSplitWrites checks what a worker leaves unwritten after a JOB_ASSIGN: with split
// writes its WORK_COMPLETE is already on the wire (alone) and the next GRAB_JOB goes in a write
// of its own; without, both wait for one write.
func TestWorkerSplitWrites(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		peer, err := l.Accept()
		if err == nil {
			accepted <- peer
		}
		close(accepted)
	}()
	c, err := dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	_ = peer.SetDeadline(time.Now().Add(time.Minute))

	assign := codec.AppendPacket(nil, codec.JobAssign, []byte("H:x:1"), []byte("fn"), []byte("payload"))
	complete := codec.AppendRequest(nil, codec.WorkComplete, []byte("H:x:1"), []byte("payload"))
	grab := codec.AppendRequest(nil, codec.GrabJob)
	for _, split := range []bool{false, true} {
		r := newRun(0, time.Minute)
		w := newWorker(r, []byte("fn"), 1, true)
		w.split = split
		w.request(c) // the first GRAB_JOB
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(grab))
		if _, err := readFull(peer, got); err != nil || !bytes.Equal(got, grab) {
			t.Fatalf("split %v: first request %x, %v; want GRAB_JOB", split, got, err)
		}
		pkt, n, err := codec.Parse(assign, 0)
		if err != nil || n != len(assign) {
			t.Fatalf("parse JOB_ASSIGN: %v", err)
		}
		c.pkt = pkt
		if err := w.packet(c); err != nil {
			t.Fatal(err)
		}
		wantPending := complete
		if split {
			got := make([]byte, len(complete))
			if _, err := readFull(peer, got); err != nil || !bytes.Equal(got, complete) {
				t.Fatalf("split: %x, %v on the wire; want WORK_COMPLETE", got, err)
			}
			wantPending = nil
		}
		if !bytes.Equal(c.wbuf, wantPending) {
			t.Fatalf("split %v: %x unwritten after JOB_ASSIGN, want %x", split, c.wbuf, wantPending)
		}
		w.request(c)
		if want := append(append([]byte(nil), wantPending...), grab...); !bytes.Equal(c.wbuf, want) {
			t.Fatalf("split %v: next write %x, want %x", split, c.wbuf, want)
		}
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		got = make([]byte, len(wantPending)+len(grab))
		if _, err := readFull(peer, got); err != nil {
			t.Fatal(err)
		}
		r.end()
	}
}
