package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spur-gearman/spur/wal"
)

// Options configure a Store.
type Options struct {
	DSN   string        // the database: a postgres:// URL or key=value connection string (--postgres-dsn)
	Node  string        // this node's name (engine NodeName): the owner written on the jobs it holds
	Lease time.Duration // a claim lapses this long after its last renewal (--lease); default 30 s
	Poll  time.Duration // the fallback poll period of OnReady and OnLeader; default 1 s
	// CommitTimeout bounds one batch's transaction, a claim or a read; default 10 s. A commit
	// that times out is acknowledged with an error (its outcome is unknown: see the package doc).
	CommitTimeout time.Duration
	// MaxConns caps the pool's connections (the listener's and the leader's are apart);
	// default 8.
	MaxConns int32
	Logger   *slog.Logger
}

// MaxFunction is the longest function name the store takes (bytes): the job, result and
// settings indexes hold function names, and PostgreSQL's btree entries are bounded (about
// 2.7 kB). gearmand's own database queues allow 255.
const MaxFunction = 1024

// ErrClosed refuses every call after Close.
var ErrClosed = wal.ErrClosed

// ErrFunctionTooLong refuses a write of a function name longer than MaxFunction.
var ErrFunctionTooLong = fmt.Errorf("pgstore: function name longer than %d bytes", MaxFunction)

// Store is an open PostgreSQL store. Its methods are safe for concurrent use.
type Store struct {
	opts  Options
	log   *slog.Logger
	pool  *pgxpool.Pool
	where string // user@host:port/database, for log lines (never the password)
	lease int64  // opts.Lease in microseconds, as the SQL takes it

	vacuumEvery time.Duration // how often the leader looks at the jobs table (vacuum.go)

	mu      sync.Mutex // a leaf: Put, Delete, Barrier, Apply run under engine shard locks
	wake    *sync.Cond // signals the committer: queue non-empty, carried ops due, or closing
	queue   []op
	carry   []op // fire-and-forget ops whose batch failed, first in the next batch
	due     bool // carry is due for another try (the database answered again)
	closing bool
	gaveUp  bool // closing, and a batch failed: what is carried is dropped

	seq  seqBlocks
	down atomic.Pointer[downState] // non-nil while the database is known unreachable

	acks      chan *batch // committer -> acknowledger, in commit order
	committer sync.WaitGroup
	bg        sync.WaitGroup // the background goroutines: refill, renewal, health, listener, leader
	ctx       context.Context
	stop      context.CancelFunc
	readers   sync.WaitGroup // the calls that use the pool outside the committer

	results       atomic.Int64
	resultBytes   atomic.Int64
	resultsCensus atomic.Int64 // unix nanoseconds of the last count of spur_results
	expiring      sync.Mutex   // one ExpireResults at a time

	statsMu       sync.Mutex // a leaf
	stats         wal.CommitStats
	renewFailures atomic.Uint64
	lastReap      atomic.Int64 // unix nanoseconds of the last reapLapsed
	renewed       atomic.Int64 // unix nanoseconds when the last renewal of this node's lease began

	hooksMu   sync.Mutex
	onReady   func(fns []string)
	onLeader  func(leader bool)
	onChanged func() // follow.go

	// hold is a test's hand on the committer, which takes it before taking the queue: a
	// test holding it queues ops that the next batch then takes together.
	hold sync.Mutex
}

type downState struct {
	err error
	at  time.Time
}

// Open connects to the database, migrates its schema to SchemaVersion, reserves a first
// block of job numbers and recovers: this node's own jobs (claimed again at once with a
// fresh lease), every function setting, dead letter and schedule, and the number of stored
// results. An unreachable database, a schema newer than this binary's or a record that does
// not decode is an error that says so.
func Open(ctx context.Context, opts Options) (*Store, *wal.Recovered, error) {
	if opts.DSN == "" {
		return nil, nil, errors.New("pgstore: no database given (--postgres-dsn)")
	}
	if opts.Node == "" {
		return nil, nil, errors.New("pgstore: no node name given (the owner of this node's jobs)")
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 10 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		return nil, nil, fmt.Errorf("pgstore: bad database address: %w", err) // pgx leaves the password out
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "spurd " + opts.Node
	}
	// Every statement is prepared once per connection (pgx's statement cache), and each has
	// one good plan whatever its parameters: keyed or ordered index scans, arrays unnested
	// into rows. PostgreSQL's default (auto) planned the claims afresh on every call (its
	// generic plan guesses a tenth of the table for LIMIT $n, and so looked dearer than the
	// custom ones): planning took more CPU than running them, and a 3-node submit-complete ran at 0.38x of the rate it has with
	// generic plans (bench/cluster.sh complete). A DSN that sets it keeps its own.
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	s := &Store{
		opts:        opts,
		log:         opts.Logger,
		where:       describe(cfg),
		lease:       opts.Lease.Microseconds(),
		vacuumEvery: vacuumEvery,
		acks:        make(chan *batch, 4),
	}
	s.wake = sync.NewCond(&s.mu)
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, nil, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	rec, err := s.open(ctx)
	if err != nil {
		s.pool.Close()
		return nil, nil, err
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.committer.Add(2)
	go s.commitLoop()
	go s.ackLoop()
	s.bg.Add(3)
	go func() { defer s.bg.Done(); s.seq.refillLoop(s.ctx) }()
	go func() { defer s.bg.Done(); s.renewLoop(s.ctx) }()
	go func() { defer s.bg.Done(); s.healthLoop(s.ctx) }()
	return s, rec, nil
}

// open migrates, reserves the first numbers and recovers.
func (s *Store) open(ctx context.Context) (*wal.Recovered, error) {
	if err := s.pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: cannot reach PostgreSQL at %s: %w", s.where, err)
	}
	if err := migrate(ctx, s.pool); err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	var block int64
	if err := s.pool.QueryRow(ctx, `SELECT increment_by FROM pg_sequences
		WHERE schemaname = current_schema() AND sequencename = 'spur_job_seq'`).Scan(&block); err != nil || block < 1 {
		return nil, fmt.Errorf("pgstore: %s: reading the job sequence (increment %d): %w", s.where, block, err)
	}
	first, err := s.reserve(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: reserving job numbers: %w", s.where, err)
	}
	s.seq.init(uint64(block), first, s.reserve)
	// The lease first: the jobs recovered are held under it.
	if err := s.renewNode(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: %s: taking this node's lease: %w", s.where, err)
	}
	rec, err := s.recover(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", s.where, err)
	}
	return rec, nil
}

// reserve takes the next block of job numbers and returns its first.
func (s *Store) reserve(ctx context.Context) (uint64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT nextval('spur_job_seq')").Scan(&v); err != nil {
		s.connFailed(err)
		return 0, err
	}
	return uint64(v), nil
}

// describe is the database's address without its password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("postgres://%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}

// Where is the database's address without its password: user@host:port/database, for the
// line spurd logs at start.
func (s *Store) Where() string { return s.where }

// NextSeq issues a job number no node has been or will be issued. It returns at once while
// the block reserved ahead lasts; with none left and the database unreachable it returns
// the error (ErrNoNumbers). Safe under an engine shard lock: it takes only a leaf lock.
func (s *Store) NextSeq() (uint64, error) { return s.seq.nextSeq() }

// Writable reports why new records would be refused now: an error while the database is
// known unreachable (the last commit, lease renewal or ping failed), nil once one succeeds.
// It costs an atomic load: submits call it for every background job.
func (s *Store) Writable() error {
	if d := s.down.Load(); d != nil {
		return fmt.Errorf("PostgreSQL at %s is unreachable since %s: %w", s.where, d.at.Format(time.RFC3339), d.err)
	}
	return nil
}

// connFailed marks the database unreachable when err says it is (rather than refusing one
// statement), and drops the pool's connections, which may all be dead: the next use
// connects afresh.
func (s *Store) connFailed(err error) {
	if err == nil || !unreachable(err) {
		return
	}
	if s.down.CompareAndSwap(nil, &downState{err: err, at: time.Now()}) {
		s.log.Error("PostgreSQL is unreachable: background jobs are refused until it answers again", "db", s.where, "error", err)
	}
	s.pool.Reset()
}

// readFailed is connFailed for a call whose deadline its caller may have set tighter than
// the store's (a claim, a lookup, a count): running out of time there says the database is
// slow, not unreachable, and must not refuse every submit. The store's own calls (commits,
// lease renewals, pings) are what find a database that stopped answering.
func (s *Store) readFailed(err error) {
	if !errors.Is(err, context.DeadlineExceeded) {
		s.connFailed(err)
	}
}

// reached marks the database reachable again.
func (s *Store) reached() {
	if d := s.down.Swap(nil); d != nil {
		s.log.Warn("PostgreSQL answers again", "db", s.where, "down_for", time.Since(d.at).Round(time.Millisecond))
		s.mu.Lock()
		if len(s.carry) > 0 {
			s.due = true
			s.wake.Signal()
		}
		s.mu.Unlock()
	}
}

// healthLoop pings the database while it is known unreachable, so that Writable turns nil
// again without waiting for a write, and gives carried ops another try every Poll.
func (s *Store) healthLoop(ctx context.Context) {
	period := min(s.opts.Poll, 250*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	var sinceCarry time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.down.Load() != nil {
			pctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
			err := s.pool.Ping(pctx)
			cancel()
			if err == nil {
				s.reached()
			}
			continue
		}
		if sinceCarry += period; sinceCarry >= s.opts.Poll {
			sinceCarry = 0
			s.mu.Lock()
			if len(s.carry) > 0 {
				s.due = true
				s.wake.Signal()
			}
			s.mu.Unlock()
		}
	}
}

// enter counts a call that uses the pool besides the committer, which the caller leaves
// with s.readers.Done(); after Close began it returns ErrClosed.
func (s *Store) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrClosed
	}
	s.readers.Add(1)
	return nil
}

// callCtx is the context of one call outside the committer: bounded by CommitTimeout, and
// ended by Close.
func (s *Store) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// Close commits what is queued (each batch tried once more if the database is down), stops
// the lease renewal, the listener and the leader (giving up leadership), and closes the
// pool. Jobs this node holds stay held until their lease lapses (Release gives them back
// first). Close returns nil; after it every call returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	s.due = true
	s.wake.Signal()
	s.mu.Unlock()
	s.committer.Wait()
	s.stop()
	s.bg.Wait()
	s.readers.Wait()
	s.pool.Close()
	return nil
}
