package queue

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// heapAfterGC returns the bytes of live heap objects once the collector has run.
func heapAfterGC() (alloc, inuse uint64) {
	runtime.GC()
	runtime.GC() // the first cycle may leave finalizer-held or swept-late objects
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.HeapInuse
}

// rssMiB reads the process's resident set size, for the test log.
func rssMiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, _ := strconv.Atoi(f[1])
			return float64(kib) / 1024
		}
	}
	return 0
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// A long-lived job must not keep finished neighbours' memory alive. n jobs with UUID-sized
// unique ids and 32-byte payloads are queued in one function; all but every 1000th are then
// finished (the survivors stay running, or stay scheduled), and the engine's periodic sweep
// runs (it shrinks the drained indexes; see shrinkMap). The live heap left must be what
// the survivors need — their jobs, and their entries in the handle and unique indexes, whose
// maps are sized for up to four times what they hold (see shrinkMap): under three times the
// jobs' own bytes — plus a fixed allowance. Once the survivors finish too, the emptied
// registry must keep only a small fixed amount (each index shard's newest chunk, small maps),
// not a share of the million jobs it once held.
//
// Measured with the chunk arena this replaced (1M jobs, 1000 survivors): 47.6 MB of live
// heap with the survivors running, 56.8 MB with them scheduled, against 0.3 MB of jobs — the
// arena chunks, handle-index chunks, unique map and delay-heap array they kept alive.
func TestMemoryFollowsLiveJobs(t *testing.T) {
	n := 1_000_000
	if raceEnabled || testing.Short() {
		n = 200_000
	}
	const every = 1000
	if os.Getenv("QUEUE_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 64
	}
	for _, mode := range []string{"running", "delayed"} {
		t.Run(mode, func(t *testing.T) {
			base, _ := heapAfterGC()
			reg := NewRegistry()
			sh := reg.ShardFor([]byte("f"))
			sh.Lock()
			f := sh.Ensure([]byte("f"))
			var hb, ub [64]byte
			data := []byte("a payload of some 32 bytes......")
			jobs := make([]*Job, n)
			var jobBytes uint64 // what the jobs themselves take: struct and bytes
			for i := range jobs {
				seq := uint64(i + 1)
				h := strconv.AppendUint(append(hb[:0], "H:myhost.example:"...), seq, 10)
				u := strconv.AppendUint(append(ub[:0], "00000000-0000-0000-0000-"...), seq, 10)
				j := NewJob(h, u, nil, data)
				j.Seq, j.Priority, j.Background = seq, Normal, true
				if mode == "delayed" {
					j.RunAt = 2000
				}
				f.Enqueue(j, 1000)
				jobs[i] = j
				if i%every == 0 {
					jobBytes += uint64(jobSize) + uint64(len(h)+len(u)+len(data))
				}
			}
			if mode == "running" {
				for j := f.Pop(1000); j != nil; j = f.Pop(1000) {
					f.Start(j, peer(1), 0)
				}
			}
			full, fullInuse := heapAfterGC()
			keep := make([]*Job, 0, n/every)
			for i, j := range jobs {
				if i%every == 0 {
					keep = append(keep, j)
				} else {
					f.Finish(j)
				}
			}
			clear(jobs)
			jobs = nil
			sh.Unlock()
			reg.SweepIdle(time.Now(), time.Hour) // the engine's ticker: shrinks the drained indexes
			after, afterInuse := heapAfterGC()
			if p := os.Getenv("QUEUE_HEAP_PROFILE"); p != "" {
				fh, _ := os.Create(p + "." + mode)
				pprof.WriteHeapProfile(fh)
				fh.Close()
			}
			rss := rssMiB()

			// The survivors are intact and still indexed (LookupUnique takes the shard locks
			// itself); then they finish too.
			for _, j := range keep {
				if reg.Lookup([]byte(j.Handle)) != j || reg.LookupUnique([]byte(j.Unique)) != j || string(j.Data) != string(data) {
					t.Fatalf("surviving job %s lost from an index or corrupted", j.Handle)
				}
			}
			sh.Lock()
			kept := len(keep)
			for _, j := range keep {
				f.Finish(j)
			}
			sh.Unlock()
			clear(keep)
			reg.SweepIdle(time.Now(), time.Hour)
			empty, _ := heapAfterGC()
			if p := os.Getenv("QUEUE_HEAP_PROFILE"); p != "" {
				fh, _ := os.Create(p + "." + mode + ".empty")
				pprof.WriteHeapProfile(fh)
				fh.Close()
			}

			left := float64(after) - float64(base)
			fixed := float64(empty) - float64(base)
			t.Logf("%d jobs: %.1f MiB live heap, %.1f MiB in use; %d kept: %.0f KiB live (their jobs: %d KiB), %.1f MiB in use, RSS %.1f MiB; "+
				"emptied registry: %.0f KiB",
				n, mib(full-base), mib(fullInuse), kept, left/1024, jobBytes/1024, mib(afterInuse), rss, fixed/1024)
			const allowance = 256 << 10
			if left > 3*float64(jobBytes)+allowance {
				t.Errorf("%d surviving jobs keep %.0f KiB of heap; their jobs take %d KiB (allowed: 3x that + %d KiB)",
					kept, left/1024, jobBytes/1024, allowance>>10)
			}
			if fixed > 320<<10 {
				t.Errorf("the emptied registry keeps %.0f KiB after holding %d jobs", fixed/1024, n)
			}
			runtime.KeepAlive(reg)
		})
	}
}

// Scheduled jobs left over from a large batch do not keep the batch's heap array.
func TestDelayHeapShrinksWithItsJobs(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	const n = 64 * heapKeepCap
	var jobs []*Job
	for i := range n {
		jobs = append(jobs, fx.add(f, "", "x", Normal, int64(100+i), 0))
	}
	for _, j := range jobs[10:] {
		f.Finish(j)
	}
	if c := cap(f.delayed); c > heapKeepCap {
		t.Fatalf("a heap of %d jobs keeps an array of %d (it held %d)", len(f.delayed), c, n)
	}
	if err := f.CheckHeap(); err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs[:10] {
		if got := f.Pop(int64(100 + i)); got != j {
			t.Fatalf("pop %d after shrinking: %v", i, got)
		}
	}
}

// A shard's unique index of a drained backlog is remade smaller by the sweep, not by the
// removals: a batch that fills and drains between two sweeps keeps its map.
func TestUniqueIndexesShrinkAtSweep(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	x := &f.shard.uniques
	fill := func(n int) {
		for i := range n {
			fx.add(f, fmt.Sprint("u", i), "x", Normal, 0, 0)
		}
	}
	drain := func(keep int) {
		for f.Total > keep {
			f.Forget(f.Pop(0))
		}
	}
	fill(4096)
	drain(0)
	fill(4096) // refilled before any sweep: same map, no regrowth
	if x.peak != 4096 {
		t.Fatalf("peak %d: the map was remade on removal", x.peak)
	}
	fx.reg.SweepIdle(time.Now(), time.Hour) // full again: nothing to shrink
	if x.peak != 4096 {
		t.Fatalf("a sweep of a full index: peak %d", x.peak)
	}
	drain(10)
	fx.reg.SweepIdle(time.Now(), time.Hour)
	if x.peak != 10 || len(x.m) != 10 {
		t.Fatalf("after the backlog drained to 10 and a sweep: peak %d, %d entries", x.peak, len(x.m))
	}
	for i := range 10 {
		if j := fx.reg.LookupUnique([]byte(fmt.Sprint("u", 4086+i))); j == nil || f.Coalesce([]byte(j.Unique), nil) != j {
			t.Fatalf("job u%d lost by the shrink", 4086+i)
		}
	}
}
