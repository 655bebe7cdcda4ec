package queue

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func (r *Registry) numFunctions() int {
	n := 0
	r.EachShard(func(s *Shard) { n += s.NumFunctions() })
	return n
}

// 200,000 background jobs, each to a function of its own, run to completion (or cancelled):
// once the grace period has passed, a sweep deletes every function, and the heap comes back
// to near where it started (it was 20 -> 242 MiB of RSS for good before).
func TestSweepIdleFreesFunctionsOfFinishedJobs(t *testing.T) {
	n := 200_000
	if raceEnabled || testing.Short() {
		n = 50_000
	}
	base, _ := heapAfterGC()
	reg := NewRegistry()
	var name, hb []byte
	for i := range n {
		name = strconv.AppendInt(append(name[:0], "function-"...), int64(i), 10)
		sh := reg.ShardFor(name)
		sh.Lock()
		f := sh.Ensure(name)
		seq := uint64(i + 1)
		j := NewJob(strconv.AppendUint(append(hb[:0], "H:host:"...), seq, 10), []byte("uniq"), nil, []byte("payload"))
		j.Seq, j.Background = seq, true
		if i%4 == 0 {
			j.RunAt = 5000 // scheduled, then cancelled
		}
		f.Enqueue(j, 1000)
		sh.Unlock()
	}
	full, _ := heapAfterGC()
	if got := reg.numFunctions(); got != n {
		t.Fatalf("%d functions, want %d", got, n)
	}
	// Every job ends: scheduled ones are cancelled, the others run and complete.
	reg.EachShard(func(s *Shard) {
		s.EachFunction(func(f *Function) {
			if j := f.Pop(1000); j != nil {
				f.Start(j, peer(1), 0)
				f.Finish(j)
			}
			f.EachQueued(func(j *Job) { f.Finish(j) })
		})
	})
	t0 := time.Unix(1_000_000, 0)
	const grace = 3 * time.Second
	if d := reg.SweepIdle(t0, grace); d != 0 { // stamps them
		t.Fatalf("the first sweep deleted %d functions before any grace", d)
	}
	if d := reg.SweepIdle(t0.Add(grace-time.Millisecond), grace); d != 0 {
		t.Fatalf("a sweep inside the grace period deleted %d functions", d)
	}
	if d := reg.SweepIdle(t0.Add(grace), grace); d != n {
		t.Fatalf("the sweep after the grace period deleted %d functions, want %d", d, n)
	}
	if got := reg.numFunctions(); got != 0 {
		t.Fatalf("%d functions left", got)
	}
	after, _ := heapAfterGC()
	t.Logf("%d functions: %.1f MiB with their jobs; %.2f MiB after the sweep (start %.2f MiB)",
		n, mib(full), mib(after), mib(base))
	if after > base+512<<10 {
		t.Fatalf("heap %.2f MiB after sweeping every function, started at %.2f MiB", mib(after), mib(base))
	}
	runtime.KeepAlive(reg)
}

// A function with a job (queued, scheduled or running), a worker, a queue limit or a
// declaration is never swept, however long it waits; once the last of those goes, it is swept
// a grace period later.
func TestSweepIdleKeepsFunctionsThatHoldSomething(t *testing.T) {
	fx := newFixture(t)
	const grace = time.Second
	now := time.Unix(2_000_000, 0)
	sweep := func() int { now = now.Add(grace); return fx.reg.SweepIdle(now, grace) }
	queued, delayed, running := fx.fn("queued"), fx.fn("delayed"), fx.fn("running")
	worker, limited, declared := fx.fn("worker"), fx.fn("limited"), fx.fn("declared")
	qj := fx.add(queued, "", "q", Normal, 0, 0)
	dj := fx.add(delayed, "", "d", Normal, 99, 0)
	rj := fx.add(running, "", "r", Normal, 0, 0)
	running.Start(running.Pop(0), peer(1), 0)
	worker.AddWorker(peer(7))
	limited.MaxQueue[Low] = 5
	declared.Declared = true
	unused := fx.fn("unused") // made and left with nothing
	for range 5 {
		sweep()
	}
	for _, f := range []*Function{queued, delayed, running, worker, limited, declared} {
		if fx.reg.ShardFor([]byte(f.Name)).Get([]byte(f.Name)) != f {
			t.Fatalf("%s was swept though it holds something", f.Name)
		}
	}
	if fx.reg.ShardFor([]byte("unused")).Get([]byte("unused")) == unused {
		t.Fatal("a function made and never used was not swept")
	}
	// Let go of everything.
	queued.Forget(queued.Pop(0))
	delayed.Finish(dj)
	running.Finish(rj)
	worker.RemoveWorker(peer(7))
	limited.MaxQueue = [NumPriorities]int{}
	limited.NoteSettingsChanged()
	declared.Declared = false
	declared.NoteSettingsChanged()
	_ = qj
	if d := sweep(); d != 0 { // stamps
		t.Fatalf("swept %d functions the moment they became idle", d)
	}
	if d := sweep(); d != 6 {
		t.Fatalf("swept %d functions a grace period after they became idle, want 6", d)
	}
	if n := fx.reg.numFunctions(); n != 0 {
		t.Fatalf("%d functions left", n)
	}
}

// A function that goes idle, is used again and goes idle again gets a new grace period: it
// is not swept the moment it goes idle the second time.
func TestSweepIdleRestartsGraceWhenUsedAgain(t *testing.T) {
	fx := newFixture(t)
	const grace = 10 * time.Second
	t0 := time.Unix(3_000_000, 0)
	f := fx.fn("f")
	fx.reg.SweepIdle(t0, grace) // stamped idle at t0
	j := fx.add(f, "", "x", Normal, 0, 0)
	fx.reg.SweepIdle(t0.Add(5*time.Second), grace) // busy: leaves the idle list
	f.Forget(f.Pop(0))
	_ = j
	if d := fx.reg.SweepIdle(t0.Add(grace), grace); d != 0 {
		t.Fatal("swept a function that went idle again only now")
	}
	// Idle again, busy again and idle again between two sweeps, while listed: the stamp is
	// cleared all the same.
	fx.add(f, "", "y", Normal, 0, 0)
	f.Forget(f.Pop(0))
	if d := fx.reg.SweepIdle(t0.Add(2*grace), grace); d != 0 {
		t.Fatal("swept a function whose grace period restarted")
	}
	if d := fx.reg.SweepIdle(t0.Add(3*grace), grace); d != 1 {
		t.Fatalf("swept %d functions, want 1", d)
	}
}

// Sweeping deletes the idle function record and no other: not one made since under the
// same name after the engine deleted the first, not one whose name differs only in case.
// The swept function's wake timer is stopped.
func TestSweepIdleDeletesOnlyThatFunction(t *testing.T) {
	fx := newFixture(t)
	const grace = time.Second
	t0 := time.Unix(4_000_000, 0)
	foo, Foo := fx.fn("foo"), fx.fn("Foo")
	Foo.Declared = true
	fired := make(chan struct{}, 1)
	foo.WakeTimer = time.AfterFunc(time.Hour, func() { fired <- struct{}{} })
	fx.reg.SweepIdle(t0, grace)
	sh := foo.Shard()
	sh.Lock()
	sh.Delete(foo) // the engine's `drop function`
	again := sh.Ensure([]byte("foo"))
	again.AddWorker(peer(1))
	sh.Unlock()
	if d := fx.reg.SweepIdle(t0.Add(grace), grace); d != 0 {
		t.Fatalf("deleted %d functions: the new foo has a worker, Foo is declared", d)
	}
	if sh.Get([]byte("foo")) != again || Foo.Shard().Get([]byte("Foo")) != Foo {
		t.Fatal("a sweep deleted the wrong function")
	}

	bar := fx.fn("bar")
	bar.WakeTimer = time.AfterFunc(time.Hour, func() { fired <- struct{}{} })
	fx.reg.SweepIdle(t0.Add(2*grace), grace)
	if d := fx.reg.SweepIdle(t0.Add(3*grace), grace); d != 1 {
		t.Fatalf("deleted %d functions, want bar", d)
	}
	if bar.WakeTimer.Stop() {
		t.Fatal("the swept function's wake timer was still running")
	}
	foo.WakeTimer.Stop()
}

func ExampleRegistry_SweepIdle() {
	reg := NewRegistry()
	sh := reg.ShardFor([]byte("resize"))
	sh.Lock()
	sh.Ensure([]byte("resize")) // e.g. a submit refused later on: nothing stays in it
	sh.Unlock()
	t0 := time.Now()
	fmt.Println(reg.SweepIdle(t0, 5*time.Second))                    // first seen idle
	fmt.Println(reg.SweepIdle(t0.Add(5*time.Second), 5*time.Second)) // grace over
	// Output:
	// 0
	// 1
}
