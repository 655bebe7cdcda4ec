package main

// Process-level durability tests: a real spurd with `-q pebble` on a temporary data dir,
// driven with raw Gearman packets, stopped gracefully (SIGTERM) or killed (SIGKILL) and
// restarted on the same data dir.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// handlePrefix is the --job-handle-prefix every durable spurd here runs with, so handles
// read "H:dur:N" whatever the host name.
const handlePrefix = "H:dur"

// startDurable starts spurd with the Pebble queue on dir (the last --data-dir wins over the
// scratch one startSpurd adds).
func startDurable(t *testing.T, dir string, extra ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	args := append([]string{"-q", "pebble", "--data-dir", dir, "--job-handle-prefix", handlePrefix}, extra...)
	return startSpurd(t, args...)
}

// stopSpurd ends spurd with SIGTERM (which must exit 0) or SIGKILL.
func stopSpurd(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer, kill bool) {
	t.Helper()
	if kill {
		_ = cmd.Process.Kill()
		waitExit(t, cmd)
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit code %d after SIGTERM: %s", code, stderr)
	}
}

// exitWatch waits for a process in the background, so a test can observe when it exits
// while it keeps talking to it.
type exitWatch struct {
	done chan struct{}
	code int
	at   time.Time
}

func watchExit(t *testing.T, cmd *exec.Cmd) *exitWatch {
	w := &exitWatch{done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		w.code, w.at = cmd.ProcessState.ExitCode(), time.Now()
		close(w.done)
	}()
	// Runs before startSpurd's cleanup (LIFO), which then finds ProcessState set.
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			_ = cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

func (w *exitWatch) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// gconn is one raw Gearman connection. Every read has a deadline.
type gconn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialG(t *testing.T, addr string) *gconn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &gconn{t: t, c: c, r: bufio.NewReader(c)}
}

func (g *gconn) send(typ codec.Type, args ...[]byte) {
	g.t.Helper()
	_ = g.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := g.c.Write(codec.AppendRequest(nil, typ, args...)); err != nil {
		g.t.Fatalf("sending %v: %v", typ, err)
	}
}

func (g *gconn) sendStr(typ codec.Type, args ...string) {
	g.t.Helper()
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	g.send(typ, b...)
}

func (g *gconn) recvWithin(d time.Duration) (codec.Type, []byte) {
	g.t.Helper()
	_ = g.c.SetReadDeadline(time.Now().Add(d))
	typ, body, err := readPacket(g.r)
	if err != nil {
		g.t.Fatalf("reading a reply: %v", err)
	}
	return typ, body
}

func (g *gconn) recv() (codec.Type, []byte) {
	g.t.Helper()
	return g.recvWithin(5 * time.Second)
}

func (g *gconn) expect(want codec.Type) []byte {
	g.t.Helper()
	typ, body := g.recv()
	if typ != want {
		g.t.Fatalf("got %v %q, want %v", typ, body, want)
	}
	return body
}

// sync makes sure the server has processed everything sent on g so far.
func (g *gconn) sync() {
	g.t.Helper()
	g.sendStr(codec.EchoReq, "sync")
	if body := g.expect(codec.EchoRes); string(body) != "sync" {
		g.t.Fatalf("ECHO_RES %q", body)
	}
}

// job is one submission and what a worker should get for it.
type job struct {
	typ     codec.Type
	fn      string
	unique  string
	reducer string
	epoch   int64
	data    string
	handle  string // set by submit
}

func (j *job) args() []string {
	switch j.typ {
	case codec.SubmitJobEpoch:
		return []string{j.fn, j.unique, strconv.FormatInt(j.epoch, 10), j.data}
	case codec.SubmitReduceJob, codec.SubmitReduceJobBackground:
		return []string{j.fn, j.unique, j.reducer, "", j.data}
	}
	return []string{j.fn, j.unique, j.data}
}

// submit sends j and waits for its JOB_CREATED.
func (g *gconn) submit(j *job) string {
	g.t.Helper()
	g.sendStr(j.typ, j.args()...)
	j.handle = string(g.expect(codec.JobCreated))
	return j.handle
}

// submitRefused sends j and expects ERROR; it returns the error code and text.
func (g *gconn) submitRefused(j *job) (code, text string) {
	g.t.Helper()
	g.sendStr(j.typ, j.args()...)
	body := g.expect(codec.Error)
	code, text, _ = strings.Cut(string(body), "\x00")
	return code, text
}

// submitMany pipelines background submits and returns their handles in order.
func (g *gconn) submitMany(jobs []*job) {
	g.t.Helper()
	const window = 50
	for start := 0; start < len(jobs); start += window {
		end := min(start+window, len(jobs))
		var out []byte
		for _, j := range jobs[start:end] {
			args := j.args()
			b := make([][]byte, len(args))
			for i, a := range args {
				b[i] = []byte(a)
			}
			out = codec.AppendRequest(out, j.typ, b...)
		}
		_ = g.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := g.c.Write(out); err != nil {
			g.t.Fatal(err)
		}
		for _, j := range jobs[start:end] {
			j.handle = string(g.expect(codec.JobCreated))
		}
	}
}

// assignment is what a GRAB_JOB_ALL returned.
type assignment struct {
	typ                         codec.Type
	handle, fn, unique, reducer string
	data                        string
}

// grabAll sends GRAB_JOB_ALL; ok is false on NO_JOB.
func (g *gconn) grabAll() (a assignment, ok bool) {
	g.t.Helper()
	g.send(codec.GrabJobAll)
	typ, body := g.recv()
	switch typ {
	case codec.NoJob:
		return a, false
	case codec.JobAssignUniq:
		p := bytes.SplitN(body, []byte{0}, 4)
		if len(p) != 4 {
			g.t.Fatalf("JOB_ASSIGN_UNIQ with %d arguments: %q", len(p), body)
		}
		return assignment{typ: typ, handle: string(p[0]), fn: string(p[1]), unique: string(p[2]), data: string(p[3])}, true
	case codec.JobAssignAll:
		p := bytes.SplitN(body, []byte{0}, 5)
		if len(p) != 5 {
			g.t.Fatalf("JOB_ASSIGN_ALL with %d arguments: %q", len(p), body)
		}
		return assignment{typ: typ, handle: string(p[0]), fn: string(p[1]), unique: string(p[2]), reducer: string(p[3]), data: string(p[4])}, true
	}
	g.t.Fatalf("GRAB_JOB_ALL: got %v %q", typ, body)
	return a, false
}

// grabExpect grabs and checks that the job handed out is j, with everything it was
// submitted with.
func (g *gconn) grabExpect(j *job) {
	g.t.Helper()
	a, ok := g.grabAll()
	if !ok {
		g.t.Fatalf("NO_JOB, want %s (%q)", j.handle, j.data)
	}
	wantType := codec.JobAssignUniq
	if j.reducer != "" {
		wantType = codec.JobAssignAll
	}
	want := assignment{typ: wantType, handle: j.handle, fn: j.fn, unique: j.unique, reducer: j.reducer, data: j.data}
	if a != want {
		g.t.Fatalf("grabbed %+v\n                  want %+v", a, want)
	}
}

func (g *gconn) expectNoJob() {
	g.t.Helper()
	if a, ok := g.grabAll(); ok {
		g.t.Fatalf("grabbed %+v, want NO_JOB", a)
	}
}

// adminList sends a text admin command whose reply is a list ending in ".", and returns
// the lines before it.
func adminList(t *testing.T, addr, cmd string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v after %q", cmd, err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "." {
			return lines
		}
		lines = append(lines, line)
	}
}

// shownJobs is `show jobs` as handle -> "RETRIES IGNORE PERSISTED" columns, and the handles
// in the order listed.
func shownJobs(t *testing.T, addr string) (map[string][]string, []string) {
	t.Helper()
	cols := map[string][]string{}
	var order []string
	for _, line := range adminList(t, addr, "show jobs") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("show jobs line %q", line)
		}
		cols[f[0]] = f[1:]
		order = append(order, f[0])
	}
	return cols, order
}

// expectShownJobs checks that `show jobs` lists exactly jobs, each persisted and not ignored.
func expectShownJobs(t *testing.T, addr string, jobs []*job) {
	t.Helper()
	cols, order := shownJobs(t, addr)
	var want []string
	for _, j := range jobs {
		want = append(want, j.handle)
		c, ok := cols[j.handle]
		if !ok {
			t.Errorf("show jobs does not list %s (%q); it lists %v", j.handle, j.data, order)
			continue
		}
		if c[1] != "0" || c[2] != "1" {
			t.Errorf("show jobs: %s has IGNORE=%s PERSISTED=%s, want 0 and 1", j.handle, c[1], c[2])
		}
	}
	sort.Strings(want)
	got := slices.Clone(order)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("show jobs lists %v, want %v", got, want)
	}
}

func handleNum(t *testing.T, h string) uint64 {
	t.Helper()
	i := strings.LastIndexByte(h, ':')
	n, err := strconv.ParseUint(h[i+1:], 10, 64)
	if err != nil || !strings.HasPrefix(h, handlePrefix+":") {
		t.Fatalf("handle %q is not %s:N", h, handlePrefix)
	}
	return n
}

// TestRecoveryAfterRestart: background jobs of every kind survive a graceful stop and a
// SIGKILL, with their handles, priorities, order, uniques, reducer, data and schedule; new
// handles never repeat one issued before the restart.
func TestRecoveryAfterRestart(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testRecovery(t, mode == "SIGKILL")
		})
	}
}

func testRecovery(t *testing.T, kill bool) {
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir)
	cl := dialG(t, addr)

	const fn = "dur"
	epoch := time.Now().Unix() + 4
	var (
		normal1 = &job{typ: codec.SubmitJobBg, fn: fn, data: "normal-1"}
		low1    = &job{typ: codec.SubmitJobLowBg, fn: fn, unique: "u-low-1", data: "low-1"}
		high1   = &job{typ: codec.SubmitJobHighBg, fn: fn, data: "high-1"}
		normal2 = &job{typ: codec.SubmitJobBg, fn: fn, unique: "u-normal-2", data: "normal-2\x00binary\r\n\xff"}
		reduce  = &job{typ: codec.SubmitReduceJobBackground, fn: fn, unique: "u-reduce", reducer: "my-reducer", data: "reduce-data"}
		high2   = &job{typ: codec.SubmitJobHighBg, fn: fn, unique: "u-high-2", data: "high-2"}
		sched   = &job{typ: codec.SubmitJobEpoch, fn: fn, unique: "u-epoch", epoch: epoch, data: "scheduled"}
		low2    = &job{typ: codec.SubmitJobLowBg, fn: fn, data: ""}
	)
	jobs := []*job{normal1, low1, high1, normal2, reduce, high2, sched, low2}
	ready := []*job{high1, high2, normal1, normal2, reduce, low1, low2} // grab order
	issued := map[string]bool{}
	var maxNum uint64
	note := func(h string) {
		if issued[h] {
			t.Fatalf("handle %s issued twice", h)
		}
		issued[h] = true
		maxNum = max(maxNum, handleNum(t, h))
	}
	for _, j := range jobs {
		note(cl.submit(j))
	}

	// The last numbers issued before the restart belong to jobs that are gone by then: one
	// completed, one cancelled.
	done1 := &job{typ: codec.SubmitJobBg, fn: "dur-done", unique: "d1", data: "completed"}
	done2 := &job{typ: codec.SubmitJobBg, fn: "dur-done", unique: "d2", data: "cancelled"}
	note(cl.submit(done1))
	note(cl.submit(done2))
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "dur-done")
	w.grabExpect(done1)
	w.sendStr(codec.WorkComplete, done1.handle, "ok")
	w.sync()
	if got := adminLine(t, addr, "cancel job "+done2.handle); got != "OK\r\n" {
		t.Fatalf("cancel job %s: %q", done2.handle, got)
	}
	// A coalescing background submit is answered once everything before it is durable:
	// with it, the deletes above are on disk too before a SIGKILL.
	if h := cl.submit(&job{typ: codec.SubmitJobBg, fn: fn, unique: "u-low-1", data: "other"}); h != low1.handle {
		t.Fatalf("coalescing submit before the restart: handle %s, want %s", h, low1.handle)
	}

	wantStatus := []string{fn + "\t8\t0\t0"}
	wantPrio := []string{fn + "\t2\t4\t2\t0"}
	if got := adminList(t, addr, "status"); !slices.Contains(got, wantStatus[0]) {
		t.Fatalf("status before the restart: %q, want a line %q", got, wantStatus[0])
	}
	if got := adminList(t, addr, "prioritystatus"); !slices.Contains(got, wantPrio[0]) {
		t.Fatalf("prioritystatus before the restart: %q, want a line %q", got, wantPrio[0])
	}

	stopSpurd(t, cmd, stderr, kill)
	_, addr, _ = startDurable(t, dir)

	expectShownJobs(t, addr, jobs)
	wantSched := []string{sched.handle + "\t" + fn + "\tu-epoch\t" + strconv.FormatInt(epoch, 10) + "\t" +
		time.Unix(epoch, 0).UTC().Format(time.RFC3339) + "\tnormal\tonce"}
	if got := adminList(t, addr, "show scheduled"); !slices.Equal(got, wantSched) {
		t.Errorf("show scheduled after the restart: %q, want %q", got, wantSched)
	}
	if got := adminList(t, addr, "status"); !slices.Equal(got, wantStatus) {
		t.Errorf("status after the restart: %q, want %q", got, wantStatus)
	}
	if got := adminList(t, addr, "prioritystatus"); !slices.Equal(got, wantPrio) {
		t.Errorf("prioritystatus after the restart: %q, want %q", got, wantPrio)
	}

	cl = dialG(t, addr)
	// Recovered jobs still coalesce, scheduled ones included.
	for _, j := range []*job{normal2, sched} {
		if h := cl.submit(&job{typ: codec.SubmitJobBg, fn: fn, unique: j.unique, data: "again"}); h != j.handle {
			t.Errorf("SUBMIT_JOB_BG with the unique %q of a recovered job: handle %s, want %s", j.unique, h, j.handle)
		}
	}
	// New handles are above every number issued before, those of deleted jobs included.
	fresh := &job{typ: codec.SubmitJobBg, fn: "dur-new", data: "fresh"}
	h := cl.submit(fresh)
	if issued[h] || handleNum(t, h) <= maxNum {
		t.Errorf("new job after the restart got handle %s; numbers up to %d were issued before", h, maxNum)
	}

	w = dialG(t, addr)
	w.sendStr(codec.CanDo, fn)
	for _, j := range ready {
		w.grabExpect(j)
		w.sendStr(codec.WorkComplete, j.handle, "")
	}
	if now := time.Now().Unix(); now >= epoch-1 {
		t.Fatalf("test too slow: %d s before the scheduled job is due, cannot check it is held back", epoch-now)
	}
	w.expectNoJob() // the scheduled job is not due yet
	w.send(codec.PreSleep)
	typ, body := w.recvWithin(time.Until(time.Unix(epoch, 0)) + 3*time.Second)
	if typ != codec.Noop {
		t.Fatalf("sleeping worker got %v %q, want NOOP", typ, body)
	}
	if now := time.Now().Unix(); now < epoch {
		t.Fatalf("NOOP at %d, before the scheduled job is due at %d", now, epoch)
	}
	w.grabExpect(sched)
	w.sendStr(codec.WorkComplete, sched.handle, "")
	w.expectNoJob()
}

// TestFinishedJobsStayGoneAfterRestart: completed, failed, excepted and cancelled background
// jobs are deleted from the log; a job whose worker went away is requeued and kept; a
// queued foreground job is never persisted.
func TestFinishedJobsStayGoneAfterRestart(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testFinishedJobs(t, mode == "SIGKILL")
		})
	}
}

func testFinishedJobs(t *testing.T, kill bool) {
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir)
	cl := dialG(t, addr)
	const fn = "fin"
	mk := func(name string) *job {
		return &job{typ: codec.SubmitJobBg, fn: fn, unique: name, data: "data-" + name}
	}
	complete, fail, except, gone, keep, cancel := mk("complete"), mk("fail"), mk("exception"), mk("disconnect"), mk("keep"), mk("cancel")
	for _, j := range []*job{complete, fail, except, gone, keep, cancel} {
		cl.submit(j)
	}
	// A foreground job nobody has picked up, its client still connected.
	fg := dialG(t, addr)
	fgJob := &job{typ: codec.SubmitJob, fn: "fin-fg", unique: "fg", data: "foreground"}
	fg.submit(fgJob)

	w := dialG(t, addr)
	w.sendStr(codec.CanDo, fn)
	w.grabExpect(complete)
	w.sendStr(codec.WorkComplete, complete.handle, "result")
	w.grabExpect(fail)
	w.sendStr(codec.WorkFail, fail.handle)
	w.grabExpect(except)
	w.sendStr(codec.WorkException, except.handle, "boom")
	w.sync()

	w2 := dialG(t, addr)
	w2.sendStr(codec.CanDo, fn)
	w2.grabExpect(gone)
	w2.c.Close() // goes away holding the job

	if got := adminLine(t, addr, "cancel job "+cancel.handle); got != "OK\r\n" {
		t.Fatalf("cancel job: %q", got)
	}
	w.c.Close()
	// Wait until the disconnected worker's job is requeued: nothing running, no worker
	// (the cancelled job still counts until a grab reaps it).
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := adminList(t, addr, "status")
		if slices.Contains(st, fn+"\t3\t0\t0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job of the disconnected worker was not requeued: status %q", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cols, _ := shownJobs(t, addr)
	if c := cols[gone.handle]; len(c) == 0 || c[0] != "1" {
		t.Errorf("show jobs: requeued job %s has columns %v, want RETRIES 1", gone.handle, c)
	}
	if c := cols[fgJob.handle]; len(c) == 0 || c[2] != "0" {
		t.Errorf("show jobs: foreground job %s has columns %v, want PERSISTED 0", fgJob.handle, c)
	}
	// Barrier: answered after every delete above is durable.
	if h := cl.submit(mk("keep")); h != keep.handle {
		t.Fatalf("coalescing submit: %s, want %s", h, keep.handle)
	}

	stopSpurd(t, cmd, stderr, kill)
	_, addr, _ = startDurable(t, dir)

	expectShownJobs(t, addr, []*job{gone, keep})
	if got, want := adminList(t, addr, "status"), []string{fn + "\t2\t0\t0"}; !slices.Equal(got, want) {
		t.Errorf("status after the restart: %q, want %q (no foreground job, nothing finished)", got, want)
	}
	w = dialG(t, addr)
	w.sendStr(codec.CanDo, fn)
	w.sendStr(codec.CanDo, "fin-fg")
	w.grabExpect(gone)
	w.grabExpect(keep)
	w.expectNoJob()
}

// TestGracefulShutdownDrains: on SIGTERM spurd stops taking and handing out jobs, waits for
// the running one, then exits 0 at once; queued jobs are kept and the completed one is not.
func TestGracefulShutdownDrains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir, "--shutdown-timeout", "20s")
	exit := watchExit(t, cmd)
	const fn = "drain"
	mk := func(name string) *job {
		return &job{typ: codec.SubmitJobBg, fn: fn, unique: name, data: "data-" + name}
	}
	run, q1, q2, q3 := mk("run"), mk("q1"), mk("q2"), mk("q3")
	cl := dialG(t, addr)
	for _, j := range []*job{run, q1, q2, q3} {
		cl.submit(j)
	}
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, fn)
	w.grabExpect(run)
	idle := dialG(t, addr)
	idle.sendStr(codec.CanDo, fn)
	idle.sync()

	_ = cmd.Process.Signal(syscall.SIGTERM)
	// A background submit that coalesces onto q1 changes nothing: before the drain it is
	// answered JOB_CREATED, once draining ERROR QUEUE_ERROR.
	deadline := time.Now().Add(5 * time.Second)
	for {
		cl.sendStr(codec.SubmitJobBg, fn, q1.unique, "probe")
		typ, body := cl.recv()
		if typ == codec.Error {
			if !strings.HasPrefix(string(body), "QUEUE_ERROR\x00") {
				t.Fatalf("submit while draining: ERROR %q, want QUEUE_ERROR", body)
			}
			break
		}
		if typ != codec.JobCreated || string(body) != q1.handle {
			t.Fatalf("coalescing submit: %v %q", typ, body)
		}
		if time.Now().After(deadline) {
			t.Fatal("spurd kept accepting jobs 5 s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	late := mk("late")
	if code, text := cl.submitRefused(late); code != "QUEUE_ERROR" {
		t.Fatalf("new background job while draining: ERROR %s %q, want QUEUE_ERROR", code, text)
	}
	idle.expectNoJob()
	if exit.exited() {
		t.Fatalf("spurd exited (code %d) while a job was running", exit.code)
	}

	w.sendStr(codec.WorkComplete, run.handle, "done")
	sent := time.Now()
	select {
	case <-exit.done:
	case <-time.After(10 * time.Second):
		t.Fatal("spurd did not exit within 10 s of the last running job completing")
	}
	if exit.code != 0 {
		t.Fatalf("exit code %d after a graceful drain: %s", exit.code, stderr)
	}
	if d := exit.at.Sub(sent); d > 3*time.Second {
		t.Errorf("spurd took %v to exit after the last running job completed", d)
	}
	t.Logf("exited %v after the running job completed", exit.at.Sub(sent).Round(time.Millisecond))

	_, addr, _ = startDurable(t, dir)
	expectShownJobs(t, addr, []*job{q1, q2, q3})
	w = dialG(t, addr)
	w.sendStr(codec.CanDo, fn)
	for _, j := range []*job{q1, q2, q3} {
		w.grabExpect(j)
	}
	w.expectNoJob()
}

// TestGracefulShutdownTimeout: a worker that never completes does not hold spurd up past
// --shutdown-timeout, and its job is kept for the next start.
func TestGracefulShutdownTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir, "--shutdown-timeout", "1s")
	exit := watchExit(t, cmd)
	stuck := &job{typ: codec.SubmitJobBg, fn: "stuck", unique: "s", data: "never finishes"}
	dialG(t, addr).submit(stuck)
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, stuck.fn)
	w.grabExpect(stuck)

	sent := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exit.done:
	case <-time.After(10 * time.Second):
		t.Fatal("spurd did not exit within 10 s with --shutdown-timeout 1s")
	}
	d := exit.at.Sub(sent)
	t.Logf("exited %v after SIGTERM", d.Round(time.Millisecond))
	if exit.code != 0 {
		t.Fatalf("exit code %d: %s", exit.code, stderr)
	}
	if d < 900*time.Millisecond || d > 4*time.Second {
		t.Errorf("spurd exited %v after SIGTERM, want about 1 s (--shutdown-timeout 1s)", d)
	}

	_, addr, _ = startDurable(t, dir)
	expectShownJobs(t, addr, []*job{stuck})
	w = dialG(t, addr)
	w.sendStr(codec.CanDo, stuck.fn)
	w.grabExpect(stuck)
}

// runRefused runs spurd with args, expecting it to refuse to start: it must exit by itself,
// non-zero. It returns the exit code and everything it printed.
func runRefused(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, spurdBin, append([]string{"-p", freePort(t), "-L", "127.0.0.1"}, args...)...)
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("spurd %v did not exit within 15 s (it should refuse to start): %s", args, out)
	}
	code := cmd.ProcessState.ExitCode()
	if code == 0 {
		t.Fatalf("spurd %v exited 0, want a refusal: %s", args, out)
	}
	if strings.Contains(string(out), "panic:") {
		t.Fatalf("spurd %v panicked: %s", args, out)
	}
	return code, string(out)
}

func TestSecondSpurdOnSameDataDirRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir)
	j := &job{typ: codec.SubmitJobBg, fn: "lock", unique: "l", data: "x"}
	dialG(t, addr).submit(j)

	code, out := runRefused(t, "-q", "pebble", "--data-dir", dir)
	t.Logf("exit %d: %s", code, strings.TrimSpace(out))
	if !strings.Contains(out, "locked") {
		t.Errorf("the refusal does not say the data dir is locked: %q", out)
	}
	// The first one is unaffected.
	if got := adminLine(t, addr, "version"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("first spurd after the refused second one: %q", got)
	}
	stopSpurd(t, cmd, stderr, false)
	_, addr, _ = startDurable(t, dir)
	expectShownJobs(t, addr, []*job{j})
}

func TestUncreatableDataDirRefused(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data")
	code, out := runRefused(t, "-q", "pebble", "--data-dir", dir)
	t.Logf("exit %d: %s", code, strings.TrimSpace(out))
	if !strings.Contains(out, "data dir") || !strings.Contains(out, file) || !strings.Contains(out, "not a directory") {
		t.Errorf("the refusal does not name the data dir and the reason: %q", out)
	}
}

// copyTree copies the regular files of src (recursively) into a new temporary dir.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// newestLog returns the write-ahead log file with the highest number in dir.
func newestLog(t *testing.T, dir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no *.log in %s (%v)", dir, err)
	}
	sort.Strings(logs) // Pebble numbers files with fixed-width decimals
	return logs[len(logs)-1]
}

// TestDamagedWriteAheadLog: a data dir left by a SIGKILL whose log has flipped bytes in the
// middle is refused; one with a torn tail starts and recovers the intact prefix.
func TestDamagedWriteAheadLog(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	cmd, addr, stderr := startDurable(t, src)
	cl := dialG(t, addr)
	const n = 300
	jobs := make([]*job, n)
	for i := range jobs {
		jobs[i] = &job{typ: codec.SubmitJobBg, fn: "wal", unique: fmt.Sprintf("u%03d", i),
			data: fmt.Sprintf("job %03d ", i) + strings.Repeat(string(rune('a'+i%26)), 400)}
	}
	cl.submitMany(jobs[:n-1])
	cl.submit(jobs[n-1]) // alone in the last batch
	stopSpurd(t, cmd, stderr, true)

	logFile := newestLog(t, src)
	info, err := os.Stat(logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("newest log %s: %d bytes", filepath.Base(logFile), info.Size())
	if info.Size() < 3*32<<10 {
		t.Fatalf("log only %d bytes: too small to damage its middle", info.Size())
	}

	// Damage well before the last 32 KiB block: the sync offsets written after it prove that
	// acknowledged jobs lie beyond, so this is corruption, not a torn tail.
	for _, pos := range []int64{info.Size() / 4, info.Size() / 2} {
		for _, width := range []int64{1, 16} {
			t.Run(fmt.Sprintf("flip %d bytes at %d", width, pos), func(t *testing.T) {
				dir := copyTree(t, src)
				path := filepath.Join(dir, filepath.Base(logFile))
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for i := pos; i < pos+width; i++ {
					b[i] ^= 0xff
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				code, out := runRefused(t, "-q", "pebble", "--data-dir", dir)
				t.Logf("exit %d: %s", code, strings.TrimSpace(out))
				if !strings.Contains(out, "corrupt") {
					t.Errorf("the refusal does not say the job log is corrupt: %q", out)
				}
			})
		}
	}

	t.Run("torn tail", func(t *testing.T) {
		dir := copyTree(t, src)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(logFile)), info.Size()-5); err != nil {
			t.Fatal(err)
		}
		_, addr, _ := startDurable(t, dir)
		_, order := shownJobs(t, addr) // listed in handle (submission) order
		if len(order) < n-1 || len(order) > n {
			t.Fatalf("recovered %d jobs of %d after cutting 5 bytes off the log", len(order), n)
		}
		t.Logf("recovered %d of %d jobs", len(order), n)
		w := dialG(t, addr)
		w.sendStr(codec.CanDo, "wal")
		for i, h := range order {
			if h != jobs[i].handle {
				t.Fatalf("recovered job %d is %s, want %s: not a prefix of what was written", i, h, jobs[i].handle)
			}
			w.grabExpect(jobs[i])
		}
		w.expectNoJob()
	})
}

// TestMinFreeDiskRefusesBackgroundJobs: with the disk reserve out of reach, background
// submits are refused with a clear QUEUE_ERROR while everything else keeps working, and jobs
// acknowledged before are still served.
func TestMinFreeDiskRefusesBackgroundJobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir)
	cl := dialG(t, addr)
	var before []*job
	for i := 0; i < 3; i++ {
		j := &job{typ: codec.SubmitJobBg, fn: "disk", unique: fmt.Sprintf("d%d", i), data: fmt.Sprintf("before-%d", i)}
		cl.submit(j)
		before = append(before, j)
	}
	stopSpurd(t, cmd, stderr, false)

	cmd, addr, stderr = startDurable(t, dir, "--min-free-disk", "1000000000000000000")
	expectShownJobs(t, addr, before)
	cl = dialG(t, addr)
	refusedOK := func(what, code, text string) {
		t.Helper()
		if code != "QUEUE_ERROR" || !strings.Contains(text, "disk") || !strings.Contains(text, "reserve") {
			t.Errorf("%s with the disk reserve out of reach: ERROR %s %q, want QUEUE_ERROR naming the disk reserve", what, code, text)
		}
	}
	for _, typ := range []codec.Type{codec.SubmitJobBg, codec.SubmitJobHighBg, codec.SubmitJobLowBg} {
		code, text := cl.submitRefused(&job{typ: typ, fn: "disk", data: "refused"})
		refusedOK(typ.String(), code, text)
	}
	// A client retrying a refused submit with the same unique must not be told the job
	// exists: neither while the first submit is still on its way to the log (pipelined), nor
	// right after its refusal.
	retry := &job{typ: codec.SubmitJobBg, fn: "disk", unique: "retry", data: "refused"}
	pair := codec.AppendRequest(nil, retry.typ, []byte(retry.fn), []byte(retry.unique), []byte(retry.data))
	pair = append(pair, pair...)
	_ = cl.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := cl.c.Write(pair); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		typ, body := cl.recv()
		code, text, _ := strings.Cut(string(body), "\x00")
		if typ != codec.Error {
			t.Errorf("pipelined SUBMIT_JOB_BG #%d of the same unique with the disk reserve out of reach: %v %q, want ERROR QUEUE_ERROR", i+1, typ, body)
			continue
		}
		refusedOK(fmt.Sprintf("pipelined SUBMIT_JOB_BG #%d", i+1), code, text)
	}
	for i := 0; i < 10; i++ {
		cl.sendStr(retry.typ, retry.args()...)
		typ, body := cl.recv()
		if typ != codec.Error {
			t.Errorf("retry %d of a refused SUBMIT_JOB_BG with the same unique: %v %q, want ERROR QUEUE_ERROR", i+1, typ, body)
		}
	}
	cl.sendStr(codec.EchoReq, "still here")
	if body := cl.expect(codec.EchoRes); string(body) != "still here" {
		t.Errorf("ECHO_RES %q", body)
	}
	fg := &job{typ: codec.SubmitJob, fn: "disk-fg", data: "foreground"}
	cl.submit(fg)

	t.Logf("show jobs after the refusals: %q", adminList(t, addr, "show jobs"))
	t.Logf("status after the refusals: %q", adminList(t, addr, "status"))
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "disk")
	for _, j := range before {
		w.grabExpect(j)
		w.sendStr(codec.WorkComplete, j.handle, "")
	}
	w.expectNoJob() // the refused jobs are not queued
	w.sendStr(codec.CanDo, "disk-fg")
	w.grabExpect(fg)
	w.sendStr(codec.WorkComplete, fg.handle, "fg-result")
	if body := cl.expect(codec.WorkComplete); string(body) != fg.handle+"\x00fg-result" {
		t.Errorf("WORK_COMPLETE to the foreground client: %q", body)
	}
	if got := adminLine(t, addr, "version"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("version: %q", got)
	}
	stopSpurd(t, cmd, stderr, false)
}

// TestSyncModesSurviveRestart: --sync batch and --sync none keep background jobs across a
// graceful stop.
func TestSyncModesSurviveRestart(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"batch", "none"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cmd, addr, stderr := startDurable(t, dir, "--sync", mode, "--sync-interval", "50ms")
			var jobs []*job
			for i := 0; i < 40; i++ {
				jobs = append(jobs, &job{typ: codec.SubmitJobBg, fn: "sync-" + mode, unique: fmt.Sprintf("s%d", i), data: fmt.Sprintf("%s-%d", mode, i)})
			}
			dialG(t, addr).submitMany(jobs)
			stopSpurd(t, cmd, stderr, false)

			_, addr, _ = startDurable(t, dir, "--sync", mode)
			expectShownJobs(t, addr, jobs)
			w := dialG(t, addr)
			w.sendStr(codec.CanDo, "sync-"+mode)
			for _, j := range jobs {
				w.grabExpect(j)
			}
			w.expectNoJob()
		})
	}
}
