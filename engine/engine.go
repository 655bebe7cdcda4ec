// Package engine is the Gearman server: connection state, dispatch of every packet type, the
// admin text protocol and the gnet event loop that feeds them.
//
// The engine is transport-agnostic: a transport (engine/tcpserver for plain TCP, later TLS)
// opens a Session per connection, feeds it the bytes it reads, writes out what the session
// buffers and closes it when the peer goes away. See Transport. Doors without Gearman
// packets use the typed operations in api.go. Every request passes the Authorizer.
//
// The server's lock order is written in locksordering.txt beside this file.
package engine

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Version is reported by the admin `version` command and -V.
var Version = "0.1.0"

// Config holds the engine's settings; zero values mean gearmand's defaults.
type Config struct {
	HandlePrefix string // job handles are HandlePrefix:N; default "H:<hostname>"
	// NodeName names this server among the nodes of a cluster: in the cluster view, in its
	// metrics and as the holder of the jobs it claims from a shared store. Default the
	// host name.
	NodeName string
	// Peers are the Gearman addresses (HOST:PORT) of the cluster's other nodes, in the order
	// given (spurd --peer); `show node` lists them so that a tool asking one node finds the
	// others. The engine never connects to them.
	Peers []string
	// Started is when the server started, for `show node`'s uptime; zero = when New ran.
	Started    time.Time
	JobRetries int // assignments before a requeued job fails; 0 = unlimited (-j)
	// WorkerWakeup is gearmand's -w: N > 0 NOOPs per queued job, WakeAll for every sleeping
	// worker (gearmand's default); 0 = Spur's default, as many as the ready jobs need (wake.go).
	WorkerWakeup int
	// WakeTimeout is how long a woken worker has to answer before another is woken in its
	// place; default DefaultWakeTimeout.
	WakeTimeout   time.Duration
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
	// Store makes background jobs durable; nil keeps every job in memory only (-q builtin).
	Store Store
	// Authorizer decides what each connection may do; nil allows what gearmand allows
	// (everything, and `shutdown` only from a loopback connection).
	Authorizer Authorizer
	// ResultTTL keeps the outcome of every background job this long (results.go); 0 keeps
	// none (spurd's default is DefaultResultTTL). ResultMaxBytes bounds what they take,
	// oldest out first; 0 = DefaultResultMaxBytes.
	ResultTTL      time.Duration
	ResultMaxBytes int64
	// Dead letters (dead.go) are kept DeadTTL, at most DeadMax of them in DeadMaxBytes; zero
	// values mean the Default ones.
	DeadTTL      time.Duration
	DeadMax      int
	DeadMaxBytes int64
	// Clock is the wall clock recurring schedules run on; nil = time.Now. Tests inject one.
	Clock func() time.Time
	// IdleGrace is how long a function with nothing in it (no job, no worker, no settings of
	// its own) is kept before RunUpkeep deletes it; default DefaultIdleGrace.
	IdleGrace time.Duration
}

// DefaultIdleGrace keeps an idle function listed in `status` for a few seconds, so that a
// worker reconnecting or a burst ending does not make it blink out of monitoring.
const DefaultIdleGrace = 5 * time.Second

// Store is the durable job log behind background jobs; *wal.Log implements it. Put and
// Barrier acknowledgements run on the store's own goroutine, in call order, after the write
// is durable; they must not take a shard lock (the engine may be waiting in NextSeq under
// one: see locksordering.txt). Put must not keep r past its return.
type Store interface {
	// Writable reports why new records would be refused now (a nearly full disk), or nil.
	Writable() error
	NextSeq() (uint64, error)
	Put(r wal.Record, ack wal.Ack) error
	Barrier(ack wal.Ack) error
	Delete(seq uint64) error
	// Apply commits t's writes atomically; ack (which may be nil) is told as for Put.
	Apply(t *wal.Txn, ack wal.Ack) error
}

// Engine owns all jobs, functions and sessions. Its methods are safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger
	reg *queue.Registry

	store     Store
	shared    SharedStore // the store, when several nodes share it (shared.go); else nil
	claims    claims
	follower  follower    // with a shared store: its settings and dead letters (follow.go)
	unclaimed unclaimed   // with a shared store: the last count of its jobs no node holds
	leading   atomic.Bool // with a shared store: this node fires the schedules
	auth      Authorizer
	handleSeq atomic.Uint64 // last job number issued when there is no store
	sessionID atomic.Uint64
	draining  atomic.Bool // shutting down: no new jobs are accepted or handed out
	// lastRefusal is the store's latest refusal of a job record, told to submitters that
	// coalesced onto that job before it was refused.
	lastRefusal atomic.Pointer[error]

	traffic  [maxTrafficLoops + 1]atomic.Pointer[traffic] // by loop; the last for loopless transports
	sessMu   sync.Mutex                                   // guards sessions; never held while taking another lock
	sessions map[uint64]*Session

	// refusalMu guards the rate limit of refusal log lines (auth.go); a leaf.
	refusalMu     sync.Mutex
	refusalWindow time.Time
	refusalLines  int
	refusalsLeft  int

	resultLog  ResultLog  // the store, when it keeps results; else memResults has them
	memResults memResults // results without a ResultLog
	dead       deadLetters
	sched      scheduler
}

// New returns an engine with cfg's settings.
func New(cfg Config) *Engine {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = "H:" + host
	}
	if cfg.NodeName == "" {
		cfg.NodeName = host
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	cfg.Peers = append([]string(nil), cfg.Peers...) // the caller's slice may change
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
	if cfg.Authorizer == nil {
		cfg.Authorizer = gearmandRules{}
	}
	if cfg.WakeTimeout == 0 {
		cfg.WakeTimeout = DefaultWakeTimeout
	}
	if cfg.IdleGrace == 0 {
		cfg.IdleGrace = DefaultIdleGrace
	}
	if cfg.ResultMaxBytes == 0 {
		cfg.ResultMaxBytes = DefaultResultMaxBytes
	}
	if cfg.DeadTTL == 0 {
		cfg.DeadTTL = DefaultDeadTTL
	}
	if cfg.DeadMax == 0 {
		cfg.DeadMax = DefaultDeadMax
	}
	if cfg.DeadMaxBytes == 0 {
		cfg.DeadMaxBytes = DefaultDeadMaxBytes
	}
	e := &Engine{
		cfg:      cfg,
		store:    cfg.Store,
		auth:     cfg.Authorizer,
		log:      cfg.Logger,
		reg:      queue.NewRegistry(),
		sessions: make(map[uint64]*Session),
	}
	e.resultLog, _ = cfg.Store.(ResultLog)
	if e.shared, _ = cfg.Store.(SharedStore); e.shared != nil {
		e.claims.init()
		e.follower.kick = make(chan struct{}, 1)
		e.shared.OnChanged(e.follower.changed)
		e.shared.OnReady(e.storeReady)
		e.shared.OnLeader(e.onLeader)
	}
	e.memResults.maxBytes = cfg.ResultMaxBytes
	return e
}

// NodeName is this server's name among the nodes of a cluster (Config.NodeName). Safe from
// any goroutine.
func (e *Engine) NodeName() string { return e.cfg.NodeName }

// nextSeq returns a job number never issued before: by this engine, or with a store, by any
// earlier run on the same data.
func (e *Engine) nextSeq() (uint64, error) {
	if e.store != nil {
		return e.store.NextSeq()
	}
	return e.handleSeq.Add(1), nil
}

// appendHandle appends the handle of job number seq: HandlePrefix:seq.
func (e *Engine) appendHandle(b []byte, seq uint64) []byte {
	b = append(b, e.cfg.HandlePrefix...)
	b = append(b, ':')
	return strconv.AppendUint(b, seq, 10)
}

// Restore queues jobs recovered from the store, in the order given (submission order), with
// their handles, uniques, reducers and run-at times. Call before serving.
func (e *Engine) Restore(recs []wal.Record) {
	t := now()
	for i := range recs {
		r := &recs[i]
		sh := e.reg.ShardFor([]byte(r.Function))
		sh.Lock()
		j := e.restoreJob(sh.Ensure([]byte(r.Function)), r, t)
		if j.State == queue.Delayed {
			e.armDueTimer(j.Fn)
		}
		sh.Unlock()
	}
}

// restoreJob queues the job of record r in f, as durable, at time t. Call with f's shard
// locked.
func (e *Engine) restoreJob(f *queue.Function, r *wal.Record, t int64) *queue.Job {
	j := queue.NewJob([]byte(r.Handle), []byte(r.Unique), []byte(r.Reducer), r.Data)
	j.Seq, j.Priority, j.RunAt = r.Seq, queue.Priority(r.Priority), milliOf(r.RunAt)
	j.Background, j.Persisted = true, true
	j.SetFailures(r.Attempts)
	j.SetFirstFailed(r.FirstFailed)
	f.Enqueue(j, t)
	return j
}

// RunUpkeep does the engine's periodic housekeeping every interval until ctx is done: idle
// functions are deleted after Config.IdleGrace, the index space of drained backlogs is
// given back, and expired results and dead letters are dropped. spurd runs it for the life of the server.
func (e *Engine) RunUpkeep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := e.reg.SweepIdle(now, e.cfg.IdleGrace); n > 0 {
				e.log.Debug("deleted idle functions", "count", n)
			}
			e.expireResults(now)
			e.expireDead(now)
		}
	}
}

// Drain stops the engine from accepting new jobs (submits get ERROR QUEUE_ERROR) and from
// handing out queued ones (grabs get NO_JOB), so that running jobs can finish before a
// graceful shutdown. Jobs still queued stay in the store for the next start.
func (e *Engine) Drain() { e.draining.Store(true) }

// PeakJobs returns (an upper bound of) the most jobs the engine held at once since the last
// call, and how many it holds now.
func (e *Engine) PeakJobs() (peak, now int) { return e.reg.PeakJobs() }

// Functions returns how many function records the engine holds.
func (e *Engine) Functions() int {
	n := 0
	e.reg.EachShard(func(sh *queue.Shard) { n += sh.NumFunctions() })
	return n
}

// Running returns how many jobs are assigned to workers.
func (e *Engine) Running() int {
	n := 0
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) { n += f.Running })
	})
	return n
}

// now is the clock scheduled jobs are compared against, in unix milliseconds (queue.Job's
// RunAt): epoch jobs are given in seconds, retry backoffs in fractions of one.
func now() int64 { return time.Now().UnixMilli() }

// milliOf converts a run-at time in unix seconds (SUBMIT_JOB_EPOCH, the job log) to the
// engine's milliseconds. Absurd epochs are clamped to ±maxTimerEpoch seconds, far beyond any
// real schedule, where time.Unix and the multiplication are still safe.
func milliOf(sec int64) int64 { return max(-maxTimerEpoch, min(sec, maxTimerEpoch)) * 1000 }

// secondsOf converts a run-at time in milliseconds back to unix seconds, rounding up: a job
// never runs before its time, even after a restart.
func secondsOf(ms int64) int64 {
	s := ms / 1000
	if ms%1000 > 0 {
		s++
	}
	return s
}

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

// Draining reports whether Drain was called: the engine takes no new job.
func (e *Engine) Draining() bool { return e.draining.Load() }
