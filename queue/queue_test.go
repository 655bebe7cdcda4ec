package queue

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// peer is a queue.Peer for tests.
type peer uint64

func (p peer) PeerID() uint64 { return uint64(p) }

// fixture is a registry plus a job factory with increasing handles and sequence numbers.
type fixture struct {
	t   *testing.T
	reg *Registry
	seq uint64
}

func newFixture(t *testing.T) *fixture { return &fixture{t: t, reg: NewRegistry()} }

// fn returns the function called name (created on first use).
func (fx *fixture) fn(name string) *Function {
	sh := fx.reg.ShardFor([]byte(name))
	sh.Lock()
	defer sh.Unlock()
	return sh.Ensure([]byte(name))
}

// job builds (but does not enqueue) a job.
func (fx *fixture) job(unique, data string, prio Priority, runAt int64) *Job {
	j := fx.newJob(unique, []byte(data))
	j.Priority, j.RunAt = prio, runAt
	return j
}

// newJob makes (but does not enqueue) a job as the engine does, with NewJob.
func (fx *fixture) newJob(unique string, data []byte) *Job {
	fx.seq++
	j := NewJob([]byte(fmt.Sprintf("H:t:%d", fx.seq)), []byte(unique), nil, data)
	j.Seq = fx.seq
	return j
}

// add builds a job and enqueues it in f at time now.
func (fx *fixture) add(f *Function, unique, data string, prio Priority, runAt, now int64) *Job {
	j := fx.job(unique, data, prio, runAt)
	f.Enqueue(j, now)
	return j
}

func handleOrNil(j *Job) string {
	if j == nil {
		return "nil"
	}
	return j.Handle
}

func checkCounts(t *testing.T, f *Function, total, running int, queued [NumPriorities]int) {
	t.Helper()
	if f.Total != total || f.Running != running || f.Queued != queued {
		t.Fatalf("%s counts: Total=%d Running=%d Queued=%v, want %d %d %v",
			f.Name, f.Total, f.Running, f.Queued, total, running, queued)
	}
}

// popAll pops every ready job at now and returns their data in order.
func popAll(f *Function, now int64) []string {
	var out []string
	for j := f.Pop(now); j != nil; j = f.Pop(now) {
		out = append(out, string(j.Data))
	}
	return out
}

func TestFIFOOrderPerPriority(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	for _, s := range []struct {
		d string
		p Priority
	}{{"l1", Low}, {"n1", Normal}, {"h1", High}, {"l2", Low}, {"n2", Normal}, {"h2", High}} {
		fx.add(f, "", s.d, s.p, 0, 100)
	}
	checkCounts(t, f, 6, 0, [NumPriorities]int{2, 2, 2})
	got := popAll(f, 100)
	want := []string{"h1", "h2", "n1", "n2", "l1", "l2"}
	if !slices.Equal(got, want) {
		t.Fatalf("pop order %v, want %v", got, want)
	}
	// Popped but not started: still live (Total) but neither queued nor running.
	checkCounts(t, f, 6, 0, [NumPriorities]int{})
	if f.Pop(100) != nil {
		t.Fatal("Pop of an empty function returned a job")
	}
}

func TestFIFOLongRunInterleaved(t *testing.T) {
	// Interleaved pushes and pops keep FIFO order across compactions of the backing slice.
	fx := newFixture(t)
	f := fx.fn("f")
	next, want := 0, 0
	rng := rand.New(rand.NewSource(1))
	for step := 0; step < 20000; step++ {
		if rng.Intn(3) != 0 {
			fx.add(f, "", fmt.Sprint(next), Normal, 0, 0)
			next++
		} else if j := f.Pop(0); j != nil {
			if string(j.Data) != fmt.Sprint(want) {
				t.Fatalf("step %d: popped %s, want %d", step, j.Data, want)
			}
			want++
			f.Start(j, peer(1), 0)
			f.Finish(j)
		}
	}
	for j := f.Pop(0); j != nil; j = f.Pop(0) {
		if string(j.Data) != fmt.Sprint(want) {
			t.Fatalf("drain: popped %s, want %d", j.Data, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d jobs, pushed %d", want, next)
	}
}

func TestPopReturnsIgnoredJobsForForget(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	a := fx.add(f, "ua", "a", Normal, 0, 0)
	b := fx.add(f, "ub", "b", Normal, 0, 0)
	c := fx.add(f, "uc", "c", Normal, 0, 0)
	if gone := f.Ignore(b); gone {
		t.Fatal("Ignore of a queued job reported it gone")
	}
	if !b.Ignore || b.State != Queued {
		t.Fatalf("ignored queued job: Ignore=%v State=%v", b.Ignore, b.State)
	}
	if f.Coalesce([]byte("ub"), nil) != nil {
		t.Fatal("an ignored job still coalesces")
	}
	if fx.reg.Lookup([]byte(b.Handle)) != b {
		t.Fatal("an ignored job left the handle index before being reaped")
	}
	checkCounts(t, f, 3, 0, [NumPriorities]int{0, 3, 0})

	if j := f.Pop(0); j != a {
		t.Fatalf("first Pop = %v, want a", j)
	}
	j := f.Pop(0)
	if j != b || !j.Ignore {
		t.Fatalf("second Pop = %+v, want the ignored job b", j)
	}
	checkCounts(t, f, 3, 0, [NumPriorities]int{0, 1, 0})
	f.Forget(b)
	if b.State != Done || fx.reg.Lookup([]byte(b.Handle)) != nil {
		t.Fatalf("forgotten job: State=%v, still indexed=%v", b.State, fx.reg.Lookup([]byte(b.Handle)) != nil)
	}
	checkCounts(t, f, 2, 0, [NumPriorities]int{0, 1, 0})
	f.Forget(b) // idempotent
	checkCounts(t, f, 2, 0, [NumPriorities]int{0, 1, 0})
	if j := f.Pop(0); j != c {
		t.Fatalf("third Pop = %v, want c", j)
	}
}

func TestIgnoreRunningAndDelayed(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	r := fx.add(f, "ur", "r", High, 0, 0)
	d := fx.add(f, "ud", "d", Low, 50, 0)
	if d.State != Delayed {
		t.Fatalf("future job state %v, want Delayed", d.State)
	}
	if j := f.Pop(0); j != r {
		t.Fatalf("Pop = %v, want r", j)
	}
	f.Start(r, peer(7), 0)
	checkCounts(t, f, 2, 1, [NumPriorities]int{0, 0, 1})

	// A running job stays running (its worker reports later); it stops coalescing at once.
	if f.Ignore(r) {
		t.Fatal("Ignore of a running job reported it gone")
	}
	if r.State != Running || f.Coalesce([]byte("ur"), nil) != nil {
		t.Fatalf("ignored running job: State=%v coalesces=%v", r.State, f.Coalesce([]byte("ur"), nil) != nil)
	}
	// A delayed job is removed at once.
	if !f.Ignore(d) {
		t.Fatal("Ignore of a delayed job did not report it gone")
	}
	if d.State != Done || len(f.delayed) != 0 || fx.reg.Lookup([]byte(d.Handle)) != nil {
		t.Fatalf("ignored delayed job: State=%v heap=%d", d.State, len(f.delayed))
	}
	checkCounts(t, f, 1, 1, [NumPriorities]int{})
	if _, ok := f.NextDue(); ok {
		t.Fatal("NextDue reports a removed delayed job")
	}
	f.Finish(r)
	checkCounts(t, f, 0, 0, [NumPriorities]int{})
	if r.Worker != nil {
		t.Fatal("finished job keeps its worker")
	}
	// Ignoring a finished job reports it gone and changes nothing.
	if !f.Ignore(r) {
		t.Fatal("Ignore of a finished job did not report it gone")
	}
	checkCounts(t, f, 0, 0, [NumPriorities]int{})
}

func TestFinishQueuedPanics(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	j := fx.add(f, "", "x", Normal, 0, 0)
	defer func() {
		if recover() == nil {
			t.Fatal("Finish of a job still in a FIFO did not panic")
		}
	}()
	f.Finish(j)
}

// checkHeap verifies the delay heap's order property and stored indexes.
func checkHeap(t *testing.T, f *Function) {
	t.Helper()
	h := f.delayed
	for i, j := range h {
		if int(j.heapIndex) != i {
			t.Fatalf("heap[%d] has heapIndex %d", i, j.heapIndex)
		}
		if j.State != Delayed {
			t.Fatalf("heap[%d] state %v", i, j.State)
		}
		if i > 0 && h.less(i, (i-1)/2) {
			t.Fatalf("heap order broken at %d: (%d,%d) above (%d,%d)", i,
				h[(i-1)/2].RunAt, h[(i-1)/2].Seq, j.RunAt, j.Seq)
		}
	}
}

func TestDelayHeapOrdering(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	rng := rand.New(rand.NewSource(2))
	var jobs []*Job
	for i := 0; i < 300; i++ {
		j := fx.add(f, "", fmt.Sprint(i), Priority(rng.Intn(3)), int64(1+rng.Intn(40)), 0)
		jobs = append(jobs, j)
		checkHeap(t, f)
	}
	if due, ok := f.NextDue(); !ok || due != slices.MinFunc(jobs, func(a, b *Job) int { return int(a.RunAt - b.RunAt) }).RunAt {
		t.Fatalf("NextDue = %d %v", due, ok)
	}
	if f.HasReady(0) || f.Pop(0) != nil {
		t.Fatal("a job is ready before any is due")
	}
	// Promote one second at a time: each batch moves in (RunAt, Seq) order.
	want := slices.Clone(jobs)
	slices.SortStableFunc(want, func(a, b *Job) int {
		if a.RunAt != b.RunAt {
			return int(a.RunAt - b.RunAt)
		}
		return int(a.Seq - b.Seq)
	})
	for now := int64(0); now <= 41; now++ {
		before := make(map[*Job]bool)
		for _, j := range jobs {
			before[j] = j.State == Queued
		}
		n := f.PromoteDue(now)
		moved := 0
		for _, j := range jobs {
			if j.State == Queued && !before[j] {
				moved++
				if j.RunAt > now {
					t.Fatalf("job due at %d promoted at %d", j.RunAt, now)
				}
			}
			if j.State == Delayed && j.RunAt <= now {
				t.Fatalf("job due at %d still delayed at %d", j.RunAt, now)
			}
		}
		if n != moved {
			t.Fatalf("PromoteDue(%d) = %d, moved %d", now, n, moved)
		}
		checkHeap(t, f)
	}
	// FIFOs now hold each priority's jobs in (RunAt, Seq) order.
	for p := Priority(0); p < NumPriorities; p++ {
		var got, exp []*Job
		f.ready[p].each(func(j *Job) { got = append(got, j) })
		for _, j := range want {
			if j.Priority == p {
				exp = append(exp, j)
			}
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("priority %v FIFO not in (RunAt, Seq) order", p)
		}
	}
	if len(f.delayed) != 0 {
		t.Fatalf("%d jobs left in the heap", len(f.delayed))
	}
	var queued [NumPriorities]int
	for _, j := range jobs {
		queued[j.Priority]++
	}
	checkCounts(t, f, 300, 0, queued)
}

func TestDelayHeapEqualTimesKeepSubmissionOrder(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	for i := 0; i < 20; i++ {
		fx.add(f, "", fmt.Sprint(i), Normal, 10, 0)
	}
	got := popAll(f, 10)
	for i, d := range got {
		if d != fmt.Sprint(i) {
			t.Fatalf("equal RunAt popped out of submission order: %v", got)
		}
	}
}

func TestDelayHeapRemovalByIndex(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	rng := rand.New(rand.NewSource(3))
	live := map[*Job]bool{}
	var all []*Job
	for i := 0; i < 200; i++ {
		j := fx.add(f, "", fmt.Sprint(i), Normal, int64(1+rng.Intn(1000)), 0)
		live[j] = true
		all = append(all, j)
	}
	// Remove half, from random heap positions (root, leaves and the middle).
	for _, j := range all {
		if rng.Intn(2) == 0 {
			continue
		}
		idx := j.heapIndex
		if f.delayed[idx] != j {
			t.Fatalf("heapIndex %d of job %s points at another job", idx, j.Data)
		}
		f.Finish(j)
		delete(live, j)
		if j.heapIndex != -1 || j.State != Done {
			t.Fatalf("removed job: heapIndex=%d State=%v", j.heapIndex, j.State)
		}
		checkHeap(t, f)
		if len(f.delayed) != len(live) {
			t.Fatalf("heap has %d jobs, want %d", len(f.delayed), len(live))
		}
	}
	checkCounts(t, f, len(live), 0, [NumPriorities]int{0, len(live), 0})
	// The remaining jobs come out in (RunAt, Seq) order.
	var prev *Job
	for j := f.Pop(2000); j != nil; j = f.Pop(2000) {
		if !live[j] {
			t.Fatalf("removed job %s came back", j.Data)
		}
		if prev != nil && (prev.RunAt > j.RunAt || prev.RunAt == j.RunAt && prev.Seq > j.Seq) {
			t.Fatalf("out of order: (%d,%d) before (%d,%d)", prev.RunAt, prev.Seq, j.RunAt, j.Seq)
		}
		delete(live, j)
		prev = j
	}
	if len(live) != 0 {
		t.Fatalf("%d live jobs never popped", len(live))
	}
}

func TestPromoteDue(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	fx.add(f, "", "n-ready", Normal, 0, 100)
	fx.add(f, "", "n-105", Normal, 105, 100)
	fx.add(f, "", "h-110", High, 110, 100)
	fx.add(f, "", "n-103", Normal, 103, 100)
	checkCounts(t, f, 4, 0, [NumPriorities]int{1, 3, 0})
	if due, ok := f.NextDue(); !ok || due != 103 {
		t.Fatalf("NextDue = %d %v, want 103", due, ok)
	}
	if n := f.PromoteDue(102); n != 0 {
		t.Fatalf("PromoteDue(102) = %d", n)
	}
	if !f.HasReady(100) {
		t.Fatal("HasReady false with a ready job")
	}
	if n := f.PromoteDue(105); n != 2 {
		t.Fatalf("PromoteDue(105) = %d, want 2", n)
	}
	if due, _ := f.NextDue(); due != 110 {
		t.Fatalf("NextDue = %d, want 110", due)
	}
	// Promotion keeps the counts (delayed jobs are already counted as queued).
	checkCounts(t, f, 4, 0, [NumPriorities]int{1, 3, 0})
	// Promoted jobs go to the back of their FIFO, behind jobs already ready.
	if got := popAll(f, 105); !slices.Equal(got, []string{"n-ready", "n-103", "n-105"}) {
		t.Fatalf("order %v", got)
	}
	// Pop promotes by itself; a high job that comes due runs first.
	fx.add(f, "", "n-late", Normal, 0, 106)
	if got := popAll(f, 110); !slices.Equal(got, []string{"h-110", "n-late"}) {
		t.Fatalf("order %v", got)
	}
	if _, ok := f.NextDue(); ok {
		t.Fatal("NextDue with an empty heap")
	}
}

func TestHasReady(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	if f.HasReady(0) {
		t.Fatal("empty function has a ready job")
	}
	d := fx.add(f, "", "d", Normal, 10, 0)
	if f.HasReady(9) {
		t.Fatal("job not due yet counts as ready")
	}
	if !f.HasReady(10) {
		t.Fatal("due delayed job does not count as ready")
	}
	if d.State != Delayed {
		t.Fatal("HasReady promoted a job")
	}
	fx.add(f, "", "l", Low, 0, 0)
	if !f.HasReady(0) {
		t.Fatal("low job not ready")
	}
}

func TestCoalesceRules(t *testing.T) {
	fx := newFixture(t)
	f, g := fx.fn("f"), fx.fn("g")

	// Empty unique never coalesces.
	fx.add(f, "", "x", Normal, 0, 0)
	if j := f.Coalesce(nil, []byte("x")); j != nil {
		t.Fatal("empty unique coalesced")
	}

	// "-" coalesces on identical non-empty data within the function.
	dash := fx.add(f, "-", "payload", Normal, 0, 0)
	if j := f.Coalesce([]byte("-"), []byte("payload")); j != dash {
		t.Fatal(`"-" with the same data did not coalesce`)
	}
	if j := f.Coalesce([]byte("-"), []byte("payloaX")); j != nil {
		t.Fatal(`"-" with other data coalesced`)
	}
	if j := g.Coalesce([]byte("-"), []byte("payload")); j != nil {
		t.Fatal(`"-" coalesced across functions`)
	}
	emptyDash := fx.add(f, "-", "", Normal, 0, 0)
	if j := f.Coalesce([]byte("-"), nil); j != nil {
		t.Fatalf(`"-" with empty data coalesced onto %v`, j.Handle)
	}
	_ = emptyDash
	// A "-" job is not found by a real unique equal to its data, and vice versa.
	if j := f.Coalesce([]byte("payload"), nil); j != nil {
		t.Fatal(`unique "payload" found the "-" job`)
	}

	// Other uniques coalesce per (function, unique), whatever the data.
	u := fx.add(f, "u1", "a", Low, 0, 0)
	if j := f.Coalesce([]byte("u1"), []byte("different")); j != u {
		t.Fatal("same unique did not coalesce")
	}
	if j := g.Coalesce([]byte("u1"), []byte("a")); j != nil {
		t.Fatal("unique coalesced across functions")
	}
	gu := fx.add(g, "u1", "a", Normal, 0, 0)
	if f.Coalesce([]byte("u1"), nil) != u || g.Coalesce([]byte("u1"), nil) != gu {
		t.Fatal("same unique in two functions is not two jobs")
	}
	if j := f.Coalesce([]byte("U1"), nil); j != nil {
		t.Fatal("unique compare is not byte exact")
	}

	// A running job still coalesces; a finished one does not.
	for j := f.Pop(0); j != nil; j = f.Pop(0) {
		f.Start(j, peer(1), 0)
	}
	if f.Coalesce([]byte("u1"), nil) != u || f.Coalesce([]byte("-"), []byte("payload")) != dash {
		t.Fatal("running jobs stopped coalescing")
	}
	f.Finish(u)
	f.Finish(dash)
	if f.Coalesce([]byte("u1"), nil) != nil || f.Coalesce([]byte("-"), []byte("payload")) != nil {
		t.Fatal("finished jobs still coalesce")
	}
}

func TestCoalesceIndexSurvivesReplacement(t *testing.T) {
	// An ignored job's successor with the same unique (or same "-" data) is indexed; reaping
	// the old one later must not unindex the new one.
	fx := newFixture(t)
	f := fx.fn("f")
	old := fx.add(f, "u", "d", Normal, 0, 0)
	oldDash := fx.add(f, "-", "same", Normal, 0, 0)
	f.Ignore(old)
	f.Ignore(oldDash)
	nu := fx.add(f, "u", "d2", Normal, 0, 0)
	nuDash := fx.add(f, "-", "same", Normal, 0, 0)
	if f.Coalesce([]byte("u"), nil) != nu || f.Coalesce([]byte("-"), []byte("same")) != nuDash {
		t.Fatal("new jobs not indexed")
	}
	if j := f.Pop(0); j != old {
		t.Fatal("expected the ignored job first")
	}
	f.Forget(old)
	if j := f.Pop(0); j != oldDash {
		t.Fatal("expected the ignored dash job second")
	}
	f.Forget(oldDash)
	if f.Coalesce([]byte("u"), nil) != nu {
		t.Fatal("reaping the ignored job unindexed its successor")
	}
	if f.Coalesce([]byte("-"), []byte("same")) != nuDash {
		t.Fatal(`reaping the ignored "-" job unindexed its successor`)
	}
}

func TestCountsThroughLifecycle(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	z := [NumPriorities]int{}
	checkCounts(t, f, 0, 0, z)
	h := fx.add(f, "h", "h", High, 0, 0)
	n := fx.add(f, "n", "n", Normal, 0, 0)
	l := fx.add(f, "l", "l", Low, 0, 0)
	d := fx.add(f, "d", "d", Low, 99, 0)
	checkCounts(t, f, 4, 0, [NumPriorities]int{1, 1, 2})

	if f.Pop(0) != h {
		t.Fatal("want h")
	}
	checkCounts(t, f, 4, 0, [NumPriorities]int{0, 1, 2})
	f.Start(h, peer(1), 0)
	if h.State != Running || h.Worker != peer(1) {
		t.Fatalf("started: State=%v Worker=%v", h.State, h.Worker)
	}
	checkCounts(t, f, 4, 1, [NumPriorities]int{0, 1, 2})

	h.SetStatus(3, 10)
	f.Requeue(h, 0)
	if num, den := h.Status(); h.State != Queued || h.Worker != nil || num != 0 || den != 0 {
		t.Fatalf("requeued: State=%v Worker=%v status=%d/%d", h.State, h.Worker, num, den)
	}
	checkCounts(t, f, 4, 0, [NumPriorities]int{1, 1, 2})

	if f.Pop(0) != h {
		t.Fatal("want h again")
	}
	f.Start(h, peer(2), 0)
	if h.State != Running || h.Worker != peer(2) {
		t.Fatalf("restarted: State=%v Worker=%v", h.State, h.Worker)
	}
	f.Finish(h)
	checkCounts(t, f, 3, 0, [NumPriorities]int{0, 1, 2})
	f.Finish(h) // Done: no-op
	checkCounts(t, f, 3, 0, [NumPriorities]int{0, 1, 2})

	f.Ignore(n) // queued: stays counted until reaped
	checkCounts(t, f, 3, 0, [NumPriorities]int{0, 1, 2})
	if j := f.Pop(0); j != n {
		t.Fatal("want ignored n")
	}
	checkCounts(t, f, 3, 0, [NumPriorities]int{0, 0, 2})
	f.Forget(n)
	checkCounts(t, f, 2, 0, [NumPriorities]int{0, 0, 2})

	f.Ignore(d) // delayed: gone at once
	checkCounts(t, f, 1, 0, [NumPriorities]int{0, 0, 1})

	if f.Pop(0) != l {
		t.Fatal("want l")
	}
	f.Start(l, peer(1), 0)
	checkCounts(t, f, 1, 1, z)
	f.Ignore(l) // running: stays counted until its worker reports
	checkCounts(t, f, 1, 1, z)
	f.Finish(l)
	checkCounts(t, f, 0, 0, z)
	if len(fx.reg.Jobs()) != 0 {
		t.Fatalf("%d jobs left in the handle index", len(fx.reg.Jobs()))
	}
}

func TestRequeueGoesToBackOfFIFO(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	r1 := fx.add(f, "", "r1", Normal, 0, 0)
	fx.add(f, "", "r2", Normal, 0, 0)
	fx.add(f, "", "r3", Normal, 0, 0)
	if f.Pop(0) != r1 {
		t.Fatal("want r1")
	}
	f.Start(r1, peer(1), 0)
	f.Requeue(r1, 0)
	if got := popAll(f, 0); !slices.Equal(got, []string{"r2", "r3", "r1"}) {
		t.Fatalf("order after requeue %v", got)
	}
}

func TestRegistryIndexAndJobs(t *testing.T) {
	fx := newFixture(t)
	f, g := fx.fn("f"), fx.fn("g")
	var want []*Job
	for i := 0; i < 50; i++ {
		fn := f
		if i%3 == 0 {
			fn = g
		}
		want = append(want, fx.add(fn, "", fmt.Sprint(i), Priority(i%3), int64(i%2*5), 0))
	}
	if got := fx.reg.Jobs(); !slices.Equal(got, want) {
		t.Fatal("Jobs() not every live job in submission order")
	}
	for _, j := range want {
		if fx.reg.Lookup([]byte(j.Handle)) != j {
			t.Fatalf("Lookup(%s) failed", j.Handle)
		}
	}
	if fx.reg.Lookup([]byte("H:t:nope")) != nil {
		t.Fatal("Lookup of unknown handle")
	}
	sh := fx.reg.ShardFor([]byte("f"))
	if sh != f.Shard() {
		t.Fatal("ShardFor and Function.Shard disagree")
	}
	if sh.Get([]byte("f")) != f || sh.Ensure([]byte("f")) != f {
		t.Fatal("Get/Ensure do not return the existing function")
	}
	if sh.Get([]byte("nope")) != nil {
		t.Fatal("Get of an unknown function")
	}
	names := map[string]bool{}
	fx.reg.EachShard(func(s *Shard) {
		fs := s.Functions()
		if !slices.IsSortedFunc(fs, func(a, b *Function) int {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}) {
			t.Error("Shard.Functions not sorted")
		}
		for _, x := range fs {
			names[x.Name] = true
		}
	})
	if len(names) != 2 || !names["f"] || !names["g"] {
		t.Fatalf("functions %v", names)
	}
	sh.Delete(f)
	if sh.Get([]byte("f")) != nil {
		t.Fatal("Delete left the function")
	}
}

func TestWorkersAndListeners(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	for _, c := range []struct {
		w   peer
		new bool
	}{{1, true}, {2, true}, {1, false}, {3, true}, {4, true}} {
		if got := f.AddWorker(c.w); got != c.new {
			t.Fatalf("AddWorker(%d) = %v, want %v", c.w, got, c.new)
		}
	}
	if !slices.Equal(f.Workers, []Peer{peer(1), peer(2), peer(3), peer(4)}) {
		t.Fatalf("workers %v: a connection registered twice must be one entry", f.Workers)
	}
	// The last worker takes the removed one's place, and the wake cursor follows it.
	f.WakeCursor = 3 // at peer 4
	if !f.RemoveWorker(peer(2)) {
		t.Fatal("RemoveWorker of a registered worker reported false")
	}
	if !slices.Equal(f.Workers, []Peer{peer(1), peer(4), peer(3)}) || f.Workers[f.WakeCursor] != peer(4) {
		t.Fatalf("workers %v cursor %d, want [1 4 3] at 4", f.Workers, f.WakeCursor)
	}
	f.WakeCursor = 2 // at peer 3, the last: removing it wraps the cursor
	f.RemoveWorker(peer(3))
	if !slices.Equal(f.Workers, []Peer{peer(1), peer(4)}) || f.WakeCursor != 0 {
		t.Fatalf("workers %v cursor %d", f.Workers, f.WakeCursor)
	}
	if f.RemoveWorker(peer(9)) || f.RemoveWorker(peer(3)) {
		t.Fatal("RemoveWorker of a stranger reported true")
	}
	for i, w := range f.Workers {
		if f.workerSlot[w] != i {
			t.Fatalf("slot of %v is %d, it sits at %d", w, f.workerSlot[w], i)
		}
	}
	f.RemoveWorker(peer(1))
	f.RemoveWorker(peer(4))
	if len(f.Workers) != 0 || f.workerSlot != nil || f.WakeCursor != 0 {
		t.Fatalf("after the last worker left: %v %v %d", f.Workers, f.workerSlot, f.WakeCursor)
	}
	if !f.AddWorker(peer(1)) || len(f.Workers) != 1 {
		t.Fatal("a worker cannot register again after the set emptied")
	}

	j := &Job{}
	if j.RemoveListener(peer(1)) || j.Listeners() != nil {
		t.Fatal("a new job has listeners")
	}
	j.AddListener(peer(1))
	j.AddListener(peer(2))
	j.AddListener(peer(1))
	if !j.RemoveListener(peer(1)) || !slices.Equal(j.Listeners(), []Peer{peer(2), peer(1)}) {
		t.Fatalf("listeners %v", j.Listeners())
	}
	if j.RemoveListener(peer(5)) {
		t.Fatal("removed an absent listener")
	}
}

func TestFIFOMemoryReleasedAfterDrain(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	const n = 20 * heapKeepCap
	for i := 0; i < n; i++ {
		fx.add(f, "", "x", Normal, 0, 0)
	}
	if b := f.ready[Normal].blocks(); b < n/fifoBlockLen {
		t.Fatalf("%d blocks with %d queued", b, n)
	}
	for j := f.Pop(0); j != nil; j = f.Pop(0) {
		f.Forget(j)
	}
	if b := f.ready[Normal].blocks(); b > 2 {
		t.Fatalf("drained FIFO keeps %d blocks", b)
	}
	checkCounts(t, f, 0, 0, [NumPriorities]int{})

	// The delay heap too.
	for i := 0; i < n; i++ {
		fx.add(f, "", "x", Low, int64(10+i%100), 0)
	}
	for j := f.Pop(1000); j != nil; j = f.Pop(1000) {
		f.Forget(j)
	}
	if c := cap(f.delayed); c > heapKeepCap {
		t.Fatalf("drained delay heap keeps cap %d", c)
	}
	if b := f.ready[Low].blocks(); b > 2 {
		t.Fatalf("drained low FIFO keeps %d blocks", b)
	}
}

func TestFIFOSteadyStateDoesNotGrow(t *testing.T) {
	// A queue that never empties (push one, pop one around a small backlog) must reuse its
	// slots instead of growing the backing array forever.
	var q fifo
	jobs := make([]*Job, 16)
	for i := range jobs {
		jobs[i] = &Job{}
		q.push(jobs[i])
	}
	for i := 0; i < 1_000_000; i++ {
		q.push(&Job{})
		if q.pop() == nil {
			t.Fatal("pop of a non-empty fifo returned nil")
		}
	}
	if q.len() != 16 {
		t.Fatalf("len %d", q.len())
	}
	if b := q.blocks(); b > 3 {
		t.Fatalf("steady-state fifo holds %d blocks", b)
	}
	// Popped slots are cleared so that finished jobs can be collected.
	for b := q.head; b != nil; b = b.next {
		for i := 0; i < b.r; i++ {
			if b.jobs[i] != nil {
				t.Fatalf("popped slot %d still references a job", i)
			}
		}
	}
}

// After a large backlog drains to a handful of jobs that never quite reach zero (a busy
// function: producers keep pace with workers), the backing array must shrink too, or the
// peak's memory is held for as long as the function stays busy (gearman/gearmand#284).
func TestFIFOReleasesMemoryWhenBacklogShrinks(t *testing.T) {
	var q fifo
	const peak = 1600 * fifoBlockLen // 102,400 jobs
	for i := 0; i < peak; i++ {
		q.push(&Job{})
	}
	for q.len() > 10 {
		q.pop()
	}
	for i := 0; i < 4*peak; i++ { // steady state around 10 queued jobs
		q.push(&Job{})
		q.pop()
	}
	if q.len() != 10 {
		t.Fatalf("len %d", q.len())
	}
	if b := q.blocks(); b > 3 {
		t.Fatalf("fifo holding %d jobs keeps %d blocks (peak was %d jobs)", q.len(), b, peak)
	}
}

// ---------------------------------------------------------------------------------------
// Randomized model test.

// model mirrors what the queue should contain for one function.
type model struct {
	ready   [NumPriorities][]*Job
	delayed []*Job // unordered
	running map[*Job]bool
	popped  []*Job // popped, not yet started or forgotten
	live    map[*Job]bool
}

func newModel() *model { return &model{running: map[*Job]bool{}, live: map[*Job]bool{}} }

func (m *model) promote(now int64) {
	slices.SortFunc(m.delayed, func(a, b *Job) int {
		if a.RunAt != b.RunAt {
			return int(a.RunAt - b.RunAt)
		}
		return int(a.Seq - b.Seq)
	})
	kept := m.delayed[:0]
	for _, j := range m.delayed {
		if j.RunAt <= now {
			m.ready[j.Priority] = append(m.ready[j.Priority], j)
		} else {
			kept = append(kept, j)
		}
	}
	m.delayed = kept
}

func (m *model) place(j *Job, now int64) {
	if j.RunAt > now {
		m.delayed = append(m.delayed, j)
	} else {
		m.ready[j.Priority] = append(m.ready[j.Priority], j)
	}
}

func removeJob(s []*Job, j *Job) []*Job {
	i := slices.Index(s, j)
	if i < 0 {
		panic("job not in slice")
	}
	return slices.Delete(s, i, i+1)
}

// checkInvariants verifies the package-doc invariants of f against the model.
func checkInvariants(t *testing.T, step int, op string, reg *Registry, f *Function, m *model, all []*Job) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d (%s): %s", step, op, fmt.Sprintf(format, args...))
	}
	// Each FIFO equals the model's, in order, and holds only Queued jobs of its priority.
	for p := range f.ready {
		var got []*Job
		f.ready[p].each(func(j *Job) { got = append(got, j) })
		if !slices.Equal(got, m.ready[p]) {
			fail("FIFO %v differs from the model: %d vs %d jobs", Priority(p), len(got), len(m.ready[p]))
		}
		for _, j := range got {
			if j.State != Queued || j.Priority != Priority(p) || j.Fn != f {
				fail("FIFO %v holds a job in state %v priority %v", Priority(p), j.State, j.Priority)
			}
		}
	}
	// The heap holds exactly the delayed jobs, in heap order, with correct indexes.
	if len(f.delayed) != len(m.delayed) {
		fail("heap has %d jobs, model %d", len(f.delayed), len(m.delayed))
	}
	for i, j := range f.delayed {
		if !slices.Contains(m.delayed, j) {
			fail("heap holds a job the model does not")
		}
		if int(j.heapIndex) != i || j.State != Delayed {
			fail("heap[%d]: heapIndex %d state %v", i, j.heapIndex, j.State)
		}
		if i > 0 && f.delayed.less(i, (i-1)/2) {
			fail("heap order broken at %d", i)
		}
	}
	// Exactly one place per job; counts split Total.
	var total, running int
	var queued [NumPriorities]int
	places := map[*Job]int{}
	for p := range m.ready {
		for _, j := range m.ready[p] {
			places[j]++
		}
	}
	for _, j := range m.delayed {
		places[j]++
	}
	for j := range m.running {
		places[j]++
	}
	for _, j := range m.popped {
		places[j]++
	}
	for _, j := range all {
		live := m.live[j]
		if live {
			total++
			if places[j] != 1 {
				fail("job %s is in %d places", j.Handle, places[j])
			}
		} else if places[j] != 0 || j.State != Done {
			fail("dead job %s: %d places, state %v", j.Handle, places[j], j.State)
		}
		switch {
		case m.running[j]:
			running++
			if j.State != Running || j.Worker == nil {
				fail("running job %s: state %v worker %v", j.Handle, j.State, j.Worker)
			}
		case live && !slices.Contains(m.popped, j):
			queued[j.Priority]++
		}
		// Handle index: every live job, never a Done one.
		got := reg.Lookup([]byte(j.Handle))
		if live && got != j {
			fail("live job %s missing from the handle index", j.Handle)
		}
		if !live && got != nil {
			fail("done job %s still in the handle index", j.Handle)
		}
		// Unique index: points only at live, non-ignored jobs; and every live non-ignored
		// job with a coalescing key is found (the model never enqueues a duplicate key).
		if j.Unique != "" && !(j.Unique == "-" && len(j.Data) == 0) {
			c := f.Coalesce([]byte(j.Unique), j.Data)
			if live && !j.Ignore && c != j {
				fail("live job %s (unique %q) not found by Coalesce", j.Handle, j.Unique)
			}
			if c != nil && (c.State == Done || c.Ignore) {
				fail("Coalesce returned a dead or ignored job for %q", j.Unique)
			}
			// The registry's unique index finds a job exactly as long as it coalesces.
			if j.Unique != "-" {
				if u := reg.LookupUnique([]byte(j.Unique)); u != c {
					fail("LookupUnique(%q) = %s, Coalesce %s", j.Unique, handleOrNil(u), handleOrNil(c))
				}
			}
		}
	}
	if f.Total != total || f.Running != running || f.Queued != queued {
		fail("counts Total=%d Running=%d Queued=%v, model %d %d %v", f.Total, f.Running, f.Queued, total, running, queued)
	}
	if sum := f.Running + f.Queued[0] + f.Queued[1] + f.Queued[2] + len(m.popped); sum != f.Total {
		fail("Running+Queued+popped = %d, Total %d", sum, f.Total)
	}
}

func TestQueueModelRandomized(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5, 6, 7, 8}
	steps := 4000
	if testing.Short() {
		seeds, steps = seeds[:2], 1000
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, seed, steps) })
	}
}

func runModel(t *testing.T, seed int64, steps int) {
	rng := rand.New(rand.NewSource(seed))
	fx := newFixture(t)
	f := fx.fn("f")
	m := newModel()
	var all []*Job
	now := int64(1000)
	uniques := []string{"", "", "-", "-", "u1", "u2", "u3", "u4"}
	datas := []string{"", "a", "b", "c"}

	pick := func(set map[*Job]bool) *Job {
		if len(set) == 0 {
			return nil
		}
		keys := make([]*Job, 0, len(set))
		for j := range set {
			keys = append(keys, j)
		}
		slices.SortFunc(keys, func(a, b *Job) int { return int(a.Seq - b.Seq) })
		return keys[rng.Intn(len(keys))]
	}

	for step := 0; step < steps; step++ {
		var op string
		switch r := rng.Intn(100); {
		case r < 30: // submit, coalescing first like the engine
			op = "submit"
			u, d := uniques[rng.Intn(len(uniques))], datas[rng.Intn(len(datas))]
			var existing *Job
			switch {
			case u == "":
			case u == "-":
				if d != "" {
					for j := range m.live {
						if j.Unique == "-" && string(j.Data) == d && !j.Ignore {
							existing = j
						}
					}
				}
			default:
				for j := range m.live {
					if j.Unique == u && !j.Ignore {
						existing = j
					}
				}
			}
			if got := f.Coalesce([]byte(u), []byte(d)); got != existing {
				t.Fatalf("step %d: Coalesce(%q,%q) = %v, model %v", step, u, d, got, existing)
			}
			if existing != nil {
				break
			}
			var runAt int64
			if rng.Intn(4) == 0 {
				runAt = now + int64(rng.Intn(10))
			}
			j := fx.job(u, d, Priority(rng.Intn(3)), runAt)
			f.Enqueue(j, now)
			m.place(j, now)
			m.live[j] = true
			all = append(all, j)
		case r < 50: // pop; ignored jobs are reaped at once, as the engine does
			op = "pop"
			m.promote(now)
			var want *Job
			for p := range m.ready {
				if len(m.ready[p]) > 0 {
					want = m.ready[p][0]
					m.ready[p] = m.ready[p][1:]
					break
				}
			}
			got := f.Pop(now)
			if got != want {
				t.Fatalf("step %d: Pop = %v, model %v", step, got, want)
			}
			if got == nil {
				break
			}
			if got.Ignore {
				f.Forget(got)
				delete(m.live, got)
			} else if rng.Intn(5) == 0 {
				m.popped = append(m.popped, got) // start it later
			} else {
				f.Start(got, peer(rng.Intn(3)+1), 0)
				m.running[got] = true
			}
		case r < 55: // start a popped job
			op = "start"
			if len(m.popped) == 0 {
				break
			}
			j := m.popped[0]
			m.popped = m.popped[1:]
			f.Start(j, peer(9), 0)
			m.running[j] = true
		case r < 65: // requeue a running job (worker gone)
			op = "requeue"
			j := pick(m.running)
			if j == nil {
				break
			}
			delete(m.running, j)
			j.SetStatus(3, 7) // a WORK_STATUS seen before the worker went away
			f.Requeue(j, now)
			m.place(j, now)
			if num, den := j.Status(); num != 0 || den != 0 || j.Worker != nil {
				t.Fatalf("step %d: requeued job keeps status or worker", step)
			}
		case r < 80: // finish a running or delayed job
			op = "finish"
			var cands map[*Job]bool
			if rng.Intn(3) == 0 && len(m.delayed) > 0 {
				cands = map[*Job]bool{}
				for _, j := range m.delayed {
					cands[j] = true
				}
			} else {
				cands = m.running
			}
			j := pick(cands)
			if j == nil {
				break
			}
			if j.State == Delayed {
				m.delayed = removeJob(m.delayed, j)
			} else {
				delete(m.running, j)
			}
			f.Finish(j)
			delete(m.live, j)
		case r < 90: // ignore a live job (cancel or abandon)
			op = "ignore"
			j := pick(m.live)
			if j == nil {
				break
			}
			gone := f.Ignore(j)
			wasDelayed := slices.Contains(m.delayed, j)
			if gone != wasDelayed {
				t.Fatalf("step %d: Ignore of a job (delayed=%v) reported gone=%v", step, wasDelayed, gone)
			}
			if wasDelayed {
				m.delayed = removeJob(m.delayed, j)
				delete(m.live, j)
			}
		case r < 93: // forget a popped job without running it
			op = "forget-popped"
			if len(m.popped) == 0 {
				break
			}
			j := m.popped[0]
			m.popped = m.popped[1:]
			f.Forget(j)
			delete(m.live, j)
		case r < 97: // time passes
			op = "tick"
			now += int64(rng.Intn(3))
		default: // explicit promotion
			op = "promote"
			before := len(m.delayed)
			m.promote(now)
			if n := f.PromoteDue(now); n != before-len(m.delayed) {
				t.Fatalf("step %d: PromoteDue = %d, model %d", step, n, before-len(m.delayed))
			}
		}
		checkInvariants(t, step, op, fx.reg, f, m, all)
		// A job verified dead stays dead: stop re-checking it.
		all = slices.DeleteFunc(all, func(j *Job) bool { return !m.live[j] })
		if hr, want := f.HasReady(now), m.hasReady(now); hr != want {
			t.Fatalf("step %d: HasReady = %v, model %v", step, hr, want)
		}
	}

	// Drain everything: the function must end empty with nothing indexed.
	for len(m.popped) > 0 {
		f.Start(m.popped[0], peer(1), 0)
		m.running[m.popped[0]] = true
		m.popped = m.popped[1:]
	}
	for j := range m.running {
		f.Finish(j)
		delete(m.live, j)
	}
	m.running = map[*Job]bool{}
	for j := f.Pop(now + 100); j != nil; j = f.Pop(now + 100) {
		f.Forget(j)
		delete(m.live, j)
	}
	if f.Total != 0 || f.Running != 0 || f.Queued != [NumPriorities]int{} || len(m.live) != 0 {
		t.Fatalf("after drain: Total=%d Running=%d Queued=%v model live=%d", f.Total, f.Running, f.Queued, len(m.live))
	}
	if len(fx.reg.Jobs()) != 0 || f.shard.uniques.len() != 0 || f.byData.len() != 0 || fx.reg.NumUniques() != 0 {
		t.Fatalf("after drain: %d indexed handles, %d uniques, %d data keys, %d registry uniques",
			len(fx.reg.Jobs()), f.shard.uniques.len(), f.byData.len(), fx.reg.NumUniques())
	}
}

func (m *model) hasReady(now int64) bool {
	for p := range m.ready {
		if len(m.ready[p]) > 0 {
			return true
		}
	}
	for _, j := range m.delayed {
		if j.RunAt <= now {
			return true
		}
	}
	return false
}
