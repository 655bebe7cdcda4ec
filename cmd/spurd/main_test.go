package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/cmd/spurd/spurdtest"
	"github.com/spur-gearman/spur/engine"
)

var spurdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spurd-test")
	if err != nil {
		panic(err)
	}
	spurdBin = filepath.Join(dir, "spurd")
	if out, err := exec.Command("go", "build", "-o", spurdBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// startSpurd starts the binary and waits until its port accepts connections.
func startSpurd(t *testing.T, args ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	port := freePort(t)
	base := []string{"-p", port, "-L", "127.0.0.1", "--data-dir", t.TempDir()}
	cmd := exec.Command(spurdBin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addr := net.JoinHostPort("127.0.0.1", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The port accepting is not enough: a test that restarts its spurd frees its port
		// for a moment, freePort may hand it to another test, and then two spurds race for
		// it. The one started here must be the one listening.
		if listensOn(cmd.Process.Pid, port) {
			return cmd, addr, &stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("spurd did not listen on %s: %s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(15 * time.Second):
		t.Fatal("spurd did not exit")
		return -1
	}
}

func adminLine(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line + "\r\n")); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return reply
}

func TestStartsLogsAndStopsOnSIGTERM(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "spurd.pid")
	cmd, addr, stderr := startSpurd(t, "-q", "builtin", "-P", pidFile)
	pid, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("pid file %q (%v), want %d", pid, err, cmd.Process.Pid)
	}
	if got := adminLine(t, addr, "getpid"); got != "OK "+strconv.Itoa(cmd.Process.Pid)+"\n" {
		t.Fatalf("getpid: %q", got)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit code %d after SIGTERM: %s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "listening on "+addr) {
		t.Fatalf("no startup line naming %s in: %s", addr, stderr)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("pid file left behind: %v", err)
	}
}

func TestSIGINTExitsZero(t *testing.T) {
	cmd, _, stderr := startSpurd(t)
	_ = cmd.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit code %d after SIGINT: %s", code, stderr)
	}
}

func TestAdminShutdownFromLoopback(t *testing.T) {
	for _, line := range []string{"shutdown", "shutdown graceful"} {
		cmd, addr, stderr := startSpurd(t)
		if got := adminLine(t, addr, line); got != "OK\r\n" {
			t.Fatalf("%s: %q", line, got)
		}
		if code := waitExit(t, cmd); code != 0 {
			t.Fatalf("%s: exit code %d: %s", line, code, stderr)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(spurdBin, "-V").Output()
	if err != nil || !strings.HasPrefix(string(out), "spurd ") {
		t.Fatalf("-V: %q %v", out, err)
	}
	out, err = exec.Command(spurdBin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, flag := range []string{"--port", "--listen", "--threads", "--job-retries", "--worker-wakeup",
		"--round-robin", "--log-file", "--verbose", "--pid-file", "--backlog", "--keepalive",
		"--job-handle-prefix", "--queue-type", "--data-dir", "--sync", "--max-packet-size", "--http-addr"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("--help does not mention %s", flag)
		}
	}
}

func TestBadFlagsExitNonZeroWithMessage(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"-q", "nosuchqueue"},
		{"--sync", "sometimes"},
		{"--ssl"},
		{"-p", "notaport"},
		{"--verbose", "LOUD"},
	} {
		cmd := exec.Command(spurdBin, args...)
		out, err := cmd.CombinedOutput()
		if err == nil || cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("%v: exited 0", args)
			continue
		}
		if !strings.Contains(string(out), "spurd") {
			t.Errorf("%v: no message: %q", args, out)
		}
	}
}

func TestGearmandOnlyFlagsAreAcceptedWithWarning(t *testing.T) {
	cmd, addr, stderr := startSpurd(t, "--hashtable-buckets", "991", "--libsqlite3-db", "/tmp/x.db", "-f", "1024")
	if got := adminLine(t, addr, "version"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("version: %q", got)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd)
	if !strings.Contains(stderr.String(), "--hashtable-buckets is ignored") {
		t.Fatalf("no warning for an ignored flag: %s", stderr)
	}
}

func TestPortInUseFailsClearly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	cmd := exec.Command(spurdBin, "-p", port, "-L", "127.0.0.1", "-q", "builtin")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), "cannot listen") {
		t.Fatalf("exit %d, output %q", cmd.ProcessState.ExitCode(), out)
	}
}

func TestOldStyleVerboseFlags(t *testing.T) {
	for flags, want := range map[string]string{"-v": "WARNING", "-vvv": "INFO", "-vvvvvvvv": "DEBUG"} {
		cmd, addr, _ := startSpurd(t, flags)
		if got := adminLine(t, addr, "verbose"); got != "OK "+want+"\n" {
			t.Errorf("%s: verbose answered %q, want OK %s", flags, got, want)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, cmd)
	}
}

// -w keeps gearmand's meaning when given (0 = every sleeping worker); left out, the engine
// wakes only as many workers as ready jobs need.
func TestWorkerWakeupFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"-w", "0"}, engine.WakeAll},
		{[]string{"--worker-wakeup=0"}, engine.WakeAll},
		{[]string{"-w", "3"}, 3},
	} {
		o, _, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := o.wakeup(); got != tc.want {
			t.Errorf("%v: WorkerWakeup %d, want %d", tc.args, got, tc.want)
		}
	}
	o, _, err := parseFlags([]string{"-w", "-1"}, io.Discard)
	if err == nil && o.validate() == nil {
		t.Fatal("-w -1 was accepted")
	}
}

// --max-connections-per-source caps the connections from one address: past it a new one is
// closed at once and the ones open keep working.
func TestMaxConnectionsPerSource(t *testing.T) {
	t.Parallel()
	_, addr, _ := startSpurd(t, "-q", "builtin", "--max-connections-per-source", "2")
	time.Sleep(200 * time.Millisecond) // the start-up check's connection is closed by now
	version := func(c net.Conn) error {
		if _, err := c.Write([]byte("version\r\n")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "OK ") {
			t.Fatalf("version: %q", line)
		}
		return err
	}
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	if err := version(conns[0]); err != nil {
		t.Fatalf("the first connection: %v", err)
	}
	if err := version(conns[1]); err != nil {
		t.Fatalf("the second connection: %v", err)
	}
	if err := version(conns[2]); err == nil {
		t.Fatal("a third connection from one address was served")
	}
	if err := version(conns[0]); err != nil {
		t.Fatalf("the first connection after the refusal: %v", err)
	}
}

// listensOn is spurdtest.ListensOn for a port given as text.
func listensOn(pid int, port string) bool {
	p, err := strconv.Atoi(port)
	return err == nil && spurdtest.ListensOn(pid, p)
}
