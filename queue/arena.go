package queue

import (
	"unsafe"

	"github.com/valyala/bytebufferpool"
)

// arena hands out copies of jobs' small immutable byte fields (handle, unique id, data),
// carved one after another from shared chunks. Queueing a job then costs one allocation (the
// Job) instead of four, and the bytes carry no per-object header, size-class rounding or GC
// scanning. A chunk is ordinary garbage-collected memory, freed once no job refers to it, so
// memory still comes back after a backlog drains; one job outliving its neighbours keeps at
// most one chunk alive.
type arena struct{ buf []byte } // len(buf) is the part of the current chunk handed out

const (
	arenaChunk   = 8 << 10
	arenaMaxItem = 1 << 10 // larger fields get their own allocation
)

func (a *arena) copy(b []byte) []byte {
	n := len(b)
	if n == 0 {
		return []byte{}
	}
	if n > arenaMaxItem {
		return append(make([]byte, 0, n), b...)
	}
	if n > cap(a.buf)-len(a.buf) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start : start+n : start+n] // capped: an append by the holder cannot reach a neighbour
}

// CopyString returns a private copy of b, as a string, for a job of one of the shard's
// functions. Call with the shard locked.
func (s *Shard) CopyString(b []byte) string {
	c := s.arena.copy(b)
	return unsafe.String(unsafe.SliceData(c), len(c))
}

// dataPool recycles the buffers of job data too large for the arena. Allocating a fresh one
// per job cost more than the copy: the runtime hands freed large spans back to the operating
// system, and the next job faults the pages in again (3 page faults per 64 KiB round trip).
var dataPool bytebufferpool.Pool

// SetData gives j a private copy of b as its data. Call with the shard locked, before j is
// enqueued; the copy is released when the job is forgotten.
func (s *Shard) SetData(j *Job, b []byte) {
	if len(b) <= arenaMaxItem {
		j.Data = s.arena.copy(b)
		return
	}
	buf := dataPool.Get()
	buf.B = append(buf.B[:0], b...)
	j.Data, j.dataBuf = buf.B[:len(b):len(b)], buf
}

// releaseData returns a pooled data buffer once the job is gone; Data is nil afterwards.
func (j *Job) releaseData() {
	if j.dataBuf != nil {
		j.Data = nil
		dataPool.Put(j.dataBuf)
		j.dataBuf = nil
	}
}
