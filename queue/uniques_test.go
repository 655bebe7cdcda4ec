package queue

import (
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
)

// LookupUnique ignores the function and finds the newest live, non-ignored job with the id;
// "" and "-" never match.
func TestLookupUniqueAcrossFunctions(t *testing.T) {
	fx := newFixture(t)
	f, g, h := fx.fn("f"), fx.fn("g"), fx.fn("h")
	if fx.reg.LookupUnique([]byte("u")) != nil {
		t.Fatal("found a job in an empty registry")
	}
	a := fx.add(f, "u", "1", Normal, 0, 0)
	b := fx.add(g, "u", "2", Normal, 0, 0)
	c := fx.add(h, "u", "3", Normal, 50, 0) // scheduled
	fx.add(f, "", "4", Normal, 0, 0)
	fx.add(g, "-", "5", Normal, 0, 0)
	for _, k := range []string{"", "-", "v", "uu", "U"} {
		if j := fx.reg.LookupUnique([]byte(k)); j != nil {
			t.Fatalf("LookupUnique(%q) = %s", k, j.Handle)
		}
	}
	if j := fx.reg.LookupUnique([]byte("u")); j != c {
		t.Fatalf("LookupUnique = %s, want the newest, %s", handleOrNil(j), c.Handle)
	}
	g.Ignore(b) // the middle of the chain c -> b -> a
	if j := fx.reg.LookupUnique([]byte("u")); j != c {
		t.Fatalf("after ignoring the middle: %s", handleOrNil(j))
	}
	h.Finish(c) // the head
	if j := fx.reg.LookupUnique([]byte("u")); j != a {
		t.Fatalf("after finishing the newest: %s, want %s", handleOrNil(j), a.Handle)
	}
	g.Forget(g.Pop(0)) // b, ignored already: its second unindex is a no-op
	if j := fx.reg.LookupUnique([]byte("u")); j != a {
		t.Fatalf("after reaping the ignored one: %s", handleOrNil(j))
	}
	d := fx.add(g, "u", "6", Normal, 0, 0) // a new one goes in front again
	if j := fx.reg.LookupUnique([]byte("u")); j != d {
		t.Fatalf("after a new submission: %s", handleOrNil(j))
	}
	f.Start(f.Pop(0), peer(1), 0) // running jobs stay findable
	if j := fx.reg.LookupUnique([]byte("u")); j != d {
		t.Fatalf("after starting the oldest: %s", handleOrNil(j))
	}
	f.Finish(a)
	for j := g.Pop(0); j != nil; j = g.Pop(0) {
		g.Forget(j)
	}
	if j := fx.reg.LookupUnique([]byte("u")); j != nil || fx.reg.NumUniques() != 0 {
		t.Fatalf("every job gone, yet LookupUnique = %s, %d filed", handleOrNil(j), fx.reg.NumUniques())
	}
}

// A randomized run over several functions sharing a few unique ids: LookupUnique always
// returns the newest live, non-ignored job with the id, as a plain list says.
func TestUniqueIndexRandomized(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewSource(seed))
		fx := newFixture(t)
		var fns []*Function
		for i := range 12 {
			fns = append(fns, fx.fn(fmt.Sprint("fn", i)))
		}
		ids := []string{"a", "b", "c", "-", ""}
		var live []*Job // every live job, in submission order
		for step := range 3000 {
			switch r := rng.Intn(10); {
			case r < 5:
				f := fns[rng.Intn(len(fns))]
				u := ids[rng.Intn(len(ids))]
				if f.Coalesce([]byte(u), []byte("d")) != nil {
					break
				}
				live = append(live, fx.add(f, u, "d", Normal, int64(rng.Intn(2)*10), 0))
			case r < 8 && len(live) > 0: // cancel a queued job, finish a delayed or running one
				i := rng.Intn(len(live))
				j := live[i]
				if j.State == Queued {
					j.Fn.Ignore(j) // reaped when a pop reaches it
					break
				}
				j.Fn.Finish(j)
				live = slices.Delete(live, i, i+1)
			default: // reap ignored jobs at the heads of the FIFOs, run the others
				f := fns[rng.Intn(len(fns))]
				if j := f.Pop(0); j != nil {
					if j.Ignore {
						f.Forget(j)
						live = slices.DeleteFunc(live, func(x *Job) bool { return x == j })
					} else {
						f.Start(j, peer(2), 0)
					}
				}
			}
			for _, u := range []string{"a", "b", "c"} {
				var want *Job
				for _, j := range live {
					if j.Unique == u && !j.Ignore {
						want = j // the last one in submission order: the newest
					}
				}
				if got := fx.reg.LookupUnique([]byte(u)); got != want {
					t.Fatalf("seed %d step %d: LookupUnique(%q) = %s, want %s", seed, step, u, handleOrNil(got), handleOrNil(want))
				}
			}
		}
	}
}

// Functions in different shards file jobs under the same unique id at once, while lookups
// run: the chain across shards is guarded by the index's own locks (go test -race).
func TestUniqueIndexConcurrent(t *testing.T) {
	reg := NewRegistry()
	const goroutines, rounds = 4, 2000
	var seq sync.Mutex
	next := uint64(0)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []byte(fmt.Sprint("fn", g))
			sh := reg.ShardFor(name)
			for i := range rounds {
				seq.Lock()
				next++
				s := next
				seq.Unlock()
				sh.Lock()
				f := sh.Ensure(name)
				j := NewJob([]byte(fmt.Sprint("H:c:", s)), []byte(fmt.Sprint("shared", i%3)), nil, []byte("d"))
				j.Seq = s
				f.Enqueue(j, 0)
				if i%2 == 0 {
					j.AddListener(peer(g)) // touches j's jobMore under the shard lock
				}
				if i%3 != 0 {
					f.Forget(f.Pop(0))
				}
				sh.Unlock()
				if u := reg.LookupUnique([]byte("shared1")); u != nil && u.Unique != "shared1" {
					t.Errorf("LookupUnique returned a job with unique %q", u.Unique)
				}
			}
			sh.Lock()
			f := sh.Get(name)
			for j := f.Pop(0); j != nil; j = f.Pop(0) {
				f.Forget(j)
			}
			sh.Unlock()
		}()
	}
	wg.Wait()
	if n := reg.NumUniques(); n != 0 {
		t.Fatalf("%d jobs still filed by unique after all finished", n)
	}
}
