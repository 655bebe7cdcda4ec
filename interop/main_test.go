// Package interop drives a real job server with real third-party Gearman
// clients: the PECL gearman extension for PHP, libgearman's `gearman` and
// `gearadmin` command-line tools, Perl's Gearman::Client/Gearman::Worker,
// libgearman's C API (testdata/capi.c, compiled by the tests) and the npm
// package gearman (node/, installed there by `npm ci`). README.md lists
// their versions and every scenario.
//
// By default the server under test is Spur (built once in TestMain from
// ../cmd/spurd), and every test runs twice as subtests: TestX/builtin against
// `spurd -q builtin` (memory only) and TestX/durable against spurd's default
// durable queue in a temporary --data-dir. With SPUR_INTEROP_SERVER=gearmand
// the same tests run once (TestX/gearmand) against the C gearmand at
// /usr/sbin/gearmand, which is how the expectations in this package were
// validated.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/cmd/spurd/spurdtest"
)

const (
	// gearmandPath is the C reference server used when SPUR_INTEROP_SERVER=gearmand.
	gearmandPath = "/usr/sbin/gearmand"
	// procTimeout bounds every subprocess (client, worker, admin tool).
	procTimeout = 30 * time.Second
	// readyTimeout bounds the wait for a started server to accept connections.
	readyTimeout = 10 * time.Second
	// eventTimeout bounds a wait for one expected event (a line, a status).
	eventTimeout = 15 * time.Second
)

var (
	serverKind string // "spur" or "gearmand"
	tmpRoot    string // removed after the run
	spurdBin   string // path of the built spurd binary
	buildErr   error  // why spurd could not be built, reported by every test
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	switch v := os.Getenv("SPUR_INTEROP_SERVER"); v {
	case "", "spur":
		serverKind = "spur"
	case "gearmand":
		serverKind = "gearmand"
	default:
		fmt.Fprintf(os.Stderr, "interop: SPUR_INTEROP_SERVER=%q: want \"gearmand\", \"spur\" or unset\n", v)
		return 2
	}
	var err error
	tmpRoot, err = os.MkdirTemp("", "spur-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 2
	}
	defer os.RemoveAll(tmpRoot)

	if serverKind == "spur" {
		spurdBin = filepath.Join(tmpRoot, "spurd")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", spurdBin, "github.com/spur-gearman/spur/cmd/spurd")
		cmd.Dir = ".." // the repository root
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/spurd: %v\n%s", err, out)
		}
	}
	return m.Run()
}

// server is one running job server process.
type server struct {
	addr string // "127.0.0.1:PORT"
	host string
	port int
	pid  int
	out  *syncBuffer // its stdout and stderr
	// kill ends the server with SIGKILL, as a crash; the test's end does not count its
	// exit as a failure then.
	kill func()
}

// serverMode is one configuration of the server under test. Every test runs
// once per mode of the run, as a subtest named after it: against Spur both in
// memory ("builtin": -q builtin) and with its default durable queue
// ("durable": Pebble in a data directory of the test's own, --sync always, so
// JOB_CREATED for a background job waits for the fsync); against gearmand
// once ("gearmand").
type serverMode struct {
	name    string
	durable bool
}

// modes returns the modes every test runs in for this run's server kind.
func modes() []serverMode {
	if serverKind == "gearmand" {
		return []serverMode{{name: "gearmand"}}
	}
	return []serverMode{{name: "builtin"}, {name: "durable", durable: true}}
}

// forEachMode runs test once per server mode, each as its own subtest.
func forEachMode(t *testing.T, test func(t *testing.T, srv serverMode)) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) { test(t, m) })
	}
}

// start starts a fresh job server on an ephemeral loopback port and returns
// its address; it is killed when the test ends.
func (m serverMode) start(t *testing.T, extraArgs ...string) (addr string, port int) {
	t.Helper()
	s := m.launch(t, extraArgs...)
	return s.addr, s.port
}

// launch is start returning the whole server description.
func (m serverMode) launch(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("cannot start Spur: %v", buildErr)
	}
	var lastErr error
	// The port is picked by binding :0 and closing it; another process may
	// grab it in between, so retry a few times when the server dies early.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := m.tryLaunch(t, extraArgs)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("server did not start: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

func (m serverMode) tryLaunch(t *testing.T, extraArgs []string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var bin string
	var args []string
	p := strconv.Itoa(port)
	switch serverKind {
	case "gearmand":
		bin = gearmandPath
		args = []string{"-p", p, "-L", "127.0.0.1", "-l", "stderr", "--verbose", "ERROR"}
	default:
		bin = spurdBin
		args = []string{"-p", p, "-L", "127.0.0.1"}
		if m.durable {
			// A fresh directory per attempt: a server that died early may
			// have left its lock behind.
			args = append(args, "--data-dir", t.TempDir())
		} else {
			args = append(args, "-q", "builtin")
		}
	}
	args = append(args, extraArgs...)
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	s := &server{addr: net.JoinHostPort("127.0.0.1", p), host: "127.0.0.1", port: port, pid: cmd.Process.Pid, out: out}
	var killed atomic.Bool
	s.kill = func() {
		killed.Store(true)
		_ = cmd.Process.Kill()
		<-exited
	}
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	deadline := time.Now().Add(readyTimeout)
	for {
		// This process must be the one listening, not another test's that took the port.
		if spurdtest.ListensOn(s.pid, port) {
			break
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%s %s exited before accepting connections: %v\n%s",
				bin, strings.Join(args, " "), waitErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s %s: port %d not accepting after %v\n%s",
				bin, strings.Join(args, " "), port, readyTimeout, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s pid %d listening on %s (%s)", serverKind, s.pid, s.addr, strings.Join(args, " "))
	t.Cleanup(func() {
		select {
		case <-exited:
			if !killed.Load() {
				t.Errorf("server %s exited during the test: %v", serverKind, waitErr)
			}
		default:
		}
		stop()
		if t.Failed() {
			t.Logf("server output:\n%s", out.String())
		}
	})
	return s, nil
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---------------------------------------------------------------------------
// Client availability. Missing clients fail the test: a skipped interop
// suite would silently prove nothing.

var (
	checkOnce  sync.Map // name -> *checkResult
	phpPackage = "php-cli php-gearman"
)

type checkResult struct {
	once sync.Once
	err  error
}

func checkCached(name string, f func() error) error {
	v, _ := checkOnce.LoadOrStore(name, &checkResult{})
	r := v.(*checkResult)
	r.once.Do(func() { r.err = f() })
	return r.err
}

func requirePHP(t *testing.T) {
	t.Helper()
	err := checkCached("php", func() error {
		out, err := exec.Command("php", "-m").CombinedOutput()
		if err != nil {
			return fmt.Errorf("php -m: %v: %s", err, out)
		}
		if !bytes.Contains(bytes.ToLower(out), []byte("gearman")) {
			return errors.New("the php gearman extension is not loaded (php -m does not list it)")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("PHP PECL gearman client unavailable: %v; install the Debian packages %s", err, phpPackage)
	}
}

func requirePerl(t *testing.T) {
	t.Helper()
	err := checkCached("perl", func() error {
		out, err := exec.Command("perl", "-MGearman::Client", "-MGearman::Worker", "-e1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("perl -MGearman::Client -MGearman::Worker -e1: %v: %s", err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Perl Gearman client unavailable: %v; install the Debian package libgearman-client-perl", err)
	}
}

func requireCLI(t *testing.T) {
	t.Helper()
	err := checkCached("cli", func() error {
		for _, tool := range []string{"gearman", "gearadmin"} {
			if _, err := exec.LookPath(tool); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("libgearman command-line tools unavailable: %v; install the Debian package gearman-tools", err)
	}
}

// ---------------------------------------------------------------------------
// Subprocesses.

// result is a finished subprocess.
type result struct {
	stdout, stderr string
	err            error // nil, *exec.ExitError, or a start/timeout error
}

func (r result) exitCode() int {
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		return ee.ExitCode()
	}
	if r.err != nil {
		return -1
	}
	return 0
}

// run runs a command to completion under procTimeout.
func run(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "testdata"
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var so, se bytes.Buffer
	cmd.Stdout = &so
	cmd.Stderr = &se
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %v", procTimeout, err)
	}
	r := result{stdout: so.String(), stderr: se.String(), err: err}
	t.Logf("ran %s %s: exit %d\nstdout: %q\nstderr: %q", name, clip(strings.Join(args, " ")), r.exitCode(), clip(r.stdout), clip(r.stderr))
	return r
}

// mustRun is run that fails the test unless the command exits 0.
func mustRun(t *testing.T, name string, args ...string) result {
	t.Helper()
	r := run(t, "", name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

// proc is a background subprocess whose stdout is collected line by line.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	lines  *lineBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // valid after done is closed
}

// lineBuffer collects complete output lines.
type lineBuffer struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, string(b.partial[:i]))
		b.partial = b.partial[i+1:]
	}
	return len(p), nil
}

func (b *lineBuffer) snapshot() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string(nil), b.lines...)
	if len(b.partial) > 0 {
		out = append(out, string(b.partial))
	}
	return out
}

// startProc starts a background subprocess (working directory testdata/)
// under procTimeout; it is killed by PID when the test ends.
func startProc(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "testdata"
	cmd.Env = append(os.Environ(), env...)
	p := &proc{t: t, name: name + " " + strings.Join(args, " "), cmd: cmd, lines: &lineBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.lines
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("process %q (pid %d):\n%s", clip(p.name), cmd.Process.Pid, p.output())
		}
	})
	return p
}

// output describes the process's output so far for failure messages.
func (p *proc) output() string {
	lines := p.lines.snapshot()
	for i := range lines {
		lines[i] = clip(lines[i])
	}
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", strings.Join(lines, "\n"), clip(p.stderr.String()))
}

// waitLine waits until some stdout line starts with prefix and returns it.
func (p *proc) waitLine(prefix string) string {
	p.t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		for _, l := range p.lines.snapshot() {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		select {
		case <-p.done:
			// One last look: output may have arrived right before exit.
			for _, l := range p.lines.snapshot() {
				if strings.HasPrefix(l, prefix) {
					return l
				}
			}
			p.t.Fatalf("%s exited (%v) without printing a line starting with %q\n%s",
				clip(p.name), p.err, prefix, p.output())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no line starting with %q within %v\n%s",
				clip(p.name), prefix, eventTimeout, p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireRunning fails the test at once if the process has already exited
// (a worker that should have lived on), instead of letting the next step
// wait for it in vain.
func (p *proc) requireRunning() {
	p.t.Helper()
	select {
	case <-p.done:
		p.t.Fatalf("%s exited (%v) while it should still be running\n%s", clip(p.name), p.err, p.output())
	default:
	}
}

// wait waits for the process to exit and returns its stdout lines.
func (p *proc) wait() ([]string, error) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(procTimeout + 5*time.Second):
		p.t.Fatalf("%s did not exit", p.name)
	}
	return p.lines.snapshot(), p.err
}

// mustExit waits for the process and fails the test unless it exited 0.
// Once the test has failed it kills the process instead of waiting for, say,
// a worker's remaining jobs that will never come.
func (p *proc) mustExit() []string {
	p.t.Helper()
	if p.t.Failed() {
		_ = p.cmd.Process.Kill()
		lines, _ := p.wait()
		return lines
	}
	lines, err := p.wait()
	if err != nil {
		p.t.Fatalf("%s: %v\n%s", clip(p.name), err, p.output())
	}
	return lines
}

// linesWithPrefix returns the lines starting with prefix, in order.
func linesWithPrefix(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Raw admin protocol, used to synchronise tests (e.g. wait until a worker has
// registered) independently of the client under test.

// adminSend sends a text admin command on a connection of its own, closed when the test
// ends, and returns the reader of its reply.
func adminSend(t *testing.T, addr, command string) *bufio.Reader {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("admin connect %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", command); err != nil {
		t.Fatalf("admin %q: %v", command, err)
	}
	return bufio.NewReader(c)
}

// adminList sends a text admin command and returns the reply lines before the
// terminating ".".
func adminList(t *testing.T, addr, command string) []string {
	t.Helper()
	r := adminSend(t, addr, command)
	var lines []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("admin %q: %v after %q", command, err, lines)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "." {
			return lines
		}
		lines = append(lines, l)
	}
}

// adminLine sends a text admin command that answers one line (OK, ERR ...) and returns it.
func adminLine(t *testing.T, addr, command string) string {
	t.Helper()
	l, err := adminSend(t, addr, command).ReadString('\n')
	if err != nil {
		t.Fatalf("admin %q: %v", command, err)
	}
	return l
}

// funcStatus is one line of the admin "status" reply.
type funcStatus struct {
	total, running, workers int
}

// statusOf returns the admin status of fn, ok=false if fn is not listed.
func statusOf(t *testing.T, addr, fn string) (funcStatus, bool) {
	t.Helper()
	for _, l := range adminList(t, addr, "status") {
		f := strings.Split(l, "\t")
		if len(f) != 4 || f[0] != fn {
			continue
		}
		var s funcStatus
		var err error
		for i, p := range []*int{&s.total, &s.running, &s.workers} {
			if *p, err = strconv.Atoi(f[i+1]); err != nil {
				t.Fatalf("bad status line %q", l)
			}
		}
		return s, true
	}
	return funcStatus{}, false
}

// waitStatus polls the admin status until cond holds for fn.
func waitStatus(t *testing.T, addr, fn string, desc string, cond func(funcStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		s, ok := statusOf(t, addr, fn)
		if ok && cond(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("function %q: waited %v for %s; last status %+v (listed=%v)", fn, eventTimeout, desc, s, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitWorkers waits until fn has exactly n registered workers.
func waitWorkers(t *testing.T, addr, fn string, n int) {
	t.Helper()
	waitStatus(t, addr, fn, fmt.Sprintf("%d worker(s)", n), func(s funcStatus) bool { return s.workers == n })
}

// releaseFile returns a fresh path for a worker's RELEASE_FILE and a function
// that creates it.
func releaseFile(t *testing.T) (path string, release func()) {
	path = filepath.Join(t.TempDir(), "release")
	return path, func() {
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fnName returns a function name unique to the running test.
func fnName(t *testing.T, suffix string) string {
	n := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return n + "_" + suffix
}

// clip shortens s for log messages.
func clip(s string) string {
	const max = 600
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:max], len(s))
}
