// Package connlimit caps the connections a server accepts: in all, and from one source
// address, so that one client (or one address flooding the port) cannot take every file
// descriptor. Refusals are logged at a bounded rate, so a flood cannot fill the disk. Both
// transports (plain TCP, TLS) ask the same Limiter.
package connlimit

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limiter counts open connections. Its methods are safe for concurrent use; they take one
// mutex, a leaf, once per accepted and per closed connection (not per packet).
type Limiter struct {
	max, perSource int
	log            *slog.Logger
	now            func() time.Time // the clock of the log's rate limit; tests replace it

	mu         sync.Mutex
	total      int
	bySource   map[string]int
	lastLog    time.Time
	suppressed int // refusals not logged since lastLog
}

// logEvery is the most often a refusal is logged; the ones in between are counted and the
// count given with the next line.
const logEvery = time.Second

// New returns a limiter of max connections in all and perSource from one address; 0 means
// no limit of that kind.
func New(max, perSource int, log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.Default()
	}
	return &Limiter{max: max, perSource: perSource, log: log, now: time.Now, bySource: make(map[string]int)}
}

// Acquire counts a new connection from source (its address without the port) and reports
// whether it may stay; a refused one is logged (at most once per second) and not counted.
// Every successful Acquire must be matched by one Release.
func (l *Limiter) Acquire(source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var why string
	switch {
	case l.max > 0 && l.total >= l.max:
		why = "the server has --max-connections open"
	case l.perSource > 0 && l.bySource[source] >= l.perSource:
		why = "this address has --max-connections-per-source open"
	default:
		l.total++
		l.bySource[source]++
		return true
	}
	if t := l.now(); t.Sub(l.lastLog) >= logEvery {
		l.log.Warn("connection refused", "remote", source, "reason", why, "open", l.total,
			"from this address", l.bySource[source], "refusals not logged since the last line", l.suppressed)
		l.lastLog, l.suppressed = t, 0
	} else {
		l.suppressed++
	}
	return false
}

// Release forgets a connection Acquire let in.
func (l *Limiter) Release(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.bySource[source] - 1; n > 0 {
		l.bySource[source] = n
	} else {
		delete(l.bySource, source)
	}
}

// Source is what a connection from remote is counted under: its IP address without the
// port, "-" when it has none (as engine.IdentityOf names it).
func Source(remote net.Addr) string {
	if tcp, ok := remote.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return "-"
}

// Open returns how many connections are counted now.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
