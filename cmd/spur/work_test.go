package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWork starts `spur work` and waits until the server lists it.
func startWork(t *testing.T, port string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(spurBin, append([]string{"-h", "127.0.0.1", "-p", port, "work"}, args...)...)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	fn := args[0]
	eventually(t, "the worker registered", func() bool {
		f := row(ok(t, port, "status"), fn)
		return f != nil && f[len(f)-1] != "0"
	})
	return cmd, log
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(15 * time.Second):
		t.Fatal("spur work did not exit")
		return -1
	}
}

func TestWorkRunsCommandForJobsOfAnotherClient(t *testing.T) {
	port := startSpurd(t)
	startWork(t, port, "upper", "--", "sh", "-c", `tr a-z A-Z; printf " %s" "$GEARMAN_FUNCTION"`)
	if out := ok(t, port, "submit", "upper", "hello"); out != "HELLO upper" {
		t.Fatalf("foreground submit through spur work: %q", out)
	}
	// Data from stdin, and a client of the package rather than the CLI.
	if r := spur(t, port, "from stdin", "submit", "upper"); r.code != 0 || r.out != "FROM STDIN upper" {
		t.Fatalf("submit with stdin: %+v", r)
	}
	res, err := dial(t, port).Submit("upper", "", []byte("abc"), client.High, nil)
	if err != nil || res.Outcome != client.Complete || string(res.Data) != "ABC upper" {
		t.Fatalf("client.Submit: %v %+v", err, res)
	}
	// Background: the result is kept.
	h := strings.TrimSpace(ok(t, port, "submit", "upper", "--bg", "later"))
	eventually(t, "the background job's result", func() bool {
		r := spur(t, port, "", "result", h, "--json")
		return r.code == 0 && decode[resultRow](t, r.out).Data == "LATER upper"
	})
}

func TestWorkFailures(t *testing.T) {
	port := startSpurd(t)
	startWork(t, port, "boom", "--", "sh", "-c", `echo "disk full" >&2; exit 3`)
	r := spur(t, port, "", "submit", "boom", "x")
	if r.code != 1 || !strings.Contains(r.err, "exception: disk full") {
		t.Fatalf("exception: %+v", r)
	}
	startWork(t, port, "quiet", "--", "false")
	r = spur(t, port, "", "submit", "quiet", "x", "--json")
	if r.code != 1 || decode[map[string]string](t, r.out)["outcome"] != "fail" {
		t.Fatalf("WORK_FAIL: %+v", r)
	}
}

func TestWorkStopsGracefullyOnSIGTERM(t *testing.T) {
	port := startSpurd(t)
	dir := t.TempDir()
	c := dial(t, port)
	var handles []string
	for _, d := range []string{"one", "two"} {
		h, err := c.SubmitBackground("slow", "", []byte(d), client.Normal, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, h)
	}
	script := `touch "` + dir + `/$(cat)"; sleep 1; echo finished`
	cmd, log := startWork(t, port, "slow", "--", "sh", "-c", script)
	eventually(t, "the first job started", func() bool {
		_, err := os.Stat(filepath.Join(dir, "one"))
		return err == nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("spur work exited %d after SIGTERM:\n%s", code, log.String())
	}
	res := decode[resultRow](t, ok(t, port, "result", handles[0], "--json"))
	if res.Outcome != "complete" || res.Data != "finished\n" {
		t.Fatalf("the running job was not finished: %+v\n%s", res, log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "two")); err == nil {
		t.Fatal("the second job was started after SIGTERM")
	}
	st, err := c.GetStatus(handles[1])
	if err != nil || !st.Known || st.Running {
		t.Fatalf("the second job is not queued: %v %+v", err, st)
	}
}

func TestWorkConcurrency(t *testing.T) {
	port := startSpurd(t)
	dir := t.TempDir()
	// Each job waits until both have started: only two at once can finish.
	script := `touch "` + dir + `/$(cat)"; for i in $(seq 100); do [ -e "` + dir + `/a" ] && [ -e "` + dir + `/b" ] && exit 0; sleep 0.05; done; exit 1`
	startWork(t, port, "pair", "--concurrency", "2", "--", "sh", "-c", script)
	c := dial(t, port)
	var hs []string
	for _, d := range []string{"a", "b"} {
		h, err := c.SubmitBackground("pair", "", []byte(d), client.Normal, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		eventually(t, "both jobs complete", func() bool {
			r := spur(t, port, "", "result", h, "--json")
			return r.code == 0 && decode[resultRow](t, r.out).Outcome == "complete"
		})
	}
}
