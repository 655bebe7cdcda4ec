package engine

import (
	"sync/atomic"

	"github.com/spur-gearman/spur/codec"
)

// Traffic counters: packets by type and bytes each way, counted where Feed parses them and
// TakeOutput hands them over. Each event loop has its own block (a transport that says which
// loop a connection is on, see LoopTransport), so a counter is only ever written by one
// goroutine: an uncontended atomic add on a cache line no other core writes. Transports
// without loops (TLS: a goroutine per connection) share one more block. A scrape sums them.

// LoopTransport is a Transport that tells which of its event loops serves the connection.
type LoopTransport interface {
	Transport
	Loop() int // 0-based; the same for every connection of that loop
}

// adminSlot is where text admin lines are counted in traffic.packets.
const adminSlot = codec.MaxType + 1

// traffic is one loop's counters.
type traffic struct {
	packets           [adminSlot + 1]atomic.Uint64 // by codec.Type; 0 = an unknown type
	bytesIn, bytesOut atomic.Uint64
	_                 [64]byte // keeps the next block's counters off this one's cache line
}

// maxTrafficLoops bounds the loop numbers given a block of their own; more share the last.
const maxTrafficLoops = 256

// trafficFor returns the counters of t's loop, making them on first use.
func (e *Engine) trafficFor(t Transport) *traffic {
	i := maxTrafficLoops // transports without loops
	if lt, ok := t.(LoopTransport); ok {
		i = min(max(lt.Loop(), 0), maxTrafficLoops-1)
	}
	if tr := e.traffic[i].Load(); tr != nil {
		return tr
	}
	e.traffic[i].CompareAndSwap(nil, new(traffic))
	return e.traffic[i].Load()
}

// countPacket counts one parsed packet (text: an admin line).
func (tr *traffic) countPacket(p *codec.Packet) {
	switch {
	case p.Text:
		tr.packets[adminSlot].Add(1)
	case p.Type <= codec.MaxType:
		tr.packets[p.Type].Add(1)
	default:
		tr.packets[0].Add(1)
	}
}

// Traffic is what the connections exchanged since start.
type Traffic struct {
	// Packets counts the packets received by type name (codec.Type.String(); "admin" for
	// text admin lines, "UNKNOWN" for types the protocol does not have).
	Packets           map[string]uint64
	BytesIn, BytesOut uint64
}

// Traffic sums every loop's counters.
func (e *Engine) Traffic() Traffic {
	out := Traffic{Packets: make(map[string]uint64)}
	for i := range e.traffic {
		tr := e.traffic[i].Load()
		if tr == nil {
			continue
		}
		out.BytesIn += tr.bytesIn.Load()
		out.BytesOut += tr.bytesOut.Load()
		for typ := range tr.packets {
			n := tr.packets[typ].Load()
			if n == 0 {
				continue
			}
			name := "UNKNOWN"
			switch {
			case typ == int(adminSlot):
				name = "admin"
			case typ > 0:
				name = codec.Type(typ).String()
			}
			out.Packets[name] += n
		}
	}
	return out
}

// ConnectionKinds counts the open connections by what they did: "worker" once it
// registered a function, else "admin" once it sent an admin command, else "client".
func (e *Engine) ConnectionKinds() map[string]int {
	kinds := map[string]int{"client": 0, "worker": 0, "admin": 0}
	e.sessMu.Lock()
	for _, s := range e.sessions {
		switch {
		case s.wasWorker.Load():
			kinds["worker"]++
		case s.wasAdmin.Load():
			kinds["admin"]++
		default:
			kinds["client"]++
		}
	}
	e.sessMu.Unlock()
	return kinds
}
