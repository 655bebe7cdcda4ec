package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --log-format json writes one JSON object per line.
func TestLogFormatJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "spurd.log")
	_, addr, _ := startSpurd(t, "-q", "builtin", "--log-file", log, "--log-format", "json", "--verbose", "INFO")
	if got := adminLine(t, addr, "create function j"); got != "OK\r\n" {
		t.Fatalf("create function: %q", got)
	}
	line := waitLogLine(t, log, "function settings changed")
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] != "function settings changed" || rec["function"] != "j" {
		t.Fatalf("log line %q: %v, %v", line, rec, err)
	}
	code, out := runRefused(t, "-q", "builtin", "--log-format", "xml")
	if code == 0 || !strings.Contains(out, `unknown --log-format "xml"`) {
		t.Errorf("--log-format xml: exit %d, %q", code, out)
	}
}

// SIGHUP reopens --log-file, so that logrotate can move it away: later lines go to a new
// file under the same name, and the server keeps serving.
func TestSIGHUPReopensLogFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "spurd.log")
	cmd, addr, _ := startSpurd(t, "-q", "builtin", "--log-file", log, "--verbose", "INFO")
	if got := adminLine(t, addr, "create function before"); got != "OK\r\n" {
		t.Fatalf("create function: %q", got)
	}
	waitLogLine(t, log, "function=before")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := adminLine(t, addr, "create function after"); got != "OK\r\n" {
			t.Fatalf("create function after SIGHUP: %q", got)
		}
		if b, err := os.ReadFile(log); err == nil && strings.Contains(string(b), "function=after") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new log file with the line logged after SIGHUP")
		}
		_ = adminLine(t, addr, "drop function after")
		time.Sleep(20 * time.Millisecond)
	}
	if b, _ := os.ReadFile(log + ".1"); !strings.Contains(string(b), "function=before") {
		t.Errorf("the rotated file lost its lines: %q", b)
	}
}

// waitLogLine waits for a line of the log file holding want and returns it.
func waitLogLine(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, want) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in %q", want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
