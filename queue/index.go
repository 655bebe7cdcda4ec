package queue

import "sync"

// The handle index finds a live job by its handle, for GET_STATUS and the admin commands.
//
// Every handle ends in ":N" where N is its job's Seq, and Seqs are issued in increasing order,
// so the index is a table addressed by Seq rather than a map keyed by the handle string: a
// job costs one 8-byte slot instead of a hashed string key, inserting never rehashes, and
// lookups parse the number instead of hashing the handle. The table is split into chunks of
// indexChunkLen slots, each freed as soon as its last job finishes (except a shard's newest),
// so memory follows the live jobs: a straggler keeps at most one 2 KiB chunk alive. Jobs are
// spread over NumShards locks by Seq, so consecutive submissions from different event loops
// seldom meet.

const (
	indexChunkBits = 8
	indexChunkLen  = 1 << indexChunkBits
)

type indexShard struct {
	mu     sync.Mutex
	chunks map[uint64]*indexChunk
	newest uint64 // the highest chunk number created: where new jobs land
	n      int    // live jobs in this shard
	peak   int    // most live jobs since the last PeakJobs
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
	ch := x.chunks[c]
	if ch == nil {
		ch = &indexChunk{}
		x.chunks[c] = ch
		x.newest = max(x.newest, c)
	}
	if ch.jobs[i] == nil {
		ch.live++
		x.n++
		x.peak = max(x.peak, x.n)
	}
	ch.jobs[i] = j
	x.mu.Unlock()
}

func (r *Registry) removeJob(j *Job) {
	x, c, i := r.slot(j.Seq)
	x.mu.Lock()
	if ch := x.chunks[c]; ch != nil && ch.jobs[i] == j {
		ch.jobs[i] = nil
		x.n--
		// The newest chunk stays even when empty: with a short queue, jobs come and go in
		// it and it would otherwise be freed and made again for every job.
		if ch.live--; ch.live == 0 && c != x.newest {
			delete(x.chunks, c)
		}
	}
	x.mu.Unlock()
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
		x.mu.Unlock()
	}
}
