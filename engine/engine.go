// Package engine is the Gearman server: connection state, dispatch of every packet type, the
// admin text protocol and the gnet event loop that feeds them.
//
// The engine is transport-agnostic: a transport (gnet for plain TCP, later TLS and HTTP)
// opens a Session per connection, feeds it the bytes it reads, writes out what the session
// buffers and closes it when the peer goes away. See Transport.
package engine

import (
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
)

// Version is reported by the admin `version` command and -V.
var Version = "0.1.0"

// Config holds the engine's settings; zero values mean gearmand's defaults.
type Config struct {
	HandlePrefix  string // job handles are HandlePrefix:N; default "H:<hostname>"
	JobRetries    int    // assignments before a requeued job fails; 0 = unlimited (-j)
	WorkerWakeup  int    // NOOPs sent per queued job; 0 = every sleeping worker (-w)
	RoundRobin    bool   // rotate a worker's functions after each assignment (-R)
	Exceptions    bool   // every connection starts with the exceptions option (--exceptions)
	MaxPacketSize uint32 // largest accepted packet body; default codec.DefaultMaxPacket
	// MaxOutbound caps the bytes buffered for one connection that is not reading its
	// replies; past it the connection is closed. Default 2*MaxPacketSize + 1 MiB.
	MaxOutbound int
	Verbose     string // level name reported by the `verbose` admin command
	Logger      *slog.Logger
	// OnShutdown is called (in its own goroutine) when a loopback admin connection sends
	// `shutdown` or `shutdown graceful`.
	OnShutdown func(graceful bool)
}

// Engine owns all jobs, functions and sessions. Its methods are safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger
	reg *queue.Registry

	handleSeq atomic.Uint64 // last job handle number issued
	jobSeq    atomic.Uint64 // submission order, for stable ordering of scheduled jobs
	sessionID atomic.Uint64

	sessMu   sync.Mutex // guards sessions; never held while taking another lock
	sessions map[uint64]*Session
}

// New returns an engine with cfg's settings.
func New(cfg Config) *Engine {
	if cfg.HandlePrefix == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		cfg.HandlePrefix = "H:" + host
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = codec.DefaultMaxPacket
	}
	if cfg.MaxOutbound == 0 {
		cfg.MaxOutbound = 2*int(cfg.MaxPacketSize) + 1<<20
	}
	if cfg.Verbose == "" {
		cfg.Verbose = "ERROR"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		reg:      queue.NewRegistry(),
		sessions: make(map[uint64]*Session),
	}
}

// newHandle returns a job handle never issued before by this engine.
func (e *Engine) newHandle() string {
	n := e.handleSeq.Add(1)
	b := make([]byte, 0, len(e.cfg.HandlePrefix)+12)
	b = append(b, e.cfg.HandlePrefix...)
	b = append(b, ':')
	b = strconv.AppendUint(b, n, 10)
	return string(b)
}

// now is the clock scheduled jobs are compared against, in unix seconds.
func now() int64 { return time.Now().Unix() }

func (e *Engine) addSession(s *Session) {
	e.sessMu.Lock()
	e.sessions[s.id] = s
	e.sessMu.Unlock()
}

func (e *Engine) removeSession(s *Session) {
	e.sessMu.Lock()
	delete(e.sessions, s.id)
	e.sessMu.Unlock()
}

// sessionList returns the open sessions in the order they connected.
func (e *Engine) sessionList() []*Session {
	e.sessMu.Lock()
	out := make([]*Session, 0, len(e.sessions))
	for _, s := range e.sessions {
		out = append(out, s)
	}
	e.sessMu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].id < out[b].id })
	return out
}

// Sessions returns how many connections are open.
func (e *Engine) Sessions() int {
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	return len(e.sessions)
}
