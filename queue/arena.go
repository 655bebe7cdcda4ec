package queue

import "unsafe"

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

// Copy returns a private copy of b for a job of one of the shard's functions; it is never
// nil. The copy must not be modified. Call with the shard locked.
func (s *Shard) Copy(b []byte) []byte { return s.arena.copy(b) }

// CopyString is Copy as a string.
func (s *Shard) CopyString(b []byte) string {
	c := s.arena.copy(b)
	return unsafe.String(unsafe.SliceData(c), len(c))
}
