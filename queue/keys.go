package queue

import "hash/maphash"

// keyIndex finds the live job holding a coalescing key (a unique id, or the data of a "-"
// job) through the key's 64-bit hash. Each shard has one for the unique ids of all its
// functions (so that GET_STATUS_UNIQUE, which ignores the function, looks in NumShards maps,
// not in every function's), and each function one for the data of its "-" jobs. A map keyed by the string cost a 24-byte entry per job
// and a full string hash and compare per probe, and was a third of a submit with unique ids;
// this one keeps 16 bytes per job and compares the key once, on a hash match. Jobs whose
// keys' hashes collide are chained through jobRare.sameHash. The map is remade smaller by the
// sweeper once it has emptied out (see shrinkMap), so a drained backlog gives its space back.
type keyIndex struct {
	m      map[uint64]*Job
	peak   int  // most hashes filed since m was made
	byData bool // keys are job data ("-" jobs), not unique ids
}

func (x *keyIndex) keyOf(j *Job) string {
	if x.byData {
		return string(j.Data)
	}
	return j.Unique
}

// find returns f's live job filed under h with this key. A shard's unique index holds the
// jobs of all its functions, so the job's function is compared as well.
func (x *keyIndex) find(h uint64, key string, f *Function) *Job {
	for j := x.m[h]; j != nil; j = j.sameHash() {
		if j.Fn == f && x.keyOf(j) == key {
			return j
		}
	}
	return nil
}

// newest returns the live job of any function filed under h with this key that was submitted
// last (gearmand's GET_STATUS_UNIQUE reports the most recent one).
func (x *keyIndex) newest(h uint64, key string) *Job {
	var best *Job
	for j := x.m[h]; j != nil; j = j.sameHash() {
		if x.keyOf(j) == key && (best == nil || j.Seq > best.Seq) {
			best = j
		}
	}
	return best
}

// add files j under h, in front of any job already there (one of another function with the
// same key, or one that, holding the same key, was refused and is no longer to be found).
func (x *keyIndex) add(h uint64, j *Job) {
	if x.m == nil {
		x.m = make(map[uint64]*Job)
	}
	if head := x.m[h]; head != nil {
		j.rareFields().sameHash = head
	}
	x.m[h] = j
	x.peak = max(x.peak, len(x.m))
}

// remove unfiles j, if it is filed under h.
func (x *keyIndex) remove(h uint64, j *Job) {
	var prev *Job
	for c := x.m[h]; c != nil; prev, c = c, c.sameHash() {
		if c != j {
			continue
		}
		next := c.sameHash()
		switch {
		case prev != nil:
			prev.rare().sameHash = next
		case next != nil:
			x.m[h] = next
		default:
			delete(x.m, h)
		}
		if r := c.rare(); r != nil {
			r.sameHash = nil
		}
		return
	}
}

// each calls fn for every filed job with the hash it is filed under.
func (x *keyIndex) each(fn func(h uint64, j *Job)) {
	for h, j := range x.m {
		for ; j != nil; j = j.sameHash() {
			fn(h, j)
		}
	}
}

func (x *keyIndex) len() int { return len(x.m) }

// roomy reports whether the map is worth remaking smaller (see shrinkMap).
func (x *keyIndex) roomy() bool { return roomy(len(x.m), x.peak) }

func (x *keyIndex) shrink() { x.m = shrinkMap(x.m, &x.peak) }

func (j *Job) sameHash() *Job {
	if r := j.rare(); r != nil {
		return r.sameHash
	}
	return nil
}

// KeyHash is the hash a coalescing key is filed under in f's indexes.
func (f *Function) KeyHash(key string) uint64 { return f.shard.reg.keyHash(key) }

func (r *Registry) keyHash(key string) uint64 { return maphash.String(r.seed, key) }
