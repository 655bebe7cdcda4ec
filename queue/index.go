package queue

import "sync"

// The handle index finds a live job by its handle, for GET_STATUS and the admin commands.
//
// Every handle ends in ":N" where N is its job's Seq, and Seqs are issued in increasing order,
// so the index is a table addressed by Seq rather than a map keyed by the handle string: a
// job costs one 8-byte slot instead of a hashed string key, inserting never rehashes, and
// lookups parse the number instead of hashing the handle. Jobs are spread over NumShards
// locks by Seq, so consecutive submissions from different event loops seldom meet:
//
//	seq ──► shard seq%NumShards ──► chunk (seq/NumShards)>>indexChunkBits ──► slot
//	                                 └─ or, for a straggler, sparse[seq]
//
// Each shard's table is split into chunks of indexChunkLen slots (2 KiB), freed as soon as
// their last job finishes (except a shard's newest, where new jobs land). So that a few
// long-lived jobs do not each keep a 2 KiB chunk alive, a chunk down to indexSparseMax live
// jobs hands them to the shard's sparse map (about 20 bytes a job) and is freed; jobs
// finishing in order pass through it a few at a time, a small cost per chunk.

const (
	indexChunkBits = 8
	indexChunkLen  = 1 << indexChunkBits
	indexSparseMax = 8
)

type indexShard struct {
	mu         sync.Mutex
	chunks     map[uint64]*indexChunk
	chunksPeak int             // see shrinkMap
	sparse     map[uint64]*Job // by Seq: jobs whose chunk was freed before them
	sparsePeak int             // see shrinkMap
	newest     uint64          // the highest chunk number created: where new jobs land
	newestCh   *indexChunk     // chunks[newest], kept at hand: nearly every job lands there
	n          int             // live jobs in this shard
	peak       int             // most live jobs since the last PeakJobs
}

type indexChunk struct {
	jobs [indexChunkLen]*Job
	live int
}

// slot returns the shard holding seq, the chunk number within it and the slot in the chunk.
func (r *Registry) slot(seq uint64) (*indexShard, uint64, int) {
	x := &r.index[seq%NumShards]
	pos := seq / NumShards
	return x, pos >> indexChunkBits, int(pos & (indexChunkLen - 1))
}

func (r *Registry) addJob(j *Job) {
	x, c, i := r.slot(j.Seq)
	x.mu.Lock()
	switch ch := x.chunk(c); {
	case ch != nil:
		if ch.jobs[i] == nil {
			ch.live++
			x.n++
		}
		ch.jobs[i] = j
	case c < x.newest:
		// An older chunk, freed already: a submission that took its Seq early and its
		// shard lock late, or one of the stragglers' neighbours.
		if x.sparse == nil {
			x.sparse = make(map[uint64]*Job)
		}
		if x.sparse[j.Seq] == nil {
			x.n++
		}
		x.sparse[j.Seq] = j
		x.sparsePeak = max(x.sparsePeak, len(x.sparse))
	default: // c > newest, or the shard's very first chunk
		ch = &indexChunk{live: 1}
		ch.jobs[i] = j
		x.chunks[c] = ch
		x.chunksPeak = max(x.chunksPeak, len(x.chunks))
		if prev := x.chunks[x.newest]; prev != nil && c > x.newest && prev.live <= indexSparseMax {
			x.retire(x.newest, prev) // no longer where jobs land: a sparse one goes now
		}
		x.newest = max(x.newest, c)
		if x.newest == c {
			x.newestCh = ch
		}
		x.n++
	}
	x.peak = max(x.peak, x.n)
	x.mu.Unlock()
}

func (r *Registry) removeJob(j *Job) {
	x, c, i := r.slot(j.Seq)
	x.mu.Lock()
	if ch := x.chunk(c); ch != nil {
		if ch.jobs[i] == j {
			ch.jobs[i] = nil
			x.n--
			ch.live--
			// The newest chunk stays, even when empty: with a short queue, jobs come and go
			// in it and it would otherwise be freed and made again for every job.
			if c != x.newest && ch.live <= indexSparseMax {
				x.retire(c, ch)
			}
		}
	} else if x.sparse[j.Seq] == j {
		delete(x.sparse, j.Seq)
		x.n--
		x.sparse = shrinkMap(x.sparse, &x.sparsePeak)
	}
	x.mu.Unlock()
}

// chunk returns chunk c, or nil when it does not exist.
func (x *indexShard) chunk(c uint64) *indexChunk {
	if c == x.newest && x.newestCh != nil {
		return x.newestCh
	}
	return x.chunks[c]
}

// retire frees chunk c, moving its last few jobs to the sparse map.
func (x *indexShard) retire(c uint64, ch *indexChunk) {
	delete(x.chunks, c)
	if x.chunks = shrinkMap(x.chunks, &x.chunksPeak); x.chunks == nil {
		x.chunks = make(map[uint64]*indexChunk)
	}
	if ch.live == 0 {
		return
	}
	if x.sparse == nil {
		x.sparse = make(map[uint64]*Job)
	}
	for _, j := range ch.jobs {
		if j != nil {
			x.sparse[j.Seq] = j
		}
	}
	x.sparsePeak = max(x.sparsePeak, len(x.sparse))
}

// Lookup returns the job with this handle, or nil. The job may finish at any moment: lock
// its function's shard and check State before trusting its fields.
func (r *Registry) Lookup(handle []byte) *Job {
	seq, ok := HandleSeq(handle)
	if !ok {
		return nil
	}
	x, c, i := r.slot(seq)
	x.mu.Lock()
	var j *Job
	if ch := x.chunks[c]; ch != nil {
		j = ch.jobs[i]
	} else {
		j = x.sparse[seq]
	}
	x.mu.Unlock()
	if j == nil || j.Handle != string(handle) {
		return nil
	}
	return j
}

// HandleSeq reads the job number a handle ends in (the digits after its last ':').
func HandleSeq(handle []byte) (uint64, bool) {
	i := len(handle)
	for i > 0 && handle[i-1] >= '0' && handle[i-1] <= '9' {
		i--
	}
	digits := handle[i:]
	if len(digits) == 0 || len(digits) > 19 || i == 0 || handle[i-1] != ':' {
		return 0, false
	}
	var n uint64
	for _, d := range digits {
		n = n*10 + uint64(d-'0')
	}
	return n, true
}

// PeakJobs returns (an upper bound of) the most live jobs there were at once since the last
// call, and how many there are now. A backlog that fills and drains between two calls is
// still seen.
func (r *Registry) PeakJobs() (peak, now int) {
	for i := range r.index {
		x := &r.index[i]
		x.mu.Lock()
		peak += x.peak
		now += x.n
		x.peak = x.n
		x.mu.Unlock()
	}
	return peak, now
}

// eachIndexed calls fn for every job in the handle index, in no particular order.
func (r *Registry) eachIndexed(fn func(*Job)) {
	for i := range r.index {
		x := &r.index[i]
		x.mu.Lock()
		for _, ch := range x.chunks {
			for _, j := range ch.jobs {
				if j != nil {
					fn(j)
				}
			}
		}
		for _, j := range x.sparse {
			fn(j)
		}
		x.mu.Unlock()
	}
}
