package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/tlsserver/tlstest"
)

// submitN queues n background jobs of fn on the node at addr.
func submitN(t *testing.T, addr, fn string, n int) {
	t.Helper()
	g := dialG(t, addr)
	for range n {
		g.submit(&job{typ: codec.SubmitJobBg, fn: fn, data: "x"})
	}
}

// Three spurd nodes, each with its own Pebble log, and a peer address nobody listens on:
// node a's cluster endpoints show all four side by side in --peer order, the sums of the
// jobs queued on each, and the dead one down with its error; a's `show node` lists its peers
// and its metrics carry node="a".
func TestClusterViewOfThreeNodes(t *testing.T) {
	t.Parallel()
	_, addrB, _ := startSpurd(t, "--node-name", "b")
	_, addrC, _ := startSpurd(t, "--node-name", "c")
	dead := net.JoinHostPort("127.0.0.1", freePort(t))
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	_, addrA, _ := startSpurd(t, "--node-name", "a", "--http-addr", httpAddr,
		"--peer", addrB+","+addrC, "--peer", dead, "--peer-timeout", "500ms")
	submitN(t, addrA, "resize", 1)
	submitN(t, addrB, "resize", 2)
	submitN(t, addrB, "mail", 1)
	submitN(t, addrC, "resize", 4)
	w := dialG(t, addrC)
	w.sendStr(codec.SetClientID, "c-worker")
	w.sendStr(codec.CanDo, "mail")
	w.sync()

	node := map[string]string{}
	for _, l := range adminList(t, addrA, "show node") {
		k, v, _ := strings.Cut(l, "\t")
		node[k] += v + " "
	}
	if node["name"] != "a " || node["peer"] != addrB+" "+addrC+" "+dead+" " || node["queued"] != "1 " {
		t.Fatalf("show node of a: %q", node)
	}

	c := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + httpAddr
	start := time.Now()
	code, st := httpJSON(t, c, "GET", base+"/api/cluster/status", "", "")
	if took := time.Since(start); code != 200 || took > 3*time.Second {
		t.Fatalf("cluster status: %d in %v: %v", code, took, st)
	}
	nodes := st["nodes"].([]any)
	if len(nodes) != 4 {
		t.Fatalf("%d nodes: %v", len(nodes), st)
	}
	for i, want := range []struct {
		name, addr string
		up         bool
		queued     float64
	}{{"a", "127.0.0.1:" + strings.Split(addrA, ":")[1], true, 1}, {"b", addrB, true, 3}, {"c", addrC, true, 4}, {"", dead, false, 0}} {
		n := nodes[i].(map[string]any)
		totals := n["totals"].(map[string]any)
		if n["name"] != want.name || n["addr"] != want.addr || n["up"] != want.up || totals["queued"] != want.queued {
			t.Errorf("node %d: %v, want %+v", i, n, want)
		}
	}
	if n := nodes[3].(map[string]any); !strings.Contains(n["error"].(string), "refused") {
		t.Errorf("the dead peer's error: %q", n["error"])
	}
	sum := st["sum"].(map[string]any)
	if sum["up"] != 3.0 || sum["down"] != 1.0 || sum["totals"].(map[string]any)["queued"] != 8.0 || sum["totals"].(map[string]any)["workers"] != 1.0 {
		t.Errorf("sum: %v", sum)
	}
	fns := sum["functions"].([]any)
	if len(fns) != 2 || fns[1].(map[string]any)["name"] != "resize" || fns[1].(map[string]any)["total"] != 7.0 ||
		fns[0].(map[string]any)["workers"] != 1.0 {
		t.Errorf("summed functions: %v", fns)
	}

	code, ws := httpJSON(t, c, "GET", base+"/api/cluster/workers", "", "")
	wnodes := ws["nodes"].([]any)
	if code != 200 || len(wnodes) != 4 || len(wnodes[2].(map[string]any)["workers"].([]any)) != 1 ||
		wnodes[2].(map[string]any)["workers"].([]any)[0].(map[string]any)["client_id"] != "c-worker" || wnodes[3].(map[string]any)["up"] != false {
		t.Errorf("cluster workers: %d %v", code, ws)
	}

	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`spur_function_jobs_queued{function="resize",node="a",priority="normal"} 1`, `gearman_up{node="a"} 1`, `go_goroutines{node="a"} `} {
		if !strings.Contains(string(body), want) {
			t.Errorf("a's /metrics lacks %s", want)
		}
	}

	code, js := httpJSON(t, c, "GET", base+"/api/cluster/jobs?function=resize&limit=3", "", "")
	jnodes := js["nodes"].([]any)
	if code != 200 || len(jnodes) != 4 {
		t.Fatalf("cluster jobs: %d %v", code, js)
	}
	for i, want := range []int{1, 2, 3, 0} {
		jobs, _ := jnodes[i].(map[string]any)["jobs"].([]any)
		if len(jobs) != want {
			t.Errorf("node %d lists %d jobs of resize, want %d: %v", i, len(jobs), want, jnodes[i])
		}
	}
	if js["sum"].(map[string]any)["functions"].([]any)[0].(map[string]any)["total"] != 7.0 || js["sum"].(map[string]any)["jobs"] != 6.0 {
		t.Errorf("cluster jobs sum: %v", js["sum"])
	}
}

// Nodes that serve TLS read their peers over TLS, verified against the deployment's CA.
func TestClusterViewOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "cluster CA")
	fb := ca.WriteServer(t, dir, "b", "b")
	fa := ca.WriteServer(t, dir, "a", "a")
	stranger := tlstest.NewCA(t, "another CA").WriteServer(t, dir, "x", "x")
	tlsArgs := func(f tlstest.Files) []string {
		return []string{"-q", "builtin", "--ssl", "--ssl-certificate", f.Cert, "--ssl-key", f.Key, "--ssl-ca-file", fa.CA}
	}
	_, addrB, _ := startSpurd(t, append(tlsArgs(fb), "--node-name", "b")...)
	_, addrX, _ := startSpurd(t, append(tlsArgs(stranger), "--node-name", "x")...)
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	startSpurd(t, append(tlsArgs(fa), "--node-name", "a", "--http-addr", httpAddr, "--peer", addrB, "--peer", addrX)...)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	code, st := httpJSON(t, c, "GET", "https://"+httpAddr+"/api/cluster/status", "", "")
	if code != 200 {
		t.Fatalf("cluster status over HTTPS: %d %v", code, st)
	}
	nodes := st["nodes"].([]any)
	if b := nodes[1].(map[string]any); b["name"] != "b" || b["up"] != true {
		t.Errorf("peer b over TLS: %v", b)
	}
	if x := nodes[2].(map[string]any); x["up"] != false || !strings.Contains(x["error"].(string), "certificate") {
		t.Errorf("a peer whose certificate another CA signed: %v", x)
	}
}

// --peer takes HOST:PORT, repeated or separated by commas, and keeps their order.
func TestPeerFlag(t *testing.T) {
	o, _, err := parseFlags([]string{"--peer", "b:4730,c:4731", "--peer", "[::1]:4732"}, io.Discard)
	if err != nil || o.validate() != nil {
		t.Fatalf("parse: %v", err)
	}
	if strings.Join(o.peers, " ") != "b:4730 c:4731 [::1]:4732" || o.peerTimeout != time.Second {
		t.Fatalf("peers %q, timeout %v", o.peers, o.peerTimeout)
	}
	for _, bad := range [][]string{{"--peer", "b"}, {"--peer", "b:x"}, {"--peer", ":4730"}, {"--peer", "b:0"}, {"--peer-timeout", "0s"}} {
		o, _, err := parseFlags(bad, io.Discard)
		if err == nil && o.validate() == nil {
			t.Errorf("%v was accepted", bad)
		}
	}
}
