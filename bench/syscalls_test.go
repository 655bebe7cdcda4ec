package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParsePerfSyscalls feeds parsePerfSyscalls what perf stat -x, prints.
func TestParsePerfSyscalls(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      int64
		err       string // substring of the error; "" = no error
	}{
		{"plain", "82812,,raw_syscalls:sys_enter,352571904,100.00,,\n", 82812, ""},
		{"with perf's chatter", "Events disabled\nEvents enabled\n\n12,,raw_syscalls:sys_enter,1000,100.00,,\nEvents disabled\n", 12, ""},
		{"with a header", "# started on Tue Dec  1 21:17:38 2026\n\n1511570,,raw_syscalls:sys_enter,509701519,100.00,,\n", 1511570, ""},
		{"multiplexed", "77,,raw_syscalls:sys_enter,1000,50.00,,\n", 77, ""},
		{"zero", "0,,raw_syscalls:sys_enter,1000,100.00,,\n", 0, ""},
		{"other events first", "1005.37,msec,task-clock,1005368359,100.00,2.000,CPUs utilized\n60495,,raw_syscalls:sys_enter,1005369029,100.00,60.172,K/sec\n", 60495, ""},
		{"not counted", "<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n", 0, "<not counted>"},
		{"not supported", "<not supported>,,raw_syscalls:sys_enter,0,100.00,,\n", 0, "<not supported>"},
		{"garbage count", "12x,,raw_syscalls:sys_enter,0,100.00,,\n", 0, "bad count"},
		{"negative count", "-3,,raw_syscalls:sys_enter,0,100.00,,\n", 0, "bad count"},
		{"an error instead", "Error:\nNo permission to enable raw_syscalls:sys_enter event.\n", 0, "Error:"},
		{"nothing", "", 0, "no raw_syscalls:sys_enter count"},
		{"another event only", "5,,raw_syscalls:sys_exit,1000,100.00,,\n", 0, "no raw_syscalls:sys_enter count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePerfSyscalls([]byte(tc.out))
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %d, %v; want %d, nil", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %d, %v; want an error containing %q", got, err, tc.err)
			}
		})
	}
}

// fakePerf writes a shell script that speaks perf stat's control protocol: it logs its
// arguments and every command to log, acknowledges each command, and prints body (a CSV count
// line) on stderr when interrupted. mode "deaf" never acknowledges; "fail" exits at once with
// an error message, as perf does when it may not attach.
func fakePerf(t *testing.T, mode, body string) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	path, log = filepath.Join(dir, "perf"), filepath.Join(dir, "log")
	var script string
	switch mode {
	case "ok":
		script = `#!/bin/sh
echo "$@" >"` + log + `"
trap 'printf "%s\n" "` + body + `" >&2; exit 130' INT
while read -r cmd <&3; do echo "$cmd" >>"` + log + `"; printf 'ack\n' >&4; done
sleep 60
`
	case "deaf":
		script = "#!/bin/sh\nexec sleep 60\n"
	case "fail":
		script = "#!/bin/sh\necho 'Error:' >&2\necho 'No permission to enable raw_syscalls:sys_enter event.' >&2\nexit 255\n"
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

// TestSyscallCounterProtocol drives startSyscallCounter and stop against fake perfs: the
// arguments, the enable/disable sequence and the count; a perf that fails or never answers
// gives an error in bounded time.
func TestSyscallCounterProtocol(t *testing.T) {
	perf, log := fakePerf(t, "ok", "4321,,raw_syscalls:sys_enter,1000,100.00,,")
	c, err := startSyscallCounter(perf, 4242)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.stop()
	if err != nil || n != 4321 {
		t.Fatalf("stop: %d, %v; want 4321, nil", n, err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "stat -e raw_syscalls:sys_enter -p 4242 -x, -D -1 --control fd:3,4\nenable\ndisable\n"
	if string(b) != want {
		t.Fatalf("perf saw:\n%s\nwant:\n%s", b, want)
	}

	perf, _ = fakePerf(t, "fail", "")
	if _, err := startSyscallCounter(perf, 4242); err == nil || !strings.Contains(err.Error(), "No permission") {
		t.Fatalf("failing perf: %v, want its message", err)
	}

	old := perfAckTimeout
	perfAckTimeout = 300 * time.Millisecond
	defer func() { perfAckTimeout = old }()
	perf, _ = fakePerf(t, "deaf", "")
	start := time.Now()
	if _, err := startSyscallCounter(perf, 4242); err == nil {
		t.Fatal("a perf that never acknowledges was accepted")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("gave up after %v", el)
	}

	if _, err := startSyscallCounter(filepath.Join(t.TempDir(), "no-perf"), 4242); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing perf: %v", err)
	}
}

// captureWarnings makes warnNoSyscalls write to a buffer, once again, for one test.
func captureWarnings(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	oldOut := warnOut
	warnOut, warnOnce = &buf, sync.Once{}
	t.Cleanup(func() { warnOut, warnOnce = oldOut, sync.Once{} })
	return &buf
}

// TestServerSyscalls counts a real spurd's system calls over an echo run on one connection,
// one request at a time: each round trip costs the server at least a read and a write. Where
// perf is not installed the count must be absent, with the reason said once.
func TestServerSyscalls(t *testing.T) {
	warnings := captureWarnings(t)
	addr, pid := startSpurd(t)
	cfg := testConfig(addr, "echo", 2000)
	cfg.Conns, cfg.Window, cfg.PID, cfg.Perf = 1, 1, pid, "perf"
	res := runWorkload(cfg)
	t.Log(humanLine(res))
	if !res.OK || res.Server == nil {
		t.Fatalf("run failed: %s", res.Failure)
	}
	b, _ := json.Marshal(res)
	if _, err := exec.LookPath("perf"); err != nil {
		if res.Server.Syscalls != nil || res.Server.SyscallsPerJob != nil || bytes.Contains(b, []byte("syscalls")) {
			t.Fatalf("no perf, yet syscalls reported: %s", b)
		}
		if !strings.Contains(warnings.String(), "not found") {
			t.Fatalf("no perf and no warning saying so: %q", warnings.String())
		}
		return
	}
	s := res.Server
	if s.Syscalls == nil || s.SyscallsPerJob == nil {
		t.Fatalf("perf is installed but counted nothing: %s", warnings.String())
	}
	if *s.SyscallsPerJob < 2 || *s.SyscallsPerJob > 1000 {
		t.Fatalf("%v syscalls per echo round trip, want at least 2 (a read and a write)", *s.SyscallsPerJob)
	}
	if !bytes.Contains(b, []byte(`"syscalls_per_job":`)) || !strings.Contains(humanLine(res), "/job, rss") {
		t.Fatalf("count missing from the output: %s / %s", b, humanLine(res))
	}
	if warnings.Len() != 0 {
		t.Fatalf("warned although counted: %s", warnings.String())
	}
}

// TestSyscallsAbsentWithoutPerf: a perf that cannot be run leaves the fields out of the JSON
// (not zero), says why once on the warning output, and does not fail the run.
func TestSyscallsAbsentWithoutPerf(t *testing.T) {
	warnings := captureWarnings(t)
	addr, pid := startSpurd(t)
	for i := 0; i < 2; i++ {
		cfg := testConfig(addr, "echo", 500)
		cfg.PID, cfg.Perf = pid, filepath.Join(t.TempDir(), "no-perf")
		res := runWorkload(cfg)
		if !res.OK || res.Server == nil || res.Server.CPUSeconds < 0 {
			t.Fatalf("run failed: %s", humanLine(res))
		}
		b, _ := json.Marshal(res)
		if bytes.Contains(b, []byte("syscalls")) || strings.Contains(humanLine(res), "syscalls") {
			t.Fatalf("syscalls reported without perf: %s", b)
		}
	}
	if n := strings.Count(warnings.String(), "not counted"); n != 1 {
		t.Fatalf("%d warnings, want 1: %q", n, warnings.String())
	}
}
