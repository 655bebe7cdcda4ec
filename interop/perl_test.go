package interop

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Perl Gearman::Client / Gearman::Worker (Debian package
// libgearman-client-perl, a pure-Perl implementation of the protocol).
// testdata/client.pl and testdata/worker.pl document their line formats.

// perlWorker starts testdata/worker.pl serving at most maxJobs jobs.
func perlWorker(t *testing.T, addr string, env []string, maxJobs int, specs ...string) *proc {
	t.Helper()
	args := append([]string{"worker.pl", addr, fmt.Sprint(maxJobs)}, specs...)
	p := startProc(t, env, "perl", args...)
	p.waitLine("READY")
	return p
}

// perlClient runs testdata/client.pl to completion and returns its lines
// without the final "OK" (whose presence it checks).
func perlClient(t *testing.T, addr string, args ...string) []string {
	t.Helper()
	r := mustRun(t, "perl", append([]string{"client.pl", addr}, args...)...)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) == 0 || lines[len(lines)-1] != "OK" {
		t.Fatalf("client.pl %v did not finish with OK:\n%s\nstderr: %s", args, r.stdout, r.stderr)
	}
	return lines[:len(lines)-1]
}

// TestPerlDoTask: do_task returns the Perl worker's result; a worker
// returning undef (WORK_FAIL) makes do_task return undef.
func TestPerlDoTask(t *testing.T) { forEachMode(t, testPerlDoTask) }

func testPerlDoTask(t *testing.T, srv serverMode) {
	requirePerl(t)
	addr, _ := srv.start(t)
	rev, fail := fnName(t, "reverse"), fnName(t, "fail")
	w := perlWorker(t, addr, nil, 3, rev+"=reverse", fail+"=fail")
	waitWorkers(t, addr, rev, 1)
	waitWorkers(t, addr, fail, 1)

	for _, c := range []struct{ fn, arg, want string }{
		{rev, "hello perl", "RESULT lrep olleh"},
		{rev, "x y z", "RESULT z y x"},
		{fail, "boom", "RESULT_UNDEF"},
	} {
		if got := perlClient(t, addr, "do", c.fn, c.arg); len(got) != 1 || got[0] != c.want {
			t.Errorf("do_task(%s, %q): got %q, want %q", c.fn, c.arg, got, c.want)
		}
	}
	lines := w.mustExit()
	if got := linesWithPrefix(lines, "START "); len(got) != 3 {
		t.Errorf("worker started %d jobs, want 3: %q", len(got), got)
	}
}

// TestPerlBackgroundStatus: dispatch_background returns "host:port//handle";
// get_status reports known/not running while queued, known/running with the
// worker's set_status(1,3) while it runs, and unknown once completed.
func TestPerlBackgroundStatus(t *testing.T) { forEachMode(t, testPerlBackgroundStatus) }

func testPerlBackgroundStatus(t *testing.T, srv serverMode) {
	requirePerl(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "status")
	lines := perlClient(t, addr, "bg", fn, "job1")
	prefix := "HANDLE " + addr + "//"
	if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || len(lines[0]) == len(prefix) {
		t.Fatalf("dispatch_background: got %q, want %q<handle>", lines, prefix)
	}
	handle := strings.TrimPrefix(lines[0], "HANDLE ")
	serverHandle := strings.TrimPrefix(handle, addr+"//")

	check := func(when, want string) {
		t.Helper()
		if got := perlClient(t, addr, "status", handle); len(got) != 1 || got[0] != want {
			t.Errorf("get_status %s: got %q, want %q", when, got, want)
		}
	}
	check("while queued", "STATUS 1 0 0 0")

	rel, release := releaseFile(t)
	w := perlWorker(t, addr, []string{"RELEASE_FILE=" + rel}, 1, fn+"=status")
	if got := w.waitLine("STATUS_SENT "); got != "STATUS_SENT "+serverHandle {
		t.Fatalf("worker: got %q, want STATUS_SENT %s", got, serverHandle)
	}
	check("while running after set_status(1,3)", "STATUS 1 1 1 3")
	release()
	if got := w.mustExit(); !contains(got, "START "+fn+" "+serverHandle+" job1") {
		t.Errorf("worker output %q lacks START %s %s job1", got, fn, serverHandle)
	}
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
	check("after completion", "STATUS 0 0 0 0")
}

// TestPerlTasksetCallbacks: one taskset with several tasks on one connection
// gets on_complete with each task's own result and on_fail for the failing
// one.
func TestPerlTasksetCallbacks(t *testing.T) { forEachMode(t, testPerlTasksetCallbacks) }

func testPerlTasksetCallbacks(t *testing.T, srv serverMode) {
	requirePerl(t)
	addr, _ := srv.start(t)
	rev, fail := fnName(t, "reverse"), fnName(t, "fail")
	w := perlWorker(t, addr, nil, 4, rev+"=reverse", fail+"=fail")
	waitWorkers(t, addr, rev, 1)

	lines := perlClient(t, addr, "taskset", rev, "abc", fail, "zz", rev, "xyz", rev, "12345")
	if got := linesWithPrefix(lines, "SUBMITTED "); len(got) != 4 {
		t.Errorf("submitted %d tasks, want 4: %q", len(got), lines)
	}
	events := append(linesWithPrefix(lines, "COMPLETE "), linesWithPrefix(lines, "FAIL ")...)
	sort.Strings(events)
	want := []string{"COMPLETE 12345 54321", "COMPLETE abc cba", "COMPLETE xyz zyx", "FAIL zz"}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("callbacks: got %q, want %q\nfull output: %q", events, want, lines)
	}
	if lines[len(lines)-1] != "WAITED" {
		t.Errorf("taskset wait did not return: %q", lines)
	}
	w.mustExit()
}

// TestPerlTasksetUniqueCoalescing: three tasks with the same uniq submitted
// in one taskset while the job is held by the worker share one handle; the
// worker runs once and every task's on_complete gets that one result
// (the server sends one WORK_COMPLETE per submission, even on one
// connection, and Gearman::Taskset hands them out in order).
func TestPerlTasksetUniqueCoalescing(t *testing.T) { forEachMode(t, testPerlTasksetUniqueCoalescing) }

func testPerlTasksetUniqueCoalescing(t *testing.T, srv serverMode) {
	requirePerl(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "hold")
	rel, release := releaseFile(t)
	w := perlWorker(t, addr, []string{"RELEASE_FILE=" + rel}, 3, fn+"=hold")
	waitWorkers(t, addr, fn, 1)

	c := startProc(t, nil, "perl", "client.pl", addr, "taskset", "--uniq=same-key", fn, "one", fn, "two", fn, "three")
	w.waitLine("START ")
	c.waitLine("SUBMITTED three ")
	release()
	lines := c.mustExit()

	submitted := linesWithPrefix(lines, "SUBMITTED ")
	if len(submitted) != 3 {
		t.Fatalf("client: want 3 SUBMITTED lines, got %q", lines)
	}
	h := strings.Fields(submitted[0])[2]
	for _, s := range submitted {
		if strings.Fields(s)[2] != h {
			t.Errorf("coalesced tasks got different handles: %q", submitted)
		}
	}
	completes := linesWithPrefix(lines, "COMPLETE ")
	sort.Strings(completes)
	if want := []string{"COMPLETE one held:one", "COMPLETE three held:one", "COMPLETE two held:one"}; !reflect.DeepEqual(completes, want) {
		t.Errorf("on_complete calls: got %q, want %q", completes, want)
	}
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
	_ = w.cmd.Process.Kill()
	wl, _ := w.wait()
	if got := linesWithPrefix(wl, "START "); len(got) != 1 {
		t.Errorf("worker executed %d jobs, want 1: %q", len(got), got)
	}
}
