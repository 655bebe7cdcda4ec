package queue

// fifo is a queue of jobs backed by one slice. Popping leaves a hole at the front that is
// reclaimed by compaction, and a queue whose backlog falls to a quarter of its backing array
// moves to a smaller one, so memory comes back after a large queue drains
// (gearman/gearmand#284).
type fifo struct {
	items []*Job
	head  int
}

const fifoKeepCap = 1024 // backing arrays up to this size are kept for reuse when empty

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(j *Job) {
	if q.head > 0 && len(q.items) == cap(q.items) && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, j)
}

func (q *fifo) peek() *Job {
	if q.head == len(q.items) {
		return nil
	}
	return q.items[q.head]
}

func (q *fifo) pop() *Job {
	if q.head == len(q.items) {
		return nil
	}
	j := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	switch n := q.len(); {
	case n == 0:
		q.head = 0
		if cap(q.items) > fifoKeepCap {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	case cap(q.items) > fifoKeepCap && n*4 < cap(q.items):
		// A backlog that shrank to a quarter of its peak gives the rest back, even if the
		// function never quite empties. Halving at most per shrink keeps pops O(1) amortised.
		items := make([]*Job, n, max(2*n, fifoKeepCap))
		copy(items, q.items[q.head:])
		q.items, q.head = items, 0
	}
	return j
}

// each calls fn for every queued job in order.
func (q *fifo) each(fn func(*Job)) {
	for _, j := range q.items[q.head:] {
		fn(j)
	}
}
