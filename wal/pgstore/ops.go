package pgstore

import (
	"bytes"

	"github.com/spur-gearman/spur/wal"
)

// The calls that queue writes for the committer, and what they queue.

// opKind is what a queued op does.
type opKind uint8

const (
	opPut     opKind = iota // a new job: rec
	opDelete                // removes job seq
	opBarrier               // writes nothing; acknowledged once everything before it is
	opTxn                   // txn's writes, together
	opUnhold                // gives job seq (of function rec.Function) up: owner NULL
)

// op is one queued call. Everything it holds is its own (copied from the caller).
type op struct {
	kind opKind
	rec  wal.Record // opPut; opUnhold: its Function only
	seq  uint64     // opDelete, opUnhold
	txn  []txnWrite // opTxn
	ack  wal.Ack    // nil for a Delete and a fire-and-forget Apply
	size int        // bytes it holds, for the batch bound
	// tries counts the batches that failed with it carried over, the database answering
	// (not a failure to connect): one that keeps failing is dropped after maxTries.
	tries int
}

// txnWrite is one write of an applied Txn, decoded when applied: on the caller's
// goroutine, so that a write the store cannot take refuses the Apply, not a batch.
type txnWrite struct {
	op    wal.TxnOp
	kind  wal.Kind
	key   []byte      // the kind's key, without its kind byte
	value []byte      // the encoded value (function settings, dead letters, schedules, other kinds)
	seq   uint64      // jobs, dead letters, schedules, results
	fn    string      // the function of a dead letter or schedule (its own column)
	job   *wal.Record // a job put
	res   *wal.Result // a result put
}

// Put queues the insert of a new job; ack.Acked(nil) runs once it is committed,
// Acked(*wal.Coalesced) if a job of the same function and unique is queued or running
// anywhere (the store kept that one), Acked(err) if it was not or may not have been
// committed. Acks run on the store's acknowledging goroutine, in the order of the calls,
// never inside Put, and must not block. r is copied before Put returns. r.Shared writes the
// job unheld (any node may claim it); otherwise this node holds it under its lease. After
// Close, Put returns ErrClosed; a function name longer than MaxFunction is refused.
func (s *Store) Put(r wal.Record, ack wal.Ack) error {
	if len(r.Function) > MaxFunction {
		return ErrFunctionTooLong
	}
	r.Data = bytes.Clone(r.Data)
	return s.push(op{kind: opPut, rec: r, ack: ack, size: recordSize(&r)})
}

// Delete queues the removal of job seq. Nobody waits for it: after a failure that may pass
// (a lost connection) it is tried again with the next batch; after Close it returns
// ErrClosed.
func (s *Store) Delete(seq uint64) error {
	return s.push(op{kind: opDelete, seq: seq, size: 16})
}

// Barrier tells ack once every write queued before it is committed (nil), or that one of
// the batch it shares with them failed (the error), with the same rules as Put.
func (s *Store) Barrier(ack wal.Ack) error {
	return s.push(op{kind: opBarrier, ack: ack, size: 16})
}

// Apply queues t's writes to be committed together, in one transaction; ack (which may be
// nil: fire and forget, tried again after a failure that may pass, as a Delete) is told as
// Put's is. t is copied before Apply returns and may be Reset and reused at once. Apply
// returns t's misuse, ErrFunctionTooLong or ErrClosed; ack is then never told.
//
// Each kind goes to its table: a PutJob of a job that exists updates its priority, run-at
// time and attempts (not its holder); of a new number it inserts it held by this node, or,
// when its unique is taken, writes nothing (it joins the job there, as the engine's own
// coalescing would). Results are written by number (their by-unique entries are the
// results table's own index); the conditional deletes of wal's ExpireResults do not occur
// here (ExpireResults deletes directly).
func (s *Store) Apply(t *wal.Txn, ack wal.Ack) error {
	if err := t.Err(); err != nil {
		return err
	}
	var ws []txnWrite
	size := 0
	for w := range t.Writes {
		c := txnWrite{op: w.Op, kind: w.Kind, key: bytes.Clone(w.Key)}
		size += len(w.Key) + len(w.Value) + 32
		switch w.Kind {
		case wal.KindJob:
			seq, ok := w.Seq()
			if !ok {
				return wal.ErrCorrupt
			}
			c.seq = seq
			if w.Op == wal.TxnPut {
				r, err := w.Job()
				if err != nil {
					return err
				}
				if len(r.Function) > MaxFunction {
					return ErrFunctionTooLong
				}
				c.job = &r
			}
		case wal.KindFunction:
			if len(w.Key) > MaxFunction {
				return ErrFunctionTooLong
			}
			if w.Op == wal.TxnPut {
				c.value = bytes.Clone(w.Value)
			}
		case wal.KindResult:
			seq, ok := w.ResultSeq()
			if !ok || w.Op != wal.TxnPut {
				continue // the by-unique entry and its conditional removal: the index's job here
			}
			r, err := w.Result()
			if err != nil {
				return err
			}
			if len(r.Function) > MaxFunction {
				return ErrFunctionTooLong
			}
			c.seq, c.res = seq, &r
		case wal.KindDead:
			seq, ok := w.Seq()
			if !ok {
				return wal.ErrCorrupt
			}
			c.seq = seq
			if w.Op == wal.TxnPut {
				d, err := w.Dead()
				if err != nil {
					return err
				}
				c.fn, c.value = d.Job.Function, bytes.Clone(w.Value)
			}
		case wal.KindSchedule:
			seq, ok := w.Seq()
			if !ok {
				return wal.ErrCorrupt
			}
			c.seq = seq
			if w.Op == wal.TxnPut {
				sc, err := w.Schedule()
				if err != nil {
					return err
				}
				c.fn, c.value = sc.Function, bytes.Clone(w.Value)
			}
		default:
			if w.Op == wal.TxnDeleteIf {
				continue
			}
			if w.Op == wal.TxnPut {
				c.value = bytes.Clone(w.Value)
			}
		}
		ws = append(ws, c)
	}
	return s.push(op{kind: opTxn, txn: ws, ack: ack, size: size})
}

// push queues o for the committer.
func (s *Store) push(o op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrClosed
	}
	s.queue = append(s.queue, o)
	s.wake.Signal()
	return nil
}

// recordSize is about what a job costs a batch.
func recordSize(r *wal.Record) int {
	return 64 + len(r.Handle) + len(r.Function) + len(r.Unique) + len(r.Reducer) + len(r.Data)
}
