package tcpserver

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/connlimit"
)

// echoSession answers ECHO_REQ and ignores every other packet: enough of a server to test
// the transport.
type echoSession struct {
	w   Waker
	mu  sync.Mutex
	out *bytebufferpool.ByteBuffer
}

func (s *echoSession) FeedAt(buf []byte, _ int64) (int, bool) {
	consumed := 0
	for {
		p, n, err := codec.Parse(buf[consumed:], 0)
		if err != nil {
			return consumed, true
		}
		if n == 0 {
			return consumed, false
		}
		consumed += n
		if p.Type == codec.EchoReq {
			s.mu.Lock()
			if s.out == nil {
				s.out = &bytebufferpool.ByteBuffer{}
			}
			s.out.B = codec.AppendPacket(s.out.B, codec.EchoRes, p.Args[0])
			s.mu.Unlock()
		}
	}
}

func (s *echoSession) TakeOutput() (*bytebufferpool.ByteBuffer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.out
	s.out = nil
	return out, false
}

func (s *echoSession) ReleaseOutput(*bytebufferpool.ByteBuffer) {}
func (s *echoSession) MaxOutbound() int                         { return 1 << 20 }
func (s *echoSession) Close()                                   {}
func (s *echoSession) LogAttrs() []any                          { return nil }
func (s *echoSession) Closing() bool                            { return false }

func startEcho(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg.Addrs = []string{addr}
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv := New(func(w Waker, _ int, _ net.Addr) Session { return &echoSession{w: w} }, cfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Run() }()
	select {
	case err := <-errc:
		t.Fatalf("server did not start: %v", err)
	case <-srv.Ready():
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
		<-errc
	})
	return srv, addr
}

// halfSent opens a connection and sends the header of an ECHO_REQ announcing size bytes and
// then sent of them.
func halfSent(t *testing.T, addr string, size, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hdr := append(codec.MagicReq[:0:0], codec.MagicReq[:]...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(codec.EchoReq))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(size))
	if _, err := c.Write(append(hdr, make([]byte, sent)...)); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitHeld(t *testing.T, srv *Server, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.partial.total.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("held %d bytes of partial packets, want %d", srv.partial.total.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func closedByServer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF
}

func echoWorks(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write(codec.AppendRequest(nil, codec.EchoReq, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, codec.HeaderSize+1)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("ECHO after the eviction: %v", err)
	}
}

// The bytes of packets still arriving, over all connections, stay within the budget: past it
// the connection holding the most is closed and the others go on.
func TestPartialPacketBudget(t *testing.T) {
	const budget = 1 << 20
	srv, addr := startEcho(t, Config{Loops: 2, MaxPacketSize: budget, MaxPartialBytes: budget})
	hdr := int64(codec.HeaderSize)
	big := halfSent(t, addr, 900<<10, 600<<10)
	waitHeld(t, srv, hdr+600<<10)
	small := halfSent(t, addr, 200<<10, 100<<10)
	waitHeld(t, srv, 2*hdr+700<<10)
	// This one pushes the total to 1.1 MiB: the biggest holder goes.
	third := halfSent(t, addr, 500<<10, 400<<10)
	if !closedByServer(big, 2*time.Second) {
		t.Fatal("the connection holding the most was not closed")
	}
	waitHeld(t, srv, 2*hdr+500<<10)
	// The others finish their packets (within the budget) and are served.
	for _, c := range []struct {
		conn       net.Conn
		size, rest int
	}{{small, 200 << 10, 100 << 10}, {third, 500 << 10, 100 << 10}} {
		if _, err := c.conn.Write(make([]byte, c.rest)); err != nil {
			t.Fatal(err)
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c.conn, make([]byte, codec.HeaderSize+c.size)); err != nil {
			t.Fatalf("completed packet not answered: %v", err)
		}
		echoWorks(t, c.conn)
	}
	waitHeld(t, srv, 0)
}

// Many connections each holding a little: the total never passes the budget for long, and
// what is held is given back when they close.
func TestPartialPacketBudgetManyHolders(t *testing.T) {
	const budget = 1 << 20
	srv, addr := startEcho(t, Config{Loops: 2, MaxPacketSize: budget, MaxPartialBytes: budget})
	var conns []net.Conn
	for i := 0; i < 40; i++ {
		conns = append(conns, halfSent(t, addr, 200<<10, 100<<10))
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.partial.total.Load() > budget {
		if time.Now().After(deadline) {
			t.Fatalf("held %d bytes, budget %d", srv.partial.total.Load(), budget)
		}
		time.Sleep(time.Millisecond)
	}
	open := 0
	for _, c := range conns {
		if !closedByServer(c, 100*time.Millisecond) {
			open++
		}
	}
	if open == 0 || open > budget/(100<<10) {
		t.Fatalf("%d of 40 connections left open, want between 1 and %d", open, budget/(100<<10))
	}
	for _, c := range conns {
		c.Close()
	}
	waitHeld(t, srv, 0)
}

// A connection whose packet stays incomplete past ReadTimeout is closed, even one that
// trickles bytes of it; one that sends nothing (an idle worker) and one that keeps sending
// whole packets stay.
func TestReadTimeoutClosesSlowPackets(t *testing.T) {
	const timeout = 300 * time.Millisecond
	_, addr := startEcho(t, Config{Loops: 1, ReadTimeout: timeout})
	silent := halfSent(t, addr, 100, 10)
	trickle := halfSent(t, addr, 100, 10)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for end := time.Now().Add(3 * timeout); time.Now().Before(end); {
		if _, err := trickle.Write([]byte{0}); err != nil {
			break // closed: what the test wants
		}
		echoWorks(t, busy) // whole packets: it never holds an incomplete one for long
		time.Sleep(timeout / 10)
	}
	if !closedByServer(silent, 2*time.Second) {
		t.Error("a connection silent in the middle of a packet was not closed")
	}
	if !closedByServer(trickle, 2*time.Second) {
		t.Error("a connection trickling one packet's bytes was not closed")
	}
	echoWorks(t, idle)
	echoWorks(t, busy)
}

// The Limiter caps connections: past it a new one is closed at once, and a slot freed by a
// close is given to the next.
func TestConnectionLimit(t *testing.T) {
	lim := connlimit.New(2, 0, slog.New(slog.DiscardHandler))
	_, addr := startEcho(t, Config{Loops: 1, Limiter: lim})
	a, _ := net.Dial("tcp", addr)
	b, _ := net.Dial("tcp", addr)
	defer b.Close()
	echoWorks(t, a)
	echoWorks(t, b)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closedByServer(c, 2*time.Second) {
		t.Fatal("a third connection past a limit of 2 stayed open")
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for lim.Open() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d counted open after a close", lim.Open())
		}
		time.Sleep(time.Millisecond)
	}
	d, _ := net.Dial("tcp", addr)
	defer d.Close()
	echoWorks(t, d)
}
