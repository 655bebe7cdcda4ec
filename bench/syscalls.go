package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The server's system calls are counted by perf(1) attached to its process:
//
//	perf stat -e raw_syscalls:sys_enter -p PID -x, -D -1 --control fd:3,4
//
// -D -1 attaches with the counter disabled; "enable\n" and "disable\n" written to fd 3 switch
// it, and perf answers each on fd 4 with "ack\n". The counter is thus on exactly while the
// meter's phase runs, not while perf starts up or shuts down. The counter is per thread with
// inheritance, so threads the server starts during the phase are counted too. SIGINT then
// makes perf print its CSV (-x,) line on stderr:
//
//	COUNT,UNIT,EVENT,RUN_TIME_NS,PERCENT_RUNNING,METRIC,METRIC_UNIT
//	82812,,raw_syscalls:sys_enter,352571904,100.00,,
//
// COUNT is "<not counted>" when no thread of the process ran while the counter was on, and
// "<not supported>" when the kernel lacks the tracepoint. Around that line perf prints other
// text ("Events enabled", "# started on ..."), which the parser skips.
const syscallEvent = "raw_syscalls:sys_enter"

// perfAckTimeout bounds each wait for perf: its start-up (attaching to every thread), the
// answers to enable/disable and its exit. A variable for the tests.
var perfAckTimeout = 15 * time.Second

// syscallCounter is one perf stat process counting one server's system calls.
type syscallCounter struct {
	cmd    *exec.Cmd
	ctl    *os.File // our end of perf's control pipe (its fd 3)
	ack    *os.File // our end of perf's acknowledgement pipe (its fd 4)
	stderr bytes.Buffer
	exited chan struct{}
}

// startSyscallCounter attaches perf to pid and turns its counter on; when it returns without
// error, every system call the process makes from now on is counted.
func startSyscallCounter(perf string, pid int) (*syscallCounter, error) {
	path, err := exec.LookPath(perf)
	if err != nil {
		return nil, fmt.Errorf("%s not found (install linux-perf): %w", perf, err)
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, err
	}
	s := &syscallCounter{ctl: ctlW, ack: ackR, exited: make(chan struct{})}
	s.cmd = exec.Command(path, "stat", "-e", syscallEvent, "-p", strconv.Itoa(pid), "-x,",
		"-D", "-1", "--control", "fd:3,4")
	s.cmd.ExtraFiles = []*os.File{ctlR, ackW}
	s.cmd.Stdout = &s.stderr
	s.cmd.Stderr = &s.stderr
	err = s.cmd.Start()
	// perf holds its own copies now; ours would keep the pipes open after perf died.
	ctlR.Close()
	ackW.Close()
	if err != nil {
		ctlW.Close()
		ackR.Close()
		return nil, fmt.Errorf("start %s: %w", perf, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.command("enable"); err != nil {
		s.kill()
		return nil, s.failure("enable", err)
	}
	return s, nil
}

// stop turns the counter off, ends perf and returns the count.
func (s *syscallCounter) stop() (int64, error) {
	if err := s.command("disable"); err != nil {
		s.kill()
		return 0, s.failure("disable", err)
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(perfAckTimeout):
		s.kill()
		return 0, errors.New("perf did not exit after SIGINT")
	}
	s.ctl.Close()
	s.ack.Close()
	// perf exits with 130 after SIGINT; what counts is the line it printed.
	return parsePerfSyscalls(s.stderr.Bytes())
}

// command sends one control command and waits for perf's acknowledgement.
func (s *syscallCounter) command(cmd string) error {
	if _, err := s.ctl.Write([]byte(cmd + "\n")); err != nil {
		return err
	}
	_ = s.ack.SetReadDeadline(time.Now().Add(perfAckTimeout))
	var buf [16]byte
	var got []byte
	for !bytes.Contains(got, []byte("ack")) {
		n, err := s.ack.Read(buf[:])
		got = append(got, buf[:n]...)
		if err != nil {
			return err
		}
	}
	return nil
}

// kill ends perf without waiting for its output (after a failure).
func (s *syscallCounter) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.ctl.Close()
	s.ack.Close()
}

// failure describes a failed control step with what perf said about it.
func (s *syscallCounter) failure(step string, err error) error {
	<-s.exited // kill has ended it
	msg := perfMessage(s.stderr.String())
	if msg == "" {
		return fmt.Errorf("perf stat %s: %v", step, err)
	}
	return fmt.Errorf("perf stat %s: %v: %s", step, err, msg)
}

// perfMessage is what perf said, on one line: its non-empty lines but the "Events ..."
// chatter of the control commands, joined and cut at 300 bytes.
func perfMessage(s string) string {
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "Events ") {
			parts = append(parts, line)
		}
	}
	msg := strings.Join(parts, " ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// parsePerfSyscalls finds the raw_syscalls:sys_enter line in perf stat -x, output and returns
// its count.
func parsePerfSyscalls(out []byte) (int64, error) {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 3 || f[2] != syscallEvent {
			continue
		}
		switch v := f[0]; {
		case strings.HasPrefix(v, "<"):
			return 0, fmt.Errorf("perf stat: %s %s", syscallEvent, v)
		default:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("perf stat: bad count %q for %s", v, syscallEvent)
			}
			return n, nil
		}
	}
	if msg := perfMessage(string(out)); msg != "" {
		return 0, fmt.Errorf("perf stat printed no %s count: %s", syscallEvent, msg)
	}
	return 0, fmt.Errorf("perf stat printed no %s count", syscallEvent)
}

// warnNoSyscalls says on warnOut, once per process, why the system call count is missing.
func warnNoSyscalls(err error) {
	warnOnce.Do(func() {
		fmt.Fprintf(warnOut, "spur-bench: server system calls not counted (syscalls_per_job left out): %v\n", err)
	})
}

// Variables for the tests.
var (
	warnOnce sync.Once
	warnOut  io.Writer = os.Stderr
)
