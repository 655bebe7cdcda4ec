package queue

import (
	"hash/maphash"
	"sync"
	"unsafe"
)

// The registry's unique index answers GET_STATUS_UNIQUE, which ignores the function (as
// gearmand does): it finds a live job by its unique id alone in O(1) instead of visiting every
// function of every shard.
//
// It holds exactly the jobs of the functions' coalescing indexes that are filed by unique id
// (not "" and not "-" jobs, which are keyed by their data): a job enters both in Enqueue and
// leaves both in unindex, so it is found here exactly as long as a submission can coalesce
// onto it. Entries are keyed by the same hash (Function.KeyHash) and spread over NumShards
// leaf locks by it. Jobs whose ids hash alike — in practice the same id submitted to several
// functions — are chained newest first through jobRare.uniqNewer/uniqOlder, so the newest
// is the one found (gearmand reports the most recently created) and any of them leaves in O(1).
type uniqueShard struct {
	mu   sync.Mutex
	m    map[uint64]*Job // hash -> newest live job filed under it
	peak int             // most hashes filed since m was made (see shrinkMap)
}

func (r *Registry) uniqueShardFor(h uint64) *uniqueShard {
	return &r.uniques[(h>>32)%NumShards] // the high half: the maps use the low bits
}

// fileUnique files j (of a shard the caller holds) under h, in front of its chain.
func (r *Registry) fileUnique(h uint64, j *Job) {
	x := r.uniqueShardFor(h)
	x.mu.Lock()
	if x.m == nil {
		x.m = make(map[uint64]*Job)
	}
	if old := x.m[h]; old != nil {
		// old may belong to another shard: only its uniq* fields are touched, which this
		// lock guards (rareFields is safe from any goroutine).
		j.rareFields().uniqOlder = old
		old.rareFields().uniqNewer = j
	}
	x.m[h] = j
	x.peak = max(x.peak, len(x.m))
	x.mu.Unlock()
}

// unfileUnique removes j, filed under h, from the index.
func (r *Registry) unfileUnique(h uint64, j *Job) {
	x := r.uniqueShardFor(h)
	x.mu.Lock()
	var newer, older *Job
	if r := j.rare(); r != nil {
		newer, older = r.uniqNewer, r.uniqOlder
		r.uniqNewer, r.uniqOlder = nil, nil
	}
	if older != nil {
		older.rare().uniqNewer = newer
	}
	switch {
	case newer != nil:
		newer.rare().uniqOlder = older
	case older != nil:
		x.m[h] = older
	default:
		delete(x.m, h)
	}
	x.mu.Unlock()
}

// shrinkUniques remakes the unique index's roomy maps smaller (see shrinkMap); for SweepIdle.
func (r *Registry) shrinkUniques() {
	for i := range r.uniques {
		x := &r.uniques[i]
		x.mu.Lock()
		x.m = shrinkMap(x.m, &x.peak)
		x.mu.Unlock()
	}
}

// LookupUnique returns the newest live, non-ignored job of any function whose unique id is
// unique, or nil; "" and "-" never match. Like Lookup, the job may finish at any moment: lock
// its function's shard and check State and Ignore before trusting its fields. Safe for
// concurrent use.
func (r *Registry) LookupUnique(unique []byte) *Job {
	key := unsafe.String(unsafe.SliceData(unique), len(unique)) // compared and hashed only
	if key == "" || key == "-" {
		return nil
	}
	h := maphash.String(r.seed, key)
	x := r.uniqueShardFor(h)
	x.mu.Lock()
	defer x.mu.Unlock()
	for j := x.m[h]; j != nil; j = j.uniqOlder() {
		if j.Unique == key {
			return j
		}
	}
	return nil
}

// uniqOlder is the next older job in j's unique-index chain; call with its index shard locked.
func (j *Job) uniqOlder() *Job {
	if r := j.rare(); r != nil {
		return r.uniqOlder
	}
	return nil
}

// NumUniques returns how many jobs the registry's unique index holds; for invariant checks.
func (r *Registry) NumUniques() int {
	n := 0
	for i := range r.uniques {
		x := &r.uniques[i]
		x.mu.Lock()
		for _, j := range x.m {
			for ; j != nil; j = j.uniqOlder() {
				n++
			}
		}
		x.mu.Unlock()
	}
	return n
}
