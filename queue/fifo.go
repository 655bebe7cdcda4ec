package queue

// fifo is a queue of jobs kept in a chain of fixed-size blocks. Pushing never copies what is
// already queued (a growing slice copies its whole backlog at every doubling), and a block
// is released as soon as its last job is popped, so memory follows the backlog down as it
// drains (gearman/gearmand#284). One used-up block is kept as a spare, so a queue that
// never empties does not allocate for every block it moves through.
type fifo struct {
	head, tail *fifoBlock // pop at head.r, push at tail.w
	spare      *fifoBlock
	n          int
}

// fifoBlockLen trades allocations per queued job against what an idle function keeps: an
// emptied FIFO keeps its one block (512 bytes) so that a queue hovering around empty does
// not allocate per job.
const fifoBlockLen = 64

type fifoBlock struct {
	jobs [fifoBlockLen]*Job
	r, w int
	next *fifoBlock
}

func (q *fifo) len() int { return q.n }

func (q *fifo) push(j *Job) {
	if q.tail == nil || q.tail.w == fifoBlockLen {
		b := q.spare
		if b != nil {
			q.spare = nil
		} else {
			b = &fifoBlock{}
		}
		if q.tail == nil {
			q.head = b
		} else {
			q.tail.next = b
		}
		q.tail = b
	}
	q.tail.jobs[q.tail.w] = j
	q.tail.w++
	q.n++
}

func (q *fifo) peek() *Job {
	if q.n == 0 {
		return nil
	}
	return q.head.jobs[q.head.r]
}

func (q *fifo) pop() *Job {
	if q.n == 0 {
		return nil
	}
	b := q.head
	j := b.jobs[b.r]
	b.jobs[b.r] = nil // let the finished job be collected
	b.r++
	q.n--
	if b.r == b.w {
		if b == q.tail { // empty: reuse the block in place
			b.r, b.w = 0, 0
		} else { // a full block used up: move on, keep it as the spare
			q.head = b.next
			b.next, b.r, b.w = nil, 0, 0
			q.spare = b
		}
	}
	return j
}

// blocks counts the blocks the queue holds, its spare included.
func (q *fifo) blocks() int {
	n := 0
	for b := q.head; b != nil; b = b.next {
		n++
	}
	if q.spare != nil {
		n++
	}
	return n
}

// firstLive returns the first job not ignored among the first limit, or nil when there is
// none; when all limit are ignored it returns the last of them.
func (q *fifo) firstLive(limit int) *Job {
	var last *Job
	for b := q.head; b != nil; b = b.next {
		for _, j := range b.jobs[b.r:b.w] {
			if !j.Ignore {
				return j
			}
			last, limit = j, limit-1
			if limit <= 0 {
				return last
			}
		}
	}
	return last
}

// each calls fn for every queued job in order.
func (q *fifo) each(fn func(*Job)) {
	for b := q.head; b != nil; b = b.next {
		for _, j := range b.jobs[b.r:b.w] {
			fn(j)
		}
	}
}
