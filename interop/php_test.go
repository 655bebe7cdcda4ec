package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// PHP PECL gearman (GearmanClient / GearmanWorker) against the server.
// testdata/client.php and testdata/worker.php document their line formats.

// phpWorker starts testdata/worker.php serving at most maxJobs jobs.
func phpWorker(t *testing.T, addr string, env []string, maxJobs int, specs ...string) *proc {
	t.Helper()
	args := append([]string{"worker.php", addr, fmt.Sprint(maxJobs)}, specs...)
	p := startProc(t, env, "php", args...)
	p.waitLine("READY")
	return p
}

// phpClient runs testdata/client.php to completion and returns its lines;
// it fails the test unless the script ran to its final "OK".
func phpClient(t *testing.T, addr string, args ...string) []string {
	t.Helper()
	r := mustRun(t, "php", append([]string{"client.php", addr}, args...)...)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) == 0 || lines[len(lines)-1] != "OK" {
		t.Fatalf("client.php %v did not finish with OK:\n%s\nstderr: %s", args, r.stdout, r.stderr)
	}
	return lines[:len(lines)-1]
}

// startLines returns the worker's START lines split into fields
// [START fn handle unique workload].
func startLines(t *testing.T, lines []string) [][]string {
	t.Helper()
	var out [][]string
	for _, l := range linesWithPrefix(lines, "START ") {
		f := strings.SplitN(l, " ", 5)
		if len(f) != 5 {
			t.Fatalf("bad START line %q", l)
		}
		out = append(out, f)
	}
	return out
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// TestPHPDoNormalHighLow: doNormal, doHigh and doLow return the worker's
// result with returnCode() == GEARMAN_SUCCESS (0).
func TestPHPDoNormalHighLow(t *testing.T) { forEachMode(t, testPHPDoNormalHighLow) }

func testPHPDoNormalHighLow(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "reverse")
	cases := []struct{ prio, workload string }{
		{"normal", "hello world"},
		{"high", "high priority"},
		{"low", "low-prio"},
	}
	w := phpWorker(t, addr, nil, len(cases), fn+"=reverse")
	waitWorkers(t, addr, fn, 1)
	for _, c := range cases {
		lines := phpClient(t, addr, "do", c.prio, fn, c.workload)
		if want := "RESULT 0 " + reverse(c.workload); len(lines) != 1 || lines[0] != want {
			t.Errorf("do %s %q: got %q, want %q", c.prio, c.workload, lines, want)
		}
	}
	starts := startLines(t, w.mustExit())
	if len(starts) != len(cases) {
		t.Fatalf("worker ran %d jobs, want %d", len(starts), len(cases))
	}
	for i, s := range starts {
		if s[1] != fn || s[4] != cases[i].workload {
			t.Errorf("job %d: worker got fn %q workload %q, want %q %q", i, s[1], s[4], fn, cases[i].workload)
		}
	}
	if s, ok := statusOf(t, addr, fn); !ok || s.total != 0 || s.running != 0 {
		t.Errorf("status after all jobs: %+v listed=%v, want 0 jobs", s, ok)
	}
}

// TestPHPLargePayload: doNormal() round trips of 40 KB, 100 KB and 1 MiB
// workloads (SUBMIT_JOB, JOB_ASSIGN and WORK_COMPLETE bodies far larger than
// one socket read) return the reversed workload intact.
func TestPHPLargePayload(t *testing.T) { forEachMode(t, testPHPLargePayload) }

func testPHPLargePayload(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "reverse")
	sizes := []int{40 << 10, 100 << 10, 1 << 20}
	w := phpWorker(t, addr, nil, len(sizes), fn+"=reverse")
	waitWorkers(t, addr, fn, 1)
	dir := t.TempDir()
	for _, n := range sizes {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "%07d,", i)
		}
		payload := b.String()[:n]
		file := filepath.Join(dir, fmt.Sprint(n))
		if err := os.WriteFile(file, []byte(payload), 0o644); err != nil {
			t.Fatal(err)
		}
		lines := phpClient(t, addr, "do", "normal", fn, "@"+file)
		want := "RESULT 0 " + reverse(payload)
		if len(lines) != 1 || lines[0] != want {
			t.Errorf("%d-byte workload: got %q, want \"RESULT 0 <reversed workload>\"", n, clip(strings.Join(lines, "\n")))
		}
	}
	w.mustExit()
}

// TestPHPEchoAndHandlePrefix: ping() (ECHO_REQ/ECHO_RES, echo verified by
// libgearman) succeeds, and with --job-handle-prefix the handles returned to
// doBackground() are "<prefix>:1", "<prefix>:2".
func TestPHPEchoAndHandlePrefix(t *testing.T) { forEachMode(t, testPHPEchoAndHandlePrefix) }

func testPHPEchoAndHandlePrefix(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t, "--job-handle-prefix", "interop-prefix")
	if got := phpClient(t, addr, "ping", "are you there?"); len(got) != 1 || got[0] != "PING 1 0" {
		t.Errorf("ping: got %q, want PING 1 0", got)
	}
	fn := fnName(t, "bg")
	got := phpClient(t, addr, "bg", "normal", fn, "a", "b")
	if want := []string{"HANDLE 0 interop-prefix:1", "HANDLE 0 interop-prefix:2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("doBackground handles: got %q, want %q", got, want)
	}
}

// TestPHPBackgroundPriorityOrder: doLowBackground/doBackground/doHighBackground
// queue without a worker (admin status/prioritystatus show them); a worker
// started later gets all HIGH jobs, then NORMAL, then LOW, FIFO within each.
func TestPHPBackgroundPriorityOrder(t *testing.T) { forEachMode(t, testPHPBackgroundPriorityOrder) }

func testPHPBackgroundPriorityOrder(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "order")
	submits := []struct{ prio, workload string }{
		{"low", "l1"}, {"normal", "n1"}, {"high", "h1"},
		{"low", "l2"}, {"normal", "n2"}, {"high", "h2"},
	}
	handles := map[string]string{}
	for _, s := range submits {
		lines := phpClient(t, addr, "bg", s.prio, fn, s.workload)
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "HANDLE 0 ") {
			t.Fatalf("bg %s %s: got %q, want HANDLE 0 <handle>", s.prio, s.workload, lines)
		}
		h := strings.TrimPrefix(lines[0], "HANDLE 0 ")
		if h == "" {
			t.Fatalf("bg %s %s: empty handle", s.prio, s.workload)
		}
		for w, other := range handles {
			if other == h {
				t.Fatalf("jobs %s and %s got the same handle %q", w, s.workload, h)
			}
		}
		handles[s.workload] = h
	}
	if s, ok := statusOf(t, addr, fn); !ok || s != (funcStatus{6, 0, 0}) {
		t.Errorf("status: got %+v listed=%v, want total 6, running 0, workers 0", s, ok)
	}
	wantPrio := fn + "\t2\t2\t2\t0"
	if got := adminList(t, addr, "prioritystatus"); !contains(got, wantPrio) {
		t.Errorf("prioritystatus: got %q, want a line %q", got, wantPrio)
	}

	w := phpWorker(t, addr, nil, len(submits), fn+"=upper")
	var order []string
	for _, s := range startLines(t, w.mustExit()) {
		order = append(order, s[4])
		if handles[s[4]] != s[2] {
			t.Errorf("job %s ran with handle %q, submit returned %q", s[4], s[2], handles[s[4]])
		}
	}
	if want := []string{"h1", "h2", "n1", "n2", "l1", "l2"}; !reflect.DeepEqual(order, want) {
		t.Errorf("execution order %v, want %v", order, want)
	}
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
}

// TestPHPJobStatus: jobStatus() of a background job is known/not running
// while queued, known/running with the worker's sendStatus(1,4) while it
// runs, and unknown (all zero) once completed; an invented handle is unknown.
func TestPHPJobStatus(t *testing.T) { forEachMode(t, testPHPJobStatus) }

func testPHPJobStatus(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "status")
	lines := phpClient(t, addr, "bg", "normal", fn, "job1")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "HANDLE 0 ") {
		t.Fatalf("bg: got %q", lines)
	}
	h := strings.TrimPrefix(lines[0], "HANDLE 0 ")

	check := func(when, want string) {
		t.Helper()
		got := phpClient(t, addr, "status", h)
		if len(got) != 1 || got[0] != want {
			t.Errorf("jobStatus %s: got %q, want %q", when, got, want)
		}
	}
	check("while queued", "STATUS 1 0 0 0")

	rel, release := releaseFile(t)
	w := phpWorker(t, addr, []string{"RELEASE_FILE=" + rel}, 1, fn+"=status")
	if got := w.waitLine("STATUS_SENT "); got != "STATUS_SENT "+h {
		t.Fatalf("worker: got %q, want STATUS_SENT %s", got, h)
	}
	check("while running after sendStatus(1,4)", "STATUS 1 1 1 4")
	release()
	w.waitLine("END ")
	w.mustExit()
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
	check("after completion", "STATUS 0 0 0 0")

	if got := phpClient(t, addr, "status", h+"999"); len(got) != 1 || got[0] != "STATUS 0 0 0 0" {
		t.Errorf("jobStatus of unknown handle: got %q, want STATUS 0 0 0 0", got)
	}
}

// taskEvents groups client.php "tasks" callback lines by task (workload),
// keeping the event kind and payload and dropping the workload column.
func taskEvents(t *testing.T, lines []string) (map[string][]string, string) {
	t.Helper()
	ev := map[string][]string{}
	final := ""
	for _, l := range lines {
		f := strings.SplitN(l, " ", 3)
		switch f[0] {
		case "RUNTASKS":
			final = l
		case "CREATED", "DATA", "WARNING", "STATUS", "COMPLETE", "FAIL", "EXCEPTION":
			if len(f) < 2 {
				t.Fatalf("bad callback line %q", l)
			}
			e := f[0]
			if len(f) == 3 && f[0] != "CREATED" {
				e += " " + f[2]
			}
			ev[f[1]] = append(ev[f[1]], e)
		default:
			t.Fatalf("unexpected client line %q", l)
		}
	}
	return ev, final
}

// TestPHPTaskCallbacks: addTask/runTasks deliver the worker's data, warning,
// status and completion to the right callbacks in order; sendFail() and
// setReturn(GEARMAN_WORK_FAIL) reach the fail callback; sendException()
// reaches the exception callback with its payload.
//
// PECL gearman 2.x sends OPTION_REQ "exceptions" on every client connection
// (not only when an exception callback is set, as verified against gearmand
// 1.1.20), so the server forwards WORK_EXCEPTION as such. Without an
// exception callback libgearman then completes the task silently: no fail
// and no complete callback fire, and runTasks() still succeeds.
func TestPHPTaskCallbacks(t *testing.T) { forEachMode(t, testPHPTaskCallbacks) }

func testPHPTaskCallbacks(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	steps, fail, failRet, exc := fnName(t, "steps"), fnName(t, "fail"), fnName(t, "failret"), fnName(t, "exception")
	w := phpWorker(t, addr, nil, 6, steps+"=steps", fail+"=fail", failRet+"=failret", exc+"=exception")
	waitWorkers(t, addr, exc, 1)

	cases := []struct {
		name string
		args []string
		want map[string][]string
	}{
		{"data-warning-status-complete", []string{steps, "a", "b"}, map[string][]string{
			"a": {"CREATED", "DATA d1:a", "WARNING w1:a", "STATUS 1/2", "DATA d2:a", "STATUS 2/2", "COMPLETE done:a"},
			"b": {"CREATED", "DATA d1:b", "WARNING w1:b", "STATUS 1/2", "DATA d2:b", "STATUS 2/2", "COMPLETE done:b"},
		}},
		{"sendFail", []string{fail, "f1"}, map[string][]string{"f1": {"CREATED", "FAIL"}}},
		{"setReturn-WORK_FAIL", []string{failRet, "f2"}, map[string][]string{"f2": {"CREATED", "FAIL"}}},
		{"sendException-with-callback", []string{"--exception-cb", exc, "e1"}, map[string][]string{"e1": {"CREATED", "EXCEPTION boom:e1"}}},
		{"sendException-without-callback", []string{exc, "e2"}, map[string][]string{"e2": {"CREATED"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := phpClient(t, addr, append([]string{"tasks"}, c.args...)...)
			ev, final := taskEvents(t, lines)
			if final != "RUNTASKS 1 0" {
				t.Errorf("runTasks: got %q, want RUNTASKS 1 0 (success)", final)
			}
			if !reflect.DeepEqual(ev, c.want) {
				t.Errorf("callbacks:\n got %v\nwant %v\nraw output:\n%s", ev, c.want, strings.Join(lines, "\n"))
			}
		})
	}
	starts := startLines(t, w.mustExit())
	if len(starts) != 6 {
		t.Errorf("worker ran %d jobs, want 6", len(starts))
	}
}

// TestPHPUniqueCoalescing: two client processes submit foreground tasks for
// the same function with the same unique while the first is running; both
// get the same job handle, the worker runs the job once (with the first
// workload and the given unique), and both clients receive its result.
func TestPHPUniqueCoalescing(t *testing.T) { forEachMode(t, testPHPUniqueCoalescing) }

func testPHPUniqueCoalescing(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "hold")
	rel, release := releaseFile(t)
	w := phpWorker(t, addr, []string{"RELEASE_FILE=" + rel, "IDLE_DEADLINE=20"}, 2, fn+"=hold")
	waitWorkers(t, addr, fn, 1)

	a := startProc(t, nil, "php", "client.php", addr, "tasks", "--unique=U-same", fn, "alpha")
	start := w.waitLine("START ")
	b := startProc(t, nil, "php", "client.php", addr, "tasks", "--unique=U-same", fn, "beta")
	createdA := a.waitLine("CREATED alpha ")
	createdB := b.waitLine("CREATED beta ")
	if s, ok := statusOf(t, addr, fn); !ok || s != (funcStatus{1, 1, 1}) {
		t.Errorf("status with both clients attached: got %+v listed=%v, want 1 job, 1 running, 1 worker", s, ok)
	}
	release()

	la, lb := a.mustExit(), b.mustExit()
	hA := strings.TrimPrefix(createdA, "CREATED alpha ")
	hB := strings.TrimPrefix(createdB, "CREATED beta ")
	if hA == "" || hA != hB {
		t.Errorf("job handles: alpha %q, beta %q; want the same", hA, hB)
	}
	if want := fmt.Sprintf("START %s %s U-same alpha", fn, hA); start != want {
		t.Errorf("worker: got %q, want %q", start, want)
	}
	for name, lines := range map[string][]string{"alpha": la, "beta": lb} {
		ev, final := taskEvents(t, lines[:len(lines)-1]) // drop the final OK
		if want := []string{"CREATED", "COMPLETE held:alpha"}; !reflect.DeepEqual(ev[name], want) || final != "RUNTASKS 1 0" {
			t.Errorf("client %s: events %v final %q, want %v and RUNTASKS 1 0", name, ev[name], final, want)
		}
	}
	// The worker must not get a second job: wait until the queue is empty and
	// then stop it; it must have started exactly one job.
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
	_ = w.cmd.Process.Kill()
	lines, _ := w.wait()
	if n := len(startLines(t, lines)); n != 1 {
		t.Errorf("worker executed %d jobs, want 1", n)
	}
}

// TestPHPWorkerDisconnectRequeue: a worker that dies (SIGKILL) in the middle of a job
// makes the server requeue it; a second worker runs it (same handle) and the
// waiting doNormal() client gets the second worker's result.
func TestPHPWorkerDisconnectRequeue(t *testing.T) { forEachMode(t, testPHPWorkerDisconnectRequeue) }

func testPHPWorkerDisconnectRequeue(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "job")
	dying := phpWorker(t, addr, nil, 1, fn+"=die")
	waitWorkers(t, addr, fn, 1)

	client := startProc(t, nil, "php", "client.php", addr, "do", "normal", fn, "payload")
	dyingLine := dying.waitLine("DYING ")
	if _, err := dying.wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("dying worker: exit %v, want killed by SIGKILL", err)
	}
	h := strings.TrimPrefix(dyingLine, "DYING ")
	// Requeued: queued again, not running, no worker left.
	waitStatus(t, addr, fn, "job requeued (1 job, 0 running, 0 workers)", func(s funcStatus) bool {
		return s == funcStatus{1, 0, 0}
	})

	// "show jobs": HANDLE RETRIES IGNORE PERSISTED; one failed assignment.
	if jobs := adminList(t, addr, "show jobs"); !contains(jobs, h+"\t1\t0\t0") {
		t.Errorf("show jobs after requeue: got %q, want a line %q", jobs, h+"\t1\t0\t0")
	}

	good := phpWorker(t, addr, nil, 1, fn+"=reverse")
	lines := client.mustExit()
	if want := []string{"RESULT 0 daolyap", "OK"}; !reflect.DeepEqual(lines, want) {
		t.Errorf("client: got %q, want %q", lines, want)
	}
	starts := startLines(t, good.mustExit())
	if len(starts) != 1 || starts[0][2] != h || starts[0][4] != "payload" {
		t.Errorf("second worker: got %v, want one job with handle %q and workload payload", starts, h)
	}
}

// TestPHPJobRetriesExhausted: with -j 2 (job retries) a job whose worker
// dies twice is dropped with WORK_FAIL: doNormal() returns GEARMAN_WORK_FAIL
// (24) and the job is gone from the server.
func TestPHPJobRetriesExhausted(t *testing.T) { forEachMode(t, testPHPJobRetriesExhausted) }

func testPHPJobRetriesExhausted(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t, "-j", "2")
	fn := fnName(t, "job")
	w1 := phpWorker(t, addr, nil, 1, fn+"=die")
	waitWorkers(t, addr, fn, 1)
	client := startProc(t, nil, "php", "client.php", addr, "do", "normal", fn, "payload")
	w1.waitLine("DYING ")
	w1.wait()
	waitStatus(t, addr, fn, "job requeued", func(s funcStatus) bool { return s == funcStatus{1, 0, 0} })

	w2 := phpWorker(t, addr, nil, 1, fn+"=die")
	w2.waitLine("DYING ")
	w2.wait()
	lines := client.mustExit()
	if len(lines) != 2 || lines[0] != "RESULT 24 " || lines[1] != "OK" {
		t.Errorf("client: got %q, want [\"RESULT 24 \" OK] (GEARMAN_WORK_FAIL)", lines)
	}
	waitStatus(t, addr, fn, "job dropped", func(s funcStatus) bool { return s.total == 0 })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestPHPCancelRunningJob: `cancel job` on a job a PHP worker is running fails the waiting
// doNormal() client at once (GEARMAN_WORK_FAIL); the worker, which the protocol cannot
// interrupt, finishes, its late WORK_COMPLETE is dropped without an ERROR, and it serves
// its next job.
func TestPHPCancelRunningJob(t *testing.T) { forEachMode(t, testPHPCancelRunningJob) }

func testPHPCancelRunningJob(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "held")
	rel, release := releaseFile(t)
	w := phpWorker(t, addr, []string{"RELEASE_FILE=" + rel}, 2, fn+"=hold")
	waitWorkers(t, addr, fn, 1)

	client := startProc(t, nil, "php", "client.php", addr, "do", "normal", fn, "first")
	start := strings.Fields(w.waitLine("START "))
	h := start[2]
	if got := adminLine(t, addr, "cancel job "+h); got != "OK\r\n" {
		t.Fatalf("cancel job %s: %q", h, got)
	}
	if lines := client.mustExit(); !reflect.DeepEqual(lines, []string{"RESULT 24 ", "OK"}) {
		t.Errorf("client of the cancelled job: got %q, want [\"RESULT 24 \" OK] (GEARMAN_WORK_FAIL)", lines)
	}
	release() // the worker finishes the cancelled job and sends its result
	w.waitLine("END ")
	lines := phpClient(t, addr, "do", "normal", fn, "second")
	if want := []string{"RESULT 0 held:second"}; !reflect.DeepEqual(lines, want) {
		t.Errorf("next job on the same worker: got %q, want %q", lines, want)
	}
	starts := startLines(t, w.mustExit())
	if len(starts) != 2 || starts[1][4] != "second" {
		t.Errorf("worker ran %v, want the cancelled job and then \"second\"", starts)
	}
}

// TestPHPDrainWorker: `drain worker ID` on a PHP worker running a job lets the job finish
// (its client gets the result), then closes that connection. The PECL worker then connects
// again by itself, as a new worker (sometimes fast enough that `workers` never shows it
// gone), so what is checked is that the draining connection is gone and the worker survived.
func TestPHPDrainWorker(t *testing.T) { forEachMode(t, testPHPDrainWorker) }

func testPHPDrainWorker(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "drained")
	rel, release := releaseFile(t)
	w := phpWorker(t, addr, []string{"RELEASE_FILE=" + rel, "IDLE_DEADLINE=4"}, 5, fn+"=hold")
	waitWorkers(t, addr, fn, 1)
	client := startProc(t, nil, "php", "client.php", addr, "do", "normal", fn, "last")
	w.waitLine("START ")
	id := ""
	for _, l := range adminList(t, addr, "workers") {
		if strings.HasSuffix(l, " : "+fn) {
			id = strings.Fields(l)[0]
		}
	}
	if got := adminLine(t, addr, "drain worker "+id); got != "OK\r\n" {
		t.Fatalf("drain worker %q: %q", id, got)
	}
	if !slices.ContainsFunc(adminList(t, addr, "workers"), func(l string) bool { return strings.Contains(l, " draining : "+fn) }) {
		t.Errorf("workers does not show the draining worker: %q", adminList(t, addr, "workers"))
	}
	release()
	if lines := client.mustExit(); !reflect.DeepEqual(lines, []string{"RESULT 0 held:last", "OK"}) {
		t.Errorf("client of the job running when the drain began: got %q", lines)
	}
	deadline := time.Now().Add(5 * time.Second)
	for slices.ContainsFunc(adminList(t, addr, "workers"), func(l string) bool { return strings.Contains(l, " draining ") }) {
		if time.Now().After(deadline) {
			t.Fatal("the drained connection was not closed after its job")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines, _ := w.wait()
	if starts := startLines(t, lines); len(starts) == 0 || starts[0][4] != "last" {
		t.Errorf("worker after the drain: %q", lines)
	}
}

// TestPHPBackgroundOutcomes: what a PHP client cannot see of a background job, Spur keeps.
// A doBackground() job whose PHP worker throws (sendException) under `retry FN 3 ...` runs
// three times, then lands in the dead-letter list with the exception's data, and
// jobStatus() reports it unknown (known = 0) once it is over, as gearmand does, so scripts
// polling it do not wait for the result's TTL; `show result` tells how it ended. A job of
// a function without a policy that completes leaves its result at once.
func TestPHPBackgroundOutcomes(t *testing.T) { forEachMode(t, testPHPBackgroundOutcomes) }

func testPHPBackgroundOutcomes(t *testing.T, srv serverMode) {
	requirePHP(t)
	addr, _ := srv.start(t)
	bad, good := fnName(t, "throws"), fnName(t, "reverses")
	if got := adminLine(t, addr, "retry "+bad+" 3 0.05 0.1"); got != "OK\r\n" {
		t.Fatalf("retry: %q", got)
	}
	w := phpWorker(t, addr, nil, 4, bad+"=exception", good+"=reverse")
	h := strings.Fields(phpClient(t, addr, "bg", "normal", bad, "w1")[0])[2]
	hg := strings.Fields(phpClient(t, addr, "bg", "normal", good, "abc")[0])[2]

	deadline := time.Now().Add(10 * time.Second)
	for {
		st := phpClient(t, addr, "status", h)
		if st[0] == "STATUS 0 0 0 0" {
			break
		}
		if !strings.HasPrefix(st[0], "STATUS 1 ") || time.Now().After(deadline) {
			t.Fatalf("jobStatus of the retried job: %q", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	dead := adminList(t, addr, "show dead "+bad)
	if len(dead) != 1 || !regexp.MustCompile("^"+regexp.QuoteMeta(h)+"\t"+bad+"\t\\S+\t3\t\\S+\t\\S+\texception\tboom:w1$").MatchString(dead[0]) {
		t.Fatalf("show dead: %q", dead)
	}
	res := adminList(t, addr, "show result "+h)
	if len(res) != 1 || !regexp.MustCompile("^"+regexp.QuoteMeta(h)+"\t"+bad+"\t\\S+\texception\t3\t\\S+\t\\S+\tboom:w1$").MatchString(res[0]) {
		t.Fatalf("show result of the dead job: %q", res)
	}
	res = adminList(t, addr, "show result "+hg)
	if len(res) != 1 || !regexp.MustCompile("^"+regexp.QuoteMeta(hg)+"\t"+good+"\t\\S+\tcomplete\t1\t\\S+\t\\S+\tcba$").MatchString(res[0]) {
		t.Fatalf("show result of the completed job: %q", res)
	}
	if starts := startLines(t, w.mustExit()); len(starts) != 4 {
		t.Errorf("worker ran %d jobs, want 3 attempts and 1", len(starts))
	}
}
