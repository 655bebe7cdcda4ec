package engine

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Results, retry policies and dead letters (outcome.go, results.go, dead.go), over the
// protocol, without a store: results are kept in memory.

var withResults = Config{ResultTTL: time.Hour}

// grabWithin polls GRAB_JOB_UNIQ until a job comes (a retry waits out its backoff).
func (c *client) grabWithin(d time.Duration) (handle, data string) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.send(codec.GrabJobUniq)
		p := c.recv()
		if p.typ == codec.JobAssignUniq {
			return p.args[0], p.args[3]
		}
		if p.typ != codec.NoJob {
			c.t.Fatalf("grab: got %v", p)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no job within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resultFields returns `show result`'s line split at tabs, or nil for no result.
func resultFields(t *testing.T, c *client, args string) []string {
	t.Helper()
	got := c.admin("show result " + args)
	if got == ".\n" {
		return nil
	}
	if !strings.HasSuffix(got, "\n.\n") || strings.Count(got, "\n") != 2 {
		t.Fatalf("show result %s: %q", args, got)
	}
	return strings.Split(strings.TrimSuffix(got, "\n.\n"), "\t")
}

func TestResultOfEveryBackgroundOutcome(t *testing.T) {
	e, addr := startEngine(t, withResults, 1)
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	ok := c.submit(codec.SubmitJobBg, "f", "u-ok", "1")
	bad := c.submit(codec.SubmitJobBg, "f", "", "2")
	exc := c.submit(codec.SubmitJobBg, "f", "u-exc", "3")
	for _, want := range []string{ok, bad, exc} {
		if h, _, _, _ := w.grab(); h != want {
			t.Fatalf("grabbed %s, want %s", h, want)
		}
	}
	if r := resultFields(t, adm, ok); r != nil {
		t.Fatalf("a running job has a result: %q", r)
	}
	w.send(codec.WorkComplete, ok, "done\tand\r\nmore")
	w.send(codec.WorkFail, bad)
	w.send(codec.WorkException, exc, "boom")
	w.syncEcho()
	r := resultFields(t, adm, ok)
	if r == nil || r[0] != ok || r[1] != "f" || r[2] != "u-ok" || r[3] != "complete" || r[4] != "1" || r[7] != `done\x09and\x0d\x0amore` {
		t.Fatalf("result of %s: %q", ok, r)
	}
	for _, ts := range r[5:7] {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("time %q: %v", ts, err)
		}
	}
	if r := resultFields(t, adm, bad); r == nil || r[3] != "fail" || r[7] != "" {
		t.Fatalf("result of %s: %q", bad, r)
	}
	if r := resultFields(t, adm, "unique f u-exc"); r == nil || r[0] != exc || r[3] != "exception" || r[7] != "boom" {
		t.Fatalf("result by unique: %q", r)
	}
	if r := resultFields(t, adm, "unique g u-exc"); r != nil {
		t.Fatalf("another function's unique found %q", r)
	}
	// GET_STATUS keeps gearmand's answer: a finished job is not known.
	if st := c.jobStatus(ok); st[1] != "0" {
		t.Fatalf("GET_STATUS of a finished job: %q", st)
	}
	adm.expectAdmin("show result", "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+show result\r\n")
	// The typed API reads the same results.
	if res, found, err := e.Result(ok); err != nil || !found || res.Outcome != wal.OutcomeComplete || string(res.Data) != "done\tand\r\nmore" || res.Started == 0 || res.Finished < res.Started {
		t.Fatalf("Result(%s) = %+v, %v, %v", ok, res, found, err)
	}
	if res, found, err := e.ResultByUnique("f", "u-exc"); err != nil || !found || res.Handle != exc {
		t.Fatalf("ResultByUnique = %+v, %v, %v", res, found, err)
	}
}

func TestResultsOffByDefaultAndForForegroundJobs(t *testing.T) {
	addr := startServer(t, Config{})
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	h := c.submit(codec.SubmitJobBg, "f", "", "1")
	w.grab()
	w.send(codec.WorkComplete, h, "x")
	w.syncEcho()
	if got := adm.admin("show result " + h); !strings.HasPrefix(got, "ERR QUEUE_ERROR results+are+not+kept") {
		t.Fatalf("show result with results off: %q", got)
	}

	addr = startServer(t, withResults)
	c, w, adm = dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	c.send(codec.SubmitJob, "f", "", "1")
	h = c.expect(codec.JobCreated).args[0]
	w.grab()
	w.send(codec.WorkComplete, h, "x")
	c.expect(codec.WorkComplete, h, "x")
	if r := resultFields(t, adm, h); r != nil {
		t.Fatalf("a foreground job left a result: %q", r)
	}
}

func TestMemoryResultsExpireAndStayBounded(t *testing.T) {
	addr := startServer(t, Config{ResultTTL: 200 * time.Millisecond, ResultMaxBytes: 4096})
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	var handles []string
	for i := 0; i < 40; i++ {
		h := c.submit(codec.SubmitJobBg, "f", "", strings.Repeat("d", 100))
		w.grab()
		w.send(codec.WorkComplete, h, strings.Repeat("r", 100))
		handles = append(handles, h)
	}
	w.syncEcho()
	if r := resultFields(t, adm, handles[0]); r != nil {
		t.Fatalf("the oldest result outlived the byte bound: %q", r)
	}
	if r := resultFields(t, adm, handles[39]); r == nil {
		t.Fatal("the newest result is gone")
	}
	time.Sleep(250 * time.Millisecond)
	h := c.submit(codec.SubmitJobBg, "f", "", "x") // an insertion expires the old ones
	w.grab()
	w.send(codec.WorkComplete, h, "y")
	w.syncEcho()
	if r := resultFields(t, adm, handles[39]); r != nil {
		t.Fatalf("a result outlived its TTL: %q", r)
	}
	if r := resultFields(t, adm, h); r == nil {
		t.Fatal("the newest result is gone")
	}
}

func TestCancelLeavesAFailResult(t *testing.T) {
	addr := startServer(t, withResults)
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJobBg, "f", "", "1")
	adm.expectAdmin("cancel job "+h, "OK\r\n")
	if r := resultFields(t, adm, h); r == nil || r[3] != "fail" || r[7] != "cancelled" {
		t.Fatalf("result of a cancelled job: %q", r)
	}
}

func TestRetryPolicyAdmin(t *testing.T) {
	addr := startServer(t, Config{})
	adm := dial(t, addr)
	adm.expectAdmin("retry f 3 0.5 10s", "OK\r\n")
	adm.expectAdmin("RETRY g 5 250ms 1m", "OK\r\n")
	adm.expectAdmin("show retries", "f\t3\t500ms\t10s\ng\t5\t250ms\t1m0s\n.\n")
	for line, want := range map[string]string{
		"retry f 3 2s 1s":   "ERR INVALID_ARGUMENTS retry:+max+1s+is+shorter+than+base+2s\r\n",
		"retry f x 1 2":     `ERR INVALID_ARGUMENTS retry:+attempts+"x":+want+a+number+from+1+to+1000` + "\r\n",
		"retry f 3 soon 2":  `ERR INVALID_ARGUMENTS retry:+base+"soon":+want+seconds+(0.5)+or+a+duration+(500ms)` + "\r\n",
		"retry f 3 0.5":     "ERR INVALID_ARGUMENTS retry:+want+ATTEMPTS+BASE+MAX,+or+off\r\n",
		"retry f 3 0 1":     "ERR INVALID_ARGUMENTS retry:+base+\"0\":+want+from+1ms+to+30+days\r\n",
		"retry f":           "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+retry\r\n",
		"retry f 3 1 NaN":   "ERR INVALID_ARGUMENTS retry:+max+\"NaN\":+out+of+range\r\n",
		"retry dead":        "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+retry\r\n",
		"retry dead H:x:99": "ERR UNKNOWN_JOB\r\n",
		"purge dead":        "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+purge\r\n",
	} {
		adm.expectAdmin(line, want)
	}
	adm.expectAdmin("retry g off", "OK\r\n")
	adm.expectAdmin("retry nothing off", "OK\r\n")
	adm.expectAdmin("show retries", "f\t3\t500ms\t10s\n.\n")
}

// A background job of a function with a policy fails, runs again after its backoff (same
// handle), and after its last attempt becomes a dead letter; `retry dead` brings it back.
func TestRetryThenDeadLetterThenRetryDead(t *testing.T) {
	addr := startServer(t, withResults)
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	adm.expectAdmin("retry f 3 50ms 80ms", "OK\r\n")
	w.canDo("f")
	// Fails once, waits out its backoff, then completes: one result, two attempts.
	h := c.submit(codec.SubmitJobBg, "f", "u1", "payload")
	if got, data := w.grabWithin(time.Second); got != h || data != "payload" {
		t.Fatalf("first attempt: %s %q", got, data)
	}
	w.send(codec.WorkFail, h)
	w.syncEcho()
	// Waiting, it is listed with the scheduled jobs and still known to GET_STATUS.
	if got := adm.admin("show scheduled"); !strings.HasPrefix(got, h+"\tf\tu1\t") {
		t.Fatalf("show scheduled while it waits: %q", got)
	}
	if st := c.jobStatus(h); st[1] != "1" || st[2] != "0" {
		t.Fatalf("GET_STATUS while it waits: %q", st)
	}
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob) // the backoff holds it
	if got, _ := w.grabWithin(time.Second); got != h {
		t.Fatalf("second attempt: %s", got)
	}
	w.send(codec.WorkComplete, h, "ok")
	w.syncEcho()
	if r := resultFields(t, adm, h); r == nil || r[3] != "complete" || r[4] != "2" || r[7] != "ok" {
		t.Fatalf("result after one retry: %q", r)
	}

	// Fails every time: a dead letter after three attempts.
	h = c.submit(codec.SubmitJobBg, "f", "u2", "again")
	start := time.Now()
	for attempt := 1; attempt <= 3; attempt++ {
		got, _ := w.grabWithin(2 * time.Second)
		if got != h {
			t.Fatalf("attempt %d: got %s, want %s", attempt, got, h)
		}
		w.send(codec.WorkException, h, "err"+string(rune('0'+attempt)))
		w.syncEcho()
	}
	// Backoffs 50ms and 80ms (capped), ±10%: at least 45+72ms before the third attempt.
	if d := time.Since(start); d < 117*time.Millisecond {
		t.Fatalf("three attempts took %v, less than the backoffs", d)
	}
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	dead := adm.admin("show dead")
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(h) + "\tf\tu2\t3\t(\\S+)\t(\\S+)\texception\terr3\n\\.\n$").FindStringSubmatch(dead)
	if m == nil {
		t.Fatalf("show dead: %q", dead)
	}
	adm.expectAdmin("show dead g", ".\n")
	if got := adm.admin("show dead f"); got != dead {
		t.Fatalf("show dead f: %q", got)
	}
	if r := resultFields(t, adm, h); r == nil || r[3] != "exception" || r[4] != "3" || r[7] != "err3" {
		t.Fatalf("result of the dead job: %q", r)
	}
	if st := c.jobStatus(h); st[1] != "0" {
		t.Fatalf("GET_STATUS of a dead job: %q", st)
	}

	adm.expectAdmin("retry dead "+h, "OK\r\n")
	adm.expectAdmin("show dead", ".\n")
	got, data := w.grabWithin(time.Second)
	if got != h || data != "again" {
		t.Fatalf("retried dead letter: %s %q", got, data)
	}
	w.send(codec.WorkComplete, h, "fine")
	w.syncEcho()
	if r := resultFields(t, adm, h); r == nil || r[3] != "complete" || r[4] != "1" {
		t.Fatalf("result after retry dead (fresh attempts): %q", r)
	}
}

func TestWorkerLostCountsAsAFailedAttemptUnderAPolicy(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	adm.expectAdmin("retry f 2 1ms 1ms", "OK\r\n")
	h := c.submit(codec.SubmitJobBg, "f", "", "x")
	for i := 0; i < 2; i++ {
		w := dial(t, addr)
		w.canDo("f")
		if got, _ := w.grabWithin(2 * time.Second); got != h {
			t.Fatalf("grab %d: %s", i, got)
		}
		w.conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := adm.admin("show dead")
		if regexp.MustCompile("^" + regexp.QuoteMeta(h) + "\tf\t\t2\t\\S+\t\\S+\tfail\tworker disconnected\n\\.\n$").MatchString(got) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("show dead after two lost workers: %q", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetryPolicyLeavesForegroundJobsAlone(t *testing.T) {
	addr := startServer(t, Config{})
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	adm.expectAdmin("retry f 5 1ms 1ms", "OK\r\n")
	w.canDo("f")
	c.send(codec.SubmitJob, "f", "", "x")
	h := c.expect(codec.JobCreated).args[0]
	w.grab()
	w.send(codec.WorkFail, h)
	c.expect(codec.WorkFail, h)
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	adm.expectAdmin("show dead", ".\n")
}

func TestDeadLettersPurgeAndBound(t *testing.T) {
	addr := startServer(t, Config{DeadMax: 3})
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	adm.expectAdmin("retry f 1 1ms 1ms", "OK\r\n")
	adm.expectAdmin("retry g 1 1ms 1ms", "OK\r\n")
	w.canDo("f", "g")
	var hs []string
	for i := 0; i < 4; i++ {
		h := c.submit(codec.SubmitJobBg, "f", "", "x")
		w.grab()
		w.send(codec.WorkFail, h)
		hs = append(hs, h)
	}
	hg := c.submit(codec.SubmitJobBg, "g", "", "y")
	w.grab()
	w.send(codec.WorkFail, hg)
	w.syncEcho()
	got := adm.admin("show dead")
	if strings.Count(got, "\n") != 4 || strings.Contains(got, hs[0]+"\t") || strings.Contains(got, hs[1]+"\t") ||
		!strings.Contains(got, hs[2]+"\t") || !strings.Contains(got, hg+"\t") {
		t.Fatalf("show dead after 5 deaths with a bound of 3: %q", got)
	}
	adm.expectAdmin("purge dead f", "OK\r\n")
	if got := adm.admin("show dead"); !strings.HasPrefix(got, hg+"\t") || strings.Count(got, "\n") != 2 {
		t.Fatalf("show dead after purge: %q", got)
	}
	adm.expectAdmin("retry dead all g", "OK\r\n")
	if h, _ := w.grabWithin(time.Second); h != hg {
		t.Fatalf("retry dead all: %s", h)
	}
}

func TestBackoff(t *testing.T) {
	p := queue.RetryPolicy{Attempts: 10, Base: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[uint32]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 9: time.Second, 70: time.Second} {
		lo, hi := want, want
		for i := 0; i < 200; i++ {
			d := backoff(p, n)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < want*9/10 || hi > want*11/10 || hi-lo < want/20 {
			t.Errorf("backoff after failure %d: from %v to %v, want %v ±10%% with jitter", n, lo, hi, want)
		}
	}
}

func TestParseRetryPolicy(t *testing.T) {
	p, err := ParseRetryPolicy([]string{"4", "0.25", "1m"})
	if err != nil || p != (queue.RetryPolicy{Attempts: 4, Base: 250 * time.Millisecond, Max: time.Minute}) {
		t.Fatalf("%+v %v", p, err)
	}
	if p, err := ParseRetryPolicy([]string{"OFF"}); err != nil || p != (queue.RetryPolicy{}) {
		t.Fatalf("off: %+v %v", p, err)
	}
	for _, bad := range [][]string{{"-1", "1", "1"}, {"1001", "1", "1"}, {"1", "1e9", "1e9"}, {"1", "-1s", "1s"}, {}} {
		if _, err := ParseRetryPolicy(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A CAN_DO_TIMEOUT that runs out is a failed attempt under a retry policy: the job waits out
// its backoff and then runs again; its second timeout makes it a dead letter.
func TestTimeoutCountsAsAFailedAttemptUnderAPolicy(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	adm.expectAdmin("retry slow 2 1ms 1ms", "OK\r\n")
	w.send(codec.CanDoTimeout, "slow", "1000")
	h := c.submit(codec.SubmitJobBg, "slow", "", "x")
	if got, _ := w.grabWithin(time.Second); got != h {
		t.Fatalf("grab: %s", got)
	}
	if got, _ := w.grabWithin(3 * time.Second); got != h { // after the 1 s timeout and backoff
		t.Fatalf("second attempt: %s", got)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := adm.admin("show dead")
		if strings.HasPrefix(got, h+"\tslow\t\t2\t") && strings.Contains(got, "\tfail\tworker timeout\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("show dead after two timeouts: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
