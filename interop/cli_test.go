package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// libgearman's command-line tools (Debian package gearman-tools): `gearman`
// as client and worker, `gearadmin` for the text admin protocol.

// hp returns the -h/-p arguments for the server.
func hp(addr string) []string {
	host, port, _ := strings.Cut(addr, ":")
	return []string{"-h", host, "-p", port}
}

// gearman runs the gearman CLI (client mode) with stdin to completion.
func gearman(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	return run(t, stdin, "gearman", append(hp(addr), args...)...)
}

// gearadmin runs gearadmin against the server and returns its result.
func gearadmin(t *testing.T, addr string, args ...string) result {
	t.Helper()
	r := run(t, "", "gearadmin", append(hp(addr), args...)...)
	if r.err != nil {
		t.Fatalf("gearadmin %v: %v\nstdout: %s\nstderr: %s", args, r.err, r.stdout, r.stderr)
	}
	return r
}

// gearmanWorker starts `gearman -w` serving fn with the given command.
func gearmanWorker(t *testing.T, addr string, count int, fn string, command ...string) *proc {
	t.Helper()
	args := append(hp(addr), "-w")
	if count > 0 {
		args = append(args, "-c", strconv.Itoa(count))
	}
	args = append(args, "-f", fn, "--")
	args = append(args, command...)
	return startProc(t, nil, "gearman", args...)
}

// appendWorkloadCmd is a worker command that appends each workload plus a
// newline to file (and returns nothing).
func appendWorkloadCmd(file string) []string {
	return []string{"sh", "-c", fmt.Sprintf("cat >> '%s'; echo >> '%s'", file, file)}
}

// readLines returns the lines of file.
func readLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// submitBackground submits a background job with `gearman -v -b` and returns
// the job handle it prints ("Task created: <handle>").
func submitBackground(t *testing.T, addr, fn, data string, flags ...string) string {
	t.Helper()
	args := append([]string{"-v", "-b"}, flags...)
	args = append(args, "-f", fn, data)
	r := gearman(t, addr, "", args...)
	if r.err != nil {
		t.Fatalf("gearman -b %v: %v\n%s%s", flags, r.err, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`(?m)^Task created: (\S+)$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("gearman -v -b: no 'Task created: <handle>' line in %q", r.stdout)
	}
	return m[1]
}

// TestCLIClientAndWorker: `gearman -w -- CMD` workers and `gearman` clients:
// data from argv and from stdin, the -P output prefix, -I/-L foreground
// priorities, `wc -c` as worker, and a failing worker command (WORK_FAIL:
// the client prints "Job failed" and exits 1).
func TestCLIClientAndWorker(t *testing.T) { forEachMode(t, testCLIClientAndWorker) }

func testCLIClientAndWorker(t *testing.T, srv serverMode) {
	requireCLI(t)
	addr, _ := srv.start(t)
	up, wc, bad := fnName(t, "upper"), fnName(t, "wc"), fnName(t, "false")
	upWorker := gearmanWorker(t, addr, 5, up, "tr", "a-z", "A-Z")
	wcWorker := gearmanWorker(t, addr, 1, wc, "wc", "-c")
	badWorker := gearmanWorker(t, addr, 1, bad, "false")
	waitWorkers(t, addr, up, 1)
	waitWorkers(t, addr, wc, 1)
	waitWorkers(t, addr, bad, 1)

	cases := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"argv", "", []string{"-f", up, "hello world"}, "HELLO WORLD"},
		{"stdin", "from stdin\n", []string{"-f", up}, "FROM STDIN\n"},
		{"prefix -P", "", []string{"-P", "-f", up, "prefixed"}, up + ": PREFIXED"},
		{"high -I", "", []string{"-I", "-f", up, "high"}, "HIGH"},
		{"low -L", "", []string{"-L", "-f", up, "low"}, "LOW"},
		{"wc -c", "", []string{"-f", wc, "abcde"}, "5"},
	}
	for _, c := range cases {
		r := gearman(t, addr, c.stdin, c.args...)
		got := r.stdout
		if c.name == "wc -c" {
			got = strings.TrimSpace(got)
		}
		if r.err != nil || got != c.want {
			t.Errorf("%s: gearman %v: got %q (err %v, stderr %q), want %q", c.name, c.args, got, r.err, r.stderr, c.want)
		}
	}

	r := gearman(t, addr, "", "-f", bad, "x")
	if r.exitCode() != 1 || r.stdout != "" || !strings.Contains(r.stderr, "Job failed") {
		t.Errorf("failing worker: exit %d stdout %q stderr %q, want exit 1, no output, \"Job failed\"", r.exitCode(), r.stdout, r.stderr)
	}

	for _, w := range []*proc{upWorker, wcWorker} {
		w.mustExit() // -c N: exits after N jobs
	}
	badWorker.wait() // exits non-zero after its failed job
	for _, fn := range []string{up, wc, bad} {
		waitStatus(t, addr, fn, "no jobs and no workers", func(s funcStatus) bool { return s == funcStatus{} })
	}
}

// TestCLIBackgroundPriority: `gearman -b` with -L, none and -I queues
// background jobs (gearadmin --status / --priority-status show them) that a
// later worker runs HIGH first, then NORMAL, then LOW, FIFO within each.
func TestCLIBackgroundPriority(t *testing.T) { forEachMode(t, testCLIBackgroundPriority) }

func testCLIBackgroundPriority(t *testing.T, srv serverMode) {
	requireCLI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "order")
	handles := map[string]bool{}
	for _, s := range []struct{ data, flag string }{
		{"l1", "-L"}, {"n1", ""}, {"h1", "-I"}, {"l2", "-L"}, {"n2", ""}, {"h2", "-I"},
	} {
		var flags []string
		if s.flag != "" {
			flags = append(flags, s.flag)
		}
		h := submitBackground(t, addr, fn, s.data, flags...)
		if handles[h] {
			t.Fatalf("duplicate job handle %q", h)
		}
		handles[h] = true
	}

	st := gearadmin(t, addr, "--status").stdout
	if want := fn + "\t6\t0\t0\n"; !strings.Contains(st, want) || !strings.HasSuffix(st, ".\n") {
		t.Errorf("gearadmin --status: got %q, want a line %q and a final \".\"", st, want)
	}
	ps := gearadmin(t, addr, "--priority-status").stdout
	if want := fn + "\t2\t2\t2\t0\n"; !strings.Contains(ps, want) {
		t.Errorf("gearadmin --priority-status: got %q, want a line %q", ps, want)
	}

	out := filepath.Join(t.TempDir(), "order")
	gearmanWorker(t, addr, 6, fn, appendWorkloadCmd(out)...).mustExit()
	if got, want := readLines(t, out), []string{"h1", "h2", "n1", "n2", "l1", "l2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("execution order %v, want %v", got, want)
	}
	st = gearadmin(t, addr, "--status").stdout
	if want := fn + "\t0\t0\t0\n"; !strings.Contains(st, want) {
		t.Errorf("gearadmin --status after the worker: got %q, want a line %q", st, want)
	}
}

// TestGearadminJobListings: three background jobs with explicit uniques and
// no worker: --status shows "fn\t3\t0\t0", --priority-status the NORMAL
// count, --show-jobs one "HANDLE\t0\t0\t1" line per job (the handles
// `gearman -v -b` printed; persisted flag set for background jobs, as
// gearmand does even with the builtin queue), --show-unique-jobs the uniques; --workers lists a
// `gearman -w` worker with its function and gearadmin's own connection.
func TestGearadminJobListings(t *testing.T) { forEachMode(t, testGearadminJobListings) }

func testGearadminJobListings(t *testing.T, srv serverMode) {
	requireCLI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "jobs")
	var handles []string
	for i := 1; i <= 3; i++ {
		handles = append(handles, submitBackground(t, addr, fn, fmt.Sprintf("data%d", i), "-u", fmt.Sprintf("uniq-%d", i)))
	}

	st := gearadmin(t, addr, "--status").stdout
	if want := fn + "\t3\t0\t0\n"; !strings.Contains(st, want) {
		t.Errorf("--status: got %q, want a line %q", st, want)
	}
	ps := gearadmin(t, addr, "--priority-status").stdout
	if want := fn + "\t0\t3\t0\t0\n"; !strings.Contains(ps, want) {
		t.Errorf("--priority-status: got %q, want a line %q", ps, want)
	}

	// --show-jobs: HANDLE RETRIES IGNORE PERSISTED. gearmand 1.1.20 flags
	// background jobs as persisted even with the memory-only builtin queue.
	jobs := listLines(gearadmin(t, addr, "--show-jobs").stdout)
	var gotHandles []string
	for _, l := range jobs {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			t.Errorf("--show-jobs: malformed line %q, want HANDLE\\tRETRIES\\tIGNORE\\tPERSISTED", l)
			continue
		}
		gotHandles = append(gotHandles, f[0])
		if f[1] != "0" || f[2] != "0" {
			t.Errorf("--show-jobs line %q: want RETRIES 0 and IGNORE 0", l)
		}
		if f[3] != "1" {
			t.Errorf("--show-jobs line %q: PERSISTED is %q, gearmand shows 1 for a background job (also with -q builtin)", l, f[3])
		}
	}
	if !sameSet(gotHandles, handles) {
		t.Errorf("--show-jobs handles: got %q, want (any order) %q", gotHandles, handles)
	}
	uniques := listLines(gearadmin(t, addr, "--show-unique-jobs").stdout)
	if want := []string{"uniq-1", "uniq-2", "uniq-3"}; !sameSet(uniques, want) {
		t.Errorf("--show-unique-jobs: got %q, want (any order) %q", uniques, want)
	}

	out := filepath.Join(t.TempDir(), "ran")
	w := gearmanWorker(t, addr, 0, fn, appendWorkloadCmd(out)...)
	waitStatus(t, addr, fn, "jobs done, 1 worker", func(s funcStatus) bool { return s == funcStatus{0, 0, 1} })
	if got := readLines(t, out); !sameSet(got, []string{"data1", "data2", "data3"}) {
		t.Errorf("worker ran %q, want data1..3", got)
	}
	workers := listLines(gearadmin(t, addr, "--workers").stdout)
	workerLine := regexp.MustCompile(`^\d+ 127\.0\.0\.1 \S+ : ` + regexp.QuoteMeta(fn) + `$`)
	selfLine := regexp.MustCompile(`^\d+ 127\.0\.0\.1 - :$`)
	var sawWorker, sawSelf bool
	for _, l := range workers {
		sawWorker = sawWorker || workerLine.MatchString(l)
		sawSelf = sawSelf || selfLine.MatchString(l)
	}
	if !sawWorker || !sawSelf {
		t.Errorf("--workers: got %q, want a line matching %q and one matching %q", workers, workerLine, selfLine)
	}
	_ = w.cmd.Process.Kill()
	w.wait()
	waitStatus(t, addr, fn, "worker gone", func(s funcStatus) bool { return s.workers == 0 })
}

// TestGearadminServerInfo: --getpid prints the server's PID; --server-version
// prints a non-empty version; --server-verbose prints a log level name.
func TestGearadminServerInfo(t *testing.T) { forEachMode(t, testGearadminServerInfo) }

func testGearadminServerInfo(t *testing.T, srv serverMode) {
	requireCLI(t)
	s := srv.launch(t)
	if got := strings.TrimSpace(gearadmin(t, s.addr, "--getpid").stdout); got != strconv.Itoa(s.pid) {
		t.Errorf("--getpid: got %q, want %d", got, s.pid)
	}
	r := gearadmin(t, s.addr, "--server-version")
	if v := strings.TrimSpace(r.stdout); v == "" || strings.Contains(v, "\n") || strings.HasPrefix(v, "ERR") || r.stderr != "" {
		t.Errorf("--server-version: got stdout %q stderr %q, want one non-empty version line", r.stdout, r.stderr)
	}
	levels := []string{"FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}
	r = gearadmin(t, s.addr, "--server-verbose")
	if v := strings.TrimSpace(r.stdout); !contains(levels, v) || r.stderr != "" {
		t.Errorf("--server-verbose: got stdout %q stderr %q, want one of %v", r.stdout, r.stderr, levels)
	}
}

// TestGearadminCreateDropFunction: --create-function makes a function appear
// in --status with zero counts; --drop-function removes it ("OK"); dropping
// it again reports "function not found"; dropping a function with a
// connected worker is refused.
func TestGearadminCreateDropFunction(t *testing.T) { forEachMode(t, testGearadminCreateDropFunction) }

func testGearadminCreateDropFunction(t *testing.T, srv serverMode) {
	requireCLI(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "created")
	if r := gearadmin(t, addr, "--create-function", fn); r.stdout != "OK\n" {
		t.Errorf("--create-function: got %q, want \"OK\\n\"", r.stdout)
	}
	if st := gearadmin(t, addr, "--status").stdout; !strings.Contains(st, fn+"\t0\t0\t0\n") {
		t.Errorf("--status after create: got %q, want a line %q", st, fn+"\t0\t0\t0")
	}
	if r := gearadmin(t, addr, "--drop-function", fn); r.stdout != "OK\n" {
		t.Errorf("--drop-function: got %q, want \"OK\\n\"", r.stdout)
	}
	if st := gearadmin(t, addr, "--status").stdout; strings.Contains(st, fn) {
		t.Errorf("--status after drop still lists %s: %q", fn, st)
	}
	if r := gearadmin(t, addr, "--drop-function", fn); r.stdout != "" || !strings.Contains(r.stderr, "function not found") {
		t.Errorf("second --drop-function: stdout %q stderr %q, want an error mentioning \"function not found\"", r.stdout, r.stderr)
	}

	busy := fnName(t, "busy")
	w := gearmanWorker(t, addr, 0, busy, "cat")
	waitWorkers(t, addr, busy, 1)
	if r := gearadmin(t, addr, "--drop-function", busy); r.stdout != "" || !strings.Contains(r.stderr, "still connected workers") {
		t.Errorf("--drop-function with a worker: stdout %q stderr %q, want an error mentioning \"still connected workers\"", r.stdout, r.stderr)
	}
	if _, ok := statusOf(t, addr, busy); !ok {
		t.Errorf("function %s vanished after a refused drop", busy)
	}
	_ = w.cmd.Process.Kill()
	w.wait()
}

// TestGearadminCancelJob: --cancel-job on a queued foreground job fails the
// waiting `gearman` client; on a queued background job it keeps the job from
// ever running while the next job does; an unknown handle is reported as
// UNKNOWN_JOB.
func TestGearadminCancelJob(t *testing.T) { forEachMode(t, testGearadminCancelJob) }

func testGearadminCancelJob(t *testing.T, srv serverMode) {
	requireCLI(t)
	addr, _ := srv.start(t)

	fg := fnName(t, "fg")
	client := startProc(t, nil, "gearman", append(hp(addr), "-f", fg, "foreground")...)
	waitStatus(t, addr, fg, "1 queued job", func(s funcStatus) bool { return s.total == 1 })
	jobs := listLines(gearadmin(t, addr, "--show-jobs").stdout)
	if len(jobs) != 1 {
		t.Fatalf("--show-jobs: got %q, want exactly one job", jobs)
	}
	h, _, _ := strings.Cut(jobs[0], "\t")
	if r := gearadmin(t, addr, "--cancel-job", h); r.stdout != "OK\n" {
		t.Errorf("--cancel-job %s: got %q, want \"OK\\n\"", h, r.stdout)
	}
	lines, err := client.wait()
	if client.cmd.ProcessState.ExitCode() != 1 || len(lines) != 0 || !strings.Contains(client.stderr.String(), "Job failed") {
		t.Errorf("client of the cancelled job: exit %v stdout %q stderr %q, want exit 1 and \"Job failed\"", err, lines, client.stderr.String())
	}

	bg := fnName(t, "bg")
	cancelled := submitBackground(t, addr, bg, "cancelled")
	submitBackground(t, addr, bg, "kept")
	if r := gearadmin(t, addr, "--cancel-job", cancelled); r.stdout != "OK\n" {
		t.Errorf("--cancel-job %s: got %q, want \"OK\\n\"", cancelled, r.stdout)
	}
	out := filepath.Join(t.TempDir(), "ran")
	gearmanWorker(t, addr, 1, bg, appendWorkloadCmd(out)...).mustExit()
	if got := readLines(t, out); !reflect.DeepEqual(got, []string{"kept"}) {
		t.Errorf("worker ran %q, want only [kept]", got)
	}

	if r := gearadmin(t, addr, "--cancel-job", cancelled+"0"); r.stdout != "" || !strings.Contains(r.stderr, "UNKNOWN_JOB") {
		t.Errorf("--cancel-job of an unknown handle: stdout %q stderr %q, want an error mentioning UNKNOWN_JOB", r.stdout, r.stderr)
	}
}

// TestCLIServerExceptionsOption: with the server's --exceptions flag every
// connection has the exceptions option, so the `gearman` client (which does
// not request it itself) receives the PHP worker's WORK_EXCEPTION and prints
// its payload on stderr, exiting 0.
func TestCLIServerExceptionsOption(t *testing.T) { forEachMode(t, testCLIServerExceptionsOption) }

func testCLIServerExceptionsOption(t *testing.T, srv serverMode) {
	requireCLI(t)
	requirePHP(t)
	addr, _ := srv.start(t, "--exceptions")
	fn := fnName(t, "exception")
	w := phpWorker(t, addr, nil, 1, fn+"=exception")
	waitWorkers(t, addr, fn, 1)
	r := gearman(t, addr, "", "-f", fn, "q1")
	if r.err != nil || r.stdout != "" || r.stderr != "boom:q1" {
		t.Errorf("gearman client: exit %v stdout %q stderr %q, want exit 0, no stdout, stderr \"boom:q1\"", r.err, r.stdout, r.stderr)
	}
	w.mustExit()
}

// listLines splits a gearadmin list reply, dropping the final ".".
func listLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "." {
		lines = lines[:n-1]
	}
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}

// sameSet reports whether a and b hold the same strings, ignoring order.
func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}
