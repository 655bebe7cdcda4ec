package interop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// A Spur cluster sharing one PostgreSQL (spurd -q postgres): real PHP clients and workers
// spread across the nodes, a node killed with SIGKILL, the database stopped and started,
// coalescing across nodes, and a recurring schedule that fires once per firing while the
// node leading the schedules is killed. Each test starts its own PostgreSQL (pgtest) and
// three spurd nodes on loopback.

// clusterLease is the nodes' --lease: short, so that a killed node's jobs run elsewhere soon.
const clusterLease = 3 * time.Second

// cluster is a set of spurd nodes sharing one database.
type cluster struct {
	nodes []*server
	dsn   string
}

// startCluster starts n spurd nodes on dsn, each naming the others as peers.
func startCluster(t *testing.T, dsn string, n int, extra ...string) *cluster {
	t.Helper()
	if serverKind != "spur" {
		t.Skip("a Spur cluster: gearmand has none") // only under SPUR_INTEROP_SERVER=gearmand
	}
	c := &cluster{dsn: dsn}
	for i := 0; i < n; i++ {
		args := append([]string{"-q", "postgres", "--postgres-dsn", dsn, "--node-name", "node" + strconv.Itoa(i),
			"--lease", clusterLease.String()}, extra...)
		c.nodes = append(c.nodes, serverMode{name: "cluster"}.launch(t, args...))
	}
	return c
}

// addrs is every node's address, comma-separated (PHP's addServers), or those given.
func (c *cluster) addrs(which ...int) string {
	if len(which) == 0 {
		for i := range c.nodes {
			which = append(which, i)
		}
	}
	var out []string
	for _, i := range which {
		out = append(out, c.nodes[i].addr)
	}
	return strings.Join(out, ",")
}

// startedHandles is the set of handles in the START lines of workers, with how often each
// was started.
func startedHandles(t *testing.T, workers ...*proc) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, w := range workers {
		for _, f := range startLines(t, w.lines.snapshot()) {
			out[f[2]]++
		}
	}
	return out
}

// waitStarted waits until every handle in want was started by one of workers.
func waitStarted(t *testing.T, within time.Duration, want []string, workers ...*proc) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := startedHandles(t, workers...)
		var missing []string
		for _, h := range want {
			if got[h] == 0 {
				missing = append(missing, h)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged jobs never ran within %v: %v", len(missing), len(want), within, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bgHandles submits background jobs through the PHP client and returns the handles it was
// given; every submit must succeed.
func bgHandles(t *testing.T, addr, fn string, workloads ...string) []string {
	t.Helper()
	var out []string
	for _, l := range phpClient(t, addr, append([]string{"bg", "normal", fn}, workloads...)...) {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "HANDLE" || f[1] != "0" {
			t.Fatalf("background submit to %s: %q, want HANDLE 0 <handle>", addr, l)
		}
		out = append(out, f[2])
	}
	return out
}

func workloads(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// PHP clients and workers connected to every node of three: background jobs submitted to
// one node and to another, and foreground jobs through the client's own choice of node,
// all run exactly once, on workers of any node.
func TestClusterPHPAcrossNodes(t *testing.T) {
	requirePHP(t)
	t.Parallel()
	c := startCluster(t, pgtest.New(t, pgtest.Options{}).NewDatabase(t), 3)
	fn := fnName(t, "cluster")
	env := []string{"IDLE_DEADLINE=28"}
	w1 := phpWorker(t, c.addrs(), env, 1000, fn+"=reverse")
	w2 := phpWorker(t, c.addrs(), env, 1000, fn+"=reverse")
	var want []string
	want = append(want, bgHandles(t, c.nodes[0].addr, fn, workloads("a", 20)...)...)
	want = append(want, bgHandles(t, c.nodes[2].addr, fn, workloads("b", 20)...)...)
	for i := 0; i < 3; i++ {
		lines := phpClient(t, c.addrs(), "do", "normal", fn, "hello"+strconv.Itoa(i))
		if want := "RESULT 0 " + reverse("hello"+strconv.Itoa(i)); len(lines) != 1 || lines[0] != want {
			t.Fatalf("foreground job across the cluster: %q, want %q", lines, want)
		}
	}
	got := waitStarted(t, 20*time.Second, want, w1, w2)
	for _, h := range want {
		if got[h] != 1 {
			t.Errorf("job %s ran %d times, want once", h, got[h])
		}
	}
	if len(got) != len(want)+3 {
		t.Errorf("%d jobs ran, want %d background and 3 foreground", len(got), len(want))
	}
}

// A node killed with SIGKILL while it holds a running job, a queued one it claimed and has
// a worker registered for, and jobs offered to every node: every acknowledged job runs on
// the other nodes within the lease and a few seconds; the one that was running may run
// twice (at least once), no other job does.
func TestClusterSIGKILLRunsEveryAcknowledgedJobElsewhere(t *testing.T) {
	requirePHP(t)
	t.Parallel()
	c := startCluster(t, pgtest.New(t, pgtest.Options{}).NewDatabase(t), 3)
	fn := fnName(t, "failover")
	release, _ := releaseFile(t) // never released: the job stays running until the kill
	holder := phpWorker(t, c.nodes[0].addr, []string{"RELEASE_FILE=" + release}, 1, fn+"=hold")
	idle := dialGearman(t, c.nodes[0].addr) // a worker that never asks for a job
	idle.send(codec.CanDo, fn)
	idle.echo()

	running := bgHandles(t, c.nodes[0].addr, fn, "running")
	holder.waitLine("START")
	queued := bgHandles(t, c.nodes[0].addr, fn, "queued") // held: node0 has a free worker
	offered := bgHandles(t, c.nodes[0].addr, fn, workloads("o", 10)...)
	offered = append(offered, bgHandles(t, c.nodes[1].addr, fn, workloads("p", 10)...)...)
	if st, _ := statusOf(t, c.nodes[0].addr, fn); st.running != 1 {
		t.Fatalf("node0 runs %d jobs of %s, want the held one", st.running, fn)
	}

	killed := time.Now()
	c.nodes[0].kill()
	w := phpWorker(t, c.addrs(1, 2), []string{"IDLE_DEADLINE=28"}, 1000, fn+"=reverse")
	all := append(append(append([]string{}, running...), queued...), offered...)
	got := waitStarted(t, clusterLease+10*time.Second, all, w)
	t.Logf("every acknowledged job of the killed node ran elsewhere %v after the SIGKILL (lease %v)",
		time.Since(killed).Round(10*time.Millisecond), clusterLease)
	for _, h := range all {
		if got[h] != 1 {
			t.Errorf("job %s ran %d times on the other nodes, want once", h, got[h])
		}
	}
}

// PostgreSQL stopped: a background submit is refused (never a JOB_CREATED for a job that
// is not committed) while foreground jobs go on; started again: the nodes take background
// jobs again by themselves, and they run.
func TestClusterDatabaseDownAndBack(t *testing.T) {
	requirePHP(t)
	t.Parallel()
	pg := pgtest.New(t, pgtest.Options{})
	c := startCluster(t, pg.NewDatabase(t), 2)
	fn := fnName(t, "dbdown")
	w := phpWorker(t, c.addrs(), []string{"IDLE_DEADLINE=28"}, 1000, fn+"=reverse")
	before := bgHandles(t, c.nodes[0].addr, fn, "before")
	waitStarted(t, 10*time.Second, before, w)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	lines := phpClient(t, c.nodes[1].addr, "bg", "normal", fn, "while-down")
	if f := strings.Fields(lines[0]); len(f) >= 2 && f[1] == "0" {
		t.Fatalf("background submit with the database down: %q, want a refusal", lines[0])
	}
	if got := phpClient(t, c.nodes[1].addr, "do", "normal", fn, "fg"); got[0] != "RESULT 0 gf" {
		t.Fatalf("foreground job with the database down: %q, want RESULT 0 gf", got)
	}

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var after string
	for after == "" {
		l := phpClient(t, c.nodes[1].addr, "bg", "normal", fn, "after")[0]
		if f := strings.Fields(l); len(f) == 3 && f[1] == "0" {
			after = f[2]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background submits still refused 20s after the database came back: %q", l)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitStarted(t, 10*time.Second, []string{after}, w)
}

// A background submit whose unique is queued on another node gets that job's handle, and
// GET_STATUS on a third node knows the job.
func TestClusterCoalescesAcrossNodes(t *testing.T) {
	t.Parallel()
	c := startCluster(t, pgtest.New(t, pgtest.Options{}).NewDatabase(t), 3)
	fn := fnName(t, "coalesce")
	first := dialGearman(t, c.nodes[0].addr).submitBg(fn, "order-42", "a")
	second := dialGearman(t, c.nodes[1].addr).submitBg(fn, "order-42", "b")
	if first != second {
		t.Fatalf("the unique order-42 on two nodes made two jobs: %s and %s", first, second)
	}
	other := dialGearman(t, c.nodes[2].addr).submitBg(fn, "order-43", "c")
	if other == first {
		t.Fatalf("another unique got the same handle %s", first)
	}
	st := dialGearman(t, c.nodes[2].addr).call(codec.GetStatus, first)
	if st.typ != codec.StatusRes || st.args[1] != "1" {
		t.Fatalf("GET_STATUS of %s on a third node: %v, want known", first, st)
	}
}

// A recurring schedule fires once per firing across the cluster, and goes on firing once
// when the node that led the schedules is killed just before a firing. (A PHP worker lives
// at most procTimeout: one is started for each firing.)
func TestClusterScheduleFiresOnceWhileItsLeaderIsKilled(t *testing.T) {
	requirePHP(t)
	t.Parallel()
	// Logged down to each firing and change of lead: the servers' output is shown on a failure.
	c := startCluster(t, pgtest.New(t, pgtest.Options{}).NewDatabase(t), 3, "--verbose", "DEBUG")
	fn := fnName(t, "cron")
	// The first firing: the next minute, at least 10 seconds away. The schedule fires every
	// minute, so it is added only after any minute that comes sooner has passed: added
	// before it, it also fired then, and that run was counted with the first firing's.
	first := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(first) < 10*time.Second {
		time.Sleep(time.Until(first) + 100*time.Millisecond)
		first = first.Add(time.Minute)
	}
	leader := leaderOf(t, c)
	others := []int{(leader + 1) % 3, (leader + 2) % 3}
	// Added on a node that does not lead: the leader reads it from the database.
	if reply := adminLine(t, c.nodes[others[0]].addr, "schedule add "+fn+" * * * * * data=tick"); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("schedule add: %q", reply)
	}
	time.Sleep(time.Until(first.Add(-5 * time.Second)))
	env := []string{"IDLE_DEADLINE=20"}
	w1 := phpWorker(t, c.addrs(), env, 1000, fn+"=reverse")
	time.Sleep(time.Until(first.Add(5 * time.Second)))
	if n := len(startedHandles(t, w1)); n != 1 {
		t.Fatalf("%d runs of the schedule after its first firing, want 1", n)
	}
	// Kill the leader a second before the next firing: another node takes the lead and
	// runs that firing, once.
	second := first.Add(time.Minute)
	time.Sleep(time.Until(second.Add(-time.Second)))
	c.nodes[leader].kill()
	w2 := phpWorker(t, c.addrs(others...), env, 1000, fn+"=reverse")
	time.Sleep(time.Until(second.Add(6 * time.Second)))
	if n := len(startedHandles(t, w2)); n != 1 {
		t.Fatalf("%d runs of the schedule's second firing, its leader killed a second before it; want 1", n)
	}
	if n := len(startedHandles(t, w1, w2)); n != 2 {
		t.Fatalf("%d runs in all, want 2", n)
	}
}

// leaderOf is the index of the node that leads the schedules (show node).
func leaderOf(t *testing.T, c *cluster) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if slices.Contains(adminList(t, n.addr, "show node"), "schedules\tleads") {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no node took the lead of the schedules within 10s")
	return -1
}

// gearmanConn is a raw binary-protocol connection.
type gearmanConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

type gearmanPacket struct {
	typ  codec.Type
	args []string
}

func dialGearman(t *testing.T, addr string) *gearmanConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &gearmanConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (g *gearmanConn) send(typ codec.Type, args ...string) {
	g.t.Helper()
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	if _, err := g.conn.Write(codec.AppendRequest(nil, typ, bs...)); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gearmanConn) recv() gearmanPacket {
	g.t.Helper()
	_ = g.conn.SetReadDeadline(time.Now().Add(eventTimeout))
	head := make([]byte, codec.HeaderSize)
	if _, err := io.ReadFull(g.r, head); err != nil {
		g.t.Fatalf("reading a reply: %v", err)
	}
	size := int(head[8])<<24 | int(head[9])<<16 | int(head[10])<<8 | int(head[11])
	body := make([]byte, size)
	if _, err := io.ReadFull(g.r, body); err != nil {
		g.t.Fatalf("reading a reply: %v", err)
	}
	typ := codec.Type(int(head[4])<<24 | int(head[5])<<16 | int(head[6])<<8 | int(head[7]))
	var args []string
	if size > 0 {
		args = strings.Split(string(body), "\x00")
	}
	return gearmanPacket{typ: typ, args: args}
}

func (g *gearmanConn) call(typ codec.Type, args ...string) gearmanPacket {
	g.t.Helper()
	g.send(typ, args...)
	return g.recv()
}

// echo waits until the server has handled everything sent before it.
func (g *gearmanConn) echo() {
	g.t.Helper()
	if p := g.call(codec.EchoReq, "sync"); p.typ != codec.EchoRes {
		g.t.Fatalf("ECHO_REQ answered %v", p)
	}
}

func (g *gearmanConn) submitBg(fn, unique, data string) string {
	g.t.Helper()
	p := g.call(codec.SubmitJobBg, fn, unique, data)
	if p.typ != codec.JobCreated {
		g.t.Fatalf("SUBMIT_JOB_BG %s %s answered %v", fn, unique, p)
	}
	return p.args[0]
}
