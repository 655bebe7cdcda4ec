package main

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// Buffer sizes. Each connection owns one read and one write buffer for its whole life; they
// grow only when a single packet does not fit (large payloads), never per packet.
const (
	initialReadBuf  = 256 << 10
	initialWriteBuf = 64 << 10
	// grace is how long a connection may still wait for replies after the run was stopped.
	grace = 10 * time.Second
)

// conn is one Gearman connection of the generator: a TCP socket, a read buffer that codec.Parse
// walks in place, and a write buffer that requests are appended to and flushed in one write.
//
// A conn is used by one goroutine only, except wake, which any goroutine may call.
type conn struct {
	nc   net.Conn // TCP, or TLS over it with -tls
	rbuf []byte   // len == cap; unparsed bytes are rbuf[r:w]
	r, w int
	wbuf []byte
	pkt  codec.Packet // the packet last returned by next; its slices alias rbuf
}

// tlsConfig, set by -tls, makes every connection of the workloads TLS; its session cache
// lets reconnects resume (tlsResumed counts them).
var (
	tlsConfig  *tls.Config
	tlsResumed atomic.Int64
)

// dial opens a connection with its buffers.
func dial(addr string) (*conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = nc.(*net.TCPConn).SetNoDelay(true)
	if tlsConfig != nil {
		tc := tls.Client(nc, tlsConfig)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		_ = tc.SetDeadline(time.Time{})
		if tc.ConnectionState().DidResume {
			tlsResumed.Add(1)
		}
		nc = tc
	}
	return &conn{
		nc:   nc,
		rbuf: make([]byte, initialReadBuf),
		wbuf: make([]byte, 0, initialWriteBuf),
	}, nil
}

// flush writes the pending requests in one write call.
func (c *conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

// next parses the next complete packet out of the read buffer into c.pkt. It reports false
// when the buffer holds no complete packet (call fill). Packets must be responses.
func (c *conn) next() (bool, error) {
	pkt, n, err := codec.Parse(c.rbuf[c.r:c.w], 0)
	if err != nil {
		return false, fmt.Errorf("bad reply from server: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	if pkt.Text || !pkt.Response {
		return false, errors.New("server sent something other than a \\0RES packet")
	}
	c.pkt = pkt
	c.r += n
	return true, nil
}

// fill reads once from the socket, making room first. It invalidates c.pkt.
func (c *conn) fill() error {
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.r > 0 && len(c.rbuf)-c.w < len(c.rbuf)/4 {
		// Little room left at the tail: move the partial packet to the front.
		c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.rbuf) {
		// One packet larger than the buffer: grow to fit it (once per size, not per packet).
		need := 2 * len(c.rbuf)
		if c.w-c.r >= codec.HeaderSize {
			if total := codec.HeaderSize + int(binary.BigEndian.Uint32(c.rbuf[c.r+8:])); total > need {
				need = total
			}
		}
		nb := make([]byte, need)
		c.w = copy(nb, c.rbuf[c.r:c.w])
		c.r = 0
		c.rbuf = nb
	}
	n, err := c.nc.Read(c.rbuf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = errors.New("empty read")
	}
	return err
}

// wake makes a blocked read on c return at once (with a timeout error). Safe from any goroutine.
func (c *conn) wake() { _ = c.nc.SetReadDeadline(time.Now()) }

// close closes the socket.
func (c *conn) close() { _ = c.nc.Close() }

// handler is the per-connection logic of a workload.
//
// The loop (drive) calls, in order: request (append new requests to c.wbuf), flush, done,
// a read, then packet for each reply in what was read. c.pkt holds the reply; it is valid
// until the next read. stop is called once when the run has been stopped (count reached,
// time limit, or the workload's other side finished).
type handler interface {
	request(c *conn)
	packet(c *conn) error
	stop(c *conn)
	done() bool
}

// run is the shared state of one workload phase: the job tickets still to hand out, the stop
// flag, the connections to wake when it is raised, and the phase's deadline.
type run struct {
	remaining atomic.Int64 // tickets not yet claimed
	stopped   atomic.Bool
	timedOut  atomic.Bool
	deadline  time.Time // after it, stop; grace later, reads fail

	mu    sync.Mutex
	conns []*conn
	timer *time.Timer
}

// newRun starts a phase of n tickets, stopped after limit.
func newRun(n int64, limit time.Duration) *run {
	r := &run{deadline: time.Now().Add(limit)}
	r.remaining.Store(n)
	r.timer = time.AfterFunc(limit, func() {
		if !r.stopped.Load() {
			r.timedOut.Store(true)
			r.stop()
		}
	})
	return r
}

// add registers c so that stop wakes it, and bounds its reads by the deadline plus grace.
func (r *run) add(c *conn) {
	_ = c.nc.SetDeadline(r.deadline.Add(grace))
	r.mu.Lock()
	r.conns = append(r.conns, c)
	stopped := r.stopped.Load()
	r.mu.Unlock()
	if stopped {
		c.wake()
	}
}

// claim takes up to k tickets and returns how many it got.
func (r *run) claim(k int) int {
	for {
		cur := r.remaining.Load()
		if cur <= 0 || r.stopped.Load() {
			return 0
		}
		take := min(int64(k), cur)
		if r.remaining.CompareAndSwap(cur, cur-take) {
			return int(take)
		}
	}
}

// stop raises the stop flag and wakes every connection of the phase. Safe from any goroutine;
// only the first call does anything.
func (r *run) stop() {
	if r.stopped.Swap(true) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.wake()
	}
}

// end releases the phase's timer; call it from the goroutine that made the run.
func (r *run) end() { r.timer.Stop() }

// drive runs h on c until h is done. A read error after the run was stopped ends the loop
// quietly once the grace period is over; before that it is the connection's error.
func drive(c *conn, h handler, r *run) error {
	stopSeen := false
	var graceUntil time.Time
	for {
		if !stopSeen && r.stopped.Load() {
			stopSeen = true
			graceUntil = time.Now().Add(grace)
			_ = c.nc.SetReadDeadline(graceUntil)
			h.stop(c)
		}
		if !stopSeen {
			h.request(c)
		}
		if err := c.flush(); err != nil {
			return err
		}
		if h.done() {
			return nil
		}
		if err := c.fill(); err != nil {
			if isTimeout(err) && r.stopped.Load() {
				if !stopSeen {
					continue // the wake-up from stop: handle it at the top
				}
				if time.Now().Before(graceUntil) {
					// stop's wake-up landed after we had set the grace deadline.
					_ = c.nc.SetReadDeadline(graceUntil)
					continue
				}
				return errGraceExpired
			}
			if isTimeout(err) {
				return fmt.Errorf("no reply before the deadline: %w", err)
			}
			return err
		}
		if err := c.dispatch(h); err != nil {
			return err
		}
	}
}

// dispatch hands every complete packet in the read buffer to h.
func (c *conn) dispatch(h handler) error {
	for {
		ok, err := c.next()
		if err != nil || !ok {
			return err
		}
		if err := h.packet(c); err != nil {
			return err
		}
	}
}

// errGraceExpired: after a stop, the server did not answer what was outstanding in time.
var errGraceExpired = errors.New("replies still outstanding when the grace period after the stop ended")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
