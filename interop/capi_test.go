package interop

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// libgearman's C API (Debian package libgearman-dev), through
// testdata/capi.c, which documents its commands and line formats. The first
// test that needs it compiles it with gcc into the run's temporary directory.

// capiBin is the compiled testdata/capi.c, set by requireCAPI.
var capiBin string

func requireCAPI(t *testing.T) {
	t.Helper()
	err := checkCached("capi", func() error {
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			return fmt.Errorf("no C compiler: %v", err)
		}
		bin := filepath.Join(tmpRoot, "capi")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, gcc, "-O1", "-Wall", "-Werror", "-o", bin, "testdata/capi.c", "-lgearman").CombinedOutput()
		if err != nil {
			return fmt.Errorf("gcc testdata/capi.c -lgearman: %v\n%s", err, out)
		}
		capiBin = bin
		return nil
	})
	if err != nil {
		t.Fatalf("libgearman C API unavailable: %v; install the Debian packages libgearman-dev and gcc", err)
	}
}

// capiArgs returns the HOST PORT arguments of capi for addr.
func capiArgs(addr string, args ...string) []string {
	host, port, _ := strings.Cut(addr, ":")
	return append([]string{host, port}, args...)
}

// capiClient runs one capi client command and returns its lines without the
// final "OK" (whose presence it checks).
func capiClient(t *testing.T, addr string, args ...string) []string {
	t.Helper()
	r := mustRun(t, capiBin, capiArgs(addr, args...)...)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) == 0 || lines[len(lines)-1] != "OK" {
		t.Fatalf("capi %v did not finish with OK:\n%s\nstderr: %s", args, r.stdout, r.stderr)
	}
	return lines[:len(lines)-1]
}

// capiWorker starts a capi worker serving at most maxJobs jobs.
func capiWorker(t *testing.T, addr string, env []string, maxJobs int, specs ...string) *proc {
	t.Helper()
	p := startProc(t, env, capiBin, capiArgs(addr, append([]string{"worker", strconv.Itoa(maxJobs)}, specs...)...)...)
	p.waitLine("READY")
	return p
}

// TestCAPIDoNormalHighLow: gearman_client_do, _do_high and _do_low return
// the worker's result with GEARMAN_SUCCESS; the worker sees the unique the
// client gave, or the UUID libgearman makes up when it gave none.
func TestCAPIDoNormalHighLow(t *testing.T) { forEachMode(t, testCAPIDoNormalHighLow) }

func testCAPIDoNormalHighLow(t *testing.T, srv serverMode) {
	requireCAPI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "reverse")
	w := capiWorker(t, addr, nil, 3, fn+"=reverse")
	waitWorkers(t, addr, fn, 1)

	cases := []struct{ prio, workload, unique string }{
		{"normal", "hello C", "c-unique-1"},
		{"high", "high prio", ""},
		{"low", "low prio", ""},
	}
	for _, c := range cases {
		args := []string{"do", c.prio, fn, c.workload}
		if c.unique != "" {
			args = append(args, c.unique)
		}
		if got, want := capiClient(t, addr, args...), "RESULT GEARMAN_SUCCESS "+reverse(c.workload); len(got) != 1 || got[0] != want {
			t.Errorf("do %s %q: got %q, want %q", c.prio, c.workload, got, want)
		}
	}
	starts := startLines(t, w.mustExit())
	if len(starts) != len(cases) {
		t.Fatalf("worker ran %d jobs, want %d", len(starts), len(cases))
	}
	for i, c := range cases {
		if starts[i][4] != c.workload {
			t.Errorf("job %d: worker got workload %q, want %q", i, starts[i][4], c.workload)
		}
		if c.unique != "" && starts[i][3] != c.unique {
			t.Errorf("job %d: worker got unique %q, want %q", i, starts[i][3], c.unique)
		}
		if c.unique == "" && len(starts[i][3]) != 36 {
			t.Errorf("job %d: worker got unique %q, want libgearman's UUID", i, starts[i][3])
		}
	}
}

// TestCAPIBackgroundStatus: gearman_client_do_background returns a handle;
// gearman_client_job_status reports it known and not running while queued,
// running with the worker's gearman_job_send_status(1, 3), and unknown once
// completed.
func TestCAPIBackgroundStatus(t *testing.T) { forEachMode(t, testCAPIBackgroundStatus) }

func testCAPIBackgroundStatus(t *testing.T, srv serverMode) {
	requireCAPI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "status")
	lines := capiClient(t, addr, "bg", "normal", fn, "job1")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "HANDLE ") {
		t.Fatalf("background submit: got %q, want HANDLE <handle>", lines)
	}
	handle := strings.TrimPrefix(lines[0], "HANDLE ")
	check := func(when, want string) {
		t.Helper()
		if got := capiClient(t, addr, "status", handle); len(got) != 1 || got[0] != want {
			t.Errorf("job status %s: got %q, want %q", when, got, want)
		}
	}
	check("while queued", "STATUS 1 0 0 0")

	rel, release := releaseFile(t)
	w := capiWorker(t, addr, []string{"RELEASE_FILE=" + rel}, 1, fn+"=status")
	if got := w.waitLine("STATUS_SENT "); got != "STATUS_SENT "+handle {
		t.Fatalf("worker: got %q, want STATUS_SENT %s", got, handle)
	}
	check("while running after send_status(1, 3)", "STATUS 1 1 1 3")
	release()
	starts := startLines(t, w.mustExit())
	if len(starts) != 1 || starts[0][2] != handle || starts[0][4] != "job1" {
		t.Errorf("worker jobs %q, want one START %s %s <unique> job1", starts, fn, handle)
	}
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
	check("after completion", "STATUS 0 0 0 0")
}

// TestCAPIBackgroundPriority: jobs submitted with _do_low_background,
// _do_background and _do_high_background before any worker exists run high,
// normal, low, each under the handle its submit returned.
func TestCAPIBackgroundPriority(t *testing.T) { forEachMode(t, testCAPIBackgroundPriority) }

func testCAPIBackgroundPriority(t *testing.T, srv serverMode) {
	requireCAPI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "reverse")
	handles := map[string]string{}
	for _, p := range []string{"low", "normal", "high"} {
		lines := capiClient(t, addr, "bg", p, fn, p)
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "HANDLE ") {
			t.Fatalf("bg %s: got %q", p, lines)
		}
		handles[p] = strings.TrimPrefix(lines[0], "HANDLE ")
	}
	waitStatus(t, addr, fn, "3 queued jobs", func(s funcStatus) bool { return s.total == 3 })
	w := capiWorker(t, addr, nil, 3, fn+"=reverse")
	var got []string
	for _, s := range startLines(t, w.mustExit()) {
		got = append(got, s[4]+"@"+s[2])
	}
	want := []string{"high@" + handles["high"], "normal@" + handles["normal"], "low@" + handles["low"]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("execution order: got %q, want %q", got, want)
	}
}

// TestCAPIEpoch: gearman_execute with gearman_task_attr_init_epoch sends
// SUBMIT_JOB_EPOCH for two seconds ahead: the job is queued (known, not
// running) while a worker is idle, and the worker gets it no earlier than
// the epoch and soon after it.
func TestCAPIEpoch(t *testing.T) { forEachMode(t, testCAPIEpoch) }

func testCAPIEpoch(t *testing.T, srv serverMode) {
	requireCAPI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "reverse")
	w := capiWorker(t, addr, nil, 1, fn+"=reverse")
	waitWorkers(t, addr, fn, 1)

	lines := capiClient(t, addr, "epoch", fn, "2", "scheduled")
	f := strings.Fields(strings.Join(lines, " "))
	if len(f) != 3 || f[0] != "HANDLE" {
		t.Fatalf("epoch submit: got %q, want HANDLE <handle> <epoch>", lines)
	}
	handle := f[1]
	epochSec, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatalf("epoch submit: bad epoch in %q", lines)
	}
	epoch := time.Unix(epochSec, 0)

	// Look before the epoch (one to two seconds away): queued, not started.
	// A look that might end after the epoch is not made.
	if time.Until(epoch) > 500*time.Millisecond {
		if got := capiClient(t, addr, "status", handle); len(got) != 1 || got[0] != "STATUS 1 0 0 0" {
			t.Errorf("job status before its epoch: got %q, want STATUS 1 0 0 0", got)
		}
	}
	if s := linesWithPrefix(w.lines.snapshot(), "START "); len(s) != 0 && time.Now().Before(epoch) {
		t.Errorf("the worker started the job before its epoch %v: %q", epoch, s)
	}
	start := w.waitLine("START ")
	seen := time.Now()
	if seen.Before(epoch) {
		t.Errorf("the job started at %v, before its epoch %v", seen, epoch)
	}
	if want := fmt.Sprintf("START %s %s ", fn, handle); !strings.HasPrefix(start, want) || !strings.HasSuffix(start, " scheduled") {
		t.Errorf("worker: got %q, want %s<unique> scheduled", start, want)
	}
	w.mustExit()
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
}

// TestCAPICanDoTimeout: a function added with gearman_worker_add_function's
// timeout 1 (sent as CAN_DO_TIMEOUT 1, which servers raise to 1000 ms) whose
// first run takes 2.5 s. The server requeues the job at the timeout and the
// same worker runs it again under the same handle; gearman_client_do returns
// the second run's result, never the late first one, and the worker serves
// its next job. Spur drops the late WORK_COMPLETE silently; gearmand answers
// it with ERROR JOB_NOT_FOUND, which libgearman's worker reports once from
// gearman_worker_work (GEARMAN_UNEXPECTED_PACKET) and survives.
func TestCAPICanDoTimeout(t *testing.T) { forEachMode(t, testCAPICanDoTimeout) }

func testCAPICanDoTimeout(t *testing.T, srv serverMode) {
	requireCAPI(t)
	addr, _ := srv.start(t)
	slow, rev := fnName(t, "slow"), fnName(t, "reverse")
	w := capiWorker(t, addr, nil, 3, slow+"=overrun@1", rev+"=reverse")
	waitWorkers(t, addr, slow, 1)

	if got := capiClient(t, addr, "do", "normal", slow, "job"); !reflect.DeepEqual(got, []string{"RESULT GEARMAN_SUCCESS again:job"}) {
		t.Errorf("do: got %q, want [RESULT GEARMAN_SUCCESS again:job]", got)
	}
	if got := capiClient(t, addr, "do", "normal", rev, "next"); !reflect.DeepEqual(got, []string{"RESULT GEARMAN_SUCCESS txen"}) {
		t.Errorf("the worker's next job: got %q, want [RESULT GEARMAN_SUCCESS txen]", got)
	}
	lines := w.mustExit()
	starts := linesWithPrefix(lines, "START "+slow+" ")
	if len(starts) != 2 || starts[0] != starts[1] {
		t.Errorf("want the job assigned twice under one handle, got %q", starts)
	}
	errs := linesWithPrefix(lines, "WORK_ERROR ")
	if srv.name == "gearmand" {
		if len(errs) != 1 || !strings.HasPrefix(errs[0], "WORK_ERROR GEARMAN_UNEXPECTED_PACKET ") {
			t.Errorf("gearmand: want one WORK_ERROR GEARMAN_UNEXPECTED_PACKET (its ERROR for the late result), got %q", errs)
		}
	} else if len(errs) != 0 {
		t.Errorf("worker errors: %q, want none (the late result must get no reply)", errs)
	}
	waitStatus(t, addr, slow, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
}

// TestCAPIUniqueCoalescing: two client processes add a task with the same
// function and unique (gearman_client_add_task), the second while the worker
// holds the job: both get the same handle from the created callback, the
// worker runs once with the first workload, and both complete callbacks get
// its result.
func TestCAPIUniqueCoalescing(t *testing.T) { forEachMode(t, testCAPIUniqueCoalescing) }

func testCAPIUniqueCoalescing(t *testing.T, srv serverMode) {
	requireCAPI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "hold")
	rel, release := releaseFile(t)
	w := capiWorker(t, addr, []string{"RELEASE_FILE=" + rel}, 2, fn+"=hold")
	waitWorkers(t, addr, fn, 1)

	a := startProc(t, nil, capiBin, capiArgs(addr, "tasks", "--unique=C-same", fn, "alpha")...)
	start := w.waitLine("START ")
	b := startProc(t, nil, capiBin, capiArgs(addr, "tasks", "--unique=C-same", fn, "beta")...)
	hA := strings.TrimPrefix(a.waitLine("CREATED alpha "), "CREATED alpha ")
	hB := strings.TrimPrefix(b.waitLine("CREATED beta "), "CREATED beta ")
	if s, ok := statusOf(t, addr, fn); !ok || s != (funcStatus{1, 1, 1}) {
		t.Errorf("status with both clients attached: got %+v listed=%v, want 1 job, 1 running, 1 worker", s, ok)
	}
	release()

	la, lb := a.mustExit(), b.mustExit()
	if hA == "" || hA != hB {
		t.Errorf("job handles: alpha %q, beta %q; want the same", hA, hB)
	}
	if want := fmt.Sprintf("START %s %s C-same alpha", fn, hA); start != want {
		t.Errorf("worker: got %q, want %q", start, want)
	}
	for name, lines := range map[string][]string{"alpha": la, "beta": lb} {
		if len(lines) == 0 || lines[len(lines)-1] != "OK" {
			t.Fatalf("client %s did not finish with OK: %q", name, lines)
		}
		ev, final := taskEvents(t, lines[:len(lines)-1])
		if want := []string{"CREATED", "COMPLETE held:alpha"}; !reflect.DeepEqual(ev[name], want) || final != "RUNTASKS GEARMAN_SUCCESS" {
			t.Errorf("client %s: events %v final %q, want %v and RUNTASKS GEARMAN_SUCCESS", name, ev[name], final, want)
		}
	}
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
	_ = w.cmd.Process.Kill()
	lines, _ := w.wait()
	if n := len(startLines(t, lines)); n != 1 {
		t.Errorf("worker executed %d jobs, want 1", n)
	}
}
