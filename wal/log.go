package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncMode is how durable a commit is before its Puts are acknowledged.
type SyncMode int

const (
	// SyncAlways fsyncs every batch before acknowledging it: an acknowledged job survives a
	// crash of the process or of the machine.
	SyncAlways SyncMode = iota
	// SyncBatch acknowledges once the batch is written to the log, and fsyncs the log every
	// SyncInterval: a machine crash can lose the jobs acknowledged in the last interval.
	SyncBatch
	// SyncNone never fsyncs jobs; the operating system writes the log when it chooses. A
	// crash of the machine can lose whatever it had not written yet (typically up to ~30 s).
	//
	// In every mode the sequence reservation is fsynced before numbers from it are issued,
	// so a machine crash never makes a handle repeat.
	SyncNone
)

// ParseSyncMode reads "always", "batch" or "none".
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "batch":
		return SyncBatch, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("unknown sync mode %q (always, batch or none)", s)
}

// Options configure a Log.
type Options struct {
	Dir          string
	Sync         SyncMode
	SyncInterval time.Duration // SyncBatch's fsync period; default 100 ms
	// MinFreeBytes is the free space the log keeps in reserve: when the disk has less, new
	// jobs are refused with ErrDiskFull instead of letting the database hit a full disk
	// (which Pebble treats as fatal). Deletes still go through. Default 64 MiB.
	MinFreeBytes uint64
	Logger       *slog.Logger

	// fs replaces the disk in tests: a crashable in-memory file system, or one that fails
	// writes on demand. nil = the disk.
	fs vfs.FS
	// seqBlock replaces the reservation block in tests, to cross blocks quickly.
	seqBlock uint64
}

// ErrDiskFull refuses a Put when the disk is nearly full.
var ErrDiskFull = errors.New("disk nearly full")

// ErrClosed refuses every call after Close.
var ErrClosed = errors.New("job log closed")

// maxSpareBuf caps the record buffer kept from one batch to the next.
const maxSpareBuf = 4 << 20

// seqBlock is how many sequence numbers one durable reservation covers. A reservation is
// fsynced whatever the sync mode, once per block: its cost vanishes.
const seqBlock = 1 << 20

// Ack is told the outcome of a write or Barrier: Acked(nil) once it is durable, Acked(err) if
// it could not be written. An interface rather than a callback so that the caller can hand
// over an object it allocates anyway, instead of a closure per job.
type Ack interface{ Acked(err error) }

// Coalesced is what a store that several nodes share acknowledges a Put with when another
// node already holds a job of the same function and unique: the submit joins that job, as
// it would have joined one of this node's, and its submitter gets that job's handle.
type Coalesced struct{ Handle string }

func (c *Coalesced) Error() string { return "wal: coalesced onto job " + c.Handle }

// opKind is what a queued op does.
type opKind uint8

const (
	opPut     opKind = iota // writes the job record seq; its value is buf[start:end]
	opDelete                // removes the job record seq
	opBarrier               // writes nothing; acknowledged once everything before it is
	opTxn                   // buf[start:end] is an encoded Txn (see Txn.buf)
)

// op is one queued item; start and end index the queue's buffer.
type op struct {
	kind opKind
	sets bool // an opTxn that writes, not only deletes: refused on a nearly full disk
	cond bool // an opTxn with a conditional delete (see Txn.buf)
	// results and resultBytes are what an opTxn adds to ResultStats once committed.
	results     int32
	resultBytes int64
	seq         uint64
	start, end  int
	ack         Ack // nil for a Delete and a fire-and-forget Apply
}

// refusable reports whether a nearly full disk refuses o: whatever writes a record. Deletes
// always go through, and so does a barrier, which writes nothing: a caller waiting behind a
// Put that was refused learns it from that Put's acknowledgement, which runs first.
func (o *op) refusable() bool {
	return o.kind == opPut || (o.kind == opTxn && o.sets)
}

// Log is an open job log. Its methods are safe for concurrent use.
type Log struct {
	db    *pebble.DB
	opts  Options
	log   *slog.Logger
	block uint64 // sequence numbers per reservation

	mu       sync.Mutex
	wake     *sync.Cond // signals the committer: queue non-empty, reservation asked, or closing
	reserved *sync.Cond // signals NextSeq waiters: durable moved, or the log failed or closes
	queue    []op
	buf      []byte // the encoded values and Txns of queue's ops
	spareBuf []byte // the previous batch's buf, reused
	closing  bool   // Close began: every call is refused with ErrClosed
	failed   error  // the first commit that failed: every later call is refused with it
	seq      uint64 // last sequence number issued
	asked    uint64 // reservation requested (written by the next batch)
	durable  uint64 // reservation known to be fsynced

	committer sync.WaitGroup    // commitLoop and ackLoop
	applied   chan appliedBatch // commitLoop -> ackLoop, in commit order
	syncer    sync.WaitGroup    // syncLoop
	syncStop  chan struct{}
	// readers counts the calls that use the database besides the committer (Compact, the
	// result reads, ExpireResults); Close waits for them before closing it.
	readers  sync.WaitGroup
	closeCtx context.Context
	stopAll  context.CancelFunc         // cancels closeCtx when Close begins: a Compact gives up
	space    atomic.Pointer[spaceCheck] // last Writable answer

	// The stored results: how many, and their bytes (see ResultStats). Set by recovery,
	// then moved by ackLoop as the batches that write or remove results commit.
	results     atomic.Int64
	resultBytes atomic.Int64
	expiring    sync.Mutex // one ExpireResults at a time

	statsMu sync.Mutex // a leaf lock: guards stats
	stats   CommitStats
}

// Open opens (or creates) the log in opts.Dir and returns it with everything it holds. A
// directory another process has open, or one that is unreadable or corrupt, is an error that
// says so; nothing is dropped silently.
func Open(opts Options) (*Log, *Recovered, error) {
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 100 * time.Millisecond
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.seqBlock == 0 {
		opts.seqBlock = seqBlock
	}
	fs := opts.fs
	if fs == nil {
		fs = vfs.Default
	}
	if err := fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	db, err := pebble.Open(opts.Dir, &pebble.Options{
		FS: fs,
		// FormatNewest writes sync offsets into the write-ahead log, which lets recovery tell
		// a torn tail (tolerated: those writes were never acknowledged) from corruption in
		// the middle of the log (refused: acknowledged jobs would be lost silently).
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{opts.Logger},
		// Bursts of submits may fill several memtables while one is being flushed.
		MemTableStopWritesThreshold: 4,
		// A job's record usually dies soon after it is written. Letting L0 tables pile up
		// longer before merging them gives the deletions time to arrive, so a backlog that
		// drains is not rewritten level by level on its way out (compactions were a third
		// of the CPU of a durable submit burst); recovery reads the few extra tables once.
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 64,
	})
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || strings.Contains(err.Error(), "lock held") {
			return nil, nil, fmt.Errorf("data dir %s is locked by another process (is another spurd running?): %w", opts.Dir, err)
		}
		if errors.Is(err, pebble.ErrCorruption) || errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) {
			return nil, nil, fmt.Errorf("the job log in %s is corrupt and acknowledged jobs would be lost; "+
				"restore it from a backup or move it aside to start empty: %w", opts.Dir, err)
		}
		return nil, nil, fmt.Errorf("cannot open the job log in %s: %w", opts.Dir, err)
	}
	l := &Log{db: db, opts: opts, log: opts.Logger, block: opts.seqBlock, syncStop: make(chan struct{})}
	l.wake = sync.NewCond(&l.mu)
	l.reserved = sync.NewCond(&l.mu)
	l.closeCtx, l.stopAll = context.WithCancel(context.Background())
	rec, err := l.recover()
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	// Start a fresh write-ahead log: the one a new database opens with predates the format
	// ratchet and carries no sync offsets. This also moves the recovered jobs into a table.
	if err := db.Flush(); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("cannot write to the job log in %s: %w", opts.Dir, err)
	}
	// Reserve the first block, fsynced: handles issued from now on are above anything this
	// directory has ever issued.
	l.asked = l.seq + l.block
	b := db.NewBatch()
	_ = b.Set(metaSeqKey, binary.BigEndian.AppendUint64(nil, l.asked), nil)
	if err := l.commitSynced(b); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("cannot write to the job log in %s: %w", opts.Dir, err)
	}
	l.durable = l.asked
	l.applied = make(chan appliedBatch, 4)
	l.committer.Add(2)
	go l.commitLoop(l.asked) // read here: NextSeq may move l.asked before the loop starts
	go l.ackLoop()
	if opts.Sync == SyncBatch {
		l.syncer.Add(1)
		go l.syncLoop()
	}
	return l, rec, nil
}

// commitSynced commits b with an fsync and closes it. It goes through ApplyNoSyncWait and
// SyncWait because that is the path on which Pebble returns a failed fsync as an error
// rather than treating it as fatal.
func (l *Log) commitSynced(b *pebble.Batch) error {
	err := l.db.ApplyNoSyncWait(b, pebble.Sync)
	if err == nil {
		err = b.SyncWait()
	}
	_ = b.Close()
	return err
}

// refusal is why the log takes nothing more, or nil: ErrClosed once Close began, the failure
// once a commit failed. Call with mu held.
func (l *Log) refusal() error {
	if l.closing {
		return ErrClosed
	}
	return l.failed
}

// fail marks the log failed by err, unless it already is, and releases NextSeq's waiters.
// It returns the log's failure. Call with mu held.
func (l *Log) fail(err error) error {
	if l.failed == nil {
		l.failed = fmt.Errorf("job log failed, nothing more is written: %w", err)
		l.log.Error("job log commit failed: the log accepts no more writes", "error", err)
		l.reserved.Broadcast()
	}
	return l.failed
}

// NextSeq issues a sequence number never issued before in this directory. It waits only in
// the unlikely case that half a reservation block was used up before the next block became
// durable. It returns ErrClosed after Close and the log's failure after a failed commit,
// also to a call that was waiting: nothing waits forever.
func (l *Log) NextSeq() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refusal(); err != nil {
		return 0, err
	}
	l.seq++
	seq := l.seq // others may take numbers while this one waits
	if seq+l.block/2 > l.asked {
		l.asked += l.block
		l.wake.Signal()
	}
	for seq > l.durable {
		l.reserved.Wait()
		if err := l.refusal(); err != nil {
			return 0, err // seq stays taken: a gap, never a repeat
		}
	}
	return seq, nil
}

// Put queues r for the next batch; ack.Acked(nil) runs once it is durable, Acked(err) if it
// could not be written (a nil ack: nobody is told). Acks run on the log's acknowledging
// goroutine, in the order of the calls, never inside Put, and must not block. r is encoded
// before Put returns. After Close, Put returns ErrClosed, and after a failed commit that
// failure; ack is then never told.
func (l *Log) Put(r Record, ack Ack) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refusal(); err != nil {
		return err
	}
	start := len(l.buf)
	l.buf = appendRecord(l.buf, &r)
	l.queue = append(l.queue, op{kind: opPut, seq: r.Seq, start: start, end: len(l.buf), ack: ack})
	l.wake.Signal()
	return nil
}

// Barrier tells ack once every write queued before it is durable, with the same guarantees
// and the same rules as Put; it writes nothing itself.
func (l *Log) Barrier(ack Ack) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refusal(); err != nil {
		return err
	}
	l.queue = append(l.queue, op{kind: opBarrier, ack: ack})
	l.wake.Signal()
	return nil
}

// Delete queues the removal of the job record with this sequence number. Nobody waits for
// it, so a failed commit is only logged; after Close it returns ErrClosed and after a failed
// commit that failure, so that the caller knows the record stays.
func (l *Log) Delete(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refusal(); err != nil {
		return err
	}
	l.queue = append(l.queue, op{kind: opDelete, seq: seq})
	l.wake.Signal()
	return nil
}

// Apply queues t's writes to be committed together, in one batch; ack (which may be nil:
// fire and forget, a failure is then logged) is told as Put's is. t is encoded before Apply
// returns and may be Reset and reused at once. A Txn that writes anything is refused as a
// whole on a nearly full disk; one that only deletes goes through. Apply returns t's misuse
// (see Txn.Put), ErrClosed after Close or the log's failure; ack is then never told.
func (l *Log) Apply(t *Txn, ack Ack) error {
	if t.err != nil {
		return t.err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refusal(); err != nil {
		return err
	}
	start := len(l.buf)
	l.buf = append(l.buf, t.buf...)
	l.queue = append(l.queue, op{kind: opTxn, sets: t.sets, cond: t.cond, results: t.results, resultBytes: t.resultBytes,
		start: start, end: len(l.buf), ack: ack})
	l.wake.Signal()
	return nil
}

// Err returns the log's failure: non-nil once a commit failed, after which the log writes
// nothing more and every call returns it (a restart recovers what was acknowledged).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Compact rewrites the job key range so that the space of deleted jobs is reclaimed now
// rather than whenever Pebble's own heuristics get to it. It blocks while it runs; call it
// from a background goroutine when a backlog has drained. Close interrupts it and waits for
// it to return; after (or while) Close it returns ErrClosed.
func (l *Log) Compact(ctx context.Context) error {
	if err := l.enter(); err != nil {
		return err
	}
	defer l.readers.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.closeCtx, cancel)
	defer stop()
	err := l.db.Compact(ctx, []byte{byte(KindJob)}, []byte{byte(KindJob) + 1}, false)
	if err != nil && l.closeCtx.Err() != nil {
		return ErrClosed
	}
	return err
}

// enter counts a call that reads the database in l.readers, which the caller then leaves
// with l.readers.Done(); after (or while) Close it returns ErrClosed.
func (l *Log) enter() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	l.readers.Add(1) // under mu, before Close can wait
	return nil
}

// Close commits what is queued, syncs and closes the database. It returns the log's failure
// if a commit failed, or what closing the database reported.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	l.wake.Signal()
	l.reserved.Broadcast() // NextSeq waiters give up
	l.mu.Unlock()
	l.stopAll()
	l.committer.Wait()
	close(l.syncStop)
	l.syncer.Wait()
	l.readers.Wait()
	// Nothing else touches the database now.
	err := l.Err()
	if err == nil {
		b := l.db.NewBatch()
		_ = b.LogData(nil, nil)
		err = l.commitSynced(b)
	}
	if cerr := l.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// commitLoop builds and commits the batches. written is the reservation already committed.
func (l *Log) commitLoop(written uint64) {
	defer l.committer.Done()
	defer close(l.applied)
	var key []byte
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && l.asked == written && !l.closing {
			l.wake.Wait()
		}
		ops, buf, asked, closing, failed := l.queue, l.buf, l.asked, l.closing, l.failed
		l.queue, l.buf = nil, l.spareBuf[:0]
		l.mu.Unlock()

		// After a failed commit nothing goes to Pebble again (its next write to the broken
		// log would be fatal); the ops only collect the failure, in ackLoop.
		a := appliedBatch{ops: ops, asked: asked, err: failed, taken: time.Now()}
		if failed == nil {
			a.batch = l.db.NewBatch()
			a.refuse = l.diskFull()
			key = l.fillBatch(a.batch, ops, buf, a.refuse != nil, key)
			// A new reservation is fsynced whatever the mode, or a machine crash could
			// take it back while handles of its block are out: they would be issued again.
			// It happens once per block.
			reserve := asked != written
			if reserve {
				_ = a.batch.Set(metaSeqKey, binary.BigEndian.AppendUint64(key[:0], asked), nil)
			}
			// A synced batch is applied now and its fsync awaited by ackLoop, so the next
			// batch is built and written while this one syncs: Pebble shares the fsync.
			if l.opts.Sync == SyncAlways || reserve {
				a.synced = true
				a.err = l.db.ApplyNoSyncWait(a.batch, pebble.Sync)
			} else {
				a.err = a.batch.Commit(pebble.NoSync)
			}
		}
		written = asked
		// The batch holds copies now: the buffer can take the next batch's records, unless a
		// burst of large jobs grew it past what is worth keeping.
		if cap(buf) > maxSpareBuf {
			buf = nil
		}
		l.mu.Lock()
		l.spareBuf = buf
		l.mu.Unlock()
		l.applied <- a
		if closing {
			l.mu.Lock()
			empty := len(l.queue) == 0
			l.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

// fillBatch writes ops into b; with refuse (a nearly full disk) only their deletions. key is
// scratch space, returned for reuse.
//
// A conditional delete compares the key's value as it stands at that point of the batch:
// in the database, which holds every earlier batch (they are applied before the next one
// is built), unless an earlier write of this batch set or removed the key. Those writes are
// tracked only in a batch holding a conditional delete, and only for the by-unique result
// keys (the only ones deleted so).
func (l *Log) fillBatch(b *pebble.Batch, ops []op, buf []byte, refuse bool, key []byte) []byte {
	var here map[string][]byte // by-unique keys written earlier in this batch: value, nil = deleted
	for i := range ops {
		if ops[i].cond && !(refuse && ops[i].refusable()) {
			here = map[string][]byte{}
			break
		}
	}
	for i := range ops {
		o := &ops[i]
		if refuse && o.refusable() {
			continue
		}
		switch o.kind {
		case opPut:
			key = jobKey(key[:0], o.seq)
			_ = b.Set(key, buf[o.start:o.end], nil)
		case opDelete:
			key = jobKey(key[:0], o.seq)
			_ = b.Delete(key, nil)
		case opTxn:
			for t := buf[o.start:o.end]; len(t) > 0; {
				var w txnWrite
				w, t = nextTxnWrite(t)
				switch w.tag {
				case txnSet:
					_ = b.Set(w.key, w.value, nil)
				case txnDelete:
					_ = b.Delete(w.key, nil)
				case txnDeleteIf:
					if l.valueIs(here, w.key, w.value) {
						_ = b.Delete(w.key, nil)
						here[string(w.key)] = nil
					}
					continue
				}
				if here != nil && isUniqueKey(w.key) {
					if w.tag == txnSet {
						here[string(w.key)] = w.value // aliases buf, which outlives the batch
					} else {
						here[string(w.key)] = nil
					}
				}
			}
		}
	}
	return key
}

// valueIs reports whether key holds value at this point of the batch being filled (see
// fillBatch). A read that fails keeps the key: a by-unique entry left behind names a result
// that is gone, which ResultByUnique reports as not found, and the next result of that
// unique overwrites it.
func (l *Log) valueIs(here map[string][]byte, key, value []byte) bool {
	if v, ok := here[string(key)]; ok {
		return v != nil && bytes.Equal(v, value)
	}
	v, closer, err := l.db.Get(key)
	if err != nil {
		return false
	}
	defer closer.Close()
	return bytes.Equal(v, value)
}

func isUniqueKey(k []byte) bool {
	return len(k) >= 2 && k[0] == byte(KindResult) && k[1] == resultByUnique
}

// appliedBatch is a batch handed to Pebble (or, after a failure, not), waiting in ackLoop
// for its durability.
type appliedBatch struct {
	batch  *pebble.Batch // nil when the log had failed already
	synced bool          // applied with an fsync that ackLoop awaits
	ops    []op
	asked  uint64
	refuse error // the disk reserve refused its writes
	err    error
	taken  time.Time // when its ops left the queue
}

// ackLoop waits for each applied batch to be durable, in order, and runs its callbacks. The
// first batch that fails marks the log failed; every later one fails with it, since nothing
// written after a failed write-ahead log write is durable.
func (l *Log) ackLoop() {
	defer l.committer.Done()
	for a := range l.applied {
		err := a.err
		var synced time.Time
		if err == nil && a.synced {
			synced = time.Now()
			err = a.batch.SyncWait()
		}
		if err == nil && len(a.ops) > 0 {
			done := time.Now()
			l.countBatch(len(a.ops), done.Sub(a.taken), done.Sub(synced), a.synced)
		}
		if a.batch != nil {
			_ = a.batch.Close()
		}
		l.mu.Lock()
		switch {
		case l.failed != nil:
			err = l.failed
		case err != nil:
			err = l.fail(err)
		default:
			l.durable = max(l.durable, a.asked)
			l.reserved.Broadcast()
		}
		l.mu.Unlock()
		for i := range a.ops {
			o := &a.ops[i]
			oerr := err
			if oerr == nil && a.refuse != nil && o.refusable() {
				oerr = a.refuse
			}
			if oerr == nil && (o.results != 0 || o.resultBytes != 0) {
				l.results.Add(int64(o.results)) // before the ack: ExpireResults reads them next
				l.resultBytes.Add(o.resultBytes)
			}
			switch {
			case o.ack != nil:
				o.ack.Acked(oerr)
			case oerr != nil && o.kind == opTxn && err == nil:
				// fire and forget, refused by the disk reserve (a failure is logged once)
				l.log.Error("job log write refused", "error", oerr)
			}
		}
	}
}

// Writable reports ErrDiskFull (with the figures) while the data dir's file system is below
// the free-space reserve, so that a submit can be refused before anything is queued. The
// answer is cached for a few milliseconds: submits call it on every background job.
func (l *Log) Writable() error {
	now := time.Now().UnixNano()
	if c := l.space.Load(); c != nil && now-c.at < int64(spaceCheckEvery) {
		return c.err
	}
	err := l.diskFull()
	l.space.Store(&spaceCheck{at: now, err: err})
	return err
}

const spaceCheckEvery = 10 * time.Millisecond

type spaceCheck struct {
	at  int64
	err error
}

// diskFull returns ErrDiskFull (with the figures) when the data dir's file system has less
// free space than the reserve.
func (l *Log) diskFull() error {
	free, _, ok := l.DiskSpace()
	if !ok || free >= l.opts.MinFreeBytes {
		return nil // enough, or cannot tell: let the write decide
	}
	return fmt.Errorf("%w: %d bytes free in %s, %d kept in reserve", ErrDiskFull, free, l.opts.Dir, l.opts.MinFreeBytes)
}

func (l *Log) syncLoop() {
	defer l.syncer.Done()
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.syncStop:
			return
		case <-t.C:
		}
		b := l.db.NewBatch()
		_ = b.LogData(nil, nil)
		if err := l.commitSynced(b); err != nil {
			l.mu.Lock()
			l.fail(err)
			l.mu.Unlock()
			return // nothing goes to Pebble after a failure
		}
	}
}

// pebbleLogger routes Pebble's messages into slog. Pebble calls Fatalf when it cannot go on
// (a failed write to its log; a failed fsync it returns instead, see commitSynced); spurd
// then exits, and a restart recovers every acknowledged job.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	fmt.Fprintf(os.Stderr, "spurd: fatal job log error: %s\n", msg)
	os.Exit(70)
}
