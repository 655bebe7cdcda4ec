package importer

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A gearmand still using the store would run the jobs being moved, write new ones behind the
// import's back, or (on its next job end) delete rows the import reads. Three checks catch
// it where it can be seen; none can see a gearmand on another machine that is not listening
// on the address the pasted command line gives:
//
//  1. a gearmand process on this machine whose own command line names the same queue
//     (parsed with these flags; a relative SQLite path is resolved in its directory);
//  2. for SQLite, any process that holds the database file open;
//  3. something accepting connections on the pasted line's -L/-p address (127.0.0.1:4730 by
//     default) that is not the --to target.

// checkStopped returns why the import must not run now, or nil.
func checkStopped(q *queueFlags, to string) error {
	if err := checkProcesses(q); err != nil {
		return err
	}
	return checkListening(q, to)
}

func checkProcesses(q *queueFlags) error {
	self := os.Getpid()
	mine := q.identity(mustCwd())
	var sqlitePath string
	if q.store() == "libsqlite3" {
		sqlitePath, _ = filepath.Abs(q.sqliteDB)
		if r, err := filepath.EvalSymlinks(sqlitePath); err == nil {
			sqlitePath = r
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(p + "/cmdline")
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		if base := filepath.Base(argv[0]); base == "gearmand" || base == "lt-gearmand" {
			cwd, _ := os.Readlink(p + "/cwd")
			if other := parseGearmand(argv[1:]); mine != "" && other.identity(cwd) == mine {
				return fmt.Errorf("gearmand (pid %d) is running with this queue: stop it first, "+
					"or it would run the jobs being moved and write new ones the import does not see", pid)
			}
		}
		if sqlitePath == "" {
			continue
		}
		fds, _ := os.ReadDir(p + "/fd")
		for _, fd := range fds {
			if l, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && l == sqlitePath {
				return fmt.Errorf("process %d (%s) has %s open: stop it first (a gearmand using this "+
					"queue would run the jobs being moved)", pid, filepath.Base(argv[0]), sqlitePath)
			}
		}
	}
	return nil
}

func mustCwd() string {
	d, _ := os.Getwd()
	return d
}

// checkListening refuses when gearmand's address accepts connections and is not the target.
func checkListening(q *queueFlags, to string) error {
	host := "127.0.0.1"
	if len(q.listen) > 0 {
		if h := q.listen[0]; h != "" && h != "0.0.0.0" && h != "::" {
			host = h
		}
	}
	addr := net.JoinHostPort(host, q.port)
	if to != "" && sameAddr(addr, to) {
		return nil
	}
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return nil
	}
	c.Close()
	return fmt.Errorf("something listens on gearmand's address %s (from -L/-p, default 127.0.0.1:4730): "+
		"stop gearmand before moving its queue; if it is the spurd to import into, name it with --to; "+
		"if it is neither, pass -p with gearmand's real port", addr)
}

// sameAddr reports whether two host:port addresses resolve to a common address.
func sameAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	ipsA, errA := net.LookupHost(ha)
	ipsB, errB := net.LookupHost(hb)
	if errA != nil || errB != nil {
		return ha == hb
	}
	for _, x := range ipsA {
		for _, y := range ipsB {
			if net.ParseIP(x).Equal(net.ParseIP(y)) {
				return true
			}
		}
	}
	return false
}
