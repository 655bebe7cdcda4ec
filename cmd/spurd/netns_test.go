package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A peer that is not on loopback is refused the admin commands that destroy or change state,
// and keeps the read-only ones. The peer is made with a network namespace of the test's own:
// an address on its lo that is not a loopback address, server and client both inside, so no
// traffic leaves the machine. Needs root (CI runs as root); without it the test fails, it
// does not skip.
func TestNonLoopbackPeerIsRefusedDestructiveAdmin(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("needs root, to make a network namespace (ip netns)")
	}
	ns := fmt.Sprintf("spurtest%d", os.Getpid())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
		return string(out)
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "addr", "add", "10.213.0.1/32", "dev", "lo")

	port := freePort(t)
	cmd := exec.Command("ip", "netns", "exec", ns, spurdBin, "-q", "builtin", "-p", port, "-L", "10.213.0.1", "-L", "127.0.0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// admin sends one line from inside the namespace, from the given address to the server's.
	admin := func(from, line string) string {
		t.Helper()
		script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s || exit 1; printf '%%s\r\n' "$1" >&3; head -n1 <&3`, from, port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := exec.Command("ip", "netns", "exec", ns, "bash", "-c", script, "-", line).CombinedOutput()
			if err == nil && len(out) > 0 {
				return string(out)
			}
			if time.Now().After(deadline) {
				t.Fatalf("admin %q from %s: %v: %s", line, from, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// From 10.213.0.1 to 10.213.0.1: the source is that address, not a loopback one.
	for _, line := range []string{"shutdown", "drop function f", "cancel job H:x:1", "maxqueue f 1", "pause f", "retry f 3 1 2", "schedule add f @daily"} {
		if got := admin("10.213.0.1", line); !strings.HasPrefix(got, "ERR PERMISSION_DENIED ") {
			t.Errorf("%q from a non-loopback peer: %q", line, got)
		}
	}
	if got := admin("10.213.0.1", "status"); got != ".\n" {
		t.Errorf("status from a non-loopback peer: %q", got)
	}
	if got := admin("10.213.0.1", "version"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("version from a non-loopback peer: %q", got)
	}
	// The same from loopback inside the namespace is allowed; and nothing above changed.
	if got := admin("127.0.0.1", "create function f"); got != "OK\r\n" {
		t.Errorf("create function from loopback: %q", got)
	}
	if got := admin("127.0.0.1", "pause f"); got != "OK\r\n" {
		t.Errorf("pause from loopback: %q", got)
	}
}
