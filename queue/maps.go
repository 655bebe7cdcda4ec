package queue

// A Go map never gives back the space of deleted entries: one that held a million jobs keeps
// a million jobs' worth of buckets when it holds ten. The indexes here therefore remember
// the most entries they had since their map was made and, once down to a quarter of that,
// move what is left to a right-sized map (or drop the map when it is empty): O(1) per entry
// amortized. Maps that never held shrinkMin entries are left alone; the indexes are sharded
// 64 ways, so the slack that leaves is paid 64 times over, and shrinkMin is kept small.
//
// When is as important as how: refilling a dropped map costs about five times what inserting
// into a kept one does (growth rehashes every entry; measured 110 against 19 ns an insert),
// so shrinking as soon as a backlog drains makes a queue that fills and drains in batches pay
// that on every batch. The maps of the job indexes (coalescing and unique) are therefore
// shrunk by Registry.SweepIdle, at most once a sweep interval, and only if they are still
// down to a quarter then; the handle index, whose maps hold chunks and stragglers (a few
// entries per thousand jobs), shrinks as it goes.

const shrinkMin = 16

// roomy reports whether a map of n entries that held peak is worth remaking smaller.
func roomy(n, peak int) bool { return peak >= shrinkMin && n <= peak/4 }

// shrinkMap returns m, or if it is roomy a right-sized copy of it, nil when empty, resetting
// *peak to its size.
func shrinkMap[K comparable, V any](m map[K]V, peak *int) map[K]V {
	n := len(m)
	if !roomy(n, *peak) {
		return m
	}
	*peak = n
	if n == 0 {
		return nil
	}
	c := make(map[K]V, n)
	for k, v := range m {
		c[k] = v
	}
	return c
}
