package main

// spurd -q postgres end to end: a real PostgreSQL (pgtest), a real spurd, raw Gearman
// packets.

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// renewFailures is spur_lease_renewal_failures_total in the /metrics of httpAddr.
func renewFailures(t *testing.T, httpAddr string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return metricValue(t, string(body), `spur_lease_renewal_failures_total{node="pg-down"}`)
}

// pgCount runs a count query on dsn.
func pgCount(t *testing.T, dsn, q string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// withPassword puts a password into a pgtest DSN (the test server trusts every local
// connection, so any will do): spurd must never print it.
func withPassword(dsn, pw string) string {
	return strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:"+pw+"@", 1)
}

func TestPostgresFlagsValidated(t *testing.T) {
	t.Parallel()
	code, out := runRefused(t, "-q", "postgres")
	if code != 2 || !strings.Contains(out, "-q postgres needs --postgres-dsn") {
		t.Errorf("-q postgres without a DSN: exit %d, %q", code, out)
	}
	code, out = runRefused(t, "-q", "pebble", "--data-dir", t.TempDir(), "--postgres-dsn", "postgres://x@127.0.0.1/db")
	if code != 2 || !strings.Contains(out, "--postgres-dsn needs -q postgres") {
		t.Errorf("--postgres-dsn with -q pebble: exit %d, %q", code, out)
	}
	code, out = runRefused(t, "-q", "postgres", "--postgres-dsn", "postgres://x@127.0.0.1/db", "--lease", "10ms")
	if code != 2 || !strings.Contains(out, "--lease") {
		t.Errorf("a lease of 10ms: exit %d, %q", code, out)
	}
	// Nobody listens on port 1: spurd says it cannot reach the database, without the password.
	code, out = runRefused(t, "-q", "postgres", "--postgres-dsn", "postgres://spur:s3cret@127.0.0.1:1/db?connect_timeout=2")
	if code != 1 || !strings.Contains(out, "cannot reach PostgreSQL at postgres://spur@127.0.0.1:1/db") || strings.Contains(out, "s3cret") {
		t.Errorf("an unreachable database: exit %d, %q", code, out)
	}
}

// grabNext gets the next job for worker w, which has said CAN_DO: a job the node holds at
// once, one it claims from the store after a NOOP (the worker asleep meanwhile).
func grabNext(t *testing.T, w *gconn, within time.Duration) assignment {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if a, ok := w.grabAll(); ok {
			return a
		}
		w.send(codec.PreSleep)
		if typ, body := w.recvWithin(time.Until(deadline)); typ != codec.Noop {
			t.Fatalf("sleeping worker got %v %q, want NOOP", typ, body)
		}
	}
}

// expectJobs has worker w take and complete every job of jobs (in whatever order the node
// hands them out: those it holds, those it claims), each with what it was submitted with.
func expectJobs(t *testing.T, w *gconn, jobs ...*job) {
	t.Helper()
	want := map[string]*job{}
	for _, j := range jobs {
		want[j.handle] = j
	}
	for range jobs {
		a := grabNext(t, w, 10*time.Second)
		j := want[a.handle]
		if j == nil {
			t.Fatalf("grabbed %+v, not one of the jobs expected (or twice)", a)
		}
		delete(want, a.handle)
		typ := codec.JobAssignUniq
		if j.reducer != "" {
			typ = codec.JobAssignAll
		}
		if exp := (assignment{typ: typ, handle: j.handle, fn: j.fn, unique: j.unique, reducer: j.reducer, data: j.data}); a != exp {
			t.Fatalf("grabbed %+v\n                  want %+v", a, exp)
		}
		w.sendStr(codec.WorkComplete, j.handle, "done")
	}
	w.expectNoJob()
}

// Background jobs submitted to spurd -q postgres are rows once JOB_CREATED is answered
// (held by the node, or offered to the cluster): after a SIGKILL, a spurd with the same node
// name recovers those it held and claims the others, coalesces onto them, hands every one
// out with what it was submitted with, and deletes each row as its job completes, keeping
// its result. The startup line names the database without its password.
func TestPostgresQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := pgtest.New(t, pgtest.Options{})
	dsn := srv.NewDatabase(t)
	args := []string{"-q", "postgres", "--postgres-dsn", withPassword(dsn, "s3cret"), "--node-name", "pg-node",
		"--job-handle-prefix", handlePrefix, "--lease", "5s"}
	cmd, addr, stderr := startSpurd(t, args...)
	cl := dialG(t, addr)
	const fn = "pgdur"
	var (
		low    = &job{typ: codec.SubmitJobLowBg, fn: fn, unique: "u-low", data: "low"}
		normal = &job{typ: codec.SubmitJobBg, fn: fn, data: "normal\x00binary\r\n\xff"}
		high   = &job{typ: codec.SubmitJobHighBg, fn: fn, unique: "u-high", data: "high"}
		reduce = &job{typ: codec.SubmitReduceJobBackground, fn: fn, unique: "u-reduce", reducer: "red", data: "reduce"}
	)
	jobs := []*job{low, normal, high, reduce}
	cl.submitMany(jobs)
	if h := cl.submit(&job{typ: codec.SubmitJobBg, fn: fn, unique: "u-low", data: "again"}); h != low.handle {
		t.Fatalf("coalescing submit: handle %s, want %s", h, low.handle)
	}
	if n := pgCount(t, dsn, "SELECT count(*) FROM spur_jobs WHERE function = '"+fn+"'"); n != len(jobs) {
		t.Fatalf("%d rows once every JOB_CREATED came, want %d", n, len(jobs))
	}
	stopSpurd(t, cmd, stderr, true)
	if out := stderr.String(); !strings.Contains(out, "queue postgres: data in PostgreSQL postgres://postgres@127.0.0.1:") ||
		strings.Contains(out, "s3cret") {
		t.Fatalf("startup line: %q", out)
	}

	cmd, addr, stderr = startSpurd(t, args...)
	defer stopSpurd(t, cmd, stderr, false)
	cl = dialG(t, addr)
	if h := cl.submit(&job{typ: codec.SubmitJobBg, fn: fn, unique: "u-high", data: "again"}); h != high.handle {
		t.Fatalf("coalescing submit after the restart: handle %s, want %s", h, high.handle)
	}
	fresh := cl.submit(&job{typ: codec.SubmitJobBg, fn: "pg-other", data: "fresh"})
	if handleNum(t, fresh) <= handleNum(t, reduce.handle) {
		t.Fatalf("new handle %s after the restart is not above %s", fresh, reduce.handle)
	}
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, fn)
	expectJobs(t, w, jobs...)
	deadline := time.Now().Add(10 * time.Second)
	for pgCount(t, dsn, "SELECT count(*) FROM spur_jobs WHERE function = '"+fn+"'") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("completed jobs' rows are still there after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := pgCount(t, dsn, "SELECT count(*) FROM spur_results WHERE function = '"+fn+"' AND outcome = 1"); n != len(jobs) {
		t.Fatalf("%d results stored, want %d", n, len(jobs))
	}
	if got := adminList(t, addr, "show result "+high.handle); len(got) != 1 || !strings.Contains(got[0], "complete") {
		t.Fatalf("show result %s: %q", high.handle, got)
	}
}

// With PostgreSQL stopped, background submits get ERROR QUEUE_ERROR (never a JOB_CREATED)
// while foreground work goes on; once it is back, the same spurd takes background jobs again
// by itself.
func TestPostgresDownRefusesThenRecovers(t *testing.T) {
	t.Parallel()
	srv := pgtest.New(t, pgtest.Options{})
	dsn := srv.NewDatabase(t)
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	cmd, addr, stderr := startSpurd(t, "-q", "postgres", "--postgres-dsn", dsn, "--node-name", "pg-down",
		"--job-handle-prefix", handlePrefix, "--lease", "1500ms", "--http-addr", httpAddr)
	defer stopSpurd(t, cmd, stderr, false)
	cl := dialG(t, addr)
	before := &job{typ: codec.SubmitJobBg, fn: "pgdown", data: "before"}
	cl.submit(before)
	if n := renewFailures(t, httpAddr); n != 0 {
		t.Fatalf("%v lease renewals failed with PostgreSQL up", n)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// The lease is renewed every 500 ms: with the database down, renewals fail, and say so.
	for deadline := time.Now().Add(5 * time.Second); renewFailures(t, httpAddr) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no failed lease renewal in /metrics 5 s after PostgreSQL stopped")
		}
	}
	for i := 0; i < 3; i++ {
		if code, text := cl.submitRefused(&job{typ: codec.SubmitJobBg, fn: "pgdown", data: "while down"}); code != "QUEUE_ERROR" {
			t.Fatalf("background submit with PostgreSQL down: %s %s", code, text)
		}
	}
	// Foreground work does not need the database.
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "pgfg")
	cl.sendStr(codec.SubmitJob, "pgfg", "", "fg")
	h := string(cl.expect(codec.JobCreated))
	a, ok := w.grabAll()
	if !ok || a.handle != h {
		t.Fatalf("grabbed %+v, want the foreground job %s", a, h)
	}
	w.sendStr(codec.WorkComplete, h, "fg done")
	if body := cl.expect(codec.WorkComplete); string(body) != h+"\x00fg done" {
		t.Fatalf("WORK_COMPLETE %q", body)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	after := &job{typ: codec.SubmitJobBg, fn: "pgdown", data: "after"}
	deadline := time.Now().Add(15 * time.Second)
	for {
		cl.sendStr(after.typ, after.args()...)
		typ, body := cl.recv()
		if typ == codec.JobCreated {
			after.handle = string(body)
			break
		}
		if typ != codec.Error || time.Now().After(deadline) {
			t.Fatalf("background submit after PostgreSQL came back: %v %q", typ, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.sendStr(codec.CanDo, "pgdown")
	expectJobs(t, w, before, after)
}
