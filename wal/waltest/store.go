// Package waltest is an in-memory stand-in for the job log, for tests of what stands on it:
// it implements the engine's Store like wal.Log does (group commits on its own goroutine,
// acknowledgements in order after a batch's effects), and can be told to refuse, fail or
// delay its commits.
package waltest

import (
	"errors"
	"sync"
	"time"

	"github.com/spur-gearman/spur/wal"
)

// Mode is how the store treats what it is asked.
type Mode uint8

const (
	OK     Mode = iota // commits succeed
	Full               // the disk is nearly full: Writable says so, commits refuse Puts and Txns
	Fail               // the next commit fails, and the store is failed from then on, as wal.Log after a failed fsync
	Reject             // Put, Apply and Barrier fail at once, as the log's do after Close
)

// ErrInjected is the failure of a commit in Fail mode.
var ErrInjected = errors.New("waltest: injected commit failure")

type op struct {
	rec  *wal.Record // a Put
	txn  bool        // an Apply: of its effects only job records are modelled (jobs)
	jobs []jobWrite  // an Apply's job puts and deletes, in order
	sets bool        // an Apply that writes: refused on a nearly full disk
	seq  uint64      // a Delete, when rec is nil and txn false and done is nil
	done func(error) // the acknowledgement; nil for a Delete
}

// Store is an in-memory engine store. Operations queue up until its own goroutine commits
// them: when the test asks (Flush), or, when made with auto, as soon as it notices them,
// concurrently with the engine (after Delay, if set).
type Store struct {
	auto    bool
	kick    chan struct{}
	flushes chan chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	mu      sync.Mutex
	seq     uint64
	mode    Mode
	failed  error // set once a commit failed: everything after it fails too
	delay   time.Duration
	pending []op
	records map[uint64]string // committed records: seq -> handle
	written map[string]bool   // handles whose record was committed at some point
	refused int               // Puts refused or failed since the last TakeRefused
}

// New starts a store; auto commits without being asked. Close it when done.
func New(auto bool) *Store {
	s := &Store{
		auto:    auto,
		kick:    make(chan struct{}, 1),
		flushes: make(chan chan struct{}),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		records: map[uint64]string{},
		written: map[string]bool{},
	}
	go s.run()
	return s
}

// Writable implements the engine's Store.
func (s *Store) Writable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.failed != nil:
		return s.failed
	case s.mode == Full:
		return wal.ErrDiskFull
	}
	return nil
}

// NextSeq implements the engine's Store.
func (s *Store) NextSeq() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return 0, s.failed
	}
	s.seq++
	return s.seq, nil
}

// Put implements the engine's Store.
func (s *Store) Put(r wal.Record, ack wal.Ack) error {
	return s.add(op{rec: &r, done: ack.Acked})
}

// Barrier implements the engine's Store.
func (s *Store) Barrier(ack wal.Ack) error { return s.add(op{done: ack.Acked}) }

// Apply implements the engine's Store; a nil ack is allowed.
func (s *Store) Apply(t *wal.Txn, ack wal.Ack) error {
	done := func(error) {}
	if ack != nil {
		done = ack.Acked
	}
	o := op{txn: true, sets: t.Sets(), done: done}
	t.EachJob(func(r wal.Record) { o.jobs = append(o.jobs, jobWrite{seq: r.Seq, handle: r.Handle}) },
		func(seq uint64) { o.jobs = append(o.jobs, jobWrite{seq: seq}) })
	return s.add(o)
}

// jobWrite is a job record an Apply writes (handle set) or deletes.
type jobWrite struct {
	seq    uint64
	handle string
}

// applyJobs applies an Apply's job writes to bySeq (and, if written is not nil, notes the
// handles written).
func applyJobs(bySeq map[uint64]string, jobs []jobWrite, written map[string]bool) {
	for _, w := range jobs {
		if w.handle == "" {
			delete(bySeq, w.seq)
			continue
		}
		bySeq[w.seq] = w.handle
		if written != nil {
			written[w.handle] = true
		}
	}
}

// Delete implements the engine's Store.
func (s *Store) Delete(seq uint64) error { return s.add(op{seq: seq}) }

func (s *Store) add(o op) error {
	s.mu.Lock()
	switch {
	case s.failed != nil:
		s.mu.Unlock()
		return s.failed
	case s.mode == Reject && o.done != nil:
		s.mu.Unlock()
		return wal.ErrClosed
	}
	s.pending = append(s.pending, o)
	s.mu.Unlock()
	if s.auto {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *Store) run() {
	defer close(s.stopped)
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			s.commit()
		case done := <-s.flushes:
			s.commit()
			close(done)
		}
	}
}

// commit applies every pending operation as one batch, then runs the acknowledgements.
func (s *Store) commit() {
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	s.mu.Lock()
	ops := s.pending
	s.pending = nil
	var refuse error
	switch {
	case s.failed != nil:
		refuse = s.failed
	case s.mode == Fail && len(ops) > 0:
		s.failed = ErrInjected
		refuse = ErrInjected
	case s.mode == Full:
		refuse = wal.ErrDiskFull
	}
	for _, o := range ops {
		switch {
		case o.rec != nil && refuse != nil:
			s.refused++
		case o.rec != nil:
			s.records[o.rec.Seq] = o.rec.Handle
			s.written[o.rec.Handle] = true
		case o.txn && (refuse == nil || (!o.sets && s.failed == nil)):
			applyJobs(s.records, o.jobs, s.written)
		case o.done == nil && !o.txn && s.failed == nil:
			delete(s.records, o.seq)
		}
	}
	s.mu.Unlock()
	for _, o := range ops {
		switch {
		case o.done == nil:
		case refuse != nil && (o.rec != nil || o.sets || s.failed != nil):
			o.done(refuse)
		default:
			o.done(nil) // a barrier writes nothing: a full disk does not refuse it
		}
	}
}

// Pending returns how many operations wait for the next commit.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Auto reports whether the store commits without being asked.
func (s *Store) Auto() bool { return s.auto }

// Flush commits everything pending and waits for the acknowledgements to have run.
func (s *Store) Flush() {
	done := make(chan struct{})
	s.flushes <- done
	<-done
}

// SetMode changes how later commits (and calls) are treated.
func (s *Store) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// SetDelay makes every later commit wait d first: a slow disk.
func (s *Store) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// IsWritten reports whether a record with this handle was ever committed.
func (s *Store) IsWritten(handle string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written[handle]
}

// Records returns the handles of the records committed and not deleted.
func (s *Store) Records() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.records))
	for _, h := range s.records {
		out[h] = true
	}
	return out
}

// TakeRefused returns how many Puts were refused or failed since the last call.
func (s *Store) TakeRefused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.refused
	s.refused = 0
	return n
}

// Intended returns the handles the store will hold once everything queued is committed
// (pending Puts assumed to succeed; a refusal makes the engine withdraw the job).
func (s *Store) Intended() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	bySeq := make(map[uint64]string, len(s.records))
	for seq, h := range s.records {
		bySeq[seq] = h
	}
	for _, o := range s.pending {
		switch {
		case o.rec != nil:
			bySeq[o.rec.Seq] = o.rec.Handle
		case o.txn:
			applyJobs(bySeq, o.jobs, nil)
		case o.done == nil:
			delete(bySeq, o.seq)
		}
	}
	out := make(map[string]bool, len(bySeq))
	for _, h := range bySeq {
		out[h] = true
	}
	return out
}

// Close stops the store's goroutine.
func (s *Store) Close() {
	close(s.stop)
	<-s.stopped
}
