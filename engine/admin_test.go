package engine

import (
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// The text admin protocol (gearman-spec.md section 4), byte for byte, on the binary port.

// rawAdmin writes line exactly as given (no line ending added) and reads the reply.
func (c *client) rawAdmin(line string) string {
	c.t.Helper()
	c.write([]byte(line))
	return c.readAdmin()
}

func TestAdminStatusEmpty(t *testing.T) {
	addr := startServer(t, Config{})
	adm := dial(t, addr)
	if got := adm.admin("status"); got != ".\n" {
		t.Fatalf("status %q", got)
	}
	if got := adm.admin("prioritystatus"); got != ".\n" {
		t.Fatalf("prioritystatus %q", got)
	}
	if got := adm.admin("show jobs"); got != ".\n" {
		t.Fatalf("show jobs %q", got)
	}
	if got := adm.admin("show unique jobs"); got != ".\n" {
		t.Fatalf("show unique jobs %q", got)
	}
}

func TestAdminStatusCountsAndOrder(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w, w2 := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	c.submit(codec.SubmitJobBg, "beta", "", "1")
	c.submit(codec.SubmitJob, "beta", "", "2")
	w.canDo("alpha", "alpha") // a duplicate CAN_DO counts once (gearmand counts it twice)
	c.submit(codec.SubmitJob, "alpha", "", "a")
	c.submit(codec.SubmitJobLowBg, "alpha", "", "b")
	w.grab()
	w2.canDo("gamma", "alpha")
	w2.syncEcho()
	if got := adm.admin("create function delta"); got != "OK\r\n" {
		t.Fatalf("create %q", got)
	}
	want := "alpha\t2\t1\t2\n" + "beta\t2\t0\t0\n" + "delta\t0\t0\t0\n" + "gamma\t0\t0\t1\n" + ".\n"
	if got := adm.admin("status"); got != want {
		t.Fatalf("status %q, want %q", got, want)
	}
	// Command words are case-insensitive.
	if got := adm.admin("STATUS"); got != want {
		t.Fatalf("STATUS %q", got)
	}
	// Names that sort differently as whole lines than as names: "a" before "a-b" and "a0".
	c.submit(codec.SubmitJobBg, "a-b", "", "x")
	c.submit(codec.SubmitJobBg, "a", "", "x")
	c.submit(codec.SubmitJobBg, "a0", "", "x")
	got := adm.admin("status")
	var names []string
	for _, line := range strings.Split(strings.TrimSuffix(got, ".\n"), "\n") {
		if line != "" {
			names = append(names, strings.SplitN(line, "\t", 2)[0])
		}
	}
	if strings.Join(names, " ") != "a a-b a0 alpha beta delta gamma" {
		t.Fatalf("status not sorted by function name: %v", names)
	}
	// A worker that disconnects stops being counted.
	w.conn.Close()
	waitAdmin(t, adm, "status", "a\t1\t0\t0\na-b\t1\t0\t0\na0\t1\t0\t0\n"+
		"alpha\t2\t0\t1\nbeta\t2\t0\t0\ndelta\t0\t0\t0\ngamma\t0\t0\t1\n.\n")
}

func TestAdminPriorityStatus(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	c.submit(codec.SubmitJobHighBg, "f", "", "h1")
	c.submit(codec.SubmitJobHigh, "f", "", "h2")
	c.submit(codec.SubmitJob, "f", "", "n1")
	c.submit(codec.SubmitJobBg, "f", "", "n2")
	c.submit(codec.SubmitJobLow, "f", "", "l1")
	c.submit(codec.SubmitJobLowBg, "g", "", "l1")
	w.canDo("f", "f")
	w.grab() // h1 is running: not counted
	if got := adm.admin("prioritystatus"); got != "f\t1\t2\t1\t1\ng\t0\t0\t1\t0\n.\n" {
		t.Fatalf("prioritystatus %q", got)
	}
	if got := adm.admin("status"); got != "f\t5\t1\t1\ng\t1\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
}

// workersLines checks the shape of a `workers` reply ("FD IP ID : FN...\n" lines, then
// ".\n") and returns the lines with the FD column removed, sorted; fds are checked unique.
func workersLines(t *testing.T, reply string) []string {
	t.Helper()
	if !strings.HasSuffix(reply, "\n.\n") && reply != ".\n" {
		t.Fatalf("workers reply not terminated by .\\n: %q", reply)
	}
	re := regexp.MustCompile(`^(\d+) (127\.0\.0\.1 \S+ :(?: \S+)*)$`)
	fds := map[string]bool{}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(reply, ".\n"), "\n") {
		if line == "" {
			continue
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("workers line %q has the wrong shape (reply %q)", line, reply)
		}
		if fds[m[1]] {
			t.Fatalf("workers shows fd %s twice: %q", m[1], reply)
		}
		fds[m[1]] = true
		out = append(out, m[2])
	}
	sort.Strings(out)
	return out
}

func TestAdminWorkers(t *testing.T) {
	addr := startServer(t, Config{})
	w1, w2 := dial(t, addr), dial(t, addr)
	w1.send(codec.SetClientID, "worker-1")
	w1.canDo("a", "b")
	w1.syncEcho()
	w2.canDo("c")
	w2.syncEcho()
	adm := dial(t, addr)
	got := adm.admin("workers")
	if !regexp.MustCompile(`^(\d+ 127\.0\.0\.1 [^\n]*\n){3}\.\n$`).MatchString(got) {
		t.Fatalf("workers %q", got)
	}
	want := []string{"127.0.0.1 - :", "127.0.0.1 - : c", "127.0.0.1 worker-1 : b a"}
	if lines := workersLines(t, got); strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("workers %q, want lines %q (most recent registration first, admin connection with no functions)", got, want)
	}
	// A duplicate registration is listed once, in its first place (gearmand lists it twice);
	// CANT_DO removes it.
	w2.canDo("c", "d")
	w2.syncEcho()
	want = []string{"127.0.0.1 - :", "127.0.0.1 - : d c", "127.0.0.1 worker-1 : b a"}
	if lines := workersLines(t, adm.admin("workers")); strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("workers %q, want %q", lines, want)
	}
	w2.send(codec.CantDo, "c")
	w2.syncEcho()
	want = []string{"127.0.0.1 - :", "127.0.0.1 - : d", "127.0.0.1 worker-1 : b a"}
	if lines := workersLines(t, adm.admin("workers")); strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("workers after CANT_DO %q, want %q", lines, want)
	}
	// A closed connection disappears.
	w1.conn.Close()
	want = []string{"127.0.0.1 - :", "127.0.0.1 - : d"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := workersLines(t, adm.admin("workers"))
		if strings.Join(lines, "|") == strings.Join(want, "|") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers after disconnect %q, want %q", lines, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAdminMaxQueueArguments(t *testing.T) {
	addr := startServer(t, Config{})
	adm := dial(t, addr)
	if got := adm.admin("maxqueue"); got != "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n" {
		t.Fatalf("maxqueue %q", got)
	}
	for _, cmd := range []string{"maxqueue f", "maxqueue f 3", "maxqueue f 1 2", "maxqueue f 1 2 3", "maxqueue f -4", "maxqueue f x y z", "MAXQUEUE f 1"} {
		if got := adm.admin(cmd); got != "OK\r\n" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
}

func TestAdminShowJobs(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	h1 := c.submit(codec.SubmitJob, "f", "u1", "x") // foreground, will run
	h2 := c.submit(codec.SubmitJobBg, "f", "", "y") // background: persisted
	h3 := c.submit(codec.SubmitJob, "g", "-", "z")  // foreground, will be cancelled
	w.canDo("f")
	w.grab()
	if got := adm.admin("cancel job " + h3); got != "OK\r\n" {
		t.Fatalf("cancel %q", got)
	}
	want := h1 + "\t0\t0\t0\n" + h2 + "\t0\t0\t1\n" + h3 + "\t0\t1\t0\n.\n"
	if got := adm.admin("show jobs"); got != want {
		t.Fatalf("show jobs %q, want %q", got, want)
	}
	if got := adm.admin("SHOW JOBS"); got != want {
		t.Fatalf("SHOW JOBS %q", got)
	}
	if got := adm.admin("show unique jobs"); got != "u1\n\n-\n.\n" {
		t.Fatalf("show unique jobs %q", got)
	}
	// ("show jobs FN" is Spur's: one function's jobs; see TestShowStatsAndShowJobsOfAFunction.)
	for _, cmd := range []string{"show foo", "show jobs extra words", "show unique", "show unique foo"} {
		if got := adm.admin(cmd); got != "ERR UNKNOWN_SHOW_ARGUMENTS\r\n" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	if got := adm.admin("show"); got != "ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n" {
		t.Fatalf("show: %q", got)
	}
}

func TestAdminCancelQueuedJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "u", "x")
	if got := adm.admin("cancel job " + h); got != "OK\r\n" {
		t.Fatalf("cancel %q", got)
	}
	p := c.expect(codec.WorkFail)
	if string(p.body) != h {
		t.Fatalf("WORK_FAIL body %q, want %q", p.body, h)
	}
	// Cancelled: it no longer coalesces, and a second cancel does not find it.
	if got := adm.admin("cancel job " + h); got != "ERR UNKNOWN_JOB\r\n" {
		t.Fatalf("second cancel %q", got)
	}
	w := dial(t, addr)
	w.canDo("f")
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	if got := adm.admin("show jobs"); got != ".\n" {
		t.Fatalf("show jobs %q", got)
	}
	c.expectNothing(quiet)
}

func TestAdminCancelBackgroundJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJobBg, "f", "u", "x")
	next := c.submit(codec.SubmitJobBg, "f", "", "next")
	if got := adm.admin("cancel job " + h); got != "OK\r\n" {
		t.Fatalf("cancel %q", got)
	}
	w := dial(t, addr)
	w.canDo("f")
	if gh, _, _, _ := w.grab(); gh != next {
		t.Fatalf("grab %s, want %s (the cancelled job must be skipped)", gh, next)
	}
	c.expectNothing(quiet)
}

func TestAdminCancelRunningJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	h := c.submit(codec.SubmitJob, "f", "u", "x")
	w.grab()
	if got := adm.admin("cancel job " + h); got != "OK\r\n" {
		t.Fatalf("cancel %q", got)
	}
	c.expect(codec.WorkFail, h)
	// Freed at once: the worker still has it, but the server no longer counts it.
	if got := adm.admin("status"); got != "f\t0\t0\t1\n.\n" {
		t.Fatalf("status right after the cancel %q", got)
	}
	if got := adm.admin("show jobs"); got != ".\n" {
		t.Fatalf("show jobs %q", got)
	}
	if got := adm.admin("cancel job " + h); got != "ERR UNKNOWN_JOB\r\n" {
		t.Fatalf("cancelling it again: %q", got)
	}
	w.send(codec.WorkData, h, "d")
	w.send(codec.WorkStatus, h, "1", "2")
	w.send(codec.WorkComplete, h, "late result")
	w.syncEcho() // accepted silently: no ERROR
	c.expectNothing(quiet)
	// The worker goes on to its next job as usual.
	h2 := c.submit(codec.SubmitJob, "f", "", "next")
	if gh, _, _, _ := w.grab(); gh != h2 {
		t.Fatalf("next grab %s, want %s", gh, h2)
	}
	w.send(codec.WorkComplete, h2, "done")
	c.expect(codec.WorkComplete, h2, "done")
}

func TestAdminCancelErrors(t *testing.T) {
	addr := startServer(t, Config{})
	adm := dial(t, addr)
	if got := adm.admin("cancel job H:test:999"); got != "ERR UNKNOWN_JOB\r\n" {
		t.Fatalf("cancel unknown %q", got)
	}
	if got := adm.admin("cancel x y"); got != "ERR UNKNOWN_ERROR\r\n" {
		t.Fatalf("cancel x y %q", got)
	}
	if got := adm.admin("cancel job"); got != "ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n" {
		t.Fatalf("cancel job %q", got)
	}
}

func TestAdminCreateFunctionLineEndings(t *testing.T) {
	addr := startServer(t, Config{})
	adm := dial(t, addr)
	if got := adm.rawAdmin("create function abcdef\n"); got != "OK\r\n" {
		t.Fatalf("create (LF) %q", got)
	}
	if got := adm.rawAdmin("create function uvwxyz\r\n"); got != "OK\r\n" {
		t.Fatalf("create (CRLF) %q", got)
	}
	if got := adm.admin("status"); got != "abcdef\t0\t0\t0\nuvwxyz\t0\t0\t0\n.\n" {
		t.Fatalf("status %q (gearmand's LF bug would give abcde)", got)
	}
	// Creating an existing function changes nothing.
	if got := adm.admin("create function abcdef"); got != "OK\r\n" {
		t.Fatalf("create again %q", got)
	}
	if got := adm.admin("status"); got != "abcdef\t0\t0\t0\nuvwxyz\t0\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
	for _, cmd := range []string{"create", "create function", "create function a b"} {
		if got := adm.admin(cmd); got != "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
}

func TestAdminDropFunction(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	adm.admin("create function idle")
	adm.admin("create function IDLE")
	// Exactly the function named: gearmand matches without case and drops both.
	if got := adm.admin("drop function IDLE"); got != "OK\r\n" {
		t.Fatalf("drop %q", got)
	}
	if got := adm.admin("status"); got != "idle\t0\t0\t0\n.\n" {
		t.Fatalf("status after drop IDLE %q: want only idle left", got)
	}
	if got := adm.admin("drop function Idle"); got != "ERR function not found\r\n" {
		t.Fatalf("drop Idle %q", got)
	}
	if got := adm.admin("drop function idle"); got != "OK\r\n" {
		t.Fatalf("drop idle %q", got)
	}
	if got := adm.admin("status"); got != ".\n" {
		t.Fatalf("status after drop %q", got)
	}
	if got := adm.admin("drop function idle"); got != "ERR function not found\r\n" {
		t.Fatalf("drop again %q", got)
	}

	w := dial(t, addr)
	w.canDo("busy")
	w.syncEcho()
	if got := adm.admin("drop function busy"); got != "ERR there are still connected workers or executing clients\r\n" {
		t.Fatalf("drop with worker %q", got)
	}

	c.submit(codec.SubmitJobBg, "queued", "", "x")
	if got := adm.admin("drop function queued"); got != "ERR there are still queued jobs for this function\r\n" {
		t.Fatalf("drop with queued job %q", got)
	}
	if got := adm.admin("status"); got != "busy\t0\t0\t1\nqueued\t1\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}

	for _, cmd := range []string{"drop", "drop function", "drop function a b"} {
		if got := adm.admin(cmd); got != "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+drop\r\n" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}

	// Once the worker leaves, the function can be dropped; submitting again recreates it.
	w.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := adm.admin("drop function busy")
		if got == "OK\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drop after worker left %q", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w2 := dial(t, addr)
	w2.canDo("busy")
	h := c.submit(codec.SubmitJob, "busy", "", "again")
	if gh, _, _, _ := w2.grab(); gh != h {
		t.Fatalf("grab %s", gh)
	}
	w2.send(codec.WorkComplete, h, "ok")
	c.expect(codec.WorkComplete, h, "ok")
}

func TestAdminSimpleCommands(t *testing.T) {
	addr := startServer(t, Config{})
	adm := dial(t, addr)
	cases := []struct{ cmd, want string }{
		{"getpid", "OK " + strconv.Itoa(os.Getpid()) + "\n"},
		{"verbose", "OK ERROR\n"},
		{"version", "OK " + Version + "\n"},
		{"Version", "OK " + Version + "\n"},
		{"foo", "ERR UNKNOWN_COMMAND Unknown+server+commandfoo\r\n"},
		{"", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"},
		{"   ", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"},
		{"a b c d e f", "ERR INVALID_ARGUMENTS Too+many+arguments+were+sent+to+this+command\r\n"},
		{"status   ", ".\n"},
		{"  status", ".\n"},
	}
	for _, tc := range cases {
		if got := adm.admin(tc.cmd); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.cmd, got, tc.want)
		}
	}
	if got := adm.rawAdmin("\n"); got != "ERR UNKNOWN_COMMAND Unknown+server+command\r\n" {
		t.Errorf("bare LF: got %q", got)
	}
	if got := adm.rawAdmin("a b c d e f g h\n"); got != "ERR INVALID_ARGUMENTS Too+many+arguments+were+sent+to+this+command\r\n" {
		t.Errorf("8 words: got %q", got)
	}
	// The connection survives all of that (gearmand closes on more than 5 words).
	adm.syncEcho()
	if got := adm.admin("version"); got != "OK "+Version+"\n" {
		t.Fatalf("version %q", got)
	}
}

func TestAdminVerboseConfigured(t *testing.T) {
	addr := startServer(t, Config{Verbose: "INFO"})
	adm := dial(t, addr)
	if got := adm.admin("verbose"); got != "OK INFO\n" {
		t.Fatalf("verbose %q", got)
	}
}

func TestAdminShutdown(t *testing.T) {
	calls := make(chan bool, 4)
	addr := startServer(t, Config{OnShutdown: func(graceful bool) { calls <- graceful }})
	adm := dial(t, addr)
	for _, tc := range []struct {
		cmd      string
		graceful bool
	}{{"shutdown", false}, {"shutdown graceful", true}, {"SHUTDOWN GRACEFUL", true}} {
		if got := adm.admin(tc.cmd); got != "OK\r\n" {
			t.Fatalf("%s: %q", tc.cmd, got)
		}
		select {
		case g := <-calls:
			if g != tc.graceful {
				t.Fatalf("%s: OnShutdown(graceful=%v)", tc.cmd, g)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: OnShutdown not called", tc.cmd)
		}
	}
	select {
	case g := <-calls:
		t.Fatalf("unexpected OnShutdown(%v)", g)
	case <-time.After(quiet):
	}
}

func TestAdminShutdownWithoutHook(t *testing.T) {
	addr := startServer(t, Config{})
	adm := dial(t, addr)
	if got := adm.admin("shutdown"); got != "OK\r\n" {
		t.Fatalf("shutdown %q", got)
	}
}

// Text commands and binary packets interleave freely on one connection, also within one
// write.
func TestAdminInterleavedWithBinary(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	var b []byte
	b = codec.AppendRequest(b, codec.EchoReq, []byte("one"))
	b = append(b, "status\r\n"...)
	b = codec.AppendRequest(b, codec.CanDo, []byte("f"))
	b = codec.AppendRequest(b, codec.SubmitJobBg, []byte("f"), []byte(""), []byte("data"))
	b = append(b, "status\n"...)
	b = codec.AppendRequest(b, codec.EchoReq, []byte("two"))
	b = append(b, "version\r\n"...)
	b = codec.AppendRequest(b, codec.GrabJob)
	b = append(b, "prioritystatus\r\n"...)
	c.write(b)
	c.expect(codec.EchoRes, "one")
	if got := c.readAdmin(); got != ".\n" {
		t.Fatalf("first status %q", got)
	}
	h := c.expect(codec.JobCreated).args[0]
	if got := c.readAdmin(); got != "f\t1\t0\t1\n.\n" {
		t.Fatalf("second status %q", got)
	}
	c.expect(codec.EchoRes, "two")
	if got := c.readAdmin(); got != "OK "+Version+"\n" {
		t.Fatalf("version %q", got)
	}
	c.expect(codec.JobAssign, h, "f", "data")
	if got := c.readAdmin(); got != "f\t0\t0\t0\t1\n.\n" {
		t.Fatalf("prioritystatus %q", got)
	}
	// The same connection is listed once in workers, with its registration.
	if got := c.admin("workers"); !regexp.MustCompile(`^\d+ 127\.0\.0\.1 - : f\n\.\n$`).MatchString(got) {
		t.Fatalf("workers %q", got)
	}
	c.send(codec.WorkComplete, h, "")
	if got := c.admin("status"); got != "f\t0\t0\t1\n.\n" {
		t.Fatalf("status after complete %q", got)
	}
}

// A text command split over several writes is answered once it is complete.
func TestAdminSplitLine(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	c.write([]byte("sta"))
	time.Sleep(20 * time.Millisecond)
	c.write([]byte("tus\r"))
	time.Sleep(20 * time.Millisecond)
	c.write([]byte("\n"))
	if got := c.readAdmin(); got != ".\n" {
		t.Fatalf("status %q", got)
	}
}

// Cancelling a background job deletes its persistent record: `show jobs` shows it ignored
// and no longer persisted until a grab reaps it (gearmand clears job_queued on cancel).
func TestAdminCancelBackgroundJobClearsPersisted(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJobBg, "f", "u", "x")
	if got := adm.admin("show jobs"); got != h+"\t0\t0\t1\n.\n" {
		t.Fatalf("show jobs before cancel %q", got)
	}
	if got := adm.admin("cancel job " + h); got != "OK\r\n" {
		t.Fatalf("cancel %q", got)
	}
	if got := adm.admin("show jobs"); got != h+"\t0\t1\t0\n.\n" {
		t.Fatalf("show jobs after cancel %q, want IGNORE=1 PERSISTED=0", got)
	}
}

// A scheduled job that is cancelled goes at once.
func TestAdminCancelScheduledJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	c.send(codec.SubmitJobEpoch, "f", "", strconv.FormatInt(time.Now().Unix()+3600, 10), "later")
	h := c.expect(codec.JobCreated).args[0]
	if got := adm.admin("status"); got != "f\t1\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
	if got := adm.admin("cancel job " + h); got != "OK\r\n" {
		t.Fatalf("cancel %q", got)
	}
	if got := adm.admin("show jobs"); got != ".\n" {
		t.Fatalf("show jobs %q", got)
	}
	if got := adm.admin("status"); got != "f\t0\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
	if got := adm.admin("drop function f"); got != "OK\r\n" {
		t.Fatalf("drop %q", got)
	}
}

// `show scheduled` lists the jobs waiting for their SUBMIT_JOB_EPOCH time, soonest first,
// with control bytes of client-chosen fields escaped; a cancelled one leaves the list, and
// jobs that are due or plain are not in it.
func TestAdminShowScheduled(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	adm.expectAdmin("show scheduled", ".\n")
	later, sooner := time.Now().Unix()+7200, time.Now().Unix()+3600
	epoch := func(fn, unique string, at int64) string {
		c.send(codec.SubmitJobEpoch, fn, unique, strconv.FormatInt(at, 10), "data")
		return c.expect(codec.JobCreated).args[0]
	}
	hLate := epoch("report", "nightly", later)
	hSoon := epoch("mail", "a\tb\nc\\", sooner)
	hSoon2 := epoch("mail", "", sooner)
	epoch("mail", "", time.Now().Unix()-10) // due already: queued, not scheduled
	c.submit(codec.SubmitJobBg, "mail", "", "plain")
	line := func(h, fn, unique string, at int64) string {
		return h + "\t" + fn + "\t" + unique + "\t" + strconv.FormatInt(at, 10) + "\t" +
			time.Unix(at, 0).UTC().Format(time.RFC3339) + "\tnormal\tonce\n"
	}
	want := line(hSoon, "mail", `a\x09b\x0ac\x5c`, sooner) + line(hSoon2, "mail", "", sooner) +
		line(hLate, "report", "nightly", later) + ".\n"
	adm.expectAdmin("SHOW SCHEDULED", want)
	adm.expectAdmin("cancel job "+hSoon, "OK\r\n")
	want = line(hSoon2, "mail", "", sooner) + line(hLate, "report", "nightly", later) + ".\n"
	adm.expectAdmin("show scheduled", want)
	adm.expectAdmin("show scheduled extra", "ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
}

// `pause FN` keeps a function's jobs queued (no grab gets them, no sleeper is woken for
// them) until `resume FN`, which wakes its sleepers; `show paused` lists paused functions.
func TestAdminPauseResume(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	w := sleeper(t, addr, "f")
	adm.expectAdmin("pause f", "OK\r\n")
	h := c.submit(codec.SubmitJobBg, "f", "", "held")
	w.expectNothing(quiet) // not woken for a paused function
	awake := dial(t, addr)
	awake.canDo("f")
	awake.send(codec.GrabJobUniq)
	awake.expect(codec.NoJob)
	awake.send(codec.PreSleep)
	awake.expectNothing(quiet) // its PRE_SLEEP finds nothing it may take
	adm.expectAdmin("status", "f\t1\t0\t2\n.\n")
	adm.expectAdmin("show paused", "f\n.\n")
	adm.expectAdmin("PAUSE f", "OK\r\n")
	adm.expectAdmin("resume f", "OK\r\n")
	got := woken([]*client{w, awake}, quiet)
	if len(got) != 1 {
		t.Fatalf("resume woke %v, want one sleeper for the one job", got)
	}
	if gh, _, _, _ := []*client{w, awake}[got[0]].grab(); gh != h {
		t.Fatalf("grab after resume: %s, want %s", gh, h)
	}
	adm.expectAdmin("show paused", ".\n")

	// A function nobody knows yet can be paused ahead of its jobs; resuming an unknown one is
	// a no-op.
	adm.expectAdmin("pause later", "OK\r\n")
	c.submit(codec.SubmitJobBg, "later", "", "x")
	lw := dial(t, addr)
	lw.canDo("later")
	lw.send(codec.GrabJobUniq)
	lw.expect(codec.NoJob)
	adm.expectAdmin("resume nobody", "OK\r\n")
	for _, cmd := range []string{"pause", "resume", "pause a b"} {
		adm.expectAdmin(cmd, codec.AdminIncompleteArgs(strings.Fields(cmd)[0]))
	}
}

// `limit FN N` lets at most N of a function's jobs run at once: a worker asking for more
// gets NO_JOB, a sleeper is not woken past the limit, and one is woken when a running job
// ends; `show limits` lists FUNCTION, LIMIT, RUNNING; `limit FN 0` lifts it.
func TestAdminLimit(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c, adm := dial(t, addr), dial(t, addr)
	adm.expectAdmin("limit f 1", "OK\r\n")
	w1, w2 := dial(t, addr), sleeper(t, addr, "f")
	w1.canDo("f")
	h1 := c.submit(codec.SubmitJobBg, "f", "", "1")
	w2.expect(codec.Noop) // one may run
	if gh, _, _, _ := w1.grab(); gh != h1 {
		t.Fatalf("first grab %s, want %s", gh, h1)
	}
	h2 := c.submit(codec.SubmitJobBg, "f", "", "2")
	w2.send(codec.GrabJobUniq)
	w2.expect(codec.NoJob) // at the limit: passed by
	w2.send(codec.PreSleep)
	w2.expectNothing(quiet) // and not woken for it
	adm.expectAdmin("show limits", "f\t1\t1\n.\n")
	w1.send(codec.WorkComplete, h1, "done")
	w2.expect(codec.Noop) // a slot is free: the sleeper is woken
	if gh, _, _, _ := w2.grab(); gh != h2 {
		t.Fatalf("grab after the first ended: %s, want %s", gh, h2)
	}
	h3 := c.submit(codec.SubmitJobBg, "f", "", "3")
	w1.send(codec.GrabJobUniq)
	w1.expect(codec.NoJob)
	adm.expectAdmin("limit f 0", "OK\r\n")
	if gh, _, _, _ := w1.grab(); gh != h3 {
		t.Fatalf("grab without a limit: %s, want %s", gh, h3)
	}
	adm.expectAdmin("show limits", ".\n")
	for _, cmd := range []string{"limit", "limit f", "limit f 1 2"} {
		adm.expectAdmin(cmd, codec.AdminIncompleteArgs("limit"))
	}
}

// workerID returns the id (first column of `workers`) of the connection with client id cid.
func workerID(t *testing.T, adm *client, cid string) string {
	t.Helper()
	for _, l := range strings.Split(adm.admin("workers"), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[2] == cid {
			return f[0]
		}
	}
	t.Fatalf("no connection %q in workers", cid)
	return ""
}

// `drain worker ID` gives the worker no more jobs (NO_JOB, no NOOP), lets it finish what it
// holds and then closes its connection; `workers` marks it meanwhile. An idle worker goes at
// once; an id that is no worker is an error.
func TestAdminDrainWorker(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c, adm := dial(t, addr), dial(t, addr)
	w := dial(t, addr)
	w.send(codec.SetClientID, "busy")
	w.canDo("f")
	h1 := c.submit(codec.SubmitJobBg, "f", "", "1")
	if gh, _, _, _ := w.grab(); gh != h1 {
		t.Fatalf("grab %s", gh)
	}
	other := sleeper(t, addr, "f")
	id := workerID(t, adm, "busy")
	adm.expectAdmin("drain worker "+id, "OK\r\n")
	if got := adm.admin("workers"); !strings.Contains(got, " busy draining : f\n") {
		t.Fatalf("workers does not mark the draining worker:\n%s", got)
	}
	h2 := c.submit(codec.SubmitJobBg, "f", "", "2")
	other.expect(codec.Noop)
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	w.send(codec.PreSleep)
	w.expectNothing(quiet) // not woken while draining
	if gh, _, _, _ := other.grab(); gh != h2 {
		t.Fatalf("the other worker got %s, want %s", gh, h2)
	}
	w.send(codec.WorkComplete, h1, "done") // its last job ends: the connection goes
	w.expectClosed()
	waitAdmin(t, adm, "status", "f\t1\t1\t1\n.\n")

	idle := dial(t, addr)
	idle.send(codec.SetClientID, "idle")
	idle.canDo("g")
	idle.syncEcho()
	adm.expectAdmin("drain worker "+workerID(t, adm, "idle"), "OK\r\n")
	idle.expectClosed()

	c.send(codec.SetClientID, "client")
	c.syncEcho()
	for _, bad := range []string{workerID(t, adm, "client"), "999999", "x"} {
		if got := adm.admin("drain worker " + bad); !strings.HasPrefix(got, "ERR UNKNOWN_WORKER ") {
			t.Fatalf("drain worker %s: %q", bad, got)
		}
	}
	adm.expectAdmin("drain", codec.AdminIncompleteArgs("drain"))
}
