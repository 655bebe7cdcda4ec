// Package tcpserver is Spur's plain TCP transport: gnet v2's epoll event loops carrying the
// connections of a server it knows only through the Open function it is given and the
// Session interface. It owns the sockets, the reads and writes, the per-loop flushing of
// sends made while a loop runs a callback, and the server-wide budget for bytes of packets
// that have not fully arrived yet.
//
// It imports nothing of the engine: cmd/spurd hands it engine.Engine.NewSession wrapped in
// an Open function, and the engine's tests do the same.
package tcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/connlimit"
)

// Session is the server side of one connection, as the transport drives it. All its methods
// are called from the connection's own event loop.
type Session interface {
	// FeedAt executes the complete packets at the front of buf and returns how many bytes it
	// consumed; closeConn asks for the connection to be closed once its output is written.
	// now (unix nanoseconds) is when the loop woke for these bytes: the loop reads the clock
	// anyway, and the session times the jobs of the packets with it.
	FeedAt(buf []byte, now int64) (consumed int, closeConn bool)
	// TakeOutput hands over what is to be written (nil when nothing is) and whether the
	// session's outbound cap was exceeded; the transport then calls ReleaseOutput(out).
	TakeOutput() (out *bytebufferpool.ByteBuffer, overflow bool)
	ReleaseOutput(out *bytebufferpool.ByteBuffer)
	// MaxOutbound caps the bytes the transport may queue for the connection itself.
	MaxOutbound() int
	// Closing reports that the server side ends the connection (a drained worker with
	// nothing left to do): the transport closes it once its output is written.
	Closing() bool
	// Close releases what the session held, once the connection is gone.
	Close()
	// LogAttrs names the connection in log lines.
	LogAttrs() []any
}

// Waker lets a session ask its loop to write its output: the transport passes one to Open.
type Waker interface {
	// Wake asks the loop to call TakeOutput soon; safe from any goroutine, never blocks.
	Wake() error
}

// Open makes the session of a new connection.
type Open func(w Waker, fd int, remote net.Addr) Session

// Config says where and how the transport listens.
type Config struct {
	Addrs     []string      // host:port each; "" host = every address
	Loops     int           // event loops; 0 = DefaultLoops()
	KeepAlive time.Duration // TCP keepalive period; 0 = off
	KeepIntvl time.Duration
	KeepCount int
	// MaxPacketSize is the largest packet body the server accepts; a packet announcing more
	// is handed to the session at once (which refuses it) instead of being awaited.
	MaxPacketSize uint32
	// MaxPartialBytes is the server-wide budget for bytes of packets that have not fully
	// arrived (see partial.go); 0 = DefaultMaxPartialBytes.
	MaxPartialBytes int64
	// Limiter caps the connections accepted (in all and per source address); nil = none.
	Limiter *connlimit.Limiter
	// ReadTimeout closes a connection whose packet has been incomplete for this long: no
	// packet of its has arrived whole since its first byte (slowloris). 0 = never. A
	// connection that sends nothing (an idle worker) holds no packet and is never closed.
	ReadTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultLoops is the number of event loops when none is asked for: one per two CPUs, at
// least one.
//
// Why not one per CPU: a loop's share of a job is only about half of what the job costs the
// machine; the kernel's TCP work for the same packets (softirqs, wake-ups of the peers) is
// the other half and needs CPUs of its own, as do the job log's goroutine and the garbage
// collector. And every loop beyond the first puts a hand-off on a synchronous round trip's
// path whenever the client and the worker landed on different loops: the sender's loop
// writes the other loop's eventfd and that loop wakes to write the reply. Measured on two
// CPUs shared with the load generator (spur-bench roundtrip, -q builtin): one synchronous
// client and one worker did 8.0k jobs/s at 58 µs of server CPU per job on one loop against
// 6.2k at 83 µs on two; four synchronous clients and 50 idle workers 10.5-14.5k against
// 9.1-9.9k; two loops won only pipelined round trips (4 x 64 in flight: 37-43k against
// 30-36k). On 16 CPUs eight loops still leave eight CPUs for the kernel's share, and a
// synchronous round trip whose client and worker sit on different loops pays one eventfd
// write per hop between them.
func DefaultLoops() int { return max(1, runtime.NumCPU()/2) }

// readBufferCap is the bytes each event loop reads at once (see Run).
const readBufferCap = 1 << 20

// Server runs sessions behind gnet's epoll event loops.
type Server struct {
	gnet.BuiltinEventEngine
	open   Open
	log    *slog.Logger
	cfg    Config
	booted chan struct{}
	done   chan struct{} // closed when Run returns
	eng    gnet.Engine
	loops  sync.Map     // gnet.EventLoop -> *loopState
	nloops atomic.Int32 // loopStates made: the next one's index

	partial partialBudget
}

// loopState lets sends made while an event loop runs one of its callbacks be written once
// per loop iteration, instead of waking the loop through its eventfd for each: a wake-up
// costs a syscall, a task and another epoll round, and most wake-ups are of a connection on
// the same loop (a worker's WORK_COMPLETE for its client, a submit's NOOP for a worker).
//
// The connection a callback is for is written at the end of that callback. Others sent to
// meanwhile are collected (pending, then deferred). When the loop is busy (this callback
// began within busyGap of the previous one's end) they are written together once the loop
// has run every callback of the events it woke up for: one task per iteration, queued with
// the first deferred connection, runs after them, and a client that eight workers' results
// reach in one iteration gets one write instead of eight. When it is not (a synchronous
// client's round trip, one event at a time) they are written at once: the task would cost
// an eventfd write per hop and coalesce nothing.
type loopState struct {
	index int // the loop's number, from 0, in the order loops saw their first connection
	depth int // callbacks in progress; gnet nests OnClose in a callback whose write failed

	mu      sync.Mutex
	active  bool        // the loop is inside a callback and flushes pending before leaving it
	pending []gnet.Conn // connections with output waiting for that flush
	spare   []gnet.Conn // the other buffer of the pair, reused

	// Loop-only: connections whose output waits for the end of the iteration, and whether
	// the task that writes them is queued.
	deferred    []gnet.Conn
	flushQueued bool
	flushTask   gnet.AsyncCallback // writes deferred; made once per loop
	leftAt      time.Time          // when the last OnTraffic ended
}

// busyGap is how soon after the last callback a callback must begin for the loop to count
// as busy: epoll returned the next events at once, so more callbacks are likely to follow
// in the same iteration. A synchronous round trip's next packet takes a network round trip.
const busyGap = 10 * time.Microsecond

// enter marks the loop as running a callback. Call only from the loop.
func (l *loopState) enter() {
	if l.depth++; l.depth == 1 {
		l.mu.Lock()
		l.active = true
		l.mu.Unlock()
	}
}

// exit ends the outermost callback: the connections sent something during it move from
// pending to deferred. Call only from the loop.
func (l *loopState) exit() {
	l.mu.Lock()
	l.deferred = append(l.deferred, l.pending...)
	clear(l.pending)
	l.pending = l.pending[:0]
	l.active = false
	l.depth = 0
	l.mu.Unlock()
}

// leave ends a callback. The outermost one writes out every connection sent something
// meanwhile, including by the writes themselves (a failed write closes its connection,
// which may requeue jobs and wake workers). Call only from the loop.
func (srv *Server) leave(l *loopState, busy bool) {
	if l.depth > 1 {
		l.depth--
		return
	}
	l.exit()
	switch {
	case len(l.deferred) == 0 || l.flushQueued:
		// Nothing to write, or the queued task writes it.
	case !busy:
		srv.flushDeferred(l)
	default:
		l.flushQueued = true
		if err := l.deferred[0].Wake(l.flushTask); err != nil {
			srv.flushDeferred(l) // the loop cannot queue the task: write them now
		}
	}
}

// flushDeferred writes out the connections whose output waited for the end of the loop's
// iteration, and whatever writing them sends in turn (a failed write closes its connection,
// which may requeue jobs and wake workers). Call only from the loop.
func (srv *Server) flushDeferred(l *loopState) {
	l.flushQueued = false
	for len(l.deferred) > 0 {
		d := l.deferred
		l.deferred = l.spare[:0]
		l.enter()
		for _, c := range d {
			if cn, ok := c.Context().(*conn); ok && srv.flush(cn) {
				_ = c.Close()
			}
		}
		l.exit() // what the writes sent is written in this same pass
		clear(d)
		l.spare = d
	}
}

// conn is what the transport keeps as a gnet connection's context.
type conn struct {
	s       Session
	c       gnet.Conn
	loop    *loopState
	partial partialHold
	source  string // remote address without the port, as the Limiter counted it
}

// Loop is the number of c's event loop: sessions keep per-loop counters with it.
func (c *conn) Loop() int { return c.loop.index }

// Wake flushes c at the end of its loop's current callback if the loop is in one, and
// otherwise wakes the loop.
func (c *conn) Wake() error {
	l := c.loop
	l.mu.Lock()
	if l.active {
		l.pending = append(l.pending, c.c)
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	return c.c.Wake(nil)
}

// New prepares a transport whose connections get their sessions from open.
func New(open Open, cfg Config) *Server {
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = codec.DefaultMaxPacket
	}
	if cfg.MaxPartialBytes == 0 {
		cfg.MaxPartialBytes = DefaultMaxPartialBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Loops <= 0 {
		cfg.Loops = DefaultLoops()
	}
	srv := &Server{open: open, log: cfg.Logger, cfg: cfg, booted: make(chan struct{}), done: make(chan struct{})}
	srv.partial.init(cfg.MaxPartialBytes)
	srv.partial.timed = cfg.ReadTimeout > 0
	return srv
}

// Run listens and serves until Stop; it returns once every loop has exited. It returns an
// error straight away when a listener cannot be opened.
func (srv *Server) Run() error {
	defer close(srv.done)
	addrs := make([]string, len(srv.cfg.Addrs))
	for i, a := range srv.cfg.Addrs {
		addrs[i] = "tcp://" + a
	}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(srv.cfg.Loops),
		gnet.WithReuseAddr(true),
		// One read buffer per loop. gnet's default 64 KiB splits every large packet across
		// reads, and what one read leaves behind is copied to the connection's ring buffer
		// and back out again when the packet is whole.
		gnet.WithReadBufferCap(readBufferCap),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(gnetLogger{srv.log}),
	}
	if srv.cfg.KeepAlive > 0 {
		opts = append(opts, gnet.WithTCPKeepAlive(srv.cfg.KeepAlive))
		if srv.cfg.KeepIntvl > 0 {
			opts = append(opts, gnet.WithTCPKeepInterval(srv.cfg.KeepIntvl))
		}
		if srv.cfg.KeepCount > 0 {
			opts = append(opts, gnet.WithTCPKeepCount(srv.cfg.KeepCount))
		}
	}
	if srv.cfg.ReadTimeout > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go srv.partial.sweepSlow(srv.cfg.ReadTimeout, stop)
	}
	return gnet.Rotate(srv, addrs, opts...)
}

// Ready is closed once the listeners accept connections.
func (srv *Server) Ready() <-chan struct{} { return srv.booted }

// Stop closes the listeners and every connection, waiting at most until ctx is done.
func (srv *Server) Stop(ctx context.Context) error {
	select {
	case <-srv.booted:
	default:
		return errors.New("server not running")
	}
	// gnet's Stop polls for completion every 500 ms; Run returning is the earlier signal.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.eng.Stop(ctx) }()
	select {
	case <-srv.done:
		return nil
	case err := <-stopped:
		return err
	}
}

// OnBoot implements gnet.EventHandler.
func (srv *Server) OnBoot(eng gnet.Engine) gnet.Action {
	srv.eng = eng
	close(srv.booted)
	return gnet.None
}

// OnOpen implements gnet.EventHandler.
func (srv *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	l, ok := srv.loops.Load(c.EventLoop())
	if !ok {
		ls := &loopState{index: int(srv.nloops.Add(1) - 1)} // a loser of LoadOrStore leaves a gap: harmless
		ls.flushTask = func(gnet.Conn, error) error { srv.flushDeferred(ls); return nil }
		l, _ = srv.loops.LoadOrStore(c.EventLoop(), ls)
	}
	cn := &conn{c: c, loop: l.(*loopState), source: connlimit.Source(c.RemoteAddr())}
	if lim := srv.cfg.Limiter; lim != nil && !lim.Acquire(cn.source) {
		return nil, gnet.Close // no context: OnClose has nothing to release
	}
	cn.s = srv.open(cn, c.Fd(), c.RemoteAddr())
	c.SetContext(cn)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (srv *Server) OnClose(c gnet.Conn, _ error) gnet.Action {
	if cn, ok := c.Context().(*conn); ok {
		l := cn.loop
		l.enter()
		c.SetContext(nil)
		srv.partial.release(cn)
		cn.s.Close() // requeues and notifications it causes are flushed by leave
		srv.leave(l, false)
		if lim := srv.cfg.Limiter; lim != nil {
			lim.Release(cn.source)
		}
	}
	return gnet.None
}

// OnTraffic implements gnet.EventHandler: it runs for bytes read and for Wake.
func (srv *Server) OnTraffic(c gnet.Conn) gnet.Action {
	cn, ok := c.Context().(*conn)
	if !ok {
		return gnet.None // a wake-up for a connection that closed meanwhile
	}
	l := cn.loop
	now := time.Now()
	busy := now.Sub(l.leftAt) < busyGap
	l.enter()
	closeConn := false
	if cn.partial.evicted.Load() {
		// Closed by flush below; what it sent is not read any more.
	} else if srv.waitingForBody(c) {
		// Part of a large packet: leave it in gnet's buffer until it is whole, instead of
		// copying the growing prefix out on every read.
	} else if buf, _ := c.Peek(-1); len(buf) > 0 {
		var n int
		n, closeConn = cn.s.FeedAt(buf, now.UnixNano())
		if n > 0 { // gnet's Discard treats n <= 0 as "everything"
			_, _ = c.Discard(n)
			cn.partial.whole()
		}
	}
	srv.partial.hold(cn, c.InboundBuffered())
	if srv.flush(cn) {
		closeConn = true
	}
	srv.leave(l, busy)
	l.leftAt = time.Now()
	if closeConn {
		return gnet.Close
	}
	return gnet.None
}

// flush writes what the session has buffered and reports whether the connection must be
// closed because its peer does not read its replies. Call only from the connection's loop.
func (srv *Server) flush(cn *conn) (closeConn bool) {
	if cn.partial.evicted.Load() {
		if cn.partial.slow.Load() {
			srv.log.Warn("closing connection: its packet has been incomplete for longer than --read-timeout",
				append(cn.s.LogAttrs(), "held", cn.partial.bytes.Load(), "timeout", srv.cfg.ReadTimeout)...)
		} else {
			srv.log.Warn("closing connection: the server's budget for partly received packets is spent and it holds the most",
				append(cn.s.LogAttrs(), "held", cn.partial.bytes.Load(), "budget", srv.cfg.MaxPartialBytes)...)
		}
		return true
	}
	out, overflow := cn.s.TakeOutput()
	if out != nil {
		_, _ = cn.c.Write(out.B)
		cn.s.ReleaseOutput(out)
	}
	if cn.s.Closing() {
		return true // gnet writes what is still buffered before it closes
	}
	if overflow || cn.c.OutboundBuffered() > cn.s.MaxOutbound() {
		srv.log.Warn("closing connection that does not read its replies",
			append(cn.s.LogAttrs(), "buffered", cn.c.OutboundBuffered())...)
		return true
	}
	return false
}

// waitingForBody reports whether the bytes buffered for c are the beginning of one binary
// packet that has not fully arrived yet (and is within the size limit, so that an oversized
// header is still parsed and refused at once).
func (srv *Server) waitingForBody(c gnet.Conn) bool {
	have := c.InboundBuffered()
	if have < codec.HeaderSize {
		return false
	}
	hdr, err := c.Peek(codec.HeaderSize)
	if err != nil {
		return false
	}
	need := codec.PacketLen(hdr)
	return need > have && need-codec.HeaderSize <= int(srv.cfg.MaxPacketSize)
}

// gnetLogger routes gnet's own log lines into slog.
type gnetLogger struct{ l *slog.Logger }

func (l gnetLogger) Debugf(format string, args ...any) {
	l.l.Debug(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Infof(format string, args ...any) {
	l.l.Info(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Warnf(format string, args ...any) {
	l.l.Warn(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Errorf(format string, args ...any) {
	l.l.Error(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Fatalf(format string, args ...any) {
	l.l.Error(fmt.Sprintf(format, args...), "component", "gnet")
}
