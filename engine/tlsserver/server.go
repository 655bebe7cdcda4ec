// Package tlsserver is Spur's TLS transport: a crypto/tls listener (gnet has no TLS) that
// drives the same sessions as the plain transport, through tcpserver's Session and Waker
// interfaces. Like tcpserver it imports nothing of the engine.
//
// Each connection has three goroutines:
//
//	accept ──► serve: handshake (deadline HandshakeTimeout) ──► session opened
//	reader:  tls.Conn.Read ──chunk──► serve ──ack──► reader reads again
//	serve:   Feed, TakeOutput (the session's single-threaded contract), wake-ups
//	writer:  tls.Conn.Write of what serve queued ──done──► serve
//
// serve alone calls Feed and TakeOutput; the reader waits for each chunk to be consumed
// before reading the next, so a connection holds at most one read chunk plus the incomplete
// packet it is sending, which is capped at MaxPacketSize plus a header, and all connections
// together at MaxPartialBytes. What serve has taken from the session but the writer has not
// written yet is capped at the session's MaxOutbound, as gnet's outbound buffer is.
package tlsserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/connlimit"
	"github.com/spur-gearman/spur/engine/tcpserver"
)

// Open makes the session of a new connection whose handshake succeeded. names are the
// verified names of the client's certificate (see PeerNames); nil without one.
type Open func(w tcpserver.Waker, fd int, remote net.Addr, names []string) tcpserver.Session

// DefaultHandshakeTimeout is how long a new connection has to complete its handshake.
const DefaultHandshakeTimeout = 5 * time.Second

// closeWriteTimeout bounds how long a closing connection waits for its last output.
const closeWriteTimeout = 5 * time.Second

// readChunk is the bytes read at once: a TLS record carries at most 16 KiB.
const readChunk = 32 << 10

// Config says where and how the transport listens.
type Config struct {
	Addrs            []string // host:port each; "" host = every address
	Keys             *Keys
	HandshakeTimeout time.Duration // 0 = DefaultHandshakeTimeout
	MaxPacketSize    uint32        // 0 = codec.DefaultMaxPacket
	// MaxPartialBytes bounds the bytes of incomplete packets all connections hold together;
	// a connection whose read would pass it is closed. 0 = tcpserver.DefaultMaxPartialBytes.
	MaxPartialBytes int64
	// Limiter caps the connections accepted, counted with the plaintext listener's when
	// they share one; nil = none. A refused connection is closed before its handshake.
	Limiter *connlimit.Limiter
	// ReadTimeout closes a connection whose packet has been incomplete for this long (no
	// packet of its arrived whole since its first byte: slowloris); 0 = never. An idle
	// connection holds no packet and is never closed.
	ReadTimeout time.Duration
	Logger      *slog.Logger
}

// Server serves sessions over TLS.
type Server struct {
	open Open
	cfg  Config
	log  *slog.Logger

	listeners []net.Listener
	partial   atomic.Int64 // bytes of incomplete packets held by all connections

	mu      sync.Mutex
	conns   map[*conn]struct{}
	stopped bool
	wg      sync.WaitGroup // accept loops and connection goroutines
}

// New prepares a transport whose connections get their sessions from open.
func New(open Open, cfg Config) *Server {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = codec.DefaultMaxPacket
	}
	if cfg.MaxPartialBytes == 0 {
		cfg.MaxPartialBytes = tcpserver.DefaultMaxPartialBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{open: open, cfg: cfg, log: cfg.Logger, conns: make(map[*conn]struct{})}
}

// Listen opens every listener and starts accepting; it returns at once. On an error no
// listener stays open.
func (srv *Server) Listen() error {
	if srv.cfg.Keys == nil {
		return errors.New("tlsserver: no key material")
	}
	for _, a := range srv.cfg.Addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range srv.listeners {
				l.Close()
			}
			srv.listeners = nil
			return err
		}
		srv.listeners = append(srv.listeners, l)
	}
	for _, l := range srv.listeners {
		srv.wg.Add(1)
		go srv.accept(l)
	}
	return nil
}

// Addrs are the addresses listened on (with the ports chosen for ":0").
func (srv *Server) Addrs() []net.Addr {
	as := make([]net.Addr, len(srv.listeners))
	for i, l := range srv.listeners {
		as[i] = l.Addr()
	}
	return as
}

// Stop closes the listeners and every connection, and waits for their goroutines (and so
// for every session's Close) at most until ctx is done.
func (srv *Server) Stop(ctx context.Context) error {
	srv.mu.Lock()
	srv.stopped = true
	for _, l := range srv.listeners {
		l.Close()
	}
	for c := range srv.conns {
		c.nc.Close()
	}
	srv.mu.Unlock()
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (srv *Server) accept(l net.Listener) {
	defer srv.wg.Done()
	for {
		nc, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				srv.log.Warn("tls: accept failed; retrying", "error", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			srv.log.Error("tls: accept failed; listener stopped", "addr", l.Addr().String(), "error", err)
			return
		}
		if tcp, ok := nc.(*net.TCPConn); ok {
			_ = tcp.SetNoDelay(true)
		}
		source := connlimit.Source(nc.RemoteAddr())
		if lim := srv.cfg.Limiter; lim != nil && !lim.Acquire(source) {
			nc.Close()
			continue
		}
		c := &conn{srv: srv, nc: nc, source: source, wake: make(chan struct{}, 1)}
		srv.mu.Lock()
		if srv.stopped {
			srv.mu.Unlock()
			nc.Close()
			c.release()
			return
		}
		srv.conns[c] = struct{}{}
		srv.wg.Add(1)
		srv.mu.Unlock()
		go c.serve()
	}
}

// conn is one TLS connection.
type conn struct {
	srv    *Server
	nc     net.Conn
	source string // remote address without the port, as the Limiter counted it
	tc     *tls.Conn
	s      tcpserver.Session
	wake   chan struct{} // capacity 1: a pending wake-up

	held int64 // bytes of an incomplete packet in pending; counted in srv.partial
}

// Wake implements tcpserver.Waker: it never blocks.
func (c *conn) Wake() error {
	select {
	case c.wake <- struct{}{}:
	default: // one is pending already
	}
	return nil
}

func (c *conn) serve() {
	srv := c.srv
	defer srv.wg.Done()
	defer func() {
		srv.mu.Lock()
		delete(srv.conns, c)
		srv.mu.Unlock()
		c.release()
	}()
	remote := c.nc.RemoteAddr()
	c.tc = tls.Server(c.nc, srv.cfg.Keys.Config())
	ctx, cancel := context.WithTimeout(context.Background(), srv.cfg.HandshakeTimeout)
	err := c.tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		srv.log.Info("tls: handshake failed; connection dropped", "remote", remote.String(), "error", err)
		c.nc.Close()
		return
	}
	c.s = srv.open(c, fdOf(c.nc), remote, PeerNames(c.tc.ConnectionState()))
	c.run()
	c.nc.Close()
	srv.partial.Add(-c.held)
	c.s.Close()
}

// release gives the connection's place in the Limiter back.
func (c *conn) release() {
	if lim := c.srv.cfg.Limiter; lim != nil {
		lim.Release(c.source)
	}
}

// fdOf is the socket's descriptor, shown by the `workers` command; -1 when unknown.
func fdOf(nc net.Conn) int {
	fd := -1
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(f uintptr) { fd = int(f) })
		}
	}
	return fd
}

// run is the connection's loop; it returns when the connection is to be closed, with its
// last output written (or given up on).
func (c *conn) run() {
	data := make(chan []byte)
	ack := make(chan struct{})
	quit := make(chan struct{})
	readDone := make(chan struct{})
	go c.read(data, ack, quit, readDone)
	writes := make(chan []byte)
	written := make(chan []byte)
	writeErr := make(chan error, 1)
	writeDone := make(chan struct{})
	go c.write(writes, written, writeErr, writeDone)
	var inFlight int // bytes the writer is writing; 0 = it is idle
	defer func() {
		close(quit)
		close(writes)
		if inFlight == 0 {
			_ = c.tc.Close() // with a close_notify: the writer is idle
		} else {
			c.nc.Close() // unblocks a writer stuck on a peer that does not read
		}
		c.nc.Close() // and the reader
		<-readDone
		<-writeDone
	}()

	var (
		pending []byte // an incomplete packet carried over between reads
		queued  []byte // output taken from the session, not handed to the writer yet
		spare   []byte // the writer's other buffer, while it is not writing
		closing bool   // the connection ends once its output is written
	)
	maxHeld := int64(c.srv.cfg.MaxPacketSize) + codec.HeaderSize
	var slow <-chan time.Time // fires ReadTimeout after the incomplete packet began
	var slowTimer *time.Timer
	defer func() {
		if slowTimer != nil {
			slowTimer.Stop()
		}
	}()
	// handOff gives the writer what is queued, when it is idle.
	handOff := func() {
		if inFlight == 0 && len(queued) > 0 {
			inFlight = len(queued)
			writes <- queued
			queued, spare = spare[:0], nil
		}
	}
	for {
		select {
		case b := <-data:
			if b == nil {
				return // the peer closed, or reading failed
			}
			if closing {
				ack <- struct{}{}
				break
			}
			buf := b
			if len(pending) > 0 {
				pending = append(pending, b...)
				buf = pending
			}
			n, closeConn := c.s.FeedAt(buf, time.Now().UnixNano())
			rest := buf[n:]
			if len(pending) > 0 {
				pending = pending[:copy(pending, rest)]
			} else {
				pending = append(pending, rest...) // b goes back to the reader
			}
			ack <- struct{}{}
			if closeConn {
				closing = true
			}
			if !c.hold(int64(len(pending)), maxHeld) {
				return
			}
			if n > 0 || len(pending) == 0 { // a packet arrived whole, or none is begun
				if slowTimer != nil {
					slowTimer.Stop()
				}
				slow = nil
			}
			if len(pending) > 0 && slow == nil && c.srv.cfg.ReadTimeout > 0 {
				slowTimer = time.NewTimer(c.srv.cfg.ReadTimeout)
				slow = slowTimer.C
			}
		case <-slow:
			c.srv.log.Warn("closing connection: its packet has been incomplete for longer than --read-timeout",
				append(c.s.LogAttrs(), "held", c.held, "timeout", c.srv.cfg.ReadTimeout)...)
			return
		case <-c.wake:
		case b := <-written:
			inFlight, spare = 0, b
		case err := <-writeErr:
			c.srv.log.Info("tls: write failed; connection closed", append(c.s.LogAttrs(), "error", err)...)
			return
		}
		out, overflow := c.s.TakeOutput()
		if out != nil {
			queued = append(queued, out.B...)
			c.s.ReleaseOutput(out)
		}
		if overflow || len(queued)+inFlight > c.s.MaxOutbound() {
			c.srv.log.Warn("closing connection that does not read its replies",
				append(c.s.LogAttrs(), "buffered", len(queued)+inFlight)...)
			return
		}
		if c.s.Closing() {
			closing = true
		}
		handOff()
		if closing && inFlight == 0 {
			return
		}
		if closing {
			_ = c.nc.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
		}
	}
}

// hold records that the connection now holds n bytes of an incomplete packet, and reports
// false when that is more than one packet may be or than the server's budget has left.
func (c *conn) hold(n, maxHeld int64) bool {
	delta := n - c.held
	if delta == 0 {
		return true
	}
	c.held = n
	total := c.srv.partial.Add(delta)
	switch {
	case n > maxHeld:
		c.srv.log.Warn("closing connection: its incomplete packet or line is longer than --max-packet-size",
			append(c.s.LogAttrs(), "held", n)...)
		return false
	case delta > 0 && total > c.srv.cfg.MaxPartialBytes:
		c.srv.log.Warn("closing connection: the server's budget for partly received packets is spent",
			append(c.s.LogAttrs(), "held", n, "budget", c.srv.cfg.MaxPartialBytes)...)
		return false
	}
	return true
}

// read hands what arrives to run, one chunk at a time: the chunk is reused once run has
// acknowledged it.
func (c *conn) read(data chan<- []byte, ack, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, readChunk)
	for {
		n, err := c.tc.Read(buf)
		if n > 0 {
			select {
			case data <- buf[:n]:
			case <-quit:
				return
			}
			select {
			case <-ack:
			case <-quit:
				return
			}
		}
		if err != nil {
			select {
			case data <- nil: // run ends the connection
			case <-quit:
			}
			return
		}
	}
}

// write writes what run hands it and hands each buffer back; it ends when writes is closed.
func (c *conn) write(writes <-chan []byte, written chan<- []byte, failed chan<- error, done chan<- struct{}) {
	defer close(done)
	for b := range writes {
		if _, err := c.tc.Write(b); err != nil {
			failed <- err
			for range writes { // run stops handing over once it has seen the error
			}
			return
		}
		select {
		case written <- b:
		case _, ok := <-writes:
			if !ok {
				return
			}
		}
	}
}
