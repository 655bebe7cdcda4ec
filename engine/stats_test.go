package engine

import (
	"strconv"
	"strings"
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
	w.send(codec.GrabJob) // reaps the cancelled job if no grab went past it yet
	w.expect(codec.NoJob)
	w.send(codec.CantDo, "f")
	adm.expectAdmin("retry f off", "OK\r\n")
	w.syncEcho()
	adm.expectAdmin("drop function f", "OK\r\n")
	if tot := e.TotalStats(); tot.Submitted != 3 || tot.Completed != 1 || tot.Failed != 2 || tot.RunTime.Count() != 3 {
		t.Fatalf("totals after the function was dropped: %+v", tot)
	}
}

// `show stats` lists the counters and `show jobs FN` one function's jobs, running first.
func TestShowStatsAndShowJobsOfAFunction(t *testing.T) {
	addr := startServer(t, Config{})
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	first := c.submit(codec.SubmitJobBg, "f", "u1", "1")
	second := c.submit(codec.SubmitJobLowBg, "f", "u\t2", "2")
	c.submit(codec.SubmitJobBg, "g", "", "3")
	w.canDo("f")
	if h, _, _, _ := w.grab(); h != first {
		t.Fatalf("grabbed %s, want %s", h, first)
	}
	got := adm.admin("show jobs f")
	lines := strings.Split(strings.TrimSuffix(got, ".\n"), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("show jobs f: %q", got)
	}
	run, queued := strings.Split(lines[0], "\t"), strings.Split(lines[1], "\t")
	if len(run) != 7 || run[0] != first || run[1] != "running" || run[2] != "normal" || run[3] != "u1" || run[4] != "-" || run[5] == "-" || run[6] == "-" {
		t.Fatalf("the running job: %q", run)
	}
	if len(queued) != 7 || queued[0] != second || queued[1] != "queued" || queued[2] != "low" || queued[3] != `u\x092` || queued[5] != "-" || queued[6] != "-" {
		t.Fatalf("the queued job: %q", queued)
	}
	adm.expectAdmin("show jobs nothing", ".\n")
	w.send(codec.WorkComplete, first, "ok")
	w.syncEcho()
	adm.expectAdmin("show stats", "f\t2\t1\t0\t0\t0\ng\t1\t0\t0\t0\t0\n.\n")
}

// `show jobs FN N` lists the first N only; a 4th word that is not a positive number is
// refused as gearmand refuses any extra word.
func TestShowJobsOfAFunctionWithALimit(t *testing.T) {
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	var handles []string
	for i := range 5 {
		handles = append(handles, c.submit(codec.SubmitJobBg, "f", "", strconv.Itoa(i)))
	}
	got := adm.admin("show jobs f 2")
	lines := strings.Split(strings.TrimSuffix(got, ".\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], handles[0]+"\t") || !strings.HasPrefix(lines[1], handles[1]+"\t") {
		t.Fatalf("show jobs f 2: %q", got)
	}
	if n := strings.Count(adm.admin("show jobs f 99"), "\n"); n != 6 {
		t.Fatalf("show jobs f 99: %d lines, want the 5 jobs and the dot", n)
	}
	for _, bad := range []string{"show jobs f 0", "show jobs f -1", "show jobs f two", "show jobs f 1x"} {
		adm.expectAdmin(bad, codec.AdminUnknownShow)
	}
}

// `show node` answers the node's name, version, start, counts and peers, one KEY \t VALUE
// per line.
func TestShowNode(t *testing.T) {
	started := time.Now().Add(-90 * time.Second)
	addr := startServer(t, Config{NodeName: "node-a", Peers: []string{"10.0.0.2:4730", "10.0.0.3:4730"}, Started: started})
	c, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	first := c.submit(codec.SubmitJobBg, "f", "", "1")
	c.submit(codec.SubmitJobLowBg, "f", "", "2")
	c.submit(codec.SubmitJobBg, "g", "", "3")
	w.canDo("f")
	if h, _, _, _ := w.grab(); h != first {
		t.Fatalf("grabbed %s, want %s", h, first)
	}
	w.send(codec.WorkComplete, first, "ok")
	w.syncEcho()
	c.submit(codec.SubmitJobBg, "f", "", "4")
	if h, _, _, _ := w.grab(); h == "" {
		t.Fatal("no second job")
	}
	got := adm.admin("show node")
	if !strings.HasSuffix(got, "\n.\n") {
		t.Fatalf("show node: %q", got)
	}
	var keys []string
	kv := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n.\n"), "\n") {
		k, v, ok := strings.Cut(l, "\t")
		if !ok {
			t.Fatalf("show node line %q", l)
		}
		if len(kv[k]) == 0 {
			keys = append(keys, k)
		}
		kv[k] = append(kv[k], v)
	}
	want := "name version started uptime connections functions queued running workers submitted completed failed retried dead_lettered schedules peer"
	if strings.Join(keys, " ") != want {
		t.Fatalf("show node keys %q, want %q", keys, want)
	}
	for k, v := range map[string]string{"name": "node-a", "version": Version, "connections": "3", "functions": "2",
		"queued": "2", "running": "1", "workers": "1", "submitted": "4", "completed": "1", "failed": "0",
		"schedules": "leads"} {
		if kv[k][0] != v {
			t.Errorf("show node %s = %q, want %q", k, kv[k][0], v)
		}
	}
	if st, err := time.Parse(time.RFC3339Nano, kv["started"][0]); err != nil || !st.Equal(started) {
		t.Errorf("started %q, want %v", kv["started"][0], started)
	}
	if up, err := strconv.ParseFloat(kv["uptime"][0], 64); err != nil || up < 90 || up > 120 {
		t.Errorf("uptime %q", kv["uptime"][0])
	}
	if strings.Join(kv["peer"], ",") != "10.0.0.2:4730,10.0.0.3:4730" {
		t.Errorf("peers %q", kv["peer"])
	}
	adm.expectAdmin("show node extra", codec.AdminUnknownShow)
}
