package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/tcpserver"
	"github.com/spur-gearman/spur/engine/tlsserver"
	"github.com/spur-gearman/spur/engine/tlsserver/tlstest"
	"github.com/spur-gearman/spur/queue"
)

// startNode serves a real engine on a loopback port and returns it and its address.
func startNode(t *testing.T, cfg engine.Config) (*engine.Engine, string) {
	t.Helper()
	cfg.Logger = quiet
	e := engine.New(cfg)
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		srv := tcpserver.New(func(w tcpserver.Waker, fd int, remote net.Addr) tcpserver.Session {
			return e.NewSession(w, fd, remote)
		}, tcpserver.Config{Addrs: []string{addr}, Loops: 1, Logger: quiet})
		errc := make(chan error, 1)
		go func() { errc <- srv.Run() }()
		select {
		case err := <-errc:
			if attempt < 5 {
				continue
			}
			t.Fatal(err)
		case <-srv.Ready():
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

var quiet = slog.New(slog.DiscardHandler)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// submit queues n background jobs of fn at priority p.
func submit(t *testing.T, e *engine.Engine, fn string, p queue.Priority, n int) {
	t.Helper()
	who := &engine.Identity{IP: "127.0.0.1", Loopback: true}
	for i := range n {
		done := make(chan error, 1)
		e.SubmitBackground(engine.SubmitRequest{Function: []byte(fn), Data: []byte(fmt.Sprint(i)), Priority: p}, who,
			func(_ string, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// worker connects a worker for fns to addr and waits until the node lists it.
func worker(t *testing.T, addr, id string, fns ...string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var b []byte
	b = appendPacket(b, 22, id) // SET_CLIENT_ID
	for _, fn := range fns {
		b = appendPacket(b, 1, fn) // CAN_DO
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	r := New(Options{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := r.ReadNode(context.Background(), addr, Query{Workers: true})
		for _, w := range n.Workers {
			if w.ClientID == id && len(w.Functions) == len(fns) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s not listed: %+v", id, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendPacket(b []byte, typ uint32, arg string) []byte {
	b = append(b, 0, 'R', 'E', 'Q', 0, 0, 0, byte(typ))
	n := len(arg)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, arg...)
}

// silent accepts connections and never answers; it returns its address.
func silent(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// scripted answers every connection with answer(line) for each admin line it reads; it
// returns its address and a count of the connections it accepted.
func scripted(t *testing.T, answer func(line string) string) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(answer(strings.TrimRight(l, "\r\n")))); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), &accepted
}

// Two real nodes, a port nobody listens on and one that never answers: read together in
// about the timeout, in order, the two up with their counts, the others down with why.
func TestReadNodesUpAndDown(t *testing.T) {
	a, addrA := startNode(t, engine.Config{NodeName: "a", HandlePrefix: "H:a", Peers: []string{"b:1", "c:2"}})
	b, addrB := startNode(t, engine.Config{NodeName: "b", HandlePrefix: "H:b"})
	submit(t, a, "resize", queue.High, 1)
	submit(t, a, "resize", queue.Normal, 2)
	submit(t, b, "resize", queue.Low, 3)
	submit(t, b, "mail", queue.Normal, 1)
	worker(t, addrA, "wa", "resize")
	worker(t, addrB, "wb", "resize", "mail")
	dead := freeAddr(t) // closed again: nobody listens there
	mute := silent(t)

	r := New(Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	nodes := r.Read(context.Background(), []string{addrA, addrB, dead, mute}, Query{Functions: true, Workers: true})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the read took %v with a 300ms timeout", took)
	}
	if len(nodes) != 4 {
		t.Fatalf("%d nodes", len(nodes))
	}
	na, nb, nd, nm := nodes[0], nodes[1], nodes[2], nodes[3]
	if !na.Up || na.Name != "a" || na.Addr != addrA || na.Version != engine.Version || strings.Join(na.Peers, ",") != "b:1,c:2" {
		t.Errorf("node a: %+v", na)
	}
	if na.Totals.Queued != 3 || na.Totals.Functions != 1 || na.Totals.Workers != 1 || na.Totals.Submitted != 3 {
		t.Errorf("node a totals: %+v", na.Totals)
	}
	if len(na.Functions) != 1 || na.Functions[0] != (Function{Name: "resize", Total: 3, Workers: 1, Queued: Queued{1, 2, 0}}) {
		t.Errorf("node a functions: %+v", na.Functions)
	}
	if len(na.Workers) != 1 || na.Workers[0].ClientID != "wa" {
		t.Errorf("node a workers (the reader's own connection is no worker): %+v", na.Workers)
	}
	if !nb.Up || nb.Name != "b" || len(nb.Functions) != 2 || nb.Totals.Queued != 4 || len(nb.Workers) != 1 {
		t.Errorf("node b: %+v", nb)
	}
	if nd.Up || nd.Addr != dead || !strings.Contains(nd.Error, "refused") {
		t.Errorf("dead node: %+v", nd)
	}
	if nm.Up || nm.Addr != mute || nm.Error != "no answer within 300ms" {
		t.Errorf("silent node: %+v", nm)
	}

	s := Summarize(nodes)
	if s.Nodes != 4 || s.Up != 2 || s.Down != 2 || s.Totals.Queued != 7 || s.Totals.Workers != 2 || s.Totals.Functions != 3 {
		t.Errorf("sum: %+v", s)
	}
	want := []Function{{Name: "mail", Total: 1, Workers: 1, Queued: Queued{0, 1, 0}}, {Name: "resize", Total: 6, Workers: 2, Queued: Queued{1, 2, 3}}}
	if fmt.Sprint(s.Functions) != fmt.Sprint(want) {
		t.Errorf("summed functions %+v, want %+v", s.Functions, want)
	}

	// Only leaves out what may not be read.
	only := nb.Only(func(fn string) bool { return fn == "mail" })
	if len(only.Functions) != 1 || only.Functions[0].Name != "mail" || len(only.Workers) != 1 || strings.Join(only.Workers[0].Functions, ",") != "mail" {
		t.Errorf("only mail: %+v", only)
	}
	if len(nb.Functions) != 2 {
		t.Errorf("Only changed the node it was given: %+v", nb.Functions)
	}

	// JSON: what the API and the CLI print.
	js, _ := json.Marshal(nd)
	if !strings.Contains(string(js), `"up":false`) || !strings.Contains(string(js), `"started_at":null`) || strings.Contains(string(js), `"functions":[`) {
		t.Errorf("down node as JSON: %s", js)
	}
}

// One function's counts and first jobs; every job of a node.
func TestReadJobs(t *testing.T) {
	e, addr := startNode(t, engine.Config{NodeName: "a", HandlePrefix: "H:a"})
	submit(t, e, "f", queue.Normal, 5)
	submit(t, e, "g", queue.Normal, 1)
	r := New(Options{})
	n := r.ReadNode(context.Background(), addr, Query{Function: "f", Limit: 2})
	if !n.Up || len(n.Functions) != 1 || n.Functions[0].Total != 5 || len(n.Jobs) != 2 {
		t.Fatalf("f: %+v", n)
	}
	if j := n.Jobs[0]; j.Handle != "H:a:1" || j.State != "queued" || j.Priority != "normal" || j.Worker != nil || !time.Time(j.Started).IsZero() {
		t.Errorf("first job %+v", j)
	}
	if n := r.ReadNode(context.Background(), addr, Query{Function: "f"}); len(n.Jobs) != 5 {
		t.Errorf("no limit: %d jobs", len(n.Jobs))
	}
	if n := r.ReadNode(context.Background(), addr, Query{Function: "nothing"}); !n.Up || len(n.Functions) != 0 || len(n.Jobs) != 0 || n.Jobs == nil {
		t.Errorf("a function the node does not have: %+v", n)
	}
	if n := r.ReadNode(context.Background(), addr, Query{AllJobs: true}); len(n.AllJobs) != 6 || n.AllJobs[0].Handle != "H:a:1" {
		t.Errorf("all jobs: %+v", n.AllJobs)
	}
	if n := r.ReadNode(context.Background(), addr, Query{Function: "two words"}); n.Up || !strings.Contains(n.Error, "one admin word") {
		t.Errorf("a function name with a space: %+v", n)
	}
}

// A node without `show node` (gearmand) is up, its totals summed from status; one that
// refuses a command is down with the refusal; one that answers too much is cut off.
func TestReadOtherAnswers(t *testing.T) {
	gearmand, _ := scripted(t, func(line string) string {
		switch line {
		case "show node":
			return "ERR UNKNOWN_SHOW_ARGUMENTS Unknown+show+argument\r\n"
		case "status":
			return "resize\t5\t2\t1\n.\n"
		case "prioritystatus":
			return "resize\t0\t3\t0\t1\n.\n"
		}
		return "ERR UNKNOWN_COMMAND x\r\n"
	})
	r := New(Options{Timeout: 2 * time.Second, MaxReply: 1 << 16})
	n := r.ReadNode(context.Background(), gearmand, Query{Functions: true})
	if !n.Up || n.Name != "" || n.Totals.Queued != 3 || n.Totals.Running != 2 || n.Totals.Functions != 1 || n.Functions[0].Queued.Normal != 3 {
		t.Errorf("gearmand: %+v", n)
	}
	noPriorities, _ := scripted(t, func(line string) string {
		switch line {
		case "show node":
			return "name\tn\n.\n"
		case "status":
			return "resize\t5\t2\t1\n.\n"
		}
		return "ERR PERMISSION_DENIED not+for+you\r\n"
	})
	if n := r.ReadNode(context.Background(), noPriorities, Query{Functions: true}); !n.Up || n.Name != "n" || n.Functions[0].Total != 5 {
		t.Errorf("a node refusing prioritystatus: %+v", n)
	}
	refusing, _ := scripted(t, func(string) string { return "ERR PERMISSION_DENIED not+for+you\r\n" })
	if n := r.ReadNode(context.Background(), refusing, Query{}); n.Up || n.Error != "show node: ERR PERMISSION_DENIED not for you" {
		t.Errorf("refusing: %+v", n)
	}
	flood, _ := scripted(t, func(string) string { return strings.Repeat("x\tx\n", 1<<16) })
	if n := r.ReadNode(context.Background(), flood, Query{}); n.Up || !strings.Contains(n.Error, "larger than 65536 bytes") {
		t.Errorf("flood: %+v", n)
	}
}

// Overlapping reads of one node are one read; a caller that gives up does not wait.
func TestOverlappingReadsShareOne(t *testing.T) {
	var release = make(chan struct{})
	addr, accepted := scripted(t, func(string) string {
		<-release
		return "name\tslow\n.\n"
	})
	r := New(Options{Timeout: 5 * time.Second})
	var wg sync.WaitGroup
	nodes := make([]Node, 20)
	for i := range nodes {
		wg.Go(func() { nodes[i] = r.ReadNode(context.Background(), addr, Query{}) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if n := r.ReadNode(ctx, addr, Query{}); n.Up || n.Error != context.DeadlineExceeded.Error() {
		t.Errorf("a caller that gave up: %+v", n)
	}
	cancel()
	close(release)
	wg.Wait()
	for _, n := range nodes {
		if !n.Up || n.Name != "slow" {
			t.Fatalf("shared read: %+v", n)
		}
	}
	if got := accepted.Load(); got != 1 {
		t.Errorf("%d connections for 21 overlapping reads, want 1", got)
	}
}

// Over TLS with the deployment's CA, presenting a client certificate to a node that
// requires one.
func TestReadOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "cluster CA")
	files := ca.WriteServer(t, dir, "node", "node")
	keys, err := tlsserver.LoadKeys(tlsserver.Files{Cert: files.Cert, Key: files.Key, CA: files.CA, VerifyClient: true})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.Config{NodeName: "tls-node", Logger: quiet})
	srv := tlsserver.New(func(w tcpserver.Waker, fd int, remote net.Addr, names []string) tcpserver.Session {
		return e.NewSession(w, fd, remote)
	}, tlsserver.Config{Addrs: []string{"127.0.0.1:0"}, Keys: keys, Logger: quiet})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	addr := srv.Addrs()[0].String()

	client := ca.ClientCert(t, "peer", nil)
	r := New(Options{TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client}}})
	if n := r.ReadNode(context.Background(), addr, Query{}); !n.Up || n.Name != "tls-node" {
		t.Errorf("over TLS: %+v", n)
	}
	other := tlstest.NewCA(t, "another CA")
	r = New(Options{TLS: &tls.Config{RootCAs: other.Pool(), Certificates: []tls.Certificate{client}}})
	if n := r.ReadNode(context.Background(), addr, Query{}); n.Up || !strings.Contains(n.Error, "certificate") {
		t.Errorf("a node of another CA: %+v", n)
	}
}

// The nodes of one shared store report its unclaimed jobs alike: the sum takes them once.
func TestUnclaimedIsTakenOnce(t *testing.T) {
	var a, b Node
	for n, lines := range map[*Node][]string{&a: {"name\ta", "queued\t2", "unclaimed\t5"}, &b: {"name\tb", "queued\t1", "unclaimed\t5"}} {
		if err := parseNode(n, lines); err != nil {
			t.Fatal(err)
		}
		n.Up = true
	}
	if s := Summarize([]Node{a, b}); s.Totals.Queued != 3 || s.Totals.Unclaimed != 5 {
		t.Fatalf("sum %+v, want queued 3 and unclaimed 5", s.Totals)
	}
}
