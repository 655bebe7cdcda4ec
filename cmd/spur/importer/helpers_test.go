package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// The servers these tests start: built or installed binaries, each on a loopback port the test
// picks, in a temporary directory. A missing binary fails the test: the store tests are the
// proof that the import works against the real thing.

const gearmandBin = "/usr/sbin/gearmand"

var (
	shared     string // a directory for the whole test binary (spurd's build, the stores)
	spurdOnce  sync.Once
	spurdPath  string
	spurdErr   error
	cleanupsMu sync.Mutex
	cleanups   []func()
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spur-import-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The stores run as an unprivileged user when the tests run as root: they must reach
	// their directories below this one.
	_ = os.Chmod(dir, 0o755)
	shared = dir
	code := m.Run()
	cleanupsMu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanupsMu.Unlock()
	os.RemoveAll(dir)
	os.Exit(code)
}

// atExit runs f when the test binary ends (the stores started once for all tests).
func atExit(f func()) {
	cleanupsMu.Lock()
	cleanups = append(cleanups, f)
	cleanupsMu.Unlock()
}

func spurdBinary(t testing.TB) string {
	t.Helper()
	spurdOnce.Do(func() {
		spurdPath = filepath.Join(shared, "spurd")
		out, err := exec.Command("go", "build", "-o", spurdPath, "../../spurd").CombinedOutput()
		if err != nil {
			spurdErr = fmt.Errorf("go build ./cmd/spurd: %v\n%s", err, out)
		}
	})
	if spurdErr != nil {
		t.Fatal(spurdErr)
	}
	return spurdPath
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPort waits until addr accepts connections, or the process exits, or 30 s pass.
func waitPort(t testing.TB, addr string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before listening on %s: %v\n%s", p.name, addr, p.err, p.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s is not listening on %s after 30 s\n%s", p.name, addr, p.log())
}

// proc is a server the test started.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *bytes.Buffer
	mu      sync.Mutex
	done    chan struct{}
	err     error
	stopped bool
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs name with args; asUser drops to that user when the test runs as root.
func start(t testing.TB, asUser string, name string, args ...string) *proc {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is needed by this test (see .ci/run): %v", name, err)
	}
	cmd := exec.Command(name, args...)
	if asUser != "" && os.Getuid() == 0 {
		u, err := user.Lookup(asUser)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	p := &proc{name: filepath.Base(name), cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	cmd.Dir = shared
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// stop ends p with SIGTERM (SIGKILL after 30 s) and waits for it; t may be nil (at exit).
func (p *proc) stop(t testing.TB) {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		if t != nil {
			t.Errorf("%s did not stop on SIGTERM within 30 s", p.name)
		} else {
			fmt.Fprintf(os.Stderr, "%s did not stop on SIGTERM within 30 s\n", p.name)
		}
	}
}

// chownTree gives dir to user when the tests run as root, so that a store can run as user.
func chownTree(t testing.TB, dir, who string) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	u, err := user.Lookup(who)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
}

// startSpurd starts spurd on dataDir and returns its address.
func startSpurd(t testing.TB, dataDir string) (string, *proc) {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := start(t, "", spurdBinary(t), "-p", strconv.Itoa(port), "-L", "127.0.0.1", "--data-dir", dataDir)
	t.Cleanup(func() { p.stop(t) })
	waitPort(t, addr, p)
	return addr, p
}

// startGearmand starts the real gearmand on queue args and returns its port.
func startGearmand(t testing.TB, queue []string) (int, *proc) {
	t.Helper()
	port := freePort(t)
	args := append([]string{"-p", strconv.Itoa(port), "-L", "127.0.0.1", "--log-file", "stderr", "--verbose", "WARNING", "-t", "1"}, queue...)
	p := start(t, "", gearmandBin, args...)
	t.Cleanup(func() { p.stop(t) })
	waitPort(t, fmt.Sprintf("127.0.0.1:%d", port), p)
	return port, p
}

// importRun runs `spur import args... --json` in this process and returns its report and
// error.
func importRun(t testing.TB, args ...string) (*report, error) {
	t.Helper()
	cmd := Command()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append(args, "--json"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	rep := &report{}
	if jerr := json.Unmarshal(out.Bytes(), rep); jerr != nil {
		t.Fatalf("spur import %q printed no JSON report (%v): %s\n%s", args, jerr, out.String(), errOut.String())
	}
	return rep, err
}

// job is one job a test queues and expects back.
type job struct {
	fn, unique string
	prio       int64
	when       int64
	data       string
}

func (j job) row() Row {
	return Row{Function: j.fn, Unique: j.unique, Priority: j.prio, When: j.when, Data: []byte(j.data)}
}

// testJobs is the queue each store test moves: three functions (one name with a dot, data
// with a NUL and one empty), every priority, UUID-like uniques (with dashes), the unique "-",
// an empty unique, and, unless the store cannot keep one, a job scheduled a few seconds
// ahead.
func testJobs(tag string, epoch bool) []job {
	var js []job
	for _, fn := range []string{"resize", "mail.send", "report"} {
		for i, prio := range []int64{prioLow, prioNormal, prioHigh, prioNormal, prioLow, prioHigh} {
			js = append(js, job{fn: fn, unique: fmt.Sprintf("%s-%08x-4b1d-%d", tag, i, prio), prio: prio,
				data: fmt.Sprintf("%s %s #%d\x00bin", tag, fn, i)})
		}
	}
	js = append(js, job{fn: "resize", unique: "", prio: prioNormal, data: tag + " no unique"})
	js = append(js, job{fn: "report", unique: "-", prio: prioLow, data: tag + " by data"})
	js = append(js, job{fn: "mail.send", unique: tag + "-empty", prio: prioHigh, data: ""})
	if epoch {
		js = append(js, job{fn: "report", unique: tag + "-later", prio: prioNormal,
			when: time.Now().Unix() + 3, data: tag + " scheduled"})
	}
	return js
}

// queueIntoGearmand submits js to gearmand: most over the protocol (pipelined), the first
// two with the gearman command-line client, as an application would.
func queueIntoGearmand(t testing.TB, port int, js []job) {
	t.Helper()
	if _, err := exec.LookPath("gearman"); err != nil {
		t.Fatalf("the gearman client (gearman-tools) is needed: %v", err)
	}
	var rest []Row
	for i, j := range js {
		if i < 2 && j.when == 0 && j.unique != "" {
			args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-b", "-f", j.fn, "-u", j.unique}
			switch j.prio {
			case prioHigh:
				args = append(args, "-I")
			case prioLow:
				args = append(args, "-L")
			}
			c := exec.Command("gearman", args...)
			c.Stdin = strings.NewReader(j.data)
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("gearman %q: %v\n%s", args, err, out)
			}
			continue
		}
		rest = append(rest, j.row())
	}
	submitRows(t, fmt.Sprintf("127.0.0.1:%d", port), rest)
}

// submitRows submits rows as background jobs to a Gearman server, each acknowledged.
func submitRows(t testing.TB, addr string, rows []Row) {
	t.Helper()
	s, err := dialServer(context.Background(), addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for len(rows) > 0 {
		n := min(len(rows), 1000)
		res, err := s.Import(context.Background(), rows[:n])
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.kind != imported {
				t.Fatalf("submit of %s/%q: %s", rows[i].Function, rows[i].Unique, r.reason)
			}
		}
		rows = rows[n:]
	}
}

// got is one job a worker received.
type got struct {
	fn, unique, data string
	at               time.Time
}

// collect connects a worker for fns to addr and returns the jobs it ran, in the order it got
// them, once want have arrived and nothing more came for quiet; it fails after timeout.
func collect(t testing.TB, addr string, fns []string, want int, quiet, timeout time.Duration) []got {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []byte
	for _, fn := range fns {
		out = codec.AppendRequest(out, codec.CanDo, []byte(fn))
	}
	grab := func() {
		out = codec.AppendRequest(out, codec.GrabJobUniq)
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		out = out[:0]
	}
	grab()
	var jobs []got
	buf := make([]byte, 0, 1<<16)
	end := time.Now().Add(timeout)
	lastJob := time.Now()
	for {
		pkt, n, err := codec.Parse(buf, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if len(jobs) >= want && time.Since(lastJob) > quiet {
				return jobs
			}
			if time.Now().After(end) {
				t.Fatalf("worker got %d of %d jobs in %v", len(jobs), want, timeout)
			}
			_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if len(buf) == cap(buf) {
				buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
			}
			m, err := c.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		switch pkt.Type {
		case codec.NoJob:
			out = codec.AppendRequest(out, codec.PreSleep)
			if _, err := c.Write(out); err != nil {
				t.Fatal(err)
			}
			out = out[:0]
		case codec.Noop:
			grab()
		case codec.JobAssignUniq:
			jobs = append(jobs, got{fn: string(pkt.Arg(1)), unique: string(pkt.Arg(2)), data: string(pkt.Arg(3)), at: time.Now()})
			lastJob = time.Now()
			out = codec.AppendRequest(out, codec.WorkComplete, pkt.Arg(0), []byte("ok"))
			grab()
		default:
			t.Fatalf("worker got %s", pkt.Type)
		}
		buf = buf[:copy(buf, buf[n:])]
	}
}

// checkReceived asserts every job of want arrived exactly once, with its data, a scheduled
// one not before its time, and each function's jobs that were due in priority order.
func checkReceived(t testing.TB, want []job, gotJobs []got) {
	t.Helper()
	type key struct{ fn, unique, data string }
	byKey := map[key]job{}
	for _, j := range want {
		byKey[key{j.fn, j.unique, j.data}] = j
	}
	seen := map[key]int{}
	lastPrio := map[string]int64{}
	for _, g := range gotJobs {
		k := key{g.fn, g.unique, g.data}
		j, ok := byKey[k]
		if !ok {
			t.Errorf("worker got a job nobody queued: %s/%q %q", g.fn, g.unique, g.data)
			continue
		}
		seen[k]++
		if j.when != 0 {
			if g.at.Unix() < j.when {
				t.Errorf("scheduled job %s/%q ran at %v, before its time %v", j.fn, j.unique, g.at, time.Unix(j.when, 0))
			}
			continue
		}
		if p, ok := lastPrio[j.fn]; ok && j.prio < p {
			t.Errorf("%s: a %s job came after a %s one", j.fn, priorityNames[j.prio], priorityNames[p])
		}
		lastPrio[j.fn] = j.prio
	}
	for k := range byKey {
		if seen[k] != 1 {
			t.Errorf("job %s/%q %q ran %d times, want once", k.fn, k.unique, k.data, seen[k])
		}
	}
}

func functionsOf(js []job) []string {
	set := map[string]bool{}
	var fns []string
	for _, j := range js {
		if !set[j.fn] {
			set[j.fn] = true
			fns = append(fns, j.fn)
		}
	}
	return fns
}
