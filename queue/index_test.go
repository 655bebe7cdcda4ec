package queue

import (
	"bytes"
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

func TestArenaCopiesAreIndependent(t *testing.T) {
	var a arena
	x := a.copy([]byte("abc"))
	y := a.copy([]byte("def"))
	if string(x) != "abc" || string(y) != "def" || cap(x) != 3 {
		t.Fatalf("copies %q %q cap %d", x, y, cap(x))
	}
	_ = append(x, 'Z') // capped: must reallocate, not overwrite y
	if string(y) != "def" {
		t.Fatalf("append to one copy changed the next: %q", y)
	}
	if e := a.copy(nil); e == nil || len(e) != 0 {
		t.Fatalf("empty copy = %#v, want non-nil empty", e)
	}
	big := make([]byte, arenaMaxItem+1)
	if c := a.copy(big); &c[0] == &big[0] || len(c) != len(big) {
		t.Fatal("large copy shares the source")
	}
	// Filling past a chunk starts a new one without touching earlier copies.
	src := make([]byte, 1000)
	var kept [][]byte
	for i := 0; i < 3*arenaChunk/len(src); i++ {
		for k := range src {
			src[k] = byte(i)
		}
		kept = append(kept, a.copy(src))
	}
	for i, c := range kept {
		for _, b := range c {
			if b != byte(i) {
				t.Fatalf("copy %d was overwritten", i)
			}
		}
	}
}

// Millions of jobs may be queued: the struct must stay within the 128-byte size class.
func TestJobStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(Job{}); n > 128 {
		t.Fatalf("Job is %d bytes, over the 128-byte size class", n)
	}
}

// Data too large for the arena goes back to its pool when the job is forgotten, and a later
// job's copy is not disturbed by it.
func TestLargeDataReleasedOnForget(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	big := bytes.Repeat([]byte("x"), arenaMaxItem+1)
	sh := f.Shard()
	a := fx.job("", "", Normal, 0)
	sh.SetData(a, big)
	if a.dataBuf == nil || !bytes.Equal(a.Data, big) || cap(a.Data) != len(big) {
		t.Fatalf("large data: pooled=%v equal=%v cap=%d", a.dataBuf != nil, bytes.Equal(a.Data, big), cap(a.Data))
	}
	f.Enqueue(a, 0)
	f.Forget(f.Pop(0))
	if a.Data != nil || a.dataBuf != nil {
		t.Fatal("a forgotten job keeps its pooled data")
	}
	b := fx.job("", "", Normal, 0)
	sh.SetData(b, bytes.Repeat([]byte("y"), arenaMaxItem+1))
	f.Enqueue(b, 0)
	if b.Data[0] != 'y' || b.Data[len(b.Data)-1] != 'y' {
		t.Fatal("reused buffer holds stale data")
	}
	small := fx.job("", "", Normal, 0)
	sh.SetData(small, []byte("tiny"))
	if small.dataBuf != nil || string(small.Data) != "tiny" {
		t.Fatal("small data should come from the arena")
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
		if got := x.find(h, j.Unique); got != j {
			t.Fatalf("find(%q) = %v", j.Unique, got)
		}
	}
	if x.find(h, "d") != nil || x.find(h+1, "a") != nil {
		t.Fatal("found a key that is not there")
	}
	x.remove(h, b) // middle of the chain c -> b -> a
	if x.find(h, "b") != nil || x.find(h, "a") != a || x.find(h, "c") != c {
		t.Fatal("removing the middle of a chain broke it")
	}
	x.remove(h, c) // head
	if x.find(h, "c") != nil || x.find(h, "a") != a {
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
	if x.find(7, "u") != fresh {
		t.Fatal("the newer job with a key is not the one found")
	}
	x.remove(7, old)
	if x.find(7, "u") != fresh {
		t.Fatal("removing the older job lost the newer one")
	}
}
