package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/cluster"
	"github.com/spur-gearman/spur/engine/tcpserver"
	"github.com/spur-gearman/spur/queue"
)

var quietLog = slog.New(slog.DiscardHandler)

// servePeer serves e on a loopback Gearman port, for the cluster view to read.
func servePeer(t *testing.T, e *engine.Engine) string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		srv := tcpserver.New(func(w tcpserver.Waker, fd int, remote net.Addr) tcpserver.Session {
			return e.NewSession(w, fd, remote)
		}, tcpserver.Config{Addrs: []string{addr}, Loops: 1, Logger: quietLog})
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
		return addr
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func submitN(t *testing.T, e *engine.Engine, fn string, p queue.Priority, n int) {
	t.Helper()
	who := &engine.Identity{IP: "127.0.0.1", Loopback: true}
	for range n {
		done := make(chan error, 1)
		e.SubmitBackground(engine.SubmitRequest{Function: []byte(fn), Priority: p}, who, func(_ string, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// onlyMail lets the token "mail-ops" read (and list) function "mail" only.
type onlyMail struct{}

func (onlyMail) Token(secret string) (string, bool) { return "mail-ops", secret == "mail-secret" }

func (onlyMail) Allow(id *engine.Identity, act engine.Action, name []byte) error {
	if id.Token != "mail-ops" || act != engine.ActStatus || string(name) == "mail" {
		return nil
	}
	return errors.New("not mail")
}

// This node, a peer and a peer nobody listens on: side by side, summed, the dead one down.
func TestClusterEndpoints(t *testing.T) {
	self := newEngine(t, engine.Config{NodeName: "self", Authorizer: onlyMail{}})
	other := newEngine(t, engine.Config{NodeName: "other", HandlePrefix: "H:other"})
	peerAddr := servePeer(t, other)
	dead := freeAddr(t)
	submitN(t, self, "resize", queue.High, 2)
	submitN(t, self, "mail", queue.Normal, 1)
	submitN(t, other, "resize", queue.Low, 3)
	submitN(t, other, "mail", queue.Normal, 4)
	worker(t, self, 7, "resize")
	a := newAPI(self, Options{Tokens: onlyMail{}, Cluster: ClusterOptions{Self: "127.0.0.1:4730", Peers: []string{peerAddr, dead},
		Reader: cluster.New(cluster.Options{Timeout: 500 * time.Millisecond})}})

	r := do(t, a, call{method: "GET", path: "/api/cluster/status"}).want(t, 200, "")
	if r.get("node") != "self" || len(r.list("nodes")) != 3 {
		t.Fatalf("cluster status: %s", r.raw)
	}
	if r.get("nodes", 0, "name") != "self" || r.get("nodes", 0, "self") != true || r.get("nodes", 0, "addr") != "127.0.0.1:4730" ||
		r.get("nodes", 0, "totals", "queued") != 3.0 || r.get("nodes", 0, "totals", "workers") != 1.0 {
		t.Errorf("this node: %v", r.get("nodes", 0))
	}
	if r.get("nodes", 1, "name") != "other" || r.get("nodes", 1, "up") != true || r.get("nodes", 1, "addr") != peerAddr ||
		r.get("nodes", 1, "totals", "queued") != 7.0 || len(r.list("nodes", 1, "functions")) != 2 {
		t.Errorf("the peer: %v", r.get("nodes", 1))
	}
	if r.get("nodes", 2, "up") != false || r.get("nodes", 2, "addr") != dead || r.get("nodes", 2, "error") == "" {
		t.Errorf("the dead peer: %v", r.get("nodes", 2))
	}
	if r.get("sum", "nodes") != 3.0 || r.get("sum", "up") != 2.0 || r.get("sum", "down") != 1.0 || r.get("sum", "totals", "queued") != 10.0 {
		t.Errorf("sum: %v", r.get("sum"))
	}
	if r.get("sum", "functions", 0, "name") != "mail" || r.get("sum", "functions", 0, "total") != 5.0 ||
		r.get("sum", "functions", 1, "name") != "resize" || r.get("sum", "functions", 1, "queued", "high") != 2.0 ||
		r.get("sum", "functions", 1, "queued", "low") != 3.0 {
		t.Errorf("summed functions: %v", r.get("sum", "functions"))
	}
	tot := do(t, a, call{method: "GET", path: "/api/cluster/status?functions=false"}).want(t, 200, "")
	if tot.get("nodes", 1, "functions") != nil || tot.get("nodes", 0, "functions") != nil || tot.get("sum", "functions") != nil ||
		tot.get("nodes", 1, "totals", "queued") != 7.0 || tot.get("sum", "totals", "queued") != 10.0 {
		t.Errorf("totals only: %s", tot.raw)
	}
	st := do(t, a, call{method: "GET", path: "/api/status"}).want(t, 200, "")
	if st.get("node") != "self" || len(st.list("peers")) != 2 {
		t.Errorf("/api/status node and peers: %v %v", st.get("node"), st.get("peers"))
	}

	w := do(t, a, call{method: "GET", path: "/api/cluster/workers"}).want(t, 200, "")
	if len(w.list("nodes", 0, "workers")) != 1 || w.get("nodes", 0, "workers", 0, "id") != 7.0 || len(w.list("nodes", 1, "workers")) != 0 ||
		w.get("nodes", 1, "workers") == nil || w.get("nodes", 2, "up") != false || w.get("sum", "totals", "workers") != 1.0 {
		t.Errorf("cluster workers: %s", w.raw)
	}

	j := do(t, a, call{method: "GET", path: "/api/cluster/jobs?function=mail&limit=2"}).want(t, 200, "")
	if len(j.list("nodes", 0, "jobs")) != 1 || len(j.list("nodes", 1, "jobs")) != 2 || j.get("nodes", 1, "jobs", 0, "handle") != "H:other:4" ||
		j.get("nodes", 1, "functions", 0, "total") != 4.0 || j.get("sum", "functions", 0, "total") != 5.0 || j.get("sum", "jobs") != 3.0 {
		t.Errorf("cluster jobs: %s", j.raw)
	}
	do(t, a, call{method: "GET", path: "/api/cluster/jobs"}).want(t, 400, "BAD_REQUEST")
	do(t, a, call{method: "GET", path: "/api/cluster/jobs?function=a%20b"}).want(t, 400, "BAD_REQUEST")
	do(t, a, call{method: "GET", path: "/api/cluster/jobs?function=mail&limit=0"}).want(t, 400, "BAD_REQUEST")

	// What an identity may not read here it does not see of the peers either.
	m := do(t, a, call{method: "GET", path: "/api/cluster/status", token: "mail-secret"}).want(t, 200, "")
	for i := range 2 {
		if fns := m.list("nodes", i, "functions"); len(fns) != 1 || m.get("nodes", i, "functions", 0, "name") != "mail" {
			t.Errorf("node %d for mail-ops: %v", i, m.get("nodes", i, "functions"))
		}
	}
	if fns := m.list("sum", "functions"); len(fns) != 1 {
		t.Errorf("sum for mail-ops: %v", fns)
	}
	if mw := do(t, a, call{method: "GET", path: "/api/cluster/workers", token: "mail-secret"}).want(t, 200, ""); len(mw.list("nodes", 0, "workers")) != 0 {
		t.Errorf("workers of resize shown to mail-ops: %s", mw.raw)
	}
	do(t, a, call{method: "GET", path: "/api/cluster/jobs?function=resize", token: "mail-secret"}).want(t, 403, "PERMISSION_DENIED")
}

// Without peers the cluster view is this node alone.
func TestClusterWithoutPeers(t *testing.T) {
	e := newEngine(t, engine.Config{NodeName: "alone"})
	submitN(t, e, "f", queue.Normal, 2)
	a := newAPI(e, Options{})
	r := do(t, a, call{method: "GET", path: "/api/cluster/status"}).want(t, 200, "")
	if len(r.list("nodes")) != 1 || r.get("nodes", 0, "name") != "alone" || r.get("sum", "totals", "queued") != 2.0 || r.get("sum", "up") != 1.0 {
		t.Fatalf("alone: %s", r.raw)
	}
}
