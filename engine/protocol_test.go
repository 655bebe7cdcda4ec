package engine

// Binary protocol and robustness tests: every request type and its reply, the error replies,
// malformed input, backpressure and many idle connections, all driven over real TCP against
// an in-process server (see harness_test.go). Expected bytes follow gearman-spec.md sections
// 1-3; where Spur deliberately differs from gearmand the test says so.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// ---------------------------------------------------------------------------------------------
// helpers local to this file

// protoReadUntilClosed reads until the server closes the connection (EOF or reset) and returns
// what arrived first; err is non-nil when the connection is still open after d.
func protoReadUntilClosed(c *client, d time.Duration) ([]byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	defer c.conn.SetReadDeadline(time.Time{})
	b, err := io.ReadAll(c.r)
	if err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		err = nil
	}
	return b, err
}

// protoExpectClosedSilently checks that the server closes c without sending a single byte.
func protoExpectClosedSilently(t *testing.T, c *client) {
	t.Helper()
	b, err := protoReadUntilClosed(c, 5*time.Second)
	if err != nil {
		t.Fatalf("connection not closed (got %q so far): %v", b, err)
	}
	if len(b) != 0 {
		t.Fatalf("connection closed, but only after sending %q; want no reply", b)
	}
}

// protoExpectErrorThenClosed checks for exactly one ERROR code/text followed by a close.
func protoExpectErrorThenClosed(t *testing.T, c *client, code string) packet {
	t.Helper()
	p := c.expect(codec.Error)
	if len(p.args) != 2 || p.args[0] != code || p.args[1] == "" {
		t.Fatalf("got %v, want ERROR %s with a text", p, code)
	}
	b, err := protoReadUntilClosed(c, 5*time.Second)
	if err != nil {
		t.Fatalf("connection not closed after ERROR %s (got %q): %v", code, b, err)
	}
	if len(b) != 0 {
		t.Fatalf("bytes after ERROR %s before close: %q", code, b)
	}
	return p
}

// protoReq is a request packet with args joined by NUL.
func protoReq(typ codec.Type, args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return codec.AppendRequest(nil, typ, bs...)
}

// protoRes is the response packet the server should send.
func protoRes(typ codec.Type, args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return codec.AppendPacket(nil, typ, bs...)
}

// protoStatus is GET_STATUS's STATUS_RES body.
func protoStatus(h, known, running, num, den string) string {
	return strings.Join([]string{h, known, running, num, den}, "\x00")
}

// protoWorkerLines returns the `workers` lines (without the final ".").
func protoWorkerLines(c *client) []string {
	c.t.Helper()
	out := c.admin("workers")
	lines := strings.Split(strings.TrimSuffix(out, ".\n"), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// protoWaitWorkerLines polls `workers` until it lists exactly n connections.
func protoWaitWorkerLines(t *testing.T, c *client, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := len(protoWorkerLines(c))
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers lists %d connections after %v, want %d", got, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------------------------
// 1. every request type and its reply

func TestProtoEcho(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c := dial(t, addr)
	for _, data := range []string{
		"",
		"hello",
		"\x00",
		"a\x00b\x00\x00c\x00",
		string(bytes.Repeat([]byte("0123456789abcdef\x00"), 1<<16)), // ~1.1 MB with NULs
	} {
		c.send(codec.EchoReq, data)
		p := c.recv()
		if p.typ != codec.EchoRes || !bytes.Equal(p.body, []byte(data)) {
			t.Fatalf("ECHO of %d bytes: got %s with %d bytes (equal=%v)", len(data), p.typ, len(p.body),
				bytes.Equal(p.body, []byte(data)))
		}
	}
	// The raw bytes of an empty ECHO_RES: header only.
	c.write(rawPacket(codec.MagicReq, uint32(codec.EchoReq), nil))
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [codec.HeaderSize]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if want := rawPacket(codec.MagicRes, uint32(codec.EchoRes), nil); !bytes.Equal(hdr[:], want) {
		t.Fatalf("empty ECHO_RES bytes %x, want %x", hdr, want)
	}
}

func TestProtoSubmitHandles(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c := dial(t, addr)
	types := []codec.Type{codec.SubmitJob, codec.SubmitJobHigh, codec.SubmitJobLow,
		codec.SubmitJobBg, codec.SubmitJobHighBg, codec.SubmitJobLowBg}
	n := 0
	for _, typ := range types {
		n++
		h := c.submit(typ, "hn", "", "data")
		if want := "H:test:" + strconv.Itoa(n); h != want {
			t.Fatalf("%s: handle %q, want %q", typ, h, want)
		}
	}
	// The exact bytes of a JOB_CREATED: the handle alone, no trailing NUL.
	c.send(codec.SubmitJob, "hn", "", "d")
	n++
	c.expectBody(codec.JobCreated, "H:test:"+strconv.Itoa(n))

	// Coalesced submissions reuse the handle and do not consume a number.
	n++
	first := c.submit(codec.SubmitJob, "hn", "coal", "a")
	if want := "H:test:" + strconv.Itoa(n); first != want {
		t.Fatalf("handle %q, want %q", first, want)
	}
	if again := c.submit(codec.SubmitJobBg, "hn", "coal", "b"); again != first {
		t.Fatalf("coalesced submit got %q, want %q", again, first)
	}
	// Rejected submissions do not consume a number either.
	c.send(codec.SubmitJob, "hn", strings.Repeat("u", 65), "x")
	c.expect(codec.Error, "ARGUMENT_TOO_LARGE", "Unique value too large")
	n++
	if h := c.submit(codec.SubmitJobLowBg, "hn", "", "z"); h != "H:test:"+strconv.Itoa(n) {
		t.Fatalf("handle after coalesce and reject %q, want H:test:%d", h, n)
	}
	// Epoch and reduce submissions draw from the same counter.
	n++
	c.send(codec.SubmitJobEpoch, "hn", "", "0", "e")
	c.expectBody(codec.JobCreated, "H:test:"+strconv.Itoa(n))
	n++
	c.send(codec.SubmitReduceJob, "hn", "", "red", "", "r")
	c.expectBody(codec.JobCreated, "H:test:"+strconv.Itoa(n))
	n++
	c.send(codec.SubmitReduceJobBackground, "hn", "", "red", "", "r")
	c.expectBody(codec.JobCreated, "H:test:"+strconv.Itoa(n))
	// A second connection shares the server-wide counter.
	c2 := dial(t, addr)
	n++
	if h := c2.submit(codec.SubmitJob, "other", "", ""); h != "H:test:"+strconv.Itoa(n) {
		t.Fatalf("second connection got %q, want H:test:%d", h, n)
	}
}

func TestProtoHandlePrefix(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{HandlePrefix: "X"})
	c := dial(t, addr)
	for i := 1; i <= 3; i++ {
		c.send(codec.SubmitJobBg, "f", "", "d")
		c.expectBody(codec.JobCreated, "X:"+strconv.Itoa(i))
	}
}

func TestProtoGrabVariants(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("gv")

	// Empty queue: NO_JOB for all three grab types, header only.
	for _, g := range []codec.Type{codec.GrabJob, codec.GrabJobUniq, codec.GrabJobAll} {
		w.send(g)
		w.expectBody(codec.NoJob, "")
	}

	// GRAB_JOB -> JOB_ASSIGN handle\0fn\0data (data may hold NULs).
	h1 := cl.submit(codec.SubmitJob, "gv", "u1", "da\x00ta\x00")
	w.send(codec.GrabJob)
	w.expectBody(codec.JobAssign, h1+"\x00gv\x00da\x00ta\x00")
	cl.send(codec.GetStatus, h1)
	cl.expectBody(codec.StatusRes, protoStatus(h1, "1", "1", "0", "0"))

	// GRAB_JOB_UNIQ -> JOB_ASSIGN_UNIQ handle\0fn\0unique\0data; empty unique is an empty field.
	h2 := cl.submit(codec.SubmitJob, "gv", "u2", "d2")
	h3 := cl.submit(codec.SubmitJob, "gv", "", "d3")
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.JobAssignUniq, h2+"\x00gv\x00u2\x00d2")
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.JobAssignUniq, h3+"\x00gv\x00\x00d3")

	// GRAB_JOB_ALL on a job without a reducer -> JOB_ASSIGN_UNIQ.
	h4 := cl.submit(codec.SubmitJob, "gv", "u4", "d4")
	w.send(codec.GrabJobAll)
	w.expectBody(codec.JobAssignUniq, h4+"\x00gv\x00u4\x00d4")

	// GRAB_JOB_UNIQ and GRAB_JOB on a reduce job ignore the reducer.
	cl.send(codec.SubmitReduceJob, "gv", "u5", "red5", "", "d5")
	h5 := cl.expect(codec.JobCreated).args[0]
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.JobAssignUniq, h5+"\x00gv\x00u5\x00d5")

	for _, h := range []string{h1, h2, h3, h4, h5} {
		w.send(codec.WorkComplete, h, "r")
	}
	for _, h := range []string{h1, h2, h3, h4, h5} {
		cl.expectBody(codec.WorkComplete, h+"\x00r")
	}
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
}

func TestProtoReduceJobs(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("mr")

	// Foreground reduce job, the 4-arg form libgearman sends (empty aggregator field).
	cl.send(codec.SubmitReduceJob, "mr", "ru", "reducer-fn", "", "map\x00data")
	h := cl.expect(codec.JobCreated).args[0]
	w.send(codec.GrabJobAll)
	w.expectBody(codec.JobAssignAll, h+"\x00mr\x00ru\x00reducer-fn\x00map\x00data")
	w.send(codec.WorkData, h, "part")
	cl.expectBody(codec.WorkData, h+"\x00part")
	w.send(codec.WorkComplete, h, "reduced")
	cl.expectBody(codec.WorkComplete, h+"\x00reduced")

	// Background reduce job: JOB_CREATED only; the client hears nothing more.
	cl.send(codec.SubmitReduceJobBackground, "mr", "rbg", "red2", "", "bgdata")
	hb := cl.expect(codec.JobCreated).args[0]
	if hb == h {
		t.Fatalf("background reduce job reused handle %q", h)
	}
	cl.send(codec.GetStatus, hb)
	cl.expectBody(codec.StatusRes, protoStatus(hb, "1", "0", "0", "0"))
	w.send(codec.GrabJobAll)
	w.expectBody(codec.JobAssignAll, hb+"\x00mr\x00rbg\x00red2\x00bgdata")
	w.send(codec.WorkComplete, hb, "done")
	w.syncEcho()
	cl.syncEcho() // no WORK_COMPLETE ahead of the echo: the background job has no listener
	cl.send(codec.GetStatus, hb)
	cl.expectBody(codec.StatusRes, protoStatus(hb, "0", "0", "0", "0"))

	// Empty unique on a reduce job is allowed and sent as an empty field.
	cl.send(codec.SubmitReduceJobBackground, "mr", "", "r3", "", "")
	h3 := cl.expect(codec.JobCreated).args[0]
	w.send(codec.GrabJobAll)
	w.expectBody(codec.JobAssignAll, h3+"\x00mr\x00\x00r3\x00")
}

func TestProtoSubmitEpoch(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("ep")

	// A past epoch runs now; so does non-numeric text (strtoll gives 0).
	past := strconv.FormatInt(time.Now().Unix()-3600, 10)
	for _, epoch := range []string{past, "0", "abc", ""} {
		cl.send(codec.SubmitJobEpoch, "ep", "", epoch, "now-"+epoch)
		h := cl.expect(codec.JobCreated).args[0]
		w.send(codec.GrabJob)
		w.expectBody(codec.JobAssign, h+"\x00ep\x00now-"+epoch)
		w.send(codec.WorkComplete, h, "")
	}
	w.syncEcho()
	// Epoch jobs are background: the submitter got JOB_CREATED only.
	cl.syncEcho()

	// A future epoch: GRAB skips the job until it is due, and a sleeping worker gets a NOOP
	// when it comes due (gearmand never wakes it: spec 3.8).
	early := dial(t, addr) // sleeps before the submit
	early.canDo("ep")
	early.send(codec.PreSleep)
	early.syncEcho()
	due := time.Now().Unix() + 2
	cl.send(codec.SubmitJobEpoch, "ep", "later", strconv.FormatInt(due, 10), "future")
	h := cl.expect(codec.JobCreated).args[0]
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "1", "0", "0", "0"))
	for _, g := range []codec.Type{codec.GrabJob, codec.GrabJobUniq, codec.GrabJobAll} {
		w.send(g)
		w.expectBody(codec.NoJob, "")
	}
	w.send(codec.PreSleep)
	p, err := w.tryRecv(time.Until(time.Unix(due, 0)) + 3*time.Second)
	if err != nil {
		t.Fatalf("sleeping worker got no NOOP when the epoch job came due: %v", err)
	}
	if p.typ != codec.Noop || len(p.body) != 0 {
		t.Fatalf("got %v, want NOOP", p)
	}
	if d := time.Unix(due, 0).Sub(time.Now()); d > 50*time.Millisecond {
		t.Fatalf("NOOP arrived %v before the job was due", d)
	}
	early.expectBody(codec.Noop, "")
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.JobAssignUniq, h+"\x00ep\x00later\x00future")
	w.send(codec.WorkComplete, h, "")
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
}

func TestProtoPreSleepNoop(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("ps")

	// Nothing queued: PRE_SLEEP has no reply.
	w.send(codec.PreSleep)
	w.syncEcho()

	// A submit wakes the worker with exactly one NOOP (header only).
	h1 := cl.submit(codec.SubmitJob, "ps", "", "1")
	w.expectBody(codec.Noop, "")
	// A second submit before the worker grabs sends no second NOOP. JOB_CREATED is sent
	// after the NOOP is queued, so the echo below would come after a second NOOP.
	h2 := cl.submit(codec.SubmitJob, "ps", "", "2")
	w.syncEcho()
	w.expectNothing(100 * time.Millisecond)

	w.send(codec.GrabJob)
	w.expectBody(codec.JobAssign, h1+"\x00ps\x001")
	// A job is already queued: PRE_SLEEP answers NOOP at once.
	w.send(codec.PreSleep)
	w.expectBody(codec.Noop, "")
	w.send(codec.GrabJob)
	w.expectBody(codec.JobAssign, h2+"\x00ps\x002")
	// Queue empty again: sleep, and a background submit wakes it.
	w.send(codec.PreSleep)
	w.syncEcho()
	cl.submit(codec.SubmitJobBg, "ps", "", "3")
	w.expectBody(codec.Noop, "")

	// A connection with no CAN_DO gets no reply to PRE_SLEEP and no NOOP for a new job.
	idle := dial(t, addr)
	idle.send(codec.PreSleep)
	idle.syncEcho()
	cl.submit(codec.SubmitJobBg, "ps", "", "4")
	idle.syncEcho()
	idle.expectNothing(100 * time.Millisecond)

	// A worker that never sent PRE_SLEEP gets no NOOP.
	awake := dial(t, addr)
	awake.canDo("ps")
	awake.syncEcho()
	cl.submit(codec.SubmitJobBg, "ps", "", "5")
	awake.syncEcho()
}

func TestProtoWorkForwarding(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("wf")
	h := cl.submit(codec.SubmitJob, "wf", "", "in")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "wf", "in")

	// WORK_DATA / WORK_WARNING forwarded verbatim, NULs included; no reply to the worker.
	w.send(codec.WorkData, h, "d\x00a\x00ta")
	cl.expectBody(codec.WorkData, h+"\x00d\x00a\x00ta")
	w.send(codec.WorkWarning, h, "warn\x00")
	cl.expectBody(codec.WorkWarning, h+"\x00warn\x00")
	w.send(codec.WorkData, h, "")
	cl.expectBody(codec.WorkData, h+"\x00")

	// WORK_STATUS with non-numeric text is forwarded as text; GET_STATUS shows 0/0.
	w.send(codec.WorkStatus, h, "abc", "x")
	cl.expectBody(codec.WorkStatus, h+"\x00abc\x00x")
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "1", "1", "0", "0"))
	w.send(codec.WorkStatus, h, "3", "10")
	cl.expectBody(codec.WorkStatus, h+"\x003\x0010")
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "1", "1", "3", "10"))
	w.syncEcho() // the worker got no reply to any of it

	// WORK_COMPLETE forwarded with its data; the handle is then unknown.
	w.send(codec.WorkComplete, h, "res\x00ult")
	cl.expectBody(codec.WorkComplete, h+"\x00res\x00ult")
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "0", "0", "0", "0"))
	w.syncEcho()

	// WORK_FAIL: the body is exactly the handle; then unknown.
	h2 := cl.submit(codec.SubmitJob, "wf", "", "in2")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h2, "wf", "in2")
	w.send(codec.WorkFail, h2)
	cl.expectBody(codec.WorkFail, h2)
	cl.send(codec.GetStatus, h2)
	cl.expectBody(codec.StatusRes, protoStatus(h2, "0", "0", "0", "0"))

	// A handle that never existed has the same shape.
	cl.send(codec.GetStatus, "H:test:999")
	cl.expectBody(codec.StatusRes, "H:test:999\x000\x000\x000\x000")
	cl.send(codec.GetStatus, "")
	cl.expectBody(codec.StatusRes, "\x000\x000\x000\x000")
}

func TestProtoWorkException(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	withOpt, without, w := dial(t, addr), dial(t, addr), dial(t, addr)
	withOpt.send(codec.OptionReq, "exceptions")
	withOpt.expectBody(codec.OptionRes, "exceptions")
	w.canDo("ex")

	// Two foreground clients on one job (coalesced by unique), only one with the option.
	h := withOpt.submit(codec.SubmitJob, "ex", "same", "d")
	if h2 := without.submit(codec.SubmitJob, "ex", "same", "d"); h2 != h {
		t.Fatalf("coalesced handle %q, want %q", h2, h)
	}
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "ex", "d")
	w.send(codec.WorkException, h, "boom\x00trace")
	withOpt.expectBody(codec.WorkException, h+"\x00boom\x00trace")
	// Spur drops gearmand's stray trailing NUL (spec weakness 14): the body is the handle.
	without.expectBody(codec.WorkFail, h)
	w.syncEcho()
	withOpt.send(codec.GetStatus, h)
	withOpt.expectBody(codec.StatusRes, protoStatus(h, "0", "0", "0", "0"))
	// The job is gone, but the worker held it: its late result (Perl's Gearman::Worker sends
	// WORK_FAIL after WORK_EXCEPTION) is dropped without an ERROR that would kill it.
	w.send(codec.WorkFail, h)
	w.send(codec.WorkComplete, h, "")
	w.syncEcho()
	withOpt.expectNothing(50 * time.Millisecond)
	without.expectNothing(50 * time.Millisecond)

	// The option is per connection and may be sent after the submit.
	h3 := without.submit(codec.SubmitJob, "ex", "", "d3")
	without.send(codec.OptionReq, "Exceptions")
	without.expectBody(codec.OptionRes, "Exceptions")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h3, "ex", "d3")
	w.send(codec.WorkException, h3, "")
	without.expectBody(codec.WorkException, h3+"\x00")
}

func TestProtoExceptionsConfigDefault(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{Exceptions: true})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("ex")
	h := cl.submit(codec.SubmitJob, "ex", "", "d")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "ex", "d")
	w.send(codec.WorkException, h, "why")
	cl.expectBody(codec.WorkException, h+"\x00why")
}

func TestProtoWorkNotFound(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, owner, other := dial(t, addr), dial(t, addr), dial(t, addr)
	owner.canDo("nf")
	other.canDo("nf")
	running := cl.submit(codec.SubmitJob, "nf", "", "r")
	owner.send(codec.GrabJob)
	owner.expect(codec.JobAssign, running, "nf", "r")
	queued := cl.submit(codec.SubmitJob, "nf", "", "q")
	// A finished job, run by a third worker.
	fin := dial(t, addr)
	fin.canDo("nf2")
	done := cl.submit(codec.SubmitJob, "nf2", "", "x")
	fin.send(codec.GrabJob)
	fin.expect(codec.JobAssign, done, "nf2", "x")
	fin.send(codec.WorkComplete, done, "")
	cl.expect(codec.WorkComplete, done, "")

	texts := map[codec.Type]string{
		codec.WorkData:      "Job does not exist on server",
		codec.WorkWarning:   "Job does not exist on server",
		codec.WorkStatus:    "Job given in work result not found",
		codec.WorkComplete:  "Job given in work result not found",
		codec.WorkFail:      "Job given in work result not found",
		codec.WorkException: "An exception was received for a job that does not exist",
	}
	args := func(typ codec.Type, h string) []string {
		switch typ {
		case codec.WorkStatus:
			return []string{h, "1", "2"}
		case codec.WorkFail:
			return []string{h}
		}
		return []string{h, "payload"}
	}
	cases := []struct {
		name string
		c    *client
		h    string
	}{
		{"unknown handle", other, "H:test:12345"},
		{"empty handle", other, ""},
		{"another worker's job", other, running},
		{"queued job", other, queued},
		{"queued job, owner of another", owner, queued},
	}
	for _, tc := range cases {
		for _, typ := range []codec.Type{codec.WorkData, codec.WorkWarning, codec.WorkStatus,
			codec.WorkComplete, codec.WorkFail, codec.WorkException} {
			tc.c.send(typ, args(typ, tc.h)...)
			p := tc.c.recv()
			if want := "JOB_NOT_FOUND\x00" + texts[typ]; p.typ != codec.Error || string(p.body) != want {
				t.Fatalf("%s for %s: got %s %q, want ERROR %q", typ, tc.name, p.typ, p.body, want)
			}
		}
		tc.c.syncEcho() // the connection stays open and nothing else was sent
	}
	// A job the worker finished itself: any late WORK_* about it is dropped silently.
	for _, typ := range []codec.Type{codec.WorkData, codec.WorkWarning, codec.WorkStatus,
		codec.WorkComplete, codec.WorkFail, codec.WorkException} {
		fin.send(typ, args(typ, done)...)
	}
	fin.syncEcho()
	// None of it touched the jobs: the client heard nothing, the running job still runs and
	// the queued one is still queued.
	cl.syncEcho()
	cl.send(codec.GetStatus, running)
	cl.expectBody(codec.StatusRes, protoStatus(running, "1", "1", "0", "0"))
	cl.send(codec.GetStatus, queued)
	cl.expectBody(codec.StatusRes, protoStatus(queued, "1", "0", "0", "0"))
	owner.send(codec.WorkComplete, running, "ok")
	cl.expectBody(codec.WorkComplete, running+"\x00ok")
	other.send(codec.GrabJob)
	other.expect(codec.JobAssign, queued, "nf", "q")
	other.send(codec.WorkComplete, queued, "ok2")
	cl.expectBody(codec.WorkComplete, queued+"\x00ok2")
}

func TestProtoGetStatusUnique(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c1, c2, w := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("su")
	status := func(u, known, running, num, den, clients string) {
		t.Helper()
		c1.send(codec.GetStatusUnique, u)
		c1.expectBody(codec.StatusResUnique, strings.Join([]string{u, known, running, num, den, clients}, "\x00"))
	}
	status("nope", "0", "0", "0", "0", "0")
	status("", "0", "0", "0", "0", "0")

	h := c1.submit(codec.SubmitJob, "su", "uq", "d")
	status("uq", "1", "0", "0", "0", "1")
	if h2 := c2.submit(codec.SubmitJob, "su", "uq", "other data"); h2 != h {
		t.Fatalf("coalesced handle %q, want %q", h2, h)
	}
	status("uq", "1", "0", "0", "0", "2")
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.JobAssignUniq, h+"\x00su\x00uq\x00d")
	status("uq", "1", "1", "0", "0", "2")
	w.send(codec.WorkStatus, h, "5", "7")
	c1.expectBody(codec.WorkStatus, h+"\x005\x007")
	c2.expectBody(codec.WorkStatus, h+"\x005\x007")
	status("uq", "1", "1", "5", "7", "2")
	w.send(codec.WorkComplete, h, "r")
	c1.expectBody(codec.WorkComplete, h+"\x00r")
	c2.expectBody(codec.WorkComplete, h+"\x00r")
	status("uq", "0", "0", "0", "0", "0")

	// A background job has no waiting clients.
	c1.submit(codec.SubmitJobBg, "su", "bgu", "d")
	status("bgu", "1", "0", "0", "0", "0")
	// The lookup spans functions.
	c1.submit(codec.SubmitJobBg, "other-fn", "elsewhere", "d")
	status("elsewhere", "1", "0", "0", "0", "0")
}

func TestProtoOptionReq(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c := dial(t, addr)
	for _, opt := range []string{"exceptions", "EXCEPTIONS", "ExCePtIoNs"} {
		c.send(codec.OptionReq, opt)
		c.expectBody(codec.OptionRes, opt)
	}
	for _, opt := range []string{"foo", "", "exception", "exceptions ", "xexceptions"} {
		c.send(codec.OptionReq, opt)
		c.expectBody(codec.Error, "UNKNOWN_OPTION\x00Server does not recognize given option")
	}
	c.syncEcho()
}

func TestProtoSetClientID(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	w, plain, admin := dial(t, addr), dial(t, addr), dial(t, addr)
	w.send(codec.SetClientID, "worker-7")
	w.canDo("fnA", "fnB")
	w.syncEcho() // SET_CLIENT_ID and CAN_DO have no reply
	plain.syncEcho()
	lines := protoWorkerLines(admin)
	if len(lines) != 3 {
		t.Fatalf("workers lists %d connections, want 3: %q", len(lines), lines)
	}
	re := regexp.MustCompile(`^\d+ 127\.0\.0\.1 (.*) :(.*)$`)
	var got []string
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("workers line %q has the wrong shape", l)
		}
		got = append(got, m[1]+"|"+m[2])
	}
	sort.Strings(got) // lines come in connection order, which the accept path does not fix
	want := []string{"-|", "-|", "worker-7| fnB fnA"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("workers ids/functions %q, want %q (lines %q)", got, want, lines)
	}

	// Spaces are kept; the id is truncated to 127 bytes; it can be changed.
	workerLine := func() string {
		t.Helper()
		for _, l := range protoWorkerLines(admin) {
			if strings.HasSuffix(l, " : fnB fnA") {
				return l
			}
		}
		t.Fatal("the worker's line is missing from workers")
		return ""
	}
	w.send(codec.SetClientID, "my id")
	w.syncEcho()
	if l := workerLine(); !strings.HasSuffix(l, " 127.0.0.1 my id : fnB fnA") {
		t.Fatalf("workers line %q", l)
	}
	long := strings.Repeat("abcdefghij", 20)
	w.send(codec.SetClientID, long)
	w.syncEcho()
	if l := workerLine(); !strings.HasSuffix(l, " 127.0.0.1 "+long[:127]+" : fnB fnA") {
		t.Fatalf("workers line %q, want the id truncated to 127 bytes", l)
	}
}

func TestProtoAbilities(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("a1", "a2")
	w.syncEcho()
	cl.submit(codec.SubmitJobBg, "a1", "", "x1")
	cl.submit(codec.SubmitJobBg, "a2", "", "x2")

	// CANT_DO: no reply; GRAB no longer serves a1 (a2 is still served).
	w.send(codec.CantDo, "a1")
	w.syncEcho()
	w.send(codec.GrabJob)
	p := w.expect(codec.JobAssign)
	if p.args[1] != "a2" {
		t.Fatalf("after CANT_DO a1 got a job of %q", p.args[1])
	}
	w.send(codec.WorkComplete, p.args[0], "")
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
	// CANT_DO of an unknown function: ignored.
	w.send(codec.CantDo, "never-registered")
	w.syncEcho()

	// RESET_ABILITIES: no reply; nothing is served any more.
	w.canDo("a1")
	cl.submit(codec.SubmitJobBg, "a2", "", "x3")
	w.send(codec.ResetAbilities)
	w.syncEcho()
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.NoJob, "")
	// Registering again serves the queued jobs.
	w.canDo("a1")
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.JobAssignUniq, "H:test:1\x00a1\x00\x00x1")

	// CANT_DO while holding a job of that function requeues it.
	w.send(codec.CantDo, "a1")
	w.syncEcho()
	cl.send(codec.GetStatus, "H:test:1")
	cl.expectBody(codec.StatusRes, protoStatus("H:test:1", "1", "0", "0", "0"))
	// Its late result is dropped: no ERROR for the worker that held it.
	w.send(codec.WorkComplete, "H:test:1", "")
	w.syncEcho()
	cl.send(codec.GetStatus, "H:test:1")
	cl.expectBody(codec.StatusRes, protoStatus("H:test:1", "1", "0", "0", "0"))
}

func TestProtoCanDoTimeoutRequeues(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w1, w2 := dial(t, addr), dial(t, addr), dial(t, addr)
	w1.send(codec.CanDoTimeout, "to", "1") // 1 ms is raised to 1000 ms
	w1.syncEcho()                          // no reply
	h := cl.submit(codec.SubmitJob, "to", "", "payload")
	start := time.Now()
	w1.send(codec.GrabJob)
	w1.expect(codec.JobAssign, h, "to", "payload")
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "1", "1", "0", "0"))

	// A second worker sleeps; the requeue at expiry wakes it.
	w2.canDo("to")
	w2.send(codec.PreSleep)
	w2.syncEcho()
	p, err := w2.tryRecv(5 * time.Second)
	if err != nil {
		t.Fatalf("job not requeued after the 1 s CAN_DO_TIMEOUT: %v", err)
	}
	if p.typ != codec.Noop {
		t.Fatalf("got %v, want NOOP", p)
	}
	if el := time.Since(start); el < 950*time.Millisecond || el > 4*time.Second {
		t.Fatalf("requeued after %v, want about 1 s", el)
	}
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "1", "0", "0", "0"))
	w2.send(codec.GrabJob)
	w2.expect(codec.JobAssign, h, "to", "payload")

	// The first worker's late result is dropped without an ERROR (it would kill a Perl
	// worker) and reaches nobody; the client heard nothing at expiry.
	w1.send(codec.WorkComplete, h, "late")
	w1.send(codec.WorkData, h, "late")
	w1.syncEcho()
	cl.syncEcho()

	w2.send(codec.WorkComplete, h, "ok")
	cl.expectBody(codec.WorkComplete, h+"\x00ok")
	cl.expectNothing(100 * time.Millisecond)
}

func TestProtoCanDoTimeoutCompletedNotRequeued(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w, watcher, admin := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	w.send(codec.CanDoTimeout, "tc", "1")
	watcher.canDo("tc")
	watcher.send(codec.PreSleep)
	watcher.syncEcho()

	h := cl.submit(codec.SubmitJob, "tc", "", "d")
	watcher.expectBody(codec.Noop, "") // woken by the submit itself
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "tc", "d")
	start := time.Now()
	w.send(codec.WorkComplete, h, "fast")
	cl.expectBody(codec.WorkComplete, h+"\x00fast")

	// The watcher grabs (nothing) and sleeps again: a requeue would wake it.
	watcher.send(codec.GrabJob)
	watcher.expectBody(codec.NoJob, "")
	watcher.send(codec.PreSleep)
	watcher.syncEcho()
	watcher.expectNothing(1500*time.Millisecond - time.Since(start))
	watcher.expectNothing(300 * time.Millisecond)

	cl.expectNothing(50 * time.Millisecond) // exactly one WORK_COMPLETE
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "0", "0", "0", "0"))
	if got := admin.admin("status"); got != "tc\t0\t0\t2\n.\n" {
		t.Fatalf("status after the timeout passed %q, want nothing queued", got)
	}
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
}

func TestProtoCanDoTimeoutSameWorkerRegrabs(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.send(codec.CanDoTimeout, "rg", "999") // raised to 1000 ms
	h := cl.submit(codec.SubmitJob, "rg", "", "d")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "rg", "d")
	start := time.Now()
	// Wait for the requeue by polling the job's status.
	for {
		cl.send(codec.GetStatus, h)
		p := cl.expect(codec.StatusRes)
		if string(p.body) == protoStatus(h, "1", "0", "0", "0") {
			break
		}
		if string(p.body) != protoStatus(h, "1", "1", "0", "0") || time.Since(start) > 5*time.Second {
			t.Fatalf("waiting for the timeout requeue: status %q after %v", p.body, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("requeued after only %v", el)
	}
	// The same worker grabs it again (a new assignment with a fresh timer) and completes in time.
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "rg", "d")
	regrab := time.Now()
	w.send(codec.WorkComplete, h, "second try")
	cl.expectBody(codec.WorkComplete, h+"\x00second try")
	// Past both timers: nothing is requeued, the client hears nothing more.
	cl.expectNothing(1300*time.Millisecond - time.Since(regrab))
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "0", "0", "0", "0"))
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
}

func TestProtoCanDoTimeoutZeroOrTextMeansNone(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl := dial(t, addr)
	var ws []*client
	var hs []string
	for i, timeout := range []string{"0", "abc", "-5", ""} {
		w := dial(t, addr)
		fn := "nt" + strconv.Itoa(i)
		w.send(codec.CanDoTimeout, fn, timeout)
		h := cl.submit(codec.SubmitJob, fn, "", timeout)
		w.send(codec.GrabJob)
		w.expect(codec.JobAssign, h, fn, timeout)
		ws, hs = append(ws, w), append(hs, h)
	}
	time.Sleep(1300 * time.Millisecond) // past the shortest real timeout
	for i, h := range hs {
		cl.send(codec.GetStatus, h)
		cl.expectBody(codec.StatusRes, protoStatus(h, "1", "1", "0", "0"))
		ws[i].send(codec.WorkComplete, h, "ok")
		cl.expectBody(codec.WorkComplete, h+"\x00ok")
	}
}

// protoCPUTime is the CPU time this test process has used so far.
func protoCPUTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestProtoEpochFarFutureNoBusyLoop: an epoch so far in the future that time.Unix overflows must
// not make the server spin. Not parallel: it measures the process's CPU time.
func TestProtoEpochFarFutureNoBusyLoop(t *testing.T) {
	addr := startServer(t, Config{})
	c, w, admin := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("far")
	w.send(codec.PreSleep)
	w.syncEcho()
	var handles []string
	t.Cleanup(func() {
		// Cancelling the jobs stops a spinning timer, so a failure here does not burn a CPU for
		// the rest of the suite.
		for _, h := range handles {
			admin.admin("cancel job " + h)
		}
	})
	// One function each, so that each value is its function's earliest scheduled job.
	for i, epoch := range []string{
		"9223371974719179007", // the largest value time.Unix still represents
		"9223371974719179008", // one more: time.Unix wraps into the distant past
		"9223372036854775807", // math.MaxInt64
	} {
		fn := "far"
		if i > 0 {
			fn += strconv.Itoa(i)
		}
		c.send(codec.SubmitJobEpoch, fn, "", epoch, "d")
		h := c.expect(codec.JobCreated).args[0]
		handles = append(handles, h)
		c.send(codec.GetStatus, h)
		c.expectBody(codec.StatusRes, protoStatus(h, "1", "0", "0", "0"))
	}
	time.Sleep(100 * time.Millisecond)
	const window = 500 * time.Millisecond
	before := protoCPUTime(t)
	time.Sleep(window)
	if used := protoCPUTime(t) - before; used > window/2 {
		t.Errorf("the process used %v of CPU in %v of idle time with far-future epoch jobs queued: the server busy-loops", used, window)
	}
	// The jobs are not runnable and wake nobody.
	w.syncEcho()
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
	c.syncEcho()
}

// ---------------------------------------------------------------------------------------------
// 2. error replies on a connection that stays open

func TestProtoInvalidMagicRES(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c := dial(t, addr)
	c.write(rawPacket(codec.MagicRes, uint32(codec.EchoReq), []byte("ping")))
	c.expectBody(codec.Error, "INVALID_MAGIC\x00Request magic expected")
	c.syncEcho()
	// A \0RES submit creates no job.
	c.write(rawPacket(codec.MagicRes, uint32(codec.SubmitJobBg), []byte("rf\x00\x00d")))
	c.expectBody(codec.Error, "INVALID_MAGIC\x00Request magic expected")
	c.write(rawPacket(codec.MagicRes, uint32(codec.GrabJob), nil))
	c.expectBody(codec.Error, "INVALID_MAGIC\x00Request magic expected")
	if got := c.admin("status"); got != ".\n" {
		t.Fatalf("status %q: a \\0RES packet created something", got)
	}
	c.send(codec.SubmitJobBg, "rf", "", "d")
	c.expectBody(codec.JobCreated, "H:test:1")
}

func TestProtoInvalidCommand(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c := dial(t, addr)
	// SUBMIT_JOB_SCHED (35), which gearmand refuses so, makes a schedule here (schedule_test.go).
	for _, typ := range []codec.Type{5, 6, 8, 10, 11, 17, 19, 20, 24, 27, 31, 40, 42} {
		spec, _ := codec.Spec(typ)
		var body []byte
		for i := 0; i < spec.Args; i++ {
			if i > 0 {
				body = append(body, 0)
			}
			body = append(body, fmt.Sprintf("arg%d", i)...)
		}
		c.write(rawPacket(codec.MagicReq, uint32(typ), body))
		p := c.recv()
		if want := "INVALID_COMMAND\x00Command not expected"; p.typ != codec.Error || string(p.body) != want {
			t.Fatalf("type %d (%s) with body %q: got %s %q, want ERROR %q", typ, typ, body, p.typ, p.body, want)
		}
		c.syncEcho()
	}
	// They created nothing.
	if got := c.admin("status"); got != ".\n" {
		t.Fatalf("status %q after the rejected packets", got)
	}
}

// TestProtoZeroArgBodyIgnored: a type without arguments may carry a body, which is read and
// ignored (spec 1.2); the stream stays in step.
func TestProtoZeroArgBodyIgnored(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	junk := []byte("junk\x00with\x00NULs")
	w.canDo("zb")
	w.write(rawPacket(codec.MagicReq, uint32(codec.GrabJob), junk))
	w.expectBody(codec.NoJob, "")
	w.write(rawPacket(codec.MagicReq, uint32(codec.PreSleep), junk))
	w.syncEcho()
	h := cl.submit(codec.SubmitJob, "zb", "", "d")
	w.expectBody(codec.Noop, "")
	w.write(rawPacket(codec.MagicReq, uint32(codec.GrabJobUniq), junk))
	w.expectBody(codec.JobAssignUniq, h+"\x00zb\x00\x00d")
	w.send(codec.WorkComplete, h, "")
	cl.expectBody(codec.WorkComplete, h+"\x00")
	for _, typ := range []codec.Type{5, codec.Noop, codec.NoJob, codec.AllYours} {
		w.write(rawPacket(codec.MagicReq, uint32(typ), junk))
		w.expectBody(codec.Error, "INVALID_COMMAND\x00Command not expected")
	}
	w.write(rawPacket(codec.MagicReq, uint32(codec.ResetAbilities), junk))
	w.syncEcho()
	cl.submit(codec.SubmitJobBg, "zb", "", "d2")
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
}

func TestProtoArgumentTooLarge(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c, w, c2 := dial(t, addr), dial(t, addr), dial(t, addr)
	u65, u64 := strings.Repeat("u", 65), strings.Repeat("0123456789abcdef", 4)
	r65, r64 := strings.Repeat("r", 65), strings.Repeat("R", 64)
	tooLarge := func(want string, typ codec.Type, args ...string) {
		t.Helper()
		c.send(typ, args...)
		c.expectBody(codec.Error, "ARGUMENT_TOO_LARGE\x00"+want)
		c.syncEcho()
	}
	for _, typ := range []codec.Type{codec.SubmitJob, codec.SubmitJobHigh, codec.SubmitJobLow,
		codec.SubmitJobBg, codec.SubmitJobHighBg, codec.SubmitJobLowBg} {
		tooLarge("Unique value too large", typ, "big", u65, "d")
	}
	tooLarge("Unique value too large", codec.SubmitJobEpoch, "big", u65, "0", "d")
	tooLarge("Unique value too large", codec.SubmitReduceJob, "big", u65, "red", "", "d")
	tooLarge("Reducer name too large", codec.SubmitReduceJob, "big", "u", r65, "", "d")
	tooLarge("Reducer name too large", codec.SubmitReduceJobBackground, "big", "u", r65, "", "d")
	if got := c.admin("status"); got != ".\n" {
		t.Fatalf("status %q: a rejected submit created something", got)
	}

	// Exactly 64 bytes: accepted, stored whole, and it coalesces (gearmand truncates it to 63
	// bytes and never coalesces it: Spur fixes that).
	h := c.submit(codec.SubmitJob, "big", u64, "d64")
	if h2 := c2.submit(codec.SubmitJob, "big", u64, "other"); h2 != h {
		t.Fatalf("64-byte unique did not coalesce: %q then %q", h, h2)
	}
	w.canDo("big")
	w.send(codec.GrabJobUniq)
	w.expectBody(codec.JobAssignUniq, h+"\x00big\x00"+u64+"\x00d64")
	c.send(codec.GetStatusUnique, u64)
	c.expectBody(codec.StatusResUnique, u64+"\x001\x001\x000\x000\x002")
	w.send(codec.WorkComplete, h, "r")
	c.expectBody(codec.WorkComplete, h+"\x00r")
	c2.expectBody(codec.WorkComplete, h+"\x00r")

	// A 64-byte reducer is accepted and sent whole.
	c.send(codec.SubmitReduceJob, "big", u64, r64, "", "dr")
	hr := c.expect(codec.JobCreated).args[0]
	w.send(codec.GrabJobAll)
	w.expectBody(codec.JobAssignAll, hr+"\x00big\x00"+u64+"\x00"+r64+"\x00dr")
}

// ---------------------------------------------------------------------------------------------
// 3. robustness: malformed input closes only the offending connection

func TestProtoBadMagicCloses(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	alive := dial(t, addr)
	for _, input := range [][]byte{
		rawPacket([4]byte{0, 'X', 'Y', 'Z'}, uint32(codec.EchoReq), []byte("x")),
		rawPacket([4]byte{0, 'R', 'E', 'Z'}, uint32(codec.EchoReq), nil),
		rawPacket([4]byte{0, 0, 0, 0}, 0, nil),
		[]byte("\x00RX"),   // provably bad before a whole header arrived
		[]byte("\x00\x00"), // likewise
	} {
		c := dial(t, addr)
		c.write(input)
		protoExpectClosedSilently(t, c)
	}
	// Bad magic after a good packet: the good one is answered, then the connection closes.
	c := dial(t, addr)
	c.write(append(protoReq(codec.EchoReq, "first"), rawPacket([4]byte{0, 'X', 'Y', 'Z'}, 16, nil)...))
	c.expectBody(codec.EchoRes, "first")
	protoExpectClosedSilently(t, c)
	alive.syncEcho()
}

func TestProtoGarbageFromWorkerRequeuesItsJob(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w1, w2 := dial(t, addr), dial(t, addr), dial(t, addr)
	w1.canDo("gw")
	h := cl.submit(codec.SubmitJob, "gw", "", "d")
	w1.send(codec.GrabJob)
	w1.expect(codec.JobAssign, h, "gw", "d")
	w2.canDo("gw")
	w2.send(codec.PreSleep)
	w2.syncEcho()
	// A packet with bad magic closes w1; its job goes back to the queue and wakes w2.
	w1.write(append(protoReq(codec.WorkData, h, "partial"), "\x00BAD\x00\x00\x00\x01\x00\x00\x00\x00"...))
	protoExpectClosedSilently(t, w1)
	cl.expectBody(codec.WorkData, h+"\x00partial") // what came before the garbage still counts
	w2.expectBody(codec.Noop, "")
	w2.send(codec.GrabJob)
	w2.expect(codec.JobAssign, h, "gw", "d")
	w2.send(codec.WorkComplete, h, "done")
	cl.expectBody(codec.WorkComplete, h+"\x00done")
}

func TestProtoUnknownTypeCloses(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	alive := dial(t, addr)
	for _, typ := range []uint32{0, 43, 44, 1000, 1 << 31, 0xffffffff} {
		c := dial(t, addr)
		c.write(rawPacket(codec.MagicReq, typ, nil))
		protoExpectClosedSilently(t, c)
		c = dial(t, addr)
		c.write(rawPacket(codec.MagicReq, typ, []byte("some\x00body")))
		protoExpectClosedSilently(t, c)
	}
	alive.syncEcho()
}

func TestProtoTruncatedArgs(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	alive := dial(t, addr)
	for _, tc := range []struct {
		typ  codec.Type
		body string
	}{
		{codec.SubmitJob, "fn"},
		{codec.SubmitJob, "fn\x00"},
		{codec.SubmitJob, ""},
		{codec.SubmitJobBg, "fn\x00"},
		{codec.SubmitJobEpoch, "fn\x00u\x00"},
		{codec.SubmitReduceJob, "fn\x00u\x00red\x00"}, // the 3-arg form: no aggregator field
		{codec.WorkStatus, "H:test:1\x001"},
		{codec.CanDoTimeout, "fn"},
	} {
		c := dial(t, addr)
		// A valid ECHO follows in the same write. gearmand would read its bytes as the missing
		// arguments; Spur must stop at the declared length, reply ERROR and close, never
		// answering the ECHO.
		c.write(append(rawPacket(codec.MagicReq, uint32(tc.typ), []byte(tc.body)), protoReq(codec.EchoReq, "next")...))
		p := protoExpectErrorThenClosed(t, c, "INVALID_PACKET")
		t.Logf("%s %q -> ERROR %q", tc.typ, tc.body, p.args[1])
	}
	alive.syncEcho()
	if got := alive.admin("status"); got != ".\n" {
		t.Fatalf("status %q: a truncated packet created something", got)
	}
}

func TestProtoPacketTooLarge(t *testing.T) {
	t.Parallel()
	const maxBody = 4096
	addr := startServer(t, Config{MaxPacketSize: maxBody})
	alive := dial(t, addr)
	// A body of exactly the limit is fine.
	big := strings.Repeat("x", maxBody)
	alive.send(codec.EchoReq, big)
	alive.expectBody(codec.EchoRes, big)

	for _, size := range []uint32{maxBody + 1, 1 << 20, 0xffffffff} {
		c := dial(t, addr)
		// Only the header: the server must answer without waiting for the body.
		hdr := rawPacket(codec.MagicReq, uint32(codec.SubmitJob), nil)
		hdr[8], hdr[9], hdr[10], hdr[11] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
		start := time.Now()
		c.write(hdr)
		protoExpectErrorThenClosed(t, c, "ARGUMENT_TOO_LARGE")
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("size %d: took %v to refuse", size, el)
		}
	}
	alive.syncEcho()
}

func TestProtoLongTextLine(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	alive := dial(t, addr)
	// A long line that fits the 8192-byte buffer is still answered.
	word := strings.Repeat("w", 8100)
	c := dial(t, addr)
	if got, want := c.admin(word), "ERR UNKNOWN_COMMAND Unknown+server+command"+word+"\r\n"; got != want {
		t.Fatalf("8100-byte line: got %d bytes %.60q..., want %d bytes", len(got), got, len(want))
	}
	// 9000 bytes without a newline: closed.
	c = dial(t, addr)
	c.write(bytes.Repeat([]byte("a"), 9000))
	protoExpectClosedSilently(t, c)
	// Same, written slowly in pieces.
	c = dial(t, addr)
	for i := 0; i < 9; i++ {
		c.write(bytes.Repeat([]byte("b"), 1000))
		time.Sleep(2 * time.Millisecond)
	}
	protoExpectClosedSilently(t, c)
	alive.syncEcho()
}

// protoSplitScript is a stream of many packets on one connection (acting as client, worker and
// admin at once) and the exact bytes a fresh server must answer.
func protoSplitScript() (in, out []byte) {
	step := func(req []byte, res ...[]byte) {
		in = append(in, req...)
		for _, r := range res {
			out = append(out, r...)
		}
	}
	step(protoReq(codec.EchoReq, "hello\x00world\x00"), protoRes(codec.EchoRes, "hello\x00world\x00"))
	step([]byte("version\r\n"), []byte("OK "+Version+"\n"))
	step(protoReq(codec.OptionReq, "exceptions"), protoRes(codec.OptionRes, "exceptions"))
	step(protoReq(codec.SetClientID, "splitter"))
	step(protoReq(codec.CanDo, "split"))
	step(protoReq(codec.SubmitJob, "split", "u1", "data\x001"), protoRes(codec.JobCreated, "H:test:1"))
	step(protoReq(codec.SubmitJobHigh, "split", "", "data2"), protoRes(codec.JobCreated, "H:test:2"))
	step(protoReq(codec.SubmitJobBg, "split", "u1", "other"), protoRes(codec.JobCreated, "H:test:1"))
	step(protoReq(codec.PreSleep), protoRes(codec.Noop))
	step(protoReq(codec.GrabJobUniq), protoRes(codec.JobAssignUniq, "H:test:2", "split", "", "data2"))
	step(protoReq(codec.WorkStatus, "H:test:2", "1", "4"), protoRes(codec.WorkStatus, "H:test:2", "1", "4"))
	step(protoReq(codec.GetStatus, "H:test:2"), protoRes(codec.StatusRes, "H:test:2", "1", "1", "1", "4"))
	step(protoReq(codec.WorkData, "H:test:2", "chunk\x00"), protoRes(codec.WorkData, "H:test:2", "chunk\x00"))
	step(protoReq(codec.WorkComplete, "H:test:2", "done"), protoRes(codec.WorkComplete, "H:test:2", "done"))
	step(protoReq(codec.GrabJob), protoRes(codec.JobAssign, "H:test:1", "split", "data\x001"))
	step(protoReq(codec.GetStatusUnique, "u1"), protoRes(codec.StatusResUnique, "u1", "1", "1", "0", "0", "1"))
	step(protoReq(codec.WorkException, "H:test:1", "boom"), protoRes(codec.WorkException, "H:test:1", "boom"))
	step(protoReq(codec.GrabJob), protoRes(codec.NoJob))
	step(protoReq(codec.SubmitReduceJob, "split", "u3", "red", "", "mr"), protoRes(codec.JobCreated, "H:test:3"))
	step(protoReq(codec.GrabJobAll), protoRes(codec.JobAssignAll, "H:test:3", "split", "u3", "red", "mr"))
	step(protoReq(codec.WorkFail, "H:test:3"), protoRes(codec.WorkFail, "H:test:3"))
	step(rawPacket(codec.MagicRes, uint32(codec.EchoReq), []byte("x")), protoRes(codec.Error, "INVALID_MAGIC", "Request magic expected"))
	step(rawPacket(codec.MagicReq, uint32(codec.StatusRes), []byte("a\x00b\x00c\x00d\x00e")), protoRes(codec.Error, "INVALID_COMMAND", "Command not expected"))
	step(protoReq(codec.WorkComplete, "H:test:99", "x"), protoRes(codec.Error, "JOB_NOT_FOUND", "Job given in work result not found"))
	step(protoReq(codec.OptionReq, "nope"), protoRes(codec.Error, "UNKNOWN_OPTION", "Server does not recognize given option"))
	step([]byte("status\n"), []byte("split\t0\t0\t1\n.\n"))
	step(protoReq(codec.EchoReq, ""), protoRes(codec.EchoRes, ""))
	step(protoReq(codec.GetStatus, "H:test:1"), protoRes(codec.StatusRes, "H:test:1", "0", "0", "0", "0"))
	step(protoReq(codec.SubmitJobLowBg, "split", "-", "same"), protoRes(codec.JobCreated, "H:test:4"))
	step(protoReq(codec.SubmitJobBg, "split", "-", "same"), protoRes(codec.JobCreated, "H:test:4"))
	step(protoReq(codec.CantDo, "split"))
	step(protoReq(codec.GrabJob), protoRes(codec.NoJob))
	step(protoReq(codec.EchoReq, strings.Repeat("long\x00", 400)), protoRes(codec.EchoRes, strings.Repeat("long\x00", 400)))
	step([]byte("prioritystatus\r\n"), []byte("split\t0\t0\t1\t0\n.\n"))
	step(protoReq(codec.EchoReq, "END-OF-SCRIPT"), protoRes(codec.EchoRes, "END-OF-SCRIPT"))
	return in, out
}

func TestProtoSplitWrites(t *testing.T) {
	t.Parallel()
	in, want := protoSplitScript()
	rng := rand.New(rand.NewSource(7))
	writers := map[string]func(c *client){
		"at once": func(c *client) { c.write(in) },
		"one byte at a time": func(c *client) {
			for i := range in {
				c.write(in[i : i+1])
				if i%16 == 0 {
					time.Sleep(50 * time.Microsecond) // let the server see partial packets
				}
			}
		},
		"random chunks": func(c *client) {
			for i := 0; i < len(in); {
				n := min(1+rng.Intn(40), len(in)-i)
				c.write(in[i : i+n])
				i += n
				if rng.Intn(4) == 0 {
					time.Sleep(200 * time.Microsecond)
				}
			}
		},
	}
	for _, name := range []string{"at once", "one byte at a time", "random chunks"} {
		addr := startServer(t, Config{}) // a fresh server each: handles start at 1
		c := dial(t, addr)
		writers[name](c)
		got := make([]byte, len(want))
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.ReadFull(c.r, got)
		if err != nil || !bytes.Equal(got, want) {
			i := 0
			for i < n && got[i] == want[i] {
				i++
			}
			t.Fatalf("%s: replies differ at byte %d of %d (read %d, err %v)\n got  %q\n want %q", name, i, len(want), n, err,
				got[max(0, i-40):min(n, i+80)], want[max(0, i-40):min(len(want), i+80)])
		}
		c.expectNothing(50 * time.Millisecond)
	}
}

func TestProtoPipelining(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c := dial(t, addr)
	const n = 20000
	var in, want []byte
	handle := 0
	for i := 0; i < n; i++ {
		switch i % 10 {
		case 3:
			handle++
			in = append(in, protoReq(codec.SubmitJobBg, "pipe", "", strconv.Itoa(i))...)
			want = append(want, protoRes(codec.JobCreated, "H:test:"+strconv.Itoa(handle))...)
		case 7:
			h := "H:test:" + strconv.Itoa(handle)
			in = append(in, protoReq(codec.GetStatus, h)...)
			want = append(want, protoRes(codec.StatusRes, h, "1", "0", "0", "0")...)
		default:
			in = append(in, protoReq(codec.EchoReq, "p"+strconv.Itoa(i))...)
			want = append(want, protoRes(codec.EchoRes, "p"+strconv.Itoa(i))...)
		}
	}
	// Read while writing: the replies to one big write come back complete and in order.
	got := make([]byte, len(want))
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		_ = c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := io.ReadFull(c.r, got)
		done <- result{n, err}
	}()
	c.write(in)
	r := <-done
	_ = c.conn.SetReadDeadline(time.Time{})
	if r.err != nil || !bytes.Equal(got, want) {
		i := 0
		for i < r.n && got[i] == want[i] {
			i++
		}
		t.Fatalf("pipelined replies differ at byte %d of %d (read %d, err %v)", i, len(want), r.n, r.err)
	}
	c.syncEcho()
}

// protoGarbage builds one random stream: random bytes, broken headers and valid packets.
func protoGarbage(rng *rand.Rand) []byte {
	fns := []string{"g0", "g1", "g2", ""}
	fn := func() string { return fns[rng.Intn(len(fns))] }
	handle := func() string { return "H:test:" + strconv.Itoa(1+rng.Intn(30)) }
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	var s []byte
	for seg := 1 + rng.Intn(8); seg > 0; seg-- {
		switch rng.Intn(10) {
		case 0: // pure noise
			s = append(s, randBytes(1+rng.Intn(300))...)
		case 1: // noise that looks binary
			s = append(s, 0)
			s = append(s, randBytes(rng.Intn(100))...)
		case 2: // a valid magic with a random type and a small, possibly wrong, length
			magic := codec.MagicReq
			if rng.Intn(4) == 0 {
				magic = codec.MagicRes
			}
			p := rawPacket(magic, uint32(rng.Intn(48)), randBytes(rng.Intn(64)))
			if rng.Intn(3) == 0 {
				size := uint32(rng.Intn(128))
				p[8], p[9], p[10], p[11] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
			}
			s = append(s, p...)
		case 3: // a huge declared length
			p := rawPacket(codec.MagicReq, uint32(1+rng.Intn(42)), nil)
			size := rng.Uint32()
			p[8], p[9], p[10], p[11] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
			s = append(s, p...)
		case 4: // admin text, valid or not
			cmds := []string{"status", "workers", "show jobs", "show unique jobs", "prioritystatus",
				"maxqueue g1 2", "cancel job " + handle(), "create function g2", "drop function g0",
				"version", "getpid", "verbose", "a b c d e f g", "", "show x", string(randBytes(20))}
			s = append(s, cmds[rng.Intn(len(cmds))]...)
			if rng.Intn(5) > 0 {
				s = append(s, "\r\n"[rng.Intn(2):]...)
			}
		case 5: // a valid packet with a flipped byte
			p := protoReq(codec.SubmitJob, fn(), "u", string(randBytes(rng.Intn(20))))
			p[rng.Intn(len(p))] ^= byte(1 + rng.Intn(255))
			s = append(s, p...)
		default: // a valid packet
			var p []byte
			switch rng.Intn(14) {
			case 0:
				p = protoReq(codec.EchoReq, string(randBytes(rng.Intn(200))))
			case 1:
				p = protoReq(codec.CanDo, fn())
			case 2:
				p = protoReq(codec.CanDoTimeout, fn(), strconv.Itoa(rng.Intn(3000)))
			case 3:
				p = protoReq([]codec.Type{codec.SubmitJob, codec.SubmitJobBg, codec.SubmitJobHigh,
					codec.SubmitJobLowBg}[rng.Intn(4)], fn(), []string{"", "-", "x", "y"}[rng.Intn(4)], string(randBytes(rng.Intn(30))))
			case 4:
				p = protoReq(codec.SubmitJobEpoch, fn(), "", strconv.FormatInt(time.Now().Unix()+int64(rng.Intn(5)), 10), "e")
			case 5:
				p = protoReq(codec.SubmitReduceJob, fn(), "r", "red", "", "d")
			case 6:
				p = protoReq([]codec.Type{codec.GrabJob, codec.GrabJobUniq, codec.GrabJobAll}[rng.Intn(3)])
			case 7:
				p = protoReq(codec.PreSleep)
			case 8:
				p = protoReq([]codec.Type{codec.WorkComplete, codec.WorkData, codec.WorkException}[rng.Intn(3)], handle(), "r")
			case 9:
				p = protoReq(codec.WorkStatus, handle(), strconv.Itoa(rng.Intn(10)), "x")
			case 10:
				p = protoReq(codec.GetStatus, handle())
			case 11:
				p = protoReq(codec.GetStatusUnique, []string{"x", "y", "-", ""}[rng.Intn(4)])
			case 12:
				p = protoReq(codec.OptionReq, []string{"exceptions", "bogus"}[rng.Intn(2)])
			case 13:
				p = protoReq([]codec.Type{codec.CantDo, codec.ResetAbilities, codec.SetClientID}[rng.Intn(3)], fn())
			}
			s = append(s, p...)
		}
	}
	return s
}

// protoRunGarbage writes stream on a new connection in random chunks, half-closes it and waits
// for the server to close in turn. It returns a failure message, or "" when all went well. Safe
// to call from any goroutine.
func protoRunGarbage(addr string, stream []byte, rng *rand.Rand) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Sprintf("dial: %v (server down?)", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	for off := 0; off < len(stream); {
		n := min(len(stream)-off, 1+rng.Intn(512))
		if _, err := conn.Write(stream[off : off+n]); err != nil {
			break // the server closed it: fine
		}
		off += n
	}
	// Half-close: the server has processed everything once it closes in turn.
	_ = conn.(*net.TCPConn).CloseWrite()
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("%d bytes %q...: server did not close after EOF within 5 s", len(stream), stream[:min(len(stream), 64)])
	}
	return ""
}

func TestProtoRandomGarbage(t *testing.T) {
	t.Parallel()
	const seed, streams = 20240611, 400
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	addr := startServer(t, Config{MaxPacketSize: 1 << 20})
	alive := dial(t, addr)
	for i := 0; i < streams; i++ {
		if msg := protoRunGarbage(addr, protoGarbage(rng), rng); msg != "" {
			t.Fatalf("stream %d: %s", i, msg)
		}
		if i%50 == 0 {
			alive.syncEcho()
		}
	}
	alive.syncEcho()

	// The same again from several connections at once, so that garbage on one loop meets
	// submits, grabs and notifications from the other.
	const goroutines, each = 4, 100
	var wg sync.WaitGroup
	failures := make(chan string, goroutines)
	for g := 0; g < goroutines; g++ {
		grng := rand.New(rand.NewSource(seed + int64(g) + 1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if msg := protoRunGarbage(addr, protoGarbage(grng), grng); msg != "" {
					failures <- msg
					return
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	for msg := range failures {
		t.Error(msg)
	}
	alive.syncEcho()
	// Every throwaway connection is gone from the server.
	protoWaitWorkerLines(t, alive, 1, 5*time.Second)
	// And the server still does real work.
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("after-garbage")
	h := cl.submit(codec.SubmitJob, "after-garbage", "", "x")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "after-garbage", "x")
	w.send(codec.WorkComplete, h, "y")
	cl.expectBody(codec.WorkComplete, h+"\x00y")
}

// ---------------------------------------------------------------------------------------------
// 4. backpressure

func TestProtoBackpressureClosesNonReader(t *testing.T) {
	addr := startServer(t, Config{MaxOutbound: 1 << 20})
	other := dial(t, addr)
	victim := dial(t, addr)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB
	pkt := codec.AppendRequest(nil, codec.EchoReq, payload)
	batch := bytes.Repeat(pkt, 16) // ~1 MiB per write
	start := time.Now()
	_ = victim.conn.SetWriteDeadline(start.Add(8 * time.Second))
	sent := 0
	var err error
	for {
		var n int
		n, err = victim.conn.Write(batch)
		sent += n
		if err != nil {
			break
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server still accepting after %d bytes in %v from a client that never reads", sent, time.Since(start))
	}
	t.Logf("non-reading client cut off after %d MiB written in %v (%v)", sent>>20, time.Since(start).Round(time.Millisecond), err)
	other.syncEcho()
	protoWaitWorkerLines(t, other, 1, 5*time.Second)
}

func TestProtoBackpressureClosesNonReadingListener(t *testing.T) {
	addr := startServer(t, Config{MaxOutbound: 1 << 20})
	admin, victim, w := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("stream")
	if tc, ok := victim.conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10) // fill up sooner; the server's cap is what is tested
	}
	h := victim.submit(codec.SubmitJob, "stream", "", "go")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "stream", "go")
	// The worker streams 64 KiB WORK_DATA packets; the client never reads them.
	chunk := protoReq(codec.WorkData, h, strings.Repeat("z", 64<<10))
	start := time.Now()
	sent := 0
	for len(protoWorkerLines(admin)) == 3 {
		if time.Since(start) > 8*time.Second {
			t.Fatalf("listener still connected after %d MiB of WORK_DATA it never read", sent>>20)
		}
		for i := 0; i < 16; i++ {
			w.write(chunk)
			sent += len(chunk)
		}
	}
	t.Logf("non-reading listener cut off after %d MiB of WORK_DATA in %v", sent>>20, time.Since(start).Round(time.Millisecond))
	// The worker is unaffected and may finish; the job is simply no longer listened to.
	w.syncEcho()
	w.send(codec.WorkComplete, h, "end")
	w.syncEcho()
	admin.syncEcho()
	_, err := protoReadUntilClosed(victim, 5*time.Second)
	if err != nil {
		t.Fatalf("victim connection still open: %v", err)
	}
}

// ---------------------------------------------------------------------------------------------
// 5. ten thousand idle connections

const (
	protoIdleEnvAddr = "SPUR_TEST_IDLE_ADDR"
	protoIdleEnvN    = "SPUR_TEST_IDLE_N"
)

// protoRaiseNoFile raises RLIMIT_NOFILE's soft limit to the hard limit and skips the test when
// the hard limit cannot hold need descriptors.
func protoRaiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Max < need {
		t.Skipf("RLIMIT_NOFILE hard limit is %d, below the %d this test needs", lim.Max, need)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
}

// TestProtoTenThousandIdleConnections holds 10,000 idle connections open against one server and
// checks it still serves new and old connections. The idle connections live in a child process
// (this test binary re-run as TestProtoIdleConnectionsHelper): in one process the 10,000 client
// ends plus the 10,000 server ends would need a hard limit above 20,000 descriptors.
func TestProtoTenThousandIdleConnections(t *testing.T) {
	const n = 10000
	protoRaiseNoFile(t, n+100)
	addr := startServer(t, Config{})
	start := time.Now()
	alive := dial(t, addr)

	cmd := exec.Command(os.Args[0], "-test.run=^TestProtoIdleConnectionsHelper$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), protoIdleEnvAddr+"="+addr, protoIdleEnvN+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once the helper has exited; then waitErr is set
	var waitErr error
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	await := func(prefix string, within time.Duration) string {
		t.Helper()
		timer := time.NewTimer(within)
		defer timer.Stop()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helper exited before %q; stderr:\n%s", prefix, stderr.String())
				}
				if strings.HasPrefix(l, "ERR ") {
					t.Fatalf("helper: %s", l)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-timer.C:
				t.Fatalf("helper did not report %q within %v", prefix, within)
			}
		}
	}

	await(fmt.Sprintf("OPEN %d", n), 20*time.Second)
	// The server holds every one of them (plus alive).
	protoWaitWorkerLines(t, alive, n+1, 10*time.Second)
	t.Logf("%d connections open after %v", n+1, time.Since(start).Round(time.Millisecond))

	// Two new connections do a full round trip.
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("idle-rt")
	h := cl.submit(codec.SubmitJob, "idle-rt", "", "ping")
	w.send(codec.GrabJob)
	w.expect(codec.JobAssign, h, "idle-rt", "ping")
	w.send(codec.WorkComplete, h, "pong")
	cl.expectBody(codec.WorkComplete, h+"\x00pong")

	// Some of the idle ones still answer.
	if _, err := io.WriteString(stdin, "ECHO\n"); err != nil {
		t.Fatal(err)
	}
	await("ECHO OK", 10*time.Second)
	alive.syncEcho()

	// Close them all; the server lets go of every one.
	_ = stdin.Close()
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("helper: %v; stderr:\n%s", waitErr, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not exit")
	}
	protoWaitWorkerLines(t, alive, 3, 10*time.Second)
	t.Logf("done after %v", time.Since(start).Round(time.Millisecond))
}

// TestProtoIdleConnectionsHelper is the child process of TestProtoTenThousandIdleConnections;
// run on its own it skips. It opens N connections, prints "OPEN N", echoes on a few of them for
// each "ECHO" line on stdin (printing "ECHO OK"), and closes them all at EOF.
func TestProtoIdleConnectionsHelper(t *testing.T) {
	addr := os.Getenv(protoIdleEnvAddr)
	if addr == "" {
		t.Skip("helper process of TestProtoTenThousandIdleConnections")
	}
	n, err := strconv.Atoi(os.Getenv(protoIdleEnvN))
	if err != nil {
		t.Fatal(err)
	}
	fail := func(format string, args ...any) {
		fmt.Printf("ERR "+format+"\n", args...)
		t.Fatalf(format, args...)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	const dialers = 8
	var wg sync.WaitGroup
	errs := make(chan error, dialers)
	for d := 0; d < dialers; d++ {
		wg.Add(1)
		go func(d int) {
			defer wg.Done()
			for i := d; i < n; i += dialers {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}(d)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fail("%v", err)
	}
	fmt.Printf("OPEN %d\n", n)

	rng := rand.New(rand.NewSource(1))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "ECHO" {
			continue
		}
		picks := []int{0, 1, n / 2, n - 1}
		for k := 0; k < 16; k++ {
			picks = append(picks, rng.Intn(n))
		}
		for _, i := range picks {
			c := conns[i]
			data := "idle-" + strconv.Itoa(i)
			want := protoRes(codec.EchoRes, data)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(protoReq(codec.EchoReq, data)); err != nil {
				fail("write on idle connection %d: %v", i, err)
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				fail("read on idle connection %d: %v", i, err)
			}
			if !bytes.Equal(got, want) {
				fail("idle connection %d: got %q, want %q", i, got, want)
			}
		}
		fmt.Println("ECHO OK")
	}
}

// With one event loop every packet one connection causes for another is written at the end
// of the first one's callback rather than through a loop wake-up: the NOOP a submit causes,
// the WORK_COMPLETE a worker sends, and the NOOP a dying worker's requeue causes (sent from
// inside gnet's OnClose).
func TestSameLoopDelivery(t *testing.T) {
	addr := startServerLoops(t, Config{}, 1)
	w1, w2, c := dial(t, addr), dial(t, addr), dial(t, addr)
	for _, w := range []*client{w1, w2} {
		w.send(codec.CanDo, "f")
		w.send(codec.PreSleep)
	}
	c.send(codec.EchoReq, "sync") // the sleeps above are registered once this comes back
	c.expect(codec.EchoRes, "sync")

	c.send(codec.SubmitJob, "f", "", "data")
	h := c.expect(codec.JobCreated).args[0]
	w1.expect(codec.Noop)
	w2.expect(codec.Noop)
	w1.send(codec.GrabJob)
	w1.expect(codec.JobAssign, h, "f", "data")
	w2.send(codec.GrabJob)
	w2.expect(codec.NoJob)
	w2.send(codec.PreSleep)
	w2.send(codec.EchoReq, "sync")
	w2.expect(codec.EchoRes, "sync")

	w1.conn.Close() // holding the job: it is requeued and w2 woken
	w2.expect(codec.Noop)
	w2.send(codec.GrabJob)
	w2.expect(codec.JobAssign, h, "f", "data")
	w2.send(codec.WorkComplete, h, "result")
	c.expect(codec.WorkComplete, h, "result")
}
