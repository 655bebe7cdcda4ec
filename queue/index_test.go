package queue

import (
	"bytes"
	"slices"
	"strconv"
	"testing"
	"unsafe"
)

func TestHandleSeq(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"H:host:1", 1, true},
		{"H:host:18446744073709551", 18446744073709551, true},
		{"x:0", 0, true},
		{"H:host:", 0, false},
		{"H:host:12a", 0, false},
		{"12", 0, false}, // no ':' before the number
		{"", 0, false},
		{"H:h:99999999999999999999", 0, false}, // 20 digits may not fit
	} {
		got, ok := HandleSeq([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("HandleSeq(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// The index must find jobs only by their exact handle, and give its chunks back as jobs go.
func TestHandleIndexChunksFollowLiveJobs(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	const n = 3 * NumShards * indexChunkLen
	jobs := make([]*Job, n)
	for i := range jobs {
		jobs[i] = fx.add(f, "", "d", Normal, 0, 0)
	}
	if peak, now := fx.reg.PeakJobs(); peak != n || now != n {
		t.Fatalf("PeakJobs = %d, %d; want %d, %d", peak, now, n, n)
	}
	last := jobs[n-1]
	for _, h := range []string{last.Handle, "H:t:0" + strconv.FormatUint(last.Seq, 10), "H:x:" + strconv.FormatUint(last.Seq, 10)} {
		got := fx.reg.Lookup([]byte(h))
		if want := h == last.Handle; (got == last) != want {
			t.Fatalf("Lookup(%q) = %v, want found=%v", h, got, want)
		}
	}
	for range jobs {
		f.Forget(f.Pop(0))
	}
	for i := range fx.reg.index {
		if x := &fx.reg.index[i]; len(x.chunks) > 1 || x.n != 0 {
			t.Fatalf("index shard %d keeps %d chunks, %d jobs after every job finished", i, len(x.chunks), x.n)
		}
	}
	if peak, now := fx.reg.PeakJobs(); peak != n || now != 0 {
		t.Fatalf("PeakJobs after the drain = %d, %d; want %d, 0", peak, now, n)
	}
	if peak, _ := fx.reg.PeakJobs(); peak != 0 {
		t.Fatalf("PeakJobs did not reset: %d", peak)
	}
}

// Millions of jobs may be queued: the struct, which every job pays before its bytes, must
// not grow past its 128 bytes (120 until QueuedAt came, for the queue-wait histograms and
// the oldest job's age), nor jobMore, which most foreground jobs pay, past its 80-byte
// size class.
func TestJobStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(Job{}); n > 128 {
		t.Fatalf("Job is %d bytes, over 128", n)
	}
	if n := unsafe.Sizeof(jobMore{}); n > 80 {
		t.Fatalf("jobMore is %d bytes, over the 80-byte size class", n)
	}
}

// Stragglers do not keep their chunks: a chunk down to a few live jobs hands them to the
// shard's sparse map and is freed, and they are still found, listed and removed there.
func TestHandleIndexStragglersGoSparse(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	const n = 4 * NumShards * indexChunkLen
	var jobs, stragglers []*Job
	for range n {
		j := fx.add(f, "", "d", Normal, 0, 0)
		f.Start(f.Pop(0), peer(1), 0)
		jobs = append(jobs, j)
	}
	for i, j := range jobs {
		if i%1000 == 0 {
			stragglers = append(stragglers, j)
		} else {
			f.Finish(j)
		}
	}
	sparse := 0
	for i := range fx.reg.index {
		x := &fx.reg.index[i]
		if len(x.chunks) > 1 {
			t.Fatalf("index shard %d keeps %d chunks for %d stragglers", i, len(x.chunks), x.n)
		}
		sparse += len(x.sparse)
	}
	if sparse == 0 {
		t.Fatal("no straggler went to a sparse map")
	}
	for _, j := range stragglers {
		if fx.reg.Lookup([]byte(j.Handle)) != j {
			t.Fatalf("straggler %s not found", j.Handle)
		}
	}
	if got := fx.reg.Jobs(); !slices.Equal(got, stragglers) {
		t.Fatalf("Jobs() lists %d jobs, want the %d stragglers", len(got), len(stragglers))
	}
	// A job filed late under a chunk already freed (its Seq was taken early) goes sparse too.
	late := fx.job("", "late", Normal, 0)
	late.Seq, late.Handle = 66, "H:t:66" // chunk 0 of shard 2, long retired; job 66 finished
	f.Enqueue(late, 0)
	if fx.reg.Lookup([]byte("H:t:66")) != late {
		t.Fatal("a job filed under a retired chunk is not found")
	}
	f.Forget(f.Pop(0))
	for _, j := range stragglers {
		f.Finish(j)
	}
	if _, now := fx.reg.PeakJobs(); now != 0 {
		t.Fatalf("%d jobs still counted", now)
	}
	for i := range fx.reg.index {
		if x := &fx.reg.index[i]; len(x.sparse) != 0 {
			t.Fatalf("index shard %d keeps %d sparse jobs", i, len(x.sparse))
		}
	}
}

// Data too large to travel with its job goes back to its pool when the job is forgotten,
// and a later job's copy is not disturbed by it.
func TestLargeDataReleasedOnForget(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	big := bytes.Repeat([]byte("x"), maxInline+1)
	a := fx.newJob("", big)
	if r := a.rare(); r == nil || r.dataBuf == nil || !bytes.Equal(a.Data, big) || cap(a.Data) != len(big) {
		t.Fatalf("large data: pooled=%v equal=%v cap=%d", r != nil && r.dataBuf != nil, bytes.Equal(a.Data, big), cap(a.Data))
	}
	f.Enqueue(a, 0)
	f.Forget(f.Pop(0))
	if a.Data != nil || a.rare().dataBuf != nil {
		t.Fatal("a forgotten job keeps its pooled data")
	}
	b := fx.newJob("", bytes.Repeat([]byte("y"), maxInline+1))
	f.Enqueue(b, 0)
	if b.Data[0] != 'y' || b.Data[len(b.Data)-1] != 'y' {
		t.Fatal("reused buffer holds stale data")
	}
	small := fx.newJob("", []byte("tiny"))
	if small.more.Load() != nil || string(small.Data) != "tiny" {
		t.Fatal("small data should travel with its job")
	}
}

// Keys whose hashes collide share a chain; each is still found by its own key and removed on
// its own.
func TestKeyIndexCollisions(t *testing.T) {
	var x keyIndex
	a, b, c := &Job{Unique: "a"}, &Job{Unique: "b"}, &Job{Unique: "c"}
	const h = 42
	for _, j := range []*Job{a, b, c} {
		x.add(h, j)
	}
	for _, j := range []*Job{a, b, c} {
		if got := x.find(h, j.Unique, nil); got != j {
			t.Fatalf("find(%q) = %v", j.Unique, got)
		}
	}
	if x.find(h, "d", nil) != nil || x.find(h+1, "a", nil) != nil {
		t.Fatal("found a key that is not there")
	}
	x.remove(h, b) // middle of the chain c -> b -> a
	if x.find(h, "b", nil) != nil || x.find(h, "a", nil) != a || x.find(h, "c", nil) != c {
		t.Fatal("removing the middle of a chain broke it")
	}
	x.remove(h, c) // head
	if x.find(h, "c", nil) != nil || x.find(h, "a", nil) != a {
		t.Fatal("removing the head of a chain broke it")
	}
	x.remove(h+1, a) // filed elsewhere: no-op
	x.remove(h, a)
	if x.len() != 0 {
		t.Fatalf("%d hashes left", x.len())
	}
	// A refused job's successor with the same key is filed in front of it and found first.
	old, fresh := &Job{Unique: "u"}, &Job{Unique: "u"}
	x.add(7, old)
	x.add(7, fresh)
	if x.find(7, "u", nil) != fresh {
		t.Fatal("the newer job with a key is not the one found")
	}
	x.remove(7, old)
	if x.find(7, "u", nil) != fresh {
		t.Fatal("removing the older job lost the newer one")
	}
}
