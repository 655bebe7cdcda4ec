package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/cmd/spur/client"
	"github.com/spur-gearman/spur/cmd/spurd/spurdtest"
)

// The tests run the built binaries, as a user would: spur against a real spurd (and C
// gearmand) on a loopback port each test picks.
var spurBin, spurdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spur-cli-test")
	if err != nil {
		panic(err)
	}
	spurBin, spurdBin = filepath.Join(dir, "spur"), filepath.Join(dir, "spurd")
	for bin, pkg := range map[string]string{spurBin: ".", spurdBin: "../spurd"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			os.Stderr.Write(out)
			panic(err)
		}
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

// startServer starts bin on a free loopback port and waits until it listens there.
func startServer(t *testing.T, bin string, args ...string) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(bin, append([]string{"-p", port, "-L", "127.0.0.1"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	p, _ := strconv.Atoi(port)
	for {
		if spurdtest.ListensOn(cmd.Process.Pid, p) { // this process, not another test's
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not accept on %s: %s", bin, port, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startSpurd(t *testing.T) string { return startServer(t, spurdBin, "-q", "builtin") }

type result struct {
	out, err string
	code     int
}

// spur runs the CLI against port with args, stdin from in.
func spur(t *testing.T, port, in string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, spurBin, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...)
	cmd.Stdin = strings.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("spur %v: did not end: %s %s", args, out.String(), errOut.String())
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("spur %v: %v", args, err)
	}
	return result{out.String(), errOut.String(), cmd.ProcessState.ExitCode()}
}

// ok runs spur and fails the test unless it exits 0; it returns stdout.
func ok(t *testing.T, port string, args ...string) string {
	t.Helper()
	r := spur(t, port, "", args...)
	if r.code != 0 {
		t.Fatalf("spur %v: exit %d: %s%s", args, r.code, r.out, r.err)
	}
	return r.out
}

func dial(t *testing.T, port string) *client.Client {
	t.Helper()
	c, err := client.Dial("127.0.0.1:"+port, client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func admin(t *testing.T, port, line string) []string {
	t.Helper()
	lines, err := dial(t, port).Admin(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return lines
}

// eventually polls cond until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// row returns the table line whose first column is first, split into columns.
func row(table, first string) []string {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

// silentListener accepts connections and never answers; it returns its port.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
