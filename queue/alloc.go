package queue

import (
	"unsafe"

	"github.com/valyala/bytebufferpool"
)

// A job and its small immutable bytes are one allocation, shared with nothing else:
//
//	jobWith[B]  +-------------+-----------------------------------------------+
//	            | Job         | b: handle | unique | reducer | data |  unused  |
//	            +-------------+-----------------------------------------------+
//	              Handle, Unique and the reducer are strings viewing b; Data is
//	              a slice of b capped at its own length.
//
// B is a byte array sized so that the whole object is exactly one of the runtime's size
// classes (jobBuckets), and NewJob picks the smallest bucket that fits, so a job wastes at
// most one size-class step (16 bytes up to 256, 12.5% beyond). A job then costs one
// allocation, and nothing it holds keeps anything else alive: when it finishes, its memory
// is free at once, whatever its neighbours do. (The bytes used to be carved from 8 KiB chunks
// shared by consecutive jobs; one long-lived job then kept its chunk, and the data of dozens
// of finished jobs, alive.)
//
// Data too large for the biggest bucket gets a buffer from dataPool instead, returned when
// the job is forgotten.
type jobWith[B any] struct {
	job Job
	b   B
}

// jobSize is what a job costs before its bytes.
const jobSize = unsafe.Sizeof(Job{})

// jobBucket is one size of jobWith.
type jobBucket struct {
	capacity int                   // bytes the job's b holds
	alloc    func() (*Job, []byte) // a zeroed job and its b
}

func bucket[B any]() jobBucket {
	var x jobWith[B]
	return jobBucket{capacity: int(unsafe.Sizeof(x.b)), alloc: newJobWith[B]}
}

func newJobWith[B any]() (*Job, []byte) {
	x := new(jobWith[B])
	return &x.job, unsafe.Slice((*byte)(unsafe.Pointer(&x.b)), unsafe.Sizeof(x.b))
}

// jobBuckets are the runtime's size classes above a bare Job up to 1408 bytes, every one of them, each
// as a jobWith whose total size is exactly that class (TestJobBucketsAreSizeClasses).
var jobBuckets = [...]jobBucket{
	bucket[[144 - jobSize]byte](), bucket[[160 - jobSize]byte](),
	bucket[[176 - jobSize]byte](), bucket[[192 - jobSize]byte](), bucket[[208 - jobSize]byte](),
	bucket[[224 - jobSize]byte](), bucket[[240 - jobSize]byte](), bucket[[256 - jobSize]byte](),
	bucket[[288 - jobSize]byte](), bucket[[320 - jobSize]byte](), bucket[[352 - jobSize]byte](),
	bucket[[384 - jobSize]byte](), bucket[[416 - jobSize]byte](), bucket[[448 - jobSize]byte](),
	bucket[[480 - jobSize]byte](), bucket[[512 - jobSize]byte](), bucket[[576 - jobSize]byte](),
	bucket[[640 - jobSize]byte](), bucket[[704 - jobSize]byte](), bucket[[768 - jobSize]byte](),
	bucket[[896 - jobSize]byte](), bucket[[1024 - jobSize]byte](), bucket[[1152 - jobSize]byte](),
	bucket[[1280 - jobSize]byte](), bucket[[1408 - jobSize]byte](),
}

// maxInline is the most bytes a job carries in its own allocation: room for 1 KiB of data
// with a 64-byte unique id, a 64-byte reducer and a long handle.
const maxInline = 1408 - int(jobSize)

// bucketFor[n] is the index of the smallest bucket holding n bytes.
var bucketFor = func() (t [maxInline + 1]uint8) {
	b := 0
	for n := range t {
		for jobBuckets[b].capacity < n {
			b++
		}
		t[n] = uint8(b)
	}
	return t
}()

// dataPool recycles the buffers of job data too large to travel with the job. Allocating a
// fresh one per job cost more than the copy: the runtime hands freed large spans back to the
// operating system, and the next job faults the pages in again (3 page faults per 64 KiB
// round trip).
var dataPool bytebufferpool.Pool

// NewJob returns a new job holding private copies of handle, unique, reducer and data (the
// caller sets Seq, Priority, Background, RunAt and so on before enqueueing it). The job and
// the bytes are one allocation (see jobWith); data too large for that gets a pooled buffer,
// released when the job is forgotten. Safe for concurrent use.
func NewJob(handle, unique, reducer, data []byte) *Job {
	small := len(handle) + len(unique) + len(reducer)
	pooled := small+len(data) > maxInline
	n := small
	if !pooled {
		n += len(data)
	}
	var j *Job
	var b []byte
	if n <= maxInline {
		j, b = jobBuckets[bucketFor[n]].alloc()
	} else { // only with an absurd handle prefix: the strings get their own allocation
		j, b = new(Job), make([]byte, n)
	}
	j.Handle, b = carve(b, handle)
	j.Unique, b = carve(b, unique)
	if len(reducer) > 0 {
		j.moreFields().reducer, b = carve(b, reducer)
	}
	switch {
	case pooled:
		buf := dataPool.Get()
		buf.B = append(buf.B[:0], data...)
		j.Data = buf.B[:len(data):len(data)]
		j.rareFields().dataBuf = buf
	case len(data) == 0:
		j.Data = []byte{}
	default:
		n := copy(b, data)
		j.Data = b[:n:n] // capped: an append by the holder cannot reach past the job's bytes
	}
	return j
}

// carve copies src to the front of b and returns the copy, as a string, and the rest of b.
func carve(b, src []byte) (string, []byte) {
	if len(src) == 0 {
		return "", b
	}
	n := copy(b, src)
	return unsafe.String(&b[0], n), b[n:]
}

// releaseData returns a pooled data buffer once the job is gone; Data is nil afterwards.
func (j *Job) releaseData() {
	if r := j.rare(); r != nil && r.dataBuf != nil {
		j.Data = nil
		dataPool.Put(r.dataBuf)
		r.dataBuf = nil
	}
}
