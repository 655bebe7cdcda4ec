package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/spur-gearman/spur/codec"
)

// ListenConfig says where and how the gnet transport listens.
type ListenConfig struct {
	Addrs     []string      // host:port each; "" host = every address
	Loops     int           // event loops; 0 = one per CPU
	KeepAlive time.Duration // TCP keepalive period; 0 = off
	KeepIntvl time.Duration
	KeepCount int
}

// readBufferCap is the bytes each event loop reads at once (see Run).
const readBufferCap = 1 << 20

// Server runs the engine behind gnet's epoll event loops.
type Server struct {
	gnet.BuiltinEventEngine
	e      *Engine
	cfg    ListenConfig
	booted chan struct{}
	done   chan struct{} // closed when Run returns
	eng    gnet.Engine
	loops  sync.Map // gnet.EventLoop -> *loopState
}

// loopState lets sends made while an event loop runs one of its callbacks be flushed at the
// end of that callback, instead of waking the loop through its eventfd: a wake-up costs a
// syscall, a task allocation and another epoll round, and most wake-ups are of a connection
// on the same loop (a worker's WORK_COMPLETE for its client, a submit's NOOP for a worker).
type loopState struct {
	depth int // callbacks in progress; gnet nests OnClose in a callback whose write failed

	mu      sync.Mutex
	active  bool        // the loop is inside a callback and flushes pending before leaving it
	pending []gnet.Conn // connections with output waiting for that flush
	spare   []gnet.Conn // the other buffer of the pair, reused
}

// enter marks the loop as running a callback. Call only from the loop.
func (l *loopState) enter() {
	if l.depth++; l.depth == 1 {
		l.mu.Lock()
		l.active = true
		l.mu.Unlock()
	}
}

// leave ends a callback. The outermost one writes out every connection sent something
// meanwhile, including by the writes themselves (a failed write closes its connection,
// which may requeue jobs and wake workers). Call only from the loop.
func (srv *Server) leave(l *loopState) {
	if l.depth > 1 {
		l.depth--
		return
	}
	for {
		l.mu.Lock()
		p := l.pending
		if len(p) == 0 {
			l.active = false
			l.depth = 0
			l.mu.Unlock()
			return
		}
		l.pending, l.spare = l.spare[:0], p
		l.mu.Unlock()
		for _, c := range p {
			if s, ok := c.Context().(*Session); ok && srv.flush(c, s) {
				_ = c.Close()
			}
		}
		clear(p)
	}
}

// NewServer prepares a gnet transport for e.
func NewServer(e *Engine, cfg ListenConfig) *Server {
	return &Server{e: e, cfg: cfg, booted: make(chan struct{}), done: make(chan struct{})}
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
		gnet.WithLogger(gnetLogger{srv.e}),
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
		l, _ = srv.loops.LoadOrStore(c.EventLoop(), &loopState{})
	}
	c.SetContext(srv.e.NewSession(&gnetTransport{c: c, loop: l.(*loopState)}, c.Fd(), c.RemoteAddr()))
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (srv *Server) OnClose(c gnet.Conn, _ error) gnet.Action {
	if s, ok := c.Context().(*Session); ok {
		l := s.t.(*gnetTransport).loop
		l.enter()
		c.SetContext(nil)
		s.Close() // requeues and notifications it causes are flushed by leave
		srv.leave(l)
	}
	return gnet.None
}

// OnTraffic implements gnet.EventHandler: it runs for bytes read and for Wake.
func (srv *Server) OnTraffic(c gnet.Conn) gnet.Action {
	s, ok := c.Context().(*Session)
	if !ok {
		return gnet.None // a wake-up for a connection that closed meanwhile
	}
	l := s.t.(*gnetTransport).loop
	l.enter()
	closeConn := false
	if s.waitingForBody(c) {
		// Part of a large packet: leave it in gnet's buffer until it is whole, instead of
		// copying the growing prefix out on every read.
	} else if buf, _ := c.Peek(-1); len(buf) > 0 {
		var n int
		n, closeConn = s.Feed(buf)
		if n > 0 { // gnet's Discard treats n <= 0 as "everything"
			_, _ = c.Discard(n)
		}
	}
	if srv.flush(c, s) {
		closeConn = true
	}
	srv.leave(l)
	if closeConn {
		return gnet.Close
	}
	return gnet.None
}

// flush writes what s has buffered to c and reports whether c must be closed because its
// peer does not read its replies. Call only from c's loop.
func (srv *Server) flush(c gnet.Conn, s *Session) (closeConn bool) {
	out, overflow := s.TakeOutput()
	if out != nil {
		_, _ = c.Write(out.B)
		ReleaseOutput(out)
	}
	if overflow || c.OutboundBuffered() > s.MaxOutbound() {
		srv.e.log.Warn("closing connection that does not read its replies", "conn", s.id, "remote", s.ip,
			"buffered", c.OutboundBuffered())
		return true
	}
	return false
}

// waitingForBody reports whether the bytes buffered for c are the beginning of one binary
// packet that has not fully arrived yet (and is within the size limit, so that an oversized
// header is still parsed and refused at once).
func (s *Session) waitingForBody(c gnet.Conn) bool {
	have := c.InboundBuffered()
	if have < codec.HeaderSize {
		return false
	}
	hdr, err := c.Peek(codec.HeaderSize)
	if err != nil {
		return false
	}
	need := codec.PacketLen(hdr)
	return need > have && need-codec.HeaderSize <= int(s.e.cfg.MaxPacketSize)
}

type gnetTransport struct {
	c    gnet.Conn
	loop *loopState
}

// Wake flushes c at the end of its loop's current callback if the loop is in one, and
// otherwise wakes the loop.
func (t *gnetTransport) Wake() error {
	l := t.loop
	l.mu.Lock()
	if l.active {
		l.pending = append(l.pending, t.c)
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	return t.c.Wake(nil)
}

// gnetLogger routes gnet's own log lines into the engine's slog logger.
type gnetLogger struct{ e *Engine }

func (l gnetLogger) Debugf(format string, args ...any) {
	l.e.log.Debug(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Infof(format string, args ...any) {
	l.e.log.Info(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Warnf(format string, args ...any) {
	l.e.log.Warn(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Errorf(format string, args ...any) {
	l.e.log.Error(fmt.Sprintf(format, args...), "component", "gnet")
}
func (l gnetLogger) Fatalf(format string, args ...any) {
	l.e.log.Error(fmt.Sprintf(format, args...), "component", "gnet")
}
