package engine

import (
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
)

// statOf returns fn's FunctionStat, failing when the engine has none.
func statOf(t *testing.T, e *Engine, fn string) FunctionStat {
	t.Helper()
	for _, st := range e.FunctionStats() {
		if st.Name == fn {
			return st
		}
	}
	t.Fatalf("no function %q", fn)
	return FunctionStat{}
}

// Every end is counted once in its function's Stats, with how long the job waited and ran;
// the totals keep what a deleted function counted.
func TestFunctionStatsCountEveryOutcome(t *testing.T) {
	e, addr := startEngine(t, Config{}, 1)
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	adm.expectAdmin("retry f 2 1ms 1ms", "OK\r\n")
	ok := c.submit(codec.SubmitJobBg, "f", "a", "1")
	bad := c.submit(codec.SubmitJobBg, "f", "b", "2")
	c.submit(codec.SubmitJobBg, "f", "a", "1") // coalesced: not a new job
	queued := c.submit(codec.SubmitJobLowBg, "f", "c", "3")
	time.Sleep(20 * time.Millisecond)
	st := statOf(t, e, "f")
	if st.Stats.Submitted != 3 || st.Queued != [queue.NumPriorities]int{0, 2, 1} || st.Oldest.IsZero() ||
		time.Since(st.Oldest) < 20*time.Millisecond {
		t.Fatalf("after 3 submits: %+v", st)
	}
	w.canDo("f")
	if h, _, _, _ := w.grab(); h != ok {
		t.Fatalf("grabbed %s, want %s", h, ok)
	}
	time.Sleep(30 * time.Millisecond)
	w.send(codec.WorkComplete, ok, "done")
	adm.expectAdmin("cancel job "+queued, "OK\r\n") // the low job would come before the retry is due
	for range 2 {                                   // two attempts: a retry, then a dead letter
		h, _ := w.grabWithin(5 * time.Second)
		if h != bad {
			t.Fatalf("grabbed %s, want %s", h, bad)
		}
		w.send(codec.WorkFail, bad)
		w.syncEcho()
	}
	st = statOf(t, e, "f")
	s := st.Stats
	if s.Completed != 1 || s.Failed != 2 || s.Retried != 1 || s.DeadLettered != 1 {
		t.Fatalf("counters: %+v", s)
	}
	if n := s.QueueWait.Count(); n != 3 || s.QueueWait.Sum < 20*time.Millisecond {
		t.Fatalf("queue wait: %d observations, sum %v; want 3 and ≥ 20ms", n, s.QueueWait.Sum)
	}
	if n := s.RunTime.Count(); n != 3 || s.RunTime.Sum < 30*time.Millisecond {
		t.Fatalf("run time: %d observations, sum %v; want 3 and ≥ 30ms", n, s.RunTime.Sum)
	}
	if !st.Oldest.IsZero() {
		t.Fatalf("nothing is queued, yet the oldest job was queued at %v", st.Oldest)
	}
	w.send(codec.CantDo, "f")
	adm.expectAdmin("retry f off", "OK\r\n")
	w.syncEcho()
	adm.expectAdmin("drop function f", "OK\r\n")
	if tot := e.TotalStats(); tot.Submitted != 3 || tot.Completed != 1 || tot.Failed != 2 || tot.RunTime.Count() != 3 {
		t.Fatalf("totals after the function was dropped: %+v", tot)
	}
}
