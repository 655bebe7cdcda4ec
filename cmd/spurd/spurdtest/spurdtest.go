// Package spurdtest helps tests that run a server process on a port they picked: ListensOn
// tells whether that process (not another one) listens there. Picking a free port means
// listening on port 0 and closing it, so two tests running side by side (or one that restarts
// its server on the same port) may race for one; a test that only waits for the port to
// accept can end up talking to another test's server. Imported by tests only; Linux only
// (/proc).
package spurdtest

import (
	"fmt"
	"os"
	"strings"
)

// ListensOn reports whether process pid holds a TCP socket listening on port, from
// /proc/net/tcp and /proc/net/tcp6 (the listening sockets and their inodes) and the
// process's file descriptors.
func ListensOn(pid, port int) bool {
	inodes := map[string]bool{}
	suffix := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && strings.HasSuffix(f[1], suffix) { // 0A: LISTEN
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[link] {
			return true
		}
	}
	return false
}
