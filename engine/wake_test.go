package engine

import (
	"strconv"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// The tests below pin Spur's default wake-up policy (wake.go): as many NOOPs as ready jobs
// need, a replacement whenever a woken worker does not take the job it was woken for.

// noWatchdog keeps the answer bound out of a test's way: nothing it checks takes that long.
const noWatchdog = time.Minute

// woken returns the indexes of the workers that get a NOOP within d.
func woken(ws []*client, d time.Duration) []int {
	var got []int
	for i, w := range ws {
		if p, err := w.tryRecv(d); err == nil {
			if p.typ != codec.Noop {
				w.t.Fatalf("worker %d got %v, want NOOP or nothing", i, p)
			}
			got = append(got, i)
		}
	}
	return got
}

func sleepers(t *testing.T, addr string, n int, fns ...string) []*client {
	ws := make([]*client, n)
	for i := range ws {
		ws[i] = sleeper(t, addr, fns...)
	}
	return ws
}

// oneWoken starts a server with cfg, n sleepers of f and one background job of f, and
// returns the submitting client, the sleepers, the job's handle and which sleeper the job
// woke (exactly one must be).
func oneWoken(t *testing.T, cfg Config, n int) (c *client, ws []*client, h string, i int) {
	t.Helper()
	addr := startServer(t, cfg)
	c = dial(t, addr)
	ws = sleepers(t, addr, n, "f")
	h = c.submit(codec.SubmitJobBg, "f", "", "x")
	got := woken(ws, quiet)
	if len(got) != 1 {
		t.Fatalf("one job woke %v, want exactly one worker", got)
	}
	return c, ws, h, got[0]
}

func TestDefaultWakesOneSleeperPerJob(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c := dial(t, addr)
	ws := sleepers(t, addr, 5, "f")
	c.submit(codec.SubmitJobBg, "f", "", "1")
	first := woken(ws, quiet)
	if len(first) != 1 {
		t.Fatalf("one job woke workers %v, want exactly one", first)
	}
	c.submit(codec.SubmitJobBg, "f", "", "2")
	second := woken(ws, quiet)
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("a second job, the first woken worker not answering yet: woke %v after %v, want one other", second, first)
	}
	// Three more jobs for three sleepers left: each gets one NOOP, nobody a second.
	for i := 0; i < 3; i++ {
		c.submit(codec.SubmitJobBg, "f", "", "more")
	}
	if rest := woken(ws, quiet); len(rest) != 3 {
		t.Fatalf("three more jobs woke %v, want the three others", rest)
	}
	c.submit(codec.SubmitJobBg, "f", "", "sixth")
	if again := woken(ws, quiet); len(again) != 0 {
		t.Fatalf("every worker was woken already, yet %v got another NOOP", again)
	}
}

// A worker that answers and takes the job needs no replacement; one that answers and takes
// nothing (another worker was faster) needs none either while nothing is left.
func TestWokenWorkerThatGrabsNeedsNoReplacement(t *testing.T) {
	_, ws, h, i := oneWoken(t, Config{WakeTimeout: noWatchdog}, 3)
	if gh, _, _, _ := ws[i].grab(); gh != h {
		t.Fatalf("grabbed %s, want %s", gh, h)
	}
	if more := woken(ws, quiet); len(more) != 0 {
		t.Fatalf("the job was taken, yet %v were woken", more)
	}
}

// A worker woken for f takes a job of g instead (its newest registration); f's job goes to
// the worker that went to sleep meanwhile, woken by its own PRE_SLEEP.
func TestWorkerSleepingWhileAJobWaitsWakesItself(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c := dial(t, addr)
	both := sleeper(t, addr, "f", "g") // g registered last: grabbed first
	fOnly := sleeper(t, addr, "f")
	// Make both the one woken for f: fOnly is busy until then.
	fOnly.send(codec.GrabJobUniq)
	fOnly.expect(codec.NoJob)
	hf := c.submit(codec.SubmitJobBg, "f", "", "for f")
	both.expect(codec.Noop)
	// g's job arrives before both answers: nobody is left to wake for it.
	hg := c.submit(codec.SubmitJobBg, "g", "", "for g")
	// fOnly goes to sleep with f's job ready: its PRE_SLEEP earns it a NOOP at once.
	fOnly.send(codec.PreSleep)
	fOnly.expect(codec.Noop)
	if h, _, _, _ := both.grab(); h != hg {
		t.Fatalf("worker of f and g took %s, want g's job %s", h, hg)
	}
	if h, _, _, _ := fOnly.grab(); h != hf {
		t.Fatalf("worker of f took %s, want %s", h, hf)
	}
}

// The same without the second worker's own PRE_SLEEP: it sleeps when f's job arrives, is
// left alone because both is woken for it, and is woken once both takes g's job instead.
func TestWokenWorkerTakingAnotherFunctionWakesAnother(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c := dial(t, addr)
	fOnly := sleeper(t, addr, "f")
	both := sleeper(t, addr, "f", "g")
	// The cursor starts at the first registered worker: make it reach both first by
	// letting fOnly be woken once and served.
	h0 := c.submit(codec.SubmitJobBg, "f", "", "warm-up")
	fOnly.expect(codec.Noop)
	if h, _, _, _ := fOnly.grab(); h != h0 {
		t.Fatalf("warm-up grab %s", h)
	}
	fOnly.send(codec.GrabJobUniq)
	fOnly.expect(codec.NoJob)
	fOnly.send(codec.PreSleep)
	fOnly.syncEcho()

	hf := c.submit(codec.SubmitJobBg, "f", "", "for f")
	both.expect(codec.Noop)
	fOnly.expectNothing(quiet) // both is woken for f's only job
	hg := c.submit(codec.SubmitJobBg, "g", "", "for g")
	if h, _, _, _ := both.grab(); h != hg {
		t.Fatalf("worker of f and g took %s, want g's job %s", h, hg)
	}
	fOnly.expect(codec.Noop) // f's job still waits: its other sleeper is woken
	if h, _, _, _ := fOnly.grab(); h != hf {
		t.Fatalf("worker of f took %s, want %s", h, hf)
	}
}

// A woken worker that goes back to sleep without grabbing is woken again while the job waits.
func TestWokenWorkerSleepingAgainIsWokenAgain(t *testing.T) {
	_, ws, _, i := oneWoken(t, Config{WakeTimeout: noWatchdog}, 2)
	w, other := ws[i], ws[1-i]
	w.send(codec.PreSleep)
	w.expect(codec.Noop)
	other.expectNothing(quiet)
}

// A woken worker that disconnects before it answers is replaced at once.
func TestWokenWorkerDisconnectingIsReplaced(t *testing.T) {
	testWokenWorkerLostIsReplaced(t, func(w *client) { w.conn.Close() })
}

// The race where the woken worker dies holding the job: it grabs and disconnects at once,
// before or after the assignment; both must end in a requeue.
func TestWokenWorkerDyingWithTheJobIsReplaced(t *testing.T) {
	testWokenWorkerLostIsReplaced(t, func(w *client) {
		w.write(request(codec.GrabJobUniq))
		w.conn.Close()
	})
}

// testWokenWorkerLostIsReplaced wakes one of three sleepers for one job, lets lose end it,
// and checks that exactly one other sleeper is woken and gets the job.
func testWokenWorkerLostIsReplaced(t *testing.T, lose func(*client)) {
	_, ws, h, i := oneWoken(t, Config{WakeTimeout: noWatchdog}, 3)
	lose(ws[i])
	rest := append(append([]*client{}, ws[:i]...), ws[i+1:]...)
	next := woken(rest, time.Second)
	if len(next) != 1 {
		t.Fatalf("after the woken worker was lost, %v were woken, want one", next)
	}
	if gh, _, _, _ := rest[next[0]].grab(); gh != h {
		t.Fatalf("grabbed %s, want %s", gh, h)
	}
}

// A woken worker that gives the function up (CANT_DO) before answering is replaced.
func TestWokenWorkerGivingUpTheFunctionIsReplaced(t *testing.T) {
	_, ws, _, i := oneWoken(t, Config{WakeTimeout: noWatchdog}, 2)
	ws[i].send(codec.CantDo, "f")
	ws[1-i].expect(codec.Noop)
}

// A woken worker that never answers loses its claim after WakeTimeout: another is woken.
func TestSilentWokenWorkerIsReplacedAfterTimeout(t *testing.T) {
	const bound = 300 * time.Millisecond
	addr := startServer(t, Config{WakeTimeout: bound})
	c := dial(t, addr)
	ws := sleepers(t, addr, 2, "f")
	start := time.Now() // the bound runs from the submit
	h := c.submit(codec.SubmitJobBg, "f", "", "x")
	got := woken(ws, quiet)
	if len(got) != 1 {
		t.Fatalf("woke %v", got)
	}
	i := got[0]
	other := ws[1-i]
	other.expect(codec.Noop)
	if waited := time.Since(start); waited < bound {
		t.Fatalf("the second worker was woken after %v, before the %v bound", waited, bound)
	}
	if gh, _, _, _ := other.grab(); gh != h {
		t.Fatalf("grabbed %s, want %s", gh, h)
	}
	// The silent worker answers late: nothing is left for it, and nobody else is woken.
	ws[i].send(codec.GrabJobUniq)
	ws[i].expect(codec.NoJob)
}

// A requeued job (its worker disconnected) wakes one sleeper, not all.
func TestRequeueWakesOneSleeper(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c := dial(t, addr)
	busy := dial(t, addr)
	busy.canDo("f")
	h := c.submit(codec.SubmitJobBg, "f", "", "x")
	busy.grab()
	ws := sleepers(t, addr, 3, "f")
	busy.conn.Close()
	got := woken(ws, quiet*2)
	if len(got) != 1 {
		t.Fatalf("a requeue woke %v, want one worker", got)
	}
	if gh, _, _, _ := ws[got[0]].grab(); gh != h {
		t.Fatalf("grabbed %s, want %s", gh, h)
	}
}

// Two scheduled jobs coming due together wake two of three sleepers.
func TestEpochJobsComingDueWakeOneSleeperEach(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c := dial(t, addr)
	ws := sleepers(t, addr, 3, "f")
	due := strconv.FormatInt(time.Now().Unix()+1, 10)
	for _, d := range []string{"a", "b"} {
		c.send(codec.SubmitJobEpoch, "f", "", due, d)
		c.expect(codec.JobCreated)
	}
	got := woken(ws[:1], 3*time.Second) // until the jobs are due
	got = append(got, woken(ws[1:], quiet)...)
	if len(got) != 2 {
		t.Fatalf("two jobs coming due woke %d workers, want 2", len(got))
	}
}

// More jobs than sleepers: all sleepers are woken; busy workers asking again get the rest.
func TestBacklogWakesEverySleeperOnce(t *testing.T) {
	addr := startServer(t, Config{WakeTimeout: noWatchdog})
	c := dial(t, addr)
	ws := sleepers(t, addr, 3, "f")
	for i := 0; i < 10; i++ {
		c.submit(codec.SubmitJobBg, "f", "", strconv.Itoa(i))
	}
	if got := woken(ws, quiet); len(got) != 3 {
		t.Fatalf("10 jobs woke %v, want all 3 sleepers", got)
	}
	done := 0
	for _, w := range ws {
		for {
			w.send(codec.GrabJobUniq)
			if p := w.recv(); p.typ == codec.NoJob {
				break
			}
			done++
		}
	}
	if done != 10 {
		t.Fatalf("workers took %d jobs, want 10", done)
	}
}

// gearmand's -w 0 when asked for: every sleeping worker for every job.
func TestWakeAllWakesEverySleeper(t *testing.T) {
	addr := startServer(t, Config{WorkerWakeup: WakeAll})
	c := dial(t, addr)
	ws := sleepers(t, addr, 3, "f")
	c.submit(codec.SubmitJobBg, "f", "", "x")
	if got := woken(ws, quiet); len(got) != 3 {
		t.Fatalf("woke %v, want all three", got)
	}
}
