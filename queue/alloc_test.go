package queue

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// Each bucket must be exactly one runtime size class, and together they must be every class
// from the smallest to the largest: then a job rounds up by at most one class step.
func TestJobBucketsAreSizeClasses(t *testing.T) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var classes []int
	for _, c := range m.BySize {
		if c.Size > uint32(jobSize) && c.Size <= 1408 {
			classes = append(classes, int(c.Size))
		}
	}
	if len(classes) != len(jobBuckets) {
		t.Fatalf("%d size classes above %d up to 1408 bytes, %d buckets", len(classes), jobSize, len(jobBuckets))
	}
	for i, b := range jobBuckets {
		if got := int(jobSize) + b.capacity; got != classes[i] {
			t.Errorf("bucket %d is %d bytes, size class %d is %d", i, got, i, classes[i])
		}
		j, buf := b.alloc()
		if len(buf) != b.capacity || uintptr(unsafe.Pointer(&buf[0])) != uintptr(unsafe.Pointer(j))+jobSize {
			t.Errorf("bucket %d: its bytes do not follow its job", i)
		}
	}
	if jobBuckets[len(jobBuckets)-1].capacity != maxInline {
		t.Fatal("maxInline is not the biggest bucket")
	}
	for n, b := range bucketFor {
		if jobBuckets[b].capacity < n || b > 0 && jobBuckets[b-1].capacity >= n {
			t.Fatalf("%d bytes go to bucket %d (capacity %d), not the smallest fitting one", n, b, jobBuckets[b].capacity)
		}
	}
}

// NewJob's fields are private copies, each capped so that nothing reaches a neighbour, at
// every size up to the largest bucket and beyond.
func TestNewJobCopies(t *testing.T) {
	for _, size := range []int{0, 1, 7, 8, 9, 100, maxInline - 200, maxInline - 100, maxInline - 99, maxInline, maxInline + 1, 70000} {
		h := []byte("H:host:42")
		u := []byte("unique-id")
		r := []byte("reducer")
		d := bytes.Repeat([]byte("d"), size)
		j := NewJob(h, u, r, d)
		want := [4]string{string(h), string(u), string(r), string(d)}
		for i := range h {
			h[i] = 'X'
		}
		copy(u, "XXXX")
		copy(r, "XXXX")
		for i := range d {
			d[i] = 'X'
		}
		if got := [4]string{j.Handle, j.Unique, j.Reducer(), string(j.Data)}; got != want {
			t.Fatalf("data %d bytes: fields %q, want %q (not private copies?)", size, got, want)
		}
		if cap(j.Data) != len(j.Data) {
			t.Fatalf("data %d bytes: cap %d, must be capped at its length", size, cap(j.Data))
		}
		if j.Data == nil {
			t.Fatal("empty data must be non-nil (nil means released)")
		}
		_ = append(j.Data, 'Z')
		if j.Reducer() != "reducer" || (size > 0 && j.Data[len(j.Data)-1] != 'd') {
			t.Fatal("append to Data reached another field")
		}
		pooled := j.rare() != nil && j.rare().dataBuf != nil
		if want := size+len(h)+len(u)+len(r) > maxInline; pooled != want {
			t.Fatalf("data %d bytes: pooled=%v, want %v", size, pooled, want)
		}
	}
	j := NewJob([]byte("H:x:1"), nil, nil, nil)
	if j.Unique != "" || j.Reducer() != "" || j.more.Load() != nil || len(j.Data) != 0 {
		t.Fatalf("empty fields: %+v", j)
	}
	// A handle too long for any bucket (an absurd --job-handle-prefix) still works.
	long := strings.Repeat("h", 2*maxInline)
	if j := NewJob([]byte(long), []byte("u"), nil, []byte("d")); j.Handle != long || j.Unique != "u" || string(j.Data) != "d" {
		t.Fatal("a job with a huge handle lost its fields")
	}
}

// A small background job is one allocation: NewJob plus Enqueue, the indexes included, in
// steady state (a backlog that stays put, so no FIFO block or map grows).
func TestSubmitAllocatesOnce(t *testing.T) {
	for _, unique := range []bool{false, true} {
		reg := NewRegistry()
		sh := reg.ShardFor([]byte("f"))
		f := sh.Ensure([]byte("f"))
		var seq uint64
		var hb, ub [64]byte
		data := []byte("a payload of some 32 bytes......")
		submit := func() {
			seq++
			var u []byte
			if unique {
				u = appendNum(append(ub[:0], "00000000-0000-0000-0000-"...), seq)
			}
			j := NewJob(appendNum(append(hb[:0], "H:host:"...), seq), u, nil, data)
			j.Seq, j.Background = seq, true
			f.Enqueue(j, 0)
			f.Forget(f.Pop(0)) // one in, one out: the backlog stays at 64
		}
		sh.Lock()
		for range 64 {
			seq++
			j := NewJob(appendNum(append(hb[:0], "H:host:"...), seq), nil, nil, data)
			j.Seq = seq
			f.Enqueue(j, 0)
		}
		for range 1 << 16 { // warm up: each index shard's chunk and map reach steady state
			submit()
		}
		n := testing.AllocsPerRun(10000, submit)
		sh.Unlock()
		if n != 1 {
			t.Errorf("unique=%v: a small background job costs %.2f allocations, want 1", unique, n)
		}
	}
}

func appendNum(b []byte, n uint64) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}
