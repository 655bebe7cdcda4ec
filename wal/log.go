package wal

import (
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
	// SyncNone never fsyncs; the operating system writes the log when it chooses. A crash of
	// the machine can lose whatever it had not written yet (typically up to ~30 s).
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
}

// ErrDiskFull refuses a Put when the disk is nearly full.
var ErrDiskFull = errors.New("disk nearly full")

// ErrClosed refuses a Put after Close.
var ErrClosed = errors.New("job log closed")

// maxSpareBuf caps the record buffer kept from one batch to the next.
const maxSpareBuf = 4 << 20

// seqBlock is how many sequence numbers one durable reservation covers.
const seqBlock = 1 << 20

// Ack is told the outcome of a Put or Barrier: Acked(nil) once it is durable, Acked(err) if
// it could not be written. An interface rather than a callback so that the caller can hand
// over an object it allocates anyway, instead of a closure per job.
type Ack interface{ Acked(err error) }

// op is one queued item: a Put (put set; its record is buf[start:end] of the queue's
// buffer), a Delete (ack nil) or a Barrier (ack set, put not).
type op struct {
	seq        uint64
	put        bool
	start, end int
	ack        Ack
}

// Log is an open job log. Its methods are safe for concurrent use.
type Log struct {
	db   *pebble.DB
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	wake      *sync.Cond // signals the committer: queue non-empty or closing
	reserved  *sync.Cond // signals NextSeq waiters: durableSeq moved
	queue     []op
	buf       []byte // the encoded records of queue's Puts
	spareBuf  []byte // the previous batch's buf, reused
	closing   bool
	closed    bool
	seq       uint64            // last sequence number issued
	asked     uint64            // reservation requested (written by the next batch)
	durable   uint64            // reservation known to be on disk
	committer sync.WaitGroup    // commitLoop and ackLoop
	applied   chan appliedBatch // commitLoop -> ackLoop, in commit order
	syncStop  chan struct{}
	space     atomic.Pointer[spaceCheck] // last Writable answer
}

// Open opens (or creates) the log in opts.Dir and returns it with every job record it holds,
// in submission order. A directory another process has open, or one that is unreadable or
// corrupt, is an error that says so; nothing is dropped silently.
func Open(opts Options) (*Log, []Record, error) {
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 100 * time.Millisecond
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	db, err := pebble.Open(opts.Dir, &pebble.Options{
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
	l := &Log{db: db, opts: opts, log: opts.Logger, syncStop: make(chan struct{})}
	l.wake = sync.NewCond(&l.mu)
	l.reserved = sync.NewCond(&l.mu)
	recs, err := l.recover()
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
	// Reserve the first block synchronously: handles issued from now on are above anything
	// this directory has ever issued.
	l.asked = l.seq + seqBlock
	if err := db.Set(metaSeqKey, binary.BigEndian.AppendUint64(nil, l.asked), pebble.Sync); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("cannot write to the job log in %s: %w", opts.Dir, err)
	}
	l.durable = l.asked
	l.applied = make(chan appliedBatch, 4)
	l.committer.Add(2)
	go l.commitLoop()
	go l.ackLoop()
	if opts.Sync == SyncBatch {
		go l.syncLoop()
	}
	return l, recs, nil
}

// recover reads the reservation and every job record.
func (l *Log) recover() ([]Record, error) {
	v, closer, err := l.db.Get(metaSeqKey)
	switch {
	case err == nil:
		if len(v) != 8 {
			closer.Close()
			return nil, fmt.Errorf("%w: sequence reservation has %d bytes", ErrCorrupt, len(v))
		}
		l.seq = binary.BigEndian.Uint64(v)
		closer.Close()
	case errors.Is(err, pebble.ErrNotFound):
	default:
		return nil, fmt.Errorf("cannot read the job log: %w", err)
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{jobPrefix}, UpperBound: []byte{jobPrefix + 1}})
	if err != nil {
		return nil, fmt.Errorf("cannot read the job log: %w", err)
	}
	defer it.Close()
	var recs []Record
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return nil, fmt.Errorf("%w: key %x", ErrCorrupt, k)
		}
		seq := binary.BigEndian.Uint64(k[1:])
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("cannot read job %d from the job log: %w", seq, err)
		}
		r, err := decodeRecord(seq, v)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
		l.seq = max(l.seq, seq)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("cannot read the job log: %w", err)
	}
	return recs, nil
}

// NextSeq issues a sequence number never issued before in this directory. It waits only in
// the unlikely case that half a reservation block was used up before the next block became
// durable.
func (l *Log) NextSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	if l.seq+seqBlock/2 > l.asked {
		l.asked += seqBlock
		l.wake.Signal()
	}
	for l.seq > l.durable && !l.closed {
		l.reserved.Wait()
	}
	return l.seq
}

// Put queues r for the next batch; ack.Acked(nil) runs once it is durable, Acked(err) if it
// could not be written. Acks run on the log's acknowledging goroutine, in Put order, never
// inside Put, and must not block. r is encoded before Put returns. After Close, Put returns
// ErrClosed and ack is never told.
func (l *Log) Put(r Record, ack Ack) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	start := len(l.buf)
	l.buf = appendRecord(l.buf, &r)
	l.queue = append(l.queue, op{seq: r.Seq, put: true, start: start, end: len(l.buf), ack: ack})
	l.wake.Signal()
	return nil
}

// Barrier tells ack once every Put queued before it is durable, with the same guarantees and
// the same rules as Put; it writes nothing itself.
func (l *Log) Barrier(ack Ack) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	l.queue = append(l.queue, op{ack: ack})
	l.wake.Signal()
	return nil
}

// Delete queues the removal of the record with this sequence number.
func (l *Log) Delete(seq uint64) {
	l.mu.Lock()
	if !l.closing {
		l.queue = append(l.queue, op{seq: seq})
		l.wake.Signal()
	}
	l.mu.Unlock()
}

// Compact rewrites the job key range so that the space of deleted jobs is reclaimed now
// rather than whenever Pebble's own heuristics get to it. It blocks while it runs; call it
// from a background goroutine when a backlog has drained.
func (l *Log) Compact(ctx context.Context) error {
	return l.db.Compact(ctx, []byte{jobPrefix}, []byte{jobPrefix + 1}, false)
}

// Close commits what is queued, syncs and closes the database.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	l.wake.Signal()
	l.mu.Unlock()
	l.committer.Wait()
	if l.opts.Sync == SyncBatch {
		close(l.syncStop)
	}
	err := l.db.LogData(nil, pebble.Sync)
	l.mu.Lock()
	l.closed = true
	l.reserved.Broadcast()
	l.mu.Unlock()
	if cerr := l.db.Close(); err == nil {
		err = cerr
	}
	return err
}

func (l *Log) commitLoop() {
	defer l.committer.Done()
	defer close(l.applied)
	var scratch []byte
	written := l.asked // reservation already in the last batch handed to Pebble
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && l.asked == written && !l.closing {
			l.wake.Wait()
		}
		ops, buf, asked, closing := l.queue, l.buf, l.asked, l.closing
		l.queue, l.buf = nil, l.spareBuf[:0]
		l.mu.Unlock()

		a := appliedBatch{batch: l.db.NewBatch(), ops: ops, asked: asked, refuse: l.diskFull()}
		for _, o := range ops {
			switch {
			case o.put && a.refuse == nil:
				_ = a.batch.Set(jobKey(scratch[:0], o.seq), buf[o.start:o.end], nil)
			case o.put:
			case o.ack == nil:
				_ = a.batch.Delete(jobKey(scratch[:0], o.seq), nil)
			}
			// a barrier writes nothing
		}
		// The batch holds copies now: the buffer can take the next batch's records, unless a
		// burst of large jobs grew it past what is worth keeping.
		if cap(buf) > maxSpareBuf {
			buf = nil
		}
		l.mu.Lock()
		l.spareBuf = buf
		l.mu.Unlock()
		_ = a.batch.Set(metaSeqKey, binary.BigEndian.AppendUint64(scratch[:0], asked), nil)
		// With --sync always the batch is applied now and its fsync awaited by ackLoop, so
		// the next batch is built and written while this one syncs: Pebble shares the fsync.
		if l.opts.Sync == SyncAlways {
			a.err = l.db.ApplyNoSyncWait(a.batch, pebble.Sync)
		} else {
			a.err = a.batch.Commit(pebble.NoSync)
		}
		written = asked
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

// appliedBatch is a batch handed to Pebble, waiting in ackLoop for its durability.
type appliedBatch struct {
	batch  *pebble.Batch
	ops    []op
	asked  uint64
	refuse error // the disk reserve refused its Puts
	err    error
}

// ackLoop waits for each applied batch to be durable, in order, and runs its callbacks.
func (l *Log) ackLoop() {
	defer l.committer.Done()
	for a := range l.applied {
		err := a.err
		if err == nil && l.opts.Sync == SyncAlways {
			err = a.batch.SyncWait()
		}
		_ = a.batch.Close()
		if err != nil {
			l.log.Error("job log commit failed", "error", err)
		} else {
			l.mu.Lock()
			l.durable = max(l.durable, a.asked)
			l.reserved.Broadcast()
			l.mu.Unlock()
		}
		for _, o := range a.ops {
			switch {
			case o.ack == nil:
			case a.refuse != nil:
				o.ack.Acked(a.refuse) // a barrier too: the Puts it waits for were refused
			default:
				o.ack.Acked(err)
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
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.opts.Dir, &st); err != nil {
		return nil // cannot tell; let the write decide
	}
	free := st.Bavail * uint64(st.Bsize)
	if free >= l.opts.MinFreeBytes {
		return nil
	}
	return fmt.Errorf("%w: %d bytes free in %s, %d kept in reserve", ErrDiskFull, free, l.opts.Dir, l.opts.MinFreeBytes)
}

func (l *Log) syncLoop() {
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.syncStop:
			return
		case <-t.C:
			if err := l.db.LogData(nil, pebble.Sync); err != nil {
				l.log.Error("job log sync failed", "error", err)
			}
		}
	}
}

// pebbleLogger routes Pebble's messages into slog. Pebble calls Fatalf when it cannot go on
// (a failed log write); spurd then exits, and a restart recovers every acknowledged job.
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
