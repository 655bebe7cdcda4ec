package queue

import (
	"fmt"
	"strconv"
	"testing"
)

// cycleBench is one function with a steady backlog and a ring of preallocated jobs, so that a
// benchmark op measures the queue operations themselves: no Job, handle or data is built per
// op. Ring slots are reused only after their job has finished (ring > backlog).
type cycleBench struct {
	reg  *Registry
	sh   *Shard
	f    *Function
	ring []Job
	next int
	now  int64
}

const (
	benchBacklog = 64  // jobs waiting in the FIFOs at every op
	benchRing    = 256 // preallocated jobs
)

func newCycleBench(unique bool) *cycleBench {
	c := &cycleBench{reg: NewRegistry(), ring: make([]Job, benchRing), now: 1000}
	c.sh = c.reg.ShardFor([]byte("bench"))
	c.f = c.sh.Ensure([]byte("bench"))
	for i := range c.ring {
		j := &c.ring[i]
		j.Handle = fmt.Sprintf("H:bench:%d", i)
		j.Seq = uint64(i + 1)
		j.Data = []byte("payload")
		j.Priority = Priority(i % int(NumPriorities))
		j.State = Done
		if unique {
			j.Unique = fmt.Sprintf("%036d", i) // UUID-sized, as libgearman clients send
		}
	}
	for range benchBacklog {
		c.enqueue()
	}
	return c
}

func (c *cycleBench) enqueue() {
	j := &c.ring[c.next]
	c.next = (c.next + 1) % len(c.ring)
	if j.State != Done {
		panic("ring slot reused while its job is live")
	}
	c.f.Enqueue(j, c.now)
}

// cycle is one job's life in steady state: a submit, a grab (Pop+Start) and a completion,
// under the shard lock as the engine does it.
func (c *cycleBench) cycle() {
	c.sh.Lock()
	c.enqueue()
	j := c.f.Pop(c.now)
	c.f.Start(j, peer(1), 0)
	c.f.Finish(j)
	c.sh.Unlock()
}

// BenchmarkCycle: Enqueue + Pop + Start + Finish of one job on one function with a backlog of
// benchBacklog jobs. "unique" also maintains the coalescing index.
func BenchmarkCycle(b *testing.B) {
	for _, unique := range []bool{false, true} {
		name := "plain"
		if unique {
			name = "unique"
		}
		b.Run(name, func(b *testing.B) {
			c := newCycleBench(unique)
			for range 4 * benchRing { // warm up: maps and FIFO arrays reach their steady size
				c.cycle()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.cycle()
			}
		})
	}
}

// The queue operations allocate nothing in steady state: the FIFO reuses its backing array,
// the handle and unique indexes reuse their map slots, and the job is the caller's.
func TestCycleAllocatesNothing(t *testing.T) {
	for _, unique := range []bool{false, true} {
		c := newCycleBench(unique)
		for range 4 * benchRing {
			c.cycle()
		}
		if n := testing.AllocsPerRun(10000, c.cycle); n != 0 {
			t.Errorf("unique=%v: Enqueue+Pop+Start+Finish allocates %.2f times per job", unique, n)
		}
	}
}

// promoteBench keeps depth scheduled jobs in the delay heap, due one per second.
type promoteBench struct {
	*cycleBench
	depth int64
	seq   uint64
}

func newPromoteBench() *promoteBench {
	p := &promoteBench{cycleBench: &cycleBench{reg: NewRegistry(), now: 1000}, depth: 1024}
	p.ring = make([]Job, 2*p.depth)
	p.sh = p.reg.ShardFor([]byte("sched"))
	p.f = p.sh.Ensure([]byte("sched"))
	for i := range p.ring {
		j := &p.ring[i]
		j.Handle = fmt.Sprintf("H:sched:%d", i)
		j.Seq = uint64(i + 1)
		j.Data = []byte("payload")
		j.State = Done
	}
	for i := range p.depth {
		p.schedule(p.now + 1 + i)
	}
	return p
}

// schedule adds a job due at runAt.
func (p *promoteBench) schedule(runAt int64) {
	j := &p.ring[p.next]
	p.next = (p.next + 1) % len(p.ring)
	if j.State != Done {
		panic("ring slot reused while its job is live")
	}
	p.seq++
	j.Seq = p.seq
	j.RunAt = runAt
	p.f.Enqueue(j, p.now)
}

// step schedules one job, lets a second pass and promotes the one job that came due, then
// runs it to completion so that the FIFO stays empty.
func (p *promoteBench) step() {
	p.sh.Lock()
	p.schedule(p.now + p.depth + 1) // behind every job already scheduled
	p.now++
	if n := p.f.PromoteDue(p.now); n != 1 {
		panic(fmt.Sprintf("promoted %d jobs, want 1", n))
	}
	j := p.f.Pop(p.now)
	p.f.Start(j, peer(1), 0)
	p.f.Finish(j)
	p.sh.Unlock()
}

// BenchmarkPromoteDue: with 1024 jobs in the delay heap, one push (Enqueue of a scheduled
// job) and one PromoteDue that moves the earliest to its FIFO, then its Pop/Start/Finish.
func BenchmarkPromoteDue(b *testing.B) {
	p := newPromoteBench()
	for range 4 * len(p.ring) {
		p.step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p.step()
	}
}

func TestPromoteDueAllocatesNothing(t *testing.T) {
	p := newPromoteBench()
	for range 4 * len(p.ring) {
		p.step()
	}
	if n := testing.AllocsPerRun(10000, p.step); n != 0 {
		t.Errorf("scheduling and promoting a job allocates %.2f times", n)
	}
}

// BenchmarkSubmit: the queue's part of one SUBMIT_JOB_BG as the engine does it — shard,
// Ensure, Coalesce, NewJob, Enqueue — with no unique id or a fresh UUID-sized one per job.
// Every 16384 jobs the backlog is drained outside the timer.
func BenchmarkSubmit(b *testing.B) {
	for _, unique := range []bool{false, true} {
		name := "plain"
		if unique {
			name = "unique"
		}
		b.Run(name, func(b *testing.B) {
			reg := NewRegistry()
			fn := []byte("bench")
			data := []byte("a payload of some 32 bytes......")
			var hbuf, ubuf [64]byte
			var seq uint64
			b.ReportAllocs()
			for range b.N {
				seq++
				var u []byte
				if unique {
					u = strconv.AppendUint(append(ubuf[:0], "00000000-0000-0000-0000-"...), seq, 10)
				}
				sh := reg.ShardFor(fn)
				sh.Lock()
				f := sh.Ensure(fn)
				if f.Coalesce(u, data) == nil {
					j := NewJob(strconv.AppendUint(append(hbuf[:0], "H:bench:"...), seq, 10), u, nil, data)
					j.Seq, j.Priority, j.Background = seq, Normal, true
					f.Enqueue(j, 0)
				}
				if seq%(1<<14) == 0 {
					b.StopTimer()
					for j := f.Pop(0); j != nil; j = f.Pop(0) {
						f.Forget(j)
					}
					b.StartTimer()
				}
				sh.Unlock()
			}
		})
	}
}
