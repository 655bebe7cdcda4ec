package tcpserver

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxPartialBytes is the default server-wide budget for bytes of packets that have
// not fully arrived: eight packets of the largest default size.
const DefaultMaxPartialBytes = 512 << 20

// partialBudget bounds what all connections together hold of packets still arriving. One
// connection may hold up to a packet of --max-packet-size; many of them sending slowly could
// otherwise hold that many times over. Past the budget, the connections holding the most
// are closed, with a log line, until the rest fits.
//
// The total is one atomic, changed only when a connection's held amount changes after a
// read (not per packet); the set of holders has a mutex of its own, a leaf lock.
type partialBudget struct {
	max   int64
	timed bool // a read timeout is set: holders note since when they hold
	total atomic.Int64

	mu      sync.Mutex
	holders map[*conn]struct{} // connections holding bytes now
}

// partialHold is one connection's share.
type partialHold struct {
	bytes   atomic.Int64 // held now; written by the connection's loop only
	evicted atomic.Bool  // chosen to be closed to bring the total under the budget, or slow
	slow    atomic.Bool  // evicted because its packet took longer than the read timeout
	// since is when the connection began to hold bytes of a packet that has not arrived
	// whole (unix nanoseconds), reset when a packet of its arrives whole; 0 = holds none.
	since atomic.Int64
}

// whole records that a packet of the connection arrived whole: what it holds now is a new
// packet's beginning. Call from its loop.
func (h *partialHold) whole() { h.since.Store(0) }

func (b *partialBudget) init(max int64) {
	b.max = max
	b.holders = make(map[*conn]struct{})
}

// hold records that cn now holds n bytes of incomplete packets. Call from cn's loop.
func (b *partialBudget) hold(cn *conn, n int) {
	old := cn.partial.bytes.Load()
	delta := int64(n) - old
	if delta == 0 {
		return
	}
	cn.partial.bytes.Store(int64(n))
	if n == 0 {
		cn.partial.since.Store(0)
	} else if b.timed && cn.partial.since.Load() == 0 { // the clock only for a read timeout
		cn.partial.since.Store(time.Now().UnixNano())
	}
	if (old == 0) != (n == 0) {
		b.mu.Lock()
		if n == 0 {
			delete(b.holders, cn)
		} else {
			b.holders[cn] = struct{}{}
		}
		b.mu.Unlock()
	}
	if total := b.total.Add(delta); delta > 0 && total > b.max {
		b.evict(total)
	}
}

// sweepSlow closes, every timeout/4, the connections whose packet has been incomplete for
// longer than timeout (slowloris: a few bytes now and then, never a whole packet), until
// stop is closed.
func (b *partialBudget) sweepSlow(timeout time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			limit := now.Add(-timeout).UnixNano()
			b.mu.Lock()
			var slow []*conn
			for cn := range b.holders {
				if s := cn.partial.since.Load(); s != 0 && s < limit && !cn.partial.evicted.Load() {
					slow = append(slow, cn)
				}
			}
			b.mu.Unlock()
			for _, cn := range slow {
				cn.partial.slow.Store(true)
				cn.partial.evicted.Store(true)
				_ = cn.Wake()
			}
		}
	}
}

// release forgets a closed connection's share. Call from its loop.
func (b *partialBudget) release(cn *conn) {
	if n := cn.partial.bytes.Swap(0); n != 0 {
		b.total.Add(-n)
		b.mu.Lock()
		delete(b.holders, cn)
		b.mu.Unlock()
	}
}

// evict marks the largest holders for closing until what the others hold fits the budget,
// and wakes their loops, which close them.
func (b *partialBudget) evict(total int64) {
	b.mu.Lock()
	byHeld := make([]*conn, 0, len(b.holders))
	for cn := range b.holders {
		if !cn.partial.evicted.Load() {
			byHeld = append(byHeld, cn)
		} else {
			total -= cn.partial.bytes.Load() // already on its way out
		}
	}
	b.mu.Unlock()
	sort.Slice(byHeld, func(i, j int) bool { return byHeld[i].partial.bytes.Load() > byHeld[j].partial.bytes.Load() })
	for _, cn := range byHeld {
		if total <= b.max {
			return
		}
		total -= cn.partial.bytes.Load()
		cn.partial.evicted.Store(true)
		_ = cn.Wake()
	}
}
