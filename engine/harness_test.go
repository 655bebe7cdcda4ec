package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/tcpserver"
)

// startServer runs an engine with cfg behind gnet on an ephemeral loopback port and returns
// its address. The server stops when the test ends.
func startServer(t testing.TB, cfg Config) string {
	t.Helper()
	return startServerLoops(t, cfg, 2)
}

// startServerLoops is startServer with the given number of event loops.
func startServerLoops(t testing.TB, cfg Config, loops int) string {
	t.Helper()
	_, addr := startEngine(t, cfg, loops)
	return addr
}

// startEngine is startServerLoops returning the engine too.
func startEngine(t testing.TB, cfg Config, loops int) (*Engine, string) {
	t.Helper()
	if cfg.Logger == nil {
		level := slog.LevelError
		if os.Getenv("SPUR_TEST_LOG") != "" {
			level = slog.LevelDebug
		}
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = "H:test"
	}
	e := New(cfg)
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		srv := tcpserver.New(openSessions(e), tcpserver.Config{Addrs: []string{addr}, Loops: loops,
			MaxPacketSize: e.cfg.MaxPacketSize, Logger: e.log})
		errc := make(chan error, 1)
		go func() { errc <- srv.Run() }()
		select {
		case err := <-errc:
			if attempt < 5 {
				continue // the port was taken between probing and listening
			}
			t.Fatalf("server did not start: %v", err)
		case <-srv.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("server did not start within 10s")
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Stop(ctx)
			<-errc
		})
		return e, addr
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// client is a raw protocol connection for tests.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// send writes a request packet with args joined by NUL.
func (c *client) send(typ codec.Type, args ...string) {
	c.t.Helper()
	c.write(request(typ, args...))
}

// request encodes a request packet with string arguments.
func request(typ codec.Type, args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return codec.AppendRequest(nil, typ, bs...)
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// packet is a response read back from the server.
type packet struct {
	typ  codec.Type
	args []string
	body []byte
}

func (p packet) String() string { return fmt.Sprintf("%s%q", p.typ, p.args) }

// recv reads one response packet and splits its body by the type's layout.
func (c *client) recv() packet {
	c.t.Helper()
	p, err := c.tryRecv(5 * time.Second)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return p
}

func (c *client) tryRecv(timeout time.Duration) (packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.conn.SetReadDeadline(time.Time{})
	return readPacket(c.r)
}

// readPacket reads one response packet from r and splits its body by the type's layout.
func readPacket(r *bufio.Reader) (packet, error) {
	var hdr [codec.HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return packet{}, err
	}
	if !bytes.Equal(hdr[:4], codec.MagicRes[:]) {
		return packet{}, fmt.Errorf("bad response magic %q", hdr[:4])
	}
	typ := codec.Type(binary.BigEndian.Uint32(hdr[4:8]))
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	if _, err := io.ReadFull(r, body); err != nil {
		return packet{}, err
	}
	p := packet{typ: typ, body: body}
	if spec, ok := codec.Spec(typ); ok && spec.Args > 0 {
		p.args = strings.SplitN(string(body), "\x00", spec.Args)
	}
	return p, nil
}

// expect reads one packet and checks its type and arguments.
func (c *client) expect(typ codec.Type, args ...string) packet {
	c.t.Helper()
	p := c.recv()
	if p.typ != typ || (args != nil && strings.Join(p.args, "\x00") != strings.Join(args, "\x00")) {
		c.t.Fatalf("got %v, want %s%q", p, typ, args)
	}
	return p
}

// expectNothing checks that no packet arrives within d.
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	if p, err := c.tryRecv(d); err == nil {
		c.t.Fatalf("unexpected packet %v", p)
	}
}

// expectClosed checks that the server closes the connection (reading what it sent first).
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c.r); err != nil {
		c.t.Fatalf("connection not closed: %v", err)
	}
}

// admin sends a text command and returns the reply: one line, or up to ".\n" for lists.
func (c *client) admin(line string) string {
	c.t.Helper()
	c.write([]byte(line + "\r\n"))
	return c.readAdmin()
}

// expectAdmin sends an admin line and fails unless the reply is want.
func (c *client) expectAdmin(line, want string) {
	c.t.Helper()
	if got := c.admin(line); got != want {
		c.t.Fatalf("%s: got %q, want %q", line, got, want)
	}
}

func (c *client) readAdmin() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.conn.SetReadDeadline(time.Time{})
	var out strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			c.t.Fatalf("admin reply %q: %v", out.String(), err)
		}
		if out.Len() == len(line) && (strings.HasPrefix(line, "OK") || strings.HasPrefix(line, "ERR")) {
			return out.String()
		}
		if line == ".\n" {
			return out.String()
		}
	}
}

// submit sends a submit packet and returns the handle from JOB_CREATED.
func (c *client) submit(typ codec.Type, fn, unique, data string) string {
	c.t.Helper()
	c.send(typ, fn, unique, data)
	return c.expect(codec.JobCreated).args[0]
}

// worker registers fns with CAN_DO.
func (c *client) canDo(fns ...string) {
	c.t.Helper()
	for _, fn := range fns {
		c.send(codec.CanDo, fn)
	}
}

// grab sends GRAB_JOB_UNIQ and returns the JOB_ASSIGN_UNIQ (handle, fn, unique, data), or
// fails on NO_JOB.
func (c *client) grab() (handle, fn, unique, data string) {
	c.t.Helper()
	c.send(codec.GrabJobUniq)
	p := c.expect(codec.JobAssignUniq)
	return p.args[0], p.args[1], p.args[2], p.args[3]
}

// rawPacket builds a binary packet byte for byte: any magic, any type, any body (the body is
// sent as is, so it may hold too few NULs or a length the type does not expect).
func rawPacket(magic [4]byte, typ uint32, body []byte) []byte {
	b := make([]byte, 0, codec.HeaderSize+len(body))
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// expectBody reads one packet and checks its type and its exact body bytes.
func (c *client) expectBody(typ codec.Type, body string) packet {
	c.t.Helper()
	p := c.recv()
	if p.typ != typ || string(p.body) != body {
		c.t.Fatalf("got %s body %q, want %s body %q", p.typ, p.body, typ, body)
	}
	return p
}

// syncEcho round-trips an ECHO_REQ with a fresh payload and checks that ECHO_RES is the very
// next packet. Replies on a connection are ordered, so this proves that everything sent
// before it was processed without a reply, and that the connection and server still work.
func (c *client) syncEcho() {
	c.t.Helper()
	data := fmt.Sprintf("sync-%d\x00%p", time.Now().UnixNano(), c)
	c.send(codec.EchoReq, data)
	c.expectBody(codec.EchoRes, data)
}

// ---------------------------------------------------------------------------------------
// Helpers added for semantics_test.go and admin_test.go.

// expectErrorPacket reads one packet and checks it is ERROR code\0text.
func (c *client) expectErrorPacket(code, text string) {
	c.t.Helper()
	c.expect(codec.Error, code, text)
}

// jobStatus sends GET_STATUS and returns the STATUS_RES arguments
// (handle, known, running, numerator, denominator).
func (c *client) jobStatus(handle string) []string {
	c.t.Helper()
	c.send(codec.GetStatus, handle)
	return c.expect(codec.StatusRes).args
}

// waitAdmin polls an admin command on c until it answers want, failing after 5s with the
// last reply. Use it to wait for the server to notice a disconnect.
func waitAdmin(t testing.TB, c *client, cmd, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := c.admin(cmd)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %q, want %q (waited 5s)", cmd, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// floodThenEcho writes pkts followed by an ECHO_REQ in one stream (from another goroutine,
// so that the replies can be read meanwhile) and reads, discarding every other reply, until
// that ECHO_RES is back: everything before it has been processed.
func (c *client) floodThenEcho(pkts []byte) {
	c.t.Helper()
	data := fmt.Sprintf("flood-%d\x00%p", time.Now().UnixNano(), c)
	stream := append(pkts, request(codec.EchoReq, data)...)
	go func() { _, _ = c.conn.Write(stream) }()
	for {
		p, err := c.tryRecv(60 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for the ECHO behind a flood: %v", err)
		}
		if p.typ == codec.EchoRes && string(p.body) == data {
			return
		}
	}
}

// openSessions is the engine's side of the TCP transport, as cmd/spurd wires it.
func openSessions(e *Engine) tcpserver.Open {
	return func(w tcpserver.Waker, fd int, remote net.Addr) tcpserver.Session { return e.NewSession(w, fd, remote) }
}
