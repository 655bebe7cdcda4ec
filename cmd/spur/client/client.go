// Package client is a small synchronous Gearman client: one connection, one request at a
// time, for command-line tools (the spur CLI and its importer), not for throughput.
//
// It speaks both protocols of the Gearman port, which share one connection:
//
//   - binary packets (gearman-spec.md sections 1 and 2), framed and split by package codec:
//     submitting jobs (Submit, SubmitBackground), asking their status (GetStatus), and the
//     worker's loop (Worker);
//
//   - text admin lines (section 4) through Admin, which knows which commands answer one line
//     and which a list ending in ".":
//
//     status, prioritystatus, workers, show ...   a list: lines, then ".\n"
//     everything else (maxqueue, cancel, pause,   one line: "OK[ value]" or "ERR CODE text"
//     limit, schedule ..., version, ...)
//
// Every server refusal, an ERROR packet or an ERR line, is a *ServerError; every failure of
// the connection itself (refused, reset, timed out) is a *ConnError. A Client is not safe
// for concurrent use, except Interrupt, which any goroutine may call.
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// Options say how to reach the server.
type Options struct {
	// TLS makes the connection speak TLS (gearmand's --ssl). CAFile verifies the server's
	// certificate (the system roots without it); CertFile and KeyFile are a client
	// certificate for servers that ask for one.
	TLS                       bool
	CAFile, CertFile, KeyFile string
	// Timeout bounds the connect and every wait for the server's answer to a request
	// (0: no limit). Waits for a job's result or for work are not bounded by it.
	Timeout time.Duration
}

// ServerError is the server's refusal of a request: an ERROR packet, or an admin ERR line
// (whose '+'-joined words are given back with spaces).
type ServerError struct {
	Code string
	Text string
}

func (e *ServerError) Error() string {
	if e.Text == "" {
		return e.Code
	}
	return e.Code + ": " + e.Text
}

// UnknownCommand reports whether the server does not have the admin command it was sent:
// gearmand answers Spur's own commands so.
func (e *ServerError) UnknownCommand() bool {
	return e.Code == "UNKNOWN_COMMAND" || e.Code == "UNKNOWN_SHOW_ARGUMENTS"
}

// ConnError is a failure to reach the server or to keep talking to it.
type ConnError struct {
	Op  string // "dial", "write", "read"
	Err error
}

func (e *ConnError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *ConnError) Unwrap() error { return e.Err }

// Timeout reports whether the server did not answer in time.
func (e *ConnError) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Client is one connection to a Gearman server.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	wbuf    []byte
	timeout time.Duration
	hdr     [codec.HeaderSize]byte
}

// Dial connects to addr (host:port).
func Dial(addr string, o Options) (*Client, error) {
	conn, err := DialConn(context.Background(), addr, o)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), timeout: o.Timeout}, nil
}

// DialConn connects to addr as Dial does (TLS, its certificates and Timeout) and returns
// the bare connection, for code that speaks the protocol itself (the cluster view). A
// failure to connect is a *ConnError; bad certificate files are not.
func DialConn(ctx context.Context, addr string, o Options) (net.Conn, error) {
	d := net.Dialer{Timeout: o.Timeout}
	var conn net.Conn
	var err error
	if o.TLS {
		cfg, cerr := tlsConfig(addr, o)
		if cerr != nil {
			return nil, cerr
		}
		conn, err = (&tls.Dialer{NetDialer: &d, Config: cfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, &ConnError{"dial", err}
	}
	return conn, nil
}

func tlsConfig(addr string, o Options) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ssl-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ssl-ca-file %s: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Interrupt makes a read blocked in another goroutine return at once (with a *ConnError
// whose Timeout is true). Safe for concurrent use.
func (c *Client) Interrupt() { _ = c.conn.SetReadDeadline(time.Now()) }

// IsListCommand reports whether the admin command line is answered with a list ending in
// "." rather than one line.
func IsListCommand(line string) bool {
	word, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch strings.ToLower(word) {
	case "status", "prioritystatus", "workers", "show":
		return true
	}
	return false
}

// Admin sends one admin command line and returns its reply: the list's lines without the
// final ".", or the single line ("OK", "OK 1.1.20") without its line ending. An ERR reply is
// a *ServerError.
func (c *Client) Admin(line string) ([]string, error) {
	if err := c.write(append(c.wbuf[:0], line+"\r\n"...)); err != nil {
		return nil, err
	}
	first, err := c.readLine(true)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(first, "ERR ") || first == "ERR" {
		code, text, _ := strings.Cut(strings.TrimPrefix(first, "ERR "), " ")
		return nil, &ServerError{Code: code, Text: strings.ReplaceAll(text, "+", " ")}
	}
	if !IsListCommand(line) {
		return []string{first}, nil
	}
	var lines []string
	for l := first; l != "."; {
		lines = append(lines, l)
		if l, err = c.readLine(true); err != nil {
			return nil, err
		}
	}
	return lines, nil
}

// readLine reads one text line, without "\n" or "\r\n".
func (c *Client) readLine(bounded bool) (string, error) {
	c.deadline(bounded)
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", &ConnError{"read", eofMeansClosed(err)}
	}
	return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r"), nil
}

func eofMeansClosed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the server closed the connection")
	}
	return err
}

func (c *Client) deadline(bounded bool) {
	if bounded && c.timeout > 0 {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	} else {
		_ = c.conn.SetReadDeadline(time.Time{})
	}
}

func (c *Client) write(b []byte) error {
	c.wbuf = b[:0]
	if c.timeout > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	if _, err := c.conn.Write(b); err != nil {
		return &ConnError{"write", err}
	}
	return nil
}

// send writes one request packet.
func (c *Client) send(t codec.Type, args ...[]byte) error {
	return c.write(codec.AppendRequest(c.wbuf[:0], t, args...))
}

// packet is one response, its arguments copied out of the read buffer.
type packet struct {
	typ  codec.Type
	args [][]byte
}

func (p *packet) arg(i int) []byte {
	if i < len(p.args) {
		return p.args[i]
	}
	return nil
}

// recv reads one binary packet. bounded applies the request timeout; an ERROR packet is
// returned as a *ServerError.
func (c *Client) recv(bounded bool) (packet, error) {
	c.deadline(bounded)
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return packet{}, &ConnError{"read", eofMeansClosed(err)}
	}
	n := codec.PacketLen(c.hdr[:])
	if n == 0 {
		return packet{}, &ConnError{"read", fmt.Errorf("not a Gearman response (starts %q)", c.hdr[:])}
	}
	buf := make([]byte, n)
	copy(buf, c.hdr[:])
	if _, err := io.ReadFull(c.r, buf[codec.HeaderSize:]); err != nil {
		return packet{}, &ConnError{"read", eofMeansClosed(err)}
	}
	p, used, err := codec.Parse(buf, uint32(n))
	if err != nil || used != n {
		return packet{}, &ConnError{"read", fmt.Errorf("malformed packet: %v", err)}
	}
	out := packet{typ: p.Type, args: make([][]byte, p.NArgs)}
	copy(out.args, p.Args[:p.NArgs]) // they alias buf, which is this packet's alone
	if p.Type == codec.Error {
		return out, &ServerError{Code: string(out.arg(0)), Text: string(out.arg(1))}
	}
	return out, nil
}

// Option sends OPTION_REQ name; false when the server does not know the option.
func (c *Client) Option(name string) (bool, error) {
	if err := c.send(codec.OptionReq, []byte(name)); err != nil {
		return false, err
	}
	p, err := c.recv(true)
	var se *ServerError
	if errors.As(err, &se) && se.Code == codec.CodeUnknownOption {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if p.typ != codec.OptionRes {
		return false, unexpected(p, "OPTION_RES")
	}
	return true, nil
}

func unexpected(p packet, want string) error {
	return &ConnError{"read", fmt.Errorf("got %s, want %s", p.typ, want)}
}
