package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/cmd/spur/client"
	"github.com/spur-gearman/spur/engine/cluster"
)

// clusterAnswer is what --cluster --json prints (the HTTP API's answer).
type clusterAnswer struct {
	Node  string         `json:"node"`
	Nodes []cluster.Node `json:"nodes"`
	Sum   cluster.Sum    `json:"sum"`
}

// Three spurd nodes, each its own Pebble log, and a peer address nobody listens on: spur
// asks node a for its peers and shows every node side by side, summed, the dead one down.
func TestClusterFlag(t *testing.T) {
	pebble := func(name string, more ...string) string {
		return startServer(t, spurdBin, append([]string{"--data-dir", t.TempDir(), "--node-name", name}, more...)...)
	}
	portB, portC := pebble("b"), pebble("c")
	dead := "127.0.0.1:" + freePort(t)
	portA := pebble("a", "--peer", "127.0.0.1:"+portB, "--peer", "127.0.0.1:"+portC+","+dead)
	for port, n := range map[string]int{portA: 1, portB: 2, portC: 3} {
		c := dial(t, port)
		for range n {
			if _, err := c.SubmitBackground("resize", "", []byte("x"), client.Normal, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := dial(t, portB).SubmitBackground("mail", "", nil, client.High, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, portC).NewWorker("c-worker", "resize"); err != nil {
		t.Fatal(err)
	}

	var st clusterAnswer
	eventually(t, "the worker on c", func() bool {
		st = decode[clusterAnswer](t, ok(t, portA, "status", "--cluster", "--json"))
		return len(st.Nodes) == 4 && st.Nodes[2].Totals.Workers == 1
	})
	if st.Node != "a" || !st.Nodes[0].Self || st.Nodes[1].Self {
		t.Errorf("self: %+v", st)
	}
	for i, want := range []struct {
		name, addr string
		up         bool
		queued     int
	}{{"a", "127.0.0.1:" + portA, true, 1}, {"b", "127.0.0.1:" + portB, true, 3}, {"c", "127.0.0.1:" + portC, true, 3}, {"", dead, false, 0}} {
		n := st.Nodes[i]
		if n.Name != want.name || n.Addr != want.addr || n.Up != want.up || n.Totals.Queued != want.queued {
			t.Errorf("node %d: %+v, want %+v", i, n, want)
		}
	}
	if !strings.Contains(st.Nodes[3].Error, "refused") {
		t.Errorf("the dead node's error: %q", st.Nodes[3].Error)
	}
	if s := st.Sum; s.Up != 3 || s.Down != 1 || s.Totals.Queued != 7 || len(s.Functions) != 2 ||
		s.Functions[1] != (cluster.Function{Name: "resize", Total: 6, Workers: 1, Queued: cluster.Queued{Normal: 6}}) {
		t.Errorf("sum: %+v", s)
	}

	out := ok(t, portA, "status", "--cluster")
	for first, want := range map[string][]string{
		"a":     {"a", "127.0.0.1:" + portA, "up", "1", "1", "0", "0"},
		"b":     {"b", "127.0.0.1:" + portB, "up", "2", "3", "0", "0"},
		"c":     {"c", "127.0.0.1:" + portC, "up", "1", "3", "0", "1"},
		"(all)": {"(all)", "3/4", "up", "4", "7", "0", "1"},
	} {
		if got := row(out, first); !slices.Equal(got, want) {
			t.Errorf("status --cluster row %q, want %q:\n%s", got, want, out)
		}
	}
	if got := row(out, "-"); len(got) < 7 || got[1] != dead || got[2] != "down" || !strings.Contains(strings.Join(got, " "), "refused") {
		t.Errorf("the dead node's row %q:\n%s", got, out)
	}
	var resizeRows [][]string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "resize" {
			resizeRows = append(resizeRows, f)
		}
	}
	if len(resizeRows) != 4 || resizeRows[3][1] != "(all)" || resizeRows[3][2] != "6" || resizeRows[1][1] != "b" || resizeRows[1][5] != "2" {
		t.Errorf("resize rows %q:\n%s", resizeRows, out)
	}

	ws := decode[clusterAnswer](t, ok(t, portA, "workers", "--cluster", "--json"))
	if len(ws.Nodes) != 4 || len(ws.Nodes[2].Workers) != 1 || ws.Nodes[2].Workers[0].ClientID != "c-worker" || ws.Nodes[3].Up {
		t.Errorf("workers --cluster --json: %+v", ws)
	}
	if out := ok(t, portA, "workers", "--cluster"); !strings.Contains(out, "c-worker") || row(out, "(all)")[3] != "1" {
		t.Errorf("workers --cluster:\n%s", out)
	}

	js := decode[clusterAnswer](t, ok(t, portA, "jobs", "--cluster", "resize", "--json"))
	if len(js.Nodes) != 4 || len(js.Nodes[0].Jobs) != 1 || len(js.Nodes[1].Jobs) != 2 || len(js.Nodes[2].Jobs) != 3 || js.Sum.Jobs != 6 {
		t.Errorf("jobs --cluster resize --json: %+v", js)
	}
	out = ok(t, portA, "jobs", "--cluster", "resize")
	if got := row(out, "(all)"); len(got) < 5 || got[3] != "6" {
		t.Errorf("jobs --cluster resize sum row %q:\n%s", got, out)
	}
	if n := strings.Count(out, "\tqueued") + strings.Count(out, " queued "); n != 6 {
		t.Errorf("jobs --cluster resize lists %d queued jobs, want 6:\n%s", n, out)
	}
	all := decode[clusterAnswer](t, ok(t, portA, "jobs", "--cluster", "--json"))
	if all.Sum.Jobs != 7 || len(all.Nodes[1].AllJobs) != 3 {
		t.Errorf("jobs --cluster --json: %+v", all.Sum)
	}
	if r := spur(t, portA, "", "workers", "--cluster", "--all"); r.code != 2 {
		t.Errorf("workers --cluster --all: %+v", r)
	}
}
