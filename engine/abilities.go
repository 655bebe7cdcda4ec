package engine

import (
	"time"

	"github.com/spur-gearman/spur/queue"
)

// registration is one function a worker can do (CAN_DO or CAN_DO_TIMEOUT).
type registration struct {
	fn      *queue.Function
	timeout time.Duration // 0 = none
}

// abilities is a worker's set of registered functions, in registration order; grab walks it
// newest first, like gearmand. A function is in it at most once: a repeated CAN_DO for it
// updates its timeout in place (gearmand counts each one as another worker). Adding,
// updating and removing cost O(1) amortised, so that no packet costs more than its own size
// however many the connection sent before: removal leaves a hole that a compaction closes
// once holes outnumber entries.
//
// It is changed only on the session's own loop, under the session's mutex; the loop reads
// it without the mutex, every other goroutine with it.
type abilities struct {
	list  []registration // oldest first; fn == nil marks a hole
	index map[*queue.Function]int
	holes int
}

// add registers f, or updates its timeout; it reports whether f is new.
func (a *abilities) add(f *queue.Function, timeout time.Duration) bool {
	if i, ok := a.index[f]; ok {
		a.list[i].timeout = timeout
		return false
	}
	if a.index == nil {
		a.index = make(map[*queue.Function]int)
	}
	a.index[f] = len(a.list)
	a.list = append(a.list, registration{fn: f, timeout: timeout})
	return true
}

// remove unregisters f and reports whether it was registered.
func (a *abilities) remove(f *queue.Function) bool {
	i, ok := a.index[f]
	if !ok {
		return false
	}
	delete(a.index, f)
	a.list[i] = registration{}
	if a.holes++; a.holes > len(a.index) {
		a.compact()
	}
	return true
}

func (a *abilities) compact() {
	kept := a.list[:0]
	for _, r := range a.list {
		if r.fn != nil {
			a.index[r.fn] = len(kept)
			kept = append(kept, r)
		}
	}
	clear(a.list[len(kept):])
	a.list, a.holes = kept, 0
}

// toBack moves f to the oldest position, so that grab tries it last (-R). O(n): the
// round-robin option is gearmand's and costs what it costs there.
func (a *abilities) toBack(f *queue.Function) {
	i, ok := a.index[f]
	if !ok || i == 0 {
		return
	}
	r := a.list[i]
	copy(a.list[1:i+1], a.list[:i])
	a.list[0] = r
	for j := 0; j <= i; j++ {
		if g := a.list[j].fn; g != nil {
			a.index[g] = j
		}
	}
}

// newestFirst calls fn for each registration, newest first, until fn returns false.
func (a *abilities) newestFirst(fn func(registration) bool) {
	for i := len(a.list) - 1; i >= 0; i-- {
		if r := a.list[i]; r.fn != nil && !fn(r) {
			return
		}
	}
}

func (a *abilities) len() int { return len(a.index) }

// functions returns the registered functions, oldest first.
func (a *abilities) functions() []*queue.Function {
	out := make([]*queue.Function, 0, len(a.index))
	for _, r := range a.list {
		if r.fn != nil {
			out = append(out, r.fn)
		}
	}
	return out
}
