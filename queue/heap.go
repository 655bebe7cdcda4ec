package queue

// delayHeap is a min-heap of scheduled jobs ordered by (RunAt, Seq). Each job stores its
// index, so a cancelled job is removed in O(log n).
type delayHeap []*Job

// heapKeepCap is the backing array a delay heap may keep whatever its size. Above it, the
// array is halved whenever the heap falls to a quarter of it, so that scheduled jobs left
// over from a large batch do not keep the whole batch's array (amortized O(1) per removal).
const heapKeepCap = 1024

func (h delayHeap) less(a, b int) bool {
	if h[a].RunAt != h[b].RunAt {
		return h[a].RunAt < h[b].RunAt
	}
	return h[a].Seq < h[b].Seq
}

func (h delayHeap) swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].heapIndex = int32(a)
	h[b].heapIndex = int32(b)
}

func (h *delayHeap) push(j *Job) {
	j.heapIndex = int32(len(*h))
	*h = append(*h, j)
	h.up(len(*h) - 1)
}

func (h delayHeap) peek() *Job {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h *delayHeap) remove(i int) *Job {
	old := *h
	last := len(old) - 1
	j := old[i]
	if i != last {
		old.swap(i, last)
	}
	old[last] = nil
	*h = old[:last]
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	if n, c := len(*h), cap(*h); c > heapKeepCap && n <= c/4 {
		if n == 0 {
			*h = nil
		} else {
			*h = append(make(delayHeap, 0, c/2), *h...)
		}
	}
	j.heapIndex = -1
	return j
}

func (h delayHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts i towards the leaves and reports whether it moved.
func (h delayHeap) down(i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
