package queue

import "unsafe"

// LookupUnique returns the newest live, non-ignored job of any function whose unique id is
// unique, or nil; "" and "-" never match. GET_STATUS_UNIQUE ignores the function (as gearmand
// does), so each shard's unique index is asked in turn: NumShards map lookups, however many
// functions and jobs there are. Like Lookup, the job may finish at any moment: lock its
// function's shard and check State and Ignore before trusting its fields. Call with no shard
// locked; safe for concurrent use.
func (r *Registry) LookupUnique(unique []byte) *Job {
	key := unsafe.String(unsafe.SliceData(unique), len(unique)) // compared and hashed only
	if key == "" || key == "-" {
		return nil
	}
	h := r.keyHash(key)
	var best *Job
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		if j := s.uniques.newest(h, key); j != nil && (best == nil || j.Seq > best.Seq) {
			best = j
		}
		s.mu.Unlock()
	}
	return best
}

// NumUniques returns how many jobs the shards' unique indexes hold; for invariant checks.
func (r *Registry) NumUniques() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		s.uniques.each(func(uint64, *Job) { n++ })
		s.mu.Unlock()
	}
	return n
}
