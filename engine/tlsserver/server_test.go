package tlsserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/tcpserver"
	"github.com/spur-gearman/spur/engine/tlsserver/tlstest"
)

// serverFiles writes a server certificate for cn signed by ca into dir.
func serverFiles(t *testing.T, dir string, ca *tlstest.CA, cn string) Files {
	t.Helper()
	c, k := ca.Issue(t, cn, true, nil)
	return Files{Cert: tlstest.WriteFile(t, filepath.Join(dir, "server.pem"), c), Key: tlstest.WriteFile(t, filepath.Join(dir, "server.key"), k)}
}

// fixture is an engine behind the TLS transport.
type fixture struct {
	srv  *Server
	keys *Keys
	addr string
	ca   *tlstest.CA
	ids  chan engine.Identity // the identity of every session opened
}

func start(t *testing.T, files Files, ca *tlstest.CA, handshake time.Duration) *fixture {
	t.Helper()
	keys, err := LoadKeys(files)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("SPUR_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	e := engine.New(engine.Config{Logger: log})
	f := &fixture{keys: keys, ca: ca, ids: make(chan engine.Identity, 64)}
	f.srv = New(func(w tcpserver.Waker, fd int, remote net.Addr, names []string) tcpserver.Session {
		id := engine.IdentityOf(remote)
		if len(names) > 0 {
			id.Name, id.Names = names[0], names
		}
		f.ids <- id
		return e.NewSessionAs(w, fd, id)
	}, Config{Addrs: []string{"127.0.0.1:0"}, Keys: keys, HandshakeTimeout: handshake, Logger: log})
	if err := f.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	f.addr = f.srv.Addrs()[0].String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return f
}

// gclient speaks Gearman over any connection.
type gclient struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	cs tls.ConnectionState
}

func (f *fixture) dialConfig(t *testing.T, cfg *tls.Config) (*gclient, error) {
	t.Helper()
	pool := f.ca.Pool()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.RootCAs = pool
	cfg.ServerName = "localhost"
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", f.addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &gclient{t: t, c: c, r: bufio.NewReader(c), cs: c.ConnectionState()}, nil
}

func (f *fixture) dial(t *testing.T, cfg *tls.Config) *gclient {
	t.Helper()
	g, err := f.dialConfig(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gclient) send(typ codec.Type, args ...string) {
	g.t.Helper()
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	if _, err := g.c.Write(codec.AppendRequest(nil, typ, bs...)); err != nil {
		g.t.Fatalf("write: %v", err)
	}
}

// tryRecv reads one response packet: its type and arguments.
func (g *gclient) tryRecv() (codec.Type, []string, error) {
	_ = g.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [codec.HeaderSize]byte
	if _, err := io.ReadFull(g.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	typ := codec.Type(binary.BigEndian.Uint32(hdr[4:8]))
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	if _, err := io.ReadFull(g.r, body); err != nil {
		return 0, nil, err
	}
	var args []string
	if spec, ok := codec.Spec(typ); ok && spec.Args > 0 {
		args = strings.SplitN(string(body), "\x00", spec.Args)
	}
	return typ, args, nil
}

func (g *gclient) expect(typ codec.Type) []string {
	g.t.Helper()
	got, args, err := g.tryRecv()
	if err != nil {
		g.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if got != typ {
		g.t.Fatalf("got %s%q, want %s", got, args, typ)
	}
	return args
}

func (g *gclient) echo(data string) {
	g.t.Helper()
	g.send(codec.EchoReq, data)
	if args := g.expect(codec.EchoRes); args[0] != data {
		g.t.Fatalf("echo %q, want %q", args[0], data)
	}
}

func (g *gclient) admin(line string) string {
	g.t.Helper()
	if _, err := g.c.Write([]byte(line + "\r\n")); err != nil {
		g.t.Fatal(err)
	}
	_ = g.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out strings.Builder
	for {
		l, err := g.r.ReadString('\n')
		out.WriteString(l)
		if err != nil {
			g.t.Fatalf("admin %s: %q: %v", line, out.String(), err)
		}
		if l == ".\n" || out.Len() == len(l) && (strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "ERR")) {
			return out.String()
		}
	}
}

func TestRoundTripAndAdminOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	f := start(t, serverFiles(t, t.TempDir(), ca, "spur-server"), ca, 0)
	worker := f.dial(t, nil)
	if v := worker.cs.Version; v < tls.VersionTLS12 {
		t.Fatalf("negotiated TLS version %x", v)
	}
	worker.send(codec.CanDo, "reverse")
	worker.echo("sync") // CAN_DO has no reply: wait until it was read
	client := f.dial(t, nil)
	client.send(codec.SubmitJob, "reverse", "", "hello")
	handle := client.expect(codec.JobCreated)[0]
	worker.send(codec.GrabJobUniq)
	a := worker.expect(codec.JobAssignUniq)
	if a[0] != handle || a[1] != "reverse" || a[3] != "hello" {
		t.Fatalf("JOB_ASSIGN_UNIQ %q for %s", a, handle)
	}
	worker.send(codec.WorkComplete, handle, "olleh")
	if r := client.expect(codec.WorkComplete); r[0] != handle || r[1] != "olleh" {
		t.Fatalf("WORK_COMPLETE %q", r)
	}
	if st := client.admin("status"); !strings.Contains(st, "reverse\t0\t0\t1\n") {
		t.Fatalf("status over TLS: %q", st)
	}
	for range 2 { // the worker's and the client's
		if id := <-f.ids; id.Name != "" || id.IP != "127.0.0.1" || !id.Loopback {
			t.Fatalf("identity without a client certificate: %+v", id)
		}
	}
}

func TestSessionResumption(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	f := start(t, serverFiles(t, t.TempDir(), ca, "spur-server"), ca, 0)
	cache := tls.NewLRUClientSessionCache(4)
	for i := range 3 {
		g := f.dial(t, &tls.Config{ClientSessionCache: cache})
		g.echo("x") // TLS 1.3 tickets arrive after the handshake: read something
		if resumed := g.cs.DidResume; resumed != (i > 0) {
			t.Fatalf("connection %d: resumed %v", i, resumed)
		}
		g.c.Close()
	}
}

func TestPlaintextClientGetsNothing(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	f := start(t, serverFiles(t, t.TempDir(), ca, "spur-server"), ca, 0)
	for _, plain := range [][]byte{[]byte("status\r\n"), codec.AppendRequest(nil, codec.EchoReq, []byte("hi"))} {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(plain)
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("plaintext %q: not closed by the server: %v", plain, err)
		}
		if bytes.Contains(got, []byte("hi")) || bytes.Contains(got, []byte("\n")) {
			t.Fatalf("plaintext %q was answered in plaintext: %q", plain, got)
		}
	}
	f.dial(t, nil).echo("still serving")
}

func TestSilentConnectionDroppedAfterHandshakeTimeout(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	f := start(t, serverFiles(t, t.TempDir(), ca, "spur-server"), ca, 300*time.Millisecond)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: read %v, want EOF from the server closing it", err)
	}
	if d := time.Since(began); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("dropped after %v, want about the 300ms handshake timeout", d)
	}
	f.dial(t, nil).echo("still serving")
}

func TestReloadKeepsConnectionsAndServesNewCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	dir := t.TempDir()
	files := serverFiles(t, dir, ca, "spur-old")
	f := start(t, files, ca, 0)
	old := f.dial(t, nil)
	old.echo("before")
	if cn := old.cs.PeerCertificates[0].Subject.CommonName; cn != "spur-old" {
		t.Fatalf("certificate %s", cn)
	}
	serverFiles(t, dir, ca, "spur-new")
	if err := f.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	old.echo("after the reload")
	if cn := f.dial(t, nil).cs.PeerCertificates[0].Subject.CommonName; cn != "spur-new" {
		t.Fatalf("after reload a new handshake got %s, want spur-new", cn)
	}
	// A bad file keeps what is in use.
	tlstest.WriteFile(t, files.Key, []byte("garbage"))
	if err := f.keys.Reload(); err == nil || !strings.Contains(err.Error(), files.Key) {
		t.Fatalf("reload of a garbage key: %v, want an error naming %s", err, files.Key)
	}
	if cn := f.dial(t, nil).cs.PeerCertificates[0].Subject.CommonName; cn != "spur-new" {
		t.Fatalf("after a failed reload: %s", cn)
	}
	old.echo("after the failed reload")
}

func TestVerifyClient(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	dir := t.TempDir()
	files := serverFiles(t, dir, ca, "spur-server")
	files.CA = tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	files.VerifyClient = true
	f := start(t, files, ca, 0)

	refused := func(what string, cfg *tls.Config) {
		t.Helper()
		g, err := f.dialConfig(t, cfg)
		if err != nil {
			return // refused in the handshake (TLS 1.2)
		}
		// TLS 1.3: the client finishes first; the refusal arrives on the first read.
		_, _ = g.c.Write(codec.AppendRequest(nil, codec.EchoReq, []byte("x")))
		if typ, _, err := g.tryRecv(); err == nil {
			t.Fatalf("%s: served (%s)", what, typ)
		}
	}
	refused("no client certificate", nil)
	other := tlstest.NewCA(t, "other-ca")
	refused("certificate of another CA", &tls.Config{Certificates: []tls.Certificate{other.ClientCert(t, "mallory", nil)}})
	refused("no certificate, TLS 1.2", &tls.Config{MaxVersion: tls.VersionTLS12})

	good := f.dial(t, &tls.Config{Certificates: []tls.Certificate{
		ca.ClientCert(t, "worker-7", []string{"worker7.example"}, "spiffe://example/worker")}})
	good.echo("hello")
	id := <-f.ids
	if id.Name != "worker-7" || strings.Join(id.Names, ",") != "worker-7,worker7.example,spiffe://example/worker" {
		t.Fatalf("identity %+v", id)
	}
}

func TestLoadKeysNamesTheBadFile(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	dir := t.TempDir()
	good := serverFiles(t, dir, ca, "spur-server")
	otherCert, _ := ca.Issue(t, "other", true, nil)
	garbage := tlstest.WriteFile(t, filepath.Join(dir, "garbage"), []byte("not pem"))
	for _, tc := range []struct {
		files Files
		names []string
	}{
		{Files{Cert: filepath.Join(dir, "missing.pem"), Key: good.Key}, []string{"missing.pem"}},
		{Files{Cert: garbage, Key: good.Key}, []string{garbage}},
		{Files{Cert: good.Cert, Key: garbage}, []string{garbage}},
		{Files{Cert: tlstest.WriteFile(t, filepath.Join(dir, "other.pem"), otherCert), Key: good.Key}, []string{"other.pem", good.Key}},
		{Files{Cert: good.Cert, Key: good.Key, CA: garbage}, []string{garbage}},
		{Files{Cert: good.Cert, Key: good.Key, VerifyClient: true}, []string{"--ssl-ca-file"}},
	} {
		_, err := LoadKeys(tc.files)
		if err == nil {
			t.Fatalf("%+v: loaded", tc.files)
		}
		for _, n := range tc.names {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("%+v: %v does not name %s", tc.files, err, n)
			}
		}
	}
}
