package queue

// fifo is a queue of jobs backed by one slice. Popping leaves a hole at the front that is
// reclaimed by compaction, and a drained queue drops an oversized backing array, so memory
// comes back after a large queue empties (gearman/gearmand#284).
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
	if q.head == len(q.items) {
		q.head = 0
		if cap(q.items) > fifoKeepCap {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	}
	return j
}

// each calls fn for every queued job in order.
func (q *fifo) each(fn func(*Job)) {
	for _, j := range q.items[q.head:] {
		fn(j)
	}
}
