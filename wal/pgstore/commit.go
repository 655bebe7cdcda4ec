package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spur-gearman/spur/wal"
)

// The committer: batches of queued ops, folded per key and written in one transaction of
// set-based statements, pipelined in one round trip.

const (
	maxBatchOps   = 8192     // ops one batch takes at most
	maxBatchBytes = 16 << 20 // and bytes (what is left waits for the next batch)
	maxCarry      = 1 << 20  // fire-and-forget ops kept for another try after failures
	maxTries      = 20       // batches a carried op may fail in with the database answering
	commitTries   = 3        // a batch refused for a reason that passes (a deadlock) is tried again
	notifyChannel = "spur_ready"
	maxNotify     = 7000 // bytes of a notification's payload (PostgreSQL's limit is 8000)
)

// batch is what one commit took, and its outcome, on its way to the acknowledger.
type batch struct {
	ops     []op
	err     error          // the commit's failure; nil = committed
	joined  map[int]string // op index -> the handle its Put coalesced onto
	taken   time.Time
	done    time.Time
	results int64 // results the commit added, and their bytes
	bytes   int64
	carried bool // the fire-and-forget ops were carried over: not reported as lost
}

// commitLoop takes, commits and hands on batches until Close.
func (s *Store) commitLoop() {
	defer s.committer.Done()
	defer close(s.acks)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !(s.due && len(s.carry) > 0) && !s.closing {
			s.wake.Wait()
		}
		s.mu.Unlock()
		s.hold.Lock() // a test may be holding the batch back
		s.hold.Unlock()
		s.mu.Lock()
		if len(s.queue) == 0 && s.closing && (len(s.carry) == 0 || s.gaveUp) {
			s.mu.Unlock()
			if n := len(s.carry); n > 0 {
				s.log.Error("closing with writes that could not be committed: jobs that ended may run again", "writes", n)
			}
			return
		}
		ops := s.carry
		s.carry, s.due = nil, false
		n, size := 0, 0
		for n < len(s.queue) && n < maxBatchOps && (n == 0 || size < maxBatchBytes) {
			size += s.queue[n].size
			n++
		}
		ops = append(ops, s.queue[:n]...)
		s.queue = append(s.queue[:0:0], s.queue[n:]...)
		closing := s.closing
		s.mu.Unlock()

		b := &batch{ops: ops, taken: time.Now()}
		s.commit(b)
		if b.err != nil {
			s.keepForRetry(b, closing)
			if closing {
				s.mu.Lock()
				s.gaveUp = true // what is carried now had its last try
				s.mu.Unlock()
			}
		}
		b.done = time.Now()
		s.acks <- b
	}
}

// keepForRetry carries the fire-and-forget ops of a failed batch over to the next, when the
// failure may pass: they came before everything still queued, so they go first.
func (s *Store) keepForRetry(b *batch, closing bool) {
	if !transient(b.err) {
		return
	}
	var ae acquireError
	answered := !errors.As(b.err, &ae) // the database was reached: the ops may be what fails
	var keep []op
	dropped := 0
	for _, o := range b.ops {
		if o.ack != nil || o.kind == opBarrier || o.kind == opPut {
			continue
		}
		if answered {
			if o.tries++; o.tries > maxTries {
				dropped++
				continue
			}
		}
		keep = append(keep, o)
	}
	if dropped > 0 {
		s.log.Error("writes that failed in every batch since are dropped (jobs that ended may run again)",
			"writes", dropped, "batches", maxTries, "error", b.err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(keep)+len(s.carry) > maxCarry {
		s.log.Error("too many writes waiting for the database: the oldest are dropped (jobs that ended may run again)",
			"dropped", len(keep))
		return
	}
	s.carry = append(keep, s.carry...) // before the jobs commit gave up for this batch, if any
	s.due = closing                    // while closing, one more try; else when the database answers
	b.carried = true
}

// commit writes b in one transaction, tried again (up to commitTries) while it fails for a
// reason that passes and surely did not commit.
func (s *Store) commit(b *batch) {
	p := s.plan(b)
	if p.empty() {
		return // barriers only, or writes that cancel out: nothing to send
	}
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
		err := s.send(ctx, p, b)
		cancel()
		if err == nil {
			s.reached()
			return
		}
		s.connFailed(err)
		// Tried again: a deadlock or a serialization failure, and a connection found dead
		// before anything was sent (the pool was just reset); not a failure to connect.
		var ae acquireError
		if try < commitTries && notCommitted(err) && transient(err) && !errors.As(err, &ae) {
			time.Sleep(time.Duration(try*try) * 5 * time.Millisecond)
			b.results, b.bytes = 0, 0
			clear(b.joined)
			continue
		}
		b.err = fmt.Errorf("PostgreSQL at %s: %w", s.where, err)
		if !notCommitted(err) {
			// The transaction may have committed. The jobs its Puts wrote, if it did, are
			// not in the engine (their submitters are told the error): they are given up,
			// for any node to claim, rather than held here unseen for as long as this node
			// renews its leases. Not deleted: another node's submit may have joined one.
			s.mu.Lock()
			for k, seq := range p.putSeqs {
				s.carry = append(s.carry, op{kind: opUnhold, seq: seq, rec: wal.Record{Function: p.putFns[k]}, size: 16})
			}
			s.mu.Unlock()
			b.err = fmt.Errorf("%w (outcome unknown: the connection was lost)", b.err)
		}
		s.log.Error("PostgreSQL commit failed", "db", s.where, "ops", len(b.ops), "error", err)
		return
	}
}

// send queues p's statements in one pipelined batch (one implicit transaction, committed at
// its Sync) and reads their results into b.
func (s *Store) send(ctx context.Context, p *plan, b *batch) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return acquireError{err}
	}
	defer conn.Release()
	q := &pgx.Batch{}
	p.queue(q, s)
	br := conn.SendBatch(ctx, q)
	if err := p.read(br, b); err != nil {
		_ = br.Close()
		return err
	}
	return br.Close()
}

// ackLoop runs the acknowledgements of each batch, in commit order.
func (s *Store) ackLoop() {
	defer s.committer.Done()
	for b := range s.acks {
		if b.err == nil {
			if b.results != 0 || b.bytes != 0 {
				s.results.Add(b.results)
				s.resultBytes.Add(b.bytes)
			}
			if len(b.ops) > 0 {
				s.countBatch(len(b.ops), b.done.Sub(b.taken))
			}
		}
		lost := 0
		for i := range b.ops {
			o := &b.ops[i]
			err := b.err
			if err == nil && o.kind == opPut {
				if h, ok := b.joined[i]; ok {
					err = &wal.Coalesced{Handle: h}
				}
			}
			if o.ack != nil {
				o.ack.Acked(err)
			} else if err != nil && !b.carried {
				lost++
			}
		}
		if lost > 0 {
			s.log.Error("writes nobody waits for are lost: jobs that ended may run again", "writes", lost, "error", b.err)
		}
	}
}

// acquireError is a failure to get a connection: nothing was sent.
type acquireError struct{ err error }

func (e acquireError) Error() string { return e.err.Error() }
func (e acquireError) Unwrap() error { return e.err }

// notCommitted reports whether err proves the transaction did not commit: the server
// refused it (an error response before the commit; not a fatal one, which may end the
// session at any point), or nothing was sent.
func notCommitted(err error) bool {
	var ae acquireError
	if errors.As(err, &ae) || pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity != "FATAL" && pe.Severity != "PANIC"
	}
	return false
}

// transient reports whether err may pass by itself: the database unreachable or shutting
// down, out of resources, or the transaction refused by a concurrent one (a deadlock, a
// serialization failure).
func transient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		for _, class := range []string{"40", "08", "53", "57", "58"} {
			if strings.HasPrefix(pe.Code, class) {
				return true
			}
		}
		return false
	}
	return true // not the server's answer: the connection, a timeout
}

// unreachable reports whether err means the database cannot be used now, rather than that
// it refused one statement.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // Close, or a caller gave up
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		for _, class := range []string{"08", "53", "57", "58"} {
			if strings.HasPrefix(pe.Code, class) {
				return true
			}
		}
		return pe.Severity == "FATAL" || pe.Severity == "PANIC"
	}
	return true
}

// countBatch records a committed batch of n ops that took commit from leaving the queue.
func (s *Store) countBatch(n int, commit time.Duration) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := &s.stats
	st.Batches++
	st.Ops += uint64(n)
	i := 0
	for i < len(wal.BatchOpsBounds) && n > wal.BatchOpsBounds[i] {
		i++
	}
	st.BatchOps[i]++
	j := 0
	for j < len(wal.LatencyBounds) && commit > wal.LatencyBounds[j] {
		j++
	}
	st.Commit[j]++
	st.CommitSum += commit
}

// CommitStats returns a copy of the group-commit statistics (the Sync histogram stays
// empty: PostgreSQL's commit is the whole latency).
func (s *Store) CommitStats() wal.CommitStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}

// DiskSpace has no figure to give (PostgreSQL reports a full disk as a failed commit);
// it makes the store a metrics.Log.
func (s *Store) DiskSpace() (free, reserve uint64, ok bool) { return 0, 0, false }

// RenewFailures counts the lease renewals that failed since Open.
func (s *Store) RenewFailures() uint64 { return s.renewFailures.Load() }
