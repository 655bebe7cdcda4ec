package engine

import (
	"bufio"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// Server semantics (gearman-spec.md section 3) as Spur implements them, including the
// deliberate departures from gearmand 1.1 listed in section 9.

// quiet is how long a test waits to be sure a packet does NOT arrive.
const quiet = 150 * time.Millisecond

// ---------------------------------------------------------------------------------------
// 3.2 Unique ids and coalescing

func TestCoalesceEmptyUniqueNever(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	h1 := c.submit(codec.SubmitJobBg, "f", "", "same")
	h2 := c.submit(codec.SubmitJobBg, "f", "", "same")
	h3 := c.submit(codec.SubmitJob, "f", "", "same")
	if h1 == h2 || h2 == h3 || h1 == h3 {
		t.Fatalf("empty unique coalesced: %s %s %s", h1, h2, h3)
	}
	if got := c.admin("status"); got != "f\t3\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
}

func TestCoalesceDashByData(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	a := c.submit(codec.SubmitJobBg, "f", "-", "payload")
	if b := c.submit(codec.SubmitJobBg, "f", "-", "payload"); b != a {
		t.Fatalf(`"-" with identical data: %s, want %s`, b, a)
	}
	if b := c.submit(codec.SubmitJob, "f", "-", "payload"); b != a {
		t.Fatalf(`foreground "-" with identical data: %s, want %s`, b, a)
	}
	if b := c.submit(codec.SubmitJobBg, "f", "-", "payloaX"); b == a {
		t.Fatal(`"-" with different data coalesced`)
	}
	if b := c.submit(codec.SubmitJobBg, "g", "-", "payload"); b == a {
		t.Fatal(`"-" coalesced across functions`)
	}
	e1 := c.submit(codec.SubmitJobBg, "f", "-", "")
	e2 := c.submit(codec.SubmitJobBg, "f", "-", "")
	if e1 == e2 {
		t.Fatal(`"-" with empty data coalesced`)
	}
	// A real unique equal to the data is a different key.
	if b := c.submit(codec.SubmitJobBg, "f", "payload", "payload"); b == a {
		t.Fatal(`unique "payload" coalesced with the "-" job`)
	}
	if got := c.admin("status"); got != "f\t5\t0\t0\ng\t1\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
}

func TestCoalesceUniquePerFunction(t *testing.T) {
	addr := startServer(t, Config{})
	c, w := dial(t, addr), dial(t, addr)
	a := c.submit(codec.SubmitJobBg, "f", "u1", "first")
	if b := c.submit(codec.SubmitJobBg, "f", "u1", "second"); b != a {
		t.Fatalf("same fn+unique: %s, want %s", b, a)
	}
	g := c.submit(codec.SubmitJobBg, "g", "u1", "other")
	if g == a {
		t.Fatal("same unique in another function coalesced")
	}
	// The first submission's data is kept.
	w.canDo("f")
	if h, _, u, d := w.grab(); h != a || u != "u1" || d != "first" {
		t.Fatalf("assigned %s %q %q", h, u, d)
	}
	w.send(codec.WorkComplete, a, "")
	w.syncEcho()
	// Once finished, the unique makes a new job.
	if b := c.submit(codec.SubmitJobBg, "f", "u1", "third"); b == a {
		t.Fatal("finished job still coalesces")
	}
}

// A second foreground client coalescing onto a queued job is attached: both get every
// packet and the result.
func TestCoalesceForegroundOntoQueuedJob(t *testing.T) {
	addr := startServer(t, Config{})
	c1, c2, w := dial(t, addr), dial(t, addr), dial(t, addr)
	h := c1.submit(codec.SubmitJob, "f", "u", "data1")
	if h2 := c2.submit(codec.SubmitJob, "f", "u", "data2"); h2 != h {
		t.Fatalf("coalesced handle %s, want %s", h2, h)
	}
	w.canDo("f")
	if gh, _, _, d := w.grab(); gh != h || d != "data1" {
		t.Fatalf("assigned %s %q", gh, d)
	}
	w.send(codec.WorkData, h, "d")
	w.send(codec.WorkWarning, h, "w")
	w.send(codec.WorkStatus, h, "1", "2")
	w.send(codec.WorkComplete, h, "done")
	for _, c := range []*client{c1, c2} {
		c.expect(codec.WorkData, h, "d")
		c.expect(codec.WorkWarning, h, "w")
		c.expect(codec.WorkStatus, h, "1", "2")
		c.expect(codec.WorkComplete, h, "done")
	}
	w.syncEcho() // no ERROR for the worker
	c1.expectNothing(quiet)
	c2.expectNothing(quiet)
}

// A client coalescing onto a running job gets only what is sent after it attached.
func TestCoalesceForegroundOntoRunningJob(t *testing.T) {
	addr := startServer(t, Config{})
	c1, c2, w := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	h := c1.submit(codec.SubmitJob, "f", "u", "x")
	w.grab()
	w.send(codec.WorkData, h, "before")
	c1.expect(codec.WorkData, h, "before")
	if h2 := c2.submit(codec.SubmitJob, "f", "u", "y"); h2 != h {
		t.Fatalf("coalesced handle %s, want %s", h2, h)
	}
	w.send(codec.WorkWarning, h, "warn")
	w.send(codec.WorkStatus, h, "5", "9")
	w.send(codec.WorkData, h, "after")
	w.send(codec.WorkComplete, h, "result")
	for _, c := range []*client{c1, c2} {
		c.expect(codec.WorkWarning, h, "warn") // c2: "before" is not replayed
		c.expect(codec.WorkStatus, h, "5", "9")
		c.expect(codec.WorkData, h, "after")
		c.expect(codec.WorkComplete, h, "result")
		c.expectNothing(quiet)
	}
}

// A different priority still coalesces; the job keeps its first priority and place.
func TestCoalesceDifferentPriority(t *testing.T) {
	addr := startServer(t, Config{})
	c1, c2, adm, w := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	h := c1.submit(codec.SubmitJobLow, "f", "u", "low")
	if h2 := c2.submit(codec.SubmitJobHigh, "f", "u", "high"); h2 != h {
		t.Fatalf("coalesced handle %s, want %s", h2, h)
	}
	if h3 := c2.submit(codec.SubmitJobHighBg, "f", "u", "high"); h3 != h {
		t.Fatalf("coalesced bg handle %s, want %s", h3, h)
	}
	if got := adm.admin("prioritystatus"); got != "f\t0\t0\t1\t0\n.\n" {
		t.Fatalf("prioritystatus %q", got)
	}
	n := c2.submit(codec.SubmitJobBg, "f", "", "normal")
	w.canDo("f")
	if gh, _, _, _ := w.grab(); gh != n {
		t.Fatalf("first grab %s, want the NORMAL job %s (coalesced job must stay LOW)", gh, n)
	}
	if gh, _, _, d := w.grab(); gh != h || d != "low" {
		t.Fatalf("second grab %s %q", gh, d)
	}
	w.send(codec.WorkComplete, h, "r")
	c1.expect(codec.WorkComplete, h, "r")
	c2.expect(codec.WorkComplete, h, "r")
}

// A background submit coalescing onto a foreground job gets the handle and nothing else.
func TestCoalesceBackgroundOntoForeground(t *testing.T) {
	addr := startServer(t, Config{})
	fg, bg, w := dial(t, addr), dial(t, addr), dial(t, addr)
	h := fg.submit(codec.SubmitJob, "f", "u", "x")
	if h2 := bg.submit(codec.SubmitJobBg, "f", "u", "x"); h2 != h {
		t.Fatalf("coalesced handle %s, want %s", h2, h)
	}
	w.canDo("f")
	w.grab()
	w.send(codec.WorkData, h, "d")
	w.send(codec.WorkStatus, h, "1", "1")
	w.send(codec.WorkComplete, h, "r")
	fg.expect(codec.WorkData, h, "d")
	fg.expect(codec.WorkStatus, h, "1", "1")
	fg.expect(codec.WorkComplete, h, "r")
	bg.expectNothing(quiet)
}

// A foreground submit coalescing onto a background job is attached to it; the background
// submitter never hears about the work.
func TestCoalesceForegroundOntoBackground(t *testing.T) {
	addr := startServer(t, Config{})
	fg, bg, w := dial(t, addr), dial(t, addr), dial(t, addr)
	h := bg.submit(codec.SubmitJobBg, "f", "u", "x")
	if h2 := fg.submit(codec.SubmitJob, "f", "u", "y"); h2 != h {
		t.Fatalf("coalesced handle %s, want %s", h2, h)
	}
	w.canDo("f")
	w.grab()
	w.send(codec.WorkData, h, "d")
	w.send(codec.WorkWarning, h, "w")
	w.send(codec.WorkStatus, h, "1", "3")
	w.send(codec.WorkComplete, h, "r")
	fg.expect(codec.WorkData, h, "d")
	fg.expect(codec.WorkWarning, h, "w")
	fg.expect(codec.WorkStatus, h, "1", "3")
	fg.expect(codec.WorkComplete, h, "r")
	bg.expectNothing(quiet)
	w.syncEcho()
}

// Deliberate fix (spec 3.9 / weakness 9): a background job is not dropped when a foreground
// client that coalesced onto it disconnects.
func TestBackgroundJobSurvivesCoalescedClientDisconnect(t *testing.T) {
	addr := startServer(t, Config{})
	bg, fg, adm, w := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	h := bg.submit(codec.SubmitJobBg, "f", "K1", "x")
	if h2 := fg.submit(codec.SubmitJob, "f", "K1", "x"); h2 != h {
		t.Fatalf("coalesced handle %s, want %s", h2, h)
	}
	fg.conn.Close()
	// Wait until the server has detached the client (listener count 0).
	deadline := time.Now().Add(5 * time.Second)
	for {
		adm.send(codec.GetStatusUnique, "K1")
		p := adm.expect(codec.StatusResUnique)
		if p.args[5] == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener never detached: %v", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := adm.admin("show jobs"); got != h+"\t0\t0\t1\n.\n" {
		t.Fatalf("show jobs %q (background job must be neither ignored nor unpersisted)", got)
	}
	w.canDo("f")
	if gh, _, u, d := w.grab(); gh != h || u != "K1" || d != "x" {
		t.Fatalf("assigned %s %q %q", gh, u, d)
	}
}

// ---------------------------------------------------------------------------------------
// 3.9 Client disconnect: abandoned foreground jobs

func TestAbandonedForegroundJobReapedAtGrab(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "u", "x")
	c.conn.Close()
	waitAdmin(t, adm, "show jobs", h+"\t0\t1\t0\n.\n")
	if got := adm.admin("status"); got != "f\t1\t0\t0\n.\n" {
		t.Fatalf("status while abandoned %q", got)
	}
	if got := adm.jobStatus(h); got[1] != "1" {
		t.Fatalf("abandoned job not known before it is reaped: %q", got)
	}
	w := dial(t, addr)
	w.canDo("f")
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	if got := adm.admin("show jobs"); got != ".\n" {
		t.Fatalf("show jobs after reaping %q", got)
	}
	if got := adm.admin("status"); got != "f\t0\t0\t1\n.\n" {
		t.Fatalf("status after reaping %q", got)
	}
	if got := adm.jobStatus(h); strings.Join(got, ",") != h+",0,0,0,0" {
		t.Fatalf("GET_STATUS of reaped job %q", got)
	}
}

func TestAbandonedJobSkippedForNextJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, c2, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "u", "x")
	next := c2.submit(codec.SubmitJobBg, "f", "", "next")
	c.conn.Close()
	waitAdmin(t, adm, "show jobs", h+"\t0\t1\t0\n"+next+"\t0\t0\t1\n.\n")
	w := dial(t, addr)
	w.canDo("f")
	if gh, _, _, d := w.grab(); gh != next || d != "next" {
		t.Fatalf("assigned %s %q, want the next job", gh, d)
	}
	if got := adm.admin("show jobs"); got != next+"\t0\t0\t1\n.\n" {
		t.Fatalf("show jobs %q", got)
	}
}

func TestAbandonedJobUniqueMakesNewJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "u", "x")
	c.conn.Close()
	waitAdmin(t, adm, "show jobs", h+"\t0\t1\t0\n.\n")
	c2 := dial(t, addr)
	h2 := c2.submit(codec.SubmitJob, "f", "u", "y")
	if h2 == h {
		t.Fatal("submit after abandonment coalesced onto the abandoned job")
	}
	w := dial(t, addr)
	w.canDo("f")
	if gh, _, _, d := w.grab(); gh != h2 || d != "y" {
		t.Fatalf("assigned %s %q", gh, d)
	}
	w.send(codec.WorkComplete, h2, "ok")
	c2.expect(codec.WorkComplete, h2, "ok")
}

// A running foreground job whose client leaves runs to completion; the result goes nowhere
// and the worker gets no error.
func TestAbandonedRunningJobResultDiscarded(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	h := c.submit(codec.SubmitJob, "f", "u", "x")
	w.grab()
	c.conn.Close()
	waitAdmin(t, adm, "show jobs", h+"\t0\t1\t0\n.\n")
	w.send(codec.WorkData, h, "d")
	w.send(codec.WorkComplete, h, "r")
	w.syncEcho()
	if got := adm.admin("show jobs"); got != ".\n" {
		t.Fatalf("show jobs %q", got)
	}
}

// ---------------------------------------------------------------------------------------
// 3.4 Job selection and priority

func TestPriorityOrderWithinFunction(t *testing.T) {
	addr := startServer(t, Config{})
	c, w := dial(t, addr), dial(t, addr)
	for _, s := range []struct {
		typ  codec.Type
		data string
	}{
		{codec.SubmitJobLowBg, "l1"}, {codec.SubmitJobBg, "n1"}, {codec.SubmitJobHighBg, "h1"},
		{codec.SubmitJobLowBg, "l2"}, {codec.SubmitJobBg, "n2"}, {codec.SubmitJobHighBg, "h2"},
	} {
		c.submit(s.typ, "f", "", s.data)
	}
	w.canDo("f")
	var got []string
	for i := 0; i < 6; i++ {
		_, _, _, d := w.grab()
		got = append(got, d)
	}
	if strings.Join(got, " ") != "h1 h2 n1 n2 l1 l2" {
		t.Fatalf("grab order %v", got)
	}
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
}

func TestPriorityForegroundTypes(t *testing.T) {
	addr := startServer(t, Config{})
	c, w := dial(t, addr), dial(t, addr)
	c.submit(codec.SubmitJobLow, "f", "", "l")
	c.submit(codec.SubmitJob, "f", "", "n")
	c.submit(codec.SubmitJobHigh, "f", "", "h")
	w.canDo("f")
	var got []string
	for i := 0; i < 3; i++ {
		_, _, _, d := w.grab()
		got = append(got, d)
	}
	if strings.Join(got, " ") != "h n l" {
		t.Fatalf("grab order %v", got)
	}
}

// Across functions, the worker's most recently registered function is checked first.
func TestPriorityAcrossFunctionsNewestRegistrationFirst(t *testing.T) {
	addr := startServer(t, Config{})
	c, w := dial(t, addr), dial(t, addr)
	c.submit(codec.SubmitJobHighBg, "X", "", "x-high")
	c.submit(codec.SubmitJobLowBg, "Y", "", "y-low")
	w.canDo("X", "Y")
	if _, fn, _, d := w.grab(); fn != "Y" || d != "y-low" {
		t.Fatalf("first grab %s %q, want Y's LOW job", fn, d)
	}
	if _, fn, _, _ := w.grab(); fn != "X" {
		t.Fatalf("second grab %s, want X", fn)
	}
}

func TestPriorityWithoutRoundRobinDrainsNewestFunction(t *testing.T) {
	addr := startServer(t, Config{})
	c, w := dial(t, addr), dial(t, addr)
	for _, d := range []string{"x1", "x2"} {
		c.submit(codec.SubmitJobBg, "X", "", d)
	}
	for _, d := range []string{"y1", "y2"} {
		c.submit(codec.SubmitJobBg, "Y", "", d)
	}
	w.canDo("X", "Y")
	var got []string
	for i := 0; i < 4; i++ {
		_, _, _, d := w.grab()
		got = append(got, d)
	}
	if strings.Join(got, " ") != "y1 y2 x1 x2" {
		t.Fatalf("grab order %v", got)
	}
}

func TestRoundRobinRotatesFunctions(t *testing.T) {
	addr := startServer(t, Config{RoundRobin: true})
	c, w := dial(t, addr), dial(t, addr)
	for _, d := range []string{"x1", "x2", "x3"} {
		c.submit(codec.SubmitJobBg, "X", "", d)
	}
	for _, d := range []string{"y1", "y2"} {
		c.submit(codec.SubmitJobBg, "Y", "", d)
	}
	for _, d := range []string{"z1"} {
		c.submit(codec.SubmitJobBg, "Z", "", d)
	}
	w.canDo("X", "Y", "Z") // checked Z, Y, X
	var got []string
	for i := 0; i < 6; i++ {
		_, _, _, d := w.grab()
		got = append(got, d)
	}
	if strings.Join(got, " ") != "z1 y1 x1 y2 x2 x3" {
		t.Fatalf("round-robin grab order %v", got)
	}
}

// ---------------------------------------------------------------------------------------
// 3.6 Requeue on worker disconnect and --job-retries

func TestRequeueOnWorkerDisconnectGoesToBack(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	var hs []string
	for _, d := range []string{"r1", "r2", "r3"} {
		hs = append(hs, c.submit(codec.SubmitJobBg, "f", "", d))
	}
	w1 := dial(t, addr)
	w1.canDo("f")
	if _, _, _, d := w1.grab(); d != "r1" {
		t.Fatalf("first grab %q", d)
	}
	waitAdmin(t, adm, "status", "f\t3\t1\t1\n.\n")
	w1.conn.Close()
	waitAdmin(t, adm, "status", "f\t3\t0\t0\n.\n")
	if got := adm.admin("show jobs"); got != hs[0]+"\t1\t0\t1\n"+hs[1]+"\t0\t0\t1\n"+hs[2]+"\t0\t0\t1\n.\n" {
		t.Fatalf("show jobs %q (r1 must show one retry)", got)
	}
	w2 := dial(t, addr)
	w2.canDo("f")
	var got []string
	for i := 0; i < 3; i++ {
		_, _, _, d := w2.grab()
		got = append(got, d)
	}
	if strings.Join(got, " ") != "r2 r3 r1" {
		t.Fatalf("order after requeue %v", got)
	}
}

func TestRequeuedForegroundJobCompletedBySecondWorker(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "u", "x")
	w1 := dial(t, addr)
	w1.canDo("f")
	w1.grab()
	w1.send(codec.WorkStatus, h, "3", "10")
	c.expect(codec.WorkStatus, h, "3", "10")
	if got := strings.Join(c.jobStatus(h), ","); got != h+",1,1,3,10" {
		t.Fatalf("status while running %q", got)
	}
	w1.conn.Close()
	waitAdmin(t, adm, "status", "f\t1\t0\t0\n.\n")
	// Numerator and denominator are reset by the requeue.
	if got := strings.Join(c.jobStatus(h), ","); got != h+",1,0,0,0" {
		t.Fatalf("status after requeue %q", got)
	}
	w2 := dial(t, addr)
	w2.canDo("f")
	if gh, _, u, d := w2.grab(); gh != h || u != "u" || d != "x" {
		t.Fatalf("second worker got %s %q %q", gh, u, d)
	}
	w2.send(codec.WorkComplete, h, "done")
	c.expect(codec.WorkComplete, h, "done")
	c.expectNothing(quiet)
}

func TestJobRetriesExhausted(t *testing.T) {
	addr := startServer(t, Config{JobRetries: 3})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "", "x")
	for i := 1; i <= 3; i++ {
		w := dial(t, addr)
		w.canDo("f")
		if gh, _, _, _ := w.grab(); gh != h {
			t.Fatalf("assignment %d: got %s", i, gh)
		}
		w.conn.Close()
		if i < 3 {
			waitAdmin(t, adm, "show jobs", fmt.Sprintf("%s\t%d\t0\t0\n.\n", h, i))
			c.expectNothing(10 * time.Millisecond)
		}
	}
	c.expect(codec.WorkFail, h)
	waitAdmin(t, adm, "show jobs", ".\n")
	if got := adm.admin("status"); got != "f\t0\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
	w := dial(t, addr)
	w.canDo("f")
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
}

func TestJobRetriesExhaustedBackground(t *testing.T) {
	addr := startServer(t, Config{JobRetries: 1})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJobBg, "f", "", "x")
	w := dial(t, addr)
	w.canDo("f")
	w.grab()
	w.conn.Close()
	waitAdmin(t, adm, "show jobs", ".\n")
	if got := strings.Join(adm.jobStatus(h), ","); got != h+",0,0,0,0" {
		t.Fatalf("status %q", got)
	}
	c.expectNothing(quiet)
}

func TestJobRetriesZeroIsUnlimited(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "", "x")
	for i := 1; i <= 5; i++ {
		w := dial(t, addr)
		w.canDo("f")
		w.grab()
		w.conn.Close()
		waitAdmin(t, adm, "show jobs", fmt.Sprintf("%s\t%d\t0\t0\n.\n", h, i))
	}
	c.expectNothing(10 * time.Millisecond)
	w := dial(t, addr)
	w.canDo("f")
	if gh, _, _, _ := w.grab(); gh != h {
		t.Fatalf("sixth assignment got %s", gh)
	}
	w.send(codec.WorkComplete, h, "finally")
	c.expect(codec.WorkComplete, h, "finally")
}

func TestCantDoRequeuesHeldJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w, w2 := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "", "x")
	c.submit(codec.SubmitJobBg, "f", "", "second")
	w.canDo("f", "g")
	w.grab()
	w.send(codec.CantDo, "f")
	w.syncEcho()
	if got := adm.admin("show jobs"); !strings.HasPrefix(got, h+"\t1\t0\t0\n") {
		t.Fatalf("show jobs %q: job not requeued with a retry", got)
	}
	if got := adm.admin("status"); got != "f\t2\t0\t0\ng\t0\t0\t1\n.\n" {
		t.Fatalf("status %q", got)
	}
	// The worker no longer holds it: its late result is dropped, without an ERROR.
	w.send(codec.WorkComplete, h, "late")
	w.syncEcho()
	// Back of the FIFO: the other job first.
	w2.canDo("f")
	if _, _, _, d := w2.grab(); d != "second" {
		t.Fatalf("first grab %q", d)
	}
	if gh, _, _, _ := w2.grab(); gh != h {
		t.Fatalf("second grab %s", gh)
	}
	w2.send(codec.WorkComplete, h, "ok")
	c.expect(codec.WorkComplete, h, "ok")
}

func TestResetAbilitiesRequeuesHeldJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "", "x")
	w.canDo("f")
	w.grab()
	w.send(codec.ResetAbilities)
	w.syncEcho()
	if got := adm.admin("show jobs"); got != h+"\t1\t0\t0\n.\n" {
		t.Fatalf("show jobs %q", got)
	}
	if got := adm.admin("status"); got != "f\t1\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob) // no abilities left
	w.canDo("f")
	if gh, _, _, _ := w.grab(); gh != h {
		t.Fatalf("grab %s", gh)
	}
}

// CANT_DO for another function keeps the held job.
func TestCantDoOtherFunctionKeepsJob(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "", "x")
	w.canDo("f", "g")
	w.grab()
	w.send(codec.CantDo, "g")
	w.send(codec.CantDo, "unknown")
	w.syncEcho()
	if got := adm.admin("status"); got != "f\t1\t1\t1\ng\t0\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
	w.send(codec.WorkComplete, h, "ok")
	c.expect(codec.WorkComplete, h, "ok")
}

// ---------------------------------------------------------------------------------------
// 3.5 Waking workers

// sleeper registers fns and sends PRE_SLEEP, and returns once the server has it asleep.
func sleeper(t *testing.T, addr string, fns ...string) *client {
	t.Helper()
	w := dial(t, addr)
	w.canDo(fns...)
	w.send(codec.PreSleep)
	w.syncEcho()
	return w
}

func TestPreSleepGetsExactlyOneNoop(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	w := sleeper(t, addr, "f")
	awake := dial(t, addr)
	awake.canDo("f")
	awake.syncEcho()
	h1 := c.submit(codec.SubmitJobBg, "f", "", "1")
	w.expect(codec.Noop)
	c.submit(codec.SubmitJobBg, "f", "", "2")
	c.submit(codec.SubmitJobBg, "f", "", "3")
	w.expectNothing(quiet)
	awake.expectNothing(10 * time.Millisecond) // never sent PRE_SLEEP
	if gh, _, _, _ := w.grab(); gh != h1 {
		t.Fatalf("grab %s", gh)
	}
	// Asleep again with jobs ready: NOOP at once (the PRE_SLEEP race answer).
	w.send(codec.PreSleep)
	w.expect(codec.Noop)
	w.expectNothing(quiet)
}

func TestNoNoopWithoutPreSleep(t *testing.T) {
	addr := startServer(t, Config{})
	c, w := dial(t, addr), dial(t, addr)
	w.canDo("f")
	w.syncEcho()
	c.submit(codec.SubmitJobBg, "f", "", "1")
	c.submit(codec.SubmitJob, "f", "", "2")
	w.expectNothing(quiet)
	// PRE_SLEEP without any function gets no reply either.
	idle := dial(t, addr)
	idle.send(codec.PreSleep)
	idle.expectNothing(quiet)
}

func TestSleeperOfOtherFunctionNotWoken(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	wg := sleeper(t, addr, "g")
	wf := sleeper(t, addr, "f")
	c.submit(codec.SubmitJobBg, "f", "", "1")
	wf.expect(codec.Noop)
	wg.expectNothing(quiet)
}

func TestWorkerWakeupLimit(t *testing.T) {
	addr := startServer(t, Config{WorkerWakeup: 1})
	c := dial(t, addr)
	ws := []*client{sleeper(t, addr, "f"), sleeper(t, addr, "f"), sleeper(t, addr, "f")}
	for round := 0; round < 4; round++ {
		c.submit(codec.SubmitJobBg, "f", "", fmt.Sprint(round))
		for i, w := range ws {
			if i == round {
				w.expect(codec.Noop)
			}
		}
		for i, w := range ws {
			if i != round {
				if p, err := w.tryRecv(quiet / 3); err == nil {
					t.Fatalf("submit %d: worker %d got %v, want only worker %d woken", round+1, i+1, p, round+1)
				}
			}
		}
	}
}

func TestRequeueWakesSleepers(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	w1 := dial(t, addr)
	w1.canDo("f")
	h := c.submit(codec.SubmitJob, "f", "", "x")
	w1.grab()
	w2 := sleeper(t, addr, "f") // nothing ready: sleeps
	w2.expectNothing(quiet / 3)
	w1.conn.Close()
	w2.expect(codec.Noop)
	if gh, _, _, _ := w2.grab(); gh != h {
		t.Fatalf("grab %s", gh)
	}
}

// ---------------------------------------------------------------------------------------
// 3.10 Jobs without workers

func TestJobsQueuedWithoutWorkers(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "nobody", "", "x")
	hb := c.submit(codec.SubmitJobBg, "nobody", "", "y")
	if got := adm.admin("status"); got != "nobody\t2\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
	w := dial(t, addr)
	w.canDo("nobody")
	if gh, _, _, _ := w.grab(); gh != h {
		t.Fatalf("grab %s", gh)
	}
	if gh, _, _, _ := w.grab(); gh != hb {
		t.Fatalf("grab %s", gh)
	}
	w.send(codec.WorkComplete, h, "r")
	c.expect(codec.WorkComplete, h, "r")
}

// ---------------------------------------------------------------------------------------
// 3.11 maxqueue

func TestMaxQueueRejectsWhenFull(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	if got := adm.admin("create function fn"); got != "OK\r\n" {
		t.Fatalf("create %q", got)
	}
	if got := adm.admin("maxqueue fn 2"); got != "OK\r\n" {
		t.Fatalf("maxqueue %q", got)
	}
	c.submit(codec.SubmitJobBg, "fn", "", "1")
	c.submit(codec.SubmitJob, "fn", "", "2")
	c.send(codec.SubmitJobBg, "fn", "", "3")
	c.expectErrorPacket("QUEUE_ERROR", "Job queue is full")
	c.send(codec.SubmitJobHigh, "fn", "", "3")
	c.expectErrorPacket("QUEUE_ERROR", "Job queue is full")
	c.syncEcho() // connection stays open
	if got := adm.admin("status"); got != "fn\t2\t0\t0\n.\n" {
		t.Fatalf("status %q (rejected submits must not create jobs)", got)
	}
	// Handles are not consumed by rejected submits.
	if got := adm.admin("show jobs"); got != "H:test:1\t0\t0\t1\nH:test:2\t0\t0\t0\n.\n" {
		t.Fatalf("show jobs %q", got)
	}
	// maxqueue FN alone lifts the limit.
	if got := adm.admin("maxqueue fn"); got != "OK\r\n" {
		t.Fatalf("maxqueue %q", got)
	}
	if h := c.submit(codec.SubmitJobBg, "fn", "", "3"); h != "H:test:3" {
		t.Fatalf("handle %s", h)
	}
}

func TestMaxQueueCountsRunningJobs(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("fn")
	w.syncEcho()
	adm.admin("maxqueue fn 2")
	h := c.submit(codec.SubmitJobBg, "fn", "", "1")
	c.submit(codec.SubmitJobBg, "fn", "", "2")
	w.grab()
	c.send(codec.SubmitJobBg, "fn", "", "3")
	c.expectErrorPacket("QUEUE_ERROR", "Job queue is full")
	w.send(codec.WorkComplete, h, "")
	w.syncEcho()
	c.submit(codec.SubmitJobBg, "fn", "", "3")
}

func TestMaxQueueBypassedByCoalescing(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	adm.admin("create function fn")
	adm.admin("maxqueue fn 1")
	h := c.submit(codec.SubmitJobBg, "fn", "u1", "x")
	if h2 := c.submit(codec.SubmitJob, "fn", "u1", "x"); h2 != h {
		t.Fatalf("coalesced %s, want %s", h2, h)
	}
	if h2 := c.submit(codec.SubmitJobBg, "fn", "u1", "other data"); h2 != h {
		t.Fatalf("coalesced %s, want %s", h2, h)
	}
	c.send(codec.SubmitJobBg, "fn", "u2", "x")
	c.expectErrorPacket("QUEUE_ERROR", "Job queue is full")
	if got := adm.admin("status"); got != "fn\t1\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
}

func TestMaxQueuePerPriority(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	adm.admin("create function fn")
	if got := adm.admin("maxqueue fn 1 0 0"); got != "OK\r\n" {
		t.Fatalf("maxqueue %q", got)
	}
	c.submit(codec.SubmitJobHighBg, "fn", "", "h1")
	c.send(codec.SubmitJobHighBg, "fn", "", "h2")
	c.expectErrorPacket("QUEUE_ERROR", "Job queue is full")
	c.send(codec.SubmitJobHigh, "fn", "", "h3")
	c.expectErrorPacket("QUEUE_ERROR", "Job queue is full")
	c.submit(codec.SubmitJobBg, "fn", "", "n1")
	c.submit(codec.SubmitJob, "fn", "", "n2")
	c.submit(codec.SubmitJobLowBg, "fn", "", "l1")
	c.submit(codec.SubmitJobLow, "fn", "", "l2")
	if got := adm.admin("prioritystatus"); got != "fn\t1\t2\t2\t0\n.\n" {
		t.Fatalf("prioritystatus %q", got)
	}
	// Three-number form: LOW unlimited, HIGH and NORMAL from the arguments.
	if got := adm.admin("maxqueue fn 9 5"); got != "OK\r\n" {
		t.Fatalf("maxqueue %q", got)
	}
	c.send(codec.SubmitJobBg, "fn", "", "n3")
	c.expectErrorPacket("QUEUE_ERROR", "Job queue is full")
	c.submit(codec.SubmitJobHighBg, "fn", "", "h4")
	c.submit(codec.SubmitJobLowBg, "fn", "", "l3")
}

func TestMaxQueueUnknownFunctionNoEffect(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	if got := adm.admin("maxqueue ghost 1"); got != "OK\r\n" {
		t.Fatalf("maxqueue %q", got)
	}
	if got := adm.admin("status"); got != ".\n" {
		t.Fatalf("maxqueue created a function: %q", got)
	}
	for i := 0; i < 3; i++ {
		c.submit(codec.SubmitJobBg, "ghost", "", fmt.Sprint(i))
	}
	if got := adm.admin("status"); got != "ghost\t3\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
}

// ---------------------------------------------------------------------------------------
// 3.3 Who receives WORK_* packets

func TestWorkPacketsOnlyToForegroundClients(t *testing.T) {
	addr := startServer(t, Config{})
	fg, bg, other, w := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	hb := bg.submit(codec.SubmitJobBg, "f", "", "bg")
	hf := fg.submit(codec.SubmitJob, "f", "", "fg")
	other.submit(codec.SubmitJob, "f", "", "unrelated")
	w.canDo("f")
	w.grab()
	w.grab()
	for _, h := range []string{hb, hf} {
		w.send(codec.WorkData, h, "d")
		w.send(codec.WorkWarning, h, "w")
		w.send(codec.WorkStatus, h, "1", "2")
		w.send(codec.WorkComplete, h, "r")
	}
	w.syncEcho()
	fg.expect(codec.WorkData, hf, "d")
	fg.expect(codec.WorkWarning, hf, "w")
	fg.expect(codec.WorkStatus, hf, "1", "2")
	fg.expect(codec.WorkComplete, hf, "r")
	fg.expectNothing(quiet)
	bg.expectNothing(10 * time.Millisecond)
	other.expectNothing(10 * time.Millisecond)
}

func TestWorkFailAndExceptionToListeners(t *testing.T) {
	addr := startServer(t, Config{})
	c1, c2, w := dial(t, addr), dial(t, addr), dial(t, addr)
	c2.send(codec.OptionReq, "exceptions")
	c2.expect(codec.OptionRes, "exceptions")
	w.canDo("f")
	h := c1.submit(codec.SubmitJob, "f", "u", "x")
	c2.submit(codec.SubmitJob, "f", "u", "x")
	w.grab()
	w.send(codec.WorkException, h, "boom")
	p := c1.expect(codec.WorkFail)
	if string(p.body) != h {
		t.Fatalf("WORK_FAIL body %q, want %q", p.body, h)
	}
	c2.expect(codec.WorkException, h, "boom")

	h2 := c1.submit(codec.SubmitJob, "f", "", "y")
	w.grab()
	w.send(codec.WorkFail, h2)
	p = c1.expect(codec.WorkFail)
	if string(p.body) != h2 {
		t.Fatalf("WORK_FAIL body %q, want %q", p.body, h2)
	}
	w.syncEcho()
}

// ---------------------------------------------------------------------------------------
// 3.8 SUBMIT_JOB_EPOCH

func TestEpochJobScheduling(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	due := time.Now().Unix() + 2
	c.send(codec.SubmitJobEpoch, "f", "e1", strconv.FormatInt(due, 10), "later")
	he := c.expect(codec.JobCreated).args[0]
	w.canDo("f")
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	if got := adm.admin("status"); got != "f\t1\t0\t1\n.\n" {
		t.Fatalf("status %q", got)
	}
	// A LOW job behind the not-yet-due NORMAL epoch job is served (gearmand starves it).
	hl := c.submit(codec.SubmitJobLowBg, "f", "", "low")
	if gh, _, _, d := w.grab(); gh != hl || d != "low" {
		t.Fatalf("grab %s %q, want the LOW job", gh, d)
	}
	w.send(codec.WorkComplete, hl, "")
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	// Asleep with nothing ready: no NOOP until the job comes due, then one without any
	// new submission.
	w.send(codec.PreSleep)
	p, err := w.tryRecv(time.Until(time.Unix(due, 0)) + 3*time.Second)
	if err != nil {
		t.Fatalf("no NOOP after the epoch job came due: %v", err)
	}
	if p.typ != codec.Noop {
		t.Fatalf("got %v, want NOOP", p)
	}
	if now := time.Now().Unix(); now < due {
		t.Fatalf("NOOP at %d, before the job is due at %d", now, due)
	}
	if gh, _, u, d := w.grab(); gh != he || u != "e1" || d != "later" {
		t.Fatalf("grab %s %q %q", gh, u, d)
	}
}

func TestEpochInPastOrNonNumericRunsNow(t *testing.T) {
	addr := startServer(t, Config{})
	c, w := dial(t, addr), dial(t, addr)
	c.send(codec.SubmitJobEpoch, "f", "", "abc", "nonnumeric")
	c.expect(codec.JobCreated)
	c.send(codec.SubmitJobEpoch, "f", "", strconv.FormatInt(time.Now().Unix()-10, 10), "past")
	c.expect(codec.JobCreated)
	w.canDo("f")
	if _, _, _, d := w.grab(); d != "nonnumeric" {
		t.Fatalf("grab %q", d)
	}
	if _, _, _, d := w.grab(); d != "past" {
		t.Fatalf("grab %q", d)
	}
}

// ---------------------------------------------------------------------------------------
// Concurrency

// rawConn is a protocol connection usable from any goroutine (no testing.T calls).
type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
	mu   sync.Mutex // serialises writes
}

func dialRaw(addr string) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (c *rawConn) send(typ codec.Type, args ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.conn.Write(request(typ, args...))
	return err
}

func (c *rawConn) recv() (packet, error) { return readPacket(c.r) }

func TestConcurrentClientsAndWorkers(t *testing.T) {
	const (
		nWorkers  = 4
		nClients  = 4
		perClient = 500
		fn        = "conc"
	)
	addr := startServer(t, Config{})
	deadline := time.Now().Add(60 * time.Second)
	result := func(data string) string { return "R:" + data }

	// Workers: grab, sometimes send WORK_DATA, complete; sleep with PRE_SLEEP when idle.
	var (
		stopping sync.WaitGroup
		stopped  = make(chan struct{})
		errs     = make(chan error, nWorkers+nClients)
		workers  []*rawConn
	)
	for i := 0; i < nWorkers; i++ {
		w, err := dialRaw(addr)
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
		_ = w.conn.SetDeadline(deadline)
		stopping.Add(1)
		go func(id int, w *rawConn) {
			defer stopping.Done()
			fail := func(err error) {
				select {
				case <-stopped: // connection closed by the test at the end
				default:
					errs <- fmt.Errorf("worker %d: %w", id, err)
				}
			}
			rng := rand.New(rand.NewSource(int64(id)))
			if err := w.send(codec.CanDo, fn); err != nil {
				fail(err)
				return
			}
			for {
				if err := w.send(codec.GrabJobUniq); err != nil {
					fail(err)
					return
				}
				p, err := w.recv()
				if err != nil {
					fail(err)
					return
				}
				switch p.typ {
				case codec.NoJob:
					if err := w.send(codec.PreSleep); err != nil {
						fail(err)
						return
					}
					if p, err = w.recv(); err != nil {
						fail(err)
						return
					}
					if p.typ != codec.Noop {
						fail(fmt.Errorf("got %v while asleep", p))
						return
					}
				case codec.JobAssignUniq:
					h, data := p.args[0], p.args[3]
					if rng.Intn(10) == 0 {
						if err := w.send(codec.WorkData, h, "D:"+data); err != nil {
							fail(err)
							return
						}
					}
					if err := w.send(codec.WorkComplete, h, result(data)); err != nil {
						fail(err)
						return
					}
				default:
					fail(fmt.Errorf("unexpected %v", p))
					return
				}
			}
		}(i, w)
	}

	// Clients: pipeline every submission, then read until every one has its result.
	var clients sync.WaitGroup
	for i := 0; i < nClients; i++ {
		clients.Add(1)
		go func(id int) {
			defer clients.Done()
			fail := func(err error) { errs <- fmt.Errorf("client %d: %w", id, err) }
			c, err := dialRaw(addr)
			if err != nil {
				fail(err)
				return
			}
			defer c.conn.Close()
			_ = c.conn.SetDeadline(deadline)
			rng := rand.New(rand.NewSource(int64(100 + id)))
			types := []codec.Type{codec.SubmitJobHigh, codec.SubmitJob, codec.SubmitJobLow}
			datas := make([]string, perClient)
			subs := make([][]byte, 0, perClient)
			for k := 0; k < perClient; k++ {
				unique, data := fmt.Sprintf("c%d-%d", id, k), fmt.Sprintf("c%d-%d", id, k)
				switch r := rng.Intn(10); {
				case r == 0: // shared across clients and repeated: coalesces
					d := fmt.Sprintf("dup%d", rng.Intn(20))
					unique, data = d, d
				case r == 1:
					unique = "" // never coalesces
				}
				datas[k] = data
				subs = append(subs, codec.AppendRequest(nil, types[rng.Intn(3)], []byte(fn), []byte(unique), []byte(data)))
			}
			go func() {
				for _, b := range subs {
					c.mu.Lock()
					_, err := c.conn.Write(b)
					c.mu.Unlock()
					if err != nil {
						return // the reader reports the failure
					}
				}
			}()
			expected := map[string]int{}   // handle -> submissions that got it
			payload := map[string]string{} // handle -> data of those submissions
			got := map[string]int{}
			created, completed := 0, 0
			for created < perClient || completed < perClient {
				p, err := c.recv()
				if err != nil {
					fail(fmt.Errorf("after %d created, %d completed: %w", created, completed, err))
					return
				}
				switch p.typ {
				case codec.JobCreated:
					h := p.args[0]
					if d, ok := payload[h]; ok && d != datas[created] {
						fail(fmt.Errorf("handle %s reused for data %q and %q", h, d, datas[created]))
						return
					}
					payload[h] = datas[created]
					expected[h]++
					created++
				case codec.WorkData:
					if d, ok := payload[p.args[0]]; !ok || p.args[1] != "D:"+d {
						fail(fmt.Errorf("WORK_DATA %v for unknown handle or wrong data", p))
						return
					}
				case codec.WorkComplete:
					h := p.args[0]
					d, ok := payload[h]
					if !ok {
						fail(fmt.Errorf("WORK_COMPLETE %v before JOB_CREATED", p))
						return
					}
					if p.args[1] != result(d) {
						fail(fmt.Errorf("WORK_COMPLETE %v, want payload %q", p, result(d)))
						return
					}
					got[h]++
					if got[h] > expected[h] {
						fail(fmt.Errorf("handle %s completed %d times for %d submissions", h, got[h], expected[h]))
						return
					}
					completed++
				default:
					fail(fmt.Errorf("unexpected %v", p))
					return
				}
			}
			for h, n := range expected {
				if got[h] != n {
					fail(fmt.Errorf("handle %s: %d completions for %d submissions", h, got[h], n))
					return
				}
			}
			// Nothing more may arrive.
			_ = c.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if p, err := c.recv(); err == nil {
				fail(fmt.Errorf("extra packet %v", p))
			}
		}(i)
	}
	clients.Wait()
	drain := func() (failed bool) {
		for {
			select {
			case err := <-errs:
				t.Error(err)
				failed = true
			default:
				return failed
			}
		}
	}
	if !drain() {
		adm := dial(t, addr)
		waitAdmin(t, adm, "status", fmt.Sprintf("%s\t0\t0\t%d\n.\n", fn, nWorkers))
		if got := adm.admin("show jobs"); got != ".\n" {
			t.Errorf("show jobs %q", got)
		}
	}
	close(stopped)
	for _, w := range workers {
		w.conn.Close()
	}
	stopping.Wait()
	drain()
}

// ---------------------------------------------------------------------------------------
// More edge cases

// One of two coalesced foreground clients leaving does not abandon the job: the other keeps
// receiving.
func TestCoalescedListenerLeavesOthersKeepReceiving(t *testing.T) {
	addr := startServer(t, Config{})
	c1, c2, adm, w := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	h := c1.submit(codec.SubmitJob, "f", "u", "x")
	c2.submit(codec.SubmitJob, "f", "u", "x")
	c1.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		adm.send(codec.GetStatusUnique, "u")
		if p := adm.expect(codec.StatusResUnique); p.args[5] == "1" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("listener count never dropped to 1: %v", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := adm.admin("show jobs"); got != h+"\t0\t0\t0\n.\n" {
		t.Fatalf("show jobs %q (job must not be abandoned)", got)
	}
	w.canDo("f")
	w.grab()
	w.send(codec.WorkData, h, "d")
	w.send(codec.WorkComplete, h, "r")
	c2.expect(codec.WorkData, h, "d")
	c2.expect(codec.WorkComplete, h, "r")
}

// A running foreground job abandoned by its client is dropped, not requeued, when its
// worker disconnects.
func TestAbandonedRunningJobDroppedOnWorkerDisconnect(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("f")
	h := c.submit(codec.SubmitJob, "f", "", "x")
	w.grab()
	c.conn.Close()
	waitAdmin(t, adm, "show jobs", h+"\t0\t1\t0\n.\n")
	w.conn.Close()
	waitAdmin(t, adm, "show jobs", ".\n")
	if got := adm.admin("status"); got != "f\t0\t0\t0\n.\n" {
		t.Fatalf("status %q", got)
	}
}

// CANT_DO while holding a job counts as a retry (spec 2.1 CANT_DO, 3.6).
func TestJobRetriesCountCantDo(t *testing.T) {
	addr := startServer(t, Config{JobRetries: 2})
	c, adm, w := dial(t, addr), dial(t, addr), dial(t, addr)
	h := c.submit(codec.SubmitJob, "f", "", "x")
	w.canDo("f")
	w.grab()
	w.send(codec.CantDo, "f")
	w.syncEcho()
	if got := adm.admin("show jobs"); got != h+"\t1\t0\t0\n.\n" {
		t.Fatalf("show jobs %q", got)
	}
	w.canDo("f")
	w.grab()
	w.send(codec.ResetAbilities)
	c.expect(codec.WorkFail, h)
	waitAdmin(t, adm, "show jobs", ".\n")
}

// PRE_SLEEP with a runnable job is answered with NOOP every time (gearmand's race answer has
// no "already sent" condition), also when a wake-up NOOP went out before and the worker
// sends PRE_SLEEP again without grabbing.
func TestPreSleepRepeatedWithoutGrabStillAnswered(t *testing.T) {
	addr := startServer(t, Config{})
	c := dial(t, addr)
	w := sleeper(t, addr, "f")
	c.submit(codec.SubmitJobBg, "f", "", "x")
	w.expect(codec.Noop)
	w.send(codec.PreSleep) // a job is runnable: must be answered at once
	if p, err := w.tryRecv(time.Second); err != nil || p.typ != codec.Noop {
		t.Fatalf("second PRE_SLEEP with a runnable job: got %v, %v; want NOOP", p, err)
	}
}

// Worker churn under load: workers that take a job and vanish, alongside honest workers.
// Every submission still gets exactly one WORK_COMPLETE and never a WORK_FAIL.
func TestConcurrentWorkerChurn(t *testing.T) {
	const (
		fn        = "churn"
		nClients  = 3
		perClient = 200
		nHonest   = 3
		nChurners = 3
	)
	addr := startServer(t, Config{})
	deadline := time.Now().Add(60 * time.Second)
	stop := make(chan struct{})
	errs := make(chan error, 64)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	var bg sync.WaitGroup
	var honest []*rawConn
	for i := 0; i < nHonest; i++ {
		w, err := dialRaw(addr)
		if err != nil {
			t.Fatal(err)
		}
		honest = append(honest, w)
		_ = w.conn.SetDeadline(deadline)
		bg.Add(1)
		go func(w *rawConn) {
			defer bg.Done()
			if w.send(codec.CanDo, fn) != nil {
				return
			}
			for {
				if w.send(codec.GrabJob) != nil {
					return
				}
				p, err := w.recv()
				if err != nil {
					select {
					case <-stop:
					default:
						report(fmt.Errorf("honest worker: %w", err))
					}
					return
				}
				switch p.typ {
				case codec.NoJob:
					time.Sleep(time.Millisecond)
				case codec.JobAssign:
					if w.send(codec.WorkComplete, p.args[0], "R:"+p.args[2]) != nil {
						return
					}
				}
			}
		}(w)
	}
	for i := 0; i < nChurners; i++ {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				w, err := dialRaw(addr)
				if err != nil {
					report(err)
					return
				}
				_ = w.conn.SetDeadline(time.Now().Add(5 * time.Second))
				_ = w.send(codec.CanDo, fn)
				_ = w.send(codec.GrabJob)
				_, _ = w.recv()
				w.conn.Close() // with or without a job: a requeue if it had one
			}
		}()
	}
	var clients sync.WaitGroup
	for i := 0; i < nClients; i++ {
		clients.Add(1)
		go func(id int) {
			defer clients.Done()
			c, err := dialRaw(addr)
			if err != nil {
				report(err)
				return
			}
			defer c.conn.Close()
			_ = c.conn.SetDeadline(deadline)
			go func() {
				for k := 0; k < perClient; k++ {
					if c.send(codec.SubmitJob, fn, "", fmt.Sprintf("%d-%d", id, k)) != nil {
						return
					}
				}
			}()
			data := map[string]string{}
			done := map[string]bool{}
			created := 0
			for created < perClient || len(done) < perClient {
				p, err := c.recv()
				if err != nil {
					report(fmt.Errorf("client %d: %d created, %d done: %w", id, created, len(done), err))
					return
				}
				switch p.typ {
				case codec.JobCreated:
					data[p.args[0]] = fmt.Sprintf("%d-%d", id, created)
					created++
				case codec.WorkComplete:
					h := p.args[0]
					if done[h] || p.args[1] != "R:"+data[h] {
						report(fmt.Errorf("client %d: bad or duplicate %v", id, p))
						return
					}
					done[h] = true
				default:
					report(fmt.Errorf("client %d: unexpected %v", id, p))
					return
				}
			}
		}(i)
	}
	clients.Wait()
	close(stop)
	for _, w := range honest {
		w.conn.Close()
	}
	bg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	adm := dial(t, addr)
	waitAdmin(t, adm, "status", fn+"\t0\t0\t0\n.\n")
	if got := adm.admin("show jobs"); got != ".\n" {
		t.Fatalf("show jobs %q", got)
	}
}

// -w N limits NOOPs per queued job: two scheduled jobs coming due together are two jobs,
// so with WorkerWakeup 1 two sleeping workers are woken, as two submits would wake them.
func TestEpochDueWakesPerJobWithWorkerWakeup(t *testing.T) {
	addr := startServer(t, Config{WorkerWakeup: 1})
	c := dial(t, addr)
	w1, w2 := sleeper(t, addr, "f"), sleeper(t, addr, "f")
	due := strconv.FormatInt(time.Now().Unix()+2, 10)
	for _, d := range []string{"a", "b"} {
		c.send(codec.SubmitJobEpoch, "f", "", due, d)
		c.expect(codec.JobCreated)
	}
	for i, w := range []*client{w1, w2} {
		wait := 5 * time.Second // until the jobs are due
		if i > 0 {
			wait = time.Second // the other NOOP goes out at the same moment
		}
		p, err := w.tryRecv(wait)
		if err != nil || p.typ != codec.Noop {
			t.Fatalf("worker %d: got %v, %v; want a NOOP when the two jobs came due", i+1, p, err)
		}
	}
}
